"""Episode statistics of a trained model: success rate, return and length, with a confidence interval.

Success is read at each episode's end from the env's own signal (``info["is_success"]``, as SB3's
``EvalCallback`` reads it, or ``info["success"]``; also inside a ``Monitor``'s ``info["episode"]``), so it
does not depend on a ``Monitor``. An env that never gives one has *no success signal*: its success rate is
NaN (``has_success_signal`` false, ``success_summary()`` says so), never a silent 0.

The evaluation protocol is part of every figure (``EvaluationResult.protocol``): *greedy* (the likeliest
action, SB3's ``deterministic=True``) or *sampled* (actions drawn from the policy). On MiniGrid/BabyAI greedy
policies loop in partially observed grids (the same GoToLocal model: 0.34 success greedy, 0.76 sampled), and
BabyAI's own evaluator samples, so ``default_deterministic`` samples there and stays greedy elsewhere.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

from envs.make import is_minigrid_env_id


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate: sensible near 0 and 1, unlike the normal one."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


SUCCESS_KEYS = ("is_success", "success")
NO_SUCCESS_SIGNAL = "no success signal"
GREEDY, SAMPLED = "greedy", "sampled"


def protocol_name(deterministic: bool) -> str:
    """``"greedy"`` for deterministic (argmax) actions, ``"sampled"`` for actions drawn from the policy."""
    return GREEDY if deterministic else SAMPLED


def default_deterministic(env_id: str) -> bool:
    """Whether evaluations on ``env_id`` are greedy by default: yes (SB3's convention) except on MiniGrid and
    BabyAI envs, which are evaluated with sampled actions as BabyAI's evaluator and rl-starter-files do.

    :raises ValueError: for an id that is not registered
    """
    return not is_minigrid_env_id(env_id)


def episode_success(info: dict[str, Any]) -> bool | None:
    """The success signal of a finished episode's last ``info``, or ``None`` if the env gives none."""
    for source in (info, info.get("episode") or {}):
        for key in SUCCESS_KEYS:
            if source.get(key) is not None:
                return bool(source[key])
    return None


@dataclass
class EvaluationResult:
    """Statistics of ``episodes`` finished episodes.

    ``successes``, ``success_rate`` and ``success_ci95`` are ``None``, NaN and (NaN, NaN) when the env gives
    no success signal; an episode without one among episodes with one counts as a failure.
    """

    episodes: int
    successes: int | None
    success_rate: float
    success_ci95: tuple[float, float]
    mean_return: float
    mean_length: float
    protocol: str = ""  # "greedy" or "sampled" (``protocol_name``); "" when unknown

    @property
    def has_success_signal(self) -> bool:
        return self.successes is not None

    def success_summary(self) -> str:
        """``"0.700 [95% CI 0.400-0.890]"``, or ``"no success signal"``."""
        if not self.has_success_signal:
            return NO_SUCCESS_SIGNAL
        low, high = self.success_ci95
        return f"{self.success_rate:.3f} [95% CI {low:.3f}-{high:.3f}]"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_model(
    model: BaseAlgorithm, env: VecEnv, n_episodes: int, deterministic: bool = True
) -> EvaluationResult:
    """Run ``n_episodes`` with SB3's ``evaluate_policy`` (which carries the memory state through
    ``model.predict``) and count successes from the success signal of each finished episode
    (``episode_success``), with or without a ``Monitor``."""
    successes: list[bool | None] = []

    def record_success(locals_: dict[str, Any], _: dict[str, Any]) -> None:
        # An episode end exactly as evaluate_policy counts one: with a Monitor only where it reports the
        # episode (an Atari life loss is a "done" without it), otherwise at every done.
        info = locals_["info"]
        if locals_["done"] and ("episode" in info or not locals_["is_monitor_wrapped"]):
            successes.append(episode_success(info))

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
    signals = successes[:n]
    if all(signal is None for signal in signals):
        won, rate, interval = None, math.nan, (math.nan, math.nan)
    else:
        won = sum(bool(signal) for signal in signals)
        rate, interval = won / max(n, 1), wilson_interval(won, n)
    return EvaluationResult(
        episodes=n,
        successes=won,
        success_rate=rate,
        success_ci95=interval,
        mean_return=float(np.mean(returns)),
        mean_length=float(np.mean(lengths)),
        protocol=protocol_name(deterministic),
    )
