"""The tlb levers' test-split runs set beside today's tlb, gru and lstm: against_defaults.md.

    PYTHONPATH=. python docs/studies/tlb-levers-test/against_defaults.py

The lever runs (``tlb --input-shift 4`` and ``tlb --chunk-size 16``, seeds 0-2, the memory benchmark's
test split) are this folder's trials-*.csv, copied from their studies. tlb at its defaults, gru, lstm and
none were not run again: their final scores are the per-seed columns of
docs/studies/memory-test-split/report.md (the same benchmark file, budgets, seeds, code and machine; tlb's
NoisyPositionOnlyCartPoleEasy seed 0 was rerun on 2026-12-06 and gave the same 0.358). Scores are normalised
with each task's min and max from envs/benchmarks/memory.yaml and compared with the rliable estimates of
``runners.report`` (``studies.statistics``), as that report does.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from envs.benchmark import load_benchmark
from studies.report import fmt_interval, improvement_lines
from studies.statistics import improvement_probabilities, interval_estimates

HERE = Path(__file__).resolve().parent
BASELINE_REPORT = HERE.parent / "memory-test-split" / "report.md"
BASELINES = ("tlb", "gru", "lstm", "none")
SOURCES = (
    "Lever runs: `python -m runners.study --benchmark memory --tasks test --memories tlb --seeds 0-2 --grid "
    "input_shift=4 --out runs/studies/lever-test-input_shift` and the same with `--grid chunk_size=16 --out "
    "runs/studies/lever-test-chunk_size` (2026-12-06, this machine), this folder's report.md. "
    "tlb at its defaults, gru, lstm and none: the per-seed final scores of "
    "docs/studies/memory-test-split/report.md (2026-12-06, the same benchmark file, budgets, seeds and "
    "code), not run again, as that report prints them (three significant figures). Normalised with each "
    "task's min and max; intervals: 95% stratified bootstrap (rliable). "
    "Regenerate: `PYTHONPATH=. python docs/studies/tlb-levers-test/against_defaults.py`."
)


def baseline_scores(tasks: list[str]) -> dict[str, dict[str, tuple[float, ...]]]:
    """Per memory and task, the per-seed column of the test-split report's task tables."""
    sections = BASELINE_REPORT.read_text().split("\n### ")[1:]
    scores: dict[str, dict[str, tuple[float, ...]]] = {memory: {} for memory in BASELINES}
    for section in sections:
        task = section.split("\n", 1)[0].strip()
        if task not in tasks:
            continue
        for line in section.splitlines():
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if cells[0] in BASELINES and len(cells) > 4 and re.fullmatch(r"[-0-9., ]+", cells[4]):
                scores[cells[0]][task] = tuple(float(value) for value in cells[4].split(","))
    return scores


def lever_scores(metric_of: dict[str, str]) -> dict[str, dict[str, tuple[float, ...]]]:
    """Per lever label (``tlb input_shift=4``) and task, the final scores of this folder's runs by seed."""
    scores: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for path in sorted(HERE.glob("trials-*.csv")):
        with open(path) as file:
            for row in csv.DictReader(file):
                axes = [key for key in row if key.startswith("grid/") and row[key]]
                label = " ".join([row["memory"], *(f"{key[5:]}={row[key]}" for key in axes)])
                score = float(row[f"final/heldout/{metric_of[row['task']]}"])
                scores.setdefault(label, {}).setdefault(row["task"], []).append((int(row["seed"]), score))
    return {
        label: {task: tuple(score for _, score in sorted(runs)) for task, runs in per_task.items()}
        for label, per_task in scores.items()
    }


def main() -> None:
    tasks = [task for task in load_benchmark("memory").tasks if task.split == "test"]
    names = [task.name for task in tasks]
    levers = lever_scores({task.name: task.metric for task in tasks})
    scores = {**levers, **baseline_scores(names)}
    normalised = {
        label: np.stack([[task.normalise(s) for s in per_task[task.name]] for task in tasks], axis=1)
        for label, per_task in scores.items()
    }
    points, intervals = interval_estimates(normalised)
    pairs = [(lever, other) for lever in levers for other in ("tlb", "gru", "lstm")] + [("tlb", "gru")]
    probabilities, probability_intervals = improvement_probabilities(normalised, compared=pairs)
    lines = [
        "# tlb's levers on the test split, against today's tlb, gru and lstm",
        "",
        SOURCES,
        "",
        "| memory | IQM [95% CI] | mean [95% CI] | " + " | ".join(names) + " |",
        "|---" * (len(names) + 3) + "|",
    ]
    for label, per_task in scores.items():
        cells = [", ".join(f"{s:.3g}" for s in per_task[name]) for name in names]
        iqm = fmt_interval(points[label][0], intervals[label], 0)
        mean = fmt_interval(points[label][1], intervals[label], 1)
        lines.append(f"| {label} | {iqm} | {mean} | " + " | ".join(cells) + " |")
    lines += improvement_lines(probabilities, probability_intervals)
    (HERE / "against_defaults.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
