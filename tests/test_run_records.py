"""``agents.run_records``: the bookkeeping files both runners write (their end-to-end contents are pinned in
test_runners.py and test_bc.py), and the reporter's last call."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from agents.evaluation import EvaluationResult
from agents.reporting import RUN_COMPLETE
from agents.run_records import RunRecords


class TinyPolicy:
    pass


def result(successes: int) -> EvaluationResult:
    return EvaluationResult(4, successes, successes / 4, (0.1, 0.9), 0.5, 12.0, "sampled")


def test_config_holds_the_command_line_the_runner_facts_and_the_command_as_typed(tmp_path: Path) -> None:
    args = argparse.Namespace(env="CartPole-v1", seed=3, logdir=None, memory="gru")
    model = SimpleNamespace(policy=TinyPolicy())
    RunRecords(tmp_path).write_config(
        "runners.bc",
        args,
        ["--seed", "3", "--lr", "0.1"],
        ["--seed", "3", "--hyperparams", "f.yaml"],
        model,  # type: ignore[arg-type]
        {"hidden_size": 8},
        2,
        {"heldout": "CartPole-v1, seeds 1000000000-1999999999"},
        env_id="CartPole-v1",
        demos_episodes=7,
    )
    config = json.loads((tmp_path / "config.json").read_text())
    assert config == {
        "env": "CartPole-v1",
        "seed": 3,
        "logdir": str(tmp_path),  # the run directory, not the flag's None
        "memory": "gru",
        "argv": ["--seed", "3", "--lr", "0.1"],
        "env_id": "CartPole-v1",
        "demos_episodes": 7,
        "memory_kwargs": {"hidden_size": 8},
        "threads": 2,
        "eval_envs": {"heldout": "CartPole-v1, seeds 1000000000-1999999999"},
        "policy_class": "TinyPolicy",
        "command": "python -m runners.bc --seed 3 --hyperparams f.yaml",
    }
    assert list(config) == sorted(config)  # keys sorted on disk


def test_final_evaluation_summary_and_the_reporters_last_call(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    records = RunRecords(tmp_path, calls.append)
    final = {"train": result(3), "heldout/S9": result(1)}
    records.finish(final, frames=256, seconds=2.0, fps=128.0, epochs=3)
    assert calls == [], "the reporter hears of the run's end only once everything is written"
    stored = json.loads((tmp_path / "final_eval.json").read_text())
    assert stored == {name: {**value.as_dict(), "success_ci95": [0.1, 0.9]} for name, value in final.items()}
    summary = json.loads((tmp_path / "run_summary.json").read_text())
    assert summary == {"frames": 256, "epochs": 3, "seconds": 2.0, "fps": 128.0}
    records.complete({"frames": 256, "eval/train/success_rate": 0.75})
    assert calls == [{"frames": 256, "eval/train/success_rate": 0.75, RUN_COMPLETE: True}]
    RunRecords(tmp_path).complete({"frames": 1})  # no reporter: nothing to call
