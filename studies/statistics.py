"""The report's statistics, with rliable: IQM and mean with 95% stratified-bootstrap intervals, the
probability of improvement of one label over another, frames to a threshold, and mean learning curves.

Every bootstrap is seeded (``seeded``), so the same runs give the same intervals every time; ``reps`` is the
number of bootstrap resamples.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from studies.runs import Run
from studies.scores import SuiteScores

# Bootstrap resamples for every interval: enough for stable 95% bounds at these sample sizes, and fast.
BOOTSTRAP_REPS = 2000


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
    score_dict: dict[str, np.ndarray], seed: int = 0, reps: int = BOOTSTRAP_REPS
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """IQM and mean per label with 95% stratified-bootstrap intervals: ``rliable.library.
    get_interval_estimates`` on [runs, tasks] matrices. Returns (points [2], intervals [2, 2] as
    [[low IQM, low mean], [high IQM, high mean]])."""
    from rliable import library as rly

    return rly.get_interval_estimates(score_dict, iqm_and_mean, reps=reps, random_state=seeded(seed))


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
    score_dict: dict[str, np.ndarray],
    seed: int = 0,
    reps: int = BOOTSTRAP_REPS,
    compared: list[tuple[str, str]] | None = None,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """P(X > Y) for the ordered pairs ``compared`` (default: every ordered pair of labels), with 95%
    intervals (rliable), keyed ``"X,Y"``."""
    from rliable import library as rly

    if compared is None:
        compared = list(itertools.permutations(score_dict, 2))
    pairs = {f"{x},{y}": (score_dict[x], score_dict[y]) for x, y in compared}
    if not pairs:
        return {}, {}
    points, intervals = rly.get_interval_estimates(
        pairs,
        probability_of_improvement,
        reps=reps,
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
    values: dict[str, np.ndarray], totals: dict[str, int], seed: int = 0, reps: int = BOOTSTRAP_REPS
) -> dict[str, Estimate]:
    """IQM [95% CI] per label of one column of scores (``interval_estimates``, seeded: reproducible);
    labels without any value get an Estimate without a point."""
    present = {label: column[:, None] for label, column in values.items() if len(column)}
    points, intervals = interval_estimates(present, seed=seed, reps=reps) if present else ({}, {})
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
    suite: SuiteScores, reps: int = BOOTSTRAP_REPS
) -> tuple[dict[str, dict[str, Estimate]], dict[str, dict[str, Estimate]]]:
    """Per side, the IQM [95% CI] of each label's scores; per held-out side, of each label's generalization
    gaps (train - side, per run). Each uses only the runs that have the side (and ``train``, for a gap)."""
    totals = {label: len(runs) for label, runs in suite.runs.items()}
    scores = {
        side: iqm_estimates({label: suite.scores(label, side) for label in suite.runs}, totals, reps=reps)
        for side in suite.sides
    }
    gaps = {
        side: iqm_estimates({label: suite.gaps(label, side) for label in suite.runs}, totals, reps=reps)
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
