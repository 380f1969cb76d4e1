"""Any gymnasium env through ``envs.make_env``: third-party ids (POPGym) with and without the module prefix,
observation spaces SB3 cannot take flattened, and CartPole without velocities registered."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from envs import CARTPOLE_NO_VELOCITY_ID, make_env, make_vec_env
from envs.classic import flatten_if_needed, sb3_takes

POPGYM_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("popgym-"))


@pytest.mark.parametrize("env_id", ["popgym-RepeatPreviousEasy-v0", "popgym:popgym-RepeatPreviousEasy-v0"])
def test_third_party_ids_with_and_without_the_module_prefix(env_id: str) -> None:
    env = make_env(env_id, seed=0)  # POPGym's envs refuse a render_mode argument, even None
    assert env.observation_space == spaces.Discrete(4)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_an_unknown_module_prefix_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="cannot import module 'popgymm'"):
        make_env("popgymm:popgym-RepeatPreviousEasy-v0")


@pytest.mark.parametrize("env_id", POPGYM_IDS)
def test_every_popgym_observation_space_reaches_sb3_in_a_form_it_takes(env_id: str) -> None:
    env = make_env(env_id, seed=0)
    assert sb3_takes(env.observation_space), env.observation_space
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        assert env.observation_space.contains(
            np.asarray(obs, dtype=getattr(env.observation_space, "dtype", None))
        )
        obs, *_ = env.step(env.action_space.sample())


def test_tuple_observations_flatten_to_one_hot_float_boxes() -> None:
    env = make_env("popgym-AutoencodeEasy-v0", seed=0)
    assert env.observation_space == spaces.Box(0.0, 1.0, (6,), np.float32)  # Discrete(2) + Discrete(4)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs[:2].sum() == 1 and obs[2:].sum() == 1


def test_spaces_without_a_flat_form_are_a_one_line_error() -> None:
    class SequenceEnv(gym.Env):
        observation_space = spaces.Sequence(spaces.Discrete(2))
        action_space = spaces.Discrete(2)

    with pytest.raises(ValueError, match="cannot be flattened for Stable-Baselines3"):
        flatten_if_needed(SequenceEnv())


def test_cartpole_without_velocities_is_registered() -> None:
    env = make_vec_env(CARTPOLE_NO_VELOCITY_ID, n_envs=2, seed=0)
    assert env.observation_space.shape == (2,)
    obs = env.reset()
    full = gym.make("CartPole-v1")
    full_obs, _ = full.reset(seed=0)
    np.testing.assert_allclose(obs[0], full_obs[[0, 2]])  # position and angle, the velocities dropped
    single, limits = make_env(CARTPOLE_NO_VELOCITY_ID), []
    while hasattr(single, "env"):  # CartPole-v1's own 500-step limit sits inside the wrapper
        if isinstance(single, gym.wrappers.TimeLimit):
            limits.append(single._max_episode_steps)
        single = single.env
    assert limits == [500]
