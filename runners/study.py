"""Multi-seed studies on Ray Tune: tasks x memories x seeds (x a grid of any runners.ppo flag).

    python -m runners.study --env MiniGrid-MemoryS7-v0 --memories tlb,lstm --seeds 0-2 \\
        --total-steps 100000 --out runs/studies/memory-s7

Each trial is one ``runners.ppo`` (or ``runners.bc``) run, called through the same ``main`` function the
command line uses, as a Ray Tune trial; its run directory is ``<out>/trials/<trial>/``. Locally Ray runs as
many trials at once as there are cores per ``--cpus-per-trial``; with ``--address`` the same command runs on
an existing Ray cluster. The study writes ``trials.csv`` (one row per trial) and the report of
``runners.report`` (``report.md`` and plots) into ``--out``, and ``--resume OUT`` continues an interrupted
study with Ray Tune's experiment restore: finished trials are not rerun, unfinished PPO trials continue from
their last checkpoint, unfinished BC trials restart. The study's files name ``--out`` as it was typed (a
relative path stays relative); only Ray is given the absolute path.

The work is done by the ``studies`` library (tasks, plan, execution, records, report); this module parses the
command line and calls it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.atomic import write_json
from policies.memories import MEMORY_CLASSES
from runners.cli import (
    UsageError,
    make_parser,
    output_directory,
    parser_options,
    positive_int,
    ray_address,
    run_main,
)
from studies.execution import runner_module
from studies.machine import machine_description, single_thread_gflops
from studies.plan import (
    ALGOS,
    TrialSpec,
    check_search_metric,
    parse_grid,
    parse_search_space,
    parse_seeds,
    plan_trials,
    user_settings,
)
from studies.records import STUDY_FILE, read_json, trial_row, write_trials_csv
from studies.tasks import attach_demos, describe_tasks, study_tasks

STUDY_EXTRA = 'runners.study needs the study extra: pip install -e ".[study]" (Ray Tune, Optuna, rliable)'
# The runner each trial calls, by --algo: a module with build_parser() and main(argv, reporter=...).
RUNNERS = {"ppo": "runners.ppo", "bc": "runners.bc"}


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "python -m runners.study",
        "Run tasks x memories x seeds (x a grid) as Ray Tune trials, then write trials.csv and the report. "
        "Any other runners.ppo (or runners.bc) flag, e.g. --total-steps 50000, applies to every trial.",
    )
    parser.allow_abbrev = False  # "--seed 3" must not pass for "--seeds 3": the runners' flags pass through
    what = parser.add_argument_group("what to run")
    what.add_argument("--env", action="append", default=None, help="an env id (repeatable: one task each)")
    what.add_argument("--suite", default=None, help="a generalization suite (envs.suites.list_suites())")
    what.add_argument(
        "--benchmark", default=None, help="a named benchmark (envs.benchmark.list_benchmarks())"
    )
    what.add_argument(
        "--tasks",
        default=None,
        help="with --benchmark: only these of its tasks (comma-separated names, or a split: dev, test)",
    )
    what.add_argument(
        "--list", action="store_true", help="list the suites and benchmarks (tasks, budgets, normalisation)"
    )
    what.add_argument("--algo", choices=ALGOS, default="ppo", help="ppo, or bc from demonstrations")
    what.add_argument(
        "--demos", action="append", default=None, help="bc: FILE, or ENV=FILE per env (repeatable)"
    )
    what.add_argument("--memories", default="tlb,lstm", help="comma-separated memories")
    what.add_argument("--seeds", default="0-2", help="run seeds: a range 0-4 or a list 0,3,7")
    what.add_argument(
        "--grid", nargs="+", default=[], metavar="KEY=V1,V2", help="more axes over any runner flag"
    )
    where = parser.add_argument_group("where and how")
    where.add_argument(
        "--out", type=output_directory, default=None, help="study directory (default runs/studies/<time>)"
    )
    where.add_argument("--resume", default=None, metavar="STUDY_DIR", help="continue an interrupted study")
    where.add_argument(
        "--cpus-per-trial", type=positive_int, default=1, help="CPUs (and torch threads) per trial"
    )
    where.add_argument(
        "--max-concurrent", type=positive_int, default=None, help="at most this many trials at once"
    )
    where.add_argument(
        "--address",
        type=ray_address,
        default=None,
        help="an existing Ray cluster: auto, or ray://HOST:PORT (default: local)",
    )
    search = parser.add_argument_group("search (instead of a grid)")
    search.add_argument("--search", choices=("optuna",), default=None, help="tune with Ray Tune's Optuna")
    search.add_argument("--num-samples", type=positive_int, default=10, help="configurations to try")
    search.add_argument("--metric", default="eval/heldout/success_rate", help="reported metric to optimise")
    search.add_argument("--mode", choices=("max", "min"), default="max", help="maximise or minimise it")
    return parser


def runner_parser(algo: str) -> argparse.ArgumentParser:
    """The parser of the runner the trials call (``RUNNERS[algo]``): it spells and checks every setting."""
    return runner_module(RUNNERS[algo]).build_parser()


def default_study_dir() -> Path:
    return Path("runs") / "studies" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")


@dataclass
class StudyPlan:
    """A checked study: its arguments, its trials (a search's base trial), its directory as the user gave
    it, and a search's space."""

    args: argparse.Namespace
    argv: list[str]
    specs: list[TrialSpec]
    study_dir: Path
    search_space: dict[str, Any]


def plan_study(argv: list[str]) -> StudyPlan:
    """Parse and check everything (envs, memories, flags, grid, seeds) before anything starts."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    memories = [memory.strip() for memory in args.memories.split(",") if memory.strip()]
    unknown = [memory for memory in memories if memory not in MEMORY_CLASSES]
    if unknown or not memories:
        bad = unknown[0] if unknown else "(none)"
        raise UsageError(f"--memories: unknown memory {bad!r}: use some of {', '.join(MEMORY_CLASSES)}")
    seeds = parse_seeds(args.seeds)
    from envs.suites import MAX_RUN_SEED

    if seeds[0] < 0 or seeds[-1] > MAX_RUN_SEED:
        raise UsageError(f"--seeds {args.seeds}: run seeds must be in 0..{MAX_RUN_SEED}")
    tasks = attach_demos(args.algo, args.demos, study_tasks(args.env, args.suite, args.benchmark, args.tasks))
    trial_parser = runner_parser(args.algo)
    required = ["--demos", "unused"] if args.algo == "bc" else []
    settings = user_settings(trial_parser, rest, required)
    actions = parser_options(trial_parser)
    search_space: dict[str, Any] = {}
    if args.search:
        search_space = parse_search_space(args.grid, actions)
        grid: dict[str, list[Any]] = {}
        if len(memories) * len(tasks) != 1:
            raise UsageError("--search tunes one memory on one task: pass one --memories and one task")
        check_search_metric(args.metric, tasks[0])
    else:
        grid = parse_grid(args.grid, actions)
    trial_seeds = seeds if not args.search else seeds[:1]
    specs = plan_trials(trial_parser, args.algo, tasks, memories, trial_seeds, settings, grid)
    study_dir = Path(args.out) if args.out else default_study_dir()
    return StudyPlan(args, argv, specs, study_dir, search_space)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        import optuna  # noqa: F401
        import ray  # noqa: F401
        import rliable  # noqa: F401
    except ImportError:
        raise UsageError(STUDY_EXTRA) from None
    known = build_parser().parse_known_args(argv)[0]
    if known.list:
        print(describe_tasks())
        return 0
    resume = known.resume
    if resume is not None:
        saved = read_json(Path(resume) / STUDY_FILE)
        if not saved:
            raise UsageError(f"--resume {resume}: no study.json there; pass the --out directory of a study")
        argv = [*saved["argv"], "--out", resume]
    plan = plan_study(argv)
    study_dir = plan.study_dir  # as the user typed it: what the study's files and messages name
    if resume is None:
        if (study_dir / STUDY_FILE).exists():
            raise UsageError(
                f"study directory {study_dir} already holds a study: --resume it or pass another --out"
            )
        study_dir.mkdir(parents=True, exist_ok=True)
        write_json(
            study_dir / STUDY_FILE,
            {
                "argv": [
                    word
                    for i, word in enumerate(argv)
                    if word != "--out" and (i == 0 or argv[i - 1] != "--out")
                ],
                "command": " ".join(["python -m runners.study", *argv]),
                "started": dt.datetime.now().isoformat(timespec="seconds"),
                "machine": machine_description(),
                "gflops_1_thread": round(single_thread_gflops(), 1),
                "trials": [spec.name for spec in plan.specs],
            },
        )
    return run_study(plan, study_dir, resume is not None)


def run_study(plan: StudyPlan, study_dir: Path, resume: bool) -> int:
    """Run (or resume) the study's trials on Ray Tune, then write ``trials.csv``, ``study.json``'s end and
    the report, and say what finished. ``study_dir`` is the directory as the user gave it; Ray gets it
    absolute."""
    from studies.execution import Search, run_trials
    from studies.report import write_report

    args = plan.args
    search = Search(plan.search_space, args.metric, args.mode, args.num_samples) if args.search else None
    outcomes, wall = run_trials(
        plan.specs,
        study_dir.resolve(),
        RUNNERS[args.algo],
        resume=resume,
        cpus_per_trial=args.cpus_per_trial,
        max_concurrent=args.max_concurrent,
        address=args.address,
        search=search,
    )
    rows = [
        trial_row(spec, study_dir / "trials" / name, status, error)
        for name, (spec, status, error) in outcomes.items()
    ]
    trials_csv = write_trials_csv(study_dir, rows)
    study = read_json(study_dir / STUDY_FILE)
    study.update(finished=dt.datetime.now().isoformat(timespec="seconds"), wall_s_last_session=wall)
    write_json(study_dir / STUDY_FILE, study)

    report = write_report([study_dir], study_dir)
    counts = {
        status: sum(row["status"] == status for row in rows)
        for status in ("finished", "failed", "unfinished", "pending")
    }
    print(f"\n{counts['finished']} of {len(rows)} trials finished in {wall:.0f} s")
    print(f"trials: {trials_csv}")
    print(f"report: {report}")
    failed = [(row["trial"], row["error"]) for row in rows if row["status"] == "failed"]
    if counts["unfinished"] or counts["pending"]:
        print(
            f"interrupted: {counts['unfinished']} unfinished and {counts['pending']} pending trial(s); "
            f"continue with: python -m runners.study --resume {study_dir}",
            file=sys.stderr,
        )
        if not failed:
            return 130
    if failed:
        print(f"{len(failed)} trial(s) failed:", file=sys.stderr)
        for name, error in failed:
            print(f"  {name}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
