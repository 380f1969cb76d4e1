"""Callbacks that keep long runs safe and measured: evaluation on held-out sides, atomic checkpoints at
update boundaries, graceful interruption, and a stop on non-finite losses.

Checkpoints are taken at ``on_rollout_start``, i.e. after an update and before the next rollout: a run
resumed from there performs exactly the same sequence of rollouts and updates as one never stopped.
"""

from __future__ import annotations

import copy
import os
import pickle
import random
import re
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import cloudpickle
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from agents.atomic import atomic_write
from agents.evaluation import EvaluationResult, evaluate_model
from agents.ppo import TrainingDiverged
from agents.reporting import append_evaluations, flatten_results

__all__ = ["TrainingDiverged"]  # re-exported: runners catch it with the other callback names

CHECKPOINT_PATTERN = re.compile(r"model_(\d+)_steps\.zip$")


# ---------------------------------------------------------------------- evaluation


class SuiteEvalCallback(BaseCallback):
    """Every ``eval_freq`` calls (never during training if 0: only ``evaluate()`` calls then), evaluate on
    each named env and log ``eval/<name>/{success_rate, mean_reward, mean_ep_length}``; each result is also
    appended to ``<run_dir>/eval/evaluations.jsonl`` (``agents.reporting.append_evaluations``)."""

    def __init__(
        self,
        eval_envs: dict[str, VecEnv],
        eval_freq: int,
        n_eval_episodes: int,
        deterministic: bool = True,
        run_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.eval_envs = eval_envs
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.deterministic = deterministic
        self.run_dir = run_dir
        self.last_results: dict[str, EvaluationResult] = {}

    def evaluate(self) -> dict[str, EvaluationResult]:
        training_stats = self.model.get_vec_normalize_env()
        for name, env in self.eval_envs.items():
            if training_stats is not None and isinstance(env, VecNormalize):
                env.obs_rms = copy.deepcopy(training_stats.obs_rms)  # observations scaled as in training
            result = evaluate_model(self.model, env, self.n_eval_episodes, self.deterministic)
            self.last_results[name] = result
        for key, value in flatten_results(self.last_results).items():
            self.logger.record(key, value)
        if self.run_dir is not None:
            append_evaluations(self.run_dir, self.num_timesteps, self.last_results)
        self.logger.dump(self.num_timesteps)
        return self.last_results

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            self.evaluate()
        return True


# ---------------------------------------------------------------------- checkpoints


def capture_rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(model: BaseAlgorithm, path: Path) -> None:
    """``model.save`` through ``agents.atomic.atomic_write``: a crash mid-write never leaves half a
    checkpoint."""
    atomic_write(path, model.save)


def save_checkpoint(model: BaseAlgorithm, directory: Path) -> Path:
    """Save everything a continuation needs: SB3's zip (policy, optimizer, timesteps, schedule position,
    last observations and memory state) with the RNG states and, for in-process envs, the envs
    themselves (their levels, step counters and RNGs); VecNormalize statistics beside it if used."""
    directory.mkdir(parents=True, exist_ok=True)
    env = model.get_env()
    model.resume_state = {  # type: ignore[attr-defined]  (saved by SB3 with the model's other data)
        "rng": capture_rng_state(),
        "envs": cloudpickle.dumps(env.envs) if isinstance(env, DummyVecEnv) else None,
    }
    path = directory / f"model_{model.num_timesteps}_steps.zip"
    try:
        atomic_save(model, path)
    finally:
        del model.resume_state  # type: ignore[attr-defined]
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        stats = directory / f"vecnormalize_{model.num_timesteps}_steps.pkl"
        atomic_write(stats, lambda tmp: vec_normalize.save(str(tmp)))
    return path


def restore_resume_state(model: BaseAlgorithm, data: dict[str, Any] | None) -> bool:
    """Put back the RNG states and in-process envs saved with a checkpoint. Returns whether the envs were
    restored (if not, the caller must reset them: the saved last observations belong to the old envs)."""
    if not data:
        return False
    restore_rng_state(data["rng"])
    env = model.get_env()
    if data.get("envs") is not None and isinstance(env, DummyVecEnv):
        envs = pickle.loads(data["envs"])
        if len(envs) == env.num_envs:
            env.envs = envs
            return True
    return False


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """Checkpoints in ``directory``, newest (most steps) first."""
    found = []
    for path in directory.glob("model_*_steps.zip") if directory.is_dir() else []:
        match = CHECKPOINT_PATTERN.search(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


class CheckpointCallback(BaseCallback):
    """Atomic checkpoints at update boundaries, every ``save_freq`` environment frames.

    Also the place where a requested interruption takes effect: the current rollout and update finish,
    a checkpoint is written, and training stops at the next step.
    """

    def __init__(self, save_freq: int, directory: Path) -> None:
        super().__init__()
        self.save_freq = save_freq
        self.directory = directory
        self.last_saved_at = -1
        self.last_path: Path | None = None
        self.interrupt_requested = False
        self.stopping = False

    def _on_training_start(self) -> None:
        self.last_saved_at = self.num_timesteps

    def save(self) -> Path:
        self.last_path = save_checkpoint(self.model, self.directory)
        self.last_saved_at = self.num_timesteps
        return self.last_path

    def _on_rollout_start(self) -> None:
        due = self.num_timesteps - self.last_saved_at >= self.save_freq
        if (due or self.interrupt_requested) and self.num_timesteps != self.last_saved_at:
            self.save()
        self.stopping = self.interrupt_requested

    def _on_training_end(self) -> None:
        # Interrupted during the last rollout or update: there is no next rollout start to save at.
        if self.interrupt_requested and not self.stopping and self.num_timesteps != self.last_saved_at:
            self.save()

    def _on_step(self) -> bool:
        return not self.stopping


class InterruptHandler:
    """SIGINT/SIGTERM ask the checkpoint callback to save and stop after the current update; a second
    signal exits at once."""

    def __init__(self, checkpoints: CheckpointCallback) -> None:
        self.checkpoints = checkpoints
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            os._exit(128 + signum)  # second signal: leave now, the last checkpoint stays valid
        self.received = signum
        self.checkpoints.interrupt_requested = True
        print(
            f"\n{signal.Signals(signum).name}: saving a checkpoint after the current update "
            "(send it again to quit at once)",
            flush=True,
        )

    def __enter__(self) -> InterruptHandler:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach only the main thread (a Ray Tune trial runs in another one)
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *args: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class NonFiniteGuard(BaseCallback):
    """After every update, stop if the loss or any parameter is NaN or infinite (before the checkpoint
    callback could save the broken model: list this callback first)."""

    def _on_training_end(self) -> None:
        self._on_rollout_start()  # the last update has no next rollout

    def _on_rollout_start(self) -> None:
        loss = self.logger.name_to_value.get("train/loss")
        bad_loss = loss is not None and not np.isfinite(loss)
        bad_params = [name for name, p in self.model.policy.named_parameters() if not torch.isfinite(p).all()]
        if bad_loss or bad_params:
            what = f"the loss is {loss}" if bad_loss else f"parameter {bad_params[0]} is not finite"
            raise TrainingDiverged(self.num_timesteps, what)

    def _on_step(self) -> bool:
        return True
