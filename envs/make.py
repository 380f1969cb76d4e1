"""Env factories: one env (``make_env``) and a monitored ``VecEnv`` (``make_vec_env``) for any gymnasium id,
with MiniGrid/BabyAI envs wrapped to give numeric observations and ``is_success``."""

from __future__ import annotations

import difflib
import functools
import importlib
import multiprocessing
import os
import signal
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid-* and BabyAI-* ids)
from gymnasium.envs.registration import EnvSpec, load_env_creator
from minigrid.minigrid_env import MiniGridEnv
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from envs.classic import flatten_if_needed
from envs.wrappers import MissionTokenObsWrapper, PreviousActionRewardWrapper, SuccessInfoWrapper


def resolve_env_spec(env_id: str) -> EnvSpec:
    """The registered spec of ``env_id``, importing its module first for a ``"module:EnvName-v0"`` id.

    :raises ValueError: for an id that is not registered, naming up to three close matches
    """
    name = env_id
    if ":" in env_id:
        module, name = env_id.split(":", 1)
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(f"env id {env_id!r}: cannot import module {module!r} ({error})") from None
    spec = gym.registry.get(name)
    if spec is None:
        matches = difflib.get_close_matches(name, list(gym.registry), n=3)
        hint = f"did you mean {' or '.join(matches)}?" if matches else "no registered id is close to it;"
        raise ValueError(f"unknown env id {env_id!r}; {hint} (see gymnasium.registry for all ids)")
    return spec


def is_minigrid_env_id(env_id: str) -> bool:
    """True when ``env_id`` makes a MiniGrid/BabyAI env (a ``MiniGridEnv``), which ``make_env`` wraps.

    The registered entry point is checked without building the env when it is a class; an entry point that
    is a factory function has to be called to find out.

    :raises ValueError: for an id that is not registered
    """
    spec = resolve_env_spec(env_id)
    creator = spec.entry_point if callable(spec.entry_point) else load_env_creator(str(spec.entry_point))
    if isinstance(creator, type):
        return issubclass(creator, MiniGridEnv)
    env = gym.make(spec)
    try:
        return isinstance(env.unwrapped, MiniGridEnv)
    finally:
        env.close()


def wrap_for_sb3(env: gym.Env) -> gym.Env:
    """``env`` with the observations Stable-Baselines3 takes: a MiniGrid/BabyAI env gets
    ``SuccessInfoWrapper`` and ``MissionTokenObsWrapper`` (mission token ids, quiet resets), any other env
    has its observations flattened if SB3 cannot take them. ``make_env`` applies it; so does an RL Zoo entry
    with ``env_wrapper: envs.wrap_for_sb3`` (the Zoo makes its envs itself)."""
    if isinstance(env.unwrapped, MiniGridEnv):
        return MissionTokenObsWrapper(SuccessInfoWrapper(env))
    return flatten_if_needed(env)


def make_env(
    env_id: str,
    seed: int | None = None,
    render_mode: str | None = None,
    previous_action_reward: bool = False,
    wrapper: Callable[[gym.Env], gym.Env] | None = None,
    **kwargs: Any,
) -> gym.Env:
    """Make one env. A MiniGrid/BabyAI env gets ``SuccessInfoWrapper`` and ``MissionTokenObsWrapper``
    (token ids instead of the mission string, quiet resets); any other gymnasium env is returned as
    ``gymnasium.make`` builds it, its observations flattened if SB3 cannot take them (a Tuple: one flat Box,
    discrete parts one-hot).

    :param env_id: a registered gymnasium id, e.g. "BabyAI-GoToLocal-v0", "MiniGrid-DoorKey-5x5-v0"
    :param seed: when given, the env is reset with it and its action space seeded with it
    :param render_mode: passed to ``gymnasium.make`` when given
    :param previous_action_reward: wrap the env last in ``PreviousActionRewardWrapper``, so each observation
        also holds the previous action and reward (zero after a reset)
    :param wrapper: applied to the env after the wrappers above, before ``PreviousActionRewardWrapper`` (an RL
        Zoo ``env_wrapper``, from ``runners.ppo --env-wrapper``)
    :param kwargs: more keyword arguments for ``gymnasium.make`` (and the env's constructor)
    :raises ValueError: for an id that is not registered, naming close matches
    """
    spec = resolve_env_spec(env_id)
    if multiprocessing.parent_process() is not None:
        # In a SubprocVecEnv worker: Ctrl-C is for the main process, which saves a checkpoint and then
        # closes the workers; a worker dying on it first would break that with a broken pipe.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if render_mode is not None:  # some envs (POPGym's) take no render_mode argument at all
        kwargs["render_mode"] = render_mode
    env = wrap_for_sb3(gym.make(spec, **kwargs))
    if wrapper is not None:  # inside the Monitor, so that it records the episodes the agent sees
        env = wrapper(env)
    if previous_action_reward:  # last: it encodes the observations the policy would otherwise get
        env = PreviousActionRewardWrapper(env)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def make_vec_env(
    env_id: str,
    n_envs: int = 1,
    seed: int | None = None,
    vec_env_cls: type[VecEnv] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    monitor_dir: str | None = None,
    previous_action_reward: bool = False,
    wrapper_class: Callable[[gym.Env], gym.Env] | None = None,
) -> VecEnv:
    """Make ``n_envs`` envs with ``make_env``, each in a ``Monitor``, in one ``VecEnv``.

    Built on Stable-Baselines3's ``make_vec_env``: env ``rank`` gets seed ``seed + rank`` at the first reset.
    For MiniGrid/BabyAI envs the ``Monitor`` also records ``is_success`` with each episode, in
    ``info["episode"]["is_success"]`` and in the monitor files.

    :param env_id: a registered gymnasium id
    :param n_envs: number of envs, at least 1
    :param seed: seed of the first env; None for random seeds
    :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``
    :param env_kwargs: keyword arguments for ``make_env`` (``render_mode`` and the env's constructor)
    :param monitor_dir: folder for the monitor csv files; None to write none
    :param previous_action_reward: each env's observations also hold the previous action and reward
        (``make_env``'s ``PreviousActionRewardWrapper``)
    :param wrapper_class: applied to each env inside its ``Monitor`` (``make_env``'s ``wrapper``)
    :raises ValueError: for ``n_envs < 1`` or an unknown id, before any env or process is started
    """
    if n_envs < 1:
        raise ValueError(f"n_envs must be at least 1, got {n_envs}: pass n_envs=1 or more")
    monitor_kwargs = {"info_keywords": ("is_success",)} if is_minigrid_env_id(env_id) else None
    if previous_action_reward:
        env_kwargs = {**(env_kwargs or {}), "previous_action_reward": True}
    if wrapper_class is not None:
        env_kwargs = {**(env_kwargs or {}), "wrapper": wrapper_class}
    return sb3_make_vec_env(
        functools.partial(make_env, env_id),
        n_envs=n_envs,
        seed=seed,
        monitor_dir=monitor_dir,
        env_kwargs=env_kwargs,
        vec_env_cls=vec_env_cls,
        monitor_kwargs=monitor_kwargs,
    )


# With this many cores envs stepped in subprocesses beat envs stepped one after another in the trainer
# (which, with a GPU, waits on them; on a CPU its torch threads need the cores too).
SUBPROC_MIN_CORES = 4
# forkserver: workers start from a clean process (no copy of the trainer's torch threads or CUDA context,
# which fork would inherit), once, and then each env step is a message to an already running worker.
SUBPROC_START_METHOD = "forkserver"


def use_subprocesses(requested: bool | None, n_envs: int, threads: int | None) -> bool:
    """``--subproc``: as requested, or by default when the run has cores to spread its envs over: the
    machine's, or as many as ``--threads`` gives it (a study's trial gets its share of the machine so)."""
    if requested is not None:
        return requested
    cores = threads if threads is not None else (os.cpu_count() or 1)
    return n_envs >= 2 and cores >= SUBPROC_MIN_CORES


def vec_env_class(subproc: bool) -> Any:
    """DummyVecEnv, or SubprocVecEnv with the start method above (as a class ``make_vec_env`` calls)."""
    if not subproc:
        return DummyVecEnv
    return functools.partial(SubprocVecEnv, start_method=SUBPROC_START_METHOD)
