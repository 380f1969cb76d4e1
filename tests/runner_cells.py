"""Shared helpers of the runner smoke matrix and the bad-value table: call a runner in-process as the shell
would, and check that its answer is either a success or a one-line refusal with exit code 2."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from runners.cli import run_main

RUNNERS = ("ppo", "evaluate", "bc", "demos", "study", "report")

# The smallest settings that still run every part of runners.ppo (rollout, update, checkpoint, evaluation).
TINY_PPO = [
    "--total-steps", "64", "--n-envs", "2", "--n-steps", "16", "--batch-size", "32", "--sequence-length", "8",
    "--n-epochs", "1", "--eval-freq", "32", "--eval-episodes", "1", "--checkpoint-freq", "32",
    "--features-dim", "16", "--no-progress", "--threads", "1",
]  # fmt: skip
TINY_TLB = ["--memory", "tlb", "--d-model", "16", "--n-heads", "2", "--chunk-size", "4", "--n-latents", "2"]


@dataclass
class Answer:
    """What a runner did: its exit code and what it printed."""

    code: int
    out: str
    err: str

    def refused_in_one_line(self) -> bool:
        """Exit code 2 with exactly one line on stderr and no traceback."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        return self.code == 2 and len(lines) == 1 and "Traceback" not in self.err


def runner_main(runner: str) -> Callable[[list[str] | None], int]:
    return importlib.import_module(f"runners.{runner}").main


def call(runner: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> Answer:
    """``python -m runners.RUNNER ARGV`` in this process: the exit code (argparse exits by itself on a bad
    flag) and what it printed. Any other exception propagates, so a traceback fails the test."""
    capsys.readouterr()
    try:
        code = run_main(runner_main(runner), argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    captured = capsys.readouterr()
    return Answer(code, captured.out, captured.err)


def tiny_ppo_run(run_dir: Path, env: str, capsys: pytest.CaptureFixture[str], *extra: str) -> Answer:
    """A tiny runners.ppo run of tlb on ``env`` into ``run_dir``."""
    return call("ppo", ["--env", env, *TINY_PPO, *TINY_TLB, "--logdir", str(run_dir), *extra], capsys)
