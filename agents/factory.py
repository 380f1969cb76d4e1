"""The one place a runner's MemoryPPO model is built: ``build_model(env, memory=..., ...)``.

``runners.ppo`` trains the model it returns; ``runners.bc`` and the BC benchmark build the same model (the
PPO hyperparameters at ``PPOHyperparameters()``'s defaults) so that ``runners.ppo --init-from`` loads their
weights into a model of identical shapes. The command-line defaults of ``runners.ppo`` are read from
``PPOHyperparameters`` too, so the two never drift apart.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
from gymnasium import spaces
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.vec_env import VecEnv

from agents.ppo import MemoryPPO
from policies.encoder import default_features_extractor

DEFAULT_FEATURES_DIM = 128


@dataclass(frozen=True)
class PPOHyperparameters:
    """The PPO settings of a runner's model, with ``runners.ppo``'s defaults (tuned on BabyAI-GoToLocal:
    16 envs x 128 steps per rollout, minibatches of 256 steps in sequences of 32)."""

    learning_rate: float | Schedule = 5e-4
    n_steps: int = 128
    batch_size: int = 256
    n_epochs: int = 4
    sequence_length: int | str | None = 32
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float | Schedule = 0.2
    clip_range_vf: float | Schedule | None = None
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    normalize_advantage: bool = True


def policy_name(observation_space: spaces.Space) -> str:
    """The policy alias for a space. The policy picks its encoder from the space itself (BabyAI encoder,
    NatureCNN, ...); SB3 only insists that Dict spaces use the ``"MultiInputPolicy"`` name."""
    return "MultiInputPolicy" if isinstance(observation_space, spaces.Dict) else "MlpPolicy"


def build_model(
    env: VecEnv | gym.Env,
    memory: str = "tlb",
    memory_kwargs: dict[str, Any] | None = None,
    features_dim: int = DEFAULT_FEATURES_DIM,
    encoder_channels: int | None = None,
    hyperparameters: PPOHyperparameters | None = None,
    seed: int | None = 0,
    device: str = "auto",
    policy_kwargs: dict[str, Any] | None = None,
    **ppo_kwargs: Any,
) -> MemoryPPO:
    """A MemoryPPO model with a memory policy, as the runners build it.

    :param env: the training env (a model only given its spaces can take any env of those spaces)
    :param memory: ``"tlb"``, ``"lstm"``, ``"gru"``, ``"transformer"`` or ``"none"``
    :param memory_kwargs: the memory's own arguments (defaults for those left out)
    :param features_dim: output width of the observation encoder (the BabyAI encoder, NatureCNN); vector
        observations go to the memory as they are (SB3's ``FlattenExtractor``)
    :param encoder_channels: width of the BabyAI encoder's cell embeddings and convolutions (MiniGrid/BabyAI
        observations only); None keeps its default. The convolutions are most of a small memory's training
        time, so a narrower encoder is the cheap lever on a CPU.
    :param hyperparameters: PPO settings; ``PPOHyperparameters()`` when not given
    :param seed: the model's seed
    :param device: torch device
    :param policy_kwargs: more policy arguments (``net_arch``, ``ortho_init``, ``activation_fn``, ...)
    :param ppo_kwargs: any other ``MemoryPPO`` argument (``verbose``, ``tensorboard_log``, ...)
    :raises ValueError: one line, for settings the memory or MemoryPPO refuse
    """
    all_policy_kwargs: dict[str, Any] = dict(
        memory=memory, memory_kwargs=dict(memory_kwargs or {}), **(policy_kwargs or {})
    )
    extractor = default_features_extractor(env.observation_space)
    extractor_parameters = inspect.signature(extractor.__init__).parameters
    extractor_kwargs: dict[str, Any] = {}
    # SB3's FlattenExtractor (vector observations) has no width to set: its output is the observation.
    if "features_dim" in extractor_parameters:
        extractor_kwargs["features_dim"] = features_dim
    if encoder_channels is not None:
        if "channels" not in extractor_parameters:
            raise ValueError(
                f"encoder channels apply to the BabyAI encoder of MiniGrid/BabyAI observations, but these "
                f"observations use {extractor.__name__}: leave encoder_channels (--encoder-channels) unset"
            )
        extractor_kwargs["channels"] = encoder_channels
    if extractor_kwargs:
        all_policy_kwargs["features_extractor_kwargs"] = extractor_kwargs
    return MemoryPPO(
        policy_name(env.observation_space),
        env,
        **asdict(hyperparameters or PPOHyperparameters()),
        policy_kwargs=all_policy_kwargs,
        seed=seed,
        device=device,
        **ppo_kwargs,
    )
