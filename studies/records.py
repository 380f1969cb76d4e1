"""What a study writes beside its trials: ``study.json`` (its command, machine and dates) and ``trials.csv``
(one row per trial: its settings, final metrics, frames, wall time, fps and status)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from agents.atomic import atomic_write
from studies.plan import TrialSpec

STUDY_FILE = "study.json"
TRIALS_FILE = "trials.csv"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file's object, or ``{}`` when it is missing or unreadable (a trial that never wrote it)."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def trial_row(spec: TrialSpec, run_dir: Path, status: str, error: str) -> dict[str, Any]:
    """One row of ``trials.csv``: the trial's config, final metrics, frames, wall time, fps and status.

    :param run_dir: the trial's run directory, as the row names it (the study directory as the user gave
        it, so a relative ``--out`` stays relative), and where its files are read from
    """
    row: dict[str, Any] = {
        "trial": spec.name,
        "status": status,
        "task": spec.task,
        "memory": spec.memory,
        "seed": spec.seed,
        **{f"grid/{key}": value for key, value in spec.variant.items()},
        "argv": " ".join(spec.argv),
    }
    summary = read_json(run_dir / "run_summary.json")
    row.update(frames=summary.get("frames"), wall_s=summary.get("seconds"), fps=summary.get("fps"))
    for name, result in read_json(run_dir / "final_eval.json").items():
        row[f"final/{name}/success_rate"] = result.get("success_rate")
        row[f"final/{name}/mean_reward"] = result.get("mean_return")
        row[f"final/{name}/mean_ep_length"] = result.get("mean_length")
    row["run_dir"] = str(run_dir)
    row["error"] = error
    return row


def write_trials_csv(study_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """``trials.csv`` in ``study_dir``, atomically: the columns of every row, in the order they first
    appear."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]

    def write(path: Path) -> None:
        with open(path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    return atomic_write(study_dir / TRIALS_FILE, write)
