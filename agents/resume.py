"""Resuming a training run: the run's own settings with the few a resume may change, its newest loadable
checkpoint with RNGs, envs and memory state restored, and the checks and records of a resume that trains a
run on to more steps (``runners.ppo --resume RUN_DIR [--total-steps N]``)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agents.atomic import write_json
from agents.callbacks import list_checkpoints, restore_resume_state
from agents.command_line import UsageError
from agents.ppo import MemoryPPO

# What a ``--resume`` command line may set besides the run directory: everything else is the run's own.
RESUME_OPTIONS = ("device", "total_steps", "threads", "no_progress")


def resume_arguments(parser: argparse.ArgumentParser, resume_dir: Path) -> argparse.Namespace:
    """The run's own resolved config, so a resumed run continues with exactly the same settings.

    :param parser: the runner's parser, which reads the words the run was started with back
    :raises UsageError: for a directory without a readable ``config.json``
    """
    config_path = resume_dir / "config.json"
    if not config_path.is_file():
        raise UsageError(
            f"--resume {resume_dir}: no config.json there; pass the directory of a runners.ppo run"
        )
    try:
        config = json.loads(config_path.read_text())
        args = parser.parse_args(config["argv"])
    except (json.JSONDecodeError, KeyError) as error:
        raise UsageError(f"--resume {resume_dir}: config.json is unreadable ({error})") from None
    args.logdir, args.overwrite, args.resume, args.init_from = str(resume_dir), True, str(resume_dir), None
    if isinstance(config.get("stochastic_eval"), bool):  # the run's own protocol, even if the default moved
        args.stochastic_eval = config["stochastic_eval"]
    return args


def resume_overrides(parser: argparse.ArgumentParser, argv: list[str]) -> dict[str, Any]:
    """The settings a ``--resume`` command line gives explicitly: ``--device`` (so that a run trained on a GPU
    can continue on a machine without one), ``--total-steps`` (to train a finished run longer), ``--threads``
    and ``--no-progress``.

    :param parser: a fresh parser of the runner: its defaults are replaced here, to tell given flags apart
    :raises UsageError: for any other flag, which would silently not apply to the resumed run
    """
    unset = object()
    parser.set_defaults(**{action.dest: unset for action in parser._actions if action.dest != "help"})
    given = {key: value for key, value in vars(parser.parse_args(argv)).items() if value is not unset}
    given.pop("resume", None)
    others = sorted(set(given) - set(RESUME_OPTIONS))
    if others:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in others)
        allowed = ", ".join(f"--{name.replace('_', '-')}" for name in RESUME_OPTIONS)
        raise UsageError(
            f"--resume continues a run with its own settings, so {flags} cannot change; with --resume only "
            f"{allowed} apply (start a new run, or --init-from its model, to change the rest)"
        )
    return given


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
