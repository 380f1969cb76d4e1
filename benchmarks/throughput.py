"""Training throughput on BabyAI: MemoryPPO(tlb) against sb3-contrib's RecurrentPPO and SB3's PPO.

    python benchmarks/throughput.py                     # BabyAI-GoToLocal-v0, 16 envs, n_steps 128

All three use the same observation encoder (policies.encoder.BabyAIFeaturesExtractor), the same n_envs,
n_steps, batch size, epochs and memory width; they are interleaved round by round in one process so
machine noise hits them alike. Prints frames per second (rollout + training) and the ratios; the targets
are MemoryPPO(tlb) >= 3x RecurrentPPO and >= 0.6x memoryless PPO.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import CombinedExtractor

from agents import MemoryPPO
from envs import make_vec_env
from policies.encoder import BabyAIFeaturesExtractor


def builders(args: argparse.Namespace) -> dict[str, Callable[[], BaseAlgorithm]]:
    common: dict[str, Any] = dict(
        n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs, seed=0, device="cpu"
    )
    # "babyai": all three use our BabyAI encoder; "flat": all three use SB3's CombinedExtractor (flattened
    # cell codes, direction and mission ids), where the memory's own cost is most of the work.
    encoder = (
        dict(features_extractor_class=BabyAIFeaturesExtractor)
        if args.encoder == "babyai"
        else dict(features_extractor_class=CombinedExtractor)
    )

    def env() -> Any:
        return make_vec_env(args.env, n_envs=args.n_envs, seed=0)

    return {
        "MemoryPPO(tlb)": lambda: MemoryPPO(
            "MultiInputPolicy",
            env(),
            sequence_length=args.sequence_length,
            policy_kwargs=dict(
                memory="tlb", memory_kwargs=dict(d_model=args.width, chunk_size=8, n_latents=4), **encoder
            ),
            **common,
        ),
        "RecurrentPPO(lstm)": lambda: RecurrentPPO(
            "MultiInputLstmPolicy",
            env(),
            policy_kwargs=dict(lstm_hidden_size=args.width, **encoder),
            **common,
        ),
        "PPO(no memory)": lambda: PPO("MultiInputPolicy", env(), policy_kwargs=encoder, **common),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="BabyAI-GoToLocal-v0")
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument("--n-steps", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-epochs", type=int, default=4)
    parser.add_argument("--sequence-length", type=int, default=32)
    parser.add_argument("--width", type=int, default=128, help="memory width: tlb d_model, lstm hidden size")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (after one warm-up round)")
    parser.add_argument("--rollouts-per-round", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--encoder", choices=["babyai", "flat"], default="babyai", help="shared by all three")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    models = {name: build() for name, build in builders(args).items()}
    frames_per_round = args.rollouts_per_round * args.n_steps * args.n_envs
    seconds = dict.fromkeys(models, 0.0)
    for round_index in range(args.rounds + 1):
        for name, model in models.items():
            begin = time.perf_counter()
            model.learn(frames_per_round, reset_num_timesteps=False)
            if round_index > 0:  # round 0 warms up caches and allocators
                seconds[name] += time.perf_counter() - begin
    fps = {name: args.rounds * frames_per_round / seconds[name] for name in models}

    print(
        f"{args.env}: n_envs={args.n_envs} n_steps={args.n_steps} batch={args.batch_size} "
        f"epochs={args.n_epochs} width={args.width} encoder={args.encoder}, {args.threads} torch thread(s), "
        f"{args.rounds} x {frames_per_round} frames each"
    )
    for name, value in fps.items():
        print(f"  {name:20s} {value:8.0f} frames/s")
    tlb = fps["MemoryPPO(tlb)"]
    print(f"  ratio tlb / RecurrentPPO = {tlb / fps['RecurrentPPO(lstm)']:.2f} (target >= 3)")
    print(f"  ratio tlb / PPO          = {tlb / fps['PPO(no memory)']:.2f} (target >= 0.6)")


if __name__ == "__main__":
    main()
