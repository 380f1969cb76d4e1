"""What a longer training sequence costs per frame: MemoryPPO's update for every memory and sequence length,
interleaved in one run.

    python benchmarks/sequence_cost.py                  # L = 32 ... 512, tlb gru lstm transformer none
    python benchmarks/sequence_cost.py --lengths 32 512 --memories tlb gru --device cuda

Each model trains on the Passive T-Maze at memory length 100 (``TLB-PassiveTMaze-L100-v0``, episodes of 101
steps), as the long-memory benchmark does: 8 envs x 512 steps per rollout, minibatches of 1024 steps, one
epoch, the memories at their default widths. A longer sequence means fewer, longer rows per minibatch and
gradients that reach further back; the frames per update stay the same. For every repeat each model first
collects a rollout (untimed), then its update (``MemoryPPO.train``) is timed; the median over repeats is
reported as microseconds per frame, with its ratio to the same memory at the shortest length (the
target: tlb at 512 at most 1.5x tlb at 32) and to gru (the strongest recurrent baseline) at the same length.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

import envs  # noqa: F401  (registers the T-Maze ids)
from agents import MemoryPPO

ENV_ID = "TLB-PassiveTMaze-L100-v0"
N_ENVS, N_STEPS, BATCH_SIZE = 8, 512, 1024


def build(memory: str, length: int, device: str) -> tuple[MemoryPPO, BaseCallback]:
    """A model ready to collect rollouts and train on them, with sequences of ``length`` steps."""
    env = make_vec_env(ENV_ID, n_envs=N_ENVS, seed=0)
    model = MemoryPPO(
        "MlpPolicy",
        env,
        n_steps=N_STEPS,
        batch_size=BATCH_SIZE,
        n_epochs=1,
        sequence_length=length,
        policy_kwargs=dict(memory=memory),
        device=device,
        seed=0,
    )
    model._setup_learn(total_timesteps=10**9, callback=None, progress_bar=False)
    return model, model._init_callback(None)


def timed_update(model: MemoryPPO, callback: BaseCallback, device: str) -> float:
    """Collect one rollout (untimed), then the seconds of one update on it."""
    model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    begin = time.perf_counter()
    model.train()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--memories", nargs="+", default=["tlb", "gru", "lstm", "transformer", "none"])
    parser.add_argument("--lengths", nargs="+", type=int, default=[32, 64, 128, 256, 512])
    parser.add_argument("--repeats", type=int, default=3, help="timed updates per model (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N")
    parser.add_argument("--json", default=None, help="also write the medians and ratios to this JSON file")
    args = parser.parse_args()
    if any(N_STEPS % length or BATCH_SIZE % length for length in args.lengths):
        parser.error(f"each length must divide n_steps={N_STEPS} and batch_size={BATCH_SIZE}")
    torch.set_num_threads(args.threads)

    models = {
        (memory, length): build(memory, length, args.device)
        for memory in args.memories
        for length in args.lengths
    }
    for model, callback in models.values():  # warm-up: first-call allocations and caches
        timed_update(model, callback, args.device)
    times: dict[tuple[str, int], list[float]] = {key: [] for key in models}
    for _ in range(args.repeats):  # interleaved, so drifts of the machine's speed hit every cell alike
        for key, (model, callback) in models.items():
            times[key].append(timed_update(model, callback, args.device))

    frames = N_ENVS * N_STEPS
    per_frame = {key: 1e6 * statistics.median(values) / frames for key, values in times.items()}
    shortest = min(args.lengths)
    print(
        f"MemoryPPO update on {ENV_ID}: {N_ENVS} envs x {N_STEPS} steps, minibatches of {BATCH_SIZE}, "
        f"1 epoch, {args.threads} thread(s), {args.device}; median of {args.repeats} updates"
    )
    print(
        f"microseconds per frame (x: ratio to the same memory at L={shortest}; "
        "gru: ratio to gru at the same L)"
    )
    header = ["memory", *(f"L={length}" for length in args.lengths)]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    results: dict[str, dict[str, dict[str, float]]] = {}
    for memory in args.memories:
        cells = []
        results[memory] = {}
        for length in args.lengths:
            cost = per_frame[memory, length]
            to_shortest = cost / per_frame[memory, shortest]
            to_gru = cost / per_frame["gru", length] if ("gru", length) in per_frame else float("nan")
            results[memory][str(length)] = {
                "us_per_frame": cost,
                "to_shortest": to_shortest,
                "to_gru": to_gru,
            }
            cells.append(f"{cost:,.0f} ({to_shortest:.2f}x, gru {to_gru:.2f}x)")
        print(f"| {memory} | " + " | ".join(cells) + " |")
    if "tlb" in args.memories and 512 in args.lengths and 32 in args.lengths:
        ratio = per_frame["tlb", 512] / per_frame["tlb", 32]
        print(
            f"tlb at L=512 / tlb at L=32: {ratio:.2f} (target <= 1.5: {'met' if ratio <= 1.5 else 'not met'})"
        )
    if args.json:
        settings = {key: value for key, value in vars(args).items() if key != "json"}
        Path(args.json).write_text(json.dumps({"settings": settings, "per_frame": results}, indent=1))


if __name__ == "__main__":
    main()
