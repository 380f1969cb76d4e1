"""The guide's flag tables are the runners' parsers, written out (``python docs/flag_tables.py``)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def flag_tables_module() -> ModuleType:
    """docs/flag_tables.py, a script rather than a package module."""
    spec = importlib.util.spec_from_file_location("flag_tables", DOCS / "flag_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_guide_lists_every_flag_of_every_runner_as_its_parser_has_it() -> None:
    flag_tables = flag_tables_module()
    guide = (DOCS / "guide.md").read_text()
    assert flag_tables.regenerate(guide) == guide, "run python docs/flag_tables.py"
    assert len(flag_tables.BLOCK.findall(guide)) == 6


def test_a_new_flag_shows_the_guide_out_of_date(monkeypatch: pytest.MonkeyPatch) -> None:
    flag_tables = flag_tables_module()
    from runners import demos

    original = demos.build_parser

    def changed() -> argparse.ArgumentParser:
        parser = original()
        parser.add_argument("--brand-new", help="a flag the guide does not know yet")
        return parser

    monkeypatch.setattr(demos, "build_parser", changed)
    guide = (DOCS / "guide.md").read_text()
    assert "--brand-new" in flag_tables.regenerate(guide)
    assert flag_tables.main(["--check"]) == 1
