"""Every flag of every runner, given a value of the wrong type or out of range, is refused in one line with
exit code 2 and no traceback, before anything is written.

The table is built from the runners' own parsers, so a new flag is covered the day it is added: a typed flag
gets a word that is not a number (and a number out of its range), a flag with choices a word outside them,
and a flag that takes free text must have an entry in ``TEXT_VALUES`` (a test fails when one is missing).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_cells import RUNNERS, TINY_PPO, TINY_TLB, call, runner_main

from runners import ppo
from runners.cli import (
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    run_main,
    unit_interval,
)

# A value out of range for each checking type (the wrong-type word "many" is tried for all of them).
OUT_OF_RANGE = {
    positive_int: "0",
    non_negative_int: "-1",
    positive_float: "0",
    non_negative_float: "-0.5",
    unit_interval: "1.5",
    fraction: "1",
}
NUMBERS = {int, float, *OUT_OF_RANGE}
# Plain int flags and what is out of range for them.
INT_OUT_OF_RANGE = {"--seed": "-1", "--frame-stack": "0"}

# Flags that take free text: a bad value each (the placeholders {missing}, {file} and {tmp} are filled in).
TEXT_VALUES: dict[str, dict[str, str]] = {
    "ppo": {
        "--env": "NoSuchEnv-v0",
        "--suite": "no-such-suite",
        "--resume": "{missing}",
        "--init-from": "{missing}",
        "--hyperparams": "{missing}",
        "--device": "tpu:7",
        "--logdir": "{file}",
        "--net-arch": "[64, 'x']",
        "--lr": "lin_many",
        "--sequence-length": "whole",
        "--clip-range": "fast",
        "--clip-range-vf": "lin_-1",
        "--policy-kwargs": "dict(activation_fn=nn.NoSuchActivation)",
        "--env-wrapper": "no_such_module.Wrapper",
        "--normalize-kwargs": "dict(norm_reward=",
        "--callback": "no_such_module.Callback",
    },
    "evaluate": {
        "model": "{missing}",
        "--env": "NoSuchEnv-v0",
        "--suite": "no-such-suite",
        "--device": "tpu:7",
        "--json": "{missing}/out.json",
        "--gif": "{tmp}",
        "--attention": "{missing}/a.png",
    },
    "bc": {
        "--demos": "{missing}",
        "--env": "NoSuchEnv-v0",
        "--suite": "no-such-suite",
        "--device": "tpu:7",
        "--logdir": "{file}",
    },
    "demos": {"--env": "CartPole-v1", "--out": "{tmp}"},
    "study": {
        "--env": "NoSuchEnv-v0",
        "--suite": "no-such-suite",
        "--benchmark": "no-such-benchmark",
        "--tasks": "NoSuchTask",
        "--demos": "{missing}",
        "--memories": "tlb,no-such-memory",
        "--seeds": "3-1",
        "--grid": "chunk_size",
        "--out": "{file}",
        "--resume": "{missing}",
        "--address": "not an address",
        "--metric": "eval/nowhere/success_rate",
    },
    "report": {"dirs": "{missing}", "--out": "{file}"},
}


def base_argv(runner: str, paths: dict[str, str]) -> list[str]:
    """Settings with which the runner would do a tiny job: a bad value added to them must stop it."""
    return {
        "ppo": ["--env", "CartPole-v1", *TINY_PPO, *TINY_TLB, "--logdir", f"{paths['tmp']}/run"],
        "evaluate": [paths["model"], "--env", "CartPole-v1", "--episodes", "1", "--threads", "1"],
        "bc": ["--demos", paths["demos"], "--epochs", "1", "--eval-episodes", "1", "--threads", "1",
               "--logdir", f"{paths['tmp']}/bc", *TINY_TLB[:2]],
        "demos": ["--env", "BabyAI-GoToLocal-v0", "--episodes", "1", "--out", f"{paths['tmp']}/demos.npz",
                  "--no-progress"],
        "study": ["--env", "CartPole-v1", "--memories", "none", "--seeds", "0",
                  "--out", f"{paths['tmp']}/study",
                  "--total-steps", "64"],
        "report": [paths["run"]],
    }[runner]  # fmt: skip


def value_actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """The parser's arguments that take a value (flags with a value, and positionals)."""
    for action in parser._actions:
        if action.nargs == 0 or isinstance(action, argparse._HelpAction):
            continue
        yield action


def name_of(action: argparse.Action) -> str:
    return action.option_strings[0] if action.option_strings else action.dest


def bad_values(runner: str) -> Iterator[tuple[str, str, str]]:
    """(runner, flag, bad value) for every value-taking argument of the runner."""
    parser = importlib_parser(runner)
    for action in value_actions(parser):
        name = name_of(action)
        if action.choices is not None:
            yield runner, name, "no-such-choice"
        elif action.type in NUMBERS:
            yield runner, name, "many"
            out_of_range = OUT_OF_RANGE.get(action.type) or INT_OUT_OF_RANGE.get(name)  # type: ignore[arg-type]
            if out_of_range is not None:
                yield runner, name, out_of_range
        if name in TEXT_VALUES[runner]:
            yield runner, name, TEXT_VALUES[runner][name]


def importlib_parser(runner: str) -> argparse.ArgumentParser:
    module = __import__(f"runners.{runner}", fromlist=["build_parser"])
    return module.build_parser()


CASES = [case for runner in RUNNERS for case in bad_values(runner)]


def test_every_free_text_argument_has_a_bad_value_in_the_table() -> None:
    for runner in RUNNERS:
        free_text = {
            name_of(action)
            for action in value_actions(importlib_parser(runner))
            if action.choices is None and action.type not in NUMBERS
        }
        assert free_text <= set(TEXT_VALUES[runner]), f"runners.{runner}: add bad values for {free_text}"
        assert callable(runner_main(runner))


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A tiny trained model and run directory, a demos file, a plain file and a missing path."""
    root = tmp_path_factory.mktemp("bad-values")
    run = root / "trained"
    assert run_main(ppo.main, ["--env", "CartPole-v1", *TINY_PPO, *TINY_TLB, "--logdir", str(run)]) == 0
    from runners import demos

    demos_file = root / "demos.npz"
    assert run_main(demos.main, ["--env", "BabyAI-GoToLocal-v0", "--episodes", "4", "--out", str(demos_file),
                                 "--no-progress"]) == 0  # fmt: skip
    a_file = root / "a-file.txt"
    a_file.write_text("not a directory\n")
    return {
        "tmp": str(root),
        "model": str(run / "model.zip"),
        "run": str(run),
        "demos": str(demos_file),
        "file": str(a_file),
        "missing": str(root / "missing"),
    }


def fill(value: str, paths: dict[str, str]) -> str:
    return value.format(**paths)


def set_value(argv: list[str], name: str, value: str) -> list[str]:
    """``argv`` with ``name`` set to ``value``: replacing the positional or flag if present, else added."""
    if not name.startswith("-"):  # a positional: the first word
        return [value, *argv[1:]]
    words, skip = [], False
    for index, word in enumerate(argv):
        if skip:
            skip = False
            continue
        if word == name and index + 1 < len(argv):
            skip = True
            continue
        words.append(word)
    return [*words, name, value]


@pytest.mark.parametrize("runner, name, value", CASES, ids=[f"{r}{n}={v}" for r, n, v in CASES])
def test_a_bad_value_is_refused_in_one_line(
    runner: str, name: str, value: str, paths: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = set_value(base_argv(runner, paths), name, fill(value, paths))
    if runner == "study" and name == "--tasks":
        argv = [word for word in argv if word not in ("--env", "CartPole-v1")] + ["--benchmark", "memory"]
    if runner == "study" and name == "--demos":
        argv += ["--algo", "bc"]
    if runner == "study" and name == "--metric":  # the metric a search optimises
        argv += ["--search", "optuna", "--grid", "lr=log:1e-4:1e-2"]
    before = sorted(str(path) for path in Path(paths["tmp"]).rglob("*"))
    answer = call(runner, argv, capsys)
    assert answer.refused_in_one_line(), f"{answer.code}: {answer.err}\n{answer.out[-2000:]}"
    assert sorted(str(path) for path in Path(paths["tmp"]).rglob("*")) == before, "a refusal wrote files"


def test_the_table_covers_every_runner() -> None:
    covered = {runner for runner, _, _ in CASES}
    assert covered == set(RUNNERS)
    assert json.dumps(TEXT_VALUES)  # plain data, printable in a failure
