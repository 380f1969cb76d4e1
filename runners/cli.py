"""What every runner shares: one-line errors, thread settings, memory flags, run directories."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import torch
from stable_baselines3.common.vec_env import VecEnv

from agents.atomic import atomic_write_json
from agents.evaluation import EvaluationResult, default_deterministic
from agents.factory import DEFAULT_FEATURES_DIM
from envs import make_vec_env
from envs.suites import HELDOUT_SEED_START, Suite
from policies.memories import MEMORY_CLASSES, memory_parameters


class UsageError(Exception):
    """A mistake in the user's input: reported as one line on stderr with exit code 2, no traceback."""


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


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


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
        help="width of the BabyAI encoder's convolutions (MiniGrid/BabyAI only; default 32)",
    )


# ---------------------------------------------------------------------- memory flags

# flag name -> (memory argument, type, help)
MEMORY_FLAGS: dict[str, tuple[str, type, str]] = {
    "--d-model": ("d_model", int, "width of tokens and latents (tlb, transformer; default 128)"),
    "--n-latents": ("n_latents", int, "number of slow latent vectors N (tlb; default 4)"),
    "--chunk-size": ("chunk_size", int, "steps per chunk K (tlb; default 8)"),
    "--n-layers": ("n_layers", int, "self-attention blocks / recurrent layers (default 1)"),
    "--cross-every": (
        "cross_every",
        int,
        "a cross-attention block after every R self blocks (tlb; default 1)",
    ),
    "--n-heads": ("n_heads", int, "attention heads (tlb, transformer; default 4)"),
    "--ffn-mult": (
        "ffn_mult",
        int,
        "feed-forward width as a multiple of d_model (tlb, transformer; default 2)",
    ),
    "--gate": ("gate", str, "slow update: none (residual) or gru (tlb; default none)"),
    "--previous-chunk": (
        "previous_chunk",
        bool,
        "the fast stream also attends to the previous chunk's steps (tlb; default off)",
    ),
    "--input-shift": (
        "input_shift",
        int,
        "each token also sees the inputs of this many earlier steps directly (tlb; default 2, tlb-paper 0)",
    ),
    "--shift-mixing": (
        "shift_mixing",
        str,
        "the input shift's map of the earlier inputs: dense, or channel, one weight per channel and step "
        "(tlb; default dense)",
    ),
    "--normalize-latents": (
        "normalize_latents",
        bool,
        "LayerNorm the slow latents after each residual of their update (tlb; default on, tlb-paper off)",
    ),
    "--latent-init-std": (
        "latent_init_std",
        float,
        "standard deviation of the initial latents I_0 at initialisation (tlb; default 0.02)",
    ),
    "--window": ("window", int, "steps attended to (transformer; default 16)"),
    "--hidden-size": ("hidden_size", int, "hidden size (lstm, gru; default 128)"),
}


def add_memory_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("memory")
    group.add_argument("--memory", default="tlb", choices=list(MEMORY_CLASSES), help="which memory")
    add_memory_option_flags(group)


def add_memory_option_flags(group: argparse._ActionsContainer) -> None:
    """The memories' own flags (``--chunk-size``, ``--input-shift``, ...), each defaulting to None (unset)."""
    for flag, (dest, kind, text) in MEMORY_FLAGS.items():
        if kind is bool:
            group.add_argument(
                flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            group.add_argument(flag, dest=dest, type=kind, default=None, help=text)


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


# ---------------------------------------------------------------------- run directories


def default_run_dir(root: str, env_id: str, memory: str, seed: int) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / re.sub(r"[^A-Za-z0-9_.-]", "_", env_id) / memory / f"seed{seed}-{stamp}"


def prepare_run_dir(path: Path, overwrite: bool) -> Path:
    """Create the run directory; refuse to reuse a non-empty one unless told to."""
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

    Without a suite: ``heldout``, ``env_id`` on seeds from ``HELDOUT_SEED_START + seed``. With one: ``train``
    and ``heldout/<side>`` for each held-out side (whose own ``env_kwargs`` say whether they add the previous
    action and reward: ``Suite.with_env_kwargs``).
    """
    if suite is None:
        eval_seed = HELDOUT_SEED_START + seed
        env = make_vec_env(
            env_id,
            n_envs=n_envs,
            seed=eval_seed,
            previous_action_reward=previous_action_reward,
            wrapper_class=wrapper_class,
        )
        return {"heldout": env}, {"heldout": f"{env_id}, seeds from {eval_seed}"}
    sides = {"train": suite.train, **{f"heldout/{side.name}": side for side in suite.heldout}}
    envs = {name: side.make_vec_env(n_envs, seed=seed) for name, side in sides.items()}
    seeds = {name: f"{side.env_id}, seeds {side.describe_seeds()}" for name, side in sides.items()}
    return envs, seeds


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a run's JSON file atomically (``agents.atomic``) so a crash never leaves half a file."""
    atomic_write_json(path, data, indent=2, sort_keys=True, default=str)


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
