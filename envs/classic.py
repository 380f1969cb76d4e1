"""Non-MiniGrid envs the package registers or adapts: CartPole without velocities (sb3-contrib's memory test
for RecurrentPPO) and observation spaces that SB3 cannot take (POPGym's Tuple observations)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import DtypeObservation, FlattenObservation

CARTPOLE_NO_VELOCITY_ID = "TLB-CartPoleNoVel-v1"
# Ids the RL Zoo registers for the same tasks (its CartPoleNoVel-v1 zeroes the velocities instead of dropping
# them): each is registered here too when absent, and a Zoo hyperparameter file's entry is found under both.
ZOO_ALIASES = {"CartPoleNoVel-v1": CARTPOLE_NO_VELOCITY_ID}


def env_id_aliases(env_id: str) -> list[str]:
    """``env_id`` and the other names of its task (the Zoo's and this package's), ``env_id`` first."""
    names = [env_id]
    for zoo_id, own_id in ZOO_ALIASES.items():
        if env_id in (zoo_id, own_id):
            names += [name for name in (zoo_id, own_id) if name != env_id]
    return names


class CartPoleNoVelocity(gym.ObservationWrapper):
    """CartPole observing only the cart position and the pole angle: the velocities must be remembered.

    The task sb3-contrib tests its RecurrentPPO on (``CartPoleNoVelEnv`` there), as a wrapper so that the
    episode limit of 500 steps and the reward threshold of 475 stay gymnasium's.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        high = env.observation_space.high[[0, 2]]
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[[0, 2]].astype(np.float32)


def make_cartpole_no_velocity(render_mode: str | None = None) -> gym.Env:
    return CartPoleNoVelocity(gym.make("CartPole-v1", render_mode=render_mode))


def register_classic_envs() -> None:
    if CARTPOLE_NO_VELOCITY_ID not in gym.registry:
        gym.register(CARTPOLE_NO_VELOCITY_ID, entry_point=make_cartpole_no_velocity)
    for zoo_id, own_id in ZOO_ALIASES.items():
        if zoo_id not in gym.registry:  # the Zoo's own registration, when rl_zoo3 is imported first, stays
            gym.register(zoo_id, entry_point=gym.registry[own_id].entry_point)


# ---------------------------------------------------------------------- observations SB3 cannot take

SB3_LEAF_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def sb3_takes(space: spaces.Space) -> bool:
    """Whether Stable-Baselines3 takes this observation space as it is: a Box, Discrete, MultiDiscrete or
    MultiBinary, or a Dict of those (not nested)."""
    if isinstance(space, spaces.Dict):
        return all(isinstance(sub, SB3_LEAF_SPACES) for sub in space.spaces.values())
    return isinstance(space, SB3_LEAF_SPACES)


def flatten_if_needed(env: gym.Env) -> gym.Env:
    """``env`` itself when SB3 takes its observations; otherwise (a Tuple, as POPGym's Autoencode gives, or a
    nested Dict) gymnasium's ``FlattenObservation``: one flat float32 Box, discrete parts one-hot.

    :raises ValueError: for spaces that have no flat form (Graph, Sequence)
    """
    if sb3_takes(env.observation_space):
        return env
    try:
        flat = spaces.flatten_space(env.observation_space)
    except NotImplementedError:
        flat = None
    if not isinstance(flat, spaces.Box):  # Sequence and Graph spaces "flatten" to themselves
        raise ValueError(
            f"observation space {env.observation_space} cannot be flattened for Stable-Baselines3: "
            "wrap the env so it gives a Box, Discrete, MultiDiscrete, MultiBinary or Dict of those"
        )
    return DtypeObservation(FlattenObservation(env), np.float32)
