"""The guide's flag tables are the runners' parsers, written out (``python docs/flag_tables.py``)."""

from __future__ import annotations

import argparse
import importlib.util
import re
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


LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def heading_anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings (lower case, punctuation dropped, "-n" repeats)."""
    seen: dict[str, int] = {}
    in_code = False
    for line in path.read_text().splitlines():
        in_code = in_code != line.startswith("```")
        heading = None if in_code else re.match(r"^#{1,6}\s+(.*)$", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            seen[slug] = seen.get(slug, -1) + 1
    return {slug if n == 0 else f"{slug}-{n}" for slug, count in seen.items() for n in range(count + 1)}


def test_every_relative_link_in_the_docs_resolves() -> None:
    """README.md, CHANGELOG.md and every page under docs/: each relative link names a file that exists, and
    each #anchor a heading of that page."""
    root = DOCS.parent
    pages = [root / "README.md", root / "CHANGELOG.md", *DOCS.rglob("*.md")]
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            destination = (page.parent / path).resolve() if path else page
            if not destination.exists():
                broken.append(f"{page.relative_to(root)}: {target}")
            elif anchor and (destination.suffix != ".md" or anchor not in heading_anchors(destination)):
                broken.append(f"{page.relative_to(root)}: {target} (no such heading)")
    assert not broken, broken
