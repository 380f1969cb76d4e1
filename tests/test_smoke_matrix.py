"""Every advertised path, tried as a user would: each runner with each flag family its ``--help`` and the
README advertise, over one env of each family (MiniGrid/BabyAI, classic control, POPGym, a third-party
``module:EnvId``), at tiny budgets.

Each cell either works, and its outputs exist and parse, or is refused in one line with exit code 2 naming
what works instead; never a traceback. The cells that train are marked ``slow``.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from runner_cells import TINY_PPO, TINY_TLB, Answer, call, tiny_ppo_run

from agents import MemoryPPO
from agents.callbacks import list_checkpoints
from runners import demos, ppo
from runners.cli import run_main

THIRD_PARTY_MODULE = "tlb_smoke_envs"
THIRD_PARTY = f"{THIRD_PARTY_MODULE}:SmokeCue-v0"
ENVS = {
    "minigrid": "BabyAI-GoToLocal-v0",
    "classic": "Pendulum-v1",
    "popgym": "popgym-RepeatPreviousEasy-v0",
    "third-party": THIRD_PARTY,
}
FAMILIES = list(ENVS)

# A third-party package's env, registered when its module is imported (as ``module:EnvId`` asks): a cue at
# the first step, to be repeated at the last one.
THIRD_PARTY_SOURCE = '''
import gymnasium as gym
import numpy as np
from gymnasium import spaces


class SmokeCue(gym.Env):
    """The cue (0 or 1) is shown at the first step only; the reward is 1 for repeating it at step 4."""

    def __init__(self):
        self.observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cue, self.t = int(self.np_random.integers(2)), 0
        return np.array([1.0, self.cue], np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t == 4
        reward = float(done and int(action) == self.cue)
        return np.zeros(2, np.float32), reward, done, False, {}


gym.register("SmokeCue-v0", entry_point=SmokeCue)
'''


@pytest.fixture(scope="module", autouse=True)
def third_party_module(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Put the third-party module on the import path, here and for subprocesses (SubprocVecEnv, Ray)."""
    folder = tmp_path_factory.mktemp("third-party")
    (folder / f"{THIRD_PARTY_MODULE}.py").write_text(textwrap.dedent(THIRD_PARTY_SOURCE))
    patch = pytest.MonkeyPatch()
    patch.syspath_prepend(str(folder))
    patch.setenv("PYTHONPATH", f"{folder}:{Path(__file__).resolve().parents[1]}")
    yield
    patch.undo()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One finished tiny tlb run per env family (the base of the resume, init-from and evaluate cells)."""
    root = tmp_path_factory.mktemp("trained")
    runs = {}
    for family, env in ENVS.items():
        runs[family] = root / family
        argv = ["--env", env, *TINY_PPO, *TINY_TLB, "--logdir", str(runs[family])]
        assert run_main(ppo.main, argv) == 0, family
    return runs


def assert_finished_run(run_dir: Path, frames: int) -> None:
    """A runners.ppo run's outputs exist and parse."""
    config = json.loads((run_dir / "config.json").read_text())
    assert config["argv"]
    final = json.loads((run_dir / "final_eval.json").read_text())
    assert final and all(0 <= side["episodes"] for side in final.values())
    assert json.loads((run_dir / "run_summary.json").read_text())["frames"] == frames
    assert MemoryPPO.load(run_dir / "model.zip").num_timesteps == frames
    assert (run_dir / "progress.csv").read_text().startswith(("rollout", "eval", "time", "train", "memory"))


def assert_refused(answer: Answer, *words: str) -> None:
    assert answer.refused_in_one_line(), f"{answer.code}: {answer.err}{answer.out[-1500:]}"
    assert all(word in answer.err for word in words), answer.err


# ---------------------------------------------------------------------- runners.ppo


PPO_FLAG_CELLS = {
    "plain": ["--device", "cpu"],
    "subproc": ["--subproc"],
    "normalize": ["--normalize"],
    "previous-action-reward": ["--previous-action-reward"],
    "deterministic": ["--deterministic"],
    "stochastic-eval": ["--stochastic-eval"],
}


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("cell", list(PPO_FLAG_CELLS))
def test_ppo_trains_with_each_flag_family(
    family: str, cell: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = tiny_ppo_run(tmp_path / "run", ENVS[family], capsys, *PPO_FLAG_CELLS[cell])
    if cell == "normalize" and family in ("minigrid", "popgym"):  # categorical observations
        assert_refused(answer, "--normalize", ENVS[family], "Box observations")
        assert not (tmp_path / "run").exists()
        return
    assert answer.code == 0, answer.err
    assert_finished_run(tmp_path / "run", 64)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    if cell == "deterministic":
        assert config["stochastic_eval"] is False
    if cell == "stochastic-eval":
        assert config["stochastic_eval"] is True


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_ppo_takes_a_hyperparameter_file(
    family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hyperparams = tmp_path / "zoo.yml"
    hyperparams.write_text(f"{ENVS[family]}:\n  n_steps: 32\n  gamma: 0.95\n")
    answer = tiny_ppo_run(tmp_path / "run", ENVS[family], capsys, "--hyperparams", str(hyperparams))
    assert answer.code == 0, answer.err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    # The file's n_steps is overridden by the command line's, its gamma applies.
    assert config["n_steps"] == 16 and config["gamma"] == 0.95
    assert_finished_run(tmp_path / "run", 64)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_ppo_init_from_a_trained_model(
    family: str, trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = tiny_ppo_run(
        tmp_path / "run", ENVS[family], capsys, "--init-from", str(trained[family] / "model.zip")
    )
    assert answer.code == 0, answer.err
    assert_finished_run(tmp_path / "run", 64)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_ppo_resumes_a_finished_run_to_more_steps(
    family: str, trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(trained[family], run_dir)
    # Without a larger --total-steps there is nothing to train: one line naming the steps done and the fix.
    assert_refused(call("ppo", ["--resume", str(run_dir)], capsys), "finished (64 steps)", "--total-steps")
    answer = call("ppo", ["--resume", str(run_dir), "--total-steps", "128", "--device", "cpu"], capsys)
    assert answer.code == 0, answer.err
    assert_finished_run(run_dir, 128)
    assert json.loads((run_dir / "config.json").read_text())["total_steps"] == 128


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_ppo_resumes_an_interrupted_run(
    family: str, trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run stopped after its first checkpoint: no model, no final evaluation, the last checkpoint lost."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained[family], run_dir)
    for name in ("model.zip", "final_eval.json", "run_summary.json"):
        (run_dir / name).unlink()
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    for _, path in checkpoints[:-1]:  # keep only the oldest
        path.unlink()
    answer = call("ppo", ["--resume", str(run_dir)], capsys)
    assert answer.code == 0, answer.err
    assert f"at step {checkpoints[-1][0]:,}" in answer.out
    assert_finished_run(run_dir, 64)


@pytest.mark.slow
def test_ppo_trains_on_a_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answer = call(
        "ppo", ["--suite", "memory-length", *TINY_PPO, *TINY_TLB, "--logdir", str(tmp_path)], capsys
    )
    assert answer.code == 0, answer.err
    assert set(json.loads((tmp_path / "final_eval.json").read_text())) == {
        "train", "heldout/MemoryS9", "heldout/MemoryS11", "heldout/MemoryS13",
    }  # fmt: skip


def test_ppo_refuses_what_cannot_work_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = ["--logdir", str(tmp_path / "run"), *TINY_PPO]
    assert_refused(call("ppo", ["--env", "Pendulum-v1", "--suite", "no-such", *run], capsys), "no-such")
    assert_refused(call("ppo", ["--env", "Pendulum-v1", "--device", "cuda:99", *run], capsys), "--device")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------- runners.evaluate


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_evaluate_with_json_and_each_protocol(
    family: str, trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(trained[family] / "model.zip")
    for protocol in ("--deterministic", "--stochastic"):
        out = tmp_path / f"eval{protocol}.json"
        argv = [
            model,
            "--env",
            ENVS[family],
            "--episodes",
            "2",
            protocol,
            "--device",
            "cpu",
            "--json",
            str(out),
        ]
        answer = call("evaluate", argv, capsys)
        assert answer.code == 0, answer.err
        rows = json.loads(out.read_text())
        assert rows[0]["episodes"] == 2
        assert ("greedy" if protocol == "--deterministic" else "sampled") in answer.out


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_evaluate_gif_and_attention(
    family: str, trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIFs for envs that draw RGB frames, a one-line refusal naming the env for those that cannot; the
    attention plot (a tlb model) for every env."""
    model = str(trained[family] / "model.zip")
    base = [model, "--env", ENVS[family], "--episodes", "1", "--gif-episodes", "1"]
    gif = tmp_path / "play.gif"
    answer = call("evaluate", [*base, "--gif", str(gif)], capsys)
    if family in ("minigrid", "classic"):
        assert answer.code == 0, answer.err
        assert gif.read_bytes()[:3] == b"GIF"
    else:
        assert_refused(answer, ENVS[family], "cannot draw", "--attention")
        assert not gif.exists()
    png = tmp_path / "reads.png"
    answer = call("evaluate", [*base, "--attention", str(png)], capsys)
    assert answer.code == 0, answer.err
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_evaluate_on_a_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert (
        call("ppo", ["--suite", "memory-length", *TINY_PPO, *TINY_TLB, "--logdir", str(run)], capsys).code
        == 0
    )
    out = tmp_path / "suite.json"
    argv = [str(run / "model.zip"), "--suite", "memory-length", "--episodes", "1", "--json", str(out)]
    answer = call("evaluate", argv, capsys)
    assert answer.code == 0, answer.err
    assert len(json.loads(out.read_text())) == 4  # the training side and three held-out sides


def test_evaluate_attention_of_a_memory_without_latents_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    argv = ["--env", "Pendulum-v1", *TINY_PPO, "--memory", "gru", "--hidden-size", "8", "--logdir", str(run)]
    assert call("ppo", argv, capsys).code == 0
    argv = [str(run / "model.zip"), "--env", "Pendulum-v1", "--attention", str(tmp_path / "a.png")]
    answer = call("evaluate", argv, capsys)
    assert_refused(answer, "--attention", "gru")


@pytest.mark.slow
def test_evaluate_with_envs_in_subprocesses(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(trained["minigrid"] / "model.zip")
    argv = [model, "--env", ENVS["minigrid"], "--episodes", "2", "--n-envs", "2", "--subproc"]
    answer = call("evaluate", [*argv, "--json", str(tmp_path / "e.json")], capsys)
    assert answer.code == 0, answer.err
    assert json.loads((tmp_path / "e.json").read_text())[0]["episodes"] == 2


# ---------------------------------------------------------------------- runners.demos and runners.bc


@pytest.fixture(scope="module")
def demos_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demos") / "gotolocal.npz"
    argv = ["--env", "BabyAI-GoToLocal-v0", "--episodes", "6", "--out", str(path), "--no-progress"]
    assert run_main(demos.main, argv) == 0
    return path


@pytest.mark.parametrize("family", ["classic", "popgym", "third-party"])
def test_demos_of_an_env_without_the_bot_are_refused(
    family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demos.npz"
    answer = call(
        "demos", ["--env", ENVS[family], "--episodes", "1", "--out", str(out), "--no-progress"], capsys
    )
    assert_refused(answer, ENVS[family], "BabyAI")
    assert not out.exists()


BC_OPTIONS = {
    "greedy": ["--deterministic"],
    "imitation-recipe": ["--stochastic-eval", "--lr-schedule", "cosine", "--keep-best", "--ent-coef", "0.01",
                         "--weight-decay", "0.01", "--relabel", "colors+types"],
    "ema": ["--ema-decay", "0.9"],
    "suite": ["--suite", "room-to-maze"],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("options", list(BC_OPTIONS))
def test_bc_trains_and_its_model_evaluates(
    options: str, demos_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    protocol = BC_OPTIONS[options]
    run = tmp_path / "bc"
    argv = ["--demos", str(demos_file), "--epochs", "2", "--eval-episodes", "1", "--threads", "1",
            "--features-dim", "16", *TINY_TLB, "--logdir", str(run), "--no-progress", "--device", "cpu",
            *protocol]  # fmt: skip
    answer = call("bc", argv, capsys)
    assert answer.code == 0, answer.err
    assert json.loads((run / "final_eval.json").read_text())
    answer = call(
        "evaluate", [str(run / "model.zip"), "--env", "BabyAI-GoToLocal-v0", "--episodes", "1"], capsys
    )
    assert answer.code == 0, answer.err


@pytest.mark.parametrize("family", ["classic", "popgym"])
def test_bc_on_another_env_than_the_demos_is_refused(
    family: str, demos_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--demos", str(demos_file), "--env", ENVS[family], "--logdir", str(tmp_path / "bc")]
    assert_refused(call("bc", argv, capsys), ENVS[family])
    assert not (tmp_path / "bc").exists()


# ---------------------------------------------------------------------- runners.study and runners.report


@pytest.mark.slow
def test_a_study_over_every_env_family_and_its_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "study"
    argv = [word for family in ("classic", "popgym", "third-party") for word in ("--env", ENVS[family])]
    argv += ["--memories", "none", "--seeds", "0", "--out", str(out), "--total-steps", "64",
             "--n-envs", "2", "--n-steps", "32", "--batch-size", "64", "--eval-episodes", "1",
             "--cpus-per-trial", "1"]  # fmt: skip
    answer = call("study", argv, capsys)
    assert answer.code == 0, answer.err + answer.out
    rows = (out / "trials.csv").read_text().splitlines()
    assert len(rows) == 4 and all("finished" in row or "TERMINATED" in row or "ok" in row for row in rows[1:])
    assert "IQM" in (out / "report.md").read_text()
    report_out = tmp_path / "again"
    answer = call("report", [str(out), "--out", str(report_out), "--reps", "50"], capsys)
    assert answer.code == 0, answer.err
    assert (report_out / "report.md").read_text().startswith("#")


def test_study_list_prints_the_benchmarks_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    answer = call("study", ["--list"], capsys)
    assert answer.code == 0 and "memory" in answer.out


def test_report_of_a_directory_without_runs_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(call("report", [str(tmp_path)], capsys))


def test_the_third_party_env_is_what_the_cells_train_on() -> None:
    """The matrix's fourth family really is a ``module:EnvId`` env, made through the package's factory."""
    from envs import make_env

    env = make_env(THIRD_PARTY, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2,) and obs[0] == 1.0
    assert THIRD_PARTY_MODULE in sys.modules
    assert np.isfinite(obs).all() and torch.is_tensor(torch.as_tensor(obs))
