"""What every runner shares: one-line errors, thread settings, memory flags, run directories."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import torch
from stable_baselines3.common.vec_env import VecEnv

from envs import make_vec_env
from envs.suites import HELDOUT_SEED_START, Suite
from policies.memories import MEMORY_CLASSES, memory_parameters


class UsageError(Exception):
    """A mistake in the user's input: reported as one line on stderr with exit code 2, no traceback."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line naming the problem (``--help`` still shows everything)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def make_parser(prog: str, description: str) -> OneLineParser:
    return OneLineParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )


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


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


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
    "--window": ("window", int, "steps attended to (transformer; default 16)"),
    "--hidden-size": ("hidden_size", int, "hidden size (lstm, gru; default 128)"),
}


def add_memory_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("memory")
    group.add_argument("--memory", default="tlb", choices=list(MEMORY_CLASSES), help="which memory")
    for flag, (dest, kind, text) in MEMORY_FLAGS.items():
        group.add_argument(flag, dest=dest, type=kind, default=None, help=text)


def memory_kwargs_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The memory arguments the user set; a flag that the chosen memory does not take is an error."""
    accepted = memory_parameters(args.memory)
    kwargs: dict[str, Any] = {}
    for flag, (dest, _, _) in MEMORY_FLAGS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if dest not in accepted:
            raise UsageError(
                f"{flag} does not apply to --memory {args.memory} (it takes {', '.join(accepted)})"
            )
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


def print_summary(title: str, rows: list[tuple[str, str]]) -> None:
    """Plain aligned lines: paths stay whole (copy-pasteable) whatever the terminal width."""
    width = max(len(key) for key, _ in rows)
    print(f"\n{title}")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


def evaluation_envs(
    env_id: str, suite: Suite | None, n_envs: int, seed: int
) -> tuple[dict[str, VecEnv], dict[str, str]]:
    """The named evaluation envs every runner logs, with their seeds (for summaries).

    Without a suite: ``heldout``, ``env_id`` on seeds from ``HELDOUT_SEED_START + seed``. With one: ``train``
    and ``heldout/<side>`` for each held-out side.
    """
    if suite is None:
        eval_seed = HELDOUT_SEED_START + seed
        env = make_vec_env(env_id, n_envs=n_envs, seed=eval_seed)
        return {"heldout": env}, {"heldout": f"{env_id}, seeds from {eval_seed}"}
    sides = {"train": suite.train, **{f"heldout/{side.name}": side for side in suite.heldout}}
    envs = {name: side.make_vec_env(n_envs, seed=seed) for name, side in sides.items()}
    seeds = {name: f"{side.env_id}, seeds {side.describe_seeds()}" for name, side in sides.items()}
    return envs, seeds


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (temporary file, then rename) so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
