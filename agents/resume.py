"""Resuming a training run: its newest loadable checkpoint with RNGs, envs and memory state restored, and the
checks and records of a resume that trains a run on to more steps (``runners.ppo --resume RUN_DIR
[--total-steps N]``)."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agents.atomic import write_json
from agents.callbacks import list_checkpoints, restore_resume_state
from agents.command_line import UsageError
from agents.ppo import MemoryPPO


def resume_total_steps(resume_dir: Path, steps_done: int, total_steps: int, extended: bool) -> None:
    """Refuse a resume that has nothing to train: a ``--total-steps`` at or below the steps done, or a
    finished run (its ``run_summary.json`` written) without a larger ``--total-steps``.

    :raises UsageError: naming the steps done and the fix
    """
    if extended and total_steps <= steps_done:
        raise UsageError(
            f"--total-steps {total_steps}: {resume_dir} has already trained {steps_done:,} steps; "
            f"pass a larger --total-steps to continue it"
        )
    if not extended and (resume_dir / "run_summary.json").is_file() and total_steps <= steps_done:
        raise UsageError(
            f"--resume {resume_dir}: that run is finished ({steps_done:,} steps); pass --total-steps N "
            f"with N > {steps_done} to train it longer"
        )


def record_extension(resume_dir: Path, steps_done: int, total_steps: int, command: str) -> None:
    """Write the new ``--total-steps`` into the run's ``config.json`` (so that a later ``--resume`` continues
    to it), keeping the original command and a list of the extensions (each with ``command``, as typed)."""
    config_path = resume_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["argv"] = [*config["argv"], "--total-steps", str(total_steps)]
    config["total_steps"] = total_steps
    extension = {"from_step": steps_done, "total_steps": total_steps, "command": command}
    config["extensions"] = [*config.get("extensions", []), extension]
    write_json(config_path, config)


def load_newest_checkpoint(directory: Path, env: VecEnv, device: str) -> tuple[MemoryPPO, Path]:
    """The newest checkpoint that loads; broken ones (a truncated write, a corrupted file) are skipped."""
    problems = []
    for _, path in list_checkpoints(directory):
        try:
            with warnings.catch_warnings():
                # A memory state that does not load here is reported by resume_from_checkpoint, in one line.
                warnings.filterwarnings("ignore", message="Could not deserialize object _last_memory_state")
                # force_reset=False keeps the saved last observations, which match the restored envs.
                return MemoryPPO.load(path, env=env, device=device, force_reset=False), path
        except Exception as error:  # noqa: BLE001 - any failure to load means "try the previous one"
            problems.append(f"{path.name}: {type(error).__name__}")
            print(f"warning: skipping unreadable checkpoint {path} ({type(error).__name__})", file=sys.stderr)
    raise UsageError(f"no loadable checkpoint in {directory} ({'; '.join(problems) or 'none found'})")


def resume_from_checkpoint(resume_dir: Path, env: VecEnv, device: str) -> tuple[MemoryPPO, Path]:
    """The run's newest loadable checkpoint on ``device`` with its RNGs, envs and memory state restored, and
    that checkpoint's path; the envs are reset instead where their episodes cannot continue exactly (envs not
    restored, or a memory state that did not load), and the second case is said on stderr."""
    model, checkpoint = load_newest_checkpoint(resume_dir / "checkpoints", env, device)
    stats = checkpoint.with_name(checkpoint.name.replace("model_", "vecnormalize_").replace(".zip", ".pkl"))
    if isinstance(env, VecNormalize) and stats.is_file():
        saved = VecNormalize.load(str(stats), env.venv)
        env.obs_rms, env.ret_rms = saved.obs_rms, saved.ret_rms
    if not restore_resume_state(model, getattr(model, "resume_state", None)):
        model._last_obs = None  # the saved observations belong to envs we could not restore: reset
    elif model.memory_state_lost():
        print(
            f"warning: {checkpoint.name} holds no memory state loadable on {model.device} (written on "
            "another device by an older version?): the envs restart their episodes, not continuing them",
            file=sys.stderr,
        )
        model._last_obs = None
    return model, checkpoint
