"""The envs package: every MiniGrid/BabyAI id yields observations in its declared space with a tokenizable
mission, resets stay quiet, episodes report ``is_success``, and the factories fit Stable-Baselines3."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import minigrid  # noqa: F401  (registers the ids listed below)
import numpy as np
import pytest
from gymnasium import spaces
from minigrid.core.constants import COLOR_NAMES
from minigrid.envs.babyai.core.verifier import LOC_NAMES, OBJ_TYPES
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from envs import (
    MAX_MISSION_TOKENS,
    MISSION_VOCABULARY,
    PAD_ID,
    VOCAB_SIZE,
    MissionTokenObsWrapper,
    SuccessInfoWrapper,
    detokenize,
    is_minigrid_env_id,
    make_env,
    make_vec_env,
    tokenize_mission,
)

BABYAI_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("BabyAI-"))
MINIGRID_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("MiniGrid-"))
N_RANDOM_STEPS = 4
REJECTION_MESSAGES = ("Sampling rejected", "Timeout during mission generation")


def normalise(mission: str) -> str:
    """A mission as ``detokenize`` writes it: lower case, single spaces."""
    return " ".join(mission.lower().split())


def missing_resources(env: gym.Env) -> str | None:
    """Why the env cannot reset here, if it cannot: minigrid 3.2.0's wheel lacks the WFC pattern images."""
    config = getattr(env.unwrapped, "config", None)
    pattern_path = getattr(config, "pattern_path", None)
    if pattern_path is not None and not pattern_path.exists():
        return f"the installed minigrid lacks the WFC pattern image {pattern_path.name}"
    return None


def check_episode_start_and_steps(env_id: str, seed: int) -> None:
    """Reset with ``seed``, take a few random steps; every observation must be in the declared space and its
    mission tokens must spell the env's mission."""
    env = make_env(env_id)
    try:
        reason = missing_resources(env)
        if reason is not None:
            pytest.skip(reason)
        assert isinstance(env, MissionTokenObsWrapper)
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        for step in range(N_RANDOM_STEPS + 1):
            assert env.observation_space.contains(obs), f"{env_id} seed {seed} step {step}: {obs}"
            assert detokenize(obs["mission"]) == normalise(env.unwrapped.mission)
            obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                obs, _ = env.reset()
        assert env.observation_space.contains(obs)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", BABYAI_IDS)
def test_babyai_observations_in_space(env_id: str) -> None:
    for seed in range(3):
        check_episode_start_and_steps(env_id, seed)


@pytest.mark.parametrize("env_id", MINIGRID_IDS)
def test_minigrid_observations_in_space(env_id: str) -> None:
    for seed in range(2):
        check_episode_start_and_steps(env_id, seed)


@pytest.mark.parametrize("env_id", MINIGRID_IDS)
def test_minigrid_mission_space_words_known(env_id: str) -> None:
    """Every mission the env's mission space can describe tokenizes (this also covers the WFC envs, which
    cannot reset here)."""
    env = gym.make(env_id)
    mission_space = env.unwrapped.observation_space["mission"]
    mission_space.seed(0)
    for _ in range(20):
        tokenize_mission(mission_space.sample())
    env.close()


def test_registered_ids_found() -> None:
    assert len(BABYAI_IDS) >= 96
    assert len(MINIGRID_IDS) >= 80


def test_babyai_grammar_words_in_vocabulary() -> None:
    """The words of the BabyAI grammar (verifier.py) are all there, however rare a level makes them."""
    grammar_words = {*COLOR_NAMES, *OBJ_TYPES, *LOC_NAMES, "object", "a", "the", "in", "of", "you", "your"}
    grammar_words |= set("go to pick up open put next and , then after behind on".split())
    assert grammar_words <= set(MISSION_VOCABULARY)


# check_env takes any (H, W, 3) uint8 Box for an image and warns about its bounds and size; the bounds are
# the cell codes' on purpose (see MissionTokenObsWrapper) and the encoder is not SB3's CnnPolicy.
EXPECTED_CHECK_ENV_WARNINGS = (
    "ignore:It seems that your observation space image is an image:UserWarning",
    "ignore:The minimal resolution for an image:UserWarning",
)
CHECK_ENV_IDS = [
    "BabyAI-GoToLocal-v0",
    "BabyAI-BossLevel-v0",
    "MiniGrid-MemoryS7-v0",
    "MiniGrid-DoorKey-5x5-v0",
]


@pytest.mark.filterwarnings(*EXPECTED_CHECK_ENV_WARNINGS)
@pytest.mark.parametrize("env_id", CHECK_ENV_IDS)
def test_sb3_check_env(env_id: str) -> None:
    env = make_env(env_id)
    check_env(env, warn=True, skip_render_check=True)
    env.close()


def test_observation_space_layout() -> None:
    env = make_env("BabyAI-GoToLocal-v0", agent_view_size=5)
    space = env.observation_space
    assert list(space.spaces) == ["image", "direction", "mission"]
    image = space["image"]
    assert image.shape == (5, 5, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image.high[0, 0], [10, 5, 2])
    # Not an image for SB3, which would otherwise transpose it and divide it by 255.
    assert not is_image_space(image)
    assert space["direction"] == spaces.Discrete(4)
    assert space["mission"].shape == (MAX_MISSION_TOKENS,) and space["mission"].dtype == np.int64
    assert space["mission"].high.max() == VOCAB_SIZE - 1
    env.close()


# --- tokenizer ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mission",
    [
        "go to the red ball",
        "pick up a box on your left, then open the purple door behind you",
        "put the grey key in front of you next to a ball after you go to the door and pick up the object",
        "get the red key from the blue room, unlock the red door and go to the goal",
        "traverse the maze to get to the goal",
        "",
    ],
)
def test_tokenize_round_trip(mission: str) -> None:
    tokens = tokenize_mission(mission)
    assert tokens.shape == (MAX_MISSION_TOKENS,) and tokens.dtype == np.int64
    assert detokenize(tokens) == normalise(mission)


def test_tokenize_lower_cases_and_pads() -> None:
    tokens = tokenize_mission("Go To The Red Ball", max_tokens=8)
    np.testing.assert_array_equal(tokens[5:], [PAD_ID] * 3)
    assert (tokens[:5] != PAD_ID).all()
    assert detokenize(tokens) == "go to the red ball"


def test_tokenize_unknown_word() -> None:
    with pytest.raises(ValueError, match="unknown mission word 'foo' in mission 'go to the foo'"):
        tokenize_mission("go to the foo")


def test_tokenize_too_long() -> None:
    with pytest.raises(ValueError, match="5 tokens, more than the limit of 4"):
        tokenize_mission("go to the red ball", max_tokens=4)


def test_longest_grammar_mission_fits() -> None:
    """The longest mission BabyAI's level generator can write has exactly MAX_MISSION_TOKENS tokens."""
    put = "put the red ball in front of you next to the grey key in front of you"
    both = f"{put} and {put}"
    for joined in (f"{both}, then {both}", f"{both} after you {both}"):
        tokens = tokenize_mission(joined)
        assert (tokens != PAD_ID).sum() == MAX_MISSION_TOKENS


def test_vocabulary() -> None:
    assert len(set(MISSION_VOCABULARY)) == len(MISSION_VOCABULARY)
    assert VOCAB_SIZE == len(MISSION_VOCABULARY) + 1
    assert all(word == word.lower() and word.strip() == word and word for word in MISSION_VOCABULARY)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        detokenize([VOCAB_SIZE])


# --- quiet resets -------------------------------------------------------------------------------------------

# Levels and seeds whose generation rejects samples (checked on minigrid 3.2.0; the test only needs one).
NOISY_LEVELS = {
    "BabyAI-PutNextLocalS5N3-v0": range(10),  # "Sampling rejected: objs already next to each other"
    "BabyAI-SynthS5R2-v0": [4, 17],  # "Timeout during mission generation: rejection sampling failed"
}


@pytest.mark.parametrize("env_id", list(NOISY_LEVELS))
def test_rejection_sampling_kept_off_stdout(env_id: str, capfd: pytest.CaptureFixture[str]) -> None:
    seeds = NOISY_LEVELS[env_id]
    raw = gym.make(env_id)
    for seed in seeds:
        raw.reset(seed=seed)
    printed = capfd.readouterr().out
    # Without this the test could not catch a leak: the level must print when it is not wrapped.
    assert any(message in printed for message in REJECTION_MESSAGES), f"{env_id} prints nothing now"

    env = make_env(env_id)
    for seed in seeds:
        env.reset(seed=seed)
    captured = capfd.readouterr()
    for message in REJECTION_MESSAGES:
        assert message not in captured.out and message not in captured.err


# --- is_success ---------------------------------------------------------------------------------------------


def test_is_success_on_reaching_the_goal() -> None:
    env = make_env("MiniGrid-Empty-5x5-v0", seed=0)  # agent at (1, 1) facing right, goal at (3, 3)
    actions = env.unwrapped.actions
    plan = [actions.forward, actions.forward, actions.right, actions.forward, actions.forward]
    for action in plan[:-1]:
        _, _, terminated, truncated, info = env.step(action)
        assert not (terminated or truncated) and "is_success" not in info
    _, reward, terminated, _, info = env.step(plan[-1])
    assert terminated and reward > 0 and info["is_success"] is True


def test_is_success_false_on_truncation() -> None:
    env = make_env("MiniGrid-Empty-5x5-v0", seed=0, max_steps=2)
    env.step(env.unwrapped.actions.left)
    _, _, terminated, truncated, info = env.step(env.unwrapped.actions.left)
    assert truncated and not terminated and info["is_success"] is False


class FailingEnv(gym.Env):
    """Terminates at once with zero reward, as a BabyAI level does when a strict instruction fails."""

    observation_space = spaces.Discrete(1)
    action_space = spaces.Discrete(1)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        return 0, {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict]:
        return 0, 0.0, True, False, {}


def test_is_success_false_on_termination_without_reward() -> None:
    env = SuccessInfoWrapper(FailingEnv())
    env.reset()
    assert env.step(0)[4]["is_success"] is False


# --- factories ----------------------------------------------------------------------------------------------


def test_make_env_unknown_id() -> None:
    expected = "unknown env id 'BabyAI-GoToLocl-v0'; did you mean BabyAI-GoToLocal-v0"
    with pytest.raises(ValueError, match=expected):
        make_env("BabyAI-GoToLocl-v0")


def test_make_env_passes_other_envs_through() -> None:
    env = make_env("CartPole-v1", seed=0)
    assert env.observation_space == gym.make("CartPole-v1").observation_space
    assert not isinstance(env, MissionTokenObsWrapper)
    assert not is_minigrid_env_id("CartPole-v1") and is_minigrid_env_id("BabyAI-GoToLocal-v0")


def test_make_env_seed_is_reproducible() -> None:
    first, second = make_env("BabyAI-GoToLocal-v0", seed=3), make_env("BabyAI-GoToLocal-v0", seed=3)
    assert first.unwrapped.mission == second.unwrapped.mission
    assert first.action_space.sample() == second.action_space.sample()


def run_until_an_episode_ends(vec_env: VecEnv, max_steps: int = 500) -> dict:
    """Step random actions until some env's episode ends; return that env's info."""
    vec_env.action_space.seed(0)
    for _ in range(max_steps):
        actions = np.array([vec_env.action_space.sample() for _ in range(vec_env.num_envs)])
        _, _, dones, infos = vec_env.step(actions)
        for done, info in zip(dones, infos):
            if done:
                return info
    raise AssertionError(f"no episode ended in {max_steps} steps")


def test_make_vec_env_dummy() -> None:
    vec_env = make_vec_env("BabyAI-GoToLocal-v0", n_envs=2, seed=0)
    assert isinstance(vec_env, DummyVecEnv)
    obs = vec_env.reset()
    assert obs["image"].shape == (2, 7, 7, 3) and obs["image"].dtype == np.uint8
    assert obs["direction"].shape == (2,)
    assert obs["mission"].shape == (2, MAX_MISSION_TOKENS)
    info = run_until_an_episode_ends(vec_env)
    assert "episode" in info and isinstance(info["is_success"], bool)
    assert info["episode"]["is_success"] == info["is_success"]
    vec_env.close()


def test_make_vec_env_other_env() -> None:
    vec_env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    vec_env.reset()
    info = run_until_an_episode_ends(vec_env)
    assert "episode" in info and "is_success" not in info["episode"]
    vec_env.close()


@pytest.mark.slow
def test_make_vec_env_subprocess() -> None:
    vec_env = make_vec_env("BabyAI-GoToLocal-v0", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv)
    try:
        obs = vec_env.reset()
        assert obs["mission"].shape == (2, MAX_MISSION_TOKENS)
        _, _, _, infos = vec_env.step(np.zeros(2, dtype=np.int64))
        assert len(infos) == 2
    finally:
        vec_env.close()


class NeverBuiltVecEnv(DummyVecEnv):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the env id should be checked before any env is built")


def test_make_vec_env_validates_first() -> None:
    with pytest.raises(ValueError, match="did you mean BabyAI-GoToLocal-v0"):
        make_vec_env("BabyAI-GoToLocl-v0", n_envs=2, vec_env_cls=NeverBuiltVecEnv)
    with pytest.raises(ValueError, match="n_envs must be at least 1"):
        make_vec_env("BabyAI-GoToLocal-v0", n_envs=0, vec_env_cls=NeverBuiltVecEnv)
