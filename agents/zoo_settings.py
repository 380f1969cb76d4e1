"""An RL Zoo hyperparameter entry as ``runners.ppo`` settings: ``zoo_settings(entry, source)``, and
``expand_hyperparams``, which puts the entry of ``--hyperparams FILE`` for the run's env on its command line.

The RL Zoo (rl-baselines3-zoo) writes one block per env id with SB3's argument names (``learning_rate``,
``n_timesteps``, ``policy``, ``policy_kwargs`` as a Python expression, ``normalize``, ``lin_`` schedules);
``runners.ppo --hyperparams`` reads such a file as it is. This module maps an entry onto the runner's own
settings (its flag destinations), so a Zoo file and the equivalent flags give the same run and the run's
``config.json`` holds ordinary flags. ``env_wrapper``, ``callback`` and ``frame_stack`` become the runner's
``--env-wrapper``, ``--callback`` and ``--frame-stack``; ``env_wrapper: envs.wrap_for_sb3`` (which gives the
Zoo's envs this package's observations) is dropped, since the runner's envs have them already. A key with
no counterpart is one line naming it (``UsageError``).

``policy_kwargs`` are split: ``memory``, ``memory_kwargs``, ``critic_memory``, ``net_arch`` and
``ortho_init`` become their flags, RecurrentPPO's arguments of the Lstm policies (``lstm_hidden_size``,
``enable_critic_lstm``, ...) become the memory's (``policies.policy.recurrent_ppo_memory``), and the rest
(``activation_fn=nn.ReLU``, ...) stays a ``--policy-kwargs`` expression.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from agents.command_line import MEMORY_FLAGS, UsageError, settings_argv
from envs.benchmark import load_hyperparams
from envs.suites import get_suite
from policies.policy import recurrent_ppo_memory

# Zoo names -> runners.ppo destinations (the others with SB3's name are the runner's already).
RENAMED = {"learning_rate": "lr", "n_timesteps": "total_steps"}
# The policy names of SB3 and sb3-contrib: the runner picks the features extractor from the observation
# space, so the Mlp/Cnn/MultiInput part of the name needs no setting.
MEMORY_POLICIES = ("MlpPolicy", "CnnPolicy", "MultiInputPolicy")
LSTM_POLICIES = ("MlpLstmPolicy", "CnnLstmPolicy", "MultiInputLstmPolicy")
RECURRENT_PPO_ARGUMENTS = tuple(
    name
    for name in inspect.signature(recurrent_ppo_memory).parameters
    if name not in ("memory", "memory_kwargs")
)
# The env_wrapper that gives the Zoo's envs this package's observations: runners.ppo's envs have them already.
OWN_WRAPPER = "envs.wrap_for_sb3"
# Zoo keys runners.ppo does not honour, with what to do instead.
NOT_HONOURED = {
    "vec_env_wrapper": "train with python -m runners.zoo, which applies it",
    "monitor_kwargs": "runners.ppo's monitors record episodes and is_success already",
    "env_kwargs": "register an env id with those arguments",
    "replay_buffer_class": "PPO has no replay buffer",
    "replay_buffer_kwargs": "PPO has no replay buffer",
}
MEMORY_FLAG_BY_ARGUMENT = {dest: flag for flag, (dest, _, _) in MEMORY_FLAGS.items()}

# What a policy_kwargs expression may name, as the Zoo evaluates it (with ``nn`` imported).
EXPRESSION_NAMES: dict[str, Any] = {"dict": dict, "list": list, "nn": nn, "th": torch, "torch": torch}


def evaluate_expression(text: str, what: str) -> dict[str, Any]:
    """A Zoo-style ``dict(...)`` expression (``"dict(ortho_init=False, activation_fn=nn.ReLU)"``) as a dict.

    :raises ValueError: for anything that does not evaluate to a dict, in one line naming ``what``
    """
    try:
        value = eval(text, {"__builtins__": {}}, dict(EXPRESSION_NAMES))  # noqa: S307 - the Zoo's own format
    except Exception as error:  # noqa: BLE001 - any failure is the user's expression
        raise ValueError(f"{what} {text!r} does not evaluate ({type(error).__name__}: {error})") from None
    if not isinstance(value, dict):
        raise ValueError(f'{what} {text!r} is not a dict, e.g. "dict(net_arch=[64], activation_fn=nn.ReLU)"')
    return value


def expression_text(value: Any) -> str:
    """A value of a ``policy_kwargs`` dict written back as a Zoo expression (``nn.ReLU``, ``dict(...)``).

    :raises UsageError: for a value that has no such form (an object, a class outside ``torch.nn``)
    """
    if isinstance(value, dict):
        return "dict(" + ", ".join(f"{key}={expression_text(item)}" for key, item in value.items()) + ")"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(expression_text(item) for item in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, type) and getattr(nn, value.__name__, None) is value:
        return f"nn.{value.__name__}"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    raise UsageError(f"policy_kwargs value {value!r} cannot be written as a setting: use torch.nn classes")


def as_list(spec: Any) -> list[Any]:
    """The Zoo's ``env_wrapper`` / ``callback`` value as a list: one name, a ``{name: kwargs}``, or a list."""
    return [] if spec is None else list(spec) if isinstance(spec, list) else [spec]


def spec_text(spec: list[Any]) -> str:
    """An ``env_wrapper`` / ``callback`` list as the JSON text of its runners.ppo flag."""
    return json.dumps(spec)


def import_objects(text: str, what: str) -> list[tuple[Callable[..., Any], dict[str, Any]]]:
    """The classes (or functions) an ``env_wrapper`` / ``callback`` setting names, with their arguments, as
    the RL Zoo writes them: ``"module.Name"``, ``{"module.Name": {kwargs}}``, or a list of those (YAML or
    JSON text).

    :raises ValueError: for a malformed setting or a name that does not import, in one line
    """
    import yaml

    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ValueError(f"{what} {text!r} is not YAML/JSON") from None
    objects = []
    for item in as_list(spec):
        if isinstance(item, dict) and len(item) == 1:
            ((name, kwargs),) = item.items()
        else:
            name, kwargs = item, {}
        if not isinstance(name, str) or "." not in name or not isinstance(kwargs or {}, dict):
            raise ValueError(f"{what}: {item!r} is not 'module.Name' or {{'module.Name': {{arguments}}}}")
        module, _, attribute = name.rpartition(".")
        try:
            target = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"{what}: cannot import {name} ({error})") from None
        objects.append((target, dict(kwargs or {})))
    return objects


def wrapper_function(text: str | None) -> Callable[[gym.Env], gym.Env] | None:
    """The env wrapper an ``--env-wrapper`` setting describes (its wrappers applied in order), or None."""
    if text is None:
        return None
    wrappers = import_objects(text, "--env-wrapper")

    def wrap(env: gym.Env) -> gym.Env:
        for wrapper, kwargs in wrappers:
            env = wrapper(env, **kwargs)
        return env

    return wrap


def zoo_settings(entry: dict[str, Any], source: str) -> dict[str, Any]:
    """``entry`` (one env's block of an RL Zoo file, or runner settings) as ``runners.ppo`` settings.

    Runner names pass through unchanged, so benchmark files and Zoo files are read alike.

    :raises UsageError: for a Zoo key the runner cannot honour, naming it and ``source``
    """
    settings: dict[str, Any] = {}
    entry = dict(entry)
    if "env_wrapper" in entry:
        wrappers = [
            w for w in as_list(entry.pop("env_wrapper")) if w != OWN_WRAPPER
        ]  # runners.ppo's envs do it
        if wrappers:
            entry["env_wrapper"] = spec_text(wrappers)
    if "callback" in entry:
        entry["callback"] = spec_text(as_list(entry["callback"]))
    for key in list(entry):
        if key in NOT_HONOURED:
            raise UsageError(f"{source}: {key} is not supported by runners.ppo: {NOT_HONOURED[key]}")
    policy = entry.pop("policy", None)
    policy_kwargs = entry.pop("policy_kwargs", None)
    normalize = entry.pop("normalize", None)
    for key, value in entry.items():
        if key == "n_timesteps":
            value = int(float(value))
        settings[RENAMED.get(key, key)] = value
    if normalize is not None:
        settings.update(normalize_settings(normalize, source))
    settings.update(policy_settings(policy, policy_kwargs, source))
    return settings


def normalize_settings(normalize: Any, source: str) -> dict[str, Any]:
    """The Zoo's ``normalize``: true/false, or VecNormalize's arguments as a dict or its expression."""
    if isinstance(normalize, bool):
        return {"normalize": normalize}
    if isinstance(normalize, str):
        normalize = evaluate_expression(normalize, f"{source}: normalize")
    if not isinstance(normalize, dict):
        raise UsageError(f"{source}: normalize must be true, false or a dict of VecNormalize arguments")
    return {"normalize": True, "normalize_kwargs": expression_text(normalize)}


def policy_settings(policy: Any, policy_kwargs: Any, source: str) -> dict[str, Any]:
    """The Zoo's ``policy`` and ``policy_kwargs`` as memory, policy and ``--policy-kwargs`` settings."""
    if policy is not None and policy not in MEMORY_POLICIES + LSTM_POLICIES:
        known = ", ".join(MEMORY_POLICIES + LSTM_POLICIES)
        raise UsageError(f"{source}: policy {policy!r} is not a MemoryPPO policy (use one of {known})")
    if isinstance(policy_kwargs, str):
        kwargs = evaluate_expression(policy_kwargs, f"{source}: policy_kwargs")
    elif policy_kwargs is None or isinstance(policy_kwargs, dict):
        kwargs = dict(policy_kwargs or {})
    else:
        raise UsageError(f'{source}: policy_kwargs must be a dict or the Zoo\'s "dict(...)" expression')
    settings: dict[str, Any] = {}
    if policy in LSTM_POLICIES:
        recurrent = {name: kwargs.pop(name) for name in RECURRENT_PPO_ARGUMENTS if name in kwargs}
        try:
            resolved = recurrent_ppo_memory(
                kwargs.pop("memory", "lstm"), **recurrent, memory_kwargs=kwargs.pop("memory_kwargs", None)
            )
        except (TypeError, ValueError) as error:
            raise UsageError(f"{source}: policy_kwargs: {error}") from None
        if not resolved["memory_kwargs"].get("rnn_kwargs"):
            resolved["memory_kwargs"].pop("rnn_kwargs", None)  # empty (lstm, gru) or absent: the default
        kwargs.update(resolved)
    elif any(name in kwargs for name in RECURRENT_PPO_ARGUMENTS):
        names = ", ".join(name for name in RECURRENT_PPO_ARGUMENTS if name in kwargs)
        raise UsageError(
            f"{source}: {names} need policy MlpLstmPolicy (or another Lstm policy), not {policy}"
        )
    if "memory" in kwargs:
        settings["memory"] = kwargs.pop("memory")
    for name, value in (kwargs.pop("memory_kwargs", None) or {}).items():
        if name not in MEMORY_FLAG_BY_ARGUMENT:
            raise UsageError(f"{source}: memory_kwargs {name} has no runners.ppo flag")
        settings[name] = value
    for name in ("critic_memory", "net_arch", "ortho_init"):
        if name in kwargs:
            settings[name] = kwargs.pop(name)
    if kwargs:
        settings["policy_kwargs"] = expression_text(kwargs)
    return settings


def expand_hyperparams(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``argv`` with the settings of ``--hyperparams FILE`` for its env put first (so flags given on the
    command line win) and the ``--hyperparams`` flag itself removed: the result is what ``config.json``
    stores, so a resumed run needs the file no more.

    :param parser: the runner's parser (``runners.ppo``'s), which spells and checks every setting
    """
    args = parser.parse_args(argv)
    if args.hyperparams is None:
        return argv
    env_id = get_suite(args.suite, args.env).train.env_id if args.suite else args.env
    source = f"--hyperparams {args.hyperparams}"
    settings = zoo_settings(load_hyperparams(args.hyperparams, env_id), source)
    words = settings_argv(parser, settings, source)
    rest, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word == "--hyperparams":
            skip = True
        elif not word.startswith("--hyperparams="):
            rest.append(word)
    return [*words, *rest]
