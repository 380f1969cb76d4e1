"""Demonstrations: episodes of an expert (minigrid's BabyAI bot) stored for imitation learning.

File format (one compressed ``.npz``, written by ``save_demos`` and read by ``load_demos`` with
``allow_pickle=False``), for ``S`` steps in ``E`` episodes stored back to back in seed order:

=====================  ================  ==============================================================
array                  shape, dtype      meaning
=====================  ================  ==============================================================
``obs.<key>``          [S, ...], the     each observation as ``envs.make_env`` encodes it, one array per
                       space's dtype     key of the Dict space: ``obs.image`` uint8 [S, 7, 7, 3] cell
                                         codes, ``obs.direction`` int64 [S], ``obs.mission`` int64
                                         [S, 72] mission token ids
``actions``            [S], int64        the action taken after each observation
``rewards``            [S], float32      the reward that action earned
``episode_lengths``    [E], int64        steps per episode (episode ``i`` starts at step
                                         ``sum(episode_lengths[:i])``)
``seeds``              [E], int64        the seed each episode's env was reset with (``reset(seed=s)``)
``skipped_seeds``      [F], int64        seeds whose level the bot failed (not stored, never retried)
``metadata``           0-d str           JSON: ``format``, ``version``, ``env_id``,
                                         ``observation_space`` and ``action_space`` (as
                                         ``space_to_dict`` describes them), ``generator``,
                                         ``minigrid_version``, ``noise`` (0 when absent)
=====================  ================  ==============================================================

Every episode ends in success: observation ``t`` is what the env returned before action ``t``, and the last
action of an episode terminates it with a positive reward. ``replay_episode`` checks exactly that. With
``noise`` p > 0 (demos generated the DART way) the stored action is the bot's, and the action executed was a
random move wherever ``NoisyMoves`` (seeded with the episode's seed) replaced it; replay applies the same.

Seeds: demonstrations use seeds below ``envs.suites.HELDOUT_SEED_START`` = 1e9, because every held-out
evaluation (the runners' held-out envs, the held-out sides of ``envs.suites``) uses seeds from there on;
appending continues after the largest seed already tried, so a file never holds one level twice.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.atomic import atomic_write
from envs import make_env

DEMO_FORMAT = "tlb-agents-demos"
DEMO_FORMAT_VERSION = 1
OBS_PREFIX = "obs."


# ---------------------------------------------------------------------- space descriptions


def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    """A JSON-able description of a space, exact enough to compare two spaces for equality."""
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {key: space_to_dict(sub) for key, sub in space.spaces.items()}}
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": space.low.tolist(),
            "high": space.high.tolist(),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    raise ValueError(f"cannot describe a {type(space).__name__} space in a demos file")


def describe_space(space: spaces.Space | dict[str, Any]) -> str:
    """A short one-line description of a space (or of ``space_to_dict``'s description of one), for errors:
    e.g. ``Dict(image: Box(0..10, (7, 7, 3), uint8), direction: Discrete(4), mission: Box(0..55, (72,),
    int64))``, where gymnasium's own repr prints every bound of the image."""
    data = space_to_dict(space) if isinstance(space, spaces.Space) else space
    kind = data.get("type")
    if kind == "Dict":
        inner = ", ".join(f"{key}: {describe_space(sub)}" for key, sub in data["spaces"].items())
        return f"Dict({inner})"
    if kind == "Box":
        low, high = np.asarray(data["low"]), np.asarray(data["high"])
        bounds = f"{low.min():g}..{high.max():g}" if low.size else "empty"
        return f"Box({bounds}, {tuple(data['shape'])}, {data['dtype']})"
    if kind == "Discrete":
        return (
            f"Discrete({data['n']})"
            if data.get("start", 0) == 0
            else f"Discrete({data['n']}, {data['start']})"
        )
    if kind == "MultiDiscrete":
        return f"MultiDiscrete({data['nvec']})"
    if kind == "MultiBinary":
        return f"MultiBinary({data['n']})"
    return str(data)


# ---------------------------------------------------------------------- the in-memory demos


@dataclass
class Demos:
    """Demonstrations of one env, episodes stored back to back (see the module docstring for the file).

    :param env_id: the gymnasium id the episodes were recorded in
    :param observations: key -> [n_steps, ...] observations, as ``envs.make_env`` gives them
    :param actions: [n_steps] actions
    :param rewards: [n_steps] rewards
    :param episode_lengths: [n_episodes] steps per episode
    :param seeds: [n_episodes] each episode's reset seed
    :param skipped_seeds: seeds the bot failed on
    :param observation_space: ``space_to_dict`` of the env's observation space
    :param action_space: ``space_to_dict`` of the env's action space
    :param metadata: anything else stored with the demos (generator, minigrid version)
    """

    env_id: str
    observations: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    episode_lengths: np.ndarray
    seeds: np.ndarray
    skipped_seeds: np.ndarray
    observation_space: dict[str, Any]
    action_space: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_steps = int(self.episode_lengths.sum())
        sizes = {key: len(value) for key, value in self.observations.items()}
        sizes.update(actions=len(self.actions), rewards=len(self.rewards))
        wrong = {key: size for key, size in sizes.items() if size != n_steps}
        if wrong or len(self.seeds) != len(self.episode_lengths):
            raise ValueError(
                f"inconsistent demos: episode_lengths sum to {n_steps} steps but {wrong} "
                f"({len(self.seeds)} seeds for {len(self.episode_lengths)} episodes)"
            )

    @property
    def n_episodes(self) -> int:
        return len(self.episode_lengths)

    @property
    def n_steps(self) -> int:
        return int(self.episode_lengths.sum())

    @property
    def episode_offsets(self) -> np.ndarray:
        """[n_episodes] index of each episode's first step."""
        return np.concatenate([[0], np.cumsum(self.episode_lengths)[:-1]]).astype(np.int64)

    @property
    def next_seed(self) -> int:
        """The first seed after every seed this file has tried (stored or skipped)."""
        tried = np.concatenate([self.seeds, self.skipped_seeds])
        return int(tried.max()) + 1 if tried.size else 0

    def episode_slice(self, index: int) -> slice:
        start = int(self.episode_offsets[index])
        return slice(start, start + int(self.episode_lengths[index]))

    def subset(self, episodes: np.ndarray | list[int]) -> Demos:
        """The demos of the given episodes, in the given order (e.g. the first 5000, a validation split)."""
        episodes = np.asarray(episodes, dtype=np.int64)
        steps = (
            np.concatenate(
                [np.arange(self.episode_slice(i).start, self.episode_slice(i).stop) for i in episodes]
            )
            if episodes.size
            else np.zeros(0, dtype=np.int64)
        )
        return Demos(
            env_id=self.env_id,
            observations={key: value[steps] for key, value in self.observations.items()},
            actions=self.actions[steps],
            rewards=self.rewards[steps],
            episode_lengths=self.episode_lengths[episodes],
            seeds=self.seeds[episodes],
            skipped_seeds=self.skipped_seeds,
            observation_space=self.observation_space,
            action_space=self.action_space,
            metadata=dict(self.metadata),
        )

    def check_env(self, env_id: str, source: str = "the demos file") -> None:
        """Raise a one-line ``ValueError`` unless these demos were recorded in ``env_id``.

        :param source: how the message names the demos, e.g. their path
        """
        if env_id != self.env_id:
            raise ValueError(
                f"{source} holds demonstrations of {self.env_id}, not {env_id}: pass --env {self.env_id} "
                f"or a demos file of {env_id}"
            )

    @property
    def noise(self) -> float:
        """The DART noise the demos were generated with (0 for files written before it was recorded)."""
        return float(self.metadata.get("noise", 0.0))

    def check_generated_with(self, noise: float, source: str = "the demos file") -> None:
        """Raise a one-line ``ValueError`` unless these demos were generated with DART noise ``noise``.

        :param source: how the message names the demos, e.g. their path
        """
        if noise != self.noise:
            raise ValueError(
                f"{source} holds demos generated with noise {self.noise}, not {noise}: "
                f"use noise {self.noise} with it, or another demos file"
            )

    def check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """Raise a one-line ``ValueError`` unless the env's spaces are the ones the demos were recorded with
        (e.g. a minigrid upgrade that changed the vocabulary would change the mission space)."""
        for name, stored, live in (
            ("observation", self.observation_space, observation_space),
            ("action", self.action_space, action_space),
        ):
            if space_to_dict(live) != stored:
                raise ValueError(
                    f"the demos of {self.env_id} were recorded with {name} space {describe_space(stored)} "
                    f"but the env now gives {describe_space(live)}: regenerate them with runners.demos"
                )


def empty_demos(env_id: str, env: gym.Env) -> Demos:
    """No episodes yet, with the arrays shaped and typed for ``env``'s observations (a Dict space)."""
    obs_space = env.observation_space
    if not isinstance(obs_space, spaces.Dict):
        raise ValueError(
            f"demos need a Dict observation space (envs.make_env of a BabyAI id), got {obs_space}"
        )
    observations = {
        key: np.zeros((0, *sub.shape), dtype=sub.dtype if sub.dtype is not None else np.int64)
        for key, sub in obs_space.spaces.items()
    }
    return Demos(
        env_id=env_id,
        observations=observations,
        actions=np.zeros(0, dtype=np.int64),
        rewards=np.zeros(0, dtype=np.float32),
        episode_lengths=np.zeros(0, dtype=np.int64),
        seeds=np.zeros(0, dtype=np.int64),
        skipped_seeds=np.zeros(0, dtype=np.int64),
        observation_space=space_to_dict(obs_space),
        action_space=space_to_dict(env.action_space),
    )


def concatenate_demos(first: Demos, second: Demos) -> Demos:
    """``first``'s episodes followed by ``second``'s (same env and spaces), e.g. to append new demos."""
    first.check_env(second.env_id, "the existing demos file")
    if first.observation_space != second.observation_space or first.action_space != second.action_space:
        raise ValueError(
            f"cannot append demos recorded with observation space {describe_space(second.observation_space)} "
            f"to demos recorded with {describe_space(first.observation_space)}"
        )
    overlap = np.intersect1d(first.seeds, second.seeds)
    if overlap.size:
        raise ValueError(f"cannot append demos: seeds {overlap[:5].tolist()} are stored in both")
    return Demos(
        env_id=first.env_id,
        observations={
            key: np.concatenate([value, second.observations[key]])
            for key, value in first.observations.items()
        },
        actions=np.concatenate([first.actions, second.actions]),
        rewards=np.concatenate([first.rewards, second.rewards]),
        episode_lengths=np.concatenate([first.episode_lengths, second.episode_lengths]),
        seeds=np.concatenate([first.seeds, second.seeds]),
        skipped_seeds=np.unique(np.concatenate([first.skipped_seeds, second.skipped_seeds])),
        observation_space=first.observation_space,
        action_space=first.action_space,
        metadata={**first.metadata, **second.metadata},
    )


# ---------------------------------------------------------------------- the file


def save_demos(demos: Demos, path: str | Path) -> None:
    """Write ``demos`` to ``path`` atomically: a temporary file beside it, then a rename, so a crash or a
    full disk never leaves a half-written file in place of a good one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        **demos.metadata,
        "format": DEMO_FORMAT,
        "version": DEMO_FORMAT_VERSION,
        "env_id": demos.env_id,
        "observation_space": demos.observation_space,
        "action_space": demos.action_space,
    }
    arrays: dict[str, np.ndarray] = {f"{OBS_PREFIX}{key}": value for key, value in demos.observations.items()}
    arrays.update(
        actions=demos.actions.astype(np.int64),
        rewards=demos.rewards.astype(np.float32),
        episode_lengths=demos.episode_lengths.astype(np.int64),
        seeds=demos.seeds.astype(np.int64),
        skipped_seeds=demos.skipped_seeds.astype(np.int64),
        metadata=np.array(json.dumps(metadata)),
    )

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as file:  # a file object: numpy would add ".npz" to a name without it
            np.savez_compressed(file, **arrays)

    atomic_write(path, write)


def load_demos(path: str | Path, env_id: str | None = None) -> Demos:
    """Read a demos file written by ``save_demos``.

    :param env_id: when given, the demos must be of this env
    :raises ValueError: one line, for a missing file, a file that is not a demos file, or another env's demos
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"demos file {path} does not exist: create it with python -m runners.demos")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a demos file (an .npz from runners.demos): it is not a zip archive")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{path} is not a demos file (an .npz from runners.demos): {error}") from None
    try:
        metadata = json.loads(str(arrays.pop("metadata")))
    except (KeyError, json.JSONDecodeError):
        raise ValueError(f"{path} is not a demos file (an .npz from runners.demos): no metadata") from None
    if metadata.get("format") != DEMO_FORMAT:
        raise ValueError(
            f"{path} is not a demos file (an .npz from runners.demos): format {metadata.get('format')}"
        )
    if metadata.get("version") != DEMO_FORMAT_VERSION:
        raise ValueError(
            f"{path} is a version {metadata.get('version')} demos file; this code reads version "
            f"{DEMO_FORMAT_VERSION}: regenerate it with runners.demos"
        )
    required = ("actions", "rewards", "episode_lengths", "seeds", "skipped_seeds")
    missing = [key for key in required if key not in arrays]
    if missing:
        raise ValueError(f"{path} is not a complete demos file: it lacks {', '.join(missing)}")
    extra = ("format", "version", "env_id", "observation_space", "action_space")
    demos = Demos(
        env_id=str(metadata["env_id"]),
        observations={
            key[len(OBS_PREFIX) :]: value for key, value in arrays.items() if key.startswith(OBS_PREFIX)
        },
        actions=arrays["actions"],
        rewards=arrays["rewards"],
        episode_lengths=arrays["episode_lengths"],
        seeds=arrays["seeds"],
        skipped_seeds=arrays["skipped_seeds"],
        observation_space=metadata["observation_space"],
        action_space=metadata["action_space"],
        metadata={key: value for key, value in metadata.items() if key not in extra},
    )
    if env_id is not None:
        demos.check_env(env_id, f"{path}")
    return demos


# ---------------------------------------------------------------------- replay


def check_noise(noise: float) -> None:
    """Raise a one-line ``ValueError`` for a DART noise outside [0, 1)."""
    if not 0.0 <= noise < 1.0:
        raise ValueError(f"noise must be in [0, 1) (the probability of a random move), got {noise}")


class NoisyMoves:
    """The random moves of a noisy (DART) demonstration: ``executed(action)`` is the action the env gets at
    the next step, a random move (left, right or forward) with probability ``noise``, else ``action``. The
    draws depend on the episode's seed only, so generation and replay make the same ones."""

    N_MOVES = 3  # left, right, forward: never pickup, drop or toggle, which change the level, nor done

    def __init__(self, seed: int, noise: float) -> None:
        check_noise(noise)
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    def executed(self, action: int) -> int:
        if self.noise > 0 and self.rng.random() < self.noise:
            return int(self.rng.integers(self.N_MOVES))
        return action


def observations_equal(first: dict[str, Any], second: dict[str, Any]) -> bool:
    return first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)


@dataclass
class ReplayResult:
    """What replaying a stored episode in a fresh env gave."""

    observations_match: bool  # every stored observation equals the env's
    success: bool  # the last action terminated the episode with ``is_success``
    first_mismatch: int | None  # the first step whose observation differs, if any
    length: int  # steps replayed (stops early when the env ends before the stored actions do)


def replay_episode(demos: Demos, index: int, env: gym.Env | None = None) -> ReplayResult:
    """Reset an env of ``demos.env_id`` with episode ``index``'s seed, apply its stored actions and compare
    the observations: the check that a demos file describes real, successful episodes of its levels.

    :param env: an env of ``demos.env_id`` built by ``envs.make_env`` (one is made and closed otherwise)
    """
    own_env = env is None
    env = make_env(demos.env_id) if env is None else env
    try:
        steps = demos.episode_slice(index)
        obs, _ = env.reset(seed=int(demos.seeds[index]))
        moves = NoisyMoves(int(demos.seeds[index]), demos.noise)
        first_mismatch: int | None = None
        success, length = False, 0
        for t in range(steps.start, steps.stop):
            stored = {key: value[t] for key, value in demos.observations.items()}
            if first_mismatch is None and not observations_equal(stored, obs):
                first_mismatch = t - steps.start
            obs, _, terminated, truncated, info = env.step(moves.executed(int(demos.actions[t])))
            length += 1
            if terminated or truncated:
                success = bool(info.get("is_success", False)) and t == steps.stop - 1
                break
        return ReplayResult(first_mismatch is None, success, first_mismatch, length)
    finally:
        if own_env:
            env.close()
