"""Named generalization suites: a training side and held-out sides that never share a level.

A level is what an env generates at a reset with a given seed, so each side of a suite owns a range of reset
seeds, and ``SeedCycleWrapper`` makes sure an env of that side is only ever reset with one of them. Training
sides draw from seeds 0, 1, ...; held-out sides from 1_000_000_000 on (as BabyAI validates), so even a suite
whose sides use the same env id (``unseen-seeds``) never tests on a training level.

* ``unseen-seeds``: ENV (the user's choice) on 1000 levels (seeds 0-999), tested on levels of unseen seeds;
* ``memory-length``: MiniGrid-MemoryS7-v0, tested on the longer corridors of MemoryS9, S11 and S13;
* ``tmaze-length``: the Passive T-Maze at memory length 30, tested at 60 and 120 (2x and 4x longer);
* ``more-distractors``: BabyAI-GoToLocalS8N2-v0, tested with 4 to 7 distractors (GoToLocalS8N4 ... N7);
* ``room-to-maze``: BabyAI-GoToLocal-v0 (one room), tested on BabyAI-GoTo-v0 (a 3x3 maze of rooms);
* ``held-out-pairs``: GoToLocal never asking for some color/type pairs, tested asking only for them
  (see ``envs.levels``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from envs.levels import HELD_OUT_PAIRS, HELD_OUT_PAIRS_TEST_ID, HELD_OUT_PAIRS_TRAIN_ID
from envs.make import is_minigrid_env_id, make_env, resolve_env_spec
from envs.tmaze import passive_tmaze_id

# Held-out sides draw their levels from here on; training sides from 0 up to (at most) here.
HELDOUT_SEED_START = 1_000_000_000
# Reset seeds must fit numpy's seeding (below 2**32): each side gets a range of a billion.
SEED_RANGE_SIZE = 1_000_000_000
TRAIN_SEEDS = range(0, SEED_RANGE_SIZE)
HELDOUT_SEEDS = range(HELDOUT_SEED_START, HELDOUT_SEED_START + SEED_RANGE_SIZE)
# Run seed s seeds its training envs from s * TRAIN_SEED_STRIDE on, so runs of different seeds never share a
# training env seed (nor, on a suite side, a level for the first million resets of each env).
TRAIN_SEED_STRIDE = 1_000_000
MAX_RUN_SEED = HELDOUT_SEED_START // TRAIN_SEED_STRIDE - 1
# Levels the ``unseen-seeds`` suite trains on.
UNSEEN_SEEDS_TRAIN_LEVELS = 1000


class SeedCycleWrapper(gym.Wrapper):
    """Reset the inner env only with seeds from ``seeds``, cycling through them in order.

    Every reset uses the next seed of the list, so the levels an env generates are exactly those of its
    seeds. A ``seed`` passed to ``reset`` (as Stable-Baselines3's ``VecEnv.seed`` does at the first reset)
    only chooses where the cycle starts (``seed % len(seeds)``): it can never make the env leave its range.
    The seed used is reported as ``info["level_seed"]``.

    :param env: the env to reset
    :param seeds: the reset seeds, at least one (a ``range`` keeps a billion of them in constant memory)
    """

    def __init__(self, env: gym.Env, seeds: Sequence[int]) -> None:
        super().__init__(env)
        if len(seeds) == 0:
            raise ValueError("SeedCycleWrapper needs at least one seed")
        self.seeds = seeds
        self.next_index = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if seed is not None:
            self.next_index = seed % len(self.seeds)
        level_seed = int(self.seeds[self.next_index])
        self.next_index = (self.next_index + 1) % len(self.seeds)
        obs, info = self.env.reset(seed=level_seed, options=options)
        return obs, {**info, "level_seed": level_seed}


def training_env_seed(run_seed: int) -> int:
    """The seed of training env 0 of a run with seed ``run_seed`` (env ``rank`` gets this plus ``rank``).

    :raises ValueError: for a run seed outside ``0..MAX_RUN_SEED``, whose envs would reach held-out seeds
    """
    if not 0 <= run_seed <= MAX_RUN_SEED:
        raise ValueError(
            f"seed must be in 0..{MAX_RUN_SEED}, got {run_seed} (training envs of seed s start at level seed "
            f"s * {TRAIN_SEED_STRIDE:,}, below the held-out seeds from {HELDOUT_SEED_START:,})"
        )
    return run_seed * TRAIN_SEED_STRIDE


def describe_range(seeds: range) -> str:
    """``"first-last"`` of a range of seeds (with its step when it is not 1)."""
    if len(seeds) == 0:
        return "none"
    text = f"{seeds[0]}-{seeds[-1]}"
    return text if seeds.step == 1 else f"{text} step {seeds.step}"


@dataclass(frozen=True)
class SuiteSide:
    """One side of a suite: an env id, its constructor arguments and the reset seeds its levels come from.

    :param name: ``"train"`` for the training side, a short name for a held-out side (e.g. ``"MemoryS9"``)
    :param env_id: a registered gymnasium id, made with ``envs.make_env``
    :param seeds: the reset seeds this side draws its levels from
    :param env_kwargs: keyword arguments for ``envs.make_env`` (``render_mode``, the env's constructor)
    """

    name: str
    env_id: str
    seeds: range
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    def rank_seeds(self, rank: int, n_envs: int) -> range:
        """The seeds of env ``rank`` out of ``n_envs``: every ``n_envs``-th seed from the ``rank``-th.

        :raises ValueError: when the side has fewer seeds than envs
        """
        if not 0 <= rank < n_envs:
            raise ValueError(f"rank must be in 0..{n_envs - 1}, got {rank}")
        if len(self.seeds) < n_envs:
            raise ValueError(
                f"side {self.name!r} has {len(self.seeds)} seeds, fewer than the {n_envs} envs asked for: "
                "use fewer envs"
            )
        return self.seeds[rank::n_envs]

    def with_env_kwargs(self, **env_kwargs: Any) -> SuiteSide:
        """This side with ``env_kwargs`` added to its own (e.g. ``previous_action_reward=True``): the same
        levels, other env options."""
        return replace(self, env_kwargs={**self.env_kwargs, **env_kwargs})

    def make_env(self, rank: int = 0, n_envs: int = 1) -> gym.Env:
        """One env of this side (``envs.make_env``), reset only with ``rank_seeds(rank, n_envs)``."""
        return SeedCycleWrapper(make_env(self.env_id, **self.env_kwargs), self.rank_seeds(rank, n_envs))

    def make_vec_env(self, n_envs: int, seed: int = 0, vec_env_cls: type[VecEnv] | None = None) -> VecEnv:
        """``n_envs`` envs of this side, each in a ``Monitor`` (recording ``is_success`` for MiniGrid/BabyAI),
        in one ``VecEnv``; env ``rank`` resets with ``rank_seeds(rank, n_envs)`` only.

        Built like Stable-Baselines3's ``make_vec_env`` (action space seeded with ``seed + rank``, the
        first reset with ``seed + rank``, here the start of each env's cycle), which cannot give each env
        its own seeds itself: its env factory is not told its rank.

        :param n_envs: number of envs, at least 1 and at most the number of seeds
        :param seed: chooses where each env's seed cycle starts, and seeds the action spaces
        :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``
        :raises ValueError: for ``n_envs < 1``, more envs than seeds, or an unknown env id
        """
        if n_envs < 1:
            raise ValueError(f"n_envs must be at least 1, got {n_envs}: pass n_envs=1 or more")
        self.rank_seeds(0, n_envs)  # fail here, not in a subprocess
        info_keywords = ("is_success",) if is_minigrid_env_id(self.env_id) else ()
        factories: list[Callable[[], gym.Env]] = [
            functools.partial(make_monitored_env, self, rank, n_envs, seed, info_keywords)
            for rank in range(n_envs)
        ]
        vec_env = (vec_env_cls or DummyVecEnv)(factories)
        vec_env.seed(seed)
        return vec_env

    def describe_seeds(self) -> str:
        """The seed range as text, e.g. ``"1000000000-1999999999"``."""
        return describe_range(self.seeds)


def make_monitored_env(
    side: SuiteSide, rank: int, n_envs: int, seed: int, info_keywords: tuple[str, ...]
) -> gym.Env:
    """Env ``rank`` of ``side`` in a ``Monitor`` (a module-level function: ``SubprocVecEnv`` pickles it)."""
    env = side.make_env(rank, n_envs)
    env.action_space.seed(seed + rank)
    return Monitor(env, filename=None, info_keywords=info_keywords)


@dataclass(frozen=True)
class Suite:
    """A named generalization split: train on ``train``, evaluate on ``train`` and every ``heldout`` side.

    :param name: the suite's name, as ``get_suite`` takes it
    :param description: one line saying what is held out
    :param train: the training side (named ``"train"``)
    :param heldout: the held-out sides; none shares a level with ``train``
    """

    name: str
    description: str
    train: SuiteSide
    heldout: tuple[SuiteSide, ...]

    def sides(self) -> tuple[SuiteSide, ...]:
        """The training side first, then the held-out sides."""
        return (self.train, *self.heldout)

    def with_env_kwargs(self, **env_kwargs: Any) -> Suite:
        """This suite with ``env_kwargs`` added to every side's (``SuiteSide.with_env_kwargs``), e.g.
        ``previous_action_reward=True`` to train and evaluate on observations with the previous action and
        reward."""
        return replace(
            self,
            train=self.train.with_env_kwargs(**env_kwargs),
            heldout=tuple(side.with_env_kwargs(**env_kwargs) for side in self.heldout),
        )


def heldout_side(env_id: str, **env_kwargs: Any) -> SuiteSide:
    """The held-out side of a plain env (no suite): ``env_id`` on ``HELDOUT_SEEDS``, named ``"heldout"``.

    The one scheme by which held-out levels of a plain env are drawn, everywhere: the runners' periodic and
    final evaluations (``agents.training_envs.evaluation_envs``) and ``runners.evaluate --env`` both build
    their envs with this side's ``make_vec_env``, so every level is an explicit reset seed (env ``rank`` of
    ``n_envs`` cycles through ``rank_seeds(rank, n_envs)``, starting where ``seed`` says), exactly as on a
    suite's held-out sides, and never the env's own generator after a first seeded reset.

    :param env_kwargs: keyword arguments for ``envs.make_env`` (e.g. ``previous_action_reward=True``)
    """
    return SuiteSide("heldout", env_id, HELDOUT_SEEDS, dict(env_kwargs))


# ---------------------------------------------------------------------- the suites


def unseen_seeds(env_id: str | None) -> Suite:
    if env_id is None:
        raise ValueError(
            "suite 'unseen-seeds' trains and tests on one level family: pass --env ENV (e.g. --env "
            "BabyAI-GoToLocal-v0), or env_id= to get_suite"
        )
    resolve_env_spec(env_id)  # an unknown id fails here, naming close matches
    return Suite(
        name="unseen-seeds",
        description=f"{env_id} on {UNSEEN_SEEDS_TRAIN_LEVELS} training levels, tested on unseen seeds",
        train=SuiteSide("train", env_id, range(0, UNSEEN_SEEDS_TRAIN_LEVELS)),
        heldout=(SuiteSide("unseen-seeds", env_id, HELDOUT_SEEDS),),
    )


def fixed_suite(name: str, description: str, train_id: str, heldout: dict[str, str]) -> Suite:
    """A suite of registered ids: the training side on ``TRAIN_SEEDS``, each held-out one on
    ``HELDOUT_SEEDS``."""
    return Suite(
        name=name,
        description=description,
        train=SuiteSide("train", train_id, TRAIN_SEEDS),
        heldout=tuple(SuiteSide(side, env_id, HELDOUT_SEEDS) for side, env_id in heldout.items()),
    )


SUITE_DESCRIPTIONS: dict[str, str] = {
    "unseen-seeds": f"ENV (pass --env) on {UNSEEN_SEEDS_TRAIN_LEVELS} levels, tested on unseen seeds",
    "memory-length": "MiniGrid Memory in a 7x7 grid, tested in 9x9, 11x11 and 13x13 (longer corridors)",
    "tmaze-length": "the Passive T-Maze at memory length 30, tested at 60 and 120 (2x and 4x longer)",
    "more-distractors": "BabyAI GoToLocal 8x8 with 2 distractors, tested with 4 to 7",
    "room-to-maze": "BabyAI GoTo in one room (GoToLocal), tested in a 3x3 maze of rooms (GoTo)",
    "held-out-pairs": (
        f"BabyAI GoToLocal never asking for {len(HELD_OUT_PAIRS)} color/type pairs, tested on only those"
    ),
}

FIXED_SUITES: dict[str, Callable[[], Suite]] = {
    "memory-length": lambda: fixed_suite(
        "memory-length",
        SUITE_DESCRIPTIONS["memory-length"],
        "MiniGrid-MemoryS7-v0",
        {f"MemoryS{size}": f"MiniGrid-MemoryS{size}-v0" for size in (9, 11, 13)},
    ),
    "tmaze-length": lambda: fixed_suite(
        "tmaze-length",
        SUITE_DESCRIPTIONS["tmaze-length"],
        passive_tmaze_id(30),
        {f"TMaze{length}": passive_tmaze_id(length) for length in (60, 120)},
    ),
    "more-distractors": lambda: fixed_suite(
        "more-distractors",
        SUITE_DESCRIPTIONS["more-distractors"],
        "BabyAI-GoToLocalS8N2-v0",
        {f"GoToLocalS8N{n}": f"BabyAI-GoToLocalS8N{n}-v0" for n in range(4, 8)},
    ),
    "room-to-maze": lambda: fixed_suite(
        "room-to-maze", SUITE_DESCRIPTIONS["room-to-maze"], "BabyAI-GoToLocal-v0", {"GoTo": "BabyAI-GoTo-v0"}
    ),
    "held-out-pairs": lambda: fixed_suite(
        "held-out-pairs",
        SUITE_DESCRIPTIONS["held-out-pairs"],
        HELD_OUT_PAIRS_TRAIN_ID,
        {"held-out-pairs": HELD_OUT_PAIRS_TEST_ID},
    ),
}


def list_suites() -> dict[str, str]:
    """Every suite's name and one-line description."""
    return dict(SUITE_DESCRIPTIONS)


def suite_takes_env(name: str) -> bool:
    """Whether the suite is built around an env the user names (``unseen-seeds``); the others fix theirs."""
    return name == "unseen-seeds"


def get_suite(name: str, env_id: str | None = None) -> Suite:
    """The suite called ``name``.

    :param name: one of ``list_suites()``
    :param env_id: the level family of ``unseen-seeds`` (required there); the other suites fix their envs
        and ignore it
    :raises ValueError: for an unknown name (listing the known ones), or ``unseen-seeds`` without an env id
    """
    if name == "unseen-seeds":
        return unseen_seeds(env_id)
    if name not in FIXED_SUITES:
        raise ValueError(f"unknown suite {name!r}: use one of {', '.join(SUITE_DESCRIPTIONS)}")
    return FIXED_SUITES[name]()
