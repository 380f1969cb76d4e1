"""Reading run directories: one ``Run`` per finished ``runners.ppo`` / ``runners.bc`` run (its config, final
evaluation, periodic evaluations and summary), scored by its final evaluation on the metric its env or
benchmark task names."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.command_line import UsageError


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


def run_metric(result: dict[str, Any], metric: str) -> float:
    """The metric of one EvaluationResult dict (``mean_reward`` is the ``mean_return`` field)."""
    value = result.get("mean_return" if metric in ("mean_reward", "mean_return") else metric)
    return math.nan if value is None else float(value)


def read_json(path: Path) -> Any:
    """A JSON file's content (``OSError`` or ``json.JSONDecodeError`` when unreadable)."""
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
