"""Atomic file writes: a file is either its old content or its whole new content, never half of either.

Every file a run writes for others to read (models and checkpoints, JSON summaries, demos, GIFs and plots)
goes through ``atomic_write``: the content is written to a hidden temporary file beside the target, then
renamed onto it (``os.replace``, atomic on POSIX and Windows within one directory). A crash or a Ctrl-C
mid-write leaves the previous file intact, and a reader (``runners.report``, ``--resume``) never sees a
truncated one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def temporary_path(path: Path) -> Path:
    """The hidden temporary file ``atomic_write`` writes first: beside ``path`` (so the rename stays in one
    filesystem), unique to this process, and ending with ``path``'s suffix (writers such as SB3's ``save``
    or numpy's ``savez`` append their suffix to a name that lacks it)."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Write ``path`` by calling ``write(tmp)`` on a temporary file, then renaming it onto ``path``.

    :param path: the file to (over)write; its directory must exist
    :param write: writes the whole content to the path it is given
    :return: ``path``
    :raises: whatever ``write`` raises; the temporary file is removed and ``path`` left untouched
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """``atomic_write`` of a text file."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: str | Path, data: Any, **dumps_kwargs: Any) -> Path:
    """``atomic_write`` of ``json.dumps(data, **dumps_kwargs)`` and a final newline."""
    return atomic_write_text(path, json.dumps(data, **dumps_kwargs) + "\n")


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    """Write a run's or a study's JSON file (sorted keys, indented, anything else as its ``str``)
    atomically, so a crash never leaves half a file."""
    return atomic_write_json(path, data, indent=2, sort_keys=True, default=str)
