"""What a study runs on: an env, a suite, or the tasks of a benchmark, each with its own settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.command_line import UsageError


@dataclass(frozen=True)
class Task:
    """One task of a study: an env, a suite, or a benchmark task with its own settings.

    :param name: the task's name in reports and trial names
    :param env: the env id (for a suite: the level family of ``unseen-seeds``, else None)
    :param suite: the suite name, or None
    :param settings: runner settings by destination name (a benchmark task's budget and hyperparameters)
    :param score: what the report needs to score it (``BenchmarkTask.as_dict()``), or None
    :param demos: the demonstrations file of a BC task
    """

    name: str
    env: str | None = None
    suite: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    score: dict[str, Any] | None = None
    demos: str | None = None


def study_tasks(
    envs: list[str] | None, suite: str | None, benchmark: str | None, task_names: str | None = None
) -> list[Task]:
    """The tasks a study names: envs (one task each), a suite (with ``envs`` holding at most its level
    family), or a benchmark, optionally only its tasks ``task_names`` (comma-separated).

    :raises UsageError: for an unknown env, suite, benchmark or benchmark task, or not exactly one of them
    """
    from envs.make import resolve_env_spec
    from envs.suites import get_suite

    chosen = [name for name, value in (("env", envs), ("suite", suite), ("benchmark", benchmark)) if value]
    if suite and envs and len(envs) == 1:
        chosen.remove("env")  # --suite unseen-seeds --env ID
    if len(chosen) != 1:
        raise UsageError(
            "name what to run with exactly one of --env ID (repeatable), --suite NAME, --benchmark NAME"
        )
    if benchmark:
        return benchmark_tasks(benchmark, task_names)
    if suite:
        env = envs[0] if envs else None
        chosen_suite = get_suite(suite, env)
        return [
            Task(chosen_suite.name if env is None else f"{chosen_suite.name}-{env}", env=env, suite=suite)
        ]
    assert envs is not None
    for env in envs:
        resolve_env_spec(env)
    return [Task(env, env=env) for env in envs]


def benchmark_tasks(name: str, task_names: str | None = None) -> list[Task]:
    """The tasks of the benchmark ``name`` (``envs/benchmarks/<name>.yaml``), or only ``task_names`` (task
    names, or a split's name for all of its tasks), each with its budget, hyperparameters and evaluation
    protocol as settings and its normalisation as score."""
    from envs.benchmark import load_benchmark
    from envs.make import resolve_env_spec

    benchmark = load_benchmark(name)
    chosen_tasks = benchmark.tasks
    if task_names:
        names = [task.strip() for task in task_names.split(",") if task.strip()]
        # A split's name stands for all of its tasks: --tasks test runs the test split.
        splits = {task.split for task in benchmark.tasks if task.split is not None}
        names = [
            name
            for item in names
            for name in (
                [task.name for task in benchmark.tasks if task.split == item] if item in splits else [item]
            )
        ]
        known = [task.name for task in benchmark.tasks]
        unknown = [task for task in names if task not in known]
        if unknown or not names:
            missing = unknown[0] if unknown else "(none)"
            split_names = f" or a split ({', '.join(sorted(splits))})" if splits else ""
            raise UsageError(
                f"--tasks: benchmark {benchmark.name} has no task {missing!r}: use some of {', '.join(known)}"
                + split_names
            )
        chosen_tasks = tuple(task for task in benchmark.tasks if task.name in names)
    tasks = []
    for task in chosen_tasks:
        resolve_env_spec(task.env)
        settings = {**task.hyperparams, "stochastic_eval": not task.deterministic_eval}
        tasks.append(Task(task.name, env=task.env, settings=settings, score=task.as_dict()))
    return tasks


def attach_demos(algo: str, demos: list[str] | None, tasks: list[Task]) -> list[Task]:
    """BC tasks with their demonstrations file (``--demos FILE`` or ``--demos ENV=FILE`` in ``demos``).

    :raises UsageError: for demos given to a PPO study, a BC task without demos, or a missing file
    """
    if algo != "bc":
        if demos:
            raise UsageError("--demos is for --algo bc")
        return tasks
    files: dict[str | None, str] = {}
    for item in demos or []:
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
            split = f"[{task.split}] " if task.split else ""
            lines.append(
                f"    {split}{task.name}: {task.env}, {budget} frames, score {task.metric} "
                f"({protocol} actions), normalised from [{task.min}, {task.max}], threshold {threshold}"
            )
    return "\n".join(lines)
