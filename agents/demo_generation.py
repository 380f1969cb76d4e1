"""Demonstrations from minigrid's BabyAI bot, generated in parallel: ``generate_demos`` and
``append_bot_demos`` (what ``python -m runners.demos`` and ``benchmarks/bc_generalization.py`` run).

Each episode is one level (``env.reset(seed=s)``) solved by ``minigrid.utils.baby_ai_bot.BabyAIBot``,
which replans after every step. Levels the bot fails (it raises, or does not succeed within the env's
``max_steps``) are skipped and counted; their seeds are recorded so they are never tried again.

With ``noise`` p > 0 (DART, Laskey et al. 2017), each step executes a random move (left, right or forward)
with probability p instead of the bot's action, while the bot's action for that observation is what the
episode stores: the demos then show how the bot recovers from states off its own path, which is where a
cloned policy ends up after its first mistake (without such data it tends to repeat its last action until
the time limit). The random draws depend on the level's seed only, not on the workers.

Worker processes each take their own blocks of consecutive seeds; which seeds are tried and stored does not
depend on the number of workers. Seeds stay below ``envs.suites.HELDOUT_SEED_START`` (1e9), where the
held-out evaluation seeds begin. The file format is described in ``agents/demos.py``.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from minigrid.utils.baby_ai_bot import BabyAIBot
from tqdm import tqdm

from agents.demos import (
    Demos,
    NoisyMoves,
    check_noise,
    concatenate_demos,
    empty_demos,
    load_demos,
    save_demos,
)
from envs import make_env
from envs.suites import HELDOUT_SEED_START

BOT_NAME = "minigrid.utils.baby_ai_bot.BabyAIBot"


@dataclass
class Episode:
    """One successful bot episode: the observations before each action, the actions and their rewards."""

    seed: int
    observations: list[dict[str, Any]]
    actions: list[int]
    rewards: list[float]


@dataclass
class BlockResult:
    """The outcome of one block of seeds: the solved episodes and ``(seed, reason)`` of each failure."""

    episodes: list[Episode] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)


def check_bot_env(env: gym.Env, env_id: str) -> None:
    """Raise a one-line ``ValueError`` unless the bot can play ``env`` (a BabyAI level, already reset)."""
    if not hasattr(env.unwrapped, "instrs"):
        raise ValueError(
            f"{env_id} is not a BabyAI level: minigrid's BabyAIBot needs the level's instructions "
            "(env.unwrapped.instrs); use a BabyAI-* id such as BabyAI-GoToLocal-v0"
        )


def bot_episode(env: gym.Env, seed: int, noise: float = 0.0) -> tuple[Episode | None, str]:
    """Play the level of ``seed`` with the bot (executing a random move with probability ``noise`` at each
    step; the bot's own action is stored). Returns the episode, or None and why the bot failed."""
    obs, _ = env.reset(seed=seed)
    episode = Episode(seed=seed, observations=[], actions=[], rewards=[])
    moves = NoisyMoves(seed, noise)
    taken: int | None = None
    try:
        bot = BabyAIBot(env.unwrapped)
        while True:
            action = int(bot.replan(taken))
            episode.observations.append(obs)
            episode.actions.append(action)
            taken = moves.executed(action)
            obs, reward, terminated, truncated, info = env.step(taken)
            episode.rewards.append(float(reward))
            if terminated or truncated:
                break
    except Exception as error:  # the bot's own failures (DisappearedBoxError, assertions) skip the level
        message = str(error).strip().splitlines()
        return None, f"the bot raised {type(error).__name__}" + (f": {message[0]}" if message else "")
    if not info.get("is_success", False):
        return None, f"no success within {len(episode.actions)} steps"
    return episode, ""


_WORKER_ENV: dict[str, gym.Env] = {}


def run_block(env_id: str, first_seed: int, stop_seed: int, noise: float = 0.0) -> BlockResult:
    """Play seeds ``first_seed .. stop_seed - 1`` in this process's env of ``env_id`` (made once)."""
    if env_id not in _WORKER_ENV:
        _WORKER_ENV[env_id] = make_env(env_id)
    env = _WORKER_ENV[env_id]
    result = BlockResult()
    for seed in range(first_seed, stop_seed):
        episode, reason = bot_episode(env, seed, noise)
        if episode is None:
            result.failures.append((seed, reason))
        else:
            result.episodes.append(episode)
    return result


def _run_block_star(args: tuple[str, int, int, float]) -> BlockResult:
    return run_block(*args)


def episodes_to_demos(
    env_id: str, env: gym.Env, episodes: list[Episode], skipped: list[int], noise: float = 0.0
) -> Demos:
    """Pack episodes (sorted by seed) into a ``Demos`` with ``env``'s observation dtypes."""
    template = empty_demos(env_id, env)
    episodes = sorted(episodes, key=lambda episode: episode.seed)
    steps = [obs for episode in episodes for obs in episode.observations]
    observations = {
        key: np.stack([np.asarray(obs[key], dtype=empty.dtype) for obs in steps]) if steps else empty
        for key, empty in template.observations.items()
    }
    return Demos(
        env_id=env_id,
        observations=observations,
        actions=np.asarray([a for episode in episodes for a in episode.actions], dtype=np.int64),
        rewards=np.asarray([r for episode in episodes for r in episode.rewards], dtype=np.float32),
        episode_lengths=np.asarray([len(episode.actions) for episode in episodes], dtype=np.int64),
        seeds=np.asarray([episode.seed for episode in episodes], dtype=np.int64),
        skipped_seeds=np.asarray(sorted(skipped), dtype=np.int64),
        observation_space=template.observation_space,
        action_space=template.action_space,
        metadata={"generator": BOT_NAME, "minigrid_version": version("minigrid"), "noise": noise},
    )


@dataclass
class GenerationResult:
    demos: Demos  # the new episodes only
    failures: list[tuple[int, str]]  # (seed, reason), in seed order
    seconds: float
    seeds_tried: int


def generate_demos(
    env_id: str,
    n_episodes: int,
    first_seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    noise: float = 0.0,
) -> GenerationResult:
    """Solve ``n_episodes`` levels of ``env_id`` with the bot, trying seeds from ``first_seed`` on.

    Rounds try exactly as many new consecutive seeds as episodes are still missing (the first round
    ``n_episodes`` seeds, the next one as many as the bot failed, ...), cut into blocks that the worker
    processes play in any order; so the stored seeds are the first ``n_episodes`` the bot solves, whatever
    the number of workers.

    :raises ValueError: when the seeds would reach ``HELDOUT_SEED_START``, the bot solves none of the
        first levels (a level family it cannot play), or ``noise`` is outside [0, 1)
    """
    check_noise(noise)
    env = make_env(env_id)
    env.reset(seed=first_seed)
    check_bot_env(env, env_id)
    episodes: list[Episode] = []
    failures: list[tuple[int, str]] = []
    next_seed = first_seed
    start = time.perf_counter()
    pool = multiprocessing.get_context().Pool(workers) if workers > 1 else None
    bar = tqdm(total=n_episodes, desc=f"bot demos ({env_id})", unit="ep", disable=not progress)
    try:
        while len(episodes) < n_episodes:
            need = n_episodes - len(episodes)
            if next_seed + need > HELDOUT_SEED_START:
                raise ValueError(
                    f"demo seeds would reach {HELDOUT_SEED_START:,}, where the held-out evaluation seeds "
                    "begin: use a lower --seed or fewer --episodes"
                )
            block = int(np.clip(need // (8 * workers), 1, 50))
            blocks = [
                (env_id, s, min(s + block, next_seed + need), noise)
                for s in range(next_seed, next_seed + need, block)
            ]
            results = (
                pool.imap_unordered(_run_block_star, blocks)
                if pool is not None
                else map(_run_block_star, blocks)
            )
            for result in results:
                episodes.extend(result.episodes)
                failures.extend(result.failures)
                bar.update(len(result.episodes))
                if failures:
                    bar.set_postfix(skipped=len(failures))
            next_seed += need
            tried = next_seed - first_seed
            if not episodes and tried >= 20:
                raise ValueError(
                    f"the bot solved none of {tried} levels of {env_id} (seed {failures[0][0]}: "
                    f"{failures[0][1]}): it cannot play this level family"
                )
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    failures.sort()
    demos = episodes_to_demos(env_id, env, episodes, [seed for seed, _ in failures], noise)
    env.close()
    return GenerationResult(demos, failures, time.perf_counter() - start, next_seed - first_seed)


def append_bot_demos(
    path: str | Path,
    env_id: str,
    n_episodes: int,
    first_seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    noise: float = 0.0,
) -> tuple[GenerationResult, Demos]:
    """Add ``n_episodes`` bot demonstrations of ``env_id`` to the demos file ``path`` (created if missing,
    otherwise appended to, never overwritten: the new seeds continue after the largest seed it has tried),
    rewritten atomically.

    :return: the generation's result (its ``demos`` are the new episodes only) and the whole file's demos
    :raises ValueError: for an existing file of another env, other spaces or another ``noise``, seeds that
        would reach the held-out range, or a level family the bot cannot play; the file is then left as it was
    """
    check_noise(noise)
    path = Path(path)
    existing = load_demos(path) if path.exists() else None
    if existing is not None:
        existing.check_env(env_id, str(path))
        existing.check_generated_with(noise, str(path))
        probe = make_env(env_id)
        try:
            existing.check_spaces(probe.observation_space, probe.action_space)
        finally:
            probe.close()
    first_seed = max(first_seed, existing.next_seed if existing is not None else 0)
    result = generate_demos(env_id, n_episodes, first_seed, workers, progress=progress, noise=noise)
    merged = result.demos if existing is None else concatenate_demos(existing, result.demos)
    save_demos(merged, path)
    return result, merged
