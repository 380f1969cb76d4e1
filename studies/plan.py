"""The trials of a study: tasks x memories x grid x seeds, each a runner's command line.

A setting reaches a trial as the words that set it on the runner's own parser (``agents.command_line``),
so the runner checks and converts it exactly as it does typed flags, and a bad value fails here, before
anything runs. The runner's parser is given by the caller (``runners.study`` passes ``runners.ppo``'s or
``runners.bc``'s), which keeps this module free of the runners.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import re
from dataclasses import asdict, dataclass
from typing import Any

from agents.command_line import MEMORY_FLAGS, UsageError, option_words, parser_options, resolve_option
from policies.memories import memory_parameters
from studies.tasks import Task

ALGOS = ("ppo", "bc")
# Flags the study sets for every trial itself, and the study flag that sets each.
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


@dataclass(frozen=True)
class TrialSpec:
    """One trial: a task, a memory, a seed and the grid values that apply to this memory.

    :param name: the trial's name, also its run directory's (``<study>/trials/<name>``)
    :param algo: ``ppo`` or ``bc``
    :param task: the task's name
    :param memory: the memory
    :param seed: the run seed
    :param variant: the grid values (or sampled settings) of this trial, by destination
    :param argv: the runner's arguments, without ``--logdir``
    :param score: what the report needs to score a benchmark task, or None
    """

    name: str
    algo: str
    task: str
    memory: str
    seed: int
    variant: dict[str, Any]
    argv: list[str]
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


def resolve_key(actions: dict[str, argparse.Action], key: str, where: str) -> argparse.Action:
    """The option a grid key or study flag names (``resolve_option``), unless the study sets it itself."""
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


# What each evaluation env of a trial reports (agents.reporting.flatten_results), a --metric to search on.
EVAL_METRICS = ("success_rate", "mean_reward", "mean_ep_length")


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
    """``<task>-<memory>[-<key>=<value>...]-s<seed>``, with anything but ``[A-Za-z0-9_.=-]`` as ``_``."""
    parts = [task, memory, *(f"{key}={value}" for key, value in variant.items()), f"s{seed}"]
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", "-".join(parts))


def plan_trials(
    parser: argparse.ArgumentParser,
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

    :param parser: the parser of the runner each trial calls (its flags spell the settings)
    :param algo: ``ppo`` or ``bc``, recorded in each trial
    """
    actions = parser_options(parser)
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


def sampled_spec(
    spec: TrialSpec, sampled: dict[str, Any], trial_id: str, parser: argparse.ArgumentParser
) -> TrialSpec:
    """The trial a search sampled: ``spec`` with the ``sampled`` settings added to its arguments and
    variant, named after the search's trial id."""
    actions = parser_options(parser)
    flags = itertools.chain.from_iterable(option_words(actions[key], value) for key, value in sampled.items())
    return TrialSpec(
        **{
            **asdict(spec),
            "name": f"{spec.name}-{trial_id}",
            "argv": [*spec.argv, *flags],
            "variant": {**spec.variant, **sampled},
        }
    )
