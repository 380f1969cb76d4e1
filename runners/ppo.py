"""Train a memory policy with PPO: ``python -m runners.ppo --env BabyAI-GoToLocal-v0``.

Logs to TensorBoard and CSV in the run directory, evaluates periodically on an env seeded far from the
training seeds, checkpoints periodically and at the end, writes the resolved config beside the model, and
ends with a one-screen summary.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from gymnasium import spaces
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from agents import MemoryPPO
from agents.evaluation import evaluate_model
from envs import make_vec_env
from runners.cli import (
    UsageError,
    add_memory_arguments,
    default_run_dir,
    make_parser,
    memory_kwargs_from_args,
    prepare_run_dir,
    run_main,
    set_threads,
    write_json,
)

# Evaluation envs are seeded from here on, far from the training seeds (BabyAI validates on 1e9+).
EVAL_SEED_OFFSET = 1_000_000_000


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("python -m runners.ppo", "Train a memory policy (tlb by default) with PPO.")
    parser.add_argument(
        "--env", default="BabyAI-GoToLocal-v0", help="any MiniGrid-*, BabyAI-* or gymnasium id"
    )
    parser.add_argument(
        "--total-steps", type=positive_int, default=500_000, help="environment frames to train"
    )
    parser.add_argument("--n-envs", type=positive_int, default=16, help="parallel environments")
    parser.add_argument("--subproc", action="store_true", help="run the envs in subprocesses")
    parser.add_argument("--seed", type=int, default=0, help="training envs use seeds seed..seed+n_envs-1")
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, ...")
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="torch threads (default: cores - 1)"
    )
    parser.add_argument(
        "--logdir", default=None, help="run directory (default runs/<env>/<memory>/seed<k>-<time>)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="allow writing into an existing run directory"
    )
    parser.add_argument("--eval-freq", type=positive_int, default=50_000, help="frames between evaluations")
    parser.add_argument("--eval-episodes", type=positive_int, default=50, help="episodes per evaluation")
    parser.add_argument(
        "--checkpoint-freq", type=positive_int, default=100_000, help="frames between checkpoints"
    )
    parser.add_argument("--stochastic-eval", action="store_true", help="sample actions when evaluating")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--features-dim", type=positive_int, default=128, help="observation encoder output width"
    )
    add_memory_arguments(parser)

    ppo = parser.add_argument_group("PPO")
    ppo.add_argument("--lr", type=positive_float, default=5e-4, help="learning rate")
    ppo.add_argument("--n-steps", type=positive_int, default=128, help="rollout steps per env")
    ppo.add_argument("--batch-size", type=positive_int, default=256, help="minibatch size in steps")
    ppo.add_argument("--n-epochs", type=positive_int, default=4, help="epochs per rollout")
    ppo.add_argument("--sequence-length", type=positive_int, default=32, help="training sequence length")
    ppo.add_argument("--gamma", type=float, default=0.99, help="discount")
    ppo.add_argument("--gae-lambda", type=float, default=0.95, help="GAE lambda")
    ppo.add_argument("--clip-range", type=positive_float, default=0.2, help="PPO clip range")
    ppo.add_argument(
        "--clip-range-vf", type=positive_float, default=None, help="value clip range (none: off)"
    )
    ppo.add_argument("--ent-coef", type=float, default=0.01, help="entropy coefficient")
    ppo.add_argument("--vf-coef", type=float, default=0.5, help="value loss coefficient")
    ppo.add_argument("--max-grad-norm", type=positive_float, default=0.5, help="gradient clipping")
    ppo.add_argument("--target-kl", type=positive_float, default=None, help="early-stop KL (none: off)")
    ppo.add_argument(
        "--normalize-advantage",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="normalise advantages",
    )
    return parser


def build_model(args: argparse.Namespace, env: Any, memory_kwargs: dict[str, Any]) -> MemoryPPO:
    policy_kwargs: dict[str, Any] = dict(memory=args.memory, memory_kwargs=memory_kwargs)
    policy_kwargs["features_extractor_kwargs"] = dict(features_dim=args.features_dim)
    return MemoryPPO(
        # The policy picks its encoder from the space (BabyAI encoder, NatureCNN, ...); SB3 only insists
        # that Dict spaces use the "MultiInputPolicy" name.
        "MultiInputPolicy" if isinstance(env.observation_space, spaces.Dict) else "MlpPolicy",
        env,
        learning_rate=args.lr,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        sequence_length=args.sequence_length,
        gamma=args.gamma,
        gae_lambda=args.gae_lambda,
        clip_range=args.clip_range,
        clip_range_vf=args.clip_range_vf,
        ent_coef=args.ent_coef,
        vf_coef=args.vf_coef,
        max_grad_norm=args.max_grad_norm,
        target_kl=args.target_kl,
        normalize_advantage=args.normalize_advantage,
        policy_kwargs=policy_kwargs,
        seed=args.seed,
        device=args.device,
    )


def print_summary(rows: list[tuple[str, str]]) -> None:
    """Plain aligned lines: paths stay whole (copy-pasteable) whatever the terminal width."""
    width = max(len(key) for key, _ in rows)
    print("\nrunners.ppo summary")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    threads = set_threads(args.threads)
    memory_kwargs = memory_kwargs_from_args(args)
    if args.n_steps * args.n_envs < args.batch_size:
        rollout = args.n_steps * args.n_envs
        raise UsageError(
            f"--batch-size {args.batch_size} exceeds one rollout (--n-steps x --n-envs = {rollout})"
        )

    # Build everything that can fail on bad input before anything is written to disk.
    vec_env_cls = SubprocVecEnv if args.subproc else DummyVecEnv
    env = make_vec_env(args.env, n_envs=args.n_envs, seed=args.seed, vec_env_cls=vec_env_cls)
    eval_env = make_vec_env(args.env, n_envs=min(args.n_envs, 8), seed=EVAL_SEED_OFFSET + args.seed)
    model = build_model(args, env, memory_kwargs)

    run_dir = (
        default_run_dir("runs", args.env, args.memory, args.seed)
        if args.logdir is None
        else Path(args.logdir)
    )
    run_dir = prepare_run_dir(run_dir, args.overwrite)
    config = {
        **vars(args),
        "logdir": str(run_dir),
        "memory_kwargs": memory_kwargs,
        "threads": threads,
        "eval_seed": EVAL_SEED_OFFSET + args.seed,
        "policy_class": type(model.policy).__name__,
        "command": " ".join(["python -m runners.ppo", *(sys.argv[1:] if argv is None else argv)]),
    }
    write_json(run_dir / "config.json", config)
    model.set_logger(configure(str(run_dir), ["csv", "tensorboard"]))

    per_env = lambda frames: max(frames // args.n_envs, 1)  # noqa: E731 - callbacks count calls, not frames
    eval_callback = EvalCallback(
        eval_env,
        n_eval_episodes=args.eval_episodes,
        eval_freq=per_env(args.eval_freq),
        log_path=str(run_dir / "eval"),
        best_model_save_path=str(run_dir / "best"),
        deterministic=not args.stochastic_eval,
        verbose=0,
    )
    checkpoints = CheckpointCallback(
        per_env(args.checkpoint_freq), str(run_dir / "checkpoints"), name_prefix="model"
    )
    start = time.time()
    model.learn(args.total_steps, callback=[eval_callback, checkpoints], progress_bar=not args.no_progress)
    elapsed = time.time() - start
    model_path = run_dir / "model.zip"
    model.save(model_path)

    final = evaluate_model(model, eval_env, args.eval_episodes, deterministic=not args.stochastic_eval)
    write_json(run_dir / "final_eval.json", final.as_dict())
    env.close()
    eval_env.close()
    low, high = final.success_ci95
    print_summary(
        [
            ("env / memory", f"{args.env} / {args.memory} {memory_kwargs or '(defaults)'}"),
            (
                "frames",
                f"{model.num_timesteps:,} in {elapsed:.0f} s ({model.num_timesteps / elapsed:,.0f} frames/s)",
            ),
            (
                "final success",
                f"{final.success_rate:.3f} [95% CI {low:.3f}-{high:.3f}] over {final.episodes} episodes "
                f"(held-out seeds from {EVAL_SEED_OFFSET + args.seed})",
            ),
            ("mean return / length", f"{final.mean_return:.3f} / {final.mean_length:.1f}"),
            ("model", str(model_path)),
            ("config", str(run_dir / "config.json")),
            ("checkpoints", str(run_dir / "checkpoints")),
            ("tensorboard", f"tensorboard --logdir {run_dir}"),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
