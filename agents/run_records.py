"""A training run's bookkeeping, written one way for every runner (``runners.ppo``, ``runners.bc``).

Beside the model, a run directory holds:

* ``config.json``: the parsed command line (``vars(args)``), the words it was parsed from (``argv``), the run
  directory, the memory's arguments, the torch threads, the evaluation envs with their seeds, the policy
  class and the command as typed; a runner adds its own facts (BC: the demos' size and split);
* ``final_eval.json``: the final evaluation, one ``EvaluationResult`` per evaluation env;
* ``run_summary.json``: frames, seconds and frames per second, and what a runner adds (BC: the epochs).

Once everything is written the run's reporter (``runners.study`` passes Ray Tune's ``tune.report``) gets its
last call, marked ``RUN_COMPLETE`` (``RunRecords.complete``). ``runners.report``, ``runners.study`` and
``runners.ppo --resume`` read these files, so both runners write them here, through ``RunRecords``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm

from agents.atomic import write_json
from agents.command_line import UsageError
from agents.evaluation import EvaluationResult
from agents.reporting import RUN_COMPLETE, Reporter

CONFIG_FILE = "config.json"
FINAL_EVAL_FILE = "final_eval.json"
RUN_SUMMARY_FILE = "run_summary.json"


def default_run_dir(root: str, env_id: str, memory: str, seed: int) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / re.sub(r"[^A-Za-z0-9_.-]", "_", env_id) / memory / f"seed{seed}-{stamp}"


def prepare_run_dir(path: Path, overwrite: bool) -> Path:
    """Create the run directory; refuse to reuse a non-empty one unless told to, or a file's name."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"run directory {path} is a file: pass another --logdir")
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise UsageError(
            f"run directory {path} already exists and is not empty: pass --overwrite or another --logdir"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


class RunRecords:
    """The bookkeeping files of the run in ``run_dir`` and its reporter's last call.

    :param run_dir: the run directory (it exists: ``prepare_run_dir``)
    :param reporter: called once, by ``complete``, with the run's last metrics; None reports nothing
    """

    def __init__(self, run_dir: Path, reporter: Reporter | None = None) -> None:
        self.run_dir = run_dir
        self.reporter = reporter

    @property
    def config_path(self) -> Path:
        return self.run_dir / CONFIG_FILE

    def write_config(
        self,
        runner: str,
        args: argparse.Namespace,
        argv: list[str],
        command: list[str],
        model: BaseAlgorithm,
        memory_kwargs: dict[str, Any],
        threads: int,
        eval_seeds: dict[str, str],
        **facts: Any,
    ) -> None:
        """Write ``config.json``.

        :param runner: the runner's module, e.g. ``"runners.ppo"`` (the command starts ``python -m runner``)
        :param args: the parsed command line, every setting resolved
        :param argv: the words ``args`` were parsed from (with ``--hyperparams`` expanded)
        :param command: the words as the user typed them
        :param model: the model trained (its policy class is recorded)
        :param memory_kwargs: the memory's arguments the user set
        :param threads: torch threads
        :param eval_seeds: each evaluation env's env id and seeds (``agents.training_envs.evaluation_envs``)
        :param facts: what the runner adds (e.g. ``env_id``, ``demos_episodes``)
        """
        write_json(
            self.config_path,
            {
                **vars(args),
                "argv": argv,
                "logdir": str(self.run_dir),
                **facts,
                "memory_kwargs": memory_kwargs,
                "threads": threads,
                "eval_envs": eval_seeds,
                "policy_class": type(model.policy).__name__,
                "command": " ".join([f"python -m {runner}", *command]),
            },
        )

    def finish(
        self, final: Mapping[str, EvaluationResult], frames: int, seconds: float, fps: float, **summary: Any
    ) -> None:
        """Write ``final_eval.json`` and ``run_summary.json``.

        :param final: the final evaluation per env
        :param frames: frames trained in all (PPO: environment frames; BC: demonstration steps)
        :param seconds: wall-clock time of the training
        :param fps: frames per second
        :param summary: more of ``run_summary.json`` (e.g. ``epochs``, ``frames_this_session``)
        """
        write_json(self.run_dir / FINAL_EVAL_FILE, {name: result.as_dict() for name, result in final.items()})
        write_json(
            self.run_dir / RUN_SUMMARY_FILE,
            {"frames": frames, **summary, "seconds": seconds, "fps": fps},
        )

    def complete(self, metrics: dict[str, Any]) -> None:
        """The reporter's last call: ``metrics`` marked ``RUN_COMPLETE``. Call it once everything (files,
        logs) is written: a study takes it to mean the run directory is whole."""
        if self.reporter is not None:
            self.reporter({**metrics, RUN_COMPLETE: True})
