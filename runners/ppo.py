"""Train a memory policy with PPO: ``python -m runners.ppo --env BabyAI-GoToLocal-v0``.

Prints the run directory and its ``tensorboard --logdir`` command before training, logs to TensorBoard and
CSV there, evaluates periodically on an env seeded far from the training seeds (sampled actions on
MiniGrid/BabyAI, greedy elsewhere, ``--deterministic`` / ``--stochastic-eval`` to choose), checkpoints
periodically and at the end, writes the resolved config beside the model, and ends with a one-screen
summary naming the evaluation protocol. Settings that cannot work (a discount above 1, a CUDA device on a
machine without one, ...) are refused in one line, exit code 2, before anything is written.

This module parses and checks the command line; ``agents.training_run.TrainingRun`` runs what it says.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agents.command_line import sequence_length_value
from agents.factory import PPOHyperparameters
from agents.ppo_settings import net_arch, normalize_kwargs, object_spec, policy_kwargs, schedule
from agents.reporting import Reporter
from agents.resume import resume_arguments, resume_overrides
from agents.training_run import TrainingRun
from agents.zoo_settings import expand_hyperparams as expand_zoo_hyperparams
from envs.make import SUBPROC_MIN_CORES, use_subprocesses
from envs.suites import TRAIN_SEED_STRIDE, get_suite
from policies.policy import CRITIC_MEMORY_MODES
from runners.cli import (
    UsageError,
    add_encoder_arguments,
    add_eval_protocol_arguments,
    add_memory_arguments,
    check_device,
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

PPO_DEFAULTS = PPOHyperparameters()


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("python -m runners.ppo", "Train a memory policy (tlb by default) with PPO.")
    parser.add_argument(
        "--env", default="BabyAI-GoToLocal-v0", help="any MiniGrid-*, BabyAI-* or gymnasium id"
    )
    parser.add_argument(
        "--suite", default=None, help="train on a suite's training side, evaluate on its held-out sides"
    )
    parser.add_argument(
        "--resume", default=None, metavar="RUN_DIR", help="continue a run from its newest checkpoint"
    )
    parser.add_argument(
        "--init-from", default=None, metavar="MODEL", help="start from a trained model's weights"
    )
    parser.add_argument(
        "--hyperparams",
        default=None,
        metavar="FILE",
        help="YAML settings for --env: an RL Zoo file as it is (learning_rate, n_timesteps, policy, "
        "policy_kwargs, normalize, lin_ schedules, ...) or a benchmark file; flags on the command line win",
    )
    parser.add_argument(
        "--total-steps", type=positive_int, default=500_000, help="environment frames to train"
    )
    parser.add_argument("--n-envs", type=positive_int, default=16, help="parallel environments")
    parser.add_argument(
        "--subproc",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"run the envs in subprocesses, one per env (default: with 2 or more envs when the run has "
        f"{SUBPROC_MIN_CORES} or more cores: the machine's, or --threads)",
    )
    parser.add_argument(
        "--env-wrapper",
        type=object_spec,
        default=None,
        help="gymnasium wrappers for each env (training and evaluation), as the RL Zoo's env_wrapper: "
        "'module.Name', or a JSON/YAML list of names and {name: {arguments}}",
    )
    parser.add_argument(
        "--frame-stack", type=positive_int, default=None, help="stack this many observations (VecFrameStack)"
    )
    parser.add_argument(
        "--callback",
        type=object_spec,
        default=None,
        help="SB3 callbacks to add, as the RL Zoo's callback: 'module.Name' or a list with arguments",
    )
    parser.add_argument(
        "--previous-action-reward",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="each observation also holds the previous action and reward (zero after a reset), in training "
        "and every evaluation, for any memory; runners.evaluate adds them too for a model trained so",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help=f"run seed (0-999): model seed; training env r is seeded with seed * {TRAIN_SEED_STRIDE:,} + r, "
        "so runs of different seeds never share training envs",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="torch device: auto (CUDA if any), cpu, cuda, cuda:N (with --resume: replaces the run's)",
    )
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="torch threads (default: cores - 1)"
    )
    parser.add_argument(
        "--logdir", default=None, help="run directory (default runs/<env>/<memory>/seed<k>-<time>)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="allow writing into an existing run directory"
    )
    parser.add_argument(
        "--eval-freq",
        type=non_negative_int,
        default=50_000,
        help="frames between evaluations (0: only the final one)",
    )
    parser.add_argument("--eval-episodes", type=positive_int, default=50, help="episodes per evaluation")
    parser.add_argument(
        "--checkpoint-freq", type=positive_int, default=100_000, help="frames between checkpoints"
    )
    add_eval_protocol_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_encoder_arguments(parser)
    add_memory_arguments(parser)

    ppo = parser.add_argument_group("PPO")
    defaults = PPO_DEFAULTS
    ppo.add_argument(
        "--lr",
        type=schedule,
        default=defaults.learning_rate,
        help="learning rate: a number, or lin_<start> for the RL Zoo's linear decay to 0",
    )
    ppo.add_argument("--n-steps", type=positive_int, default=defaults.n_steps, help="rollout steps per env")
    ppo.add_argument(
        "--batch-size", type=positive_int, default=defaults.batch_size, help="minibatch size in steps"
    )
    ppo.add_argument("--n-epochs", type=positive_int, default=defaults.n_epochs, help="epochs per rollout")
    ppo.add_argument(
        "--sequence-length",
        type=sequence_length_value,
        default=defaults.sequence_length,
        help="training sequence length in steps, or 'rollout': whole rollouts (--n-steps)",
    )
    ppo.add_argument("--gamma", type=unit_interval, default=defaults.gamma, help="discount, in [0, 1]")
    ppo.add_argument(
        "--gae-lambda", type=unit_interval, default=defaults.gae_lambda, help="GAE lambda, in [0, 1]"
    )
    ppo.add_argument(
        "--clip-range",
        type=schedule,
        default=defaults.clip_range,
        help="PPO clip range (a number or lin_<start>)",
    )
    ppo.add_argument(
        "--clip-range-vf",
        type=schedule,
        default=defaults.clip_range_vf,
        help="value clip range (unset: no value clipping)",
    )
    ppo.add_argument(
        "--ent-coef", type=non_negative_float, default=defaults.ent_coef, help="entropy coefficient"
    )
    ppo.add_argument(
        "--vf-coef", type=non_negative_float, default=defaults.vf_coef, help="value loss coefficient"
    )
    ppo.add_argument(
        "--max-grad-norm", type=positive_float, default=defaults.max_grad_norm, help="gradient clipping"
    )
    ppo.add_argument(
        "--target-kl",
        type=positive_float,
        default=defaults.target_kl,
        help="stop an update's epochs early above this KL (unset: never)",
    )
    ppo.add_argument(
        "--normalize-advantage",
        action=argparse.BooleanOptionalAction,
        default=defaults.normalize_advantage,
        help="normalise advantages",
    )
    ppo.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="VecNormalize observations and rewards with --gamma (evaluation uses the training statistics)",
    )
    ppo.add_argument(
        "--normalize-kwargs",
        type=normalize_kwargs,
        default=None,
        help='more VecNormalize arguments with --normalize, in the RL Zoo\'s form: "dict(norm_reward=False)"',
    )
    policy = parser.add_argument_group("policy")
    policy.add_argument(
        "--net-arch",
        type=net_arch,
        default=None,
        help="MLP after the memory, as SB3 writes it: '[64, 64]' or \"{'pi': [], 'vf': [64]}\"",
    )
    policy.add_argument(
        "--ortho-init",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="orthogonal initialisation of the heads and MLP, as SB3",
    )
    policy.add_argument(
        "--critic-memory",
        choices=CRITIC_MEMORY_MODES,
        default=None,
        help="what the value head reads: the actor's memory (shared, the default), a separate one, the "
        "actor's without training it (detached) or none",
    )
    policy.add_argument(
        "--policy-kwargs",
        type=policy_kwargs,
        default=None,
        help='more policy arguments as the RL Zoo writes them: "dict(activation_fn=nn.ReLU)"',
    )
    return parser


def expand_hyperparams(argv: list[str]) -> list[str]:
    """``argv`` with ``--hyperparams FILE``'s settings put first and the flag removed
    (``agents.zoo_settings.expand_hyperparams``)."""
    return expand_zoo_hyperparams(build_parser(), argv)


def main(argv: list[str] | None = None, reporter: Reporter | None = None) -> int:
    """Train as the command line says; returns the exit code (0 done, 1 diverged, 128+signal interrupted).

    :param argv: the command-line arguments (default ``sys.argv[1:]``)
    :param reporter: if given, called after every update with the frames, frame rate and latest evaluation
        results, and once more, when everything is written, with the final evaluation and ``RUN_COMPLETE``;
        ``runners.study`` passes Ray Tune's ``tune.report`` here
    :raises UsageError, ValueError: for bad input, before anything is written
    """
    command = sys.argv[1:] if argv is None else list(argv)
    argv = expand_hyperparams(command)
    args = build_parser().parse_args(argv)
    resume_dir = Path(args.resume) if args.resume else None
    overrides: dict[str, Any] = {}
    if resume_dir is not None:
        overrides = resume_overrides(build_parser(), argv)
        args = resume_arguments(build_parser(), resume_dir)
        for key, value in overrides.items():
            setattr(args, key, value)
    check_device(args.device)
    args.subproc = use_subprocesses(args.subproc, args.n_envs, args.threads)
    args.stochastic_eval = resolve_stochastic_eval(
        args.stochastic_eval, get_suite(args.suite, args.env).train.env_id if args.suite else args.env
    )
    threads = set_threads(args.threads)
    memory_kwargs = memory_kwargs_from_args(args)
    if args.n_steps * args.n_envs < args.batch_size:
        rollout = args.n_steps * args.n_envs
        raise UsageError(
            f"--batch-size {args.batch_size} exceeds one rollout (--n-steps x --n-envs = {rollout})"
        )

    run = TrainingRun(args, argv, command, memory_kwargs, threads, "total_steps" in overrides, reporter)
    return run.run()


if __name__ == "__main__":
    sys.exit(run_main(main))
