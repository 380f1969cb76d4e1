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

This module parses and checks the command line and loads the demos; ``agents.bc_run.BCRun`` runs what it
says.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from agents.bc import LR_SCHEDULES, BCConfig, imitation_memory_kwargs
from agents.bc_run import BCRun
from agents.demos import load_demos
from agents.factory import PPOHyperparameters
from agents.reporting import Reporter
from envs.relabelling import RELABELLINGS
from runners.cli import (
    UsageError,
    add_encoder_arguments,
    add_eval_protocol_arguments,
    add_memory_arguments,
    check_device,
    fraction,
    make_parser,
    memory_kwargs_from_args,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
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

    # The evaluation protocol depends on the demos' env.
    demos = load_demos(args.demos, env_id=args.env)
    args.stochastic_eval = resolve_stochastic_eval(args.stochastic_eval, demos.env_id)
    config.deterministic_eval = not args.stochastic_eval
    run = BCRun(args, argv, parser, demos, config, memory_kwargs, preset, threads, reporter)
    return run.run()


if __name__ == "__main__":
    sys.exit(run_main(main))
