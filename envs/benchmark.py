"""Named benchmarks: fixed lists of tasks, each with its budget, hyperparameters, score and normalisation.

A benchmark is a YAML file in ``envs/benchmarks/`` (one per benchmark, in the style of the RL Zoo's
hyperparameter files); ``runners.study --benchmark NAME`` runs every task of it, and ``runners.report``
normalises each task's score with its ``min`` and ``max`` (min -> 0, max -> 1) to aggregate over tasks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCHMARK_DIR = Path(__file__).with_name("benchmarks")
METRICS = ("success_rate", "mean_reward")
TASK_KEYS = {"env", "metric", "min", "max", "threshold", "hyperparams", "eval", "memory_length", "split"}
# A benchmark's dev split is where defaults and any memory's settings may be chosen; its test split is where
# nothing is chosen, so that its scores say how the choices made on the dev split carry to new tasks.
SPLITS = ("dev", "test")


@dataclass(frozen=True)
class BenchmarkTask:
    """One task of a benchmark.

    :param name: short name used in reports (e.g. ``"MemoryS7"``)
    :param env: the gymnasium id trained and evaluated on
    :param metric: the final evaluation's key that scores a run: ``success_rate`` or ``mean_reward``
    :param min: the score mapped to 0 by normalisation (e.g. a random policy's)
    :param max: the score mapped to 1 (e.g. the best possible)
    :param threshold: a raw score counted as "solved" (frames to threshold), or None
    :param hyperparams: ``runners.ppo`` settings by destination name (``total_steps``, ``lr``, ...), shared by
        every memory
    :param deterministic_eval: greedy (True) or sampled (False) actions in evaluations
    :param memory_length: how many steps the task asks the agent to remember, where one number says it (the
        Passive T-Maze's corridor length); the report draws tasks of one env family that name it as a curve
        of score against memory length
    :param split: ``"dev"`` (settings may be chosen on it) or ``"test"`` (nothing is chosen on it), or None
        for a benchmark without splits; ``runners.report`` aggregates each split on its own
    """

    name: str
    env: str
    metric: str = "success_rate"
    min: float = 0.0
    max: float = 1.0
    threshold: float | None = None
    hyperparams: dict[str, Any] = field(default_factory=dict)
    deterministic_eval: bool = True
    memory_length: int | None = None
    split: str | None = None

    def normalise(self, score: float) -> float:
        """``(score - min) / (max - min)``."""
        return (score - self.min) / (self.max - self.min)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "env": self.env,
            "metric": self.metric,
            "min": self.min,
            "max": self.max,
            "threshold": self.threshold,
            "hyperparams": dict(self.hyperparams),
            "deterministic_eval": self.deterministic_eval,
            "memory_length": self.memory_length,
            "split": self.split,
        }


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    tasks: tuple[BenchmarkTask, ...]


def list_benchmarks() -> dict[str, str]:
    """Every benchmark's name and description."""
    return {path.stem: load_benchmark(path.stem).description for path in sorted(BENCHMARK_DIR.glob("*.yaml"))}


def load_benchmark(name: str) -> Benchmark:
    """The benchmark ``envs/benchmarks/<name>.yaml``.

    :raises ValueError: for an unknown name (listing the known ones) or a malformed file
    """
    import yaml

    path = BENCHMARK_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in BENCHMARK_DIR.glob("*.yaml")))
        raise ValueError(f"unknown benchmark {name!r}: use one of {known}")
    data = yaml.safe_load(path.read_text())
    tasks = []
    for task_name, spec in (data.get("tasks") or {}).items():
        unknown = set(spec) - TASK_KEYS
        if unknown or "env" not in spec:
            raise ValueError(f"benchmark {name}: task {task_name} needs 'env' and has unknown keys {unknown}")
        task = BenchmarkTask(
            name=task_name,
            env=spec["env"],
            metric=spec.get("metric", "success_rate"),
            min=float(spec.get("min", 0.0)),
            max=float(spec.get("max", 1.0)),
            threshold=None if spec.get("threshold") is None else float(spec["threshold"]),
            hyperparams=dict(spec.get("hyperparams") or {}),
            deterministic_eval=spec.get("eval", "greedy") == "greedy",
            memory_length=None if spec.get("memory_length") is None else int(spec["memory_length"]),
            split=spec.get("split"),
        )
        if task.split is not None and task.split not in SPLITS:
            raise ValueError(
                f"benchmark {name}: task {task_name} has split {task.split!r}: use one of {SPLITS}"
            )
        if task.metric not in METRICS or not math.isfinite(task.max - task.min) or task.max == task.min:
            raise ValueError(f"benchmark {name}: task {task_name} needs metric in {METRICS} and min != max")
        tasks.append(task)
    if not tasks:
        raise ValueError(f"benchmark {name}: no tasks")
    return Benchmark(name=name, description=str(data.get("description", "")), tasks=tuple(tasks))


def load_hyperparams(path: str | Path, env_id: str) -> dict[str, Any]:
    """The settings a hyperparameter file gives ``env_id``, by ``runners.ppo`` destination name.

    Two layouts are read, both YAML: the RL Zoo's, with one block of settings per env id at the top level
    (``MiniGrid-MemoryS7-v0: {n_envs: 16, lr: 0.001}``; anchors and merges as YAML has them, the block of
    another name of the same task, ``atari`` for Atari envs and ``default`` for any other, as the Zoo
    does), and a benchmark file (``tasks:`` with an ``env`` and
    ``hyperparams`` per task), whose budget (``total_steps``) and hyperparameters for ``env_id`` apply.

    :raises ValueError: for a missing or unreadable file, or one without settings for ``env_id``
    """
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ValueError(
            f"hyperparameter file {file} does not exist: pass a YAML file (e.g. envs/benchmarks/)"
        )
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as error:
        first_line = str(error).splitlines()[0]
        raise ValueError(f"hyperparameter file {file} is not valid YAML ({first_line})") from None
    if not isinstance(data, dict):
        raise ValueError(f"hyperparameter file {file} must map env ids (or 'tasks') to settings")
    if "tasks" in data:
        blocks = {spec.get("env"): spec.get("hyperparams") or {} for spec in (data["tasks"] or {}).values()}
    else:
        blocks = data
    key = hyperparams_key(blocks, env_id)
    if key is None:
        known = ", ".join(str(key) for key in blocks) or "none"
        raise ValueError(f"hyperparameter file {file} has no settings for {env_id} (it has: {known})")
    settings = blocks[key] or {}
    if not isinstance(settings, dict):
        raise ValueError(f"hyperparameter file {file}: the settings of {env_id} must be a mapping")
    return dict(settings)


def hyperparams_key(blocks: dict[Any, Any], env_id: str) -> Any:
    """The block of ``blocks`` for ``env_id``, looked up as the RL Zoo does: the id itself (or another name
    of its task, ``envs.classic.ZOO_ALIASES``), ``atari`` for an Atari env, then ``default``; None if none."""
    from envs.classic import env_id_aliases

    for name in env_id_aliases(env_id):
        if name in blocks:
            return name
    if "atari" in blocks:
        import gymnasium as gym

        spec = gym.registry.get(env_id)
        if spec is not None and "AtariEnv" in str(spec.entry_point):
            return "atari"
    return "default" if "default" in blocks else None
