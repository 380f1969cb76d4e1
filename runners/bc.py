"""Imitation learning from demonstrations (behavioural cloning):
``python -m runners.bc --demos demos/gotolocal.npz --memory tlb``.

Trains the same ``MemoryActorCriticPolicy`` that ``runners.ppo`` builds (``agents.factory.build_model``, so
the result is a MemoryPPO model) by cross-entropy on whole demonstrated episodes (``agents.bc`` explains
the sequence scheme), with a validation split of the episodes, periodic evaluation in the env (on held-out
seeds, or on each side of ``--suite``; sampled actions on MiniGrid/BabyAI unless ``--deterministic``),
TensorBoard and CSV logs (the run directory and its ``tensorboard`` command are printed first), and a
summary naming the evaluation protocol. The model is saved as ``model.zip`` (``MemoryPPO.load``,
``runners.evaluate`` and ``runners.ppo --init-from`` take it) with ``config.json`` and ``final_eval.json``
beside it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnv

from agents.bc import LR_SCHEDULES, BCConfig, BCTrainer, EpochStats, imitation_memory_kwargs
from agents.callbacks import atomic_save
from agents.command_line import settings_argv
from agents.demos import Demos, load_demos
from agents.factory import PPOHyperparameters, build_model
from agents.reporting import Reporter, append_evaluations, flatten_results
from agents.run_records import RunRecords
from envs import make_vec_env
from envs.relabelling import RELABELLINGS
from envs.suites import get_suite
from runners.cli import (
    UsageError,
    add_encoder_arguments,
    add_eval_protocol_arguments,
    add_memory_arguments,
    check_device,
    default_run_dir,
    describe_result,
    evaluation_envs,
    fraction,
    make_parser,
    memory_kwargs_from_args,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    prepare_run_dir,
    print_run_start,
    print_summary,
    resolve_stochastic_eval,
    run_main,
    set_threads,
    unit_interval,
)

# The parser's defaults are BCConfig's: its fields are declared once, there.
BC_DEFAULTS = BCConfig()
# The discount of the value targets: BCConfig's, or where that leaves it to the model (None), the discount of
# the model runners.bc builds (PPOHyperparameters'), so config.json records the number used.
VALUE_GAMMA = PPOHyperparameters().gamma if BC_DEFAULTS.gamma is None else BC_DEFAULTS.gamma
# BCConfig fields without a flag of the same name: the evaluation protocol comes from --deterministic /
# --stochastic-eval and the env (resolve_stochastic_eval).
NOT_FLAGS = ("deterministic_eval",)

# The model's own env only gives it its spaces (and a fine-tuning run its own envs): two envs, so that
# runners.ppo's default rollout (n_steps 128 x 2 envs) holds one default minibatch of 256 steps.
MODEL_ENVS = 2


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "python -m runners.bc",
        "Train a memory policy by behavioural cloning of demos. With --memory tlb the model takes "
        "tlb-paper's settings (--input-shift 0 --no-normalize-latents), which memorise demos less often than "
        "tlb's RL defaults; a flag you give overrides them.",
    )
    parser.add_argument("--demos", required=True, help="demos file written by python -m runners.demos")
    parser.add_argument("--env", default=None, help="the demos' env id (checked against the file)")
    parser.add_argument("--suite", default=None, help="evaluate on this suite's training and held-out sides")
    add_encoder_arguments(parser)
    add_memory_arguments(parser)

    bc = parser.add_argument_group("behavioural cloning")
    bc.add_argument(
        "--epochs", type=positive_int, default=BC_DEFAULTS.epochs, help="passes over the training episodes"
    )
    bc.add_argument(
        "--batch-episodes",
        type=positive_int,
        default=BC_DEFAULTS.batch_episodes,
        help="whole episodes per minibatch",
    )
    bc.add_argument(
        "--sequence-length",
        type=positive_int,
        default=BC_DEFAULTS.sequence_length,
        help="backpropagate through windows of this many steps (default: whole episodes)",
    )
    bc.add_argument("--lr", type=positive_float, default=BC_DEFAULTS.lr, help="Adam learning rate")
    bc.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default=BC_DEFAULTS.lr_schedule,
        help="constant, or cosine: decay to 0 over the epochs (or --total-minutes, when that ends first)",
    )
    bc.add_argument(
        "--ent-coef",
        type=non_negative_float,
        default=BC_DEFAULTS.ent_coef,
        help="entropy bonus weight (BabyAI's IL: 0.01)",
    )
    bc.add_argument(
        "--weight-decay",
        type=non_negative_float,
        default=BC_DEFAULTS.weight_decay,
        help="AdamW's decoupled weight decay of the weight matrices (0: plain Adam)",
    )
    bc.add_argument(
        "--keep-best",
        action="store_true",
        default=BC_DEFAULTS.keep_best,
        help="end with the weights of the epoch of best validation accuracy (early stopping)",
    )
    bc.add_argument(
        "--relabel",
        choices=RELABELLINGS,
        default=BC_DEFAULTS.relabel,
        help="show each training episode under random colours (colors+types: also ball/box/key swapped; "
        "only where those are interchangeable, as in GoTo levels); not with --suite held-out-pairs",
    )
    bc.add_argument(
        "--ema-decay",
        type=non_negative_float,
        default=BC_DEFAULTS.ema_decay,
        help="validate, evaluate and keep a moving average of the weights, this decay per update "
        "(e.g. 0.999; 0: off)",
    )
    bc.add_argument(
        "--max-grad-norm", type=positive_float, default=BC_DEFAULTS.max_grad_norm, help="gradient clipping"
    )
    bc.add_argument(
        "--vf-coef",
        type=non_negative_float,
        default=BC_DEFAULTS.vf_coef,
        help="value loss weight (discounted demo returns; 0: off)",
    )
    bc.add_argument(
        "--gamma",
        type=unit_interval,
        default=VALUE_GAMMA,
        help="discount of the value targets, in [0, 1] (unless given, the model's PPO discount)",
    )
    bc.add_argument(
        "--val-fraction",
        type=fraction,
        default=BC_DEFAULTS.val_fraction,
        help="fraction of the episodes held out for validation, in [0, 1)",
    )
    bc.add_argument(
        "--eval-freq",
        type=non_negative_int,
        default=BC_DEFAULTS.eval_freq,
        help="epochs between env evaluations (0: at the end)",
    )
    bc.add_argument(
        "--eval-episodes",
        type=positive_int,
        default=BC_DEFAULTS.eval_episodes,
        help="episodes per evaluation env",
    )
    add_eval_protocol_arguments(bc)
    bc.add_argument(
        "--total-minutes",
        type=positive_float,
        default=BC_DEFAULTS.total_minutes,
        help="stop training after this many minutes",
    )

    run = parser.add_argument_group("run")
    run.add_argument(
        "--seed",
        type=non_negative_int,
        default=BC_DEFAULTS.seed,
        help="seed of the model, the split and the batches",
    )
    run.add_argument("--device", default="auto", help="torch device: auto (CUDA if any), cpu, cuda, cuda:N")
    run.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: cores - 1)")
    run.add_argument(
        "--logdir", default=None, help="run directory (default runs/<env>/bc-<memory>/seed<k>-<time>)"
    )
    run.add_argument("--overwrite", action="store_true", help="allow writing into an existing run directory")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def bc_config(args: argparse.Namespace) -> BCConfig:
    """The ``BCConfig`` of the command line: every field from the flag of the same name."""
    return BCConfig(**{f.name: getattr(args, f.name) for f in fields(BCConfig) if f.name not in NOT_FLAGS})


def bc_envs(
    args: argparse.Namespace, demos: Demos, n_envs: int
) -> tuple[VecEnv, dict[str, VecEnv], dict[str, str]]:
    """The model's env and the named evaluation envs with their seeds (for the summary).

    Without ``--suite``: the demos' env on the held-out seeds (``envs.suites.heldout_side``). With it: the
    suite's training side and each held-out side, named like ``runners.ppo`` names them (``train``,
    ``heldout/<side>``); the demos must be of the training side's env and seeds.
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


def main(argv: list[str] | None = None, reporter: Reporter | None = None) -> int:
    """Train as the command line says; returns the exit code.

    :param argv: the command-line arguments (default ``sys.argv[1:]``)
    :param reporter: if given, called after every epoch with the frames, validation accuracy and latest
        evaluation results, the last time (everything written) with ``RUN_COMPLETE``; ``runners.study``
        passes ``tune.report``
    :raises UsageError, ValueError: for bad input, before anything is written
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    check_device(args.device)
    threads = set_threads(args.threads)
    memory_kwargs, preset = imitation_memory_kwargs(args.memory, memory_kwargs_from_args(args))
    config = bc_config(args)
    config.check()
    if args.relabel != "none" and args.suite == "held-out-pairs":
        raise UsageError(
            "--relabel shows the model every colour/type pair, which the held-out-pairs suite holds out: "
            "use --relabel none with that suite"
        )

    # Everything that can fail on bad input happens before anything is written to disk.
    demos = load_demos(args.demos, env_id=args.env)
    args.stochastic_eval = resolve_stochastic_eval(args.stochastic_eval, demos.env_id)
    config.deterministic_eval = not args.stochastic_eval
    env, eval_envs, eval_seeds = bc_envs(args, demos, n_envs=min(args.eval_episodes, 8))
    # runners.ppo's model with its PPO defaults: what runners.ppo --init-from loads these weights into.
    model = build_model(
        env,
        args.memory,
        memory_kwargs,
        args.features_dim,
        encoder_channels=args.encoder_channels,
        seed=args.seed,
        device=args.device,
    )
    trainer = BCTrainer(model, demos, config, eval_envs)

    run_dir = (
        Path(args.logdir)
        if args.logdir
        else default_run_dir("runs", demos.env_id, f"bc-{args.memory}", args.seed)
    )
    run_dir = prepare_run_dir(run_dir, args.overwrite)
    records = RunRecords(run_dir, reporter)
    records.write_config(
        "runners.bc",
        args,
        argv,
        argv,
        model,
        memory_kwargs,
        threads,
        eval_seeds,
        env_id=demos.env_id,
        demos_episodes=demos.n_episodes,
        demos_steps=demos.n_steps,
        train_episodes=len(trainer.train_episodes),
        val_episodes=len(trainer.val_episodes),
        imitation_preset=preset,
    )
    logger = configure(str(run_dir), ["csv", "tensorboard"])
    trainer.logger = logger
    model.set_logger(logger)
    print_run_start("runners.bc", run_dir)
    if preset:
        words = " ".join(settings_argv(parser, preset, "the imitation preset"))
        print(
            f"runners.bc: --memory {args.memory} with the imitation preset {words} (tlb-paper's settings, "
            "which memorise demos less often); give these flags yourself to override",
            flush=True,
        )

    latest: dict[str, Any] = {}

    def on_epoch(stats: EpochStats) -> None:
        # The same evaluation rows runners.ppo writes, so runners.report reads BC and PPO curves alike.
        if stats.evaluations:
            append_evaluations(run_dir, stats.frames, stats.evaluations)
            latest.update(flatten_results(stats.evaluations))
        latest.update(frames=stats.frames, epoch=stats.epoch, val_accuracy=stats.val_accuracy)
        latest["fps"] = trainer.frames_per_second
        if reporter is not None:
            reporter(dict(latest))

    start = time.time()
    history = trainer.train(progress=not args.no_progress, on_epoch=on_epoch)
    elapsed = time.time() - start
    model_path = run_dir / "model.zip"
    atomic_save(model, model_path)
    final = history[-1].evaluations
    records.finish(
        final, frames=trainer.frames, seconds=elapsed, fps=trainer.frames_per_second, epochs=history[-1].epoch
    )
    for vec_env in (env, *eval_envs.values()):
        vec_env.close()
    logger.close()

    first, last = history[0], history[-1]
    rows = [
        ("demos", f"{args.demos}: {demos.env_id}, {demos.n_episodes} episodes, {demos.n_steps} steps"),
        (
            "split",
            f"{len(trainer.train_episodes)} training / {len(trainer.val_episodes)} validation episodes",
        ),
        ("memory", f"{args.memory} {memory_kwargs or '(defaults)'}"),
        (
            "training",
            f"{last.epoch} epoch(s), {trainer.frames:,} frames in {elapsed:.0f} s "
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
        rows.append((f"success {name}", describe_result(result, eval_seeds[name], with_return=False)))
    suite_flag = f" --suite {args.suite}" if args.suite else ""
    channels_flag = "" if args.encoder_channels is None else f" --encoder-channels {args.encoder_channels}"
    memory_flags = "".join(f" {word}" for word in settings_argv(parser, memory_kwargs, "memory"))
    rows += [
        ("model", str(model_path)),
        ("config", str(run_dir / "config.json")),
        ("tensorboard", f"tensorboard --logdir {run_dir}"),
        (
            "fine-tune",
            f"python -m runners.ppo --env {demos.env_id}{suite_flag} --memory {args.memory}{memory_flags} "
            f"--features-dim {args.features_dim}{channels_flag} --init-from {model_path}",
        ),
    ]
    print_summary("runners.bc summary", rows)
    records.complete(latest)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
