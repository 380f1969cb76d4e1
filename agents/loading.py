"""Load a saved MemoryPPO model and check what it fits, with one-line errors a command line can show.

Stable-Baselines3's ``load`` reports a damaged or foreign file deep inside zipfile, json or torch (an
``AssertionError``, a ``BadZipFile``, a ``RuntimeError`` about a pickle), a model evaluated on an env with
another observation space fails inside the network with a shape error, and weights loaded into a policy of
another memory fail in ``load_state_dict``. The checks live here together: ``load_model`` (the file),
``check_env_matches`` (a model against an env), ``check_same_architecture`` and ``init_from`` (a model's
weights into another model, e.g. a BC policy fine-tuned by ``runners.ppo --init-from``); each raises a
``ValueError`` naming the file or the env and the problem.
"""

from __future__ import annotations

import inspect
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from agents.ppo import MemoryPPO
from policies.memories.registry import memory_class

MAX_SPACE_TEXT = 120


def first_line(error: BaseException) -> str:
    """``"Type: first line of the message"``."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def resolve_model_path(path: str | Path) -> Path:
    """The model file, accepting the path without its ``.zip`` as SB3's ``load`` does.

    :raises ValueError: when neither exists as a file
    """
    path = Path(path)
    if path.is_file():
        return path
    with_suffix = path.with_name(path.name + ".zip")
    if path.suffix != ".zip" and with_suffix.is_file():
        return with_suffix
    problem = "is a directory, not a model file" if path.is_dir() else "does not exist"
    raise ValueError(f"model file {path} {problem}: pass the model.zip a training run saved")


def check_model_zip(path: Path) -> None:
    """Check that ``path`` is an intact SB3 zip whose algorithm is MemoryPPO, without building the model.

    :raises ValueError: for a file that is not a zip, a truncated or corrupted zip, or another algorithm's
    """
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()  # reads every member: a CRC error means corrupted content
            if damaged is not None:
                raise ValueError(f"model file {path} is corrupted (member {damaged} fails its checksum)")
            data = json.loads(archive.read("data"))
    except zipfile.BadZipFile as error:
        problem = f"is not a readable zip (truncated or corrupted?): {error}"
        raise ValueError(f"model file {path} {problem}") from None
    except KeyError:
        problem = "has no 'data' member: truncated, or not a model saved by Stable-Baselines3"
        raise ValueError(f"model file {path} {problem}") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"model file {path} is damaged ({first_line(error)})") from None
    if not isinstance(data, dict) or "sequence_length" not in data:
        policy = data.get("policy_class", {}) if isinstance(data, dict) else {}
        origin = policy.get("__module__", "an unknown module") if isinstance(policy, dict) else "unknown"
        raise ValueError(
            f"model file {path} is not a MemoryPPO model (its policy comes from {origin}): "
            "load it with the algorithm that saved it"
        )


def load_model(path: str | Path, device: str = "cpu") -> MemoryPPO:
    """Load a MemoryPPO model saved with ``model.save``.

    :param path: the model zip (the ``.zip`` may be left out)
    :param device: torch device to load the weights on
    :raises ValueError: one line naming the file and the problem: missing, not a zip, truncated or
        corrupted, another algorithm's model, or weights that do not load
    """
    path = resolve_model_path(path)
    check_model_zip(path)
    try:
        model = MemoryPPO.load(path, device=device)
    except Exception as error:  # noqa: BLE001 - whatever fails inside SB3/torch, the file is the problem
        problem = f"does not load as a MemoryPPO model ({first_line(error)})"
        raise ValueError(f"model file {path} {problem}") from None
    return model


def describe_space(space: spaces.Space) -> str:
    """A short text of a space: shapes and dtypes, not the bound arrays gymnasium prints in full."""
    if isinstance(space, spaces.Box):
        shape = "x".join(str(size) for size in space.shape) or "scalar"
        return f"Box({shape} {space.dtype})"
    if isinstance(space, spaces.Dict):
        return "Dict(" + ", ".join(f"{key}: {describe_space(sub)}" for key, sub in space.spaces.items()) + ")"
    if isinstance(space, spaces.Tuple):
        return "Tuple(" + ", ".join(describe_space(sub) for sub in space.spaces) + ")"
    text = str(space)
    return text if len(text) <= MAX_SPACE_TEXT else text[: MAX_SPACE_TEXT - 3] + "..."


def space_mismatch(trained: spaces.Space, given: spaces.Space) -> tuple[str, str] | None:
    """``(trained text, given text)`` when the spaces differ (marked "(other bounds)" when only their bounds
    or values do), ``None`` when they are equal."""
    if trained == given:
        return None
    trained_text, given_text = describe_space(trained), describe_space(given)
    if trained_text == given_text:  # same shapes and dtypes: the bounds or values differ
        trained_text, given_text = f"{trained_text} (other bounds)", f"{given_text} (other bounds)"
    return trained_text, given_text


def check_env_matches(model: MemoryPPO, env: VecEnv, env_name: str) -> None:
    """Check that ``env`` gives the observations and takes the actions ``model`` was trained with.

    :param model: a loaded model
    :param env: the env to evaluate it on
    :param env_name: the env's name for the message, e.g. its id
    :raises ValueError: one line naming both spaces when the observation or action spaces differ
    """
    for kind, verb, trained, given in (
        ("observation", "gives", model.observation_space, env.observation_space),
        ("action", "takes", model.action_space, env.action_space),
    ):
        mismatch = space_mismatch(trained, given)
        if mismatch is not None:
            raise ValueError(
                f"model was trained on {kind} space {mismatch[0]} but {env_name} {verb} {mismatch[1]}: "
                "evaluate on an env like the one it was trained on"
            )


def resolved_memory_kwargs(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The memory's arguments with its defaults filled in, so ``{}`` and ``{"chunk_size": 8}`` compare equal
    for a memory whose default chunk size is 8."""
    signature = inspect.signature(memory_class(name).__init__)
    defaults = {
        key: p.default
        for key, p in signature.parameters.items()
        if key not in ("self", "input_dim") and p.default is not inspect.Parameter.empty
    }
    return {**defaults, **kwargs}


def check_same_architecture(source: MemoryPPO, model: MemoryPPO, flag: str) -> None:
    """Check that ``source``'s policy weights fit ``model``'s policy: same spaces, same memory with the same
    arguments, and parameters of the same names and shapes.

    :param flag: how the message names ``source``, e.g. ``"--init-from runs/bc/model.zip"``
    :raises ValueError: one line naming the first difference and what to change
    """
    for kind, theirs, ours in (
        ("observation", source.observation_space, model.observation_space),
        ("action", source.action_space, model.action_space),
    ):
        mismatch = space_mismatch(theirs, ours)
        if mismatch is not None:
            raise ValueError(
                f"{flag} was trained on {kind} space {mismatch[0]} but this env gives {mismatch[1]}"
            )
    theirs_memory, ours_memory = source.policy.memory_name, model.policy.memory_name
    if theirs_memory != ours_memory:
        raise ValueError(
            f"{flag} has memory {theirs_memory} but this model has {ours_memory}: "
            f"pass --memory {theirs_memory}"
        )
    theirs_kwargs = resolved_memory_kwargs(theirs_memory, source.policy.memory_kwargs)
    ours_kwargs = resolved_memory_kwargs(ours_memory, model.policy.memory_kwargs)
    differ = sorted(
        key
        for key in theirs_kwargs.keys() | ours_kwargs.keys()
        if theirs_kwargs.get(key) != ours_kwargs.get(key)
    )
    if differ:
        there = ", ".join(f"{key}={theirs_kwargs.get(key)}" for key in differ)
        here = ", ".join(f"{key}={ours_kwargs.get(key)}" for key in differ)
        raise ValueError(
            f"{flag} has memory {theirs_memory} with {there} but this model has {here}: "
            "pass the same memory flags"
        )
    theirs_params = source.policy.state_dict()
    ours_params = model.policy.state_dict()
    for key in sorted(theirs_params.keys() | ours_params.keys()):
        if key not in theirs_params or key not in ours_params:
            where = "this policy" if key in ours_params else "the model file"
            raise ValueError(
                f"{flag} does not fit this policy: only {where} has parameter {key} "
                "(check --features-dim, --encoder-channels and the architecture)"
            )
        if theirs_params[key].shape != ours_params[key].shape:
            raise ValueError(
                f"{flag} does not fit this policy: parameter {key} has shape "
                f"{tuple(theirs_params[key].shape)} there and {tuple(ours_params[key].shape)} here "
                "(check --features-dim, --encoder-channels and the architecture)"
            )


def init_from(model: MemoryPPO, path: str | Path) -> None:
    """Load the policy weights of the MemoryPPO zip at ``path`` into ``model.policy`` (the optimizer and
    everything else of ``model`` stay as they are), e.g. to fine-tune a BC policy with PPO.

    :raises ValueError: one line, when the file is no MemoryPPO model, or was trained on another observation
        or action space, with another memory or other memory arguments, or for a policy of other shapes
    """
    source = load_model(path, device=str(model.device))
    check_same_architecture(source, model, f"--init-from {path}")
    model.policy.load_state_dict(source.policy.state_dict())
