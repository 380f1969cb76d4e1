"""``report.md`` and its plots for studies and runs: the tables (seeds, IQM [95% CI], mean [95% CI], frames to
threshold where the task has one, frames, fps), the generalization view of suites, the aggregate over a
benchmark's tasks, and the text around the figures: the command that produced each study, its machine and
dates.

Every run is scored by its final evaluation (the criterion of every table, named in the report). A run that
cannot be read, a run missing a side of its suite, a memory missing from some benchmark task and a task cut
to fewer runs for the aggregate are each named in a warning on stderr and in the report, never dropped
silently.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from agents.atomic import atomic_write_text
from studies.memory_length import LengthFamily, length_estimates, length_families, plot_memory_length
from studies.plots import (
    plot_curves,
    plot_generalization,
    plot_improvement,
    plot_intervals,
    plot_profiles,
    slug,
)
from studies.runs import Run, find_runs, read_json
from studies.scores import (
    HELDOUT_PREFIX,
    SuiteScores,
    TaskScores,
    group_suites,
    group_tasks,
    missing_side_warnings,
    normalised_scores,
)
from studies.settings_grid import MemoryGrid, compared_pairs, memory_grids, plot_grids
from studies.statistics import (
    BOOTSTRAP_REPS,
    Estimate,
    frames_to_threshold,
    generalization_estimates,
    improvement_probabilities,
    interval_estimates,
)

REPORT_FILE = "report.md"
PLOTS_DIR = "plots"


def fmt(value: float) -> str:
    """Three significant figures below 1000, whole thousands-separated numbers above, ``n/a`` if undefined."""
    return (
        "n/a"
        if value is None or not math.isfinite(value)
        else f"{value:.3g}"
        if abs(value) < 1000
        else f"{value:,.0f}"
    )


def fmt_interval(point: float, interval: np.ndarray, index: int) -> str:
    """``point [low, high]`` of the ``index``-th statistic of an rliable interval."""
    return f"{fmt(point)} [{fmt(interval[0][index])}, {fmt(interval[1][index])}]"


def thousands(frames: int | None) -> str:
    """Frames in thousands (``120k``), or ``not met`` for a threshold never reached."""
    return "not met" if frames is None else f"{frames / 1000:,.0f}k"


def protocol(runs: list[Run]) -> str:
    """The evaluation protocol of ``runs``: greedy or sampled actions and the episodes per evaluation."""
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
    reps: int = BOOTSTRAP_REPS,
) -> None:
    """What every table of the report ends with: the probability-of-improvement line, then the interval,
    improvement and performance-profile plots (after ``first_image``, e.g. the learning curves), each
    written to ``plots / file_name(kind)``."""
    compared = compared_pairs(list(score_dict))
    probabilities, probability_cis = improvement_probabilities(score_dict, reps=reps, compared=compared)
    lines += improvement_lines(probabilities, probability_cis)
    images = [
        first_image,
        plot_intervals(points, intervals, xlabel, plots / file_name("intervals")),
        plot_improvement(probabilities, probability_cis, plots / file_name("improvement")),
        plot_profiles(score_dict, xlabel, plots / file_name("profile"), reps),
    ]
    lines += ["", " ".join(f"![{image}]({PLOTS_DIR}/{image})" for image in images if image), ""]


def task_section(task: TaskScores, plots: Path, lines: list[str], reps: int = BOOTSTRAP_REPS) -> None:
    """One task's table (per label: seeds, IQM and mean [95% CI], per-seed scores, frames to the threshold
    where the task has one, frames, fps), then its learning curves and comparison plots."""
    runs = [run for label_runs in task.runs.values() for run in label_runs]
    normalised = task.normalisation is not None
    score_dict = {label: task.final(label)[:, None] for label in task.runs}
    points, intervals = interval_estimates(score_dict, reps=reps)
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
    curves = plot_curves(task, plots / f"curves_{stem}.png", reps)
    xlabel = task.metric.replace("_", " ")
    comparison_tail(
        score_dict, points, intervals, xlabel, plots, lambda kind: f"{kind}_{stem}.png", lines, curves, reps
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


def generalization_section(
    suite: SuiteScores, plots: Path, lines: list[str], reps: int = BOOTSTRAP_REPS
) -> list[str]:
    """The generalization view of one suite: per label, the IQM [95% CI] on every side and the gap (train -
    held-out side) per held-out side, the protocol under the table, then the grouped bar chart. Returns the
    warnings about runs missing a side (also written in the section)."""
    runs = [run for label_runs in suite.runs.values() for run in label_runs]
    problems = missing_side_warnings(suite)
    scores, gaps = generalization_estimates(suite, reps)
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


def split_of(task: TaskScores) -> str | None:
    """The benchmark split (``dev`` or ``test``) a report task belongs to, None outside a split."""
    return (task.normalisation or {}).get("split")


def aggregate_sections(
    tasks: list[TaskScores], plots: Path, lines: list[str], reps: int = BOOTSTRAP_REPS
) -> list[str]:
    """The aggregate over the normalised scores of every benchmark task, one per benchmark split where the
    tasks have splits: the test split first (nothing was chosen on it), then the dev split, then tasks
    without a split. Returns the warnings of every aggregate."""
    normalisable = [task for task in tasks if task.normalisation is not None and task.side == "heldout"]
    splits = list(dict.fromkeys(split_of(task) for task in normalisable))
    order = {"test": 0, "dev": 1, None: 2}
    problems = []
    for split in sorted(splits, key=lambda split: order.get(split, 2)):
        split_tasks = [task for task in normalisable if split_of(task) == split]
        problems += aggregate_section(split_tasks, plots, lines, reps, split)
    return problems


def aggregate_section(
    normalisable: list[TaskScores],
    plots: Path,
    lines: list[str],
    reps: int = BOOTSTRAP_REPS,
    split: str | None = None,
) -> list[str]:
    """IQM / mean / PoI / profiles over the normalised scores of ``normalisable`` (held-out benchmark tasks
    with a normalisation, of one split if ``split`` is given; ``aggregate_sections`` chooses them). Returns
    the warnings about memories left out or tasks cut to fewer runs (``normalised_scores``), also written in
    the section."""
    score_dict, problems = normalised_scores(normalisable)
    warning_lines = ["", *[f"Warning: {problem}." for problem in problems]] if problems else []
    title = (
        "## Aggregate over tasks (normalised scores)"
        if split is None
        else f"## Aggregate over the {split} split (normalised scores)"
    )
    about_split = {
        "test": " The test split: no default or setting of any memory was chosen on these tasks.",
        "dev": " The dev split: defaults and settings may have been chosen on these tasks.",
    }.get(split or "", "")
    stem = "aggregate" if split is None else f"aggregate_{split}"
    if not score_dict:
        lines += [
            title,
            "",
            f"No memory has runs on every one of the tasks {', '.join(task.name for task in normalisable)}: "
            "no aggregate.",
            *warning_lines,
            "",
        ]
        return problems
    points, intervals = interval_estimates(score_dict, reps=reps)
    lines += [
        title,
        "",
        f"Tasks: {', '.join(task.name for task in normalisable)}; each score normalised with its task's min "
        "and max ((score - min) / (max - min)); final evaluation after each task's budget." + about_split,
        "",
        "| memory | runs per task | IQM [95% CI] | mean [95% CI] |",
        "|---|---|---|---|",
    ]
    for label in score_dict:
        lines.append(
            f"| {label} | {score_dict[label].shape[0]} | "
            f"{fmt_interval(points[label][0], intervals[label], 0)} | "
            f"{fmt_interval(points[label][1], intervals[label], 1)} |"
        )
    lines += warning_lines
    comparison_tail(
        score_dict,
        points,
        intervals,
        "normalised score",
        plots,
        lambda kind: f"{stem}_{kind}.png",
        lines,
        reps=reps,
    )
    return problems


def memory_length_section(
    family: LengthFamily, plots: Path, lines: list[str], reps: int = BOOTSTRAP_REPS
) -> None:
    """The table (per label: IQM [95% CI] and seeds at the threshold per length, the longest length solved)
    and the plot of one family."""
    estimates = length_estimates(family, reps)
    lengths = [length for length, _ in family.tasks]
    metric = family.metric.replace("_", " ")
    lines += [
        f"## Memory length: {family.name}",
        "",
        f"Per memory and memory length: the IQM over seeds [95% CI] of the {metric} of the final evaluation "
        f"after each task's budget, and how many seeds reached {fmt(family.threshold)}. The longest length "
        f"solved is the longest at which every seed reached {fmt(family.threshold)}.",
        "",
        "| memory | " + " | ".join(f"L={n}" for n in lengths) + " | longest solved |",
        "|---|" + "---|" * (len(lengths) + 1),
    ]
    for label in family.labels:
        cells = []
        for length, task in family.tasks:
            estimate = estimates[length][label]
            if estimate.point is None:
                cells.append("no runs")
                continue
            reached = int(np.sum(task.final(label) >= family.threshold))
            interval = f"{fmt(estimate.point)} [{fmt(estimate.low)}, {fmt(estimate.high)}]"
            cells.append(f"{interval} ({reached}/{estimate.runs})")
        longest = family.longest_solved(label)
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | {longest if longest is not None else 'none'} |"
        )
    image = plot_memory_length(family, estimates, plots)
    lines += ["", f"![{image}]({PLOTS_DIR}/{image})", ""]


def grid_cell(task: TaskScores, label: str, threshold: float | None) -> str:
    """``mean (k/n)``: the mean final score of the seeds of ``label`` and how many reached the threshold."""
    scores = task.final(label)
    text = fmt(float(np.mean(scores)))
    return text if threshold is None else f"{text} ({int(np.sum(scores >= threshold))}/{len(scores)})"


def grid_table(task: TaskScores, grid: MemoryGrid, threshold: float | None) -> list[str]:
    """One memory's grid as a table: a row per value of its first axis, a column per value of its second,
    then its worst cell's mean."""
    worst = min(float(np.mean(task.final(label))) for label in grid.labels.values())
    lines = [
        f"| {grid.memory}: "
        + (
            f"{grid.row_axis} \\ {grid.column_axis}"
            if grid.row_axis and grid.column_axis
            else f"{grid.row_axis or grid.column_axis or ''}"
        )
        + " | "
        + " | ".join(grid.columns)
        + " | worst cell |",
        "|---|" + "---|" * (len(grid.columns) + 1),
    ]
    for row in grid.rows:
        cells = [
            grid_cell(task, grid.labels[(row, column)], threshold)
            if (row, column) in grid.labels
            else "not run"
            for column in grid.columns
        ]
        lines.append(f"| {row or grid.memory} | " + " | ".join(cells) + f" | {fmt(worst)} |")
    return [*lines, ""]


def settings_grid_section(task: TaskScores, plots: Path, lines: list[str]) -> None:
    """The settings-grid view of ``task``: per memory that ran at two or more settings, a table of every
    cell's mean final score (and the seeds at the threshold), its worst cell, and one heat map for all."""
    grids = memory_grids(task)
    if not grids:
        return
    threshold = task.normalisation.get("threshold") if task.normalisation else None
    reached = f", and in brackets how many seeds reached {fmt(threshold)}" if threshold is not None else ""
    lines += [
        f"## Settings grid: {task.name}",
        "",
        f"Per memory and setting: the mean {task.metric.replace('_', ' ')} of the final evaluation over "
        f"seeds{reached}. The last column is the memory's worst cell: what a user who picks a setting of the "
        "grid blind risks.",
        "",
    ]
    for grid in grids:
        lines += grid_table(task, grid, threshold)
    image = plot_grids(task, grids, plots / f"grid_{slug(task.name)}.png")
    lines += [f"![{image}]({PLOTS_DIR}/{image})", ""]


def write_report(directories: list[Path], out: Path, reps: int = BOOTSTRAP_REPS) -> Path:
    """Read the runs under ``directories``, write ``out/report.md`` and ``out/plots/*.png``; returns the
    report's path. Unreadable runs are named in a warning on stderr and left out; what the aggregate or a
    generalization view leaves out or cuts is named in a warning on stderr and in the report.

    :param directories: study directories, run directories or folders of runs, named in the report as given
    :param out: where ``report.md`` and ``plots/`` go
    :param reps: bootstrap resamples of every interval
    """
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
        # The machine's speed when the study began (studies.machine.single_thread_gflops): wall times of the
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
        f"bootstrap ({reps} resamples, rliable); IQM is the interquartile mean over runs.",
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
            for problem in aggregate_sections(tasks, plots, lines, reps):
                print(f"warning: {problem}", file=sys.stderr)
            for suite in group_suites(runs):
                for problem in generalization_section(suite, plots, lines, reps):
                    print(f"warning: {problem}", file=sys.stderr)
            for family in length_families(tasks):
                memory_length_section(family, plots, lines, reps)
            for task in tasks:
                settings_grid_section(task, plots, lines)
            lines += ["## Per task", ""]
            for task in tasks:
                task_section(task, plots, lines, reps)
    return atomic_write_text(out / REPORT_FILE, "\n".join(lines) + "\n")
