"""The report's figures: learning curves, interval estimates, probabilities of improvement, performance
profiles and the generalization view's grouped bars. Each is written atomically as a PNG; the functions
return the file's name, for the report to link."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from agents.atomic import atomic_write
from studies.scores import HELDOUT_PREFIX, SuiteScores, TaskScores
from studies.statistics import BOOTSTRAP_REPS, Estimate, common_curve, seeded


def slug(text: str) -> str:
    """``text`` as a file name: runs of anything but ``[A-Za-z0-9_.-]`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def save(fig: Any, path: Path) -> str:
    """Save ``fig`` to ``path`` atomically, close it, and return the file's name."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path.name


def plot_curves(task: TaskScores, path: Path, reps: int = BOOTSTRAP_REPS) -> str | None:
    """Mean over seeds of the periodic evaluations, with a 95% bootstrap band, per label."""
    import matplotlib.pyplot as plt
    from rliable import library as rly
    from rliable import metrics

    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    for index, (label, runs) in enumerate(task.runs.items()):
        frames, matrix = common_curve(runs, task.side)
        if len(frames) == 0:
            continue
        scores = {label: matrix[:, None, :]}  # [runs, tasks=1, frames]
        mean_per_frame = lambda s: np.array([metrics.aggregate_mean(s[..., i]) for i in range(s.shape[-1])])  # noqa: E731
        points, intervals = rly.get_interval_estimates(
            scores, mean_per_frame, reps=reps, random_state=seeded(index)
        )
        color = f"C{index}"
        ax.plot(
            frames, points[label], color=color, label=f"{label} ({len(runs)} seeds)", marker="o", markersize=3
        )
        ax.fill_between(frames, intervals[label][0], intervals[label][1], color=color, alpha=0.2)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("frames")
    ax.set_ylabel(task.metric.replace("_", " "))
    ax.set_title(f"{task.name}: mean over seeds, 95% CI", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_intervals(
    points: dict[str, np.ndarray], intervals: dict[str, np.ndarray], xlabel: str, path: Path
) -> str:
    """IQM and mean per label with their 95% intervals (rliable's ``plot_interval_estimates``)."""
    from rliable import plot_utils

    labels = list(points)
    fig, _ = plot_utils.plot_interval_estimates(
        points,
        intervals,
        metric_names=["IQM", "Mean"],
        algorithms=labels,
        colors={label: f"C{i}" for i, label in enumerate(labels)},
        xlabel=xlabel,
        xlabel_y_coordinate=-0.5 if len(labels) < 3 else -0.25,
        subfigure_width=3.4,
        row_height=0.5,
    )
    return save(fig, path)


def plot_improvement(points: dict[str, float], intervals: dict[str, np.ndarray], path: Path) -> str | None:
    """P(X > Y) with its 95% interval for every ordered pair of labels; None when there is no pair."""
    from rliable import plot_utils

    if not points:
        return None
    labels = sorted({label for pair in points for label in pair.split(",")})
    ax = plot_utils.plot_probability_of_improvement(
        points,
        intervals,
        figsize=(4, 0.6 + 0.45 * len(points)),
        colors=[f"C{labels.index(pair.split(',')[0])}" for pair in points],
    )
    return save(ax.figure, path)


def plot_profiles(
    score_dict: dict[str, np.ndarray], xlabel: str, path: Path, reps: int = BOOTSTRAP_REPS
) -> str:
    """Performance profiles: per label, the fraction of runs scoring above each threshold, with 95%
    bands."""
    from rliable import library as rly
    from rliable import plot_utils

    values = np.concatenate([scores.ravel() for scores in score_dict.values()])
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    tau_list = np.linspace(low - 1e-9, high + 1e-9 if high > low else low + 1.0, 101)
    seeded(0)  # rliable's performance-profile bootstrap draws from numpy's global RNG
    profiles, cis = rly.create_performance_profile(score_dict, tau_list, reps=reps)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    labels = list(score_dict)
    plot_utils.plot_performance_profiles(
        profiles,
        tau_list,
        performance_profile_cis=cis,
        colors={label: f"C{i}" for i, label in enumerate(labels)},
        xlabel=xlabel,
        ax=ax,
        labelsize="medium",
        ticklabelsize="small",
    )
    ax.legend([plt.Line2D([0], [0], color=f"C{i}") for i in range(len(labels))], labels, fontsize=8)
    return save(fig, path)


def plot_generalization(suite: SuiteScores, scores: dict[str, dict[str, Estimate]], path: Path) -> str:
    """Grouped bars: a group per side (train first), a bar per label at its IQM with the 95% interval as
    error bars. A bar from fewer than all of the label's runs is hatched and marked ``n/N``; a side no run of
    the label has is marked ``missing``."""
    import matplotlib.pyplot as plt

    labels = list(suite.runs)
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 + 1.1 * len(suite.sides) * max(1, len(labels) / 2)), 4))
    for index, label in enumerate(labels):
        x = np.arange(len(suite.sides)) + (index - (len(labels) - 1) / 2) * width
        estimates = [scores[side][label] for side in suite.sides]
        heights = [math.nan if e.point is None else e.point for e in estimates]
        errors = np.array(
            [
                [0.0, 0.0] if e.point is None else [max(0.0, e.point - e.low), max(0.0, e.high - e.point)]
                for e in estimates
            ]
        ).T
        bars = ax.bar(
            x,
            heights,
            width,
            yerr=errors,
            capsize=3,
            color=f"C{index}",
            label=f"{label} ({len(suite.runs[label])} seeds)",
        )
        for bar, estimate in zip(bars, estimates):
            if estimate.point is None:
                ax.text(
                    bar.get_x() + width / 2, 0, "missing", rotation=90, ha="center", va="bottom", fontsize=7
                )
            elif estimate.runs < estimate.total:
                bar.set_hatch("//")
                ax.text(
                    bar.get_x() + width / 2,
                    estimate.high,
                    f"{estimate.runs}/{estimate.total}",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(np.arange(len(suite.sides)))
    ax.set_xticklabels([side.removeprefix(HELDOUT_PREFIX) for side in suite.sides], fontsize=8)
    ax.set_xlabel("side (train, then held out)")
    ax.set_ylabel(f"{suite.metric.replace('_', ' ')} (IQM over seeds)")
    ax.set_title(f"Generalization: {suite.name}, IQM and 95% CI", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return save(fig, path)
