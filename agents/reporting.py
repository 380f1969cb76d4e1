"""What a training run tells the outside world as it goes: evaluation rows on disk and metrics for a
reporter (e.g. Ray Tune's ``tune.report`` when the run is a trial of a study).

Every runner writes its evaluations as ``<run_dir>/eval/evaluations.jsonl``, one JSON object per env and
evaluation (``timesteps``, ``env`` and the ``EvaluationResult`` fields), so that ``runners.report`` reads
learning curves of PPO and BC runs the same way. On the console, a run names its directory before training
(``print_run_start``) and ends with a summary of aligned lines (``print_summary``, ``describe_result``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from agents.evaluation import EvaluationResult

# Called with a flat dict of metrics (str -> number); Ray Tune's ``tune.report`` has this shape.
Reporter = Callable[[dict[str, Any]], None]

EVALUATIONS_FILE = Path("eval") / "evaluations.jsonl"
# Set (True) in the last report of a run, sent once everything is written. Not "done": Ray Tune reserves that
# key and stops a trial as soon as it sees it.
RUN_COMPLETE = "run_complete"


def append_evaluations(run_dir: Path, timesteps: int, results: Mapping[str, EvaluationResult]) -> None:
    """Append one row per evaluation env to ``<run_dir>/eval/evaluations.jsonl``."""
    path = run_dir / EVALUATIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        for name, result in results.items():
            file.write(json.dumps({"timesteps": timesteps, "env": name, **result.as_dict()}) + "\n")


def flatten_results(results: Mapping[str, EvaluationResult]) -> dict[str, Any]:
    """``{"eval/<env>/success_rate": ..., "eval/<env>/mean_reward": ..., "eval/<env>/mean_ep_length": ...}``,
    the names SB3's logger uses for the same numbers."""
    flat: dict[str, Any] = {}
    for name, result in results.items():
        flat[f"eval/{name}/success_rate"] = result.success_rate
        flat[f"eval/{name}/mean_reward"] = result.mean_return
        flat[f"eval/{name}/mean_ep_length"] = result.mean_length
    return flat


class MetricsReporter(BaseCallback):
    """After every update, hand the reporter the frames so far, the frame rate of this process and the
    latest evaluation results (``latest()``), so a study's live table moves between evaluations too.

    :param reporter: receives the flat metrics dict
    :param latest: returns the most recent evaluation results (e.g. ``SuiteEvalCallback.last_results``)
    """

    def __init__(self, reporter: Reporter, latest: Callable[[], Mapping[str, EvaluationResult]]) -> None:
        super().__init__()
        self.reporter = reporter
        self.latest = latest
        self.start_time = 0.0
        self.start_frames = 0

    def _on_training_start(self) -> None:
        self.start_time, self.start_frames = time.perf_counter(), self.num_timesteps

    def metrics(self) -> dict[str, Any]:
        elapsed = max(time.perf_counter() - self.start_time, 1e-9)
        return {
            "frames": self.num_timesteps,
            "fps": (self.num_timesteps - self.start_frames) / elapsed,
            **flatten_results(self.latest()),
        }

    def _on_rollout_start(self) -> None:
        if self.num_timesteps > self.start_frames:  # after an update, not before the first rollout
            self.reporter(self.metrics())

    def _on_step(self) -> bool:
        return True


# ---------------------------------------------------------------------- console lines


def print_run_start(runner: str, run_dir: Path) -> None:
    """Before training: where the run writes, and the command that shows its curves while it runs."""
    print(f"{runner}: run directory {run_dir}", flush=True)
    print(f"{runner}: watch it with: tensorboard --logdir {run_dir}", flush=True)


def print_summary(title: str, rows: list[tuple[str, str]]) -> None:
    """Plain aligned lines: paths stay whole (copy-pasteable) whatever the terminal width."""
    width = max(len(key) for key, _ in rows)
    print(f"\n{title}")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


def describe_result(result: EvaluationResult, seeds: str, with_return: bool = True) -> str:
    """One summary line of an evaluation, naming its protocol and saying "no success signal" for an env
    that gives none: ``0.700 [95% CI 0.400-0.890] over 20 episodes (sampled actions), return 0.61, ...``."""
    protocol = f" ({result.protocol} actions)" if result.protocol else ""
    text = f"{result.success_summary()} over {result.episodes} episodes{protocol}"
    if with_return:
        text += f", return {result.mean_return:.3f}"
    return f"{text}, length {result.mean_length:.1f} ({seeds})"
