"""runners.study (Ray Tune) and runners.report (rliable): planning, bad input, whole tiny studies, failed
trials, resuming an interrupted study, the statistics and unreadable runs."""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from agents.reporting import RUN_COMPLETE
from agents.training_envs import training_envs
from envs.suites import HELDOUT_SEED_START, TRAIN_SEED_STRIDE, training_env_seed
from runners import ppo, report, study
from runners.cli import UsageError, run_main
from studies import execution, machine, statistics
from studies.plan import TrialSpec, parse_seeds
from studies.scores import TaskScores
from studies.settings_grid import LEVER_COLUMN, compared_pairs, grid_cell, memory_grids

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "MiniGrid-MemoryS7-v0"
# Every trial trains for two tiny updates and evaluates twice on 2 episodes.
TINY = [
    "--total-steps", "256", "--n-envs", "2", "--n-steps", "64", "--batch-size", "64",
    "--sequence-length", "16", "--n-epochs", "1", "--eval-freq", "128", "--eval-episodes", "2",
    "--features-dim", "16", "--d-model", "16", "--n-heads", "2", "--chunk-size", "4", "--n-latents", "2",
    "--hidden-size", "16",
]  # fmt: skip


def run_study(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m runners.study ARGV`` in a subprocess, as a user runs it (Ray starts and stops there)."""
    return subprocess.run(
        [sys.executable, "-m", "runners.study", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def read_trials(study_dir: Path) -> dict[str, dict[str, str]]:
    with open(study_dir / "trials.csv") as file:
        return {row["trial"]: row for row in csv.DictReader(file)}


# ---------------------------------------------------------------------- planning and bad input


def test_seeds_parse_as_ranges_and_lists() -> None:
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("3,0,7") == [0, 3, 7]
    assert parse_seeds("5") == [5]
    with pytest.raises(UsageError, match="empty range"):
        parse_seeds("4-2")


def test_memory_flags_apply_only_to_the_memories_that_take_them() -> None:
    plan = study.plan_study(
        ["--env", ENV_ID, "--memories", "tlb,lstm", "--seeds", "0-1", "--grid", "chunk_size=4,8", "lr=1e-3",
         "--d-model", "32", "--total-steps", "5000"]
    )  # fmt: skip
    names = [spec.name for spec in plan.specs]
    # tlb: 2 chunk sizes x 2 seeds; lstm takes neither chunk_size nor d_model: its grid points collapse.
    assert len(names) == len(set(names)) == 6
    lstm = [spec for spec in plan.specs if spec.memory == "lstm"]
    assert len(lstm) == 2 and all("--d-model" not in s.argv and "--chunk-size" not in s.argv for s in lstm)
    assert all(s.argv[s.argv.index("--lr") + 1] == "0.001" for s in plan.specs)
    tlb = [spec for spec in plan.specs if spec.memory == "tlb"]
    assert {spec.variant["chunk_size"] for spec in tlb} == {4, 8}
    assert all("--d-model" in s.argv and s.argv[s.argv.index("--total-steps") + 1] == "5000" for s in tlb)
    assert tlb[0].label == "tlb chunk_size=4 lr=0.001"


def test_benchmark_settings_come_first_and_study_flags_override_them() -> None:
    plan = study.plan_study(
        ["--benchmark", "memory", "--tasks", "MemoryS7", "--memories", "lstm", "--seeds", "0", "--lr", "3e-4"]
    )
    (spec,) = plan.specs
    assert spec.task == "MemoryS7" and spec.score and spec.score["threshold"] == 0.95
    assert spec.argv[spec.argv.index("--lr") + 1] == "0.0003"  # the study's flag wins
    assert spec.argv[spec.argv.index("--total-steps") + 1] == "300000"  # the benchmark's budget stays


@pytest.mark.parametrize("flag", ["--deterministic", "--no-stochastic-eval"])
def test_a_runner_flag_sharing_its_destination_with_another_reaches_every_trial(flag: str) -> None:
    plan = study.plan_study(["--env", ENV_ID, "--memories", "tlb,none", "--seeds", "0", flag])
    assert all("--no-stochastic-eval" in spec.argv for spec in plan.specs)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env", "MiniGrid-MemoryS7-v9"], "unknown env id"),
        (["--env", ENV_ID, "--memories", "tlb,lsmt"], "unknown memory 'lsmt'"),
        (["--env", ENV_ID, "--grid", "learning_rate=1e-3"], "unknown setting 'learning_rate'"),
        (["--env", ENV_ID, "--grid", "lr=fast"], "lr=fast"),
        (["--env", ENV_ID, "--seeds", "3-1"], "empty range"),
        (["--env", ENV_ID, "--seed", "3"], "use --seeds"),
        (["--env", ENV_ID, "--total-step", "3"], "unknown setting '--total-step'"),
        (["--suite", "memory-lenght"], "unknown suite"),
        (["--benchmark", "memroy"], "unknown benchmark"),
        (["--benchmark", "memory", "--tasks", "MemoryS8"], "has no task 'MemoryS8'"),
        ([], "exactly one of --env"),
    ],
)
def test_bad_study_input_is_one_line_before_anything_starts(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "study"
    assert run_main(study.main, [*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_without_the_study_extra_the_study_says_which_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    assert run_main(study.main, ["--env", ENV_ID]) == 2
    assert 'pip install -e ".[study]"' in capsys.readouterr().err


def test_run_seeds_give_disjoint_training_env_seeds(tmp_path: Path) -> None:
    """Seeds 0..4 with 16 envs each: no training env seed is shared (they were s..s+15 before)."""
    seeds = [set(range(training_env_seed(s), training_env_seed(s) + 16)) for s in range(5)]
    assert all(not a & b for i, a in enumerate(seeds) for b in seeds[i + 1 :])
    assert training_env_seed(999) + TRAIN_SEED_STRIDE <= HELDOUT_SEED_START
    with pytest.raises(ValueError, match="seed must be in 0..999"):
        training_env_seed(1000)
    args = ppo.build_parser().parse_args(["--env", ENV_ID, "--n-envs", "2", "--seed", "3"])
    env, _, _ = training_envs(args)
    env.reset()
    assert [e.unwrapped.np_random_seed for e in env.envs] == [
        3 * TRAIN_SEED_STRIDE,
        3 * TRAIN_SEED_STRIDE + 1,
    ]


# ---------------------------------------------------------------------- whole studies on Ray Tune


@pytest.mark.slow
def test_a_local_study_writes_trials_plots_and_report(tmp_path: Path) -> None:
    out = tmp_path / "study"
    result = run_study(
        ["--env", ENV_ID, "--memories", "tlb,lstm", "--seeds", "0-1", *TINY, "--out", str(out)]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "4 of 4 trials finished" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr and "INFO" not in result.stdout  # no Ray flood
    trials = read_trials(out)
    assert len(trials) == 4 and {row["status"] for row in trials.values()} == {"finished"}
    for row in trials.values():
        assert int(row["frames"]) == 256 and float(row["fps"]) > 0 and float(row["wall_s"]) > 0
        assert 0.0 <= float(row["final/heldout/success_rate"]) <= 1.0
        run_dir = Path(row["run_dir"])
        assert (run_dir / "model.zip").is_file() and (run_dir / "config.json").is_file()
        assert "--seed " + row["seed"] in json.loads((run_dir / "config.json").read_text())["command"]
    text = (out / "report.md").read_text()
    assert "python -m runners.study --env MiniGrid-MemoryS7-v0" in text and "Machine:" in text
    gflops = json.loads((out / "study.json").read_text())["gflops_1_thread"]
    assert gflops > 0 and f"one torch thread: {gflops:.0f} GFLOP/s" in text
    assert "| tlb | 2 |" in text and "| lstm | 2 |" in text and "P(tlb > lstm)" in text
    plots = sorted(path.name for path in (out / "plots").glob("*.png"))
    for kind in ("curves", "intervals", "improvement", "profile"):
        assert f"{kind}_{ENV_ID}.png" in plots
        assert f"plots/{kind}_{ENV_ID}.png" in text


@pytest.mark.slow
def test_a_relative_out_stays_relative_in_the_report_and_trials_csv(tmp_path: Path) -> None:
    """The study's files name ``--out`` as the user typed it: a reader's regenerate command and the run
    directories in trials.csv hold no absolute path of the machine the study ran on (Ray gets one)."""
    argv = ["--env", ENV_ID, "--memories", "none", "--seeds", "0", *TINY, "--out", "study"]
    result = subprocess.run(
        [sys.executable, "-m", "runners.study", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "study"
    text = (out / "report.md").read_text()
    assert "--hidden-size 16 --out study`" in text and "by `python -m runners.report study`;" in text
    assert str(tmp_path) not in text + (out / "trials.csv").read_text()
    (row,) = read_trials(out).values()
    assert row["run_dir"] == "study/trials/MiniGrid-MemoryS7-v0-none-s0"
    assert (tmp_path / row["run_dir"] / "model.zip").is_file()
    assert "report: study/report.md" in result.stdout


def test_the_speed_yardstick_counts_matmul_flops_and_restores_the_thread_count() -> None:
    import torch

    threads = torch.get_num_threads()
    gflops = machine.single_thread_gflops(seconds=0.05, size=64)
    assert torch.get_num_threads() == threads
    # A CPU thread does between 0.1 and 10,000 GFLOP/s: catches FLOP/s reported as GFLOP/s, or a zero count.
    assert 0.1 < gflops < 10_000


@pytest.mark.slow
def test_a_failed_trial_is_recorded_and_the_others_complete(tmp_path: Path) -> None:
    out = tmp_path / "study"
    # tlb with 3 heads cannot split d_model 16; lstm takes no n_heads and runs.
    heads = TINY.index("--n-heads")
    tiny = TINY[:heads] + TINY[heads + 2 :]
    result = run_study(
        [
            "--env",
            ENV_ID,
            "--memories",
            "tlb,lstm",
            "--seeds",
            "0",
            "--grid",
            "n_heads=3",
            *tiny,
            "--out",
            str(out),
        ]
    )
    assert result.returncode == 1
    trials = read_trials(out)
    failed = trials["MiniGrid-MemoryS7-v0-tlb-n_heads=3-s0"]
    assert failed["status"] == "failed" and "not divisible by n_heads=3" in failed["error"]
    assert "\n" not in failed["error"]
    assert trials["MiniGrid-MemoryS7-v0-lstm-s0"]["status"] == "finished"
    assert "1 trial(s) failed" in result.stderr and "tlb-n_heads=3-s0: d_model=16" in result.stderr
    assert "| lstm | 1 |" in (out / "report.md").read_text()


@pytest.mark.slow
def test_resume_after_an_interruption_reruns_no_finished_trial(tmp_path: Path) -> None:
    out = tmp_path / "study"
    argv = ["--env", ENV_ID, "--memories", "lstm,none", "--seeds", "0", "--max-concurrent", "1", *TINY]
    argv += ["--total-steps", "1024", "--checkpoint-freq", "128", "--out", str(out)]
    process = subprocess.Popen(
        [sys.executable, "-m", "runners.study", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    first = out / "trials" / "MiniGrid-MemoryS7-v0-lstm-s0"
    second = out / "trials" / "MiniGrid-MemoryS7-v0-none-s0"
    deadline = time.time() + 240
    while time.time() < deadline and not list(second.glob("checkpoints/model_*_steps.zip")):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "--resume" in stderr
    trials = read_trials(out)
    assert trials["MiniGrid-MemoryS7-v0-lstm-s0"]["status"] == "finished"
    assert trials["MiniGrid-MemoryS7-v0-none-s0"]["status"] == "unfinished"
    finished_model = (first / "model.zip").stat().st_mtime_ns

    result = run_study(["--resume", str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    assert {row["status"] for row in read_trials(out).values()} == {"finished"}
    assert (first / "model.zip").stat().st_mtime_ns == finished_model  # not rerun
    assert (first / "stdout.log").read_text().count("$ python -m runners.ppo") == 1
    # The unfinished PPO trial continued from its checkpoint.
    log = (second / "stdout.log").read_text()
    assert "$ python -m runners.ppo --resume" in log and "resuming" in log


def test_trial_outcomes_of_an_interrupted_grid() -> None:
    """What an interrupted study's Ray results hold: a finished trial, a running one, a failed one, one Ray
    had queued but not started (a result without a config) and one not yet created at all."""
    specs = [
        TrialSpec(name=f"t{i}", algo="ppo", task="T", memory="lstm", seed=i, variant={}, argv=[])
        for i in range(5)
    ]

    def result(spec: TrialSpec, metrics: dict | None, error: str | None = None) -> SimpleNamespace:
        config = {"spec": dataclasses.asdict(spec), "threads": 1}
        return SimpleNamespace(config=config, metrics=metrics, error=error, path=f"/ray/{spec.name}")

    results = [
        result(specs[0], {RUN_COMPLETE: True}),
        result(specs[1], {"frames": 64}),
        result(specs[2], {}, error="Traceback ...\nValueError: bad\n"),
        SimpleNamespace(config=None, metrics=None, error=None, path="/ray/t3"),
    ]
    outcomes = execution.trial_outcomes(results, specs)
    assert {name: status for name, (_, status, _) in outcomes.items()} == {
        "t0": "finished", "t1": "unfinished", "t2": "failed", "t3": "pending", "t4": "pending",
    }  # fmt: skip
    assert outcomes["t2"][2] == "ValueError: bad"
    assert outcomes["t4"][0] == specs[4]


# ---------------------------------------------------------------------- the report's statistics


def test_iqm_and_intervals_equal_rliables_on_a_fixed_array() -> None:
    from rliable import library as rly
    from rliable import metrics

    scores = {"a": np.array([[0.1, 0.5], [0.2, 0.9], [0.4, 0.7], [0.8, 0.6]]), "b": np.full((4, 2), 0.5)}
    points, intervals = statistics.interval_estimates(scores, seed=3)
    np.random.seed(3)  # rliable's bootstrap draws from numpy's global RNG as well as from random_state
    expected_points, expected_intervals = rly.get_interval_estimates(
        scores,
        lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)]),
        reps=statistics.BOOTSTRAP_REPS,
        random_state=np.random.RandomState(3),
    )
    for label in scores:
        np.testing.assert_allclose(points[label], expected_points[label])
        np.testing.assert_allclose(intervals[label], expected_intervals[label])
    # IQM of a's 8 scores: the mean of the middle four (0.4, 0.5, 0.6, 0.7).
    assert points["a"][0] == pytest.approx(0.55) and points["a"][1] == pytest.approx(0.525)
    assert intervals["b"][0][0] == intervals["b"][1][0] == 0.5


def test_probability_of_improvement_equals_rliables_with_ties_and_several_tasks() -> None:
    from rliable import metrics

    rng = np.random.default_rng(0)
    for n, m, tasks in [(3, 3, 1), (5, 4, 3), (2, 6, 2)]:
        x = rng.integers(0, 4, size=(n, tasks)).astype(float)  # few values: many ties
        y = rng.integers(0, 4, size=(m, tasks)).astype(float)
        assert statistics.probability_of_improvement(x, y) == pytest.approx(
            metrics.probability_of_improvement(x, y)
        )
        assert statistics.probability_of_improvement(x, y) + statistics.probability_of_improvement(
            y, x
        ) == pytest.approx(1)


def write_run(run_dir: Path, memory: str, seed: int, success: float) -> None:
    (run_dir / "eval").mkdir(parents=True)
    config = {
        "env": ENV_ID,
        "memory": memory,
        "seed": seed,
        "command": f"python -m runners.ppo --seed {seed}",
    }
    (run_dir / "config.json").write_text(json.dumps(config))
    result = {"episodes": 10, "successes": int(10 * success), "success_rate": success, "success_ci95": [0, 1],
              "mean_return": success, "mean_length": 5.0}  # fmt: skip
    (run_dir / "final_eval.json").write_text(json.dumps({"heldout": result}))
    rows = [
        {"timesteps": t, "env": "heldout", **result, "success_rate": success * t / 200} for t in (100, 200)
    ]
    (run_dir / "eval" / "evaluations.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_unreadable_runs_are_named_in_a_warning_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for seed, success in enumerate([0.5, 0.7, 0.9]):
        write_run(tmp_path / f"tlb{seed}", "tlb", seed, success)
        write_run(tmp_path / f"lstm{seed}", "lstm", seed, success / 2)
    (tmp_path / "tlb2" / "eval" / "evaluations.jsonl").unlink()  # missing log
    (tmp_path / "lstm1" / "final_eval.json").write_text("{not json")  # unreadable
    assert run_main(report.main, [str(tmp_path), "--reps", "200"]) == 0
    err = capsys.readouterr().err
    assert f"skipping {tmp_path / 'tlb2'}: eval/evaluations.jsonl is missing" in err
    assert f"skipping {tmp_path / 'lstm1'}: unreadable log" in err
    text = (tmp_path / "report.md").read_text()
    assert "| tlb | 2 |" in text and "| lstm | 2 |" in text and "0.5, 0.7 |" in text
    assert (tmp_path / "plots" / f"curves_{ENV_ID}.png").is_file()


def write_benchmark_run(study_dir: Path, task: str, memory: str, seed: int, success: float) -> None:
    """A run of a benchmark task as a study writes it: ``write_run`` plus the trial.json that names its task
    and the normalisation the aggregate uses."""
    run_dir = study_dir / "trials" / f"{task}-{memory}-s{seed}"
    write_run(run_dir, memory, seed, success)
    score = {"metric": "success_rate", "min": 0.0, "max": 1.0, "threshold": None}
    (run_dir / "trial.json").write_text(json.dumps({"task": task, "label": memory, "score": score}))


def aggregate_section(text: str) -> str:
    return text.split("## Aggregate over tasks")[1].split("\n## ")[0]


def test_a_memory_missing_from_a_task_is_named_when_the_aggregate_leaves_it_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for seed in range(2):
        write_benchmark_run(tmp_path, "TaskA", "tlb", seed, 0.5 + 0.1 * seed)
        write_benchmark_run(tmp_path, "TaskA", "lstm", seed, 0.4)
        write_benchmark_run(tmp_path, "TaskB", "tlb", seed, 0.9)  # no lstm on TaskB
    assert run_main(report.main, [str(tmp_path), "--reps", "200"]) == 0
    warning = "lstm has no runs on TaskB (it has on TaskA): it is left out of the aggregate over tasks"
    assert f"warning: {warning}" in capsys.readouterr().err
    text = (tmp_path / "report.md").read_text()
    aggregate = aggregate_section(text)
    assert f"Warning: {warning}" in aggregate
    assert "| tlb | 2 |" in aggregate and "| lstm |" not in aggregate
    assert "| lstm | 2 |" in text.split("### TaskA")[1]  # kept in its task's own table


def test_tasks_cut_to_the_smallest_run_count_are_named_with_the_seeds_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for seed in range(3):
        write_benchmark_run(tmp_path, "TaskA", "tlb", seed, 0.5)
        write_benchmark_run(tmp_path, "TaskA", "lstm", seed, 0.4)
        write_benchmark_run(tmp_path, "TaskB", "lstm", seed, 0.3)
    for seed in range(2):
        write_benchmark_run(tmp_path, "TaskB", "tlb", seed, 0.9)
    assert run_main(report.main, [str(tmp_path), "--reps", "200"]) == 0
    err = capsys.readouterr().err
    warning = (
        "tlb has 2 run(s) on TaskB and more on other tasks: the aggregate over tasks takes its first 2 "
        "run(s) by seed from every task and leaves out TaskA seed(s) 2"
    )
    assert f"warning: {warning}" in err and "lstm has" not in err  # lstm: 3 runs on both, nothing cut
    aggregate = aggregate_section((tmp_path / "report.md").read_text())
    assert f"Warning: {warning}." in aggregate
    assert "| tlb | 2 |" in aggregate and "| lstm | 3 |" in aggregate


def test_search_space_and_sampled_trials() -> None:
    """``--search optuna``: the grid syntax names distributions; a sampled trial adds its flags."""
    plan = study.plan_study(
        ["--env", ENV_ID, "--memories", "lstm", "--seeds", "0", "--search", "optuna",
         "--grid", "lr=log:1e-4:1e-2", "hidden_size=16,32", "n_epochs=int:2:8"]
    )  # fmt: skip
    space = plan.search_space
    assert set(space) == {"lr", "hidden_size", "n_epochs"}
    assert space["lr"].lower == 1e-4 and space["lr"].upper == 1e-2
    assert space["hidden_size"].categories == [16, 32]
    config = {"spec": dataclasses.asdict(plan.specs[0]), "study_dir": "x", "threads": 1, "search": True}
    config["runner"] = "runners.ppo"  # the runner module the study names in every trial's config
    spec = execution.search_spec({**config, "lr": 3e-4, "hidden_size": 32}, "abc123")
    assert spec.name == "MiniGrid-MemoryS7-v0-lstm-s0-abc123"
    assert spec.argv[-4:] == ["--lr", "0.0003", "--hidden-size", "32"]
    assert spec.label == "lstm lr=0.0003 hidden_size=32"
    with pytest.raises(UsageError, match="one memory on one task"):
        study.plan_study(
            ["--env", ENV_ID, "--memories", "tlb,lstm", "--search", "optuna", "--grid", "lr=1e-3,1e-4"]
        )


def test_list_names_suites_and_benchmark_tasks_with_budgets(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(study.main, ["--list"]) == 0
    out = capsys.readouterr().out
    assert "memory-length:" in out and "memory:" in out
    assert "MemoryS7: MiniGrid-MemoryS7-v0, 300000 frames, score success_rate (greedy actions)" in out
    assert "normalised from [0.0, 1.0], threshold 0.95" in out


def test_console_lines_name_success_only_where_the_env_has_a_signal() -> None:
    from studies import console as study_console

    assert study_console.latest_summary(
        {"eval/heldout/success_rate": float("nan"), "eval/heldout/mean_reward": -0.9}
    ) == ("heldout return -0.90")
    result = {"eval/train/success_rate": 0.5, "eval/train/mean_reward": 0.4, "frames": 10}
    assert study_console.latest_summary(result) == "train success 0.50, return 0.40"


def write_split_run(study_dir: Path, task: str, split: str, memory: str, seed: int, success: float) -> None:
    """``write_benchmark_run`` for a task of a benchmark split (``dev`` or ``test``)."""
    write_benchmark_run(study_dir, task, memory, seed, success)
    trial_file = study_dir / "trials" / f"{task}-{memory}-s{seed}" / "trial.json"
    trial = json.loads(trial_file.read_text())
    trial["score"]["split"] = split
    trial_file.write_text(json.dumps(trial))


def test_the_report_aggregates_each_split_on_its_own_test_split_first(tmp_path: Path) -> None:
    for seed in range(2):
        for memory, dev_score, test_score in (("tlb", 0.9, 0.2), ("gru", 0.5, 0.6)):
            write_split_run(tmp_path, "DevA", "dev", memory, seed, dev_score)
            write_split_run(tmp_path, "DevB", "dev", memory, seed, dev_score)
            write_split_run(tmp_path, "TestC", "test", memory, seed, test_score)
    assert run_main(report.main, [str(tmp_path), "--reps", "200"]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "## Aggregate over tasks" not in text
    test_part = text.split("## Aggregate over the test split")[1].split("\n## ")[0]
    dev_part = text.split("## Aggregate over the dev split")[1].split("\n## ")[0]
    assert text.index("over the test split") < text.index("over the dev split")  # the test split first
    assert "Tasks: TestC;" in test_part and "no default or setting" in test_part
    assert "Tasks: DevA, DevB;" in dev_part
    # Each split's numbers are its own tasks' only: tlb leads on the dev split and trails on the test split.
    assert "| tlb | 2 | 0.2 [0.2, 0.2] |" in test_part and "| gru | 2 | 0.6 [0.6, 0.6] |" in test_part
    assert "| tlb | 2 | 0.9 [0.9, 0.9] |" in dev_part
    assert "P(gru > tlb) = 1.00" in test_part and "P(tlb > gru) = 1.00" in dev_part
    for split in ("test", "dev"):
        assert (tmp_path / "plots" / f"aggregate_{split}_intervals.png").is_file()


def test_a_split_name_in_tasks_plans_every_task_of_that_split() -> None:
    from envs.benchmark import load_benchmark

    benchmark = load_benchmark("memory")
    for split in ("dev", "test"):
        names = [task.name for task in benchmark.tasks if task.split == split]
        assert names, f"the memory benchmark has no {split} split"
        plan = study.plan_study(
            ["--benchmark", "memory", "--tasks", split, "--memories", "none", "--seeds", "0"]
        )
        assert [spec.task for spec in plan.specs] == names
        assert all(spec.score and spec.score["split"] == split for spec in plan.specs)


def test_a_benchmark_task_with_an_unknown_split_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envs import benchmark

    (tmp_path / "odd.yaml").write_text("tasks:\n  A:\n    env: CartPole-v1\n    split: train\n")
    monkeypatch.setattr(benchmark, "BENCHMARK_DIR", tmp_path)
    with pytest.raises(ValueError, match="task A has split 'train': use one of"):
        benchmark.load_benchmark("odd")


def write_labelled_runs(study_dir: Path, cells: dict[str, tuple[float, ...]]) -> None:
    """A study folder of task ``TaskA`` with a run per label and seed (label -> per-seed success), each
    run's memory the label's first word."""
    for label, scores in cells.items():
        for seed, success in enumerate(scores):
            run_dir = study_dir / "trials" / f"{label.replace(' ', '_')}-s{seed}"
            write_run(run_dir, label.split(" ")[0], seed, success)
            score = {"metric": "success_rate", "min": 0.0, "max": 1.0, "threshold": 0.95}
            (run_dir / "trial.json").write_text(json.dumps({"task": "TaskA", "label": label, "score": score}))


def test_the_settings_grid_shows_every_cell_and_each_memorys_worst(tmp_path: Path) -> None:
    """A study over width x learning rate: one table per memory, its own width flag in the rows and the
    learning rate in the columns, each cell the seeds' mean and the seeds at the threshold, and the worst
    cell; a memory run at one setting only has no grid."""
    cells = {  # label -> per-seed success
        "tlb d_model=64 lr=0.001": (1.0, 1.0),
        "tlb d_model=64 lr=0.0003": (1.0, 0.9),
        "tlb d_model=128 lr=0.001": (0.2, 0.4),
        "tlb d_model=128 lr=0.0003": (1.0, 1.0),
        "gru hidden_size=64 lr=0.001": (0.5, 0.5),
        "gru hidden_size=64 lr=0.0003": (0.7, 0.9),
        "none": (0.1, 0.1),
    }
    write_labelled_runs(tmp_path, cells)
    assert run_main(report.main, [str(tmp_path), "--reps", "200"]) == 0
    text = (tmp_path / "report.md").read_text()
    section = text.split("## Settings grid: TaskA")[1].split("\n## ")[0]
    assert "| tlb: d_model \\ lr | 0.0003 | 0.001 | worst cell |" in section  # learning rates sorted by value
    assert "| 64 | 0.95 (1/2) | 1 (2/2) | 0.3 |" in section
    assert "| 128 | 1 (2/2) | 0.3 (0/2) | 0.3 |" in section  # widths sorted by value, not as text
    assert "| gru: hidden_size \\ lr | 0.0003 | 0.001 | worst cell |" in section
    assert "| 64 | 0.8 (0/2) | 0.5 (0/2) | 0.5 |" in section
    assert "| none" not in section
    assert (tmp_path / "plots" / "grid_TaskA.png").read_bytes()[:4] == b"\x89PNG"
    # The improvement line compares memories in the same cell, not every pair of the grid's 7 labels (42).
    improvement = text.split("### TaskA")[1].split("Probability of improvement [95% CI]: ")[1].split("\n")[0]
    assert "P(tlb d_model=64 lr=0.001 > gru hidden_size=64 lr=0.001)" in improvement
    assert "P(tlb d_model=64 lr=0.001 > tlb d_model=128 lr=0.001)" not in improvement
    assert "P(tlb d_model=128 lr=0.001 > gru hidden_size=64 lr=0.001)" not in improvement
    assert "P(none > tlb d_model=128 lr=0.0003)" in improvement
    assert improvement.count("P(") == 4 + 2 * 6  # two same-cell pairs both ways; none against all six


def test_one_flag_levers_reported_together_are_one_column_not_a_grid(tmp_path: Path) -> None:
    """Lever studies (tlb at its defaults, chunk_size=4,16 and input_shift=4 from separate one-axis studies)
    reported together: one row per flag=value, the defaults first, not a chunk_size x input_shift grid of
    cells never run."""
    cells = {
        "tlb": (0.5, 0.7),
        "tlb chunk_size=16": (1.0, 0.9),
        "tlb chunk_size=4": (0.2, 0.4),
        "tlb input_shift=4": (1.0, 1.0),
    }
    write_labelled_runs(tmp_path, cells)
    assert run_main(report.main, [str(tmp_path), "--reps", "200"]) == 0
    section = (tmp_path / "report.md").read_text().split("## Settings grid: TaskA")[1].split("\n## ")[0]
    table = [line for line in section.splitlines() if line.startswith("| ")]
    assert table == [
        "| tlb: setting | score | worst cell |",
        "| defaults | 0.6 (0/2) | 0.3 |",
        "| chunk_size=4 | 0.3 (0/2) | 0.3 |",  # values sorted by size, not as text
        "| chunk_size=16 | 0.95 (1/2) | 0.3 |",
        "| input_shift=4 | 1 (2/2) | 0.3 |",
    ]
    assert "not run" not in section


def test_levers_at_a_shared_setting_are_one_column_named_by_it() -> None:
    """Two lever studies at one width (``--grid d_model=128 chunk_size=16`` and ``--grid d_model=128
    input_shift=4``): the shared width names the column's memory, the levers are its rows."""
    runs = {
        "tlb d_model=128 chunk_size=16": {"d_model": "128", "chunk_size": "16"},
        "tlb d_model=128 input_shift=4": {"d_model": "128", "input_shift": "4"},
    }
    task = TaskScores("TaskA", "mean_reward", None, {label: [] for label in runs})
    (grid,) = memory_grids(task)
    assert grid.memory == "tlb d_model=128" and grid.rows == ["chunk_size=16", "input_shift=4"]
    assert grid.labels[("input_shift=4", LEVER_COLUMN)] == "tlb d_model=128 input_shift=4"


def test_compared_pairs_without_a_grid_are_every_ordered_pair() -> None:
    assert compared_pairs(["tlb", "gru", "none"]) == list(itertools.permutations(["tlb", "gru", "none"], 2))
    assert grid_cell({"lr": "0.001", "d_model": "64"}) == grid_cell({"hidden_size": "64", "lr": "0.001"})


def test_compared_pairs_compare_one_memorys_single_flag_levers() -> None:
    """Lever studies (one axis each, reported together) compare the memory's values with each other; a
    two-axis grid's cells of one memory are not compared (the grid's table does that)."""
    levers = ["tlb chunk_size=8", "tlb chunk_size=16", "tlb input_shift=4"]
    assert compared_pairs(levers) == list(itertools.permutations(levers, 2))
    grid = ["tlb d_model=64 lr=0.001", "tlb d_model=128 lr=0.001", "gru hidden_size=64 lr=0.001"]
    assert compared_pairs(grid) == [(grid[0], grid[2]), (grid[2], grid[0])]
    at_width = ["tlb d_model=128 chunk_size=16", "tlb d_model=128 input_shift=4"]
    assert compared_pairs(at_width) == list(itertools.permutations(at_width, 2))  # as the lever table shows
