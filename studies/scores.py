"""Runs grouped for the report: the final scores of each report task (a task's evaluation env) and of each
suite on each of its sides, by label (the memory and its grid values), runs ordered by seed."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studies.runs import Run, run_metric

TRAIN_SIDE = "train"
HELDOUT_PREFIX = "heldout/"


@dataclass
class TaskScores:
    """The final scores of one report task (a task's evaluation env), by label, ordered by seed."""

    name: str
    metric: str
    normalisation: dict[str, Any] | None
    runs: dict[str, list[Run]] = field(default_factory=dict)
    side: str = "heldout"

    def final(self, label: str) -> np.ndarray:
        """The final scores of ``label``'s runs, ordered by seed."""
        return np.array([run_metric(run.final[self.side], self.metric) for run in self.runs[label]])


def group_tasks(runs: list[Run]) -> list[TaskScores]:
    """One report task per (task, evaluation env) pair: a plain env's held-out evaluation, or each side of a
    suite; runs ordered by seed within each label."""
    tasks: dict[str, TaskScores] = {}
    for run in sorted(runs, key=lambda run: (run.task, run.label, run.seed)):
        for side in run.final:
            name = run.task if side == "heldout" else f"{run.task} [{side}]"
            scores = tasks.setdefault(name, TaskScores(name, run.metric, run.score, side=side))
            scores.runs.setdefault(run.label, []).append(run)
    return list(tasks.values())


def natural_key(text: str) -> list[Any]:
    """Sort key reading runs of digits as numbers: ``MemoryS9`` before ``MemoryS11`` (final_eval.json
    stores its sides in alphabetical order, which would put S11 and S13 first)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


@dataclass
class SuiteScores:
    """The final scores of one suite task on each of its sides, by label (runs ordered by seed): what the
    generalization view compares. ``sides`` is ``train`` then every ``heldout/<side>`` any run has."""

    name: str
    metric: str
    sides: list[str]
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def having(self, label: str, *sides: str) -> list[Run]:
        """The runs of ``label`` whose final evaluation has every one of ``sides``."""
        return [run for run in self.runs[label] if all(side in run.final for side in sides)]

    def scores(self, label: str, side: str) -> np.ndarray:
        """The final scores on ``side`` of the runs of ``label`` that have it."""
        return np.array([run_metric(run.final[side], self.metric) for run in self.having(label, side)])

    def gaps(self, label: str, side: str) -> np.ndarray:
        """Per run of ``label`` with both sides: its training score minus its score on ``side``."""
        return np.array(
            [
                run_metric(run.final[TRAIN_SIDE], self.metric) - run_metric(run.final[side], self.metric)
                for run in self.having(label, TRAIN_SIDE, side)
            ]
        )


def group_suites(runs: list[Run]) -> list[SuiteScores]:
    """One SuiteScores per suite task: a task whose runs' final evaluations have a ``train`` side and
    ``heldout/<side>`` sides (plain-env tasks, evaluated on ``heldout`` only, have no generalization view)."""
    by_task: dict[str, list[Run]] = defaultdict(list)
    for run in sorted(runs, key=lambda run: (run.task, run.label, run.seed)):
        by_task[run.task].append(run)
    suites = []
    for name, task_runs in by_task.items():
        sides = {side for run in task_runs for side in run.final}
        heldout = sorted((s for s in sides if s.startswith(HELDOUT_PREFIX)), key=natural_key)
        if TRAIN_SIDE not in sides or not heldout:
            continue
        suite = SuiteScores(name, task_runs[0].metric, [TRAIN_SIDE, *heldout])
        for run in task_runs:
            suite.runs.setdefault(run.label, []).append(run)
        suites.append(suite)
    return suites


def missing_side_warnings(suite: SuiteScores) -> list[str]:
    """One line per run that lacks a side other runs of the suite have, naming the run dir: such a run is
    left out of that side's scores and gaps only, and the report says so instead of dropping it."""
    runs = [run for label_runs in suite.runs.values() for run in label_runs]
    problems = []
    for run in runs:
        for side in suite.sides:
            if side not in run.final:
                others = sum(side in other.final for other in runs)
                problems.append(
                    f"{run.run_dir} ({run.label}, seed {run.seed}) has no final evaluation on {side}, which "
                    f"{others} other run(s) of {suite.name} have: it is left out of that side's IQM and gap "
                    "and kept on its other sides"
                )
    return problems


def normalised_scores(tasks: list[TaskScores]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The aggregate's [runs, tasks] matrix of normalised final scores per label ((score - min) / (max -
    min), each task's own), and a warning for each thing it leaves out.

    rliable needs a score for every run on every task: a label missing from some task is left out (and
    named), and a label with more runs on some tasks than on others takes its first runs by seed, as many
    as its smallest count, from every task (and the seeds left out are named). Labels keep their order of
    first appearance.
    """
    labels = list(dict.fromkeys(label for task in tasks for label in task.runs))
    score_dict: dict[str, np.ndarray] = {}
    problems = []
    for label in labels:
        missing = [task.name for task in tasks if label not in task.runs]
        if missing:
            present = [task.name for task in tasks if label in task.runs]
            problems.append(
                f"{label} has no runs on {', '.join(missing)} (it has on {', '.join(present)}): it is left "
                "out of the aggregate over tasks and kept in its tasks' own tables"
            )
            continue
        n = min(len(task.runs[label]) for task in tasks)
        cut = [
            f"{task.name} seed(s) {', '.join(str(run.seed) for run in task.runs[label][n:])}"
            for task in tasks
            if len(task.runs[label]) > n
        ]
        if cut:
            fewest = [task.name for task in tasks if len(task.runs[label]) == n]
            problems.append(
                f"{label} has {n} run(s) on {', '.join(fewest)} and more on other tasks: the aggregate over "
                f"tasks takes its first {n} run(s) by seed from every task and leaves out {'; '.join(cut)}"
            )
        columns = []
        for task in tasks:
            assert task.normalisation is not None
            low, high = task.normalisation["min"], task.normalisation["max"]
            columns.append((task.final(label)[:n] - low) / (high - low))
        score_dict[label] = np.stack(columns, axis=1)
    return score_dict, problems
