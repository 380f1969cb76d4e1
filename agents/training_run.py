"""One ``runners.ppo`` training run from its resolved settings, as the RL Zoo's ``ExperimentManager`` is for
``rl_zoo3.train``: the runner parses and checks the command line, then ``TrainingRun(...).run()`` does the
rest.

``setup`` builds the envs, the user's callbacks and the model (new, or resumed from the run's newest
checkpoint) before anything is written to disk, so bad input fails first; a new run then gets its directory
and ``config.json``. ``learn`` trains to ``--total-steps`` with checkpoints, periodic evaluations and
SIGINT/SIGTERM handling (a checkpoint, then exit code 128 + signal; 1 when training diverges). ``finish``
saves the model, runs the final evaluation, writes ``final_eval.json`` and ``run_summary.json``
(``agents.run_records``) and prints a one-screen summary that names the evaluation protocol.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat
from stable_baselines3.common.vec_env import VecEnv

from agents.callbacks import (
    CheckpointCallback,
    InterruptHandler,
    NonFiniteGuard,
    SuiteEvalCallback,
    TrainingDiverged,
    atomic_save,
    list_checkpoints,
)
from agents.evaluation import EvaluationResult
from agents.loading import init_from
from agents.ppo import MemoryPPO
from agents.ppo_settings import build_model, user_callbacks
from agents.reporting import (
    MetricsReporter,
    Reporter,
    describe_result,
    flatten_results,
    print_run_start,
    print_summary,
)
from agents.resume import record_extension, resume_from_checkpoint, resume_total_steps
from agents.run_records import RunRecords, default_run_dir, prepare_run_dir
from agents.training_envs import training_envs

# The command line a run is started from: config.json, the console lines and the resume hint name it.
RUNNER = "runners.ppo"


class TrainingRun:
    """A PPO run as its settings say: set up, train, finish (``run`` does all three).

    :param args: the parsed command line, every setting resolved (``subproc``, ``stochastic_eval``; with
        ``--resume``, the run's own settings and the flags a resume may change)
    :param argv: the words ``args`` were parsed from (with ``--hyperparams`` expanded), for ``config.json``
    :param command: the words as the user typed them
    :param memory_kwargs: the memory's arguments the user set
    :param threads: torch threads
    :param extended: a resume that gives ``--total-steps``: the run trains on to that many steps, and its
        ``config.json`` records it
    :param reporter: called after every update with the frames, frame rate and latest evaluation results,
        and once more, when everything is written, with the final evaluation and ``RUN_COMPLETE``
    """

    env: VecEnv
    eval_envs: dict[str, VecEnv]
    eval_seeds: dict[str, str]
    model: MemoryPPO
    run_dir: Path
    start_step: int
    evaluation: SuiteEvalCallback
    checkpoints: CheckpointCallback
    callbacks: list[BaseCallback]
    elapsed: float

    def __init__(
        self,
        args: argparse.Namespace,
        argv: list[str],
        command: list[str],
        memory_kwargs: dict[str, Any],
        threads: int,
        extended: bool = False,
        reporter: Reporter | None = None,
    ) -> None:
        self.args = args
        self.argv = argv
        self.command = command
        self.memory_kwargs = memory_kwargs
        self.threads = threads
        self.extended = extended
        self.reporter = reporter

    def run(self) -> int:
        """Set up, train and finish; returns the exit code (0 done, 1 diverged, 128+signal interrupted).

        :raises UsageError, ValueError: for bad input, before anything is written
        """
        self.setup()
        code = self.learn()
        if code is not None:
            return code
        self.finish()
        return 0

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        """Build the envs, the callbacks and the model, and name the run directory on the console."""
        args = self.args
        # Build everything that can fail on bad input before anything is written to disk.
        self.env, self.eval_envs, self.eval_seeds = training_envs(args)
        extra_callbacks = user_callbacks(args.callback) if args.callback is not None else []
        if args.resume:
            self._resume(Path(args.resume))
        else:
            self._start()
        self.start_step = self.model.num_timesteps
        self.model.set_logger(make_logger(self.run_dir, self.start_step))
        print_run_start(RUNNER, self.run_dir)

        # Callbacks count calls, not frames; an eval_freq of 0 (no evaluation during training) stays 0.
        per_env = lambda frames: max(frames // args.n_envs, 1) if frames else 0  # noqa: E731
        self.evaluation = SuiteEvalCallback(
            self.eval_envs,
            per_env(args.eval_freq),
            args.eval_episodes,
            not args.stochastic_eval,
            self.run_dir,
        )
        self.checkpoints = CheckpointCallback(args.checkpoint_freq, self.run_dir / "checkpoints")
        self.callbacks = [NonFiniteGuard(), self.checkpoints, self.evaluation]
        self.callbacks += extra_callbacks
        if self.reporter is not None:
            self.callbacks.append(MetricsReporter(self.reporter, lambda: self.evaluation.last_results))

    def _resume(self, resume_dir: Path) -> None:
        """The model of the run's newest loadable checkpoint, refused when it has nothing to train."""
        args = self.args
        self.model, checkpoint = resume_from_checkpoint(resume_dir, self.env, args.device)
        resume_total_steps(resume_dir, self.model.num_timesteps, args.total_steps, self.extended)
        if self.extended:
            record_extension(
                resume_dir,
                self.model.num_timesteps,
                args.total_steps,
                " ".join([f"python -m {RUNNER}", *self.command]),
            )
        print(
            f"resuming {resume_dir} from {checkpoint.name} at step {self.model.num_timesteps:,} "
            f"on {self.model.device}"
        )
        self.run_dir = resume_dir

    def _start(self) -> None:
        """A new model (with ``--init-from``'s weights) and a new run directory with its ``config.json``."""
        args = self.args
        self.model = build_model(args, self.env, self.memory_kwargs)
        if args.init_from:
            init_from(self.model, args.init_from)
        run_dir = (
            Path(args.logdir) if args.logdir else default_run_dir("runs", args.env, args.memory, args.seed)
        )
        self.run_dir = prepare_run_dir(run_dir, args.overwrite)
        # An overwritten run's checkpoints must not be mistaken for this run's by --resume.
        shutil.rmtree(self.run_dir / "checkpoints", ignore_errors=True)
        RunRecords(self.run_dir).write_config(
            RUNNER,
            args,
            self.argv,
            self.command,
            self.model,
            self.memory_kwargs,
            self.threads,
            self.eval_seeds,
        )

    # ------------------------------------------------------------------ training

    def learn(self) -> int | None:
        """Train to ``--total-steps``, then save a last checkpoint.

        :return: None when training ended; else the exit code: 1 when it diverged (naming the last good
            checkpoint), 128 + the signal when SIGINT/SIGTERM stopped it (after a checkpoint to resume from)
        """
        args, model = self.args, self.model
        remaining = args.total_steps - model.num_timesteps
        start = time.time()
        with InterruptHandler(self.checkpoints) as interrupt:
            if remaining > 0:
                try:
                    model.learn(
                        remaining,
                        callback=self.callbacks,
                        progress_bar=not args.no_progress,
                        reset_num_timesteps=False,
                    )
                except TrainingDiverged as error:
                    last = list_checkpoints(self.run_dir / "checkpoints")
                    print(
                        f"error: {error}; last good checkpoint: {last[0][1] if last else 'none'}",
                        file=sys.stderr,
                    )
                    return 1
        self.elapsed = time.time() - start
        if interrupt.received is not None:
            checkpoints = self.checkpoints
            print(
                f"stopped at step {checkpoints.last_saved_at:,}: checkpoint {checkpoints.last_path}; "
                f"continue with: python -m {RUNNER} --resume {self.run_dir}"
            )
            return 128 + interrupt.received
        if remaining > 0:
            self.checkpoints.save()
        else:  # training ended before a crash in the final evaluation: learn() never set the callback up
            self.evaluation.init_callback(model)
        return None

    # ------------------------------------------------------------------ the end

    def finish(self) -> None:
        """Save the model, evaluate it a last time, write the run's records and print the summary; the
        reporter's last call comes once everything is written."""
        model, run_dir = self.model, self.run_dir
        model_path = run_dir / "model.zip"
        atomic_save(model, model_path)

        final = self.evaluation.evaluate()
        self.env.close()
        for eval_env in self.eval_envs.values():
            eval_env.close()
        frames = model.num_timesteps - self.start_step
        fps = frames / max(self.elapsed, 1e-9)
        records = RunRecords(run_dir, self.reporter)
        records.finish(
            final, frames=model.num_timesteps, seconds=self.elapsed, fps=fps, frames_this_session=frames
        )
        print_summary(f"{RUNNER} summary", self.summary_rows(final, model_path, frames, fps))
        records.complete({"frames": model.num_timesteps, "fps": fps, **flatten_results(final)})

    def summary_rows(
        self, final: dict[str, EvaluationResult], model_path: Path, frames: int, fps: float
    ) -> list[tuple[str, str]]:
        """The summary's lines: what was trained, how fast, the final evaluation and where the files are."""
        args, model, run_dir = self.args, self.model, self.run_dir
        where_envs_ran = f"envs in {'subprocesses' if args.subproc else 'the main process'}"
        memory = f"{args.memory} {self.memory_kwargs or '(defaults)'}"
        rows = [
            ("env / memory", f"{env_description(args)} / {memory}"),
            ("frames", f"{model.num_timesteps:,} ({frames:,} in {self.elapsed:.0f} s, {fps:,.0f} frames/s)"),
            ("time", f"{model.time_spent.summary(self.elapsed)}, {where_envs_ran}"),
        ]
        for name, result in final.items():
            rows.append((f"success {name}", describe_result(result, self.eval_seeds[name])))
        rows += [
            ("model", str(model_path)),
            ("config", str(run_dir / "config.json")),
            ("checkpoints", str(run_dir / "checkpoints")),
            ("tensorboard", f"tensorboard --logdir {run_dir}"),
        ]
        return rows


def env_description(args: argparse.Namespace) -> str:
    """The env or suite trained on, for the summary, naming the extra inputs when there are any."""
    name = args.suite or args.env
    return f"{name} (+ previous action and reward)" if args.previous_action_reward else name


def make_logger(run_dir: Path, start_step: int) -> Logger:
    """TensorBoard and CSV; a resumed run writes a new CSV file instead of truncating the first one."""
    csv_name = "progress.csv" if start_step == 0 else f"progress-from-{start_step}.csv"
    return Logger(
        str(run_dir), [CSVOutputFormat(str(run_dir / csv_name)), TensorBoardOutputFormat(str(run_dir))]
    )
