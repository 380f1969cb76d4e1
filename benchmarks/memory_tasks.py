"""Sample efficiency on tasks that need memory: frames until a success threshold, per memory.

    python benchmarks/memory_tasks.py --task cartpole-novel     # CartPole without velocities, 50k steps
    python benchmarks/memory_tasks.py --task memory-s7          # MiniGrid-MemoryS7-v0, 300k frames

CartPole without velocities is the test sb3-contrib uses for its own RecurrentPPO (mean reward >= 450
within 50k steps, with that test's hyperparameters). MiniGrid-MemoryS7 asks
the agent to remember the object it saw at the start (success >= 0.95 within 300k frames; a memoryless
agent can only guess, about 0.5). For every memory (tlb, lstm, none by default) the script trains the same
MemoryPPO, evaluates every --eval-every frames on held-out seeds with greedy actions (the thresholds were
set on greedy figures; ``runners.ppo`` samples on MiniGrid by default), and prints the frames at which the
threshold was first met (or "not met") with the best score seen.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agents import MemoryPPO
from agents.evaluation import evaluate_model
from envs import make_vec_env
from envs.classic import make_cartpole_no_velocity
from envs.suites import HELDOUT_SEED_START


@dataclass
class Task:
    budget: int
    threshold: float
    metric: str  # "mean_return" or "success_rate"
    eval_every: int
    eval_episodes: int
    ppo: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)


TASKS = {
    # sb3-contrib's own RecurrentPPO performance test: its settings, with VecNormalize (rewards too).
    "cartpole-novel": Task(
        budget=50_000,
        threshold=450.0,
        metric="mean_return",
        eval_every=5_120,
        eval_episodes=20,
        ppo=dict(
            n_envs=8,
            n_steps=128,
            batch_size=256,
            n_epochs=10,
            sequence_length=32,
            gamma=0.99,
            gae_lambda=0.98,
            learning_rate=7e-4,
            ent_coef=0.0,
            max_grad_norm=1.0,
        ),
        policy=dict(net_arch=dict(vf=[64], pi=[]), ortho_init=False),
    ),  # fmt: skip
    "memory-s7": Task(
        budget=300_000,
        threshold=0.95,
        metric="success_rate",
        eval_every=20_480,
        eval_episodes=100,
        ppo=dict(
            n_envs=16,
            n_steps=128,
            batch_size=256,
            n_epochs=8,
            sequence_length=32,
            gamma=0.99,
            gae_lambda=0.95,
            learning_rate=1e-3,
            ent_coef=0.005,
            max_grad_norm=0.5,
        ),
    ),  # fmt: skip
}

MEMORY_KWARGS: dict[str, dict[str, Any]] = {
    "tlb": dict(d_model=64, n_latents=4, chunk_size=8, n_heads=4),
    "lstm": dict(hidden_size=64),
    "gru": dict(hidden_size=64),
    "transformer": dict(d_model=64, window=16, n_heads=4),
    "none": dict(),
}


def make_envs(task: str, n_envs: int, seed: int) -> tuple[VecEnv, VecEnv]:
    if task == "cartpole-novel":
        train = VecNormalize(sb3_make_vec_env(make_cartpole_no_velocity, n_envs=n_envs, seed=seed))
        evaluation = VecNormalize(
            sb3_make_vec_env(make_cartpole_no_velocity, n_envs=5, seed=HELDOUT_SEED_START),
            training=False,
            norm_reward=False,
        )
        return train, evaluation
    env_id = "MiniGrid-MemoryS7-v0"
    train = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    return train, make_vec_env(env_id, n_envs=8, seed=HELDOUT_SEED_START)


class ThresholdTracker(BaseCallback):
    """Evaluate every ``every`` frames; remember the first frame count at which the threshold is met."""

    def __init__(self, eval_env: VecEnv, task: Task) -> None:
        super().__init__()
        self.eval_env, self.task = eval_env, task
        self.next_eval = task.eval_every
        self.frames_to_threshold: int | None = None
        self.best = -np.inf

    def _on_rollout_start(self) -> None:
        if self.num_timesteps < self.next_eval:
            return
        self.next_eval += self.task.eval_every
        if isinstance(self.eval_env, VecNormalize):
            self.eval_env.obs_rms = self.model.get_vec_normalize_env().obs_rms  # type: ignore[union-attr]
        result = evaluate_model(self.model, self.eval_env, self.task.eval_episodes)
        score = getattr(result, self.task.metric)
        self.best = max(self.best, score)
        if self.frames_to_threshold is None and score >= self.task.threshold:
            self.frames_to_threshold = self.num_timesteps

    def _on_step(self) -> bool:
        return self.frames_to_threshold is None  # stop once the threshold is met


def run(task_name: str, memory: str, seed: int) -> tuple[int | None, float, float]:
    task = TASKS[task_name]
    ppo = dict(task.ppo)
    train_env, eval_env = make_envs(task_name, ppo.pop("n_envs"), seed)
    model = MemoryPPO(
        "MultiInputPolicy" if isinstance(train_env.observation_space, spaces.Dict) else "MlpPolicy",
        train_env,
        seed=seed,
        policy_kwargs=dict(memory=memory, memory_kwargs=MEMORY_KWARGS[memory], **task.policy),
        **ppo,
    )
    tracker = ThresholdTracker(eval_env, task)
    start = time.time()
    model.learn(task.budget, callback=tracker)
    tracker.on_rollout_start()  # a last evaluation at the end of the budget
    return tracker.frames_to_threshold, tracker.best, time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=list(TASKS), default="cartpole-novel")
    parser.add_argument("--memories", default="tlb,lstm,none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = TASKS[args.task]
    goal = f"{task.metric} >= {task.threshold} within {task.budget:,} frames"
    print(f"{args.task}: threshold {goal} (greedy evaluations on held-out seeds), seed {args.seed}")
    for memory in args.memories.split(","):
        frames, best, seconds = run(args.task, memory, args.seed)
        met = f"{frames:,} frames" if frames is not None else "not met"
        print(
            f"  {memory:12s} frames to threshold: {met:>16s}  best {task.metric} {best:.3f} ({seconds:.0f} s)"
        )


if __name__ == "__main__":
    main()
