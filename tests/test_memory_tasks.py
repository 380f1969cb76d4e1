"""``benchmarks/memory_tasks.py`` runs the memory benchmark of ``envs/benchmarks/memory.yaml``: every setting
comes from that file (it once declared the benchmark again, and drifted), and its model is the one
``runners.ppo --hyperparams envs/benchmarks/memory.yaml`` builds."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from agents.factory import PPOHyperparameters
from agents.ppo_settings import hyperparameters, policy_settings
from envs.benchmark import load_hyperparams
from policies.memories import memory_parameters
from runners import ppo
from runners.cli import MEMORY_FLAGS, memory_kwargs_from_args, settings_argv

ROOT = Path(__file__).resolve().parent.parent
YAML = ROOT / "envs" / "benchmarks" / "memory.yaml"


@pytest.fixture(scope="module")
def memory_tasks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("memory_tasks", ROOT / "benchmarks" / "memory_tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["memory_tasks"] = module
    spec.loader.exec_module(module)
    return module


def test_every_task_and_setting_comes_from_the_benchmark_file(memory_tasks: ModuleType) -> None:
    tasks = yaml.safe_load(YAML.read_text())["tasks"]
    assert set(tasks) <= set(memory_tasks.TASKS)
    for name, spec in tasks.items():
        task, settings = memory_tasks.TASKS[name], spec["hyperparams"]
        assert task.env_id == spec["env"] and task.budget == settings["total_steps"]
        assert task.eval_every == settings["eval_freq"] and task.eval_episodes == settings["eval_episodes"]
        assert task.threshold == spec.get("threshold")
        assert task.deterministic == (spec["eval"] == "greedy")
        assert task.ppo["n_envs"] == settings["n_envs"]
    # The values the script once declared itself, differently: the file's win.
    assert memory_tasks.TASKS["memory-s7"] is memory_tasks.TASKS["MemoryS7"]
    assert (memory_tasks.TASKS["memory-s7"].eval_every, memory_tasks.TASKS["memory-s7"].eval_episodes) == (
        25_000,
        50,
    )
    assert memory_tasks.TASKS["cartpole-novel"].eval_every == 10_240


@pytest.mark.parametrize("memory", ["tlb", "lstm", "none"])
def test_the_model_is_the_one_a_study_trial_builds_from_the_file(
    memory_tasks: ModuleType, memory: str
) -> None:
    """What runners.ppo parses from a ``runners.study --benchmark memory`` trial's command line: the task's
    settings, less the memory flags this memory does not take (the study leaves those out)."""
    not_taken = {dest for dest, _, _ in MEMORY_FLAGS.values()} - set(memory_parameters(memory))
    for task in {id(task): task for task in memory_tasks.TASKS.values()}.values():
        settings = load_hyperparams(YAML, task.env_id)
        kept = {key: value for key, value in settings.items() if key not in not_taken}
        parser = ppo.build_parser()
        argv = ["--env", task.env_id, "--memory", memory, *settings_argv(parser, kept, "test")]
        args = parser.parse_args(argv)
        expected = dict(task.ppo)
        assert args.n_envs == expected.pop("n_envs")
        assert hyperparameters(args) == PPOHyperparameters(**expected), task.name
        assert policy_settings(args) == task.policy, task.name
        assert memory_kwargs_from_args(args) == task.memory_kwargs(memory), task.name
        assert (args.normalize, args.total_steps) == (task.normalize, task.budget)
        assert (args.eval_freq, args.eval_episodes) == (task.eval_every, task.eval_episodes)


def test_a_run_stops_at_the_threshold(memory_tasks: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shrunk CartPole task (normalised, like the file's): met at the first evaluation, training stops."""
    task = memory_tasks.TASKS["cartpole-novel"]
    small = {"n_envs": 2, "n_steps": 32, "batch_size": 64, "n_epochs": 1, "sequence_length": 16}
    tiny = dataclasses.replace(
        task, budget=256, eval_every=32, eval_episodes=2, threshold=0.0, ppo={**task.ppo, **small}
    )
    monkeypatch.setitem(memory_tasks.TASKS, "cartpole-novel", tiny)
    frames, best, _ = memory_tasks.run("cartpole-novel", "tlb", seed=0)
    assert frames == 64 and math.isfinite(best) and best > 0  # one rollout of 2 x 32 frames
