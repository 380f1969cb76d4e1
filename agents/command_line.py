"""Command-line words shared by the runners, the studies and the benchmark scripts.

A user's mistake is a ``UsageError`` (the runners print it as one line and exit with code 2); the
memories' own flags (``--chunk-size``, ``--input-shift``, ...) are declared once here; and a setting
(destination -> value, from a grid, a benchmark's YAML or a search) becomes the words that set it on a
runner's parser, so that the parser checks and converts it exactly as it does typed flags. Library code
(``studies``, the benchmark scripts) imports these from here, never from ``runners``.
"""

from __future__ import annotations

import argparse
import inspect
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from policies.memories import MEMORY_CLASSES, memory_parameters
from policies.memories.registry import memory_class


class UsageError(Exception):
    """A mistake in the user's input: reported as one line on stderr with exit code 2, no traceback."""


# ---------------------------------------------------------------------- value types


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def sequence_length_value(text: str) -> int | str:
    """argparse type: a training sequence length, an integer > 0 or ``"rollout"`` (whole rollouts)."""
    if text == "rollout":
        return text
    try:
        return positive_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'rollout', got {text}") from None


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0 (a loss weight)."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def unit_interval(text: str) -> float:
    """argparse type: a number in [0, 1] (a discount, GAE's lambda)."""
    value = float(text)
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1) (a share of the data held out)."""
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def output_directory(text: str) -> str:
    """argparse type: a directory to write into, refused when a file already has its name."""
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory: pass a directory path")
    return text


def ray_address(text: str) -> str:
    """argparse type: a Ray cluster's address as ``ray.init`` takes it: ``auto``, ``local``, ``HOST:PORT`` or
    ``ray://HOST:PORT``."""
    host_port = re.fullmatch(r"(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}", text)
    if text in ("auto", "local") or host_port:
        return text
    raise argparse.ArgumentTypeError(f"not a Ray address: {text!r}; use auto, HOST:PORT or ray://HOST:PORT")


# ---------------------------------------------------------------------- memory flags


def describe_default(value: Any) -> str:
    """A default as a help text shows it: ``on``/``off`` for a flag, the value otherwise."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def memory_flag_help(dest: str, text: str) -> str:
    """``text`` with the memories that take the argument ``dest`` and their defaults, read from their
    constructors' signatures (``Memory.RESOLVED_DEFAULTS`` says what a None default resolves to), so a help
    text never repeats a number that can drift: ``"width of tokens and latents (tlb, tlb-paper, transformer;
    default 128)"``. Where the memories' defaults differ, the first memory's comes first, then each other
    one by name: ``"(tlb, tlb-paper; default on, tlb-paper off)"``."""
    defaults: dict[str, str] = {}
    for name in MEMORY_CLASSES:
        cls = memory_class(name)
        parameter = inspect.signature(cls.__init__).parameters.get(dest)
        if parameter is None:
            continue
        value = parameter.default
        defaults[name] = cls.RESOLVED_DEFAULTS[dest] if value is None else describe_default(value)
    if not defaults:
        raise ValueError(f"no memory takes an argument {dest!r}")
    names = list(defaults)
    first = defaults[names[0]]
    others = "".join(f", {name} {value}" for name, value in defaults.items() if value != first)
    return f"{text} ({', '.join(names)}; default {first}{others})"


# flag name -> (memory argument, type, what it sets); the help adds the memories that take it and their
# defaults (``memory_flag_help``).
MEMORY_OPTIONS: dict[str, tuple[str, type, str]] = {
    "--d-model": ("d_model", int, "width of tokens and latents"),
    "--n-latents": ("n_latents", int, "number of slow latent vectors N"),
    "--chunk-size": ("chunk_size", int, "steps per chunk K"),
    "--n-layers": ("n_layers", int, "self-attention blocks / recurrent layers"),
    "--cross-every": ("cross_every", int, "a cross-attention block after every R self blocks"),
    "--n-heads": ("n_heads", int, "attention heads"),
    "--ffn-mult": ("ffn_mult", int, "feed-forward width as a multiple of d_model"),
    "--gate": ("gate", str, "slow update: none (residual) or gru"),
    "--previous-chunk": (
        "previous_chunk",
        bool,
        "the fast stream also attends to the previous chunk's steps",
    ),
    "--input-shift": (
        "input_shift",
        int,
        "each token also sees the inputs of this many earlier steps directly",
    ),
    "--shift-mixing": (
        "shift_mixing",
        str,
        "the input shift's map of the earlier inputs: dense, or channel, one weight per channel and step",
    ),
    "--normalize-latents": (
        "normalize_latents",
        bool,
        "LayerNorm the slow latents after each residual of their update",
    ),
    "--latent-init-std": (
        "latent_init_std",
        float,
        "standard deviation of the initial latents I_0 at initialisation",
    ),
    "--window": ("window", int, "steps attended to"),
    "--hidden-size": ("hidden_size", int, "hidden size"),
}
# flag name -> (memory argument, type, help)
MEMORY_FLAGS: dict[str, tuple[str, type, str]] = {
    flag: (dest, kind, memory_flag_help(dest, text)) for flag, (dest, kind, text) in MEMORY_OPTIONS.items()
}


def add_memory_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("memory")
    group.add_argument("--memory", default="tlb", choices=list(MEMORY_CLASSES), help="which memory")
    add_memory_option_flags(group)


# How a memory flag's value is checked on the command line: sizes and counts are positive integers, the
# input shift may be 0 (none), a standard deviation 0 or more, and the two option words have their choices.
MEMORY_FLAG_TYPES: dict[type, Callable[[str], Any]] = {int: positive_int, float: non_negative_float}
MEMORY_FLAG_CHECKS: dict[str, Callable[[str], Any]] = {"input_shift": non_negative_int}
MEMORY_FLAG_CHOICES: dict[str, tuple[str, ...]] = {
    "gate": ("none", "gru"),
    "shift_mixing": ("dense", "channel"),
}


def add_memory_option_flags(group: argparse._ActionsContainer) -> None:
    """The memories' own flags (``--chunk-size``, ``--input-shift``, ...), each defaulting to None (unset)."""
    for flag, (dest, kind, text) in MEMORY_FLAGS.items():
        if kind is bool:
            group.add_argument(
                flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            check = MEMORY_FLAG_CHECKS.get(dest, MEMORY_FLAG_TYPES.get(kind, kind))
            choices = MEMORY_FLAG_CHOICES.get(dest)
            group.add_argument(flag, dest=dest, type=check, choices=choices, default=None, help=text)


def memory_kwargs_from_args(args: argparse.Namespace, memory: str | None = None) -> dict[str, Any]:
    """The memory arguments the user set, for ``memory`` (default ``args.memory``); a flag that the memory
    does not take is an error."""
    memory = memory or args.memory
    accepted = memory_parameters(memory)
    kwargs: dict[str, Any] = {}
    for flag, (dest, _, _) in MEMORY_FLAGS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if dest not in accepted:
            raise UsageError(f"{flag} does not apply to --memory {memory} (it takes {', '.join(accepted)})")
        kwargs[dest] = value
    return kwargs


# ---------------------------------------------------------------------- settings as command-line words


def parser_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The parser's options by destination name (for a destination with two flags, the last one added)."""
    return {action.dest: action for action in parser._actions if action.option_strings}


def resolve_option(options: dict[str, argparse.Action], key: str, source: str) -> argparse.Action:
    """The option a setting names, written as a flag or a destination (``--lr``, ``lr``, ``chunk-size``,
    ``chunk_size``).

    :raises UsageError: for a name the parser has no flag for, naming ``source``
    """
    dest = key.lstrip("-").replace("-", "_")
    if dest not in options or dest == "help":
        raise UsageError(f"{source}: unknown setting {key!r}: use a flag of the runner (see its --help)")
    return options[dest]


def option_words(action: argparse.Action, value: Any) -> list[str]:
    """The command-line words that set ``action`` to ``value`` (nothing for None: the default stays)."""
    flag = action.option_strings[0]
    if isinstance(action, argparse.BooleanOptionalAction):
        return [] if value is None else [flag] if value else [f"--no-{flag[2:]}"]
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return [flag] if value == action.const else []
    return [] if value is None else [flag, str(value)]


def settings_argv(parser: argparse.ArgumentParser, settings: dict[str, Any], source: str) -> list[str]:
    """Command-line words for ``settings`` (destination -> value, e.g. from a YAML file), so that the
    parser checks and converts them exactly as it does typed flags.

    :raises UsageError: for a setting the parser has no flag for, naming ``source``
    """
    options = parser_options(parser)
    words: list[str] = []
    for key, value in settings.items():
        words += option_words(resolve_option(options, str(key), source), value)
    return words
