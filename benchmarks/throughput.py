"""Training throughput: MemoryPPO(tlb) against anchors measured in the same run, interleaved.

    python benchmarks/throughput.py                        # BabyAI-GoToLocal-v0, BabyAI encoder, 16 envs
    python benchmarks/throughput.py --encoder flat         # same, SB3's CombinedExtractor
    python benchmarks/throughput.py --task cartpole-novel  # CartPole without velocities, sb3-contrib's test

``--task babyai`` (default): MemoryPPO(tlb), sb3-contrib's RecurrentPPO, SB3's PPO and MemoryPPO with
``memory="none"``, all with the same observation encoder, n_envs, n_steps, batch size, epochs and memory
width. Targets: tlb >= 3x RecurrentPPO, >= 0.6x SB3's PPO, >= 0.85x MemoryPPO(none).

``--task cartpole-novel``: MemoryPPO with tlb, lstm and none on CartPole observing only positions, with
sb3-contrib's RecurrentPPO test settings (8 envs, n_steps 128, batch 256, 10 epochs, lr 7e-4,
net_arch=dict(vf=[64], pi=[]), ortho_init False, VecNormalize; the settings of
``benchmarks/memory_tasks.py --task cartpole-novel``). There the memory is most of the work. Target:
tlb >= 0.5x lstm. Also the drop-in comparison: sb3-contrib's ``RecurrentPPO("MlpLstmPolicy", ...)`` and
``MemoryPPO("MlpLstmPolicy", ...)`` built with the same arguments (only the class name differs; LSTM of
RecurrentPPO's default size, critic LSTM included), and the speed-up of the second over the first.

On a GPU (``--device cuda``), with the envs in subprocesses (``--subproc``) and more of them
(``--n-envs 64``), the measurement of the issue's GPU targets (``benchmarks/gpu_checks.sh``):

    python benchmarks/throughput.py --device cuda --n-envs 64 --subproc --models tlb none --threads 4

tlb >= 0.9x MemoryPPO(none) there, and >= 3x its own frames/s on one CPU thread (``--device cpu
--threads 1``). ``--models`` picks the models (``lstm`` is MemoryPPO's, ``recurrentppo`` sb3-contrib's);
each MemoryPPO line also says where its time went (env stepping, policy steps, updates).

The models are interleaved round by round in one process so machine noise hits them alike. Prints frames
per second (rollout + training) and the ratios. ``--count-flops`` then trains each model for one more
rollout under torch's FLOP counter and prints its arithmetic per rollout (the fused LSTM kernels of
RecurrentPPO and of MemoryPPO(lstm) are invisible to the counter), and on BabyAI the least time tlb's extra
arithmetic over MemoryPPO(none) takes at one thread's peak matrix-multiply rate, against the time the
0.85x target allows it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import CombinedExtractor
from torch.utils.flop_counter import FlopCounterMode

from agents import MemoryPPO
from agents.ppo import TimeSpent
from envs import make_vec_env
from envs.make import vec_env_class
from policies.encoder import BabyAIFeaturesExtractor
from studies.machine import single_thread_gflops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory_tasks import MEMORY_KWARGS, TASKS, make_envs  # noqa: E402

NONE_RATIO_TARGET = 0.85  # BabyAI: MemoryPPO(tlb) frames/s against MemoryPPO(none)'s


# --models: name on the command line -> label in the output.
BABYAI_MODELS = {
    "tlb": "MemoryPPO(tlb)",
    "recurrentppo": "RecurrentPPO(lstm)",
    "ppo": "PPO(no memory)",
    "none": "MemoryPPO(none)",
    "lstm": "MemoryPPO(lstm)",
}
DEFAULT_BABYAI_MODELS = ("tlb", "recurrentppo", "ppo", "none")


def babyai_builders(args: argparse.Namespace) -> dict[str, Callable[[], BaseAlgorithm]]:
    common: dict[str, Any] = dict(
        n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs, seed=0, device=args.device
    )
    # "babyai": all use our BabyAI encoder; "flat": all use SB3's CombinedExtractor (flattened cell codes,
    # direction and mission ids), where the memory's own cost is most of the work.
    encoder = (
        dict(features_extractor_class=BabyAIFeaturesExtractor)
        if args.encoder == "babyai"
        else dict(features_extractor_class=CombinedExtractor)
    )

    def env() -> Any:
        return make_vec_env(args.env, n_envs=args.n_envs, seed=0, vec_env_cls=vec_env_class(args.subproc))

    def memory_ppo(memory: str, memory_kwargs: dict[str, Any]) -> BaseAlgorithm:
        return MemoryPPO(
            "MultiInputPolicy",
            env(),
            sequence_length=args.sequence_length,
            policy_kwargs=dict(memory=memory, memory_kwargs=memory_kwargs, **encoder),
            **common,
        )

    builders: dict[str, Callable[[], BaseAlgorithm]] = {
        "tlb": lambda: memory_ppo("tlb", dict(d_model=args.width, chunk_size=8, n_latents=4)),
        "recurrentppo": lambda: RecurrentPPO(
            "MultiInputLstmPolicy",
            env(),
            policy_kwargs=dict(lstm_hidden_size=args.width, **encoder),
            **common,
        ),
        "ppo": lambda: PPO("MultiInputPolicy", env(), policy_kwargs=encoder, **common),
        "none": lambda: memory_ppo("none", {}),
        "lstm": lambda: memory_ppo("lstm", dict(hidden_size=args.width)),
    }
    return {BABYAI_MODELS[name]: builders[name] for name in args.models}


def cartpole_builders(args: argparse.Namespace) -> dict[str, Callable[[], BaseAlgorithm]]:
    task = TASKS["cartpole-novel"]

    def memory_ppo(memory: str) -> BaseAlgorithm:
        ppo = dict(task.ppo)
        train_env, _ = make_envs("cartpole-novel", ppo.pop("n_envs"), seed=0)
        memory_kwargs = dict(MEMORY_KWARGS[memory])
        if args.width is not None and memory != "none":
            memory_kwargs["d_model" if "d_model" in memory_kwargs else "hidden_size"] = args.width
        return MemoryPPO(
            "MlpPolicy",
            train_env,
            seed=0,
            device=args.device,
            policy_kwargs=dict(memory=memory, memory_kwargs=memory_kwargs, **task.policy),
            **ppo,
        )

    def drop_in(algorithm: type[BaseAlgorithm]) -> BaseAlgorithm:
        ppo = dict(task.ppo)
        train_env, _ = make_envs("cartpole-novel", ppo.pop("n_envs"), seed=0)
        ppo.pop("sequence_length")  # MemoryPPO's default: the largest divisor of n_steps and batch_size <= 32
        return algorithm(
            "MlpLstmPolicy", train_env, seed=0, device=args.device, policy_kwargs=dict(task.policy), **ppo
        )

    builders = {
        f"MemoryPPO({memory})": (lambda m=memory: memory_ppo(m)) for memory in ("tlb", "lstm", "none")
    }
    builders["RecurrentPPO(MlpLstmPolicy)"] = lambda: drop_in(RecurrentPPO)
    builders["MemoryPPO(MlpLstmPolicy)"] = lambda: drop_in(MemoryPPO)
    return builders


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=["babyai", "cartpole-novel"], default="babyai")
    parser.add_argument("--env", default="BabyAI-GoToLocal-v0", help="babyai task only")
    parser.add_argument("--n-envs", type=int, default=16, help="babyai task only")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=list(BABYAI_MODELS),
        default=list(DEFAULT_BABYAI_MODELS),
        help="babyai task only: which to measure (lstm: MemoryPPO's; recurrentppo: sb3-contrib's)",
    )
    parser.add_argument("--device", default="cpu", help="torch device of every model: cpu, cuda, cuda:N")
    parser.add_argument(
        "--subproc",
        action="store_true",
        help="babyai task only: step the envs in subprocesses (runners.ppo's SubprocVecEnv), not one "
        "after another in the benchmark's process",
    )
    parser.add_argument("--json", default=None, help="also write the frames/s and ratios to this JSON file")
    parser.add_argument("--n-steps", type=int, default=128, help="babyai task only")
    parser.add_argument("--batch-size", type=int, default=256, help="babyai task only")
    parser.add_argument("--n-epochs", type=int, default=4, help="babyai task only")
    parser.add_argument("--sequence-length", type=int, default=32, help="babyai task only")
    parser.add_argument(
        "--width",
        type=int,
        default=None,
        help="memory width (tlb d_model, lstm hidden size); default 128 on babyai, 64 on cartpole-novel "
        "(benchmarks/memory_tasks.py's widths)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (after one warm-up round)")
    parser.add_argument("--rollouts-per-round", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--count-flops",
        action="store_true",
        help="then count each model's arithmetic per rollout (see above)",
    )
    parser.add_argument(
        "--encoder", choices=["babyai", "flat"], default="babyai", help="babyai task only: shared by all"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this machine has no CUDA device")

    if args.task == "babyai":
        args.width = args.width or 128
        models = {name: build() for name, build in babyai_builders(args).items()}
        frames_per_rollout = args.n_steps * args.n_envs
        header = (
            f"{args.env}: n_envs={args.n_envs}{' in subprocesses' if args.subproc else ''} "
            f"n_steps={args.n_steps} batch={args.batch_size} epochs={args.n_epochs} width={args.width} "
            f"encoder={args.encoder} device={args.device}"
        )
    else:
        models = {name: build() for name, build in cartpole_builders(args).items()}
        ppo = TASKS["cartpole-novel"].ppo
        frames_per_rollout = ppo["n_steps"] * ppo["n_envs"]
        header = (
            f"CartPole without velocities: n_envs={ppo['n_envs']} n_steps={ppo['n_steps']} "
            f"batch={ppo['batch_size']} epochs={ppo['n_epochs']} width={args.width or 64}"
        )
    frames_per_round = args.rollouts_per_round * frames_per_rollout
    seconds = dict.fromkeys(models, 0.0)
    for round_index in range(args.rounds + 1):
        for name, model in models.items():
            begin = time.perf_counter()
            model.learn(frames_per_round, reset_num_timesteps=False)
            if round_index > 0:  # round 0 warms up caches and allocators
                seconds[name] += time.perf_counter() - begin
            elif isinstance(model, MemoryPPO):
                model.time_spent = TimeSpent()  # where the measured rounds' time goes, without the warm-up
    fps = {name: args.rounds * frames_per_round / seconds[name] for name in models}

    print(f"{header}, {args.threads} torch thread(s), {args.rounds} x {frames_per_round} frames each")
    for name, value in fps.items():
        split = models[name].time_spent.summary(seconds[name]) if isinstance(models[name], MemoryPPO) else ""
        print(f"  {name:28s} {value:8.0f} frames/s   {split}")
    ratios: dict[str, float] = {}
    if args.task == "babyai":
        tlb = fps.get("MemoryPPO(tlb)")
        for anchor, label, target in (
            ("RecurrentPPO(lstm)", "RecurrentPPO   ", "3"),
            ("PPO(no memory)", "PPO            ", "0.6"),
            ("MemoryPPO(none)", "MemoryPPO(none)", f"{NONE_RATIO_TARGET}"),
            ("MemoryPPO(lstm)", "MemoryPPO(lstm)", None),
        ):
            if tlb is not None and anchor in fps:
                ratios[f"tlb / {anchor}"] = tlb / fps[anchor]
                goal = f" (target >= {target})" if target is not None else ""
                print(f"  ratio tlb / {label} = {tlb / fps[anchor]:.2f}{goal}")
    else:
        tlb = fps["MemoryPPO(tlb)"]
        print(f"  ratio tlb / MemoryPPO(lstm) = {tlb / fps['MemoryPPO(lstm)']:.2f} (target >= 0.5)")
        drop_in = fps["MemoryPPO(MlpLstmPolicy)"] / fps["RecurrentPPO(MlpLstmPolicy)"]
        print(f"  ratio MemoryPPO / RecurrentPPO, same MlpLstmPolicy arguments = {drop_in:.2f}")
    if args.json:
        settings = {key: value for key, value in vars(args).items() if key != "json"}
        Path(args.json).write_text(json.dumps({"settings": settings, "fps": fps, "ratios": ratios}, indent=1))
    if args.count_flops:
        print_arithmetic(models, fps, frames_per_rollout, babyai=args.task == "babyai")


def print_arithmetic(
    models: dict[str, BaseAlgorithm], fps: dict[str, float], frames_per_rollout: int, babyai: bool
) -> None:
    """Each model's arithmetic per rollout (collection + update), counted while it trains one more rollout;
    on BabyAI also the least time tlb's arithmetic beyond MemoryPPO(none) needs, at one thread's peak
    matrix-multiply rate, beside the extra time per rollout that the 0.85x target allows."""
    gflop = {}
    for name, model in models.items():
        with FlopCounterMode(display=False) as counter:
            model.learn(frames_per_rollout, reset_num_timesteps=False)
        gflop[name] = counter.get_total_flops() / 1e9
    counted = "torch's FLOP counter, blind to fused LSTMs"
    print(f"  arithmetic per rollout of {frames_per_rollout} frames ({counted}):")
    for name, value in gflop.items():
        print(f"    {name:28s} {value:8.1f} GFLOP")
    if babyai and {"MemoryPPO(tlb)", "MemoryPPO(none)"} <= set(gflop):
        peak = single_thread_gflops()
        extra = gflop["MemoryPPO(tlb)"] - gflop["MemoryPPO(none)"]
        none_seconds = frames_per_rollout / fps["MemoryPPO(none)"]
        allowed = none_seconds * (1 / NONE_RATIO_TARGET - 1)
        print(
            f"  tlb beyond none: {extra:.1f} GFLOP per rollout, at least {extra / peak:.2f} s at one "
            f"thread's matmul peak ({peak:.0f} GFLOP/s); the {NONE_RATIO_TARGET}x target allows "
            f"{allowed:.2f} s more than none's {none_seconds:.2f} s"
        )


if __name__ == "__main__":
    main()
