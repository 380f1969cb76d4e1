"""The envs of a training run: the training env and the named evaluation envs, with their seeds.

Every runner that trains (``runners.ppo``, ``runners.bc``) evaluates on the same named envs
(``evaluation_envs``), so their logs, ``final_eval.json`` and summaries compare.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stable_baselines3.common.vec_env import VecEnv

from envs.suites import Suite, heldout_side


def evaluation_envs(
    env_id: str,
    suite: Suite | None,
    n_envs: int,
    seed: int,
    previous_action_reward: bool = False,
    wrapper_class: Callable[[Any], Any] | None = None,
) -> tuple[dict[str, VecEnv], dict[str, str]]:
    """The named evaluation envs every runner logs, with their seeds (for summaries).

    Without a suite: ``heldout``, ``env_id`` on the held-out seeds of ``envs.suites.heldout_side`` (the
    levels ``runners.evaluate --env`` draws too). With one: ``train`` and ``heldout/<side>`` for each
    held-out side (whose own ``env_kwargs`` say whether they add the previous action and reward:
    ``Suite.with_env_kwargs``). Every env cycles explicitly through its side's reset seeds
    (``SuiteSide.make_vec_env`` with ``seed``), so each evaluated level is a known seed.
    """
    if suite is None:
        side = heldout_side(env_id)
        if previous_action_reward:
            side = side.with_env_kwargs(previous_action_reward=True)
        if wrapper_class is not None:  # the RL Zoo's env_wrapper, inside each env's Monitor
            side = side.with_env_kwargs(wrapper=wrapper_class)
        sides = {"heldout": side}
    else:
        sides = {"train": suite.train, **{f"heldout/{side.name}": side for side in suite.heldout}}
    envs = {name: side.make_vec_env(n_envs, seed=seed) for name, side in sides.items()}
    seeds = {name: f"{side.env_id}, seeds {side.describe_seeds()}" for name, side in sides.items()}
    return envs, seeds
