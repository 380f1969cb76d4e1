"""Evaluate a trained model on held-out levels: ``python -m runners.evaluate MODEL --suite memory-length``.

``--env ENV`` evaluates on one env, on levels of reset seeds from 1_000_000_000 on (never used in training);
``--suite NAME`` evaluates on a suite's training side and on each of its held-out sides (see
``envs.suites``; ``--suite unseen-seeds`` needs ``--env`` too). Each side gets ``--episodes`` episodes and
one row of an aligned plain-text table.

The evaluation protocol is part of every figure: on MiniGrid/BabyAI envs actions are *sampled* from the
policy by default (greedy policies loop in partially observed grids; BabyAI's own evaluator samples too),
elsewhere they are *greedy* (SB3's convention); ``--deterministic`` or ``--stochastic`` chooses. The
header, the table and every JSON row name the protocol.

``--json FILE`` writes the rows as a JSON list, each row an object with these fields:

* ``env``: the gymnasium id evaluated;
* ``side``: ``"train"`` or the held-out side's name (``"heldout"`` with ``--env``);
* ``protocol``: ``"greedy"`` (argmax actions) or ``"sampled"`` (actions drawn from the policy);
* ``episodes``: episodes run; ``successes``: how many ended with the env's success signal true
  (``null`` for an env that gives none, e.g. CartPole);
* ``success_rate``: ``successes / episodes``; ``success_ci95``: ``[lo, hi]``, its 95% Wilson interval
  (both ``null`` without a success signal);
* ``mean_return``, ``mean_length``: mean episode return and length in steps;
* ``seeds``: the side's range of reset seeds, e.g. ``"1000000000-1999999999"``.

``--gif FILE`` records the first ``--gif-episodes`` episodes of the first held-out side (the ``--env`` env
with ``--env``) with the mission written above each frame. ``--attention FILE`` (tlb models) plots, for one
episode of that side, how much each step's fast stream reads each slow latent, with the chunk boundaries
(where the slow latents update) marked. Both come from ``agents.visualization``.

A model trained with ``runners.ppo --previous-action-reward`` is evaluated on observations that hold the
previous action and reward too: its observation space says so (``side_for_model``).

Bad input (a missing or damaged model file, an unknown env or suite, a model trained on other observations
or actions than the env's, a CUDA device on a machine without one) is one line on stderr and exit code 2,
before any episode runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from agents import MemoryPPO
from agents.atomic import atomic_write_json
from agents.evaluation import evaluate_model, protocol_name
from agents.loading import check_env_matches, load_model
from agents.visualization import plot_attention, record_gif, rgb_frames_problem
from envs.make import resolve_env_spec
from envs.suites import SuiteSide, get_suite, heldout_side, list_suites, suite_takes_env
from runners.cli import (
    UsageError,
    check_device,
    make_parser,
    non_negative_int,
    positive_int,
    resolve_stochastic_eval,
    run_main,
    set_threads,
)


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "python -m runners.evaluate",
        "Evaluate a trained MemoryPPO model on an env or on a suite's training and held-out sides.",
    )
    parser.add_argument("model", help="the model.zip a training run saved")
    parser.add_argument("--env", default=None, help="evaluate on this env id, on seeds from 1e9 on")
    parser.add_argument(
        "--suite",
        default=None,
        help=f"evaluate on a suite's train and held-out sides: {', '.join(list_suites())}",
    )
    parser.add_argument("--episodes", type=positive_int, default=200, help="episodes per env")
    actions = parser.add_mutually_exclusive_group()
    actions.add_argument(
        "--deterministic",
        dest="deterministic",
        action="store_true",
        default=None,
        help="greedy: take the likeliest action (default on non-MiniGrid envs, SB3's convention)",
    )
    actions.add_argument(
        "--stochastic",
        dest="deterministic",
        action="store_false",
        default=None,
        help="sample actions from the policy (default on MiniGrid/BabyAI envs, as BabyAI's evaluator)",
    )
    parser.add_argument("--n-envs", type=positive_int, default=8, help="envs evaluated in parallel")
    parser.add_argument("--subproc", action="store_true", help="run the envs in subprocesses")
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="where the envs' seed cycles start; seeds sampled actions",
    )
    parser.add_argument(
        "--device", default="auto", help="torch device: auto (CUDA if any), cpu, cuda, cuda:N"
    )
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (unset: cores - 1)")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the table as JSON rows")
    parser.add_argument(
        "--gif",
        default=None,
        metavar="FILE",
        help="record episodes (with --suite: of its first held-out side)",
    )
    parser.add_argument("--gif-episodes", type=positive_int, default=3, help="episodes in the GIF")
    parser.add_argument(
        "--attention",
        default=None,
        metavar="FILE",
        help="PNG of one episode's reads of the slow latents (tlb models; same side as --gif)",
    )
    return parser


# ---------------------------------------------------------------------- what to evaluate


def evaluation_sides(args: argparse.Namespace) -> list[SuiteSide]:
    """The sides to evaluate, the training side first; ``--env`` alone is one side on held-out seeds."""
    if args.suite is None:
        if args.env is None:
            raise UsageError("pass --env ENV or --suite NAME to say what to evaluate on")
        resolve_env_spec(args.env)  # an unknown id fails here, naming close matches
        return [heldout_side(args.env)]  # the levels the runners' held-out evaluations draw
    if args.env is not None and args.suite in list_suites() and not suite_takes_env(args.suite):
        train_id = get_suite(args.suite).train.env_id
        raise UsageError(
            f"--env does not apply to --suite {args.suite}: it fixes its envs (training on {train_id})"
        )
    return list(get_suite(args.suite, args.env).sides())


def check_output_path(flag: str, value: str | None) -> Path | None:
    """The path to write ``flag``'s output to, refused when its directory is missing or it is a directory."""
    if value is None:
        return None
    path = Path(value)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory: pass a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {path}: directory {path.parent} does not exist")
    return path


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
    return str(getattr(model.policy, "memory_name", type(model.policy.memory).__name__))


# ---------------------------------------------------------------------- the table


def evaluate_side(model: MemoryPPO, side: SuiteSide, args: argparse.Namespace) -> dict[str, Any]:
    """One row of the table: ``args.episodes`` episodes on ``side``, with ``args.deterministic`` actions."""
    n_envs = min(args.n_envs, args.episodes)
    env = side.make_vec_env(
        n_envs, seed=args.seed, vec_env_cls=SubprocVecEnv if args.subproc else DummyVecEnv
    )
    try:
        result = evaluate_model(model, env, args.episodes, deterministic=args.deterministic)
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


# ---------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    check_device(args.device)
    set_threads(args.threads)
    flags = {"--json": args.json, "--gif": args.gif, "--attention": args.attention}
    outputs = {flag: check_output_path(flag, value) for flag, value in flags.items()}
    sides = evaluation_sides(args)
    # Sampled on MiniGrid/BabyAI, greedy elsewhere, unless the user chose: one protocol for every side.
    stochastic = None if args.deterministic is None else not args.deterministic
    args.deterministic = not resolve_stochastic_eval(stochastic, sides[0].env_id)
    model = load_model(args.model, device=args.device)
    if outputs["--attention"] is not None and not model.policy.has_attention_reads:
        raise UsageError(
            f"--attention plots the reads of a tlb memory; {args.model} has memory {memory_name(model)}"
        )
    # Every side is checked before the first episode runs, and given the previous action and reward when
    # the model was trained with them (runners.ppo --previous-action-reward).
    sides = [side_for_model(model, side, args.seed) for side in sides]
    recorded = sides[1] if len(sides) > 1 else sides[0]
    problem = rgb_frames_problem(recorded) if outputs["--gif"] is not None else None
    if problem is not None:
        raise UsageError(
            f"--gif: {recorded.env_id} cannot draw frames ({problem}); --gif works on envs that render "
            "rgb_array frames (MiniGrid/BabyAI, classic control), --json and --attention work on any env"
        )

    set_random_seed(args.seed)
    protocol = protocol_name(args.deterministic)
    print(f"runners.evaluate: {args.model} ({memory_name(model)} memory, {protocol} actions)")
    rows = []
    for side in sides:
        start = time.time()
        rows.append(evaluate_side(model, side, args))
        print(
            f"  {side.name}: {side.env_id}, {args.episodes} episodes in {time.time() - start:.1f} s",
            flush=True,
        )
    print()
    print(format_table(rows))
    if any(path is not None for path in outputs.values()):
        print()
    if outputs["--json"] is not None:
        atomic_write_json(outputs["--json"], rows, indent=2)
        print(f"json: {outputs['--json']}")
    if outputs["--gif"] is not None:
        summary = record_gif(
            model, recorded, outputs["--gif"], args.gif_episodes, args.deterministic, args.seed
        )
        print(f"gif: {outputs['--gif']} ({summary})")
    if outputs["--attention"] is not None:
        summary = plot_attention(model, recorded, outputs["--attention"], args.deterministic, args.seed)
        print(f"attention: {outputs['--attention']} ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
