"""The command-line runners end to end on tiny budgets, and their answers to bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runners import ppo
from runners.cli import run_main

TINY = [
    "--env", "BabyAI-GoToLocal-v0", "--total-steps", "128", "--n-envs", "2", "--n-steps", "32",
    "--batch-size", "64", "--sequence-length", "16", "--n-epochs", "1", "--eval-freq", "64",
    "--eval-episodes", "2", "--checkpoint-freq", "64", "--features-dim", "16", "--no-progress",
    "--memory", "tlb", "--d-model", "16", "--n-heads", "2", "--chunk-size", "4", "--n-latents", "2",
]  # fmt: skip


def exit_code(argv: list[str]) -> int:
    """The exit code of ``python -m runners.ppo ARGV`` (argparse exits by itself on bad flags)."""
    try:
        return run_main(ppo.main, argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def test_ppo_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    assert run_main(ppo.main, [*TINY, "--logdir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "success heldout" in out and "frames/s" in out and str(run_dir / "model.zip") in out
    assert "Sampling rejected" not in out
    config = json.loads((run_dir / "config.json").read_text())
    assert config["memory"] == "tlb" and config["memory_kwargs"]["chunk_size"] == 4
    assert (run_dir / "model.zip").stat().st_size > 0
    assert list((run_dir / "checkpoints").glob("model_*_steps.zip"))
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert "rollout/ep_rew_mean" in (run_dir / "progress.csv").read_text().splitlines()[0]
    header = (run_dir / "progress.csv").read_text().splitlines()[0]
    assert "eval/heldout/success_rate" in header
    assert (run_dir / "eval" / "evaluations.jsonl").exists()
    final = json.loads((run_dir / "final_eval.json").read_text())["heldout"]
    assert final["episodes"] == 2 and 0.0 <= final["success_rate"] <= 1.0


def test_ppo_cli_on_a_suite_logs_every_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    assert run_main(ppo.main, [*TINY, "--suite", "memory-length", "--logdir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    sides = ["train", "heldout/MemoryS9", "heldout/MemoryS11", "heldout/MemoryS13"]
    for side in sides:
        assert f"success {side} " in out
    header = (run_dir / "progress.csv").read_text().splitlines()[0]
    assert all(f"eval/{side}/success_rate" in header for side in sides)
    assert json.loads((run_dir / "config.json").read_text())["eval_envs"]["train"].startswith(
        "MiniGrid-MemoryS7"
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--env", "BabyAI-GoToLocl-v0"], "BabyAI-GoToLocal-v0"),
        (["--chunk-size", "0"], "chunk_size must be a positive integer"),
        (["--n-latents", "0"], "n_latents must be a positive integer"),
        (["--suite", "held-out-colours"], "unknown suite 'held-out-colours'"),
        (["--memory", "lstm"], "--d-model does not apply to --memory lstm"),
        (["--n-heads", "3"], "not divisible by n_heads"),
        (["--n-steps", "40"], "n_steps=40 is not a multiple of sequence_length=16"),
        (["--memory", "lsmt"], "invalid choice: 'lsmt'"),
        (["--total-steps", "-5"], "must be a positive integer"),
    ],
)
def test_ppo_cli_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    run_dir = tmp_path / "run"
    assert exit_code([*TINY, "--logdir", str(run_dir), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not run_dir.exists()


def test_ppo_cli_refuses_an_existing_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.zip").write_text("precious")
    assert run_main(ppo.main, [*TINY, "--logdir", str(run_dir)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (run_dir / "model.zip").read_text() == "precious"
