"""The SB3 actor-critic policy with a memory between the features extractor and the heads.

    observation -> features extractor -> memory (tlb, lstm, gru, transformer, none) -> MLP -> pi, value

Actor and critic read one memory output, so both losses train the memory. The policy has two modes:
``forward``/``predict`` advance the memory one environment step at a time (rollouts, evaluation), and
``evaluate_sequences`` runs whole training sequences through ``memory.sequence`` (chunk-parallel for tlb).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, MlpExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule

from policies.encoder import default_features_extractor
from policies.memories import Memory, MemoryState, make_memory

NumpyState = dict[str, np.ndarray]


def state_to_numpy(state: MemoryState) -> NumpyState:
    return {key: value.detach().cpu().numpy() for key, value in state.items()}


def state_to_tensor(state: NumpyState | MemoryState, device: torch.device) -> MemoryState:
    return {key: torch.as_tensor(value, device=device) for key, value in state.items()}


class SequenceObservations(NamedTuple):
    """A minibatch of M training sequences of length L, as ``evaluate_actions`` consumes it."""

    observations: PyTorchObs  # flat, sequence-major: [M * L, ...]
    memory_state: MemoryState  # the state before each sequence's first step: [M, ...]
    episode_starts: torch.Tensor  # [M, L]


class MemoryActorCriticPolicy(ActorCriticPolicy):
    """Actor-critic policy whose features pass through a memory.

    :param memory: which memory: ``"tlb"`` (default), ``"lstm"``, ``"gru"``, ``"transformer"``, ``"none"``
    :param memory_kwargs: the memory's own arguments, e.g. ``dict(chunk_size=8, n_latents=4)`` for tlb
    :param features_extractor_class: defaults to the BabyAI encoder for MiniGrid/BabyAI observations and
        to SB3's own choice otherwise
    Every other argument is SB3's ``ActorCriticPolicy``'s.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[torch.nn.Module] = torch.nn.Tanh,
        *args: Any,
        memory: str = "tlb",
        memory_kwargs: dict[str, Any] | None = None,
        features_extractor_class: type[BaseFeaturesExtractor] | None = None,
        **kwargs: Any,
    ) -> None:
        self.memory_name = memory
        self.memory_kwargs = dict(memory_kwargs or {})
        if features_extractor_class is None:
            features_extractor_class = default_features_extractor(observation_space)
        if kwargs.get("optimizer_class", torch.optim.Adam) is torch.optim.Adam:
            # SB3's Adam settings, plus one multi-tensor update for the memory's many small parameters
            # (on a CPU torch otherwise updates them one by one).
            kwargs["optimizer_kwargs"] = {
                "eps": 1e-5,
                "foreach": True,
                **(kwargs.get("optimizer_kwargs") or {}),
            }
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch,
            activation_fn,
            *args,
            features_extractor_class=features_extractor_class,
            **kwargs,
        )

    def _build_mlp_extractor(self) -> None:
        # Called by ActorCriticPolicy._build before the heads and the optimizer exist: the memory sits
        # between the features and the MLP, and its parameters join the optimizer like the others.
        memory_input = self.features_dim if self.share_features_extractor else 2 * self.features_dim
        self.memory: Memory = make_memory(self.memory_name, memory_input, **self.memory_kwargs)
        self.mlp_extractor = MlpExtractor(
            self.memory.output_dim,
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            device=self.device,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(memory=self.memory_name, memory_kwargs=self.memory_kwargs)
        return data

    # ------------------------------------------------------------------ the memory's inputs and outputs

    def memory_inputs(self, obs: PyTorchObs) -> torch.Tensor:
        """Features of a flat batch of observations: [B, memory.input_dim]."""
        features = self.extract_features(obs)
        if self.share_features_extractor:
            return features
        # One memory for both heads: it reads the actor's and the critic's features side by side.
        return torch.cat(features, dim=1)

    def initial_state(self, n_envs: int) -> MemoryState:
        return self.memory.initial_state(n_envs)

    def _heads(self, latent: torch.Tensor) -> tuple[Distribution, torch.Tensor]:
        latent_pi, latent_vf = self.mlp_extractor(latent)
        return self._get_action_dist_from_latent(latent_pi), self.value_net(latent_vf)

    def step_memory(
        self, obs: PyTorchObs, state: MemoryState, episode_starts: torch.Tensor
    ) -> tuple[torch.Tensor, MemoryState]:
        return self.memory.step(self.memory_inputs(obs), state, episode_starts)

    # ------------------------------------------------------------------ step mode (rollouts, predict)

    def forward(  # type: ignore[override]
        self,
        obs: PyTorchObs,
        state: MemoryState,
        episode_starts: torch.Tensor,
        deterministic: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, MemoryState]:
        """One environment step: actions, values, log-probabilities and the next memory state."""
        latent, state = self.step_memory(obs, state, episode_starts)
        distribution, values = self._heads(latent)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        return actions.reshape((-1, *self.action_space.shape)), values, log_prob, state

    def predict_values(  # type: ignore[override]
        self, obs: PyTorchObs, state: MemoryState, episode_starts: torch.Tensor
    ) -> torch.Tensor:
        """Values of one step's observations, given the memory state before them."""
        latent, _ = self.step_memory(obs, state, episode_starts)
        return self.value_net(self.mlp_extractor.forward_critic(latent))

    def get_distribution(  # type: ignore[override]
        self, obs: PyTorchObs, state: MemoryState, episode_starts: torch.Tensor
    ) -> tuple[Distribution, MemoryState]:
        latent, state = self.step_memory(obs, state, episode_starts)
        return self._get_action_dist_from_latent(self.mlp_extractor.forward_actor(latent)), state

    def _predict(  # type: ignore[override]
        self,
        observation: PyTorchObs,
        state: MemoryState,
        episode_starts: torch.Tensor,
        deterministic: bool = False,
    ) -> tuple[torch.Tensor, MemoryState]:
        distribution, state = self.get_distribution(observation, state, episode_starts)
        return distribution.get_actions(deterministic=deterministic), state

    def predict(  # type: ignore[override]
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: NumpyState | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, NumpyState]:
        """Actions for a batch of observations, carrying the memory state like sb3-contrib's RecurrentPPO:
        pass the returned state back in with the next observations, and ``episode_start`` true for envs
        whose observation begins a new episode (``state=None`` means every env starts fresh)."""
        self.set_training_mode(False)
        obs_tensor, vectorized_env = self.obs_to_tensor(observation)
        first = next(iter(obs_tensor.values())) if isinstance(obs_tensor, dict) else obs_tensor
        n_envs = first.shape[0]
        if episode_start is None:
            episode_start = np.zeros(n_envs, dtype=bool)
        with torch.no_grad():
            memory_state = (
                self.initial_state(n_envs) if state is None else state_to_tensor(state, self.device)
            )
            starts = torch.as_tensor(np.asarray(episode_start), device=self.device).bool().reshape(n_envs)
            actions, memory_state = self._predict(obs_tensor, memory_state, starts, deterministic)
        actions_np = actions.cpu().numpy().reshape((-1, *self.action_space.shape))
        if isinstance(self.action_space, spaces.Box):
            if self.squash_output:
                actions_np = self.unscale_action(actions_np)
            else:
                actions_np = np.clip(actions_np, self.action_space.low, self.action_space.high)
        if not vectorized_env:
            actions_np = actions_np.squeeze(axis=0)
        return actions_np, state_to_numpy(memory_state)

    # ------------------------------------------------------------------ sequence mode (training)

    def evaluate_actions(  # type: ignore[override]
        self, obs: SequenceObservations, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What SB3's ``PPO.train`` calls on each minibatch: here a minibatch of whole sequences."""
        if not isinstance(obs, SequenceObservations):
            raise TypeError(
                "a memory policy evaluates whole sequences: pass agents.buffers.SequenceObservations "
                "(observations, memory_state, episode_starts), or call evaluate_sequences"
            )
        return self.evaluate_sequences(obs.observations, actions, obs.memory_state, obs.episode_starts)

    def evaluate_sequences(
        self,
        obs: PyTorchObs,
        actions: torch.Tensor,
        state: MemoryState,
        episode_starts: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Values, log-probabilities and entropy of a minibatch of whole sequences.

        ``obs`` and ``actions`` are flat, sequence-major ([M * L, ...]); ``episode_starts`` is [M, L] and
        ``state`` the memory state before each sequence's first step. The encoder runs on all M * L
        observations at once and the memory on the M sequences at once.
        """
        n_sequences, length = episode_starts.shape
        inputs = self.memory_inputs(obs).view(n_sequences, length, -1)
        latent, _ = self.memory.sequence(inputs, state, episode_starts)
        distribution, values = self._heads(latent.reshape(n_sequences * length, -1))
        return values, distribution.log_prob(actions), distribution.entropy()


class MemoryActorCriticCnnPolicy(MemoryActorCriticPolicy):
    """``"CnnPolicy"``: image observations through SB3's NatureCNN unless told otherwise."""


class MemoryMultiInputActorCriticPolicy(MemoryActorCriticPolicy):
    """``"MultiInputPolicy"``: Dict observations (the BabyAI encoder for MiniGrid/BabyAI, SB3's
    CombinedExtractor for any other Dict)."""
