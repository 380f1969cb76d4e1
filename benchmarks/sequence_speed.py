"""Time one ``memory.sequence`` call for every memory, interleaved in one run.

    python benchmarks/sequence_speed.py            # B=16, T=128, D=128, 1 torch thread
    python benchmarks/sequence_speed.py --device cuda --batch 64 --length 1024 --memories tlb lstm

Prints the median milliseconds per call (forward only, and forward + backward) and the ratio to the lstm
anchor measured in the same run; then each memory's arithmetic per forward + backward (GFLOP) and the rate
it ran at (GFLOP/s), beside one torch thread's peak matrix-multiply rate on this machine: a memory whose
arithmetic is r times the lstm's cannot take less than about r times its time where both multiply at the
same rate. On a GPU (``--device cuda``) the timings wait for the device (``torch.cuda.synchronize``) and
the arithmetic section, which is about one CPU thread, is left out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from policies import Memory, make_memory
from studies.machine import single_thread_gflops

# --memories: name -> (label in the output, builder at width d).
MEMORIES: dict[str, tuple[str, Callable[[int], Memory]]] = {
    "tlb": ("tlb (N=4, K=8)", lambda d: make_memory("tlb", d, d_model=d, n_latents=4, chunk_size=8)),
    "lstm": ("lstm", lambda d: make_memory("lstm", d, hidden_size=d)),
    "gru": ("gru", lambda d: make_memory("gru", d, hidden_size=d)),
    "transformer": ("transformer (W=16)", lambda d: make_memory("transformer", d, d_model=d, window=16)),
}


def training_gflop(memory: nn.Module, x: torch.Tensor, starts: torch.Tensor) -> tuple[float, str]:
    """The arithmetic of one ``sequence`` forward + backward in GFLOP, and how it was obtained.

    torch's FLOP counter sees every matrix multiply except inside the fused LSTM kernel (oneDNN on CPU),
    so an ``nn.LSTM`` is counted by hand, as the counter counts the others: per step, the 4 gates'
    ``hidden x (input + hidden)`` multiply-adds forward; backward the same for the weights' gradients,
    ``hidden x hidden`` for the state's, and ``hidden x input`` for the input's if it needs one.
    """
    lstm = next((module for module in memory.modules() if isinstance(module, nn.LSTM)), None)
    if lstm is not None:
        batch, length, _ = x.shape
        hidden, inputs = lstm.hidden_size, lstm.input_size
        gates = 4 * hidden
        per_step = 2 * gates * (inputs + hidden) + gates * (hidden + (inputs if x.requires_grad else 0))
        return 2 * per_step * batch * length / 1e9, "by hand"
    with FlopCounterMode(display=False) as counter:
        y, _ = memory.sequence(x, memory.initial_state(x.shape[0]), starts)
        y.square().mean().backward()
    memory.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 1e9, "counted"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--episode-start-prob", type=float, default=1 / 40, help="episode ends inside T")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N")
    parser.add_argument(
        "--memories",
        nargs="+",
        choices=list(MEMORIES),
        default=list(MEMORIES),
        help="which memories to time (lstm, the anchor, is always among them)",
    )
    parser.add_argument("--json", default=None, help="also write the medians and ratios to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this machine has no CUDA device")

    def wait() -> None:
        """Timers read after the device has finished (kernels are launched asynchronously)."""
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    d = args.width
    chosen = dict.fromkeys(["lstm", *args.memories])  # the anchor first, no repeats
    memories = {MEMORIES[name][0]: MEMORIES[name][1](d).to(device) for name in chosen}
    x = torch.randn(args.batch, args.length, d, device=device)
    starts = torch.rand(args.batch, args.length, device=device) < args.episode_start_prob
    forward: dict[str, list[float]] = {name: [] for name in memories}
    train: dict[str, list[float]] = {name: [] for name in memories}
    for _ in range(args.repeats + 2):
        for name, memory in memories.items():  # interleaved, so machine noise hits all alike
            state = memory.initial_state(args.batch)
            wait()
            begin = time.perf_counter()
            with torch.no_grad():
                memory.sequence(x, state, starts)
            wait()
            forward[name].append(time.perf_counter() - begin)
            begin = time.perf_counter()
            y, _ = memory.sequence(x, state, starts)
            y.square().mean().backward()
            wait()
            train[name].append(time.perf_counter() - begin)
    threads = f"{args.threads} thread(s)" if device.type == "cpu" else str(device)
    print(f"sequence(), B={args.batch} T={args.length} D={d}, {threads}: median ms per call")
    results: dict[str, dict[str, dict[str, float]]] = {}
    for label, times in (("forward", forward), ("forward + backward", train)):
        anchor = statistics.median(times["lstm"][2:])
        print(f"  {label}:")
        results[label] = {}
        for name, samples in times.items():
            median = statistics.median(samples[2:])
            print(f"    {name:20s} {median * 1e3:8.1f} ms   {median / anchor:5.2f}x lstm")
            results[label][name] = {"ms": median * 1e3, "x_lstm": median / anchor}
    if args.json:
        settings = {key: value for key, value in vars(args).items() if key != "json"}
        Path(args.json).write_text(json.dumps({"settings": settings, "median": results}, indent=1))

    if device.type != "cpu":
        return
    peak = single_thread_gflops()
    print(f"  arithmetic of forward + backward (one thread's matmul peak here: {peak:.0f} GFLOP/s):")
    arithmetic = {name: training_gflop(memory, x, starts) for name, memory in memories.items()}
    lstm_gflop = arithmetic["lstm"][0]
    for name, (gflop, how) in arithmetic.items():
        rate = gflop / statistics.median(train[name][2:])
        ratio = gflop / lstm_gflop
        print(f"    {name:20s} {gflop:8.2f} GFLOP ({how}) {ratio:5.2f}x lstm, ran at {rate:5.1f} GFLOP/s")


if __name__ == "__main__":
    main()
