"""The memory-length view of a study: for a family of tasks that differ only in how long the agent must
remember (the Passive T-Maze's corridor lengths, tasks with a ``memory_length`` in their benchmark file),
each memory's final score against the memory length, and the longest length each memory solves.

"Solves" is strict, as the long-memory benchmark states it: every seed's final score reaches the task's
threshold (success >= 0.95 on the T-Maze). One seed below it and the length counts as unsolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studies.plots import save, slug
from studies.scores import TaskScores
from studies.statistics import BOOTSTRAP_REPS, Estimate, iqm_estimates


@dataclass
class LengthFamily:
    """Report tasks of one family (the same env family), ordered by memory length."""

    name: str
    metric: str
    threshold: float
    tasks: list[tuple[int, TaskScores]]

    @property
    def labels(self) -> list[str]:
        labels: list[str] = []
        for _, task in self.tasks:
            labels += [label for label in task.runs if label not in labels]
        return labels

    def longest_solved(self, label: str) -> int | None:
        """The longest memory length at which every seed of ``label`` reached the threshold; None if none.
        A length the label has no runs at does not count."""
        solved = [
            length
            for length, task in self.tasks
            if label in task.runs and bool(np.all(task.final(label) >= self.threshold))
        ]
        return max(solved) if solved else None


def family_name(env_id: str) -> str:
    """The family an env belongs to: its id without the length, e.g. ``TLB-PassiveTMaze-L100-v0`` ->
    ``TLB-PassiveTMaze``."""
    head = env_id.split("-L")[0] if "-L" in env_id else env_id.rsplit("-", 1)[0]
    return head


def length_families(tasks: list[TaskScores]) -> list[LengthFamily]:
    """The held-out report tasks whose benchmark task names a ``memory_length`` and a ``threshold``,
    grouped by env family; families with a single length are left out (there is no curve to draw)."""
    families: dict[str, LengthFamily] = {}
    for task in tasks:
        score = task.normalisation or {}
        if task.side != "heldout" or score.get("memory_length") is None or score.get("threshold") is None:
            continue
        env_id = next(run for runs in task.runs.values() for run in runs).env_id
        name = family_name(env_id)
        family = families.setdefault(name, LengthFamily(name, task.metric, float(score["threshold"]), []))
        family.tasks.append((int(score["memory_length"]), task))
    for family in families.values():
        family.tasks.sort(key=lambda pair: pair[0])
    return [family for family in families.values() if len(family.tasks) > 1]


def length_estimates(family: LengthFamily, reps: int = BOOTSTRAP_REPS) -> dict[int, dict[str, Estimate]]:
    """Per memory length, the IQM [95% CI] over seeds of each label's final score."""
    estimates = {}
    for length, task in family.tasks:
        values = {label: task.final(label) if label in task.runs else np.array([]) for label in family.labels}
        totals = {label: len(values[label]) for label in family.labels}
        estimates[length] = iqm_estimates(values, totals, reps=reps)
    return estimates


def plot_memory_length(family: LengthFamily, estimates: dict[int, dict[str, Estimate]], plots: Path) -> str:
    """Final score (IQM over seeds, 95% CI as a band) against memory length, a line per label, written to
    ``plots/memory_length_<family>.png``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    lengths = [length for length, _ in family.tasks]
    for index, label in enumerate(family.labels):
        points = [(n, estimates[n][label]) for n in lengths if estimates[n][label].point is not None]
        if not points:
            continue
        xs = [n for n, _ in points]
        ax.plot(xs, [e.point for _, e in points], marker="o", color=f"C{index}", label=label)
        ax.fill_between(
            xs, [e.low for _, e in points], [e.high for _, e in points], color=f"C{index}", alpha=0.2
        )
    ax.axhline(
        family.threshold, color="grey", linestyle=":", linewidth=1, label=f"solved ({family.threshold:g})"
    )
    ax.set_xscale("log")
    ax.set_xticks(lengths)
    ax.set_xticklabels([str(n) for n in lengths])
    ax.set_xlabel("memory length")
    ax.set_ylabel(f"{family.metric.replace('_', ' ')} (IQM over seeds)")
    ax.set_title(f"{family.name}: final score against memory length, IQM and 95% CI", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, plots / f"memory_length_{slug(family.name)}.png")
