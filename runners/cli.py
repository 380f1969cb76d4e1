"""What every runner shares: one-line errors, thread settings, devices, the evaluation protocol's and the
encoder's flags. The memory flags and settings as command-line words (``agents.command_line``), run
directories (``agents.run_records``), console lines (``agents.reporting``) and the evaluation envs
(``agents.training_envs``) live in the library and are re-exported here."""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Callable
from typing import NoReturn

import torch

# Re-exported: the runners import what they share from here.
from agents.atomic import write_json  # noqa: F401
from agents.command_line import (  # noqa: F401
    MEMORY_FLAGS,
    UsageError,
    add_memory_arguments,
    add_memory_option_flags,
    fraction,
    memory_kwargs_from_args,
    non_negative_float,
    non_negative_int,
    option_words,
    output_directory,
    parser_options,
    positive_float,
    positive_int,
    ray_address,
    resolve_option,
    settings_argv,
    unit_interval,
)
from agents.evaluation import default_deterministic
from agents.factory import DEFAULT_FEATURES_DIM
from agents.reporting import describe_result, print_run_start, print_summary  # noqa: F401
from agents.run_records import default_run_dir, prepare_run_dir  # noqa: F401
from agents.training_envs import evaluation_envs  # noqa: F401
from policies.encoder import BabyAIFeaturesExtractor


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line naming the problem (``--help`` still shows everything)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class DefaultsOnceFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults formatter, but a default is shown once: not appended to a help text that already
    names it (e.g. "hidden size (lstm, gru; default 128)"), and not shown as "None" for a flag that is unset
    unless given (its help text says what happens then)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default is None or "default" in text.lower():
            return action.help
        return super()._get_help_string(action)


def make_parser(prog: str, description: str) -> OneLineParser:
    return OneLineParser(prog=prog, description=description, formatter_class=DefaultsOnceFormatter)


def run_main(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Call ``main`` and turn a ``UsageError`` or ``ValueError`` into one line on stderr and exit code 2."""
    try:
        return main(argv)
    except (UsageError, ValueError) as error:
        print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2


def set_threads(threads: int | None) -> int:
    """Give torch all cores but one: the environments need a core too."""
    threads = threads or max(1, (os.cpu_count() or 2) - 1)
    torch.set_num_threads(threads)
    return threads


def check_device(device: str, flag: str = "--device") -> str:
    """The torch device ``device``, refused in one line when this machine cannot run it.

    SB3 silently trains on the CPU when asked for CUDA on a machine without it; a user who asked for a GPU
    should hear that instead. ``"auto"`` picks CUDA when there is one, the CPU otherwise.

    :raises UsageError: for a name torch does not know, or a CUDA / MPS device this machine lacks
    """
    if device == "auto":
        return device
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise UsageError(f"{flag} {device}: not a torch device; use auto, cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(
                f"{flag} {device}: this machine has no CUDA device (torch.cuda.is_available() is False); "
                "use --device cpu, or auto to take a GPU only when there is one"
            )
        if parsed.index is not None and parsed.index >= count:
            raise UsageError(
                f"{flag} {device}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}"
            )
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"{flag} {device}: MPS is not available on this machine; use --device cpu")
    return device


# ---------------------------------------------------------------------- evaluation protocol


def add_eval_protocol_arguments(group: argparse._ActionsContainer) -> None:
    """``--deterministic`` and ``--stochastic-eval / --no-stochastic-eval`` (destination ``stochastic_eval``,
    ``None`` unless given: ``resolve_stochastic_eval`` then picks the env's default protocol)."""
    group.add_argument(
        "--deterministic",
        dest="stochastic_eval",
        action="store_false",
        default=None,
        help="greedy (argmax) actions in evaluations; default: sampled on MiniGrid/BabyAI, greedy elsewhere",
    )
    # Added last: runners.study finds a destination's flag by its last action, and this one can say both.
    group.add_argument(
        "--stochastic-eval",
        dest="stochastic_eval",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sample actions in evaluations (--no-stochastic-eval: greedy, like --deterministic)",
    )


def resolve_stochastic_eval(stochastic_eval: bool | None, env_id: str) -> bool:
    """Whether evaluations sample actions: as the user said, else the default for ``env_id``
    (``agents.evaluation.default_deterministic``: sampled on MiniGrid/BabyAI, greedy elsewhere)."""
    if stochastic_eval is not None:
        return bool(stochastic_eval)
    return not default_deterministic(env_id)


# ---------------------------------------------------------------------- observation encoder


# The BabyAI encoder's own default width, which --encoder-channels left unset keeps.
ENCODER_CHANNELS = inspect.signature(BabyAIFeaturesExtractor.__init__).parameters["channels"].default


def add_encoder_arguments(parser: argparse.ArgumentParser) -> None:
    """``--features-dim`` and ``--encoder-channels``: the observation encoder's widths, shared by the
    runners so that a BC model and the PPO run that fine-tunes it are built alike."""
    group = parser.add_argument_group("observation encoder")
    group.add_argument(
        "--features-dim",
        type=positive_int,
        default=DEFAULT_FEATURES_DIM,
        help="observation encoder output width",
    )
    group.add_argument(
        "--encoder-channels",
        type=positive_int,
        default=None,
        help=f"width of the BabyAI encoder's convolutions (MiniGrid/BabyAI only; default {ENCODER_CHANNELS})",
    )
