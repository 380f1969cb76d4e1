"""``runners.ppo``'s settings as library objects: the types of its flags that name schedules, SB3's
``net_arch`` and the RL Zoo's expressions (each checks its text when the command line is parsed, so a bad
value is one line, before anything runs), and what the parsed settings make: the PPO hyperparameters, the
policy arguments, the model and the user's callbacks.

The expressions stay text in the parsed settings, so that ``config.json`` holds them as typed and
``--resume`` reads them back; they are evaluated where the objects are built.
"""

from __future__ import annotations

import argparse
import ast
import inspect
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

from agents.command_line import UsageError
from agents.factory import PPOHyperparameters
from agents.factory import build_model as build_memory_ppo
from agents.ppo import MemoryPPO
from agents.schedules import LinearSchedule, parse_schedule
from agents.zoo_settings import evaluate_expression, import_objects

# ---------------------------------------------------------------------- flag types


def schedule(text: str) -> float | LinearSchedule:
    """argparse type: a positive number or the RL Zoo's ``lin_<start>`` (``agents.schedules``)."""
    try:
        return parse_schedule(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def object_spec(text: str) -> str:
    """argparse type: an RL Zoo ``env_wrapper`` / ``callback`` setting whose names import, kept as text."""
    try:
        import_objects(text, "setting")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def policy_kwargs(text: str) -> str:
    """argparse type: a Zoo ``dict(...)`` expression of policy arguments, checked here and kept as text (so
    ``config.json`` and ``--resume`` read it back)."""
    try:
        evaluate_expression(text, "--policy-kwargs")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def normalize_kwargs(text: str) -> str:
    """argparse type: a Zoo ``dict(...)`` expression of VecNormalize arguments, kept as text."""
    try:
        kwargs = evaluate_expression(text, "--normalize-kwargs")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    unknown = set(kwargs) - set(inspect.signature(VecNormalize.__init__).parameters) - {"gamma"}
    if unknown or {"venv", "self"} & set(kwargs):
        raise argparse.ArgumentTypeError(f"not VecNormalize arguments: {', '.join(sorted(unknown))}")
    return text


def net_arch(text: str) -> list[int] | dict[str, list[int]]:
    """argparse type: SB3's ``net_arch``, a list of widths or a dict with ``pi`` and ``vf`` lists."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    is_widths = lambda v: isinstance(v, list) and all(isinstance(w, int) and w > 0 for w in v)  # noqa: E731
    if is_widths(value) or (
        isinstance(value, dict) and set(value) <= {"pi", "vf"} and all(map(is_widths, value.values()))
    ):
        return value
    raise argparse.ArgumentTypeError(
        f"not a net_arch: {text!r}; write a list like '[64, 64]' or a dict like \"{{'pi': [], 'vf': [64]}}\""
    )


# ---------------------------------------------------------------------- what the settings make


def hyperparameters(args: argparse.Namespace) -> PPOHyperparameters:
    """The PPO settings of the command line."""
    return PPOHyperparameters(
        learning_rate=args.lr,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        sequence_length=args.sequence_length,
        gamma=args.gamma,
        gae_lambda=args.gae_lambda,
        clip_range=args.clip_range,
        clip_range_vf=args.clip_range_vf,
        ent_coef=args.ent_coef,
        vf_coef=args.vf_coef,
        max_grad_norm=args.max_grad_norm,
        target_kl=args.target_kl,
        normalize_advantage=args.normalize_advantage,
    )


def build_model(args: argparse.Namespace, env: Any, memory_kwargs: dict[str, Any]) -> MemoryPPO:
    """The model the command line describes (``agents.factory.build_model``)."""
    return build_memory_ppo(
        env,
        args.memory,
        memory_kwargs,
        features_dim=args.features_dim,
        encoder_channels=args.encoder_channels,
        hyperparameters=hyperparameters(args),
        seed=args.seed,
        device=args.device,
        policy_kwargs=policy_settings(args),
    )


def policy_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The policy arguments of the command line (only those set, so SB3's defaults stay otherwise)."""
    settings: dict[str, Any] = {} if args.net_arch is None else {"net_arch": args.net_arch}
    if not args.ortho_init:
        settings["ortho_init"] = False
    if args.critic_memory is not None:
        settings["critic_memory"] = args.critic_memory
    if args.policy_kwargs is not None:
        settings.update(evaluate_expression(args.policy_kwargs, "--policy-kwargs"))
    return settings


def user_callbacks(text: str) -> list[BaseCallback]:
    """The callbacks of ``--callback`` (the RL Zoo's ``callback`` setting), built with their arguments.

    :raises UsageError: for one that cannot be built with them, or is not an SB3 callback
    """
    built = []
    for callback, kwargs in import_objects(text, "--callback"):
        try:
            instance = callback(**kwargs)
        except TypeError as error:
            raise UsageError(f"--callback {callback.__name__}: {error}") from None
        if not isinstance(instance, BaseCallback):
            raise UsageError(f"--callback {callback.__name__} is not a stable_baselines3 BaseCallback")
        built.append(instance)
    return built
