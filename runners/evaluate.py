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
previous action and reward too: its observation space says so
(``agents.evaluation_table.side_for_model``, which also evaluates the sides and lays out the table).

Bad input (a missing or damaged model file, an unknown env or suite, a model trained on other observations
or actions than the env's, a CUDA device on a machine without one) is one line on stderr and exit code 2,
before any episode runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stable_baselines3.common.utils import set_random_seed

from agents.atomic import atomic_write_json
from agents.evaluation import protocol_name
from agents.evaluation_table import evaluate_sides, format_table, memory_name, side_for_model
from agents.loading import load_model
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
    rows = evaluate_sides(
        model,
        sides,
        args.episodes,
        args.deterministic,
        n_envs=args.n_envs,
        seed=args.seed,
        subproc=args.subproc,
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
