"""Long runs survive: atomic checkpoints, exact resume, interruption, reproducibility, divergence."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback

from agents import MemoryPPO
from agents.callbacks import CheckpointCallback, NonFiniteGuard, TrainingDiverged, list_checkpoints
from envs import make_vec_env
from runners import ppo
from runners.cli import run_main

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--env", "BabyAI-GoToLocal-v0", "--n-envs", "2", "--n-steps", "32", "--batch-size", "64",
    "--sequence-length", "16", "--n-epochs", "1", "--eval-episodes", "2", "--eval-freq", "100000",
    "--features-dim", "16", "--no-progress", "--threads", "1",
    "--memory", "tlb", "--d-model", "16", "--n-heads", "2", "--chunk-size", "5", "--n-latents", "2",
]  # fmt: skip


def tiny_model(seed: int = 0) -> MemoryPPO:
    env = make_vec_env("BabyAI-GoToLocal-v0", n_envs=2, seed=seed)
    return MemoryPPO(
        "MultiInputPolicy",
        env,
        n_steps=32,
        batch_size=32,
        sequence_length=16,
        n_epochs=2,
        seed=seed,
        policy_kwargs=dict(
            memory="tlb",
            memory_kwargs=dict(d_model=16, n_heads=2, chunk_size=5, n_latents=2),
            features_extractor_kwargs=dict(features_dim=16, channels=8, mission_dim=16),
            net_arch=[16],
        ),
    )


def parameters(model: MemoryPPO) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


@pytest.mark.slow
def test_same_seed_same_parameters() -> None:
    # Built one after the other: torch's RNG is global, and MemoryPPO seeds it when a model is built.
    a = tiny_model()
    a.learn(192)
    b = tiny_model()
    b.learn(192)
    assert all(torch.equal(x, y) for x, y in zip(parameters(a), parameters(b)))
    c = tiny_model(seed=1)
    c.learn(192)
    assert not all(torch.equal(x, y) for x, y in zip(parameters(a), parameters(c)))


def final_parameters(run_dir: Path) -> list[torch.Tensor]:
    return parameters(MemoryPPO.load(run_dir / "model.zip"))


@pytest.mark.slow
def test_sigterm_saves_and_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    total = ["--total-steps", "3200", "--checkpoint-freq", "128"]
    straight = tmp_path / "straight"
    assert run_main(ppo.main, [*TINY, *total, "--logdir", str(straight)]) == 0

    interrupted = tmp_path / "interrupted"
    command = [sys.executable, "-m", "runners.ppo", *TINY, *total, "--logdir", str(interrupted)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not list_checkpoints(interrupted / "checkpoints") and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, output
    assert "--resume" in output
    steps_at_stop = list_checkpoints(interrupted / "checkpoints")[0][0]
    assert 0 < steps_at_stop < 3200
    assert not (interrupted / "model.zip").exists()

    assert run_main(ppo.main, ["--resume", str(interrupted)]) == 0
    resumed = MemoryPPO.load(interrupted / "model.zip")
    assert resumed.num_timesteps == 3200
    assert (interrupted / f"progress-from-{steps_at_stop}.csv").exists()  # the first CSV is kept
    assert (interrupted / "progress.csv").stat().st_size > 0
    assert all(torch.equal(x, y) for x, y in zip(final_parameters(straight), parameters(resumed)))


@pytest.mark.slow
def test_resume_extends_a_finished_run_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--resume RUN --total-steps N`` trains a finished run on to N, equal to a run trained to N at once,
    and records the new total so that a later resume continues to it."""
    straight = tmp_path / "straight"
    assert run_main(ppo.main, [*TINY, "--total-steps", "256", "--logdir", str(straight)]) == 0
    run_dir = tmp_path / "run"
    assert run_main(ppo.main, [*TINY, "--total-steps", "128", "--logdir", str(run_dir)]) == 0
    first_summary = json.loads((run_dir / "run_summary.json").read_text())
    assert first_summary["frames"] == 128

    assert run_main(ppo.main, ["--resume", str(run_dir), "--total-steps", "256"]) == 0
    extended = MemoryPPO.load(run_dir / "model.zip")
    assert extended.num_timesteps == 256
    assert all(torch.equal(x, y) for x, y in zip(final_parameters(straight), parameters(extended)))
    config = json.loads((run_dir / "config.json").read_text())
    assert config["total_steps"] == 256
    assert config["extensions"] == [
        {"from_step": 128, "total_steps": 256, "command": f"python -m runners.ppo --resume {run_dir} "
         "--total-steps 256"}
    ]  # fmt: skip
    assert "--total-steps 128" in config["command"]  # the original command is kept
    assert json.loads((run_dir / "run_summary.json").read_text())["frames"] == 256
    assert (run_dir / "progress-from-128.csv").exists() and (run_dir / "progress.csv").exists()
    # Both final evaluations stay in the run's evaluation log.
    rows = [json.loads(row) for row in (run_dir / "eval" / "evaluations.jsonl").read_text().splitlines()]
    assert {row["timesteps"] for row in rows} >= {128, 256}


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "that run is finished (128 steps); pass --total-steps N with N > 128"),
        (["--total-steps", "128"], "has already trained 128 steps; pass a larger --total-steps"),
        (["--total-steps", "64"], "has already trained 128 steps"),
        (["--lr", "0.1"], "--lr cannot change"),
    ],
)
def test_a_resume_with_nothing_to_train_is_a_one_line_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    run_dir = tmp_path / "run"
    assert run_main(ppo.main, [*TINY, "--total-steps", "128", "--logdir", str(run_dir)]) == 0
    before = {path: path.stat().st_mtime_ns for path in run_dir.rglob("*") if path.is_file()}
    capsys.readouterr()
    assert run_main(ppo.main, ["--resume", str(run_dir), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    # Nothing already written is touched.
    assert {path: path.stat().st_mtime_ns for path in run_dir.rglob("*") if path.is_file()} == before


@pytest.mark.slow
def test_truncated_checkpoint_is_refused_and_the_previous_one_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    assert (
        run_main(
            ppo.main, [*TINY, "--total-steps", "256", "--checkpoint-freq", "128", "--logdir", str(run_dir)]
        )
        == 0
    )
    (newest_steps, newest), (previous_steps, _) = list_checkpoints(run_dir / "checkpoints")[:2]
    newest.write_bytes(newest.read_bytes()[:1000])  # a write cut short
    config = (run_dir / "config.json").read_text()
    (run_dir / "config.json").write_text(config.replace('"256"', '"384"'))  # argv: ask for more steps
    capsys.readouterr()
    assert run_main(ppo.main, ["--resume", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert f"skipping unreadable checkpoint {newest}" in captured.err
    assert f"at step {previous_steps:,}" in captured.out
    assert MemoryPPO.load(run_dir / "model.zip").num_timesteps == 384
    assert newest_steps > previous_steps
    assert not list(run_dir.rglob("*.tmp*"))


def test_resume_without_a_run_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(ppo.main, ["--resume", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "no config.json" in err and len(err.strip().splitlines()) == 1


class PoisonAfterFirstRollout(BaseCallback):
    """Make the policy's output layer NaN, as an exploding update would."""

    def _on_rollout_end(self) -> None:
        if self.num_timesteps >= 192:  # after the checkpoint at 128
            with torch.no_grad():
                self.model.policy.action_net.weight.fill_(float("nan"))

    def _on_step(self) -> bool:
        return True


def test_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    model = tiny_model()
    checkpoints = CheckpointCallback(64, tmp_path)
    with pytest.raises(TrainingDiverged, match=r"training diverged at step \d+: .*lower --lr"):
        model.learn(640, callback=[PoisonAfterFirstRollout(), NonFiniteGuard(), checkpoints])
    saved = list_checkpoints(tmp_path)
    assert saved, "the checkpoint before the divergence is kept"
    good = MemoryPPO.load(saved[0][1])
    assert all(torch.isfinite(p).all() for p in good.policy.parameters())


def test_checkpoint_restores_envs_and_rng(tmp_path: Path) -> None:
    model = tiny_model()
    model.learn(64)
    from agents.callbacks import restore_resume_state, save_checkpoint

    path = save_checkpoint(model, tmp_path)
    expected_obs = model.get_env().step(np.zeros(2, dtype=np.int64))[0]["image"]
    expected_noise = torch.rand(3)
    loaded = MemoryPPO.load(
        path, env=make_vec_env("BabyAI-GoToLocal-v0", n_envs=2, seed=99), force_reset=False
    )
    assert restore_resume_state(loaded, loaded.resume_state)
    assert np.array_equal(loaded.get_env().step(np.zeros(2, dtype=np.int64))[0]["image"], expected_obs)
    assert torch.equal(torch.rand(3), expected_noise)
    assert os.listdir(tmp_path) == [path.name]


def test_interrupt_during_the_last_update_still_saves(tmp_path: Path) -> None:
    model = tiny_model()
    checkpoints = CheckpointCallback(10_000, tmp_path)

    class InterruptInLastRollout(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps > 128:
                checkpoints.interrupt_requested = True
            return True

    model.learn(192, callback=[InterruptInLastRollout(), checkpoints])
    assert [steps for steps, _ in list_checkpoints(tmp_path)] == [192]


# ---------------------------------------------------------------------- resuming on another device


def raise_like_a_cuda_tensor() -> None:
    raise RuntimeError(
        "Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is False"
    )


class CudaOnlyTensor:
    """Unpickles as a CUDA tensor does on a machine without CUDA: a RuntimeError (SB3 then drops the
    object with a warning). Stands in for a checkpoint written on a GPU, which this machine lacks."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (raise_like_a_cuda_tensor, ())


def stored_data(path: Path) -> dict[str, object]:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("data"))


def replace_stored_memory_state(path: Path, state: object) -> None:
    """Rewrite the checkpoint's pickled ``_last_memory_state`` as SB3 stores it (cloudpickle, base64)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    serialized = base64.b64encode(cloudpickle.dumps(state)).decode()
    data["_last_memory_state"] = {":type:": str(type(state)), ":serialized:": serialized}
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


class RolloutStartState(BaseCallback):
    """Records the memory state and episode starts each rollout begins with."""

    def __init__(self) -> None:
        super().__init__()
        self.states: list[dict[str, torch.Tensor]] = []
        self.starts: list[np.ndarray] = []

    def _on_rollout_start(self) -> None:
        self.states.append({key: value.clone() for key, value in self.model._last_memory_state.items()})
        self.starts.append(np.array(self.model._last_episode_starts, copy=True))

    def _on_step(self) -> bool:
        return True


def test_checkpoint_stores_the_memory_state_on_the_cpu_and_resume_continues_it(tmp_path: Path) -> None:
    from agents.callbacks import restore_resume_state, save_checkpoint

    model = tiny_model()
    model.learn(64)  # 32 steps per env: mid-episode and mid-chunk (chunk size 5)
    live = {key: value.clone() for key, value in model._last_memory_state.items()}
    assert not np.all(model._last_episode_starts) and bool((live["position"] > 0).any())
    path = save_checkpoint(model, tmp_path)

    # Stored device-independently: plain CPU tensors that unpickle anywhere, equal to the live state.
    field = stored_data(path)["_last_memory_state"]
    stored = cloudpickle.loads(base64.b64decode(field[":serialized:"]))
    assert stored.keys() == live.keys()
    assert all(value.device.type == "cpu" and torch.equal(value, live[key]) for key, value in stored.items())
    assert all(value.device == model.device for value in model._last_memory_state.values())  # live untouched

    loaded = MemoryPPO.load(
        path, env=make_vec_env("BabyAI-GoToLocal-v0", n_envs=2, seed=99), device="cpu", force_reset=False
    )
    assert restore_resume_state(loaded, loaded.resume_state) and not loaded.memory_state_lost()
    recorder = RolloutStartState()
    loaded.learn(64, callback=recorder, reset_num_timesteps=False)
    # The first rollout after the resume continues the stored state, on the model's device: no reset.
    first = recorder.states[0]
    assert all(value.device == loaded.device for value in first.values())
    assert all(torch.equal(first[key], value) for key, value in live.items())
    assert not np.all(recorder.starts[0])


def test_a_memory_state_that_does_not_load_resets_the_envs_instead_of_the_memory(tmp_path: Path) -> None:
    from agents.callbacks import restore_resume_state, save_checkpoint

    model = tiny_model()
    model.learn(64)
    path = save_checkpoint(model, tmp_path)
    replace_stored_memory_state(path, {"latents": CudaOnlyTensor()})
    with pytest.warns(UserWarning, match="Could not deserialize object _last_memory_state"):
        loaded = MemoryPPO.load(
            path, env=make_vec_env("BabyAI-GoToLocal-v0", n_envs=2, seed=99), device="cpu", force_reset=False
        )
    assert restore_resume_state(loaded, loaded.resume_state)
    assert loaded.memory_state_lost()  # mid-episode envs, no memory for them
    recorder = RolloutStartState()
    with pytest.warns(UserWarning, match="the envs are reset so that no episode continues"):
        loaded.learn(64, callback=recorder, reset_num_timesteps=False)
    assert np.all(recorder.starts[0])  # every env starts a new episode with a fresh memory


@pytest.mark.slow
def test_resume_says_when_the_checkpoint_memory_state_cannot_be_loaded_here(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    argv = [*TINY, "--total-steps", "128", "--checkpoint-freq", "64", "--logdir", str(run_dir)]
    assert run_main(ppo.main, argv) == 0
    newest = list_checkpoints(run_dir / "checkpoints")[0][1]
    replace_stored_memory_state(newest, {"latents": CudaOnlyTensor()})
    config = (run_dir / "config.json").read_text()
    (run_dir / "config.json").write_text(config.replace('"128"', '"192"'))  # argv: ask for more steps
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no multi-line SB3 / MemoryPPO warning besides the line
        assert run_main(ppo.main, ["--resume", str(run_dir), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(f"warning: {newest.name} holds no memory state loadable on cpu")
    assert "the envs restart their episodes" in line
    assert f"from {newest.name} at step 128 on cpu" in captured.out
    assert MemoryPPO.load(run_dir / "model.zip").num_timesteps == 192


def test_atomic_write_keeps_the_old_file_when_a_write_fails(tmp_path: Path) -> None:
    from agents.atomic import atomic_write, atomic_write_json

    path = atomic_write_json(tmp_path / "summary.json", {"frames": 1})

    def fail_halfway(tmp: Path) -> None:
        tmp.write_text('{"frames": ')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fail_halfway)
    assert json.loads(path.read_text()) == {"frames": 1} and os.listdir(tmp_path) == ["summary.json"]
    # SB3's save appends ".zip" to a name without it: the temporary name keeps the suffix.
    model = tiny_model()
    atomic_write(tmp_path / "model.zip", model.save)
    assert sorted(os.listdir(tmp_path)) == ["model.zip", "summary.json"]
    assert MemoryPPO.load(tmp_path / "model.zip").num_timesteps == 0
