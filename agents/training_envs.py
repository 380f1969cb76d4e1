"""The envs of a training run: the training env and the named evaluation envs, with their seeds.

Every runner that trains (``runners.ppo``, ``runners.bc``) evaluates on the same named envs
(``evaluation_envs``), so their logs, ``final_eval.json`` and summaries compare. ``training_envs`` builds
both for ``runners.ppo``'s settings: an env or a suite's training side, with the RL Zoo's ``env_wrapper``,
frame stacking and ``VecNormalize`` as its flags ask.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecNormalize

from agents.command_line import UsageError
from agents.zoo_settings import evaluate_expression, wrapper_function
from envs import make_vec_env
from envs.make import is_minigrid_env_id, vec_env_class
from envs.suites import Suite, get_suite, heldout_side, training_env_seed


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


def training_envs(args: argparse.Namespace) -> tuple[VecEnv, dict[str, VecEnv], dict[str, str]]:
    """The training env and the named evaluation envs (with their seed ranges, for the summary)."""
    vec_env_cls = vec_env_class(args.subproc)
    suite = get_suite(args.suite, args.env) if args.suite else None
    if suite is not None and args.env_wrapper is not None:
        raise UsageError("--env-wrapper applies to --env, not to a suite's envs")
    wrapper = wrapper_function(args.env_wrapper)
    env_seed = training_env_seed(args.seed)
    if suite is not None and args.previous_action_reward:
        suite = suite.with_env_kwargs(previous_action_reward=True)
    if suite is None:
        env = make_vec_env(
            args.env,
            n_envs=args.n_envs,
            seed=env_seed,
            vec_env_cls=vec_env_cls,
            previous_action_reward=args.previous_action_reward,
            wrapper_class=wrapper,
        )
    else:
        env = suite.train.make_vec_env(args.n_envs, seed=env_seed, vec_env_cls=vec_env_cls)
    eval_envs, eval_seeds = evaluation_envs(
        args.env,
        suite,
        min(args.n_envs, 8),
        args.seed,
        previous_action_reward=args.previous_action_reward,
        wrapper_class=wrapper,
    )
    if args.frame_stack is not None:
        # Under VecNormalize (the Zoo stacks normalised observations instead): the checkpoints' statistics
        # and the evaluation envs' copies of them then stay where the runner finds them.
        env = VecFrameStack(env, args.frame_stack)
        eval_envs = {name: VecFrameStack(eval_env, args.frame_stack) for name, eval_env in eval_envs.items()}
    if args.normalize:
        check_normalizable(env, args.env if suite is None else suite.train.env_id)
        # The evaluation envs get the training statistics before each evaluation (SuiteEvalCallback) and
        # report raw returns: they never update the statistics nor scale rewards.
        # As the RL Zoo: rewards are scaled by returns discounted with the algorithm's own gamma.
        kwargs = {"gamma": args.gamma}
        if args.normalize_kwargs is not None:
            kwargs.update(evaluate_expression(args.normalize_kwargs, "--normalize-kwargs"))
        env = VecNormalize(env, **kwargs)
        eval_kwargs = {key: value for key, value in kwargs.items() if key not in ("training", "norm_reward")}
        eval_envs = {
            name: VecNormalize(eval_env, training=False, norm_reward=False, **eval_kwargs)
            for name, eval_env in eval_envs.items()
        }
    return env, eval_envs, eval_seeds


def check_normalizable(env: VecEnv, env_id: str) -> None:
    """Refuse ``--normalize`` for observations VecNormalize cannot scale: it takes Box observations (or a Dict
    of them), and scaling categorical codes (MiniGrid's cells, POPGym's Discrete observations) would make no
    sense even where it could.

    :raises UsageError: naming the env's observation space and the envs the flag suits
    """
    space = env.observation_space
    parts = space.spaces.values() if isinstance(space, spaces.Dict) else [space]
    if is_minigrid_env_id(env_id) or not all(isinstance(part, spaces.Box) for part in parts):
        env.close()
        shown = f"Dict({', '.join(space.spaces)})" if isinstance(space, spaces.Dict) else str(space)
        raise UsageError(
            f"--normalize: {env_id}'s observations ({shown}) are not continuous values for VecNormalize to "
            "scale; leave --normalize off there (it suits Box observations, as in classic control)"
        )
