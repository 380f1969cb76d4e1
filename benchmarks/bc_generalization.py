"""Behavioural cloning from the BabyAI bot, and how far it generalizes: tlb against lstm and transformer.

    python benchmarks/bc_generalization.py               # 5000 demos, 15 min of BC per memory (~50 min)
    python benchmarks/bc_generalization.py --episodes 200 --minutes 1 --eval-episodes 20   # a quick check
    python benchmarks/bc_generalization.py --demo-noise 0    # the bot's plain demos, runs/demos/<env>.npz
    python benchmarks/bc_generalization.py --relabel none    # the demos' own colours and types only

Every memory gets the same budget: the same GoToLocal demos (generated with ``agents.demo_generation``,
as ``runners.demos`` does, or reused from ``--demos``; a longer file is cut to its first ``--episodes``),
the same validation split, the same wall-clock minutes of BC on one torch thread, the same encoder. Each
trained policy is then evaluated (greedy actions by default, ``--sampled`` to sample them as BabyAI's
evaluator does; the same levels for every memory) on:

* unseen GoToLocal levels (seeds from ``envs.suites.HELDOUT_SEED_START`` = 1e9, never used by demos);
* the held-out side of the ``room-to-maze`` suite: GoTo, a 3x3 maze of rooms;
* the held-out side of the ``held-out-pairs`` suite: GoToLocal asking only for some color/type pairs.
  Plain GoToLocal demos do contain those pairs; this column is a zero-shot test only with demos of the
  suite's training env (``--env TLB-GoToLocalHeldOutPairs-Train-v0``).

The demos are DART demos by default (``--demo-noise 0.3``, in ``runs/demos/<env>-noise0.3.npz``): the bot
executes a random move 30% of the time and the demos store its correcting action, so they show how to
leave the states a cloned policy reaches after a mistake. tlb gains most from them (over three seeds
0.790 on plain demos, 0.900 on DART demos; tlb-paper 0.863 and 0.867; see docs/results/bc-benchmark.md): on
plain demos today's tlb, whose input shift hands it the previous observations, repeats its previous action
into walls until the time limit.

Each training episode is shown under a random relabelling of its colours and of the types ball, box and
key (``--relabel colors+types``, the default; ``envs.relabelling``), a symmetry of GoToLocal: the bot acts the
same in the relabelled level. It stops the memories from learning the demos' colour/type combinations by
heart. Over three seeds it lifted tlb from 0.900 to 0.990 and lstm from 0.867 to 0.980 on DART demos, and
validation accuracy from about 0.80 to 0.94-0.97 (docs/results/bc-benchmark.md). ``--relabel none`` trains
on the demos as they are.

Prints one table: epochs done, training frames per second, validation accuracy, and success rates with
95% Wilson intervals; plus the time demo generation and one BC epoch take at the full size (5000 demos),
estimated from this run's measured rates.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.logger import configure
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv

from agents.bc import LR_SCHEDULES, BCConfig, BCTrainer, ImitationDefaultsWarning
from agents.command_line import UsageError, add_memory_option_flags, memory_kwargs_from_args
from agents.demo_generation import append_bot_demos
from agents.demos import Demos, load_demos
from agents.evaluation import EvaluationResult, evaluate_model, protocol_name
from agents.factory import build_model
from envs import make_vec_env
from envs.relabelling import RELABELLINGS
from envs.suites import HELDOUT_SEED_START, get_suite

FULL_SIZE_EPISODES = 5000
EVAL_ENVS = 8


def prepare_demos(args: argparse.Namespace) -> tuple[Demos, float | None]:
    """The first ``args.episodes`` demos of ``args.demos``, generating (appending) what is missing.
    Returns them and the generation rate in episodes per second (None when nothing was generated)."""
    suffix = f"-noise{args.demo_noise:g}" if args.demo_noise else ""
    path = Path(args.demos or f"runs/demos/{args.env}{suffix}.npz")
    have = 0
    if path.exists():
        stored = load_demos(path, env_id=args.env)
        try:
            stored.check_generated_with(args.demo_noise, str(path))
        except ValueError as error:
            raise SystemExit(str(error)) from None
        have = stored.n_episodes
    rate = None
    if have < args.episodes:
        missing = args.episodes - have
        start = time.perf_counter()
        append_bot_demos(path, args.env, missing, workers=args.workers, noise=args.demo_noise)
        rate = missing / (time.perf_counter() - start)
    demos = load_demos(path, env_id=args.env)
    return demos.subset(np.arange(args.episodes)), rate


def evaluation_envs(args: argparse.Namespace) -> dict[str, VecEnv]:
    """Fresh evaluation envs: built anew for every memory, so each sees the same levels."""
    envs = {"GoToLocal unseen": make_vec_env(args.env, n_envs=EVAL_ENVS, seed=HELDOUT_SEED_START + args.seed)}
    for suite_name in args.suites:
        for side in get_suite(suite_name, args.env).heldout:
            envs[f"{suite_name}: {side.name}"] = side.make_vec_env(EVAL_ENVS, seed=args.seed)
    return envs


def cell(result: EvaluationResult) -> str:
    low, high = result.success_ci95
    return f"{result.success_rate:.2f} [{low:.2f}-{high:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="BabyAI-GoToLocal-v0", help="the demos' env")
    parser.add_argument(
        "--demos", default=None, help="demos file, reused (default runs/demos/<env>.npz, <env>-noise<p>.npz)"
    )
    parser.add_argument("--episodes", type=int, default=FULL_SIZE_EPISODES, help="demos to train on")
    parser.add_argument("--workers", type=int, default=2, help="processes generating demos")
    parser.add_argument(
        "--demo-noise",
        type=float,
        default=0.3,
        help="DART: probability of a random move while the bot demonstrates (see runners.demos --noise); "
        "0 for the bot's plain demos (default: 0.3)",
    )
    parser.add_argument("--memories", nargs="+", default=["tlb", "lstm", "transformer"])
    add_memory_option_flags(
        parser.add_argument_group("memory options (as runners.bc's), given to every memory of --memories")
    )
    parser.add_argument("--minutes", type=float, default=15.0, help="BC wall-clock budget per memory")
    parser.add_argument("--eval-episodes", type=int, default=200, help="episodes per evaluation env")
    parser.add_argument("--suites", nargs="*", default=["room-to-maze", "held-out-pairs"])
    parser.add_argument("--features-dim", type=int, default=128, help="observation encoder width")
    parser.add_argument("--batch-episodes", type=int, default=64, help="whole episodes per minibatch")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument(
        "--lr-schedule", choices=LR_SCHEDULES, default="constant", help="cosine: decay to 0 over --minutes"
    )
    parser.add_argument("--ent-coef", type=float, default=0.0, help="entropy bonus weight")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay (0: Adam)")
    parser.add_argument(
        "--keep-best", action="store_true", help="evaluate the weights of the best validation epoch"
    )
    parser.add_argument(
        "--relabel",
        choices=RELABELLINGS,
        default="colors+types",
        help="train on each episode under random colours and ball/box/key types (default), or colours "
        "only; none: the demos as they are",
    )
    parser.add_argument(
        "--ema-decay", type=float, default=0.0, help="evaluate a moving average of the weights (0: off)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sampled", action="store_true", help="sample actions in the evaluations (default: greedy)"
    )
    parser.add_argument(
        "--save-dir",
        default=None,
        help="save each trained model here (bc-<memory>.zip), with its per-epoch training log "
        "(bc-<memory>-log/progress.csv: validation accuracy and loss after every epoch)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:  # before any demo is generated: a memory flag that some memory does not take ends the run here
        memory_kwargs = {memory: memory_kwargs_from_args(args, memory) for memory in args.memories}
    except UsageError as error:
        raise SystemExit(str(error)) from None

    demos, generation_rate = prepare_demos(args)
    print(
        f"demos: {demos.n_episodes} episodes, {demos.n_steps} steps of {demos.env_id} "
        f"({demos.n_steps / demos.n_episodes:.1f} steps per episode)"
    )
    rows = []
    fps = []
    for memory in args.memories:
        set_random_seed(args.seed)
        model = build_model(
            make_vec_env(args.env, n_envs=2, seed=args.seed),
            memory,
            memory_kwargs=memory_kwargs[memory],
            features_dim=args.features_dim,
            seed=args.seed,
            device="cpu",
        )
        config = BCConfig(
            epochs=1_000_000,  # the time budget ends training
            batch_episodes=args.batch_episodes,
            lr=args.lr,
            eval_freq=0,
            eval_episodes=args.eval_episodes,
            total_minutes=args.minutes,
            seed=args.seed,
            lr_schedule=args.lr_schedule,
            ent_coef=args.ent_coef,
            weight_decay=args.weight_decay,
            keep_best=args.keep_best,
            relabel=args.relabel,
            ema_decay=args.ema_decay,
        )
        # The per-epoch log shows when validation accuracy left its plateau, which the final row cannot.
        logger = configure(str(Path(args.save_dir) / f"bc-{memory}-log"), ["csv"]) if args.save_dir else None
        with warnings.catch_warnings():
            # The benchmark compares the memories as --memories and the flags name them: "tlb" is tlb's RL
            # defaults here, not the imitation preset runners.bc gives it (tlb-paper is that preset).
            warnings.simplefilter("ignore", ImitationDefaultsWarning)
            trainer = BCTrainer(model, demos, config, logger=logger)
        history = trainer.train(progress=False)
        results = {
            name: evaluate_model(model, env, args.eval_episodes, deterministic=not args.sampled)
            for name, env in evaluation_envs(args).items()
        }
        if args.save_dir:
            model.save(Path(args.save_dir) / f"bc-{memory}.zip")
            trainer.logger.close()
        last = history[-1]
        # With --keep-best the evaluated weights are those of the best validation epoch.
        accuracy = trainer.best_val_accuracy if trainer.best_epoch is not None else last.val_accuracy
        fps.append(trainer.frames_per_second)
        rows.append((memory, last.epoch, trainer.frames_per_second, accuracy, results))
        kept = f" (kept epoch {trainer.best_epoch})" if trainer.best_epoch is not None else ""
        print(
            f"{memory}: {last.epoch} epochs, {trainer.frames:,} frames, "
            f"{trainer.frames_per_second:,.0f} frames/s, validation accuracy {accuracy:.3f}{kept}"
        )

    columns = list(rows[0][4])
    header = ["memory", "epochs", "frames/s", "val acc", *columns]
    table = [
        [memory, str(epochs), f"{speed:,.0f}", f"{accuracy:.3f}", *(cell(results[c]) for c in columns)]
        for memory, epochs, speed, accuracy, results in rows
    ]
    widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]
    print(
        f"\nBC on {demos.n_episodes} {demos.env_id} demos (DART noise {args.demo_noise:g}, "
        f"relabelling {args.relabel}), "
        f"{args.minutes:g} min per memory, "
        f"{args.threads} torch thread(s); success rate [95% CI] over {args.eval_episodes} episodes per env, "
        f"{protocol_name(not args.sampled)} actions"
    )
    for line in [header, ["-" * w for w in widths], *table]:
        print("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip())

    steps_per_episode = demos.n_steps / demos.n_episodes
    full_frames = FULL_SIZE_EPISODES * steps_per_episode
    print(f"\nat full size ({FULL_SIZE_EPISODES} demos, ~{full_frames:,.0f} frames):")
    if generation_rate is not None:
        print(
            f"  demo generation  ~{FULL_SIZE_EPISODES / generation_rate:.0f} s "
            f"({generation_rate:.0f} episodes/s with {args.workers} workers, this run)"
        )
    for (memory, *_), speed in zip(rows, fps):
        print(f"  one BC epoch     ~{0.9 * full_frames / speed:.1f} s for {memory} (90% of the demos train)")


if __name__ == "__main__":
    main()
