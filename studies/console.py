"""The console of a study: one line per trial event, or a live table in a terminal, fed by a Ray Tune
callback. Imported only when the ``study`` extra (Ray Tune) is installed."""

from __future__ import annotations

import math
import re
import sys
import time
from typing import Any

from ray import tune
from rich.live import Live
from rich.table import Table

from studies.plan import TrialSpec


class StudyProgress:
    """The study's console: one line per trial event (start, evaluation, end) and, in a terminal, a compact
    live table (trial, memory, seed, frames, latest success / return, status). Ray's own output stays off."""

    def __init__(self, specs: list[TrialSpec]) -> None:
        self.rows: dict[str, dict[str, Any]] = {
            spec.name: {
                "memory": spec.label,
                "seed": spec.seed,
                "frames": 0,
                "latest": "",
                "status": "pending",
            }
            for spec in specs
        }
        self.interactive = sys.stdout.isatty()
        self.live: Any = None

    def table(self) -> Any:
        """The live table: a row per trial."""
        table = Table(box=None, pad_edge=False)
        for column in ("trial", "memory", "seed", "frames", "latest", "status"):
            table.add_column(column, justify="right" if column in ("seed", "frames") else "left")
        for name, row in self.rows.items():
            table.add_row(
                name, row["memory"], str(row["seed"]), f"{row['frames']:,}", row["latest"], row["status"]
            )
        return table

    def start(self) -> None:
        """Show the live table in a terminal, or say what the lines will be."""
        if self.interactive:
            self.live = Live(self.table(), refresh_per_second=2, transient=False)
            self.live.start()
        else:
            what = f"{len(self.rows)} trials" if self.rows else "searching"
            print(f"{what}; a line per trial start, evaluation and end", flush=True)

    def stop(self) -> None:
        """Draw the table a last time and leave it on the screen."""
        if self.live is not None:
            self.live.update(self.table())
            self.live.stop()

    def update(self, name: str, message: str | None = None, **row: Any) -> None:
        """Update trial ``name``'s row; outside a terminal, print ``message`` (if any) as a timed line."""
        if name not in self.rows:  # a search trial: known once Ray samples it
            self.rows[name] = {"memory": "", "seed": "", "frames": 0, "latest": "", "status": "pending"}
        self.rows[name].update(row)
        if self.live is not None:
            self.live.update(self.table())
        elif message:
            print(f"[{time.strftime('%H:%M:%S')}] {name}: {message}", flush=True)


def latest_summary(result: dict[str, Any]) -> str:
    """``"heldout success 0.84, return 0.80"`` for each evaluated env in a result (just the return for an env
    without a success signal)."""
    parts = []
    for key, value in result.items():
        match = re.fullmatch(r"eval/(.+)/mean_reward", key)
        if match and value is not None:
            success = result.get(f"eval/{match.group(1)}/success_rate")
            has_success = success is not None and not math.isnan(success)
            parts.append(
                f"{match.group(1)} "
                + (f"success {success:.2f}, " if has_success else "")
                + f"return {value:.2f}"
            )
    return "; ".join(parts)


# The console of the study running in this process: Ray Tune pickles its callbacks with the experiment, so the
# callback looks the console up here instead of holding it (a restored study gets the new console).
_PROGRESS: StudyProgress | None = None


def trial_spec_name(trial: Any) -> str:
    """The study's name of a Ray Tune trial (a search trial's name ends with Ray's trial id)."""
    name = trial.config["spec"]["name"]
    return name if "search" not in trial.config else f"{name}-{trial.trial_id}"


def trial_dirname(trial: Any) -> str:
    """Ray's folder for a trial: the study's trial name (Ray's default spells out the whole config)."""
    return trial_spec_name(trial)


def set_console(progress: StudyProgress) -> StudyProgress:
    """Make ``progress`` the console that ``ProgressCallback`` feeds (in this process)."""
    global _PROGRESS
    _PROGRESS = progress
    return progress


class ProgressCallback(tune.Callback):
    """Feeds Ray Tune's trial events to the study's console. Defined in this importable module so that Ray
    Tune, which pickles its callbacks with the experiment, stores a reference to the class, not a copy of
    it with the console (whose terminal lock cannot be pickled); a restored study gets the new console."""

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if _PROGRESS is not None:
            _PROGRESS.update(trial_spec_name(trial), "started", status="running")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if _PROGRESS is None:
            return
        name = trial_spec_name(trial)
        before = _PROGRESS.rows.get(name, {}).get("latest", "")
        latest = latest_summary(result) or before
        _PROGRESS.update(
            name,
            f"{int(result.get('frames', 0)):,} frames, {latest}" if latest != before else None,
            frames=int(result.get("frames", 0)),
            latest=latest,
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if _PROGRESS is not None:
            _PROGRESS.update(trial_spec_name(trial), "finished", status="finished")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if _PROGRESS is not None:
            _PROGRESS.update(trial_spec_name(trial), "FAILED", status="FAILED")
