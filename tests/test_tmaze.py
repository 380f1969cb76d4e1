"""The Passive T-Maze's dynamics as Ni et al. (2023) define them: the cue only at the first step, the reward
only at the last, an episode of exactly L + 1 steps, a penalty of -1/L per step behind schedule."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs import PASSIVE_TMAZE_ID, PASSIVE_TMAZE_LENGTHS, make_env, passive_tmaze_id
from envs.suites import get_suite
from envs.tmaze import EAST, NORTH, SOUTH, WEST, PassiveTMaze


def run_episode(
    env: gym.Env, actions: list[int], seed: int
) -> tuple[list[np.ndarray], list[float], list[dict]]:
    """Observations (the reset's first), rewards and infos of an episode that must end at the last action."""
    obs, _ = env.reset(seed=seed)
    observations, rewards, infos = [obs], [], []
    for t, action in enumerate(actions):
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        assert not truncated
        assert terminated == (t == len(actions) - 1), (
            f"step {t + 1} of {len(actions)}: terminated={terminated}"
        )
    return observations, rewards, infos


def optimal_actions(length: int, cue: float) -> list[int]:
    return [EAST] * length + [NORTH if cue > 0 else SOUTH]


def test_passes_gymnasiums_env_checker() -> None:
    check_env(PassiveTMaze(corridor_length=5), skip_render_check=True)


@pytest.mark.parametrize("length", [1, 4, 10])
def test_the_cue_shows_only_at_the_first_step(length: int) -> None:
    env = PassiveTMaze(corridor_length=length)
    for seed in range(6):
        observations, _, _ = run_episode(env, optimal_actions(length, env.reset(seed=seed)[0][1]), seed)
        assert observations[0][0] == 0 and observations[0][1] in (-1, 1)
        for obs in observations[1:length]:  # the corridor after the start: no cue
            np.testing.assert_array_equal(obs, [0, 0])
        np.testing.assert_array_equal(observations[length], [1, 0])  # the junction


def test_both_cues_occur_and_the_seed_decides_them() -> None:
    env = PassiveTMaze(corridor_length=3)
    cues = [env.reset(seed=seed)[0][1] for seed in range(40)]
    assert set(cues) == {-1.0, 1.0}
    assert cues == [env.reset(seed=seed)[0][1] for seed in range(40)]


@pytest.mark.parametrize("length", [1, 7, 30])
def test_the_optimal_walk_earns_one_only_at_the_last_step(length: int) -> None:
    env = PassiveTMaze(corridor_length=length)
    for seed in range(4):
        cue = env.reset(seed=seed)[0][1]
        _, rewards, infos = run_episode(env, optimal_actions(length, cue), seed)
        assert len(rewards) == length + 1
        assert rewards == [0.0] * length + [1.0]
        assert infos[-1]["is_success"] is True
        assert all("is_success" not in info for info in infos[:-1])


def test_the_wrong_goal_earns_nothing_and_is_no_success() -> None:
    env = PassiveTMaze(corridor_length=5)
    cue = env.reset(seed=3)[0][1]
    _, rewards, infos = run_episode(env, optimal_actions(5, -cue), seed=3)
    assert rewards == [0.0] * 6 and infos[-1]["is_success"] is False


def test_steps_behind_schedule_cost_one_over_l_and_the_episode_still_ends_after_l_plus_one() -> None:
    length = 10
    env = PassiveTMaze(corridor_length=length)
    # West into the wall at the start, then north (a wall in the corridor): two steps behind, for good.
    actions = [WEST, NORTH] + [EAST] * (length - 1)
    observations, rewards, infos = run_episode(env, actions, seed=0)
    assert len(actions) == length + 1
    np.testing.assert_allclose(rewards[:-1], [-0.1] * length)  # every step ended behind schedule
    assert rewards[-1] == 0.0 and infos[-1]["is_success"] is False  # the junction was not even reached
    assert np.sum(rewards) >= -1.0


def test_walls_keep_the_agent_in_the_maze() -> None:
    env = PassiveTMaze(corridor_length=2)
    env.reset(seed=0)
    env.step(SOUTH)  # the corridor has walls north and south
    assert (env.x, env.y) == (0, 0)
    env.step(EAST)
    env.step(EAST)
    assert (env.x, env.y) == (2, 0)
    env.step(EAST)  # the junction's east side is a wall
    assert (env.x, env.y) == (2, 0)


def test_registered_ids_and_the_keyword_form() -> None:
    for length in PASSIVE_TMAZE_LENGTHS:
        env = gym.make(passive_tmaze_id(length))
        assert env.unwrapped.corridor_length == length
    env = gym.make(PASSIVE_TMAZE_ID, corridor_length=42)
    assert env.unwrapped.episode_length == 43


def test_make_env_gives_sb3_a_box_and_the_success_flag() -> None:
    env = make_env(passive_tmaze_id(10), seed=0)
    assert env.observation_space.shape == (2,)
    cue = env.reset(seed=0)[0][1]
    *_, infos = run_episode(env, optimal_actions(10, cue), seed=0)
    assert infos[-1]["is_success"] is True


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_a_bad_corridor_length_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="corridor_length must be a positive integer"):
        PassiveTMaze(corridor_length=bad)  # type: ignore[arg-type]


def test_the_tmaze_length_suite_trains_at_30_and_holds_out_2x_and_4x_longer_corridors() -> None:
    suite = get_suite("tmaze-length")
    lengths = {side.name: side.make_env().unwrapped.corridor_length for side in suite.sides()}
    assert lengths == {"train": 30, "TMaze60": 60, "TMaze120": 120}
    env = suite.heldout[1].make_env()
    env.reset()
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(0)  # east, into the wall at the junction
        steps, done = steps + 1, terminated or truncated
    assert steps == 121
