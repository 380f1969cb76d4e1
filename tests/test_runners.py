"""The command-line runners end to end on tiny budgets, and their answers to bad input."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch

from agents.command_line import MEMORY_FLAGS, memory_flag_help
from envs import make as envs_make
from envs.make import use_subprocesses
from policies.memories import MEMORY_CLASSES, GRUMemory
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
    # Before training: the run directory and the tensorboard command, ahead of the summary.
    start = out.index(f"run directory {run_dir}")
    assert (
        start < out.index(f"watch it with: tensorboard --logdir {run_dir}") < out.index("runners.ppo summary")
    )
    # BabyAI is evaluated with sampled actions by default, and the summary says so.
    summary = out.split("runners.ppo summary")[1]
    assert "episodes (sampled actions)" in next(
        line for line in summary.splitlines() if "success heldout" in line
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert config["memory"] == "tlb" and config["memory_kwargs"]["chunk_size"] == 4
    assert config["stochastic_eval"] is True
    assert json.loads((run_dir / "final_eval.json").read_text())["heldout"]["protocol"] == "sampled"
    rows = (run_dir / "eval" / "evaluations.jsonl").read_text().splitlines()
    assert all(json.loads(row)["protocol"] == "sampled" for row in rows)
    assert (run_dir / "model.zip").stat().st_size > 0
    assert list((run_dir / "checkpoints").glob("model_*_steps.zip"))
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert "rollout/ep_rew_mean" in (run_dir / "progress.csv").read_text().splitlines()[0]
    header = (run_dir / "progress.csv").read_text().splitlines()[0]
    assert "eval/heldout/success_rate" in header
    assert (run_dir / "eval" / "evaluations.jsonl").exists()
    final = json.loads((run_dir / "final_eval.json").read_text())["heldout"]
    assert final["episodes"] == 2 and 0.0 <= final["success_rate"] <= 1.0


@pytest.mark.slow
def test_ppo_cli_on_a_suite_logs_every_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    argv = [*TINY, "--suite", "memory-length", "--eval-freq", "0", "--logdir", str(run_dir)]
    assert run_main(ppo.main, argv) == 0
    out = capsys.readouterr().out
    sides = ["train", "heldout/MemoryS9", "heldout/MemoryS11", "heldout/MemoryS13"]
    for side in sides:
        assert f"success {side} " in out
    header = (run_dir / "progress.csv").read_text().splitlines()[0]
    assert all(f"eval/{side}/success_rate" in header for side in sides)
    assert json.loads((run_dir / "config.json").read_text())["eval_envs"]["train"].startswith(
        "MiniGrid-MemoryS7"
    )
    # --eval-freq 0: no evaluation during training (a study that reads only the final one pays for one).
    rows = [json.loads(row) for row in (run_dir / "eval" / "evaluations.jsonl").read_text().splitlines()]
    assert sorted(row["env"] for row in rows) == sorted(sides)
    frames = json.loads((run_dir / "run_summary.json").read_text())["frames"]
    assert {row["timesteps"] for row in rows} == {frames}


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--env", "BabyAI-GoToLocl-v0"], "BabyAI-GoToLocal-v0"),
        (["--chunk-size", "0"], "--chunk-size: must be a positive integer, got 0"),
        (["--n-latents", "0"], "--n-latents: must be a positive integer, got 0"),
        (["--suite", "held-out-colours"], "unknown suite 'held-out-colours'"),
        (["--memory", "lstm"], "--d-model does not apply to --memory lstm"),
        (["--n-heads", "3"], "not divisible by n_heads"),
        (["--n-steps", "40"], "n_steps=40 is not a multiple of sequence_length=16"),
        (["--memory", "lsmt"], "invalid choice: 'lsmt'"),
        (["--total-steps", "-5"], "must be a positive integer"),
        (["--eval-freq", "-1"], "argument --eval-freq: must be 0 or more, got -1"),
        (["--encoder-channels", "0"], "argument --encoder-channels: must be a positive integer"),
        (["--gamma", "1.5"], "argument --gamma: must be in [0, 1], got 1.5"),
        (["--gae-lambda", "-0.1"], "argument --gae-lambda: must be in [0, 1], got -0.1"),
        (["--gamma", "nan"], "argument --gamma: must be in [0, 1], got nan"),
        (["--clip-range", "0"], "argument --clip-range: must be a positive number or a linear schedule"),
        (["--clip-range-vf", "-1"], "argument --clip-range-vf: must be a positive number"),
        (["--lr", "inf"], "argument --lr: must be a positive number or a linear schedule like lin_0.001"),
        (["--ent-coef", "-0.01"], "argument --ent-coef: must be 0 or more"),
        (["--vf-coef", "-1"], "argument --vf-coef: must be 0 or more"),
        # cuda:99 is refused on any machine: "no CUDA device" here, "N CUDA device(s)" on a GPU machine.
        (["--device", "cuda:99"], "--device cuda:99: this machine has"),
        (["--device", "gpu"], "--device gpu: not a torch device"),
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


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_ppo_cli_refuses_cuda_without_cuda(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    assert exit_code([*TINY, "--logdir", str(run_dir), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: --device cuda: this machine has no CUDA device (torch.cuda.is_available() is False); "
        "use --device cpu, or auto to take a GPU only when there is one\n"
    )
    assert not run_dir.exists()


CARTPOLE = [
    "--env", "CartPole-v1", "--total-steps", "64", "--n-envs", "2", "--n-steps", "32", "--batch-size", "64",
    "--sequence-length", "16", "--n-epochs", "1", "--eval-freq", "64", "--eval-episodes", "2",
    "--checkpoint-freq", "64", "--features-dim", "16", "--no-progress", "--memory", "lstm",
    "--hidden-size", "8",
]  # fmt: skip


def test_encoder_channels_on_vector_observations_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    assert run_main(ppo.main, [*CARTPOLE, "--encoder-channels", "8", "--logdir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "these observations use FlattenExtractor: leave encoder_channels (--encoder-channels) unset" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not run_dir.exists()


@pytest.mark.parametrize(
    "extra, stochastic",
    [([], False), (["--stochastic-eval"], True), (["--deterministic"], False)],
)
def test_cartpole_is_evaluated_greedily_by_default_without_a_success_signal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], stochastic: bool
) -> None:
    run_dir = tmp_path / "run"
    assert run_main(ppo.main, [*CARTPOLE, *extra, "--logdir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    protocol = "sampled" if stochastic else "greedy"
    line = next(
        line for line in out.split("runners.ppo summary")[1].splitlines() if "success heldout" in line
    )
    assert f"no success signal over 2 episodes ({protocol} actions), return" in line
    assert json.loads((run_dir / "config.json").read_text())["stochastic_eval"] is stochastic
    final = json.loads((run_dir / "final_eval.json").read_text())["heldout"]
    assert final["protocol"] == protocol and final["successes"] is None


def test_minigrid_greedy_on_request_and_the_studys_benchmark_flag() -> None:
    """runners.study passes a benchmark's greedy protocol as --no-stochastic-eval (the flag it finds for
    the stochastic_eval key); runners.ppo reads it as greedy even on MiniGrid."""
    parser = ppo.build_parser()
    flags = {action.dest: action for action in parser._actions if action.option_strings}
    assert flags["stochastic_eval"].option_strings == ["--stochastic-eval", "--no-stochastic-eval"]
    for argv, expected in (
        ([], None),
        (["--deterministic"], False),
        (["--no-stochastic-eval"], False),
        (["--stochastic-eval"], True),
    ):
        assert parser.parse_args(argv).stochastic_eval is expected
    from runners.cli import resolve_stochastic_eval

    assert resolve_stochastic_eval(None, "MiniGrid-MemoryS7-v0") is True
    assert resolve_stochastic_eval(None, "BabyAI-GoToLocal-v0") is True
    assert resolve_stochastic_eval(None, "CartPole-v1") is False
    assert resolve_stochastic_eval(False, "BabyAI-GoToLocal-v0") is False


@pytest.mark.parametrize("runner", ["ppo", "bc", "evaluate", "demos", "study"])
def test_help_shows_each_default_once(runner: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module(f"runners.{runner}")
    parser = module.build_parser()
    formatter = parser._get_formatter()
    for action in parser._actions:
        text = formatter._get_help_string(action) or ""
        if action.help and "%(default)" in text:
            text = text % {"default": action.default}
        assert text.lower().count("default") <= 1, (action.option_strings, text)
        assert "(default: None)" not in text, action.option_strings
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in out
    if runner == "ppo":
        assert "hidden size (lstm, gru; default 128)" in out and "(default 128) (default" not in out
        assert "discount, in [0, 1] (default: 0.99)" in out


def test_memory_flag_help_reads_the_constructors_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory flags' help texts name the memories that take each flag and the defaults their
    constructors declare, never a copy of them: change a default and the help follows."""
    assert MEMORY_FLAGS["--d-model"][2].endswith("(tlb, tlb-paper, transformer; default 128)")
    assert MEMORY_FLAGS["--normalize-latents"][2].endswith("(tlb, tlb-paper; default on, tlb-paper off)")
    assert MEMORY_FLAGS["--input-shift"][2].endswith("default min(2, chunk_size), tlb-paper 0)")

    class NarrowGRU(GRUMemory):
        def __init__(
            self, input_dim: int, hidden_size: int = 24, n_layers: int = 1, rnn_kwargs: dict | None = None
        ) -> None:
            super().__init__(input_dim, hidden_size, n_layers, rnn_kwargs)

    monkeypatch.setitem(MEMORY_CLASSES, "gru", NarrowGRU)
    assert memory_flag_help("hidden_size", "hidden size") == "hidden size (lstm, gru; default 128, gru 24)"


@pytest.mark.parametrize(
    "requested, n_envs, threads, cores, expected",
    [
        (None, 16, None, 16, True),  # a many-core machine: envs in subprocesses
        (None, 16, None, 4, True),
        (None, 16, None, 2, False),  # this CI machine: in the main process
        (None, 1, None, 16, False),  # one env: nothing to spread
        (None, 16, 1, 16, False),  # --threads 1 (a study's trial, a one-thread measurement)
        (None, 16, 8, 2, True),
        (True, 16, None, 2, True),  # --subproc forces either way
        (False, 16, None, 16, False),  # --no-subproc
    ],
)
def test_subprocess_envs_are_chosen_by_the_cores_the_run_has(
    requested: bool | None,
    n_envs: int,
    threads: int | None,
    cores: int,
    expected: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(envs_make.os, "cpu_count", lambda: cores)
    assert use_subprocesses(requested, n_envs, threads) is expected


@pytest.mark.slow
def test_subprocess_envs_train_babyai_through_time_limits_and_the_summary_splits_the_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chosen automatically on a machine of 8 cores: SubprocVecEnv stacks MiniGrid's rewards as int64, and
    GoToLocal's 64-step time limit cuts episodes inside the 96 steps per env (the bootstrap adds a float)."""
    monkeypatch.setattr(envs_make.os, "cpu_count", lambda: 8)
    run_dir = tmp_path / "run"
    argv = [*TINY, "--total-steps", "192", "--n-steps", "96", "--batch-size", "96", "--logdir", str(run_dir)]
    assert run_main(ppo.main, argv) == 0
    out = capsys.readouterr().out
    config = json.loads((run_dir / "config.json").read_text())
    assert config["subproc"] is True and "--subproc" not in config["argv"]
    time_row = next(line for line in out.splitlines() if line.strip().startswith("time "))
    assert all(f"{kind} " in time_row for kind in ("env", "policy", "update")) and "subprocesses" in time_row
    header = (run_dir / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"time/env_s", "time/policy_s", "time/update_s"} <= set(header)


def test_old_configs_with_a_plain_subproc_flag_still_resume() -> None:
    """Runs written before --no-subproc existed stored ``--subproc`` alone in config.json's argv."""
    assert ppo.build_parser().parse_args(["--subproc"]).subproc is True
    assert ppo.build_parser().parse_args(["--no-subproc"]).subproc is False
    assert ppo.build_parser().parse_args([]).subproc is None
