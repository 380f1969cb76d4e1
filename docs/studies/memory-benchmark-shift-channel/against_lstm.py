"""The channel-wise input shift's memory-benchmark runs set beside lstm's and today's tlb's: against_lstm.md.

    PYTHONPATH=. python docs/studies/memory-benchmark-shift-channel/against_lstm.py

The channel runs (``tlb --shift-mixing channel``, seeds 0-2, every task of the memory benchmark) are this
folder's trials.csv. lstm and today's tlb (the dense shift) were not run again: their final scores are the
per-seed columns of docs/studies/memory-benchmark/report.md (2026-11-29, the same benchmark file, budgets,
seeds and machine class). Scores are normalised with each task's min and max from envs/benchmarks/memory.yaml
and compared with the rliable estimates of ``runners.report`` (``studies.statistics``), as that report does.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from envs.benchmark import load_benchmark
from studies.report import fmt_interval, improvement_lines
from studies.statistics import improvement_probabilities, interval_estimates

HERE = Path(__file__).resolve().parent
CHANNEL = "tlb shift_mixing=channel"
SOURCES = (
    "Channel runs: `python -m runners.study --benchmark memory --tasks "
    "CartPoleNoVel,RepeatFirstEasy,RepeatPreviousEasy --memories tlb --grid shift_mixing=channel "
    "--seeds 0-2` (2026-12-01 01:17) and the same with `--tasks MemoryS7` (2026-12-01 02:13), this "
    "folder's report.md. "
    "lstm and today's tlb: the per-seed final scores of docs/studies/memory-benchmark/report.md (2026-11-29, "
    "same benchmark file, budgets and seeds, same machine class), not run again, as that report prints them "
    "(three significant figures): there P(tlb > lstm) is 0.83, here 0.79, because rounded CartPole scores "
    "of 500 tie. Normalised with each task's min and max; intervals: 95% stratified bootstrap (rliable). "
    "Regenerate: `PYTHONPATH=. python docs/studies/memory-benchmark-shift-channel/against_lstm.py`."
)
# The comparisons the README quotes: the candidate against lstm and today's tlb, and today's tlb against lstm.
PAIRS = (f"{CHANNEL},lstm", f"{CHANNEL},tlb", "tlb,lstm")
# Per-seed final scores (seeds 0, 1, 2) from docs/studies/memory-benchmark/report.md, as printed there.
EARLIER = {
    "tlb": {
        "CartPoleNoVel": (500.0, 500.0, 500.0),
        "MemoryS7": (1.0, 1.0, 1.0),
        "RepeatFirstEasy": (0.586, 1.0, 0.796),
        "RepeatPreviousEasy": (0.76, 0.777, 0.727),
    },
    "lstm": {
        "CartPoleNoVel": (500.0, 500.0, 500.0),
        "MemoryS7": (0.68, 0.5, 0.0),
        "RepeatFirstEasy": (0.594, 0.573, 0.988),
        "RepeatPreviousEasy": (0.0313, 0.0563, 0.0437),
    },
}


def channel_scores(metric_of: dict[str, str]) -> dict[str, tuple[float, ...]]:
    """Each task's final scores of the channel runs, in seed order."""
    with open(HERE / "trials.csv") as file:
        rows = sorted(csv.DictReader(file), key=lambda row: int(row["seed"]))
    return {
        task: tuple(float(r[f"final/heldout/{metric}"]) for r in rows if r["task"] == task)
        for task, metric in metric_of.items()
    }


def main() -> None:
    tasks = load_benchmark("memory").tasks
    scores = {**EARLIER, CHANNEL: channel_scores({task.name: task.metric for task in tasks})}
    normalised = {
        memory: np.stack([[task.normalise(s) for s in per_task[task.name]] for task in tasks], axis=1)
        for memory, per_task in scores.items()
    }
    points, intervals = interval_estimates(normalised)
    probabilities, probability_intervals = improvement_probabilities(normalised)
    lines = [
        "# The channel-wise input shift against lstm and today's tlb on the memory benchmark",
        "",
        SOURCES,
        "",
        "| memory | " + " | ".join(task.name for task in tasks) + " | IQM [95% CI] | mean [95% CI] |",
        "|---" * (len(tasks) + 3) + "|",
    ]
    for memory, per_task in scores.items():
        cells = [", ".join(f"{s:.3g}" for s in per_task[task.name]) for task in tasks]
        iqm = fmt_interval(points[memory][0], intervals[memory], 0)
        mean = fmt_interval(points[memory][1], intervals[memory], 1)
        lines.append(f"| {memory} | " + " | ".join(cells) + f" | {iqm} | {mean} |")
    lines += improvement_lines({pair: probabilities[pair] for pair in PAIRS}, probability_intervals)
    (HERE / "against_lstm.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
