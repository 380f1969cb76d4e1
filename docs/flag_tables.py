"""Regenerate the flag tables of docs/guide.md from the runners' own parsers: ``python docs/flag_tables.py``.

Each table block sits between ``<!-- flags: RUNNER -->`` and ``<!-- end of flags -->`` in the guide and is
written from ``runners.RUNNER.build_parser()``, grouped as ``--help`` groups the flags, so a flag's meaning
and default are stated once, in the code. ``--check`` writes nothing and exits 1 when a block is out of date
(the test suite runs it).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

GUIDE = Path(__file__).resolve().parent / "guide.md"
BLOCK = re.compile(r"(<!-- flags: (\w+) -->\n)(.*?)(<!-- end of flags -->)", re.S)
GROUP_TITLES = {"options": "general", "positional arguments": "arguments"}


def cell(text: str) -> str:
    """Text fit for one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def default_of(action: argparse.Action) -> str:
    """The default as the table shows it: on/off for a switch, the value in code quotes, else nothing."""
    default = action.default
    if default is None or default is argparse.SUPPRESS or (isinstance(default, list) and not default):
        return ""
    if isinstance(action, argparse._StoreTrueAction) and default is False:
        return "off"
    if isinstance(action, argparse.BooleanOptionalAction):
        return "on" if default else "off"
    return f"`{default}`"


def flag_words(action: argparse.Action) -> str:
    """How the flag is typed: ``--env ENV``, ``--gate {none,gru}``, ``--normalize``, ``--no-normalize``."""
    if not action.option_strings:
        return f"`{action.metavar or action.dest}` (positional)"
    takes_value = action.nargs != 0 and not isinstance(action, argparse.BooleanOptionalAction)
    if not (action.metavar or takes_value):
        return ", ".join(f"`{flag}`" for flag in action.option_strings)
    value = action.metavar or action.dest.upper()
    if action.choices and not action.metavar:
        value = "{" + ",".join(map(str, action.choices)) + "}"
    return f"`{action.option_strings[0]} {value}`" + "".join(f", `{s}`" for s in action.option_strings[1:])


def row(action: argparse.Action, prog: str) -> str:
    """One table row: the flag, its meaning, its default (a default named in the help moves to the column)."""
    text = action.help % {"default": action.default, "prog": prog} if action.help else ""
    default = default_of(action)
    scoped = re.search(r"\s*\(([^;()]*); default ((?:[^()]|\([^()]*\))*)\)$", text)  # "min(2, K)" too
    if scoped and not default:
        meaning = f"{cell(text[: scoped.start()])} ({scoped.group(1)})"
        return f"| {flag_words(action)} | {meaning} | {scoped.group(2)} |"
    named = re.search(r"\s*\(default:? ([^)]*)\)$", text)
    if named:
        text = text[: named.start()]
        default = default or named.group(1)
    return f"| {flag_words(action)} | {cell(text)} | {default} |"


def flag_tables(runner: str) -> str:
    """The Markdown tables of ``runners.RUNNER``'s flags, one per ``--help`` group."""
    parser = importlib.import_module(f"runners.{runner}").build_parser()
    parts = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if not isinstance(a, argparse._HelpAction)]
        if not actions:
            continue
        title = GROUP_TITLES.get(str(group.title), group.title)
        lines = [f"*{title}*", "", "| flag | meaning | default |", "|---|---|---|"]
        lines += [row(action, parser.prog) for action in actions]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def regenerate(text: str) -> str:
    return BLOCK.sub(lambda m: f"{m.group(1)}{flag_tables(m.group(2))}{m.group(4)}", text)


def main(argv: list[str]) -> int:
    old = GUIDE.read_text()
    new = regenerate(old)
    if "--check" in argv:
        if new != old:
            print(f"{GUIDE} is out of date with the runners' flags: run python docs/flag_tables.py")
            return 1
        return 0
    GUIDE.write_text(new)
    print(f"{GUIDE}: {len(BLOCK.findall(new))} flag blocks written")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(GUIDE.parents[1]))
    sys.exit(main(sys.argv[1:]))
