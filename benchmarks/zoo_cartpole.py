"""The RL Zoo's RecurrentPPO entry for CartPole without velocities, trained with MemoryPPO two ways.

The entry is rl_zoo3's ``hyperparams/ppo_lstm.yml`` ``CartPoleNoVel-v1``, copied unchanged into
``benchmarks/zoo/ppo_lstm_cartpolenovel.yml``. Variants (each one training per seed, run one at a time):

- ``ppo``: ``python -m runners.ppo --env TLB-CartPoleNoVel-v1 --hyperparams <entry>``
- ``zoo``: ``python -m runners.zoo train --algo memory_ppo --env CartPoleNoVel-v1 -conf <entry>`` (the Zoo's
  own train command, its own CartPoleNoVel-v1, which zeroes the velocities instead of dropping them)
- ``ppo-tlb`` / ``zoo-tlb``: the same with ``memory='tlb'`` added to the entry's ``policy_kwargs``

Every final model is evaluated here alike: greedy actions, ``--episodes`` episodes on env seeds from
1e9 + seed (never trained on), with the run's VecNormalize statistics frozen, returns unnormalised. A run
counts as reaching the target with a mean return >= 475 (gymnasium's CartPole threshold).

    python benchmarks/zoo_cartpole.py --variants ppo,zoo --seeds 0-2      # trains what is missing, then
    python benchmarks/zoo_cartpole.py --table-only                        # prints the table
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRY = ROOT / "benchmarks" / "zoo" / "ppo_lstm_cartpolenovel.yml"
OUT = ROOT / "runs" / "zoo_cartpole"
VARIANTS = ("ppo", "zoo", "ppo-tlb", "zoo-tlb")
THRESHOLD = 475.0
EVAL_SEED_START = 1_000_000_000


def tlb_entry() -> Path:
    """The entry with ``memory='tlb'`` added to its policy_kwargs, nothing else changed."""
    text = ENTRY.read_text()
    marker = 'policy_kwargs: "dict('
    assert marker in text, "the entry's policy_kwargs moved"
    path = OUT / "ppo_lstm_cartpolenovel_tlb.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace(marker, marker + "memory='tlb', ", 1))
    return path


def run_dir(variant: str, seed: int) -> Path:
    return OUT / variant / f"seed{seed}"


def train_command(variant: str, seed: int) -> list[str]:
    entry = tlb_entry() if variant.endswith("tlb") else ENTRY
    directory = run_dir(variant, seed)
    if variant.startswith("ppo"):
        return [
            sys.executable, "-m", "runners.ppo", "--env", "TLB-CartPoleNoVel-v1", "--hyperparams", str(entry),
            "--seed", str(seed), "--threads", "1", "--eval-freq", "0", "--eval-episodes", "20",
            "--logdir", str(directory), "--overwrite", "--no-progress",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "runners.zoo", "train", "--algo", "memory_ppo", "--env", "CartPoleNoVel-v1",
        "-conf", str(entry), "--seed", str(seed), "--num-threads", "1", "--eval-freq", "-1",
        "-f", str(directory),
    ]  # fmt: skip


def model_files(variant: str, seed: int) -> tuple[Path, Path | None]:
    """The final model and its VecNormalize statistics (None if the run has none)."""
    directory = run_dir(variant, seed)
    if variant.startswith("ppo"):
        checkpoints = sorted((directory / "checkpoints").glob("vecnormalize_*_steps.pkl"))
        return directory / "model.zip", (checkpoints[-1] if checkpoints else None)
    (experiment,) = sorted((directory / "memory_ppo").glob("CartPoleNoVel-v1_*"))[-1:]
    stats = experiment / "CartPoleNoVel-v1" / "vecnormalize.pkl"
    return experiment / "CartPoleNoVel-v1.zip", (stats if stats.is_file() else None)


def evaluate(variant: str, seed: int, episodes: int) -> dict[str, float]:
    """Greedy mean return of the final model on held-out env seeds (see the module docstring)."""
    import numpy as np
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    if variant.startswith("zoo"):
        import rl_zoo3.import_envs  # noqa: F401  (the Zoo's CartPoleNoVel-v1, as trained)
    from agents import MemoryPPO
    from envs import make_vec_env as make_own_vec_env

    torch.set_num_threads(1)
    model_path, stats = model_files(variant, seed)
    seed_start = EVAL_SEED_START + seed
    if variant.startswith("ppo"):
        env = make_own_vec_env("TLB-CartPoleNoVel-v1", n_envs=10, seed=seed_start)
    else:
        env = make_vec_env("CartPoleNoVel-v1", n_envs=10, seed=seed_start)
    if stats is not None:
        env = VecNormalize.load(str(stats), env)
        env.training, env.norm_reward = False, False
    model = MemoryPPO.load(model_path, device="cpu")
    returns, _ = evaluate_policy(
        model, env, n_eval_episodes=episodes, deterministic=True, return_episode_rewards=True
    )
    return {
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "episodes": episodes,
    }


def seeds_of(text: str) -> list[int]:
    if "-" in text:
        first, last = text.split("-")
        return list(range(int(first), int(last) + 1))
    return [int(seed) for seed in text.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="ppo,zoo,ppo-tlb", help=f"comma-separated, of {VARIANTS}")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes per run")
    parser.add_argument("--table-only", action="store_true", help="train nothing, print what exists")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for variant in variants:
        for seed in seeds_of(args.seeds):
            result_path = run_dir(variant, seed) / "zoo_cartpole_result.json"
            if args.table_only or result_path.is_file():
                continue
            command = train_command(variant, seed)
            print(f"[{time.strftime('%H:%M:%S')}] {variant} seed {seed}: {' '.join(command)}", flush=True)
            start = time.time()
            run_dir(variant, seed).mkdir(parents=True, exist_ok=True)
            with open(run_dir(variant, seed) / "train.log", "w") as log:
                code = subprocess.run(
                    command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                ).returncode
            seconds = time.time() - start
            if code != 0:
                print(
                    f"  failed with exit code {code}: see {run_dir(variant, seed) / 'train.log'}", flush=True
                )
                continue
            result = {**evaluate(variant, seed, args.episodes), "train_seconds": seconds}
            result["command"] = " ".join(command)
            result_path.write_text(json.dumps(result, indent=2))
            print(f"  mean return {result['mean_return']:.1f} ({seconds:.0f} s)", flush=True)
    print_table(variants, seeds_of(args.seeds))
    return 0


def print_table(variants: list[str], seeds: list[int]) -> None:
    print(f"\n| variant | {' | '.join(f'seed {s}' for s in seeds)} | seeds >= {THRESHOLD:.0f} | train time |")
    print(f"|---|{'---|' * len(seeds)}---|---|")
    for variant in variants:
        cells, reached, minutes = [], 0, []
        for seed in seeds:
            path = run_dir(variant, seed) / "zoo_cartpole_result.json"
            if not path.is_file():
                cells.append("not run")
                continue
            result = json.loads(path.read_text())
            cells.append(f"{result['mean_return']:.1f} ± {result['std_return']:.1f}")
            reached += result["mean_return"] >= THRESHOLD
            minutes.append(result["train_seconds"] / 60)
        time_text = f"{sum(minutes) / len(minutes):.1f} min/run" if minutes else "-"
        print(f"| {variant} | {' | '.join(cells)} | {reached} of {len(minutes)} | {time_text} |")


if __name__ == "__main__":
    sys.exit(main())
