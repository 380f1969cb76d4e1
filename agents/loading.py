"""Load a saved MemoryPPO model and check it fits an env, with one-line errors a command line can show.

Stable-Baselines3's ``load`` reports a damaged or foreign file deep inside zipfile, json or torch (an
``AssertionError``, a ``BadZipFile``, a ``RuntimeError`` about a pickle), and a model evaluated on an env
with another observation space fails inside the network with a shape error. ``load_model`` and
``check_env_matches`` turn those into a ``ValueError`` naming the file or the env and the problem.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from agents.ppo import MemoryPPO

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
        if trained == given:
            continue
        trained_text, given_text = describe_space(trained), describe_space(given)
        if trained_text == given_text:  # same shapes and dtypes: the bounds or values differ
            trained_text, given_text = f"{trained_text} (other bounds)", f"{given_text} (other bounds)"
        raise ValueError(
            f"model was trained on {kind} space {trained_text} but {env_name} {verb} {given_text}: "
            "evaluate on an env like the one it was trained on"
        )
