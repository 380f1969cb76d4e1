"""Generalization suites: held-out sides never share a level with training, envs are only ever reset with
their side's seeds (whatever seed Stable-Baselines3 passes), held-out-pairs splits its instructions, and
every side of every suite generates levels."""

from __future__ import annotations

import importlib
import re
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import envs.levels
from envs import HELD_OUT_PAIRS, SeedCycleWrapper, SuiteSide, get_suite, list_suites, make_env
from envs.levels import HELD_OUT_PAIRS_TEST_ID, HELD_OUT_PAIRS_TRAIN_ID, register_levels
from envs.suites import HELDOUT_SEED_START

UNSEEN_SEEDS_ENV = "BabyAI-GoToLocal-v0"
PAIR = re.compile(r"\b(red|green|blue|purple|yellow|grey) (ball|box|key)\b")


def all_suites() -> list[Any]:
    return [get_suite(name, UNSEEN_SEEDS_ENV) for name in list_suites()]


def overlap(a: range, b: range) -> bool:
    return a.step == b.step == 1 and max(a.start, b.start) < min(a.stop, b.stop)


class SeedSpy(gym.Wrapper):
    """Records the seed of every reset that reaches the env."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.seeds: list[int | None] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        self.seeds.append(seed)
        return self.env.reset(seed=seed, options=options)


# ---------------------------------------------------------------------- seeds


@pytest.mark.parametrize("suite", all_suites(), ids=lambda suite: suite.name)
def test_heldout_seeds_are_disjoint_from_training_seeds(suite: Any) -> None:
    assert suite.train.name == "train" and suite.sides()[0] is suite.train
    assert suite.train.seeds.start == 0 and suite.train.seeds.step == 1
    assert suite.heldout and [side.name for side in suite.heldout] == [
        side.name for side in suite.sides()[1:]
    ]
    for side in suite.heldout:
        assert side.seeds.step == 1 and side.seeds.start >= HELDOUT_SEED_START
        assert not overlap(suite.train.seeds, side.seeds)
        assert side.seeds[-1] < 2**32  # numpy can seed with every one of them
        assert side.describe_seeds() == f"{side.seeds[0]}-{side.seeds[-1]}"


def test_seed_cycle_wrapper_resets_only_with_its_seeds() -> None:
    spy = SeedSpy(make_env("MiniGrid-Empty-5x5-v0"))
    env = SeedCycleWrapper(spy, range(10, 13))
    levels = [env.reset()[1]["level_seed"] for _ in range(4)]
    assert levels == [10, 11, 12, 10]
    env.reset(seed=5)  # an explicit seed only picks where the cycle starts: 5 % 3 = 2
    env.reset(seed=123_456_789_000)
    env.reset()
    assert spy.seeds == [10, 11, 12, 10, 12, 10 + 123_456_789_000 % 3, 11]
    with pytest.raises(ValueError, match="at least one seed"):
        SeedCycleWrapper(make_env("MiniGrid-Empty-5x5-v0"), range(0))


@pytest.mark.parametrize("vec_seed", [0, 7, 2**31 + 5])
def test_vec_env_seeding_never_leaks_a_seed_outside_the_side(vec_seed: int) -> None:
    """SB3 seeds env rank with ``seed + rank`` at the first reset and not at all at the automatic resets;
    neither may reach the env: every rank resets only with its share of the side's seeds."""
    side = SuiteSide("train", "MiniGrid-Empty-5x5-v0", range(0, 5))
    vec_env = side.make_vec_env(2, seed=vec_seed)
    spies = []
    for rank, monitor in enumerate(vec_env.envs):  # type: ignore[attr-defined]
        cycle = monitor.env
        assert isinstance(cycle, SeedCycleWrapper) and cycle.seeds == side.seeds[rank::2]
        cycle.env = SeedSpy(cycle.env)
        spies.append(cycle.env)
    vec_env.seed(vec_seed + 1)  # SB3's own seeding, once more
    vec_env.reset()
    rng = np.random.default_rng(0)
    for _ in range(300):  # random actions: episodes of Empty-5x5 end by success or after 100 steps
        vec_env.step(rng.integers(0, 3, size=2))
    vec_env.close()
    for rank, spy in enumerate(spies):
        assert len(spy.seeds) >= 3, "the loop should cover several episodes"
        assert set(spy.seeds) <= set(side.seeds[rank::2])
    assert not set(spies[0].seeds) & set(spies[1].seeds)


@pytest.mark.slow
def test_subprocess_envs_reset_with_the_side_seeds() -> None:
    side = get_suite("unseen-seeds", "MiniGrid-Empty-5x5-v0").heldout[0]
    vec_env = side.make_vec_env(2, seed=3, vec_env_cls=SubprocVecEnv)
    try:
        vec_env.reset()
        seeds = [info["level_seed"] for info in vec_env.reset_infos]
    finally:
        vec_env.close()
    assert seeds == [side.seeds[0::2][3], side.seeds[1::2][4]]


def test_more_envs_than_seeds_is_a_clear_error() -> None:
    side = SuiteSide("train", "MiniGrid-Empty-5x5-v0", range(0, 2))
    with pytest.raises(ValueError, match="fewer than the 3 envs"):
        side.make_vec_env(3)
    with pytest.raises(ValueError, match="at least 1"):
        side.make_vec_env(0)


# ---------------------------------------------------------------------- held-out pairs


def missions(env_id: str, seeds: range) -> list[str]:
    env = make_env(env_id)
    try:
        result = []
        for seed in seeds:
            env.reset(seed=seed)
            result.append(env.unwrapped.mission)  # type: ignore[attr-defined]
        return result
    finally:
        env.close()


def pair_of(mission: str) -> tuple[str, str]:
    match = PAIR.search(mission)
    assert match is not None, f"no color/type pair in {mission!r}"
    return match.group(1), match.group(2)


def test_held_out_pairs_split_the_instructions() -> None:
    suite = get_suite("held-out-pairs")
    assert suite.train.env_id == HELD_OUT_PAIRS_TRAIN_ID
    assert [side.env_id for side in suite.heldout] == [HELD_OUT_PAIRS_TEST_ID]
    train_pairs = [pair_of(mission) for mission in missions(HELD_OUT_PAIRS_TRAIN_ID, range(0, 200))]
    test_pairs = [pair_of(mission) for mission in missions(HELD_OUT_PAIRS_TEST_ID, range(10**9, 10**9 + 200))]
    assert not set(train_pairs) & HELD_OUT_PAIRS
    assert set(test_pairs) <= HELD_OUT_PAIRS
    assert set(test_pairs) == HELD_OUT_PAIRS  # 200 levels ask for every held-out pair
    # Every color and every type is instructed in training, only not in the held-out combinations.
    assert {color for color, _ in train_pairs} == {color for color, _ in HELD_OUT_PAIRS}
    assert {kind for _, kind in train_pairs} == {kind for _, kind in HELD_OUT_PAIRS}


def test_level_registration_is_idempotent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_levels()
        importlib.reload(envs.levels)
    assert gym.registry[HELD_OUT_PAIRS_TRAIN_ID].kwargs == {"split": "train"}
    with pytest.raises(ValueError, match="unknown split"):
        envs.levels.GoToLocalHeldOutPairs(split="validation")


# ---------------------------------------------------------------------- every side generates levels


@pytest.mark.parametrize(
    "side",
    [side for suite in all_suites() for side in suite.sides()],
    ids=lambda side: f"{side.name}:{side.env_id}",
)
def test_every_side_generates_levels(side: SuiteSide) -> None:
    vec_env = side.make_vec_env(1, seed=0, vec_env_cls=DummyVecEnv)
    try:
        obs = vec_env.reset()
        first = {key: value[0] for key, value in obs.items()} if isinstance(obs, dict) else obs[0]
        assert vec_env.observation_space.contains(first)
        assert vec_env.reset_infos[0]["level_seed"] in side.seeds
        vec_env.step(np.array([2]))
    finally:
        vec_env.close()


# ---------------------------------------------------------------------- names and errors


def test_list_suites_describes_each_suite_in_one_line() -> None:
    suites = list_suites()
    assert {"unseen-seeds", "memory-length", "more-distractors", "room-to-maze", "held-out-pairs"} <= set(
        suites
    )
    for name, description in suites.items():
        assert description.strip() and "\n" not in description
        assert get_suite(name, UNSEEN_SEEDS_ENV).name == name


def test_unknown_suite_lists_the_known_ones() -> None:
    with pytest.raises(ValueError) as error:
        get_suite("memory-lenght")
    message = str(error.value)
    assert "\n" not in message and all(name in message for name in list_suites())


def test_unseen_seeds_needs_an_env() -> None:
    with pytest.raises(ValueError, match="--env"):
        get_suite("unseen-seeds")
    with pytest.raises(ValueError, match="BabyAI-GoToLocal-v0"):
        get_suite("unseen-seeds", "BabyAI-GoToLocl-v0")
    suite = get_suite("unseen-seeds", UNSEEN_SEEDS_ENV)
    assert suite.train.seeds == range(0, 1000) and suite.heldout[0].env_id == UNSEEN_SEEDS_ENV
