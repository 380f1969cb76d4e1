"""Multi-seed studies on Ray Tune: tasks x memories x seeds (x a grid of any runners.ppo flag).

    python -m runners.study --env MiniGrid-MemoryS7-v0 --memories tlb,lstm --seeds 0-2 \\
        --total-steps 100000 --out runs/studies/memory-s7

Each trial is one ``runners.ppo`` (or ``runners.bc``) run, called through the same ``main`` function the
command line uses, as a Ray Tune trial; its run directory is ``<out>/trials/<trial>/``. Locally Ray runs as
many trials at once as there are cores per ``--cpus-per-trial``; with ``--address`` the same command runs on
an existing Ray cluster. The study writes ``trials.csv`` (one row per trial) and the report of
``runners.report`` (``report.md`` and plots) into ``--out``, and ``--resume OUT`` continues an interrupted
study with Ray Tune's experiment restore: finished trials are not rerun, unfinished PPO trials continue from
their last checkpoint, unfinished BC trials restart.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import itertools
import json
import logging
import os
import platform
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.atomic import atomic_write
from agents.reporting import RUN_COMPLETE
from policies.memories import MEMORY_CLASSES, memory_parameters
from runners.cli import (
    MEMORY_FLAGS,
    UsageError,
    make_parser,
    option_words,
    output_directory,
    parser_options,
    positive_int,
    ray_address,
    resolve_option,
    run_main,
    write_json,
)

STUDY_EXTRA = 'runners.study needs the study extra: pip install -e ".[study]" (Ray Tune, Optuna, rliable)'
ALGOS = ("ppo", "bc")
# What each evaluation env of a trial reports (agents.reporting.flatten_results), a --metric to search on.
EVAL_METRICS = ("success_rate", "mean_reward", "mean_ep_length")
# Flags the study sets for every trial itself.
STUDY_OWNED = {
    "env": "--env",
    "suite": "--suite",
    "memory": "--memories",
    "seed": "--seeds",
    "logdir": "--out",
    "overwrite": "--out",
    "resume": "--resume",
    "threads": "--cpus-per-trial",
    "no_progress": "(always on)",
    "demos": "--demos",
    "init_from": "(not in studies)",
}


# ---------------------------------------------------------------------- what a study runs


@dataclass(frozen=True)
class Task:
    """One task of a study: an env, a suite, or a benchmark task with its own settings.

    :param name: the task's name in reports and trial names
    :param env: the env id (for a suite: the level family of ``unseen-seeds``, else None)
    :param suite: the suite name, or None
    :param settings: runner settings by destination name (a benchmark task's budget and hyperparameters)
    :param score: what runners.report needs to score it (``BenchmarkTask.as_dict()``), or None
    :param demos: the demonstrations file of a BC task
    """

    name: str
    env: str | None = None
    suite: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    score: dict[str, Any] | None = None
    demos: str | None = None


@dataclass(frozen=True)
class TrialSpec:
    """One trial: a task, a memory, a seed and the grid values that apply to this memory."""

    name: str
    algo: str
    task: str
    memory: str
    seed: int
    variant: dict[str, Any]
    argv: list[str]  # runners.ppo / runners.bc arguments, without --logdir
    score: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        """The memory and its grid values, e.g. ``"tlb chunk_size=4"``: what reports compare."""
        return " ".join([self.memory, *(f"{key}={value}" for key, value in self.variant.items())])


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,3,7"`` -> [0, 3, 7]; ``"5"`` -> [5]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                first, last = part.split("-", 1)
                seeds.extend(range(int(first), int(last) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise UsageError(f"--seeds {text!r}: write a range like 0-4 or a list like 0,3,7") from None
    if not seeds:
        raise UsageError(f"--seeds {text!r} is an empty range: write first-last with first <= last, e.g. 0-4")
    return sorted(set(seeds))


def runner_module(algo: str) -> Any:
    """``runners.ppo`` or ``runners.bc``: the trial calls its ``main`` and validates flags with its parser."""
    if algo == "ppo":
        from runners import ppo

        return ppo
    from runners import bc

    return bc


def resolve_key(actions: dict[str, argparse.Action], key: str, where: str) -> argparse.Action:
    """The option a grid key or study flag names (``cli.resolve_option``), unless the study sets it itself."""
    action = resolve_option(actions, key, where)
    if action.dest in STUDY_OWNED:
        raise UsageError(
            f"{where}: {key!r} is set by the study for every trial: use {STUDY_OWNED[action.dest]}"
        )
    return action


def convert(action: argparse.Action, text: Any, where: str) -> Any:
    """A grid value converted as the runner's parser would (so a bad value fails before anything runs)."""
    if isinstance(action, (argparse.BooleanOptionalAction, argparse._StoreTrueAction)):
        if str(text).lower() in ("1", "true", "yes", "on"):
            return True
        if str(text).lower() in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"{where}: {action.dest} takes true or false, got {text!r}")
    try:
        return action.type(text) if action.type is not None else text
    except (argparse.ArgumentTypeError, ValueError) as error:
        raise UsageError(f"{where}: {action.dest}={text}: {error}") from None


def parse_grid(items: list[str], actions: dict[str, argparse.Action]) -> dict[str, list[Any]]:
    """``["lr=1e-4,1e-3", "chunk-size=4,8"]`` -> ``{"lr": [1e-4, 1e-3], "chunk_size": [4, 8]}``."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise UsageError(f"--grid {item!r}: write key=value1,value2 (e.g. --grid lr=1e-4,1e-3)")
        action = resolve_key(actions, key, f"--grid {item}")
        grid[action.dest] = [convert(action, value, f"--grid {item}") for value in values.split(",")]
    return grid


def user_settings(parser: argparse.ArgumentParser, rest: list[str], required: list[str]) -> dict[str, Any]:
    """The runner flags given to the study (``--total-steps 50000 ...``), by destination, validated by the
    runner's own parser; flags the study owns are refused."""
    actions = parser_options(parser)
    # Every flag the runner accepts, including a second flag of one destination (--deterministic).
    flags = {flag: action for action in parser._actions for flag in action.option_strings}
    for word in rest:
        if word.startswith("--"):
            flag = word.split("=", 1)[0]
            # A flag named otherwise than its destination (--deterministic) is checked as that destination;
            # every other word as written, so that an error names it.
            action = flags.get(flag)
            renamed = action is not None and flag.lstrip("-").replace("-", "_") != action.dest
            resolve_key(actions, action.dest if renamed else flag, word)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            namespace = parser.parse_args([*rest, *required])
    except SystemExit:
        message = stderr.getvalue().strip().splitlines()
        raise UsageError(
            message[-1].removeprefix(f"{parser.prog}: error: ") if message else "bad flag"
        ) from None
    return {
        dest: value
        for dest, value in vars(namespace).items()
        if dest in actions and dest not in STUDY_OWNED and value != parser.get_default(dest)
    }


def trial_name(task: str, memory: str, variant: dict[str, Any], seed: int) -> str:
    parts = [task, memory, *(f"{key}={value}" for key, value in variant.items()), f"s{seed}"]
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", "-".join(parts))


def plan_trials(
    algo: str,
    tasks: list[Task],
    memories: list[str],
    seeds: list[int],
    settings: dict[str, Any],
    grid: dict[str, list[Any]],
) -> list[TrialSpec]:
    """Every trial of the study, in order: tasks x memories x grid x seeds.

    Settings apply in this order: the task's own (a benchmark's), the study's flags, the grid. A memory
    flag (``d_model``, ``hidden_size``, ...) applies only to the memories that take it; for the others it is
    left out, and grid points that differ only in such a flag collapse into one trial.
    """
    actions = parser_options(runner_module(algo).build_parser())
    memory_dests = {dest for dest, _, _ in MEMORY_FLAGS.values()}
    specs: list[TrialSpec] = []
    seen: set[str] = set()
    for task in tasks:
        for memory in memories:
            skipped = memory_dests - set(memory_parameters(memory))  # memory flags this memory does not take
            keys = [key for key in grid if key not in skipped]
            for values in itertools.product(*(grid[key] for key in keys)):
                variant = dict(zip(keys, values))
                for seed in seeds:
                    merged = {**task.settings, **settings, **variant}
                    argv = ["--env", task.env] if task.env else []
                    argv += ["--suite", task.suite] if task.suite else []
                    argv += ["--demos", task.demos] if task.demos else []
                    argv += ["--memory", memory, "--seed", str(seed)]
                    for dest, value in merged.items():
                        if dest not in skipped:
                            argv += option_words(actions[dest], value)
                    name = trial_name(task.name, memory, variant, seed)
                    if name in seen:
                        continue
                    seen.add(name)
                    specs.append(TrialSpec(name, algo, task.name, memory, seed, variant, argv, task.score))
    return specs


# ---------------------------------------------------------------------- the trial


def last_error_line(text: str) -> str:
    """The last ``error: ...`` line a runner printed (or the last line of a traceback)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    line = (errors or lines or ["failed without a message"])[-1]
    return line.removeprefix("error: ").removeprefix(f"{TrialFailed.__name__}: ")


class TrialFailed(RuntimeError):
    """A trial that ended without a model: the message is the runner's one-line error."""


def run_trial(config: dict[str, Any]) -> None:
    """The Ray Tune trainable: one ``runners.ppo`` / ``runners.bc`` run, reporting to Ray Tune.

    A PPO trial whose run directory already holds a checkpoint (an interrupted study being resumed)
    continues from it with ``--resume``; a BC trial starts again. The runner's output goes to
    ``stdout.log`` in the run directory, not to the study's console.
    """
    from ray import tune

    spec = TrialSpec(**config["spec"])
    run_dir = Path(config["study_dir"]) / "trials" / spec.name
    run_dir.mkdir(parents=True, exist_ok=True)
    if spec.algo == "ppo" and (run_dir / "config.json").is_file() and any(run_dir.glob("checkpoints/*.zip")):
        argv = ["--resume", str(run_dir)]
    else:
        argv = [*spec.argv, "--logdir", str(run_dir), "--overwrite", "--no-progress"]
        argv += ["--threads", str(config["threads"])]
    write_json(run_dir / "trial.json", {**asdict(spec), "label": spec.label})
    module = runner_module(spec.algo)
    with (
        open(run_dir / "stdout.log", "a") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        print(f"$ python -m runners.{spec.algo} {' '.join(argv)}", flush=True)
        try:
            code = module.main(argv, reporter=tune.report)
        except (UsageError, ValueError) as error:
            print(f"error: {str(error).splitlines()[0]}", flush=True)
            code = 2
    if code != 0:
        raise TrialFailed(last_error_line((run_dir / "stdout.log").read_text()))


# ---------------------------------------------------------------------- the study


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
        "--tasks", default=None, help="with --benchmark: only these of its tasks (comma-separated names)"
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


def study_tasks(args: argparse.Namespace) -> list[Task]:
    """The tasks the study's arguments name; unknown envs, suites and benchmarks fail here."""
    from envs.make import resolve_env_spec
    from envs.suites import get_suite

    chosen = [name for name in ("env", "suite", "benchmark") if getattr(args, name)]
    if args.suite and args.env and len(args.env) == 1:
        chosen.remove("env")  # --suite unseen-seeds --env ID
    if len(chosen) != 1:
        raise UsageError(
            "name what to run with exactly one of --env ID (repeatable), --suite NAME, --benchmark NAME"
        )
    if args.benchmark:
        from envs.benchmark import load_benchmark

        benchmark = load_benchmark(args.benchmark)
        chosen_tasks = benchmark.tasks
        if args.tasks:
            names = [name.strip() for name in args.tasks.split(",") if name.strip()]
            known = [task.name for task in benchmark.tasks]
            unknown = [name for name in names if name not in known]
            if unknown or not names:
                missing = unknown[0] if unknown else "(none)"
                raise UsageError(
                    f"--tasks: benchmark {benchmark.name} has no task {missing!r}: "
                    f"use some of {', '.join(known)}"
                )
            chosen_tasks = tuple(task for task in benchmark.tasks if task.name in names)
        tasks = []
        for task in chosen_tasks:
            resolve_env_spec(task.env)
            settings = {**task.hyperparams, "stochastic_eval": not task.deterministic_eval}
            tasks.append(Task(task.name, env=task.env, settings=settings, score=task.as_dict()))
        return tasks
    if args.suite:
        env = args.env[0] if args.env else None
        suite = get_suite(args.suite, env)
        return [Task(suite.name if env is None else f"{suite.name}-{env}", env=env, suite=args.suite)]
    for env in args.env:
        resolve_env_spec(env)
    return [Task(env, env=env) for env in args.env]


def attach_demos(args: argparse.Namespace, tasks: list[Task]) -> list[Task]:
    """BC tasks with their demonstrations file (``--demos FILE`` or ``--demos ENV=FILE``)."""
    if args.algo != "bc":
        if args.demos:
            raise UsageError("--demos is for --algo bc")
        return tasks
    files: dict[str | None, str] = {}
    for item in args.demos or []:
        env, sep, path = item.rpartition("=")
        files[env if sep else None] = path
    with_demos = []
    for task in tasks:
        path = files.get(task.env if task.suite is None else task.name) or files.get(None)
        if path is None:
            raise UsageError(f"--algo bc needs demonstrations for {task.name}: pass --demos {task.name}=FILE")
        if not Path(path).is_file():
            raise UsageError(f"demos file {path} does not exist: create it with python -m runners.demos")
        # runners.bc takes the env from the demos file; --env there only checks it.
        with_demos.append(
            Task(
                task.name,
                env=task.env if task.suite is None else None,
                suite=task.suite,
                settings=task.settings,
                score=task.score,
                demos=path,
            )
        )
    return with_demos


def default_study_dir() -> Path:
    return Path("runs") / "studies" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def machine_description() -> str:
    return f"{platform.node()}: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"


def single_thread_gflops(seconds: float = 0.3, size: int = 256) -> float:
    """Float32 matrix-multiply throughput of one torch thread, in GFLOP/s: a yardstick recorded with every
    study, because the same study's wall time differs between machines, and between draws of the same
    virtual machine (1.5-1.7x between two sessions of this project's 2-core machine). Measured before any
    trial starts. It tracks arithmetic throughput, not the per-operation overhead that small memories
    spend much of their time in, so it explains wall times only roughly."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        torch.mm(a, b)  # warm-up
        count, begin = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - begin) < seconds:
            torch.mm(a, b)
            count += 1
    finally:
        torch.set_num_threads(threads)
    return 2 * size**3 * count / elapsed / 1e9


@dataclass
class StudyPlan:
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
    tasks = attach_demos(args, study_tasks(args))
    runner_parser = runner_module(args.algo).build_parser()
    required = ["--demos", "unused"] if args.algo == "bc" else []
    settings = user_settings(runner_parser, rest, required)
    actions = parser_options(runner_parser)
    search_space: dict[str, Any] = {}
    if args.search:
        search_space = parse_search_space(args.grid, actions)
        grid: dict[str, list[Any]] = {}
        if len(memories) * len(tasks) != 1:
            raise UsageError("--search tunes one memory on one task: pass one --memories and one task")
        check_search_metric(args.metric, tasks[0])
    else:
        grid = parse_grid(args.grid, actions)
    specs = plan_trials(args.algo, tasks, memories, seeds if not args.search else seeds[:1], settings, grid)
    study_dir = Path(args.out) if args.out else default_study_dir()
    return StudyPlan(args, argv, specs, study_dir, search_space)


def check_search_metric(metric: str, task: Task) -> None:
    """Refuse a ``--metric`` that the task's trials never report (Optuna would wait for it in vain).

    :raises UsageError: naming the metrics the trials do report
    """
    from envs.suites import get_suite

    sides = ["heldout"]
    if task.suite is not None:
        sides = ["train", *(f"heldout/{side.name}" for side in get_suite(task.suite, task.env).heldout)]
    reported = [f"eval/{side}/{name}" for side in sides for name in EVAL_METRICS]
    if metric not in reported:
        raise UsageError(f"--metric {metric}: the trials do not report it; use one of {', '.join(reported)}")


def parse_search_space(items: list[str], actions: dict[str, argparse.Action]) -> dict[str, Any]:
    """``--grid lr=log:1e-4:1e-2 chunk_size=4,8,16``: ``log:LOW:HIGH`` (log-uniform), ``uniform:LOW:HIGH``,
    ``int:LOW:HIGH`` or a list of choices, for Ray Tune's Optuna searcher."""
    from ray import tune

    space: dict[str, Any] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise UsageError(f"--grid {item!r}: write key=log:LOW:HIGH, key=uniform:LOW:HIGH or key=v1,v2")
        action = resolve_key(actions, key, f"--grid {item}")
        kind, _, bounds = values.partition(":")
        if kind in ("log", "uniform", "int"):
            try:
                low, high = (float(bound) for bound in bounds.split(":"))
            except ValueError:
                raise UsageError(f"--grid {item!r}: write {kind}:LOW:HIGH") from None
            sampler = {"log": tune.loguniform, "uniform": tune.uniform}.get(kind)
            space[action.dest] = sampler(low, high) if sampler else tune.randint(int(low), int(high) + 1)
        else:
            space[action.dest] = tune.choice(
                [convert(action, value, f"--grid {item}") for value in values.split(",")]
            )
    if not space:
        raise UsageError(
            "--search needs a search space: --grid key=log:LOW:HIGH (or uniform:, int:, or choices)"
        )
    return space


def trial_outcomes(results: Iterable[Any], specs: list[TrialSpec]) -> dict[str, tuple[TrialSpec, str, str]]:
    """Each trial's (spec, status, one-line error) from Ray's results: ``failed``, ``finished`` (it reported
    ``RUN_COMPLETE``) or ``unfinished`` (interrupted while running); ``specs`` (a grid's trials) that have
    no result yet are ``pending``.

    A trial that Ray had queued but not started when the study was interrupted has a result without a
    config (it never reported): it is pending too, not an error.
    """
    outcomes: dict[str, tuple[TrialSpec, str, str]] = {}
    for result in results:
        if result.config is None:
            continue
        spec = TrialSpec(**result.config["spec"])
        if "search" in result.config:
            trial_id = (result.metrics or {}).get("trial_id") or Path(result.path).name.rsplit("-", 1)[-1]
            spec = sampled_spec(result.config, trial_id)
        if result.error:
            outcomes[spec.name] = (spec, "failed", last_error_line(str(result.error)))
        elif (result.metrics or {}).get(RUN_COMPLETE):
            outcomes[spec.name] = (spec, "finished", "")
        else:
            outcomes[spec.name] = (spec, "unfinished", "")
    for spec in specs:
        outcomes.setdefault(spec.name, (spec, "pending", ""))
    return outcomes


# Keys of a search trial's config that are not sampled settings.
SEARCH_CONFIG_KEYS = ("spec", "study_dir", "threads", "search")


def sampled_spec(config: dict[str, Any], trial_id: str) -> TrialSpec:
    """The trial a search sampled: the base trial with the sampled settings added to its arguments and
    variant, named after Ray's trial id."""
    spec = TrialSpec(**config["spec"])
    sampled = {key: value for key, value in config.items() if key not in SEARCH_CONFIG_KEYS}
    actions = parser_options(runner_module(spec.algo).build_parser())
    flags = itertools.chain.from_iterable(option_words(actions[key], value) for key, value in sampled.items())
    return TrialSpec(
        **{
            **asdict(spec),
            "name": f"{spec.name}-{trial_id}",
            "argv": [*spec.argv, *flags],
            "variant": {**spec.variant, **sampled},
        }
    )


def search_trial(config: dict[str, Any]) -> None:
    """A trial of an Optuna search: the base trial with the sampled settings."""
    from ray import tune

    spec = sampled_spec(config, tune.get_context().get_trial_id())
    run_trial({**config, "spec": asdict(spec)})


def quiet_ray() -> None:
    """Keep Ray's and Optuna's logs (and trial tracebacks) off the console: the study summarises failures."""
    for name in ("ray", "ray.tune", "ray.train", "ray.data", "optuna"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def write_trials_csv(study_dir: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]

    def write(path: Path) -> None:
        with open(path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(study_dir / "trials.csv", write)


def trial_row(spec: TrialSpec, run_dir: Path, status: str, error: str) -> dict[str, Any]:
    """One row of ``trials.csv``: the trial's config, final metrics, frames, wall time, fps and status."""
    row: dict[str, Any] = {
        "trial": spec.name,
        "status": status,
        "task": spec.task,
        "memory": spec.memory,
        "seed": spec.seed,
        **{f"grid/{key}": value for key, value in spec.variant.items()},
        "argv": " ".join(spec.argv),
    }
    summary = read_json(run_dir / "run_summary.json")
    row.update(frames=summary.get("frames"), wall_s=summary.get("seconds"), fps=summary.get("fps"))
    for name, result in read_json(run_dir / "final_eval.json").items():
        row[f"final/{name}/success_rate"] = result.get("success_rate")
        row[f"final/{name}/mean_reward"] = result.get("mean_return")
        row[f"final/{name}/mean_ep_length"] = result.get("mean_length")
    row["run_dir"] = str(run_dir)
    row["error"] = error
    return row


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def describe_tasks() -> str:
    """What ``--suite`` and ``--benchmark`` can name: each suite's sides, each benchmark's tasks with their
    budget, score, evaluation protocol, normalisation and threshold."""
    from envs.benchmark import list_benchmarks, load_benchmark
    from envs.suites import list_suites

    lines = ["suites (--suite NAME):"]
    lines += [f"  {name}: {description}" for name, description in list_suites().items()]
    lines.append("benchmarks (--benchmark NAME):")
    for name, description in list_benchmarks().items():
        lines.append(f"  {name}: {description}")
        for task in load_benchmark(name).tasks:
            budget = task.hyperparams.get("total_steps", "runners.ppo's default")
            threshold = "none" if task.threshold is None else task.threshold
            protocol = "greedy" if task.deterministic_eval else "sampled"
            lines.append(
                f"    {task.name}: {task.env}, {budget} frames, score {task.metric} ({protocol} actions), "
                f"normalised from [{task.min}, {task.max}], threshold {threshold}"
            )
    return "\n".join(lines)


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
        saved = read_json(Path(resume) / "study.json")
        if not saved:
            raise UsageError(f"--resume {resume}: no study.json there; pass the --out directory of a study")
        argv = [*saved["argv"], "--out", resume]
    plan = plan_study(argv)
    study_dir = plan.study_dir.resolve()
    if resume is None:
        if (study_dir / "study.json").exists():
            raise UsageError(
                f"study directory {study_dir} already holds a study: --resume it or pass another --out"
            )
        study_dir.mkdir(parents=True, exist_ok=True)
        write_json(
            study_dir / "study.json",
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


# What a study ships to a remote cluster as the trials' working directory: the code, not the runs.
SHIPPED_EXCLUDES = ["runs/", ".venv/", ".git/", "*.zip", "*.npz", "__pycache__/", "*.egg-info/"]


def ray_init_kwargs(address: str | None, cpus_per_trial: int) -> dict[str, Any]:
    """``ray.init`` arguments: a local Ray with every core by default; with ``address`` (``auto``,
    ``ray://HOST:PORT``) an existing cluster, to which the project's code is shipped as the trials' working
    directory (the nodes need the same Python packages installed, and the study directory must be on a
    filesystem every node sees, e.g. NFS). Trials import the project's packages either way; the dashboard
    and the driver's copy of worker logs stay off."""
    project_root = str(Path(__file__).resolve().parents[1])
    env_vars = {"OMP_NUM_THREADS": str(cpus_per_trial)}
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    if address:
        runtime_env = {"working_dir": project_root, "excludes": SHIPPED_EXCLUDES, "env_vars": env_vars}
        return {**kwargs, "address": address, "runtime_env": runtime_env}
    env_vars["PYTHONPATH"] = os.pathsep.join(filter(None, [project_root, os.environ.get("PYTHONPATH")]))
    return {**kwargs, "num_cpus": os.cpu_count(), "runtime_env": {"env_vars": env_vars}}


def run_study(plan: StudyPlan, study_dir: Path, resume: bool) -> int:
    """Run (or resume) the study's trials on Ray Tune, then write ``trials.csv`` and the report."""
    import ray
    from ray import tune

    from runners.study_console import ProgressCallback, StudyProgress, set_console, trial_dirname

    args = plan.args
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Ray starts workers at niceness 15; trials are the study's whole work, so they get a normal share.
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(**ray_init_kwargs(args.address, args.cpus_per_trial))
    quiet_ray()
    console = set_console(StudyProgress([] if args.search else plan.specs))
    base = {"study_dir": str(study_dir), "threads": args.cpus_per_trial}
    trainable = tune.with_resources(search_trial if args.search else run_trial, {"cpu": args.cpus_per_trial})
    start = time.time()
    console.start()
    try:
        if resume:
            tuner = tune.Tuner.restore(
                str(study_dir / "ray"), trainable, resume_unfinished=True, resume_errored=True
            )
        else:
            if args.search:
                from ray.tune.search.optuna import OptunaSearch

                param_space = {"spec": asdict(plan.specs[0]), **base, "search": True, **plan.search_space}
                tune_config = tune.TuneConfig(
                    search_alg=OptunaSearch(),
                    metric=args.metric,
                    mode=args.mode,
                    num_samples=args.num_samples,
                    max_concurrent_trials=args.max_concurrent,
                    trial_name_creator=trial_dirname,
                    trial_dirname_creator=trial_dirname,
                )
            else:
                param_space = {"spec": tune.grid_search([asdict(spec) for spec in plan.specs]), **base}
                tune_config = tune.TuneConfig(
                    max_concurrent_trials=args.max_concurrent,
                    trial_name_creator=trial_dirname,
                    trial_dirname_creator=trial_dirname,
                )
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=tune_config,
                run_config=tune.RunConfig(
                    name="ray",
                    storage_path=str(study_dir),
                    verbose=0,
                    callbacks=[ProgressCallback()],
                    failure_config=tune.FailureConfig(max_failures=0),
                ),
            )
        results = tuner.fit()
    finally:
        console.stop()
    wall = time.time() - start

    outcomes = trial_outcomes(results, [] if args.search else plan.specs)
    rows = [
        trial_row(spec, study_dir / "trials" / name, status, error)
        for name, (spec, status, error) in outcomes.items()
    ]
    write_trials_csv(study_dir, rows)
    study = read_json(study_dir / "study.json")
    study.update(finished=dt.datetime.now().isoformat(timespec="seconds"), wall_s_last_session=wall)
    write_json(study_dir / "study.json", study)
    ray.shutdown()

    from runners.report import write_report

    report = write_report([study_dir], study_dir)
    counts = {
        status: sum(row["status"] == status for row in rows)
        for status in ("finished", "failed", "unfinished", "pending")
    }
    print(f"\n{counts['finished']} of {len(rows)} trials finished in {wall:.0f} s")
    print(f"trials: {study_dir / 'trials.csv'}")
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
