"""Statistics and plots of studies and runs, with rliable: ``python -m runners.report DIR [DIR ...]``.

DIR is a study directory (``runners.study --out``), a run directory (``runners.ppo`` / ``runners.bc``) or any
folder holding run directories. Every run is scored by its **final evaluation** (the criterion of every
table, named in the report): the success rate for MiniGrid/BabyAI envs and the mean return otherwise, or the
metric its benchmark task names. Per task (an env, or one side of a suite) and, for benchmark tasks, in
aggregate over tasks (normalised scores), the report gives:

* learning curves: the mean over seeds of the periodic evaluations with a 95% stratified-bootstrap band;
* IQM and mean with 95% stratified-bootstrap intervals per memory (rliable's ``get_interval_estimates``);
* the probability of improvement of each memory over each other, with its interval;
* performance profiles (fraction of runs above each score);
* ``report.md``: the tables (seeds, IQM [95% CI], mean [95% CI], frames to threshold where the task has
  one, frames, fps), the command that produced the study, the machine and the date.

For a suite (runs trained on its training side, evaluated on ``train`` and ``heldout/<side>``), a
**generalization view** first: per memory, the IQM [95% CI] on every side and the generalization gap (IQM of
the per-run differences train - held-out side), in a table and a grouped bar chart. A run that lacks a side
the suite's other runs have is named in a warning and marked missing in that side's cells, never dropped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import re
import sys
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.atomic import atomic_write, atomic_write_text
from runners.cli import UsageError, make_parser, output_directory, positive_int, run_main

# Bootstrap resamples for every interval: enough for stable 95% bounds at these sample sizes, and fast.
BOOTSTRAP_REPS = 2000
REPORT_FILE = "report.md"
PLOTS_DIR = "plots"


@dataclass
class Run:
    """One finished run, as read from its directory."""

    run_dir: Path
    task: str
    label: str  # the memory and its grid values: what the report compares
    seed: int
    env_id: str
    metric: str  # "success_rate" or "mean_return"
    score: dict[str, Any] | None  # a benchmark task's min, max, threshold
    final: dict[str, dict[str, Any]]  # evaluation env -> final EvaluationResult fields
    curves: dict[str, list[tuple[int, float]]]  # evaluation env -> [(frames, metric)]
    frames: int | None
    fps: float | None
    command: str
    deterministic_eval: bool
    eval_episodes: int | None


@dataclass
class TaskScores:
    """The final scores of one report task (a task's evaluation env), by label, ordered by seed."""

    name: str
    metric: str
    normalisation: dict[str, Any] | None
    runs: dict[str, list[Run]] = field(default_factory=dict)
    side: str = "heldout"

    def final(self, label: str) -> np.ndarray:
        return np.array([run_metric(run.final[self.side], self.metric) for run in self.runs[label]])


def run_metric(result: dict[str, Any], metric: str) -> float:
    """The metric of one EvaluationResult dict (``mean_reward`` is the ``mean_return`` field)."""
    value = result.get("mean_return" if metric in ("mean_reward", "mean_return") else metric)
    return math.nan if value is None else float(value)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def default_metric(env_id: str) -> str:
    """Success rate where the env has a success signal (MiniGrid/BabyAI), mean return elsewhere."""
    from envs.make import is_minigrid_env_id

    try:
        return "success_rate" if is_minigrid_env_id(env_id) else "mean_return"
    except (ValueError, ImportError):
        return "mean_return"


def config_env_id(config: dict[str, Any]) -> str:
    """The env a run trained on: ``env_id`` (runners.bc), ``env``, or for a suite run its training side's
    env (a suite that fixes its envs, e.g. ``memory-length``, leaves ``env`` empty; without this its runs
    would be scored by mean return instead of the success rate of their MiniGrid envs)."""
    env_id = config.get("env_id") or (None if config.get("suite") else config.get("env"))
    if env_id:
        return str(env_id)
    if config.get("suite"):
        from envs.suites import get_suite

        try:
            return get_suite(config["suite"], config.get("env")).train.env_id
        except ValueError:
            train = (config.get("eval_envs") or {}).get("train")  # "ENV_ID, seeds 0-999"
            if train:
                return str(train).split(",")[0]
    return str(config.get("env") or "?")


def load_run(run_dir: Path) -> Run:
    """Read one run directory.

    :raises ValueError: naming the missing or unreadable file (the caller warns and skips the run)
    """
    files = {}
    for name in ("config.json", "final_eval.json", "eval/evaluations.jsonl"):
        path = run_dir / name
        if not path.is_file():
            raise ValueError(f"{name} is missing (an unfinished or failed run?)")
        files[name] = path
    try:
        config = read_json(files["config.json"])
        final = read_json(files["final_eval.json"])
        rows = [json.loads(line) for line in files["eval/evaluations.jsonl"].read_text().splitlines() if line]
        trial = read_json(run_dir / "trial.json") if (run_dir / "trial.json").is_file() else {}
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"unreadable log ({type(error).__name__}: {error})") from None
    if not final:
        raise ValueError("final_eval.json holds no evaluation")
    summary_path = run_dir / "run_summary.json"
    summary = read_json(summary_path) if summary_path.is_file() else {}
    env_id = config_env_id(config)
    task = trial.get("task") or config.get("suite") or env_id
    score = trial.get("score")
    metric = score["metric"] if score else default_metric(env_id)
    curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        curves[row["env"]].append((int(row["timesteps"]), run_metric(row, metric)))
    return Run(
        run_dir=run_dir,
        task=task,
        label=trial.get("label") or config.get("memory", "?"),
        seed=int(config.get("seed", 0)),
        env_id=env_id,
        metric=metric,
        score=score,
        final=final,
        curves=dict(curves),
        frames=summary.get("frames"),
        fps=summary.get("fps"),
        command=config.get("command", ""),
        deterministic_eval=not config.get("stochastic_eval", False),
        eval_episodes=config.get("eval_episodes"),
    )


def find_runs(directories: list[Path]) -> tuple[list[Run], list[str]]:
    """The runs under ``directories`` and a warning for each run directory that could not be read."""
    runs, problems = [], []
    for directory in directories:
        if not directory.is_dir():
            raise UsageError(f"{directory} is not a directory: pass study or run directories")
        candidates = [directory] if (directory / "config.json").is_file() else []
        candidates += sorted(
            path.parent for path in directory.rglob("config.json") if path.parent != directory
        )
        if not candidates:
            problems.append(f"{directory}: no run directories (no config.json) found")
        for run_dir in candidates:
            if "checkpoints" in run_dir.parts:
                continue
            try:
                runs.append(load_run(run_dir))
            except (ValueError, KeyError, TypeError) as error:
                problems.append(f"skipping {run_dir}: {error}")
    return runs, problems


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


TRAIN_SIDE = "train"
HELDOUT_PREFIX = "heldout/"


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


# ---------------------------------------------------------------------- statistics (rliable)


def iqm_and_mean(scores: np.ndarray) -> np.ndarray:
    """[IQM, mean] of a [runs, tasks] score matrix, rliable's aggregate functions."""
    from rliable import metrics

    return np.array([metrics.aggregate_iqm(scores), metrics.aggregate_mean(scores)])


def seeded(seed: int) -> np.random.RandomState:
    """The RandomState for rliable, with numpy's global RNG seeded too: rliable's stratified bootstrap also
    draws from it, so without this the same report would give slightly different intervals each time."""
    np.random.seed(seed)
    return np.random.RandomState(seed)


def interval_estimates(
    score_dict: dict[str, np.ndarray], seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """IQM and mean per label with 95% stratified-bootstrap intervals: ``rliable.library.
    get_interval_estimates`` on [runs, tasks] matrices. Returns (points [2], intervals [2, 2] as
    [[low IQM, low mean], [high IQM, high mean]])."""
    from rliable import library as rly

    return rly.get_interval_estimates(
        score_dict, iqm_and_mean, reps=BOOTSTRAP_REPS, random_state=seeded(seed)
    )


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """rliable's ``metrics.probability_of_improvement`` in one numpy expression: per task, the share of run
    pairs where X scores above Y (ties count one half: the Mann-Whitney U over n * m), averaged over tasks.

    rliable calls scipy's ``mannwhitneyu`` once per task and bootstrap resample, which made a report of
    seven memories take half an hour; the values are the same (``tests/test_study.py`` checks them).
    ``scores_x`` [n, tasks], ``scores_y`` [m, tasks].
    """
    difference = scores_x[:, None, :] - scores_y[None, :, :]  # [n, m, tasks]
    return float(((difference > 0) + 0.5 * (difference == 0)).mean(axis=(0, 1)).mean())


def improvement_probabilities(
    score_dict: dict[str, np.ndarray], seed: int = 0
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """P(X > Y) for every ordered pair of labels, with 95% intervals (rliable), keyed ``"X,Y"``."""
    from rliable import library as rly

    pairs = {f"{x},{y}": (score_dict[x], score_dict[y]) for x, y in itertools.permutations(score_dict, 2)}
    if not pairs:
        return {}, {}
    points, intervals = rly.get_interval_estimates(
        pairs,
        probability_of_improvement,
        reps=BOOTSTRAP_REPS,
        random_state=seeded(seed),
    )
    return {pair: float(value) for pair, value in points.items()}, intervals


def frames_to_threshold(run: Run, side: str, threshold: float) -> int | None:
    """The frames of the first evaluation at or above ``threshold`` (None if never)."""
    for frames, value in sorted(run.curves.get(side, [])):
        if value >= threshold:
            return frames
    return None


@dataclass
class Estimate:
    """The IQM of one label's scores with its 95% interval, from ``runs`` of the label's ``total`` runs
    (fewer where some runs lack the side); no point when no run has it."""

    point: float | None
    low: float | None
    high: float | None
    runs: int
    total: int


def iqm_estimates(
    values: dict[str, np.ndarray], totals: dict[str, int], seed: int = 0
) -> dict[str, Estimate]:
    """IQM [95% CI] per label of one column of scores (``interval_estimates``, seeded: reproducible);
    labels without any value get an Estimate without a point."""
    present = {label: column[:, None] for label, column in values.items() if len(column)}
    points, intervals = interval_estimates(present, seed=seed) if present else ({}, {})
    estimates = {}
    for label, column in values.items():
        if label in present:
            low, high = intervals[label][0][0], intervals[label][1][0]
            estimates[label] = Estimate(
                float(points[label][0]), float(low), float(high), len(column), totals[label]
            )
        else:
            estimates[label] = Estimate(None, None, None, 0, totals[label])
    return estimates


def generalization_estimates(
    suite: SuiteScores,
) -> tuple[dict[str, dict[str, Estimate]], dict[str, dict[str, Estimate]]]:
    """Per side, the IQM [95% CI] of each label's scores; per held-out side, of each label's generalization
    gaps (train - side, per run). Each uses only the runs that have the side (and ``train``, for a gap)."""
    totals = {label: len(runs) for label, runs in suite.runs.items()}
    scores = {
        side: iqm_estimates({label: suite.scores(label, side) for label in suite.runs}, totals)
        for side in suite.sides
    }
    gaps = {
        side: iqm_estimates({label: suite.gaps(label, side) for label in suite.runs}, totals)
        for side in suite.sides[1:]
    }
    return scores, gaps


def common_curve(runs: list[Run], side: str) -> tuple[np.ndarray, np.ndarray]:
    """Frames evaluated in every run, and the [runs, frames] matrix of the metric there."""
    frame_sets = [set(frames for frames, _ in run.curves.get(side, [])) for run in runs]
    frames = sorted(set.intersection(*frame_sets)) if frame_sets else []
    matrix = (
        np.array([[dict(run.curves[side])[f] for f in frames] for run in runs])
        if frames
        else np.zeros((0, 0))
    )
    return np.array(frames), matrix


# ---------------------------------------------------------------------- plots


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def save(fig: Any, path: Path) -> str:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path.name


def plot_curves(task: TaskScores, path: Path) -> str | None:
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
            scores, mean_per_frame, reps=BOOTSTRAP_REPS, random_state=seeded(index)
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


def plot_profiles(score_dict: dict[str, np.ndarray], xlabel: str, path: Path) -> str:
    from rliable import library as rly
    from rliable import plot_utils

    values = np.concatenate([scores.ravel() for scores in score_dict.values()])
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    tau_list = np.linspace(low - 1e-9, high + 1e-9 if high > low else low + 1.0, 101)
    seeded(0)  # rliable's performance-profile bootstrap draws from numpy's global RNG
    profiles, cis = rly.create_performance_profile(score_dict, tau_list, reps=BOOTSTRAP_REPS)
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


# ---------------------------------------------------------------------- the report


def fmt(value: float) -> str:
    return (
        "n/a"
        if value is None or not math.isfinite(value)
        else f"{value:.3g}"
        if abs(value) < 1000
        else f"{value:,.0f}"
    )


def fmt_interval(point: float, interval: np.ndarray, index: int) -> str:
    return f"{fmt(point)} [{fmt(interval[0][index])}, {fmt(interval[1][index])}]"


def thousands(frames: int | None) -> str:
    return "not met" if frames is None else f"{frames / 1000:,.0f}k"


def protocol(runs: list[Run]) -> str:
    greedy = {run.deterministic_eval for run in runs}
    episodes = {run.eval_episodes for run in runs}
    actions = "greedy" if greedy == {True} else "sampled" if greedy == {False} else "mixed greedy/sampled"
    count = ", ".join(str(e) for e in sorted(e for e in episodes if e is not None)) or "?"
    return f"{actions} actions, {count} episodes per evaluation"


def improvement_lines(points: dict[str, float], intervals: dict[str, np.ndarray]) -> list[str]:
    """The probability-of-improvement line of a table: ``P(tlb > lstm) = 0.62 [0.30, 0.90]; ...``."""
    if not points:
        return []
    texts = []
    for pair, value in points.items():
        low, high = np.ravel(intervals[pair])[:2]
        x, y = pair.split(",")
        texts.append(f"P({x} > {y}) = {value:.2f} [{low:.2f}, {high:.2f}]")
    return ["", "Probability of improvement [95% CI]: " + "; ".join(texts) + "."]


def comparison_tail(
    score_dict: dict[str, np.ndarray],
    points: dict[str, np.ndarray],
    intervals: dict[str, np.ndarray],
    xlabel: str,
    plots: Path,
    file_name: Callable[[str], str],
    lines: list[str],
    first_image: str | None = None,
) -> None:
    """What every table of the report ends with: the probability-of-improvement line, then the interval,
    improvement and performance-profile plots (after ``first_image``, e.g. the learning curves), each
    written to ``plots / file_name(kind)``."""
    probabilities, probability_cis = improvement_probabilities(score_dict)
    lines += improvement_lines(probabilities, probability_cis)
    images = [
        first_image,
        plot_intervals(points, intervals, xlabel, plots / file_name("intervals")),
        plot_improvement(probabilities, probability_cis, plots / file_name("improvement")),
        plot_profiles(score_dict, xlabel, plots / file_name("profile")),
    ]
    lines += ["", " ".join(f"![{image}]({PLOTS_DIR}/{image})" for image in images if image), ""]


def task_section(task: TaskScores, plots: Path, lines: list[str]) -> None:
    runs = [run for label_runs in task.runs.values() for run in label_runs]
    normalised = task.normalisation is not None
    score_dict = {label: task.final(label)[:, None] for label in task.runs}
    points, intervals = interval_estimates(score_dict)
    threshold = task.normalisation.get("threshold") if normalised else None
    lines += [
        f"### {task.name}",
        "",
        f"Score: {task.metric.replace('_', ' ')} of the final evaluation after the budget "
        f"(raw; {protocol(runs)}; env {runs[0].env_id}).",
        "",
        "| memory | seeds | IQM [95% CI] | mean [95% CI] | per seed | "
        + ("frames to threshold " + fmt(threshold) + " | " if threshold is not None else "")
        + "frames | fps |",
        "|---|---|---|---|---|" + ("---|" if threshold is not None else "") + "---|---|",
    ]
    for label, label_runs in task.runs.items():
        per_seed = ", ".join(f"{fmt(value)}" for value in task.final(label))
        fps = [run.fps for run in label_runs if run.fps]
        frames = [run.frames for run in label_runs if run.frames]
        row = (
            f"| {label} | {len(label_runs)} | {fmt_interval(points[label][0], intervals[label], 0)} | "
            f"{fmt_interval(points[label][1], intervals[label], 1)} | {per_seed} | "
        )
        if threshold is not None:
            reached = [frames_to_threshold(run, task.side, threshold) for run in label_runs]
            met = [f for f in reached if f is not None]
            row += f"{len(met)}/{len(reached)} met: {', '.join(thousands(f) for f in reached)} | "
        median_frames = fmt(float(np.median(frames))) if frames else "n/a"
        row += f"{median_frames} | {fmt(float(np.median(fps))) if fps else 'n/a'} |"
        lines.append(row)
    stem = slug(task.name)
    curves = plot_curves(task, plots / f"curves_{stem}.png")
    xlabel = task.metric.replace("_", " ")
    comparison_tail(
        score_dict, points, intervals, xlabel, plots, lambda kind: f"{kind}_{stem}.png", lines, curves
    )


def estimate_cell(estimate: Estimate) -> str:
    """``IQM [low, high]``, with ``from n of N runs; missing (N-n of N runs)`` where some runs lack the side,
    and ``missing (N of N runs)`` where all do."""
    missing = f"missing ({estimate.total - estimate.runs} of {estimate.total} runs)"
    if estimate.point is None:
        return missing
    text = f"{fmt(estimate.point)} [{fmt(estimate.low)}, {fmt(estimate.high)}]"
    return (
        text
        if estimate.runs == estimate.total
        else f"{text} from {estimate.runs} of {estimate.total} runs; {missing}"
    )


def generalization_section(suite: SuiteScores, plots: Path, lines: list[str]) -> list[str]:
    """The generalization view of one suite: per label, the IQM [95% CI] on every side and the gap (train -
    held-out side) per held-out side, the protocol under the table, then the grouped bar chart. Returns the
    warnings about runs missing a side (also written in the section)."""
    runs = [run for label_runs in suite.runs.values() for run in label_runs]
    problems = missing_side_warnings(suite)
    scores, gaps = generalization_estimates(suite)
    heldout = suite.sides[1:]
    metric = suite.metric.replace("_", " ")
    lines += [
        f"## Generalization: {suite.name}",
        "",
        f"IQM over seeds [95% CI] of the {metric} on the training side and on each held-out side, and the "
        "generalization gap per held-out side: the IQM [95% CI] of each run's train - held-out score "
        "(positive: worse on held-out levels).",
        "",
        "| memory | seeds | "
        + " | ".join(f"{side} IQM [95% CI]" for side in suite.sides)
        + " | "
        + " | ".join(f"gap train - {side.removeprefix(HELDOUT_PREFIX)} [95% CI]" for side in heldout)
        + " |",
        "|---|---|" + "---|" * (len(suite.sides) + len(heldout)),
    ]
    for label, label_runs in suite.runs.items():
        cells = [estimate_cell(scores[side][label]) for side in suite.sides]
        cells += [estimate_cell(gaps[side][label]) for side in heldout]
        lines.append(f"| {label} | {len(label_runs)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Score: {metric} of the final evaluation after the budget (raw; {protocol(runs)}; trained on "
        f"{runs[0].env_id}).",
    ]
    if problems:
        lines += ["", *[f"Warning: {problem}." for problem in problems]]
    image = plot_generalization(suite, scores, plots / f"generalization_{slug(suite.name)}.png")
    lines += ["", f"![{image}]({PLOTS_DIR}/{image})", ""]
    return problems


def aggregate_section(tasks: list[TaskScores], plots: Path, lines: list[str]) -> None:
    """IQM / mean / PoI / profiles over the normalised scores of every benchmark task."""
    normalisable = [task for task in tasks if task.normalisation is not None and task.side == "heldout"]
    if not normalisable:
        return
    labels = [label for label in normalisable[0].runs if all(label in task.runs for task in normalisable)]
    if not labels:
        return
    score_dict = {}
    for label in labels:
        columns = []
        for task in normalisable:
            low, high = task.normalisation["min"], task.normalisation["max"]
            columns.append((task.final(label) - low) / (high - low))
        n = min(len(column) for column in columns)  # rliable needs as many runs on every task
        score_dict[label] = np.stack([column[:n] for column in columns], axis=1)
    points, intervals = interval_estimates(score_dict)
    lines += [
        "## Aggregate over tasks (normalised scores)",
        "",
        f"Tasks: {', '.join(task.name for task in normalisable)}; each score normalised with its task's min "
        "and max ((score - min) / (max - min)); final evaluation after each task's budget.",
        "",
        "| memory | runs per task | IQM [95% CI] | mean [95% CI] |",
        "|---|---|---|---|",
    ]
    for label in labels:
        lines.append(
            f"| {label} | {score_dict[label].shape[0]} | "
            f"{fmt_interval(points[label][0], intervals[label], 0)} | "
            f"{fmt_interval(points[label][1], intervals[label], 1)} |"
        )
    comparison_tail(
        score_dict, points, intervals, "normalised score", plots, lambda kind: f"aggregate_{kind}.png", lines
    )


def write_report(directories: list[Path], out: Path) -> Path:
    """Read the runs under ``directories``, write ``out/report.md`` and ``out/plots/*.png``; returns the
    report's path. Unreadable runs are named in a warning on stderr and left out."""
    import matplotlib

    matplotlib.use("Agg")
    runs, problems = find_runs(directories)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    plots = out / PLOTS_DIR
    studies = [d / "study.json" for d in directories if (d / "study.json").is_file()]
    lines = ["# Study report", ""]
    for study_file in studies:
        study = read_json(study_file)
        # The machine's speed when the study began (runners.study.single_thread_gflops): wall times of the
        # same study on two machines compare only beside it.
        speed = (
            f" (one torch thread: {study['gflops_1_thread']:.0f} GFLOP/s in a float32 matmul, "
            "before the trials)"
            if "gflops_1_thread" in study
            else ""
        )
        lines += [
            f"Command: `{study.get('command', '?')}`",
            "",
            f"Machine: {study.get('machine', '?')}{speed}; started {study.get('started', '?')}, finished "
            f"{study.get('finished', '?')}"
            + (
                f" ({study['wall_s_last_session']:.0f} s wall time)" if "wall_s_last_session" in study else ""
            ),
            "",
        ]
    if not studies and runs:
        lines += ["Runs:", "", *[f"- `{run.command}` ({run.run_dir})" for run in runs], ""]
    lines += [
        f"Report written {dt.datetime.now().isoformat(timespec='seconds')} by "
        f"`python -m runners.report {' '.join(str(d) for d in directories)}`; intervals are 95% stratified "
        f"bootstrap ({BOOTSTRAP_REPS} resamples, rliable); IQM is the interquartile mean over runs.",
        "",
    ]
    if problems:
        lines += ["Left out (unreadable):", "", *[f"- {problem}" for problem in problems], ""]
    if not runs:
        lines.append("No readable runs.")
    else:
        tasks = group_tasks(runs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rliable/numpy warn on degenerate bootstraps (all-equal scores)
            aggregate_section(tasks, plots, lines)
            for suite in group_suites(runs):
                for problem in generalization_section(suite, plots, lines):
                    print(f"warning: {problem}", file=sys.stderr)
            lines += ["## Per task", ""]
            for task in tasks:
                task_section(task, plots, lines)
    return atomic_write_text(out / REPORT_FILE, "\n".join(lines) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "python -m runners.report", "Write report.md and plots for studies or runs (rliable)."
    )
    parser.add_argument("dirs", nargs="+", help="study directories, run directories or folders of runs")
    parser.add_argument(
        "--out",
        type=output_directory,
        default=None,
        help="where report.md and plots/ go (default: the first DIR)",
    )
    parser.add_argument("--reps", type=positive_int, default=BOOTSTRAP_REPS, help="bootstrap resamples")
    return parser


def main(argv: list[str] | None = None) -> int:
    global BOOTSTRAP_REPS
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import rliable  # noqa: F401
    except ImportError:
        raise UsageError(
            'runners.report needs the study extra: pip install -e ".[study]" (rliable)'
        ) from None
    BOOTSTRAP_REPS = args.reps
    directories = [Path(d) for d in args.dirs]
    if not any(next(d.rglob("config.json"), None) for d in directories if d.is_dir()):
        raise UsageError(
            f"no run directories (no config.json) under {' '.join(args.dirs)}: pass a study's --out "
            "directory or runners.ppo / runners.bc run directories"
        )
    path = write_report(directories, Path(args.out) if args.out else directories[0])
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
