"""Sample efficiency on the memory benchmark's tasks: frames until a success threshold, per memory.

    python benchmarks/memory_tasks.py --task cartpole-novel     # CartPoleNoVel: CartPole without velocities
    python benchmarks/memory_tasks.py --task memory-s7          # MemoryS7: MiniGrid-MemoryS7-v0
    python benchmarks/memory_tasks.py --task RepeatPreviousEasy --memories tlb,gru

The tasks are those of ``envs/benchmarks/memory.yaml``, the file ``runners.study --benchmark memory`` runs,
and everything about them comes from there: the env, the budget, the PPO hyperparameters and memory widths,
the evaluation's frequency, episodes and protocol (greedy or sampled), the metric and the threshold. This
script declares none of them. CartPole without velocities is the test sb3-contrib uses for its own
RecurrentPPO (mean return >= 450 within 50k steps, with that test's hyperparameters); MiniGrid-MemoryS7 asks
the agent to remember the object it saw at the start (a memoryless agent can only guess, about 0.5).

For every memory (tlb, lstm, none by default) the script builds the model ``runners.ppo`` builds from those
settings (``agents.factory.build_model``, training envs seeded from ``seed * 1,000,000``, ``VecNormalize``
where the task says ``normalize``), evaluates it every ``eval_freq`` frames on held-out levels
(``envs.suites.heldout_side``, the levels the runners evaluate on), stops once the threshold is met, and
prints the frames at which it was first met (or "not met", or the best score alone for a task without a
threshold). One seed in one process: for figures to trust, run the study and its report.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agents import MemoryPPO
from agents.evaluation import evaluate_model, protocol_name
from agents.factory import PPOHyperparameters, build_model
from envs import make_vec_env
from envs.benchmark import BenchmarkTask, load_benchmark
from envs.suites import heldout_side, training_env_seed
from policies.memories import MEMORY_CLASSES, memory_parameters

BENCHMARK = "memory"
# The script's own short names for two of the benchmark's tasks (docs/results/history.md's commands use them).
ALIASES = {"cartpole-novel": "CartPoleNoVel", "memory-s7": "MemoryS7"}
# Settings the task must give: this script has no defaults of its own for them.
REQUIRED = ("total_steps", "n_envs", "eval_freq", "eval_episodes")
# The YAML names settings by runners.ppo's flag destinations; these are PPOHyperparameters fields.
PPO_SETTINGS = {"lr": "learning_rate"} | {
    f.name: f.name for f in fields(PPOHyperparameters) if f.name != "learning_rate"
}
POLICY_SETTINGS = ("net_arch", "ortho_init")
MODEL_SETTINGS = ("features_dim", "encoder_channels")
MEMORY_SETTINGS = {name for memory in MEMORY_CLASSES for name in memory_parameters(memory)}
# Evaluated envs: runners.ppo's count (its training envs, at most 8).
MAX_EVAL_ENVS = 8


@dataclass(frozen=True)
class Task:
    """A benchmark task's settings, sorted by what they configure.

    :param name: the task's name in the benchmark file
    :param env_id: the gymnasium id trained and evaluated on
    :param budget: frames to train at most (``total_steps``)
    :param metric: the ``EvaluationResult`` field scored: ``success_rate`` or ``mean_return``
    :param threshold: the score counted as solved, or None
    :param deterministic: greedy (True) or sampled (False) evaluation actions
    :param eval_every: frames between evaluations (``eval_freq``)
    :param eval_episodes: episodes per evaluation
    :param normalize: ``VecNormalize`` observations and rewards (evaluations use the training statistics)
    :param ppo: ``n_envs`` and MemoryPPO's PPO arguments (``PPOHyperparameters`` with the task's settings)
    :param policy: policy arguments (``net_arch``, ``ortho_init``)
    :param model: ``build_model`` arguments (``features_dim``, ``encoder_channels``)
    :param memory_settings: memory arguments; each memory takes those it accepts (``memory_kwargs``)
    """

    name: str
    env_id: str
    budget: int
    metric: str
    threshold: float | None
    deterministic: bool
    eval_every: int
    eval_episodes: int
    normalize: bool = False
    ppo: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    memory_settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_benchmark(cls, task: BenchmarkTask) -> Task:
        """The task as ``envs/benchmarks/memory.yaml`` gives it.

        :raises ValueError: for a setting this script cannot apply, or a required one missing
        """
        settings = dict(task.hyperparams)
        missing = [name for name in REQUIRED if name not in settings]
        if missing:
            raise ValueError(f"benchmark task {task.name} sets no {', '.join(missing)}")
        ppo: dict[str, Any] = {}
        policy: dict[str, Any] = {}
        model: dict[str, Any] = {}
        memory: dict[str, Any] = {}
        for key, value in settings.items():
            if key in PPO_SETTINGS:
                ppo[PPO_SETTINGS[key]] = value
            elif key in POLICY_SETTINGS:
                policy[key] = value
            elif key in MODEL_SETTINGS:
                model[key] = value
            elif key in MEMORY_SETTINGS:
                memory[key] = value
            elif key not in (*REQUIRED, "normalize"):
                raise ValueError(f"benchmark task {task.name}: memory_tasks.py cannot apply setting {key!r}")
        return cls(
            name=task.name,
            env_id=task.env,
            budget=int(settings["total_steps"]),
            metric="mean_return" if task.metric == "mean_reward" else task.metric,
            threshold=task.threshold,
            deterministic=task.deterministic_eval,
            eval_every=int(settings["eval_freq"]),
            eval_episodes=int(settings["eval_episodes"]),
            normalize=bool(settings.get("normalize", False)),
            ppo={"n_envs": int(settings["n_envs"]), **asdict(PPOHyperparameters(**ppo))},
            policy=policy,
            model=model,
            memory_settings=memory,
        )

    def memory_kwargs(self, memory: str) -> dict[str, Any]:
        """The task's memory settings that ``memory`` takes (a width reaches only the memories with one)."""
        accepted = memory_parameters(memory)
        return {key: value for key, value in self.memory_settings.items() if key in accepted}


def load_tasks() -> dict[str, Task]:
    """The benchmark's tasks by name, and by the script's short names (``ALIASES``)."""
    tasks = {task.name: Task.from_benchmark(task) for task in load_benchmark(BENCHMARK).tasks}
    return {**{alias: tasks[name] for alias, name in ALIASES.items()}, **tasks}


TASKS = load_tasks()
# The memory widths of cartpole-novel, which benchmarks/throughput.py measures.
MEMORY_KWARGS: dict[str, dict[str, Any]] = {
    memory: TASKS["cartpole-novel"].memory_kwargs(memory) for memory in MEMORY_CLASSES
}


def make_envs(task_name: str, n_envs: int, seed: int) -> tuple[VecEnv, VecEnv]:
    """The training envs and the held-out evaluation envs of a task, as runners.ppo makes them."""
    task = TASKS[task_name]
    train = make_vec_env(task.env_id, n_envs=n_envs, seed=training_env_seed(seed))
    evaluation = heldout_side(task.env_id).make_vec_env(min(n_envs, MAX_EVAL_ENVS), seed=seed)
    if task.normalize:
        return VecNormalize(train), VecNormalize(evaluation, training=False, norm_reward=False)
    return train, evaluation


def make_model(task_name: str, memory: str, seed: int) -> tuple[MemoryPPO, VecEnv]:
    """The model runners.ppo builds for the task, and its evaluation envs."""
    task = TASKS[task_name]
    ppo = dict(task.ppo)
    train_env, eval_env = make_envs(task_name, ppo.pop("n_envs"), seed)
    model = build_model(
        train_env,
        memory,
        task.memory_kwargs(memory),
        hyperparameters=PPOHyperparameters(**ppo),
        seed=seed,
        policy_kwargs=task.policy,
        **task.model,
    )
    return model, eval_env


class ThresholdTracker(BaseCallback):
    """Evaluate every ``task.eval_every`` frames; remember the first frame count at which the threshold is
    met (and stop training there) and the best score."""

    def __init__(self, eval_env: VecEnv, task: Task) -> None:
        super().__init__()
        self.eval_env, self.task = eval_env, task
        self.next_eval = task.eval_every
        self.frames_to_threshold: int | None = None
        self.best = -np.inf

    def evaluate(self) -> None:
        if isinstance(self.eval_env, VecNormalize):
            self.eval_env.obs_rms = self.model.get_vec_normalize_env().obs_rms  # type: ignore[union-attr]
        result = evaluate_model(self.model, self.eval_env, self.task.eval_episodes, self.task.deterministic)
        score = getattr(result, self.task.metric)
        self.best = max(self.best, score)
        threshold = self.task.threshold
        if self.frames_to_threshold is None and threshold is not None and score >= threshold:
            self.frames_to_threshold = self.num_timesteps

    def _on_rollout_start(self) -> None:
        if self.num_timesteps >= self.next_eval:
            self.next_eval += self.task.eval_every
            self.evaluate()

    def _on_step(self) -> bool:
        return self.frames_to_threshold is None  # stop once the threshold is met


def run(task_name: str, memory: str, seed: int) -> tuple[int | None, float, float]:
    """Train ``memory`` on the task: the frames to its threshold (None if not met), the best score and the
    seconds it took."""
    task = TASKS[task_name]
    model, eval_env = make_model(task_name, memory, seed)
    tracker = ThresholdTracker(eval_env, task)
    start = time.time()
    model.learn(task.budget, callback=tracker)
    if tracker.frames_to_threshold is None:
        tracker.evaluate()  # a last evaluation at the end of the budget
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
    goal = "no threshold" if task.threshold is None else f"threshold {task.metric} >= {task.threshold}"
    print(
        f"{task.name} ({task.env_id}, envs/benchmarks/{BENCHMARK}.yaml): {goal} within {task.budget:,} "
        f"frames; {protocol_name(task.deterministic)} evaluations of {task.eval_episodes} episodes on "
        f"held-out levels every {task.eval_every:,} frames; seed {args.seed}"
    )
    for memory in args.memories.split(","):
        frames, best, seconds = run(args.task, memory, args.seed)
        met = f"{frames:,} frames" if frames is not None else "not met"
        print(
            f"  {memory:12s} frames to threshold: {met:>16s}  best {task.metric} {best:.3f} ({seconds:.0f} s)"
        )


if __name__ == "__main__":
    main()
