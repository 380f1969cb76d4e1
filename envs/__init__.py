"""MiniGrid/BabyAI envs for Stable-Baselines3: a fixed mission vocabulary, wrappers that give numeric
observations and ``is_success``, and env factories."""

from envs.make import is_minigrid_env_id, make_env, make_vec_env, wrap_for_sb3
from envs.vocabulary import (
    MAX_MISSION_TOKENS,
    MISSION_VOCABULARY,
    PAD_ID,
    VOCAB_SIZE,
    detokenize,
    tokenize_mission,
)
from envs.wrappers import MissionTokenObsWrapper, PreviousActionRewardWrapper, SuccessInfoWrapper

__all__ = [
    "MAX_MISSION_TOKENS",
    "MISSION_VOCABULARY",
    "PAD_ID",
    "VOCAB_SIZE",
    "MissionTokenObsWrapper",
    "PreviousActionRewardWrapper",
    "SuccessInfoWrapper",
    "detokenize",
    "is_minigrid_env_id",
    "make_env",
    "make_vec_env",
    "tokenize_mission",
    "wrap_for_sb3",
]

# The custom levels, CartPole without velocities and the Passive T-Maze register their gymnasium ids on
# import, so ``make_env`` can make them in any process; so do POPGym's envs (``popgym-RepeatPreviousEasy-v0``,
# ...), a dependency.
import popgym  # noqa: E402, F401

from envs.classic import CARTPOLE_NO_VELOCITY_ID, register_classic_envs  # noqa: E402

register_classic_envs()
from envs.tmaze import (  # noqa: E402
    PASSIVE_TMAZE_ID,
    PASSIVE_TMAZE_LENGTHS,
    passive_tmaze_id,
    register_tmaze_envs,
)

register_tmaze_envs()
from envs.benchmark import Benchmark, BenchmarkTask, list_benchmarks, load_benchmark  # noqa: E402
from envs.levels import HELD_OUT_PAIRS, HELD_OUT_PAIRS_TEST_ID, HELD_OUT_PAIRS_TRAIN_ID  # noqa: E402
from envs.suites import SeedCycleWrapper, Suite, SuiteSide, get_suite, list_suites  # noqa: E402

__all__ += [
    "Benchmark",
    "BenchmarkTask",
    "list_benchmarks",
    "load_benchmark",
    "CARTPOLE_NO_VELOCITY_ID",
    "HELD_OUT_PAIRS",
    "PASSIVE_TMAZE_ID",
    "PASSIVE_TMAZE_LENGTHS",
    "passive_tmaze_id",
    "HELD_OUT_PAIRS_TEST_ID",
    "HELD_OUT_PAIRS_TRAIN_ID",
    "SeedCycleWrapper",
    "Suite",
    "SuiteSide",
    "get_suite",
    "list_suites",
]
