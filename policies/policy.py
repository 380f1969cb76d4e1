"""The SB3 actor-critic policy with a memory between the features extractor and the heads.

    observation -> features extractor -> memory (tlb, lstm, gru, transformer, none) -> MLP -> pi, value

By default actor and critic read one memory output, so both losses train the memory; ``critic_memory``
offers sb3-contrib's alternatives (a separate critic memory, a critic reading the actor's memory without
training it, a critic without memory). The policy has two modes: ``forward``/``predict`` advance the
memory one environment step at a time (rollouts, evaluation), and ``evaluate_sequences`` runs whole
training sequences through ``memory.sequence`` (chunk-parallel for tlb).

``MlpLstmPolicy``, ``CnnLstmPolicy`` and ``MultiInputLstmPolicy`` are the same policy with the lstm memory
and sb3-contrib's ``RecurrentPPO`` policy arguments (``lstm_hidden_size``, ``enable_critic_lstm``, ...).
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    CategoricalDistribution,
    Distribution,
    MultiCategoricalDistribution,
)
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, MlpExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from policies.encoder import default_features_extractor
from policies.host_sync import distribution_checks, host_reads_free
from policies.memories import Memory, MemoryState, make_memory
from policies.memories.registry import memory_class, memory_parameters

NumpyState = dict[str, np.ndarray]

CRITIC_MEMORY_MODES = ("shared", "separate", "detached", "none")
# Keys of the critic memory's state inside the policy's state dict (with critic_memory="separate").
CRITIC_STATE_PREFIX = "critic_"


def upgrade_policy_kwargs(policy_class: type, policy_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``policy_kwargs`` that rebuild, in this version, the networks of a model saved by an earlier one:
    its memory's arguments upgraded by the memory class (``Memory.upgrade_saved_kwargs``). Unchanged for
    policies that take no ``memory`` argument and for models saved by this version."""
    parameters = inspect.signature(policy_class.__init__).parameters
    if "memory" not in parameters:
        return policy_kwargs
    name = policy_kwargs.get("memory", parameters["memory"].default)
    memory_kwargs = dict(policy_kwargs.get("memory_kwargs") or {})
    upgraded = memory_class(name).upgrade_saved_kwargs(memory_kwargs)
    return policy_kwargs if upgraded == memory_kwargs else {**policy_kwargs, "memory_kwargs": upgraded}


def state_to_numpy(state: MemoryState) -> NumpyState:
    return {key: value.detach().cpu().numpy() for key, value in state.items()}


def state_to_tensor(state: NumpyState | MemoryState, device: torch.device) -> MemoryState:
    return {key: torch.as_tensor(value, device=device) for key, value in state.items()}


def sample_without_sync(distribution: Distribution, deterministic: bool) -> torch.Tensor:
    """``distribution.get_actions(deterministic)`` without host synchronisation: a categorical sample is
    ``torch.multinomial``'s own one-draw algorithm (argmax of p / E, E ~ Exp(1)) minus its checks of the
    probabilities, each a ``.item()``; other distributions' samples need no host read."""

    def draw(categorical: torch.distributions.Categorical) -> torch.Tensor:
        probs = categorical.probs
        return (probs / torch.empty_like(probs).exponential_()).argmax(dim=-1)

    if deterministic:
        return distribution.get_actions(deterministic=True)
    if isinstance(distribution, CategoricalDistribution):
        return draw(distribution.distribution)
    if isinstance(distribution, MultiCategoricalDistribution):
        return torch.stack([draw(part) for part in distribution.distribution], dim=1)
    return distribution.get_actions(deterministic=False)


def resolve_critic_memory(critic_memory: str | None, share_features_extractor: bool) -> str:
    """The critic-memory mode to build: ``None`` means one shared memory, or a separate one when the
    features extractors are separate; a combination that cannot work is a one-line ``ValueError``."""
    if critic_memory is None:
        return "shared" if share_features_extractor else "separate"
    if critic_memory not in CRITIC_MEMORY_MODES:
        raise ValueError(
            f"unknown critic_memory {critic_memory!r}: use one of {', '.join(map(repr, CRITIC_MEMORY_MODES))}"
        )
    if critic_memory in ("shared", "detached") and not share_features_extractor:
        raise ValueError(
            f"critic_memory={critic_memory!r} feeds one memory, which cannot read two features extractors: "
            "with share_features_extractor=False use critic_memory='separate' (or 'none')"
        )
    return critic_memory


class SequenceObservations(NamedTuple):
    """A minibatch of M training sequences of length L, as ``evaluate_actions`` consumes it."""

    observations: PyTorchObs  # flat, sequence-major: [M * L, ...]
    memory_state: MemoryState  # the state before each sequence's first step: [M, ...]
    episode_starts: torch.Tensor  # [M, L]


class MemoryActorCriticPolicy(ActorCriticPolicy):
    """Actor-critic policy whose features pass through a memory.

    :param memory: which memory: ``"tlb"`` (default), ``"lstm"``, ``"gru"``, ``"transformer"``, ``"none"``
    :param memory_kwargs: the memory's own arguments, e.g. ``dict(chunk_size=8, n_latents=4)`` for tlb
    :param critic_memory: what the value head reads:

        - ``"shared"``: the actor's memory output; both losses train the one memory (the default);
        - ``"separate"``: a second memory of the same kind and arguments, trained by the value loss only
          (sb3-contrib's ``enable_critic_lstm=True``); the default when ``share_features_extractor=False``,
          so that, as in SB3, actor and critic share no parameters;
        - ``"detached"``: the actor's memory output without its gradient: only the actor's loss trains the
          memory (sb3-contrib's ``shared_lstm=True``);
        - ``"none"``: the features through a linear layer, no memory (sb3-contrib's
          ``enable_critic_lstm=False, shared_lstm=False``).

        With ``"separate"`` the memory state holds the critic memory's state too, under keys prefixed
        ``critic_``.
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
        critic_memory: str | None = None,
        features_extractor_class: type[BaseFeaturesExtractor] | None = None,
        **kwargs: Any,
    ) -> None:
        self.memory_name = memory
        self.memory_kwargs = dict(memory_kwargs or {})
        self.critic_memory_mode = resolve_critic_memory(
            critic_memory, kwargs.get("share_features_extractor", True)
        )
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
        # Called by ActorCriticPolicy._build before the heads and the optimizer exist: the memories sit
        # between the features and the MLP, and their parameters join the optimizer like the others.
        # ``self.memory`` is the actor's memory (the only one unless critic_memory is "separate").
        self.memory: Memory = make_memory(self.memory_name, self.features_dim, **self.memory_kwargs)
        self.critic_memory: Memory | None = None
        self.critic_features: nn.Module | None = None
        if self.critic_memory_mode == "separate":
            self.critic_memory = make_memory(self.memory_name, self.features_dim, **self.memory_kwargs)
        elif self.critic_memory_mode == "none":
            self.critic_features = nn.Linear(self.features_dim, self.memory.output_dim)
        self.mlp_extractor = MlpExtractor(
            self.memory.output_dim,
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            device=self.device,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            memory=self.memory_name, memory_kwargs=self.memory_kwargs, critic_memory=self.critic_memory_mode
        )
        return data

    # ------------------------------------------------------------------ the memory's inputs and outputs

    def _actor_critic_features(self, obs: PyTorchObs) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.extract_features(obs)
        if self.share_features_extractor:
            return features, features
        return features  # (actor's, critic's): SB3's separate extractors

    def memory_inputs(self, obs: PyTorchObs) -> torch.Tensor:
        """Inputs of the actor's memory (``self.memory``) for a flat batch of observations:
        [B, memory.input_dim]."""
        return self._actor_critic_features(obs)[0]

    def initial_state(self, n_envs: int) -> MemoryState:
        state = self.memory.initial_state(n_envs)
        if self.critic_memory is not None:
            critic_state = self.critic_memory.initial_state(n_envs)
            state = {**state, **{CRITIC_STATE_PREFIX + k: v for k, v in critic_state.items()}}
        return state

    def split_state(self, state: MemoryState) -> tuple[MemoryState, MemoryState]:
        """The policy's memory state as (``self.memory``'s state, ``self.critic_memory``'s state or {})."""
        if self.critic_memory is None:
            return state, {}
        n = len(CRITIC_STATE_PREFIX)
        actor = {k: v for k, v in state.items() if not k.startswith(CRITIC_STATE_PREFIX)}
        critic = {k[n:]: v for k, v in state.items() if k.startswith(CRITIC_STATE_PREFIX)}
        return actor, critic

    def memory_latents(
        self,
        obs: PyTorchObs,
        state: MemoryState,
        episode_starts: torch.Tensor,
        reads: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, MemoryState]:
        """The actor's and the critic's latents (inputs of the MLP extractor) and the next memory state.

        ``episode_starts`` of shape [B] means one step of B streams (``memory.step``); of shape [M, L],
        M sequences of L steps (``memory.sequence``), with ``obs`` flat and sequence-major ([M * L, ...]).
        The latents are flat in both cases: [B or M * L, memory.output_dim]. With a ``reads`` list (one step
        of a memory with ``step_with_reads``, i.e. tlb), the actor's memory appends its step's reads of the
        slow latents to it.
        """
        pi_features, vf_features = self._actor_critic_features(obs)
        actor_state, critic_state = self.split_state(state)

        def run(
            memory: Memory,
            x: torch.Tensor,
            memory_state: MemoryState,
            reads: list[torch.Tensor] | None = None,
        ) -> tuple[torch.Tensor, MemoryState]:
            if episode_starts.dim() == 1:
                if reads is not None:
                    return memory.step_with_reads(x, memory_state, episode_starts, reads)  # type: ignore[operator]
                return memory.step(x, memory_state, episode_starts)
            n_sequences, length = episode_starts.shape
            y, memory_state = memory.sequence(x.view(n_sequences, length, -1), memory_state, episode_starts)
            return y.reshape(n_sequences * length, -1), memory_state

        if reads is not None and not self.has_attention_reads:
            raise ValueError(
                f"memory {self.memory_name} has no attention reads of slow latents: only tlb has them"
            )
        latent_pi, state = run(self.memory, pi_features, actor_state, reads)
        if self.critic_memory is not None:
            latent_vf, critic_state = run(self.critic_memory, vf_features, critic_state)
            state = {**state, **{CRITIC_STATE_PREFIX + k: v for k, v in critic_state.items()}}
        elif self.critic_features is not None:
            latent_vf = self.critic_features(vf_features)
        elif self.critic_memory_mode == "detached":
            latent_vf = latent_pi.detach()
        else:
            latent_vf = latent_pi
        return latent_pi, latent_vf, state

    def _heads(self, latent_pi: torch.Tensor, latent_vf: torch.Tensor) -> tuple[Distribution, torch.Tensor]:
        distribution = self._get_action_dist_from_latent(self.mlp_extractor.forward_actor(latent_pi))
        return distribution, self.value_net(self.mlp_extractor.forward_critic(latent_vf))

    def step_memory(
        self,
        obs: PyTorchObs,
        state: MemoryState,
        episode_starts: torch.Tensor,
        reads: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, MemoryState]:
        """The actor's latent of one step and the next memory state (``reads``: see ``memory_latents``)."""
        latent_pi, _, state = self.memory_latents(obs, state, episode_starts, reads)
        return latent_pi, state

    def memory_diagnostics(self, state: MemoryState) -> dict[str, torch.Tensor]:
        """The actor's memory's ``diagnostics`` of its part of ``state`` (per row [B]; empty for most)."""
        return self.memory.diagnostics(self.split_state(state)[0])

    @property
    def has_attention_reads(self) -> bool:
        """Whether the actor's memory reports its reads of slow latents (``predict_with_reads``): tlb."""
        return callable(getattr(self.memory, "step_with_reads", None))

    # ------------------------------------------------------------------ step mode (rollouts, predict)

    def forward(  # type: ignore[override]
        self,
        obs: PyTorchObs,
        state: MemoryState,
        episode_starts: torch.Tensor,
        deterministic: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, MemoryState]:
        """One environment step: actions, values, log-probabilities and the next memory state. Off the CPU
        it reads no value back to the host (see ``policies.host_sync``): no distribution checks, and
        categorical actions drawn without ``torch.multinomial``'s checks."""
        on_host = host_reads_free(episode_starts)
        with distribution_checks(on_host):
            latent_pi, latent_vf, state = self.memory_latents(obs, state, episode_starts)
            distribution, values = self._heads(latent_pi, latent_vf)
            actions = (
                distribution.get_actions(deterministic)
                if on_host
                else sample_without_sync(distribution, deterministic)
            )
            log_prob = distribution.log_prob(actions)
        return actions.reshape((-1, *self.action_space.shape)), values, log_prob, state

    def predict_values(  # type: ignore[override]
        self, obs: PyTorchObs, state: MemoryState, episode_starts: torch.Tensor
    ) -> torch.Tensor:
        """Values of one step's observations, given the memory state before them."""
        _, latent_vf, _ = self.memory_latents(obs, state, episode_starts)
        return self.value_net(self.mlp_extractor.forward_critic(latent_vf))

    def get_distribution(  # type: ignore[override]
        self,
        obs: PyTorchObs,
        state: MemoryState,
        episode_starts: torch.Tensor,
        reads: list[torch.Tensor] | None = None,
    ) -> tuple[Distribution, MemoryState]:
        latent, state = self.step_memory(obs, state, episode_starts, reads)
        return self._get_action_dist_from_latent(self.mlp_extractor.forward_actor(latent)), state

    def _predict(  # type: ignore[override]
        self,
        observation: PyTorchObs,
        state: MemoryState,
        episode_starts: torch.Tensor,
        deterministic: bool = False,
        reads: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, MemoryState]:
        distribution, state = self.get_distribution(observation, state, episode_starts, reads)
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
        return self._predict_numpy(observation, state, episode_start, deterministic)

    def predict_with_reads(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: NumpyState | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, NumpyState, np.ndarray]:
        """``predict``, plus how much this step read each slow latent of the (tlb) memory: [n_envs, N], each
        step's cross-attention weights over the latents averaged over heads and cross-attention blocks (what
        ``runners.evaluate --attention`` plots). The same step as ``predict``: same actions, same state.

        :raises ValueError: for a memory without slow latents (``has_attention_reads`` false)
        """
        reads: list[torch.Tensor] = []
        actions, state_np = self._predict_numpy(observation, state, episode_start, deterministic, reads)
        return actions, state_np, reads[0].cpu().numpy()

    def _predict_numpy(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: NumpyState | None,
        episode_start: np.ndarray | None,
        deterministic: bool,
        reads: list[torch.Tensor] | None = None,
    ) -> tuple[np.ndarray, NumpyState]:
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
            actions, memory_state = self._predict(obs_tensor, memory_state, starts, deterministic, reads)
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
        latent_pi, latent_vf, _ = self.memory_latents(obs, state, episode_starts)
        distribution, values = self._heads(latent_pi, latent_vf)
        return values, distribution.log_prob(actions), distribution.entropy()


class MemoryActorCriticCnnPolicy(MemoryActorCriticPolicy):
    """``"CnnPolicy"``: image observations through SB3's NatureCNN unless told otherwise."""


class MemoryMultiInputActorCriticPolicy(MemoryActorCriticPolicy):
    """``"MultiInputPolicy"``: Dict observations (the BabyAI encoder for MiniGrid/BabyAI, SB3's
    CombinedExtractor for any other Dict)."""


# The memory argument that RecurrentPPO's ``lstm_hidden_size`` sets: the width of each memory.
WIDTH_ARGUMENTS = ("hidden_size", "d_model")


def recurrent_ppo_memory(
    memory: str = "lstm",
    lstm_hidden_size: int = 256,
    n_lstm_layers: int = 1,
    shared_lstm: bool = False,
    enable_critic_lstm: bool = True,
    lstm_kwargs: dict[str, Any] | None = None,
    memory_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """sb3-contrib's ``RecurrentPPO`` policy arguments as ``MemoryActorCriticPolicy``'s ``memory``,
    ``memory_kwargs`` and ``critic_memory``, for any memory: ``lstm_hidden_size`` is the memory's width
    (``hidden_size`` of lstm and gru, ``d_model`` of tlb and the transformer), ``n_lstm_layers`` its layers,
    ``lstm_kwargs`` the ``nn.LSTM``/``nn.GRU`` arguments, ``memory_kwargs`` its other arguments (they win).
    Used by the Lstm policies and by ``runners.ppo --hyperparams`` for RL Zoo files, so the two agree.

    :raises ValueError: for ``shared_lstm`` with ``enable_critic_lstm``, or ``lstm_kwargs`` for a memory
        that is not recurrent
    """
    if shared_lstm and enable_critic_lstm:
        raise ValueError(
            "shared_lstm=True and enable_critic_lstm=True exclude each other: choose a shared LSTM "
            "(enable_critic_lstm=False), a separate critic LSTM (shared_lstm=False) or neither"
        )
    accepted = memory_parameters(memory)
    kwargs: dict[str, Any] = {}
    for name in WIDTH_ARGUMENTS:
        if name in accepted:
            kwargs[name] = lstm_hidden_size
    if "n_layers" in accepted:
        kwargs["n_layers"] = n_lstm_layers
    if lstm_kwargs:
        if "rnn_kwargs" not in accepted:
            raise ValueError(f"lstm_kwargs apply to the lstm and gru memories, not to memory={memory!r}")
        kwargs["rnn_kwargs"] = dict(lstm_kwargs)
    elif "rnn_kwargs" in accepted:
        kwargs["rnn_kwargs"] = {}
    critic_memory = "detached" if shared_lstm else "separate" if enable_critic_lstm else "none"
    return dict(memory=memory, memory_kwargs={**kwargs, **(memory_kwargs or {})}, critic_memory=critic_memory)


class LstmMemoryActorCriticPolicy(MemoryActorCriticPolicy):
    """``"MlpLstmPolicy"``: sb3-contrib's ``RecurrentActorCriticPolicy`` arguments, with the lstm memory by
    default and any other one with ``memory=`` (``recurrent_ppo_memory`` says how the arguments map), so an
    RL Zoo entry for RecurrentPPO runs with a tlb by adding ``memory='tlb'`` to its ``policy_kwargs``.

    :param lstm_hidden_size: width of the LSTM (RecurrentPPO's default 256); the memory's width for others
    :param n_lstm_layers: number of LSTM layers (of the memory's layers for others)
    :param shared_lstm: one LSTM whose output the critic reads without training it (``critic_memory=
        "detached"``)
    :param enable_critic_lstm: a separate LSTM for the critic (``critic_memory="separate"``), RecurrentPPO's
        default; with neither, the critic reads the features through a linear layer (``"none"``)
    :param lstm_kwargs: further ``nn.LSTM`` arguments (``dropout``, ``bias``)
    :param memory: the memory in place of the LSTM (``"lstm"`` by default)
    :param memory_kwargs: that memory's other arguments (``chunk_size``, ...), winning over the above
    Every other argument is ``MemoryActorCriticPolicy``'s, i.e. SB3's ``ActorCriticPolicy``'s.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[torch.nn.Module] = torch.nn.Tanh,
        *args: Any,
        lstm_hidden_size: int = 256,
        n_lstm_layers: int = 1,
        shared_lstm: bool = False,
        enable_critic_lstm: bool = True,
        lstm_kwargs: dict[str, Any] | None = None,
        memory: str = "lstm",
        memory_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if "critic_memory" in kwargs:
            raise ValueError(
                "the Lstm policies take no critic_memory: use enable_critic_lstm and shared_lstm, or "
                "MlpPolicy/CnnPolicy/MultiInputPolicy with critic_memory=..."
            )
        if shared_lstm and not kwargs.get("share_features_extractor", True):
            raise ValueError(
                "shared_lstm=True needs share_features_extractor=True: one LSTM cannot read two features "
                "extractors; use enable_critic_lstm=True for separate actor and critic networks"
            )
        settings = recurrent_ppo_memory(
            memory,
            lstm_hidden_size,
            n_lstm_layers,
            shared_lstm,
            enable_critic_lstm,
            lstm_kwargs,
            memory_kwargs,
        )
        self.lstm_hidden_size, self.n_lstm_layers = lstm_hidden_size, n_lstm_layers
        self.shared_lstm, self.enable_critic_lstm = shared_lstm, enable_critic_lstm
        self.lstm_kwargs = dict(lstm_kwargs or {})
        super().__init__(
            observation_space, action_space, lr_schedule, net_arch, activation_fn, *args, **settings, **kwargs
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        # memory and memory_kwargs stay: the latter as built (they win over the RecurrentPPO arguments).
        del data["critic_memory"]
        data.update(
            lstm_hidden_size=self.lstm_hidden_size,
            n_lstm_layers=self.n_lstm_layers,
            shared_lstm=self.shared_lstm,
            enable_critic_lstm=self.enable_critic_lstm,
            lstm_kwargs=self.lstm_kwargs,
        )
        return data


class LstmMemoryActorCriticCnnPolicy(LstmMemoryActorCriticPolicy):
    """``"CnnLstmPolicy"``: RecurrentPPO's arguments, image observations through NatureCNN by default."""


class LstmMemoryMultiInputActorCriticPolicy(LstmMemoryActorCriticPolicy):
    """``"MultiInputLstmPolicy"``: RecurrentPPO's arguments, Dict observations."""
