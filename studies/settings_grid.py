"""The settings-grid view of a study: how each memory's final score holds across a grid of its settings
(``runners.study --grid d_model=64,128,256 lr=3e-4,1e-3``): the cells of each memory's grid and their heat
map; ``studies.report`` writes the table.

A default should sit where a memory holds across the grid, not at one lucky point of it: the view shows every
cell's mean score and, where the task has a threshold, how many seeds reached it, and per memory its worst
cell, so that a reader sees at once which settings are safe and which are a cliff edge.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studies.scores import TaskScores


def parse_label(label: str) -> tuple[str, dict[str, str]]:
    """A study label's memory and grid settings: ``"tlb d_model=64 lr=0.001"`` -> ``("tlb", {"d_model": "64",
    "lr": "0.001"})``."""
    memory, *pairs = label.split(" ")
    return memory, dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def value_key(value: str) -> tuple[int, float | str]:
    """Sort key for grid values: numbers by size, then anything else by name."""
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def lr_last(axes: list[str]) -> list[str]:
    """Grid axes in order, the learning rate moved last: it is the one axis every memory shares (widths go by
    d_model or hidden_size), so it takes the columns and the last place of a cell."""
    return [axis for axis in axes if axis != "lr"] + (["lr"] if "lr" in axes else [])


def grid_cell(settings: dict[str, str]) -> tuple[str, ...]:
    """A label's place in its memory's grid, as values with the learning rate last: ``{"d_model": "64",
    "lr": "0.001"}`` and ``{"hidden_size": "64", "lr": "0.001"}`` share the cell ``("64", "0.001")``, so that
    memories with different width flags meet in the same cell."""
    return tuple(settings[axis] for axis in lr_last(list(settings)))


def labels_by_memory(labels: list[str]) -> dict[str, dict[str, dict[str, str]]]:
    """Memory -> its labels -> their settings, memories and labels in order of first appearance."""
    by_memory: dict[str, dict[str, dict[str, str]]] = {}
    for label in labels:
        memory, settings = parse_label(label)
        by_memory.setdefault(memory, {})[label] = settings
    return by_memory


def compared_pairs(labels: list[str]) -> list[tuple[str, str]]:
    """The ordered label pairs whose probability of improvement a report shows. Without a settings grid,
    every pair; with one, each memory against every other memory in the same grid cell (a label without
    settings against every label), since the grid's own table already compares one memory's cells, and
    every pair of a 3 x 3 grid over three memories would be 702 numbers that nobody reads. One memory's
    labels that each set a single flag (a one-axis study), or that form a lever table (``is_lever_set``: lever
    studies reported together, also at a shared setting), are compared with each other too: there the
    question is which value of the lever is better."""
    parsed = {label: parse_label(label) for label in labels}
    by_memory = labels_by_memory(labels)
    # Memories whose labels the report shows as a lever table (levers at a shared setting included).
    lever_memories = {memory for memory, group in by_memory.items() if is_lever_set(varying_settings(group))}
    pairs = []
    for x, y in itertools.permutations(labels, 2):
        (memory_x, settings_x), (memory_y, settings_y) = parsed[x], parsed[y]
        if not settings_x or not settings_y:
            pairs.append((x, y))
        elif memory_x != memory_y and grid_cell(settings_x) == grid_cell(settings_y):
            pairs.append((x, y))
        elif memory_x == memory_y and (len(settings_x) == len(settings_y) == 1 or memory_x in lever_memories):
            pairs.append((x, y))
    return pairs


@dataclass
class MemoryGrid:
    """One memory's cells on one task: rows over its first grid axis, columns over its second (the learning
    rate where it is one of the axes, so that memories with different width flags share the columns)."""

    memory: str
    row_axis: str | None
    column_axis: str | None
    rows: list[str]
    columns: list[str]
    labels: dict[tuple[str, str], str]  # (row value, column value) -> study label


def memory_grids(task: TaskScores) -> list[MemoryGrid]:
    """The grid of every memory of ``task`` that ran at two or more settings (memories with one label have
    no grid to show). Memories keep their order of first appearance."""
    by_memory = labels_by_memory(list(task.runs))
    grids = []
    for memory, labels in by_memory.items():
        if len(labels) < 2:
            continue
        shared = shared_settings(labels)
        varying = varying_settings(labels)
        if is_lever_set(varying):
            name = " ".join([memory, *(f"{key}={value}" for key, value in shared.items())])
            grids.append(lever_grid(name, varying))
            continue
        axes = lr_last(list(dict.fromkeys(key for settings in labels.values() for key in settings)))
        row_axis = axes[0] if len(axes) > 1 else None
        column_axis = axes[-1] if axes else None
        cells: dict[tuple[str, str], str] = {}
        for label, settings in labels.items():
            row = settings.get(row_axis, "") if row_axis else ""
            column = settings.get(column_axis, "") if column_axis else ""
            cells[(row, column)] = label
        rows = sorted({row for row, _ in cells}, key=value_key)
        columns = sorted({column for _, column in cells}, key=value_key)
        grids.append(MemoryGrid(memory, row_axis, column_axis, rows, columns, cells))
    return grids


def shared_settings(labels: dict[str, dict[str, str]]) -> dict[str, str]:
    """The settings that every one of a memory's labels sets to the same value (e.g. ``d_model=128`` in
    ``tlb d_model=128 chunk_size=16`` and ``tlb d_model=128 input_shift=4``)."""
    first, *others = labels.values()
    return {key: value for key, value in first.items() if all(other.get(key) == value for other in others)}


def varying_settings(labels: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Each of a memory's labels' settings without the ones all of them share (``shared_settings``)."""
    shared = shared_settings(labels)
    return {
        label: {k: v for k, v in settings.items() if k not in shared} for label, settings in labels.items()
    }


def is_lever_set(labels: dict[str, dict[str, str]]) -> bool:
    """Whether one memory's labels are one-flag levers (each label sets at most one flag besides those
    every label shares, and they set different flags), as when one-axis studies of several levers are
    reported together: not a grid."""
    keys = {key for settings in labels.values() for key in settings}
    return len(keys) > 1 and all(len(settings) <= 1 for settings in labels.values())


LEVER_COLUMN = "score"
DEFAULTS_ROW = "defaults"  # the lever table's row of the label without settings


def lever_grid(memory: str, labels: dict[str, dict[str, str]]) -> MemoryGrid:
    """One column of levers: a row per ``flag=value`` (sorted by flag, then value), the label without
    settings (the defaults) first."""
    cells = {
        ("=".join(next(iter(settings.items()))) if settings else DEFAULTS_ROW, LEVER_COLUMN): label
        for label, settings in labels.items()
    }

    def row_key(row: str) -> tuple[bool, str, tuple[int, float | str]]:
        flag, _, value = row.partition("=")
        return row != DEFAULTS_ROW, flag, value_key(value)

    rows = sorted((row for row, _ in cells), key=row_key)
    return MemoryGrid(memory, "setting", None, rows, [LEVER_COLUMN], cells)


def plot_grids(task: TaskScores, grids: list[MemoryGrid], path: Path) -> str:
    """A heat map per memory (rows: its first axis, columns: its second) of the mean final score, on one
    colour scale (the task's normalisation range where it has one); returns the file name."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    low, high = (
        (task.normalisation["min"], task.normalisation["max"])
        if task.normalisation
        else (
            min(float(np.mean(task.final(label))) for label in task.runs),
            max(float(np.mean(task.final(label))) for label in task.runs),
        )
    )
    figure, axes = plt.subplots(
        1, len(grids), figsize=(3.2 * len(grids) + 0.8, 2.8), squeeze=False, constrained_layout=True
    )
    image = None
    for axis, grid in zip(axes[0], grids, strict=True):
        values = np.full((len(grid.rows), len(grid.columns)), np.nan)
        for (row, column), label in grid.labels.items():
            values[grid.rows.index(row), grid.columns.index(column)] = float(np.mean(task.final(label)))
        image = axis.imshow(values, vmin=low, vmax=high if high > low else low + 1, cmap="viridis")
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value):
                text = f"{value:.3g}"
                colour = "black" if high > low and (value - low) / (high - low) > 0.6 else "white"
                axis.text(j, i, text, ha="center", va="center", color=colour, fontsize=8)
        axis.set_xticks(range(len(grid.columns)), grid.columns, fontsize=8)
        axis.set_yticks(range(len(grid.rows)), grid.rows, fontsize=8)
        axis.set_xlabel(grid.column_axis or "")
        axis.set_ylabel(grid.row_axis or "")
        axis.set_title(grid.memory)
    if image is not None:
        figure.colorbar(image, ax=axes[0].tolist(), label=f"mean final {task.metric.replace('_', ' ')}")
    figure.suptitle(task.name)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path.name
