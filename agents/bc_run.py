"""One ``runners.bc`` run from its resolved settings, as ``agents.training_run.TrainingRun`` is for
``runners.ppo``: the runner parses and checks the command line and loads the demos, then
``BCRun(...).run()`` does the rest.

``setup`` builds the model's env and the evaluation envs from the demos and ``--suite`` (``bc_envs``), the
model (``runners.ppo``'s, so that ``runners.ppo --init-from`` loads its weights) and the ``BCTrainer`` before
anything is written to disk, so bad input fails first; then the run gets its directory, ``config.json`` and
TensorBoard and CSV logs. ``learn`` trains the epochs, appending each epoch's evaluations to the same
``eval/evaluations.jsonl`` rows ``runners.ppo`` writes and reporting to the reporter. ``finish`` saves the
model, writes ``final_eval.json`` and ``run_summary.json`` (``agents.run_records``) and prints a one-screen
summary that names the evaluation protocol and the ``runners.ppo`` command that fine-tunes the model.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.vec_env import VecEnv

from agents.bc import BCConfig, BCTrainer, EpochStats
from agents.callbacks import atomic_save
from agents.command_line import UsageError, settings_argv
from agents.demos import Demos
from agents.evaluation import EvaluationResult
from agents.factory import build_model
from agents.ppo import MemoryPPO
from agents.reporting import (
    Reporter,
    append_evaluations,
    describe_result,
    flatten_results,
    print_run_start,
    print_summary,
)
from agents.run_records import RunRecords, default_run_dir, prepare_run_dir
from agents.training_envs import evaluation_envs
from envs import make_vec_env
from envs.suites import get_suite

# The command line a run is started from: config.json and the console lines name it.
RUNNER = "runners.bc"
# The model's own env only gives it its spaces (and a fine-tuning run its own envs): two envs, so that
# runners.ppo's default rollout (n_steps 128 x 2 envs) holds one default minibatch of 256 steps.
MODEL_ENVS = 2
# Evaluation envs run at most this many episodes side by side.
MAX_EVAL_ENVS = 8


def bc_envs(
    args: argparse.Namespace, demos: Demos, n_envs: int
) -> tuple[VecEnv, dict[str, VecEnv], dict[str, str]]:
    """The model's env and the named evaluation envs with their seeds (for the summary).

    Without ``--suite``: the demos' env on the held-out seeds (``envs.suites.heldout_side``). With it: the
    suite's training side and each held-out side, named like ``runners.ppo`` names them (``train``,
    ``heldout/<side>``); the demos must be of the training side's env and seeds.

    :raises UsageError: for demos of another env than the suite's training side, or of seeds outside it
    """
    if args.suite is None:
        env = make_vec_env(demos.env_id, n_envs=MODEL_ENVS, seed=args.seed)
        return env, *evaluation_envs(demos.env_id, None, n_envs, args.seed)
    suite = get_suite(args.suite, demos.env_id)
    if suite.train.env_id != demos.env_id:
        raise UsageError(
            f"suite {suite.name} trains on {suite.train.env_id} but {args.demos} holds demonstrations of "
            f"{demos.env_id}: generate demos with python -m runners.demos --env {suite.train.env_id}"
        )
    outside = [int(seed) for seed in demos.seeds if int(seed) not in suite.train.seeds]
    if outside:
        raise UsageError(
            f"{len(outside)} episodes of {args.demos} (seeds {outside[0]}...) are not among the training "
            f"levels of suite {suite.name} (seeds {suite.train.describe_seeds()}): use demos of those seeds"
        )
    env = suite.train.make_vec_env(MODEL_ENVS, seed=args.seed)
    return env, *evaluation_envs(demos.env_id, suite, n_envs, args.seed)


class BCRun:
    """A behavioural-cloning run as its settings say: set up, train, finish (``run`` does all three).

    :param args: the parsed command line, every setting resolved (``stochastic_eval``)
    :param argv: the words ``args`` were parsed from, for ``config.json``
    :param parser: the command line's parser: the imitation preset and the memory's arguments are shown as
        its flags (``agents.command_line.settings_argv``), on the console and in the fine-tuning command
    :param demos: the demonstrations, loaded from ``args.demos``
    :param config: the BC hyperparameters, checked, with the evaluation protocol set
    :param memory_kwargs: the memory's arguments: the user's, with the imitation preset filled in
    :param preset: the part of the imitation preset applied (``agents.bc.imitation_memory_kwargs``)
    :param threads: torch threads
    :param reporter: called after every epoch with the frames, validation accuracy and latest evaluation
        results, and once more, when everything is written, with ``RUN_COMPLETE``
    """

    env: VecEnv
    eval_envs: dict[str, VecEnv]
    eval_seeds: dict[str, str]
    model: MemoryPPO
    trainer: BCTrainer
    run_dir: Path
    records: RunRecords
    logger: Logger
    history: list[EpochStats]
    elapsed: float

    def __init__(
        self,
        args: argparse.Namespace,
        argv: list[str],
        parser: argparse.ArgumentParser,
        demos: Demos,
        config: BCConfig,
        memory_kwargs: dict[str, Any],
        preset: dict[str, Any],
        threads: int,
        reporter: Reporter | None = None,
    ) -> None:
        self.args = args
        self.argv = argv
        self.parser = parser
        self.demos = demos
        self.config = config
        self.memory_kwargs = memory_kwargs
        self.preset = preset
        self.threads = threads
        self.reporter = reporter
        # The latest epoch's metrics and evaluation results: each epoch's report and the last one.
        self.latest: dict[str, Any] = {}

    def run(self) -> int:
        """Set up, train and finish; returns the exit code (0).

        :raises UsageError, ValueError: for bad input, before anything is written
        """
        self.setup()
        self.learn()
        self.finish()
        return 0

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        """Build the envs, the model and the trainer, then write the run directory's ``config.json``, open
        its logs and name it on the console."""
        args, demos = self.args, self.demos
        # Everything that can fail on bad input happens before anything is written to disk.
        self.env, self.eval_envs, self.eval_seeds = bc_envs(
            args, demos, n_envs=min(args.eval_episodes, MAX_EVAL_ENVS)
        )
        # runners.ppo's model with its PPO defaults: what runners.ppo --init-from loads these weights into.
        self.model = build_model(
            self.env,
            args.memory,
            self.memory_kwargs,
            args.features_dim,
            encoder_channels=args.encoder_channels,
            seed=args.seed,
            device=args.device,
        )
        self.trainer = BCTrainer(self.model, demos, self.config, self.eval_envs)

        run_dir = (
            Path(args.logdir)
            if args.logdir
            else default_run_dir("runs", demos.env_id, f"bc-{args.memory}", args.seed)
        )
        self.run_dir = prepare_run_dir(run_dir, args.overwrite)
        self.records = RunRecords(self.run_dir, self.reporter)
        self.records.write_config(
            RUNNER,
            args,
            self.argv,
            self.argv,
            self.model,
            self.memory_kwargs,
            self.threads,
            self.eval_seeds,
            env_id=demos.env_id,
            demos_episodes=demos.n_episodes,
            demos_steps=demos.n_steps,
            train_episodes=len(self.trainer.train_episodes),
            val_episodes=len(self.trainer.val_episodes),
            imitation_preset=self.preset,
        )
        self.logger = configure(str(self.run_dir), ["csv", "tensorboard"])
        self.trainer.logger = self.logger
        self.model.set_logger(self.logger)
        print_run_start(RUNNER, self.run_dir)
        if self.preset:
            words = " ".join(settings_argv(self.parser, self.preset, "the imitation preset"))
            print(
                f"{RUNNER}: --memory {args.memory} with the imitation preset {words} (tlb-paper's settings, "
                "which memorise demos less often); give these flags yourself to override",
                flush=True,
            )

    # ------------------------------------------------------------------ training

    def learn(self) -> None:
        """Train the epochs (or until ``--total-minutes``), reporting after each (``on_epoch``)."""
        start = time.time()
        self.history = self.trainer.train(progress=not self.args.no_progress, on_epoch=self.on_epoch)
        self.elapsed = time.time() - start

    def on_epoch(self, stats: EpochStats) -> None:
        """Log an epoch's evaluations and pass its metrics to the reporter."""
        # The same evaluation rows runners.ppo writes, so runners.report reads BC and PPO curves alike.
        if stats.evaluations:
            append_evaluations(self.run_dir, stats.frames, stats.evaluations)
            self.latest.update(flatten_results(stats.evaluations))
        self.latest.update(frames=stats.frames, epoch=stats.epoch, val_accuracy=stats.val_accuracy)
        self.latest["fps"] = self.trainer.frames_per_second
        if self.reporter is not None:
            self.reporter(dict(self.latest))

    # ------------------------------------------------------------------ the end

    def finish(self) -> None:
        """Save the model, write the run's records and print the summary; the reporter's last call comes
        once everything is written."""
        trainer, last = self.trainer, self.history[-1]
        model_path = self.run_dir / "model.zip"
        atomic_save(self.model, model_path)
        final = last.evaluations
        fps = trainer.frames_per_second
        self.records.finish(final, frames=trainer.frames, seconds=self.elapsed, fps=fps, epochs=last.epoch)
        for vec_env in (self.env, *self.eval_envs.values()):
            vec_env.close()
        self.logger.close()
        print_summary(f"{RUNNER} summary", self.summary_rows(final, model_path))
        self.records.complete(self.latest)

    def summary_rows(self, final: dict[str, EvaluationResult], model_path: Path) -> list[tuple[str, str]]:
        """The summary's lines: the demos and their split, what was trained, how fast and how well, the
        final evaluation, where the files are and the command that fine-tunes the model with PPO."""
        args, demos, trainer = self.args, self.demos, self.trainer
        first, last = self.history[0], self.history[-1]
        rows = [
            ("demos", f"{args.demos}: {demos.env_id}, {demos.n_episodes} episodes, {demos.n_steps} steps"),
            (
                "split",
                f"{len(trainer.train_episodes)} training / {len(trainer.val_episodes)} validation episodes",
            ),
            ("memory", f"{args.memory} {self.memory_kwargs or '(defaults)'}"),
            (
                "training",
                f"{last.epoch} epoch(s), {trainer.frames:,} frames in {self.elapsed:.0f} s "
                f"({trainer.frames_per_second:,.0f} frames/s)",
            ),
        ]
        if not math.isnan(last.val_loss):
            rows.append(
                (
                    "validation",
                    f"loss {first.val_loss:.3f} -> {last.val_loss:.3f}, "
                    f"accuracy {first.val_accuracy:.3f} -> {last.val_accuracy:.3f}",
                )
            )
        if trainer.best_epoch is not None:
            rows.append(
                (
                    "kept",
                    f"the weights of epoch {trainer.best_epoch} (best validation accuracy "
                    f"{trainer.best_val_accuracy:.3f}), evaluated below",
                )
            )
        for name, result in final.items():
            success = describe_result(result, self.eval_seeds[name], with_return=False)
            rows.append((f"success {name}", success))
        rows += [
            ("model", str(model_path)),
            ("config", str(self.run_dir / "config.json")),
            ("tensorboard", f"tensorboard --logdir {self.run_dir}"),
            ("fine-tune", self.fine_tune_command(model_path)),
        ]
        return rows

    def fine_tune_command(self, model_path: Path) -> str:
        """The ``runners.ppo`` command that fine-tunes the saved model: the same env (or suite), memory and
        encoder, so that ``--init-from`` fits the model it builds."""
        args, env_id = self.args, self.demos.env_id
        suite_flag = f" --suite {args.suite}" if args.suite else ""
        channels = args.encoder_channels
        channels_flag = "" if channels is None else f" --encoder-channels {channels}"
        memory_words = settings_argv(self.parser, self.memory_kwargs, "memory")
        memory_flags = "".join(f" {word}" for word in memory_words)
        return (
            f"python -m runners.ppo --env {env_id}{suite_flag} --memory {args.memory}{memory_flags} "
            f"--features-dim {args.features_dim}{channels_flag} --init-from {model_path}"
        )
