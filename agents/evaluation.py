"""Episode statistics of a trained model: success rate, return and length, with a confidence interval."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate: sensible near 0 and 1, unlike the normal one."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class EvaluationResult:
    episodes: int
    successes: int
    success_rate: float
    success_ci95: tuple[float, float]
    mean_return: float
    mean_length: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_model(
    model: BaseAlgorithm, env: VecEnv, n_episodes: int, deterministic: bool = True
) -> EvaluationResult:
    """Run ``n_episodes`` with SB3's ``evaluate_policy`` (which carries the memory state through
    ``model.predict``) and count successes from the ``is_success`` flag of each finished episode."""
    successes: list[bool] = []

    def record_success(locals_: dict[str, Any], _: dict[str, Any]) -> None:
        info = locals_["info"]
        if locals_["done"] and "episode" in info:  # a real episode end, as counted by evaluate_policy
            successes.append(bool(info.get("is_success", False)))

    returns, lengths = evaluate_policy(
        model,
        env,
        n_eval_episodes=n_episodes,
        deterministic=deterministic,
        return_episode_rewards=True,
        callback=record_success,
        warn=False,
    )
    n = len(returns)
    won = int(sum(successes[:n]))
    return EvaluationResult(
        episodes=n,
        successes=won,
        success_rate=won / max(n, 1),
        success_ci95=wilson_interval(won, n),
        mean_return=float(np.mean(returns)),
        mean_length=float(np.mean(lengths)),
    )
