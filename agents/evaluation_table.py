"""A trained model evaluated on suite sides, one table row per side (``runners.evaluate``).

Each side is first matched to the observations the model was trained on (``side_for_model``: with the
previous action and reward when the model saw them), then evaluated for a number of episodes on its own
reset seeds (``evaluate_side``) with one protocol, greedy or sampled, for every side. A row holds the env,
the side, the protocol, the episodes and successes, the success rate with its 95% Wilson interval (None for
an env without a success signal), the mean return and length, and the side's seeds; ``format_table`` lays
the rows out as aligned plain text.
"""

from __future__ import annotations

import time
from typing import Any

from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from agents.evaluation import evaluate_model
from agents.loading import check_env_matches
from agents.ppo import MemoryPPO
from envs.suites import SuiteSide

# ---------------------------------------------------------------------- the sides as the model sees them


def side_for_model(model: MemoryPPO, side: SuiteSide, seed: int) -> SuiteSide:
    """``side`` as ``model`` was trained to see it: with ``previous_action_reward=True`` (observations that
    also hold the previous action and reward, ``envs.PreviousActionRewardWrapper``) when the model's
    observation space is not the plain env's but is the wrapped env's; ``side`` itself otherwise.

    The model's own observation space decides, so a model file needs no config beside it.

    :raises ValueError: ``check_env_matches``'s one line (naming the plain env's space) when neither fits
    """
    probe = side.make_vec_env(1, seed=seed)
    try:
        if probe.observation_space != model.observation_space:
            wrapped_side = side.with_env_kwargs(previous_action_reward=True)
            try:
                wrapped = wrapped_side.make_vec_env(1, seed=seed)
            except ValueError:  # an action space the wrapper cannot encode: the plain env's error says it
                wrapped = None
            if wrapped is not None:
                try:
                    if wrapped.observation_space == model.observation_space:
                        check_env_matches(model, wrapped, side.env_id)
                        return wrapped_side
                finally:
                    wrapped.close()
        check_env_matches(model, probe, side.env_id)
    finally:
        probe.close()
    return side


def memory_name(model: MemoryPPO) -> str:
    """The model's memory by name (``tlb``, ``gru``, ...), for the console and one-line errors."""
    return str(getattr(model.policy, "memory_name", type(model.policy.memory).__name__))


# ---------------------------------------------------------------------- the table


def evaluate_side(
    model: MemoryPPO,
    side: SuiteSide,
    episodes: int,
    deterministic: bool,
    *,
    n_envs: int,
    seed: int,
    subproc: bool = False,
) -> dict[str, Any]:
    """One row of the table: ``episodes`` episodes on ``side``, with greedy actions if ``deterministic``.

    :param n_envs: envs evaluated in parallel (at most ``episodes``)
    :param seed: where the envs' cycles through the side's reset seeds start
    :param subproc: run the envs in subprocesses
    """
    n_envs = min(n_envs, episodes)
    env = side.make_vec_env(n_envs, seed=seed, vec_env_cls=SubprocVecEnv if subproc else DummyVecEnv)
    try:
        result = evaluate_model(model, env, episodes, deterministic=deterministic)
    finally:
        env.close()
    signal = result.has_success_signal
    return {
        "env": side.env_id,
        "side": side.name,
        "protocol": result.protocol,
        "episodes": result.episodes,
        "successes": result.successes,
        "success_rate": result.success_rate if signal else None,
        "success_ci95": list(result.success_ci95) if signal else None,
        "mean_return": result.mean_return,
        "mean_length": result.mean_length,
        "seeds": side.describe_seeds(),
    }


def evaluate_sides(
    model: MemoryPPO,
    sides: list[SuiteSide],
    episodes: int,
    deterministic: bool,
    *,
    n_envs: int,
    seed: int,
    subproc: bool = False,
) -> list[dict[str, Any]]:
    """The table's rows, one per side (``evaluate_side``), each announced on the console when done."""
    rows = []
    for side in sides:
        start = time.time()
        rows.append(
            evaluate_side(model, side, episodes, deterministic, n_envs=n_envs, seed=seed, subproc=subproc)
        )
        print(f"  {side.name}: {side.env_id}, {episodes} episodes in {time.time() - start:.1f} s", flush=True)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as aligned plain text: text columns left-aligned, numbers right-aligned; an env without a
    success signal says so in the success column."""
    headers = ["side", "env", "actions", "episodes", "success", "95% CI", "return", "length", "seeds"]
    numeric = {"episodes", "success", "return", "length"}

    def success_cells(row: dict[str, Any]) -> list[str]:
        if row["success_rate"] is None:
            return ["no success signal", "-"]
        low, high = row["success_ci95"]
        return [f"{row['success_rate']:.3f}", f"[{low:.3f}, {high:.3f}]"]

    cells = [
        [
            row["side"],
            row["env"],
            row["protocol"],
            str(row["episodes"]),
            *success_cells(row),
            f"{row['mean_return']:.3f}",
            f"{row['mean_length']:.1f}",
            row["seeds"],
        ]
        for row in rows
    ]
    widths = [max(len(text) for text in column) for column in zip(headers, *cells)]
    lines = []
    for line in [headers, *cells]:
        parts = [
            text.rjust(width) if header in numeric else text.ljust(width)
            for header, text, width in zip(headers, line, widths)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)
