"""What every runner shares: one-line errors, thread settings, flag types, run directories (the memory flags
and settings as command-line words live in ``agents.command_line`` and are re-exported here)."""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import torch
from stable_baselines3.common.vec_env import VecEnv

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
from agents.evaluation import EvaluationResult, default_deterministic
from agents.factory import DEFAULT_FEATURES_DIM
from envs.suites import Suite, heldout_side
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


def describe_result(result: EvaluationResult, seeds: str, with_return: bool = True) -> str:
    """One summary line of an evaluation, naming its protocol and saying "no success signal" for an env
    that gives none: ``0.700 [95% CI 0.400-0.890] over 20 episodes (sampled actions), return 0.61, ...``."""
    protocol = f" ({result.protocol} actions)" if result.protocol else ""
    text = f"{result.success_summary()} over {result.episodes} episodes{protocol}"
    if with_return:
        text += f", return {result.mean_return:.3f}"
    return f"{text}, length {result.mean_length:.1f} ({seeds})"


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


# ---------------------------------------------------------------------- run directories


def default_run_dir(root: str, env_id: str, memory: str, seed: int) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / re.sub(r"[^A-Za-z0-9_.-]", "_", env_id) / memory / f"seed{seed}-{stamp}"


def prepare_run_dir(path: Path, overwrite: bool) -> Path:
    """Create the run directory; refuse to reuse a non-empty one unless told to, or a file's name."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"run directory {path} is a file: pass another --logdir")
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise UsageError(
            f"run directory {path} already exists and is not empty: pass --overwrite or another --logdir"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def print_run_start(runner: str, run_dir: Path) -> None:
    """Before training: where the run writes, and the command that shows its curves while it runs."""
    print(f"{runner}: run directory {run_dir}", flush=True)
    print(f"{runner}: watch it with: tensorboard --logdir {run_dir}", flush=True)


def print_summary(title: str, rows: list[tuple[str, str]]) -> None:
    """Plain aligned lines: paths stay whole (copy-pasteable) whatever the terminal width."""
    width = max(len(key) for key, _ in rows)
    print(f"\n{title}")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


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
