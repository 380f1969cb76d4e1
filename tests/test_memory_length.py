"""The report's memory-length view: tasks of one env family that name a memory length become a table and a
curve per memory, and "longest solved" means every seed at the threshold."""

from __future__ import annotations

from pathlib import Path

import pytest

from envs import load_benchmark, passive_tmaze_id
from studies.memory_length import family_name, length_families
from studies.report import memory_length_section
from studies.runs import Run
from studies.scores import group_tasks

REPS = 200


def tmaze_run(label: str, length: int, seed: int, success: float) -> Run:
    score = {"metric": "success_rate", "min": 0.0, "max": 1.0, "threshold": 0.95, "memory_length": length}
    return Run(
        run_dir=Path(f"{label}-L{length}-s{seed}"), task=f"TMaze{length}", label=label, seed=seed,
        env_id=passive_tmaze_id(length), metric="success_rate", score=score, curves={}, frames=None,
        fps=None, command="", deterministic_eval=True, eval_episodes=100,
        final={"heldout": {"success_rate": success}},
    )  # fmt: skip


# tlb: all seeds at >= 0.95 up to L=30, one seed short at 100; gru: L=10 only; lstm has no runs at 100.
SUCCESS = {
    "tlb": {10: [1.0, 1.0, 1.0], 30: [0.96, 1.0, 0.95], 100: [1.0, 0.94, 1.0]},
    "gru": {10: [1.0, 0.99, 1.0], 30: [0.5, 1.0, 0.5], 100: [0.5, 0.5, 0.5]},
    "lstm": {10: [0.5, 0.5, 0.5], 30: [0.5, 0.5, 0.5]},
}


def runs() -> list[Run]:
    return [
        tmaze_run(label, length, seed, value)
        for label, by_length in SUCCESS.items()
        for length, values in by_length.items()
        for seed, value in enumerate(values)
    ]


def test_family_names_drop_the_length() -> None:
    assert family_name(passive_tmaze_id(100)) == "TLB-PassiveTMaze"
    assert family_name("MiniGrid-MemoryS13-v0") == "MiniGrid-MemoryS13"


def test_longest_solved_needs_every_seed_at_the_threshold() -> None:
    (family,) = length_families(group_tasks(runs()))
    assert [length for length, _ in family.tasks] == [10, 30, 100]
    assert family.longest_solved("tlb") == 30  # one seed of L=100 at 0.94
    assert family.longest_solved("gru") == 10
    assert family.longest_solved("lstm") is None


def test_tasks_without_a_memory_length_make_no_family() -> None:
    plain = [Run(**{**vars(run), "score": {**run.score, "memory_length": None}}) for run in runs()]
    assert length_families(group_tasks(plain)) == []


@pytest.mark.slow
def test_the_section_has_a_row_per_memory_and_writes_its_plot(tmp_path: Path) -> None:
    (family,) = length_families(group_tasks(runs()))
    lines: list[str] = []
    memory_length_section(family, tmp_path / "plots", lines, reps=REPS)
    text = "\n".join(lines)
    assert "## Memory length: TLB-PassiveTMaze" in text
    rows = {
        line.split(" | ")[0].strip("| "): line
        for line in lines
        if line.startswith("| ") and "---" not in line
    }
    assert rows["tlb"].endswith("| 30 |") and "(2/3)" in rows["tlb"]  # L=100: 2 of 3 seeds reached 0.95
    assert rows["gru"].endswith("| 10 |")
    assert rows["lstm"].endswith("| none |") and "no runs" in rows["lstm"]
    image = tmp_path / "plots" / "memory_length_TLB-PassiveTMaze.png"
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](plots/memory_length_TLB-PassiveTMaze.png)" in text


def test_the_long_memory_benchmark_names_a_memory_length_for_every_tmaze_task() -> None:
    benchmark = load_benchmark("long-memory")
    tmaze = [task for task in benchmark.tasks if task.env.startswith("TLB-PassiveTMaze")]
    assert len(tmaze) >= 3
    for task in tmaze:
        assert task.memory_length is not None and task.env == passive_tmaze_id(task.memory_length)
        assert task.threshold == 0.95 and task.metric == "success_rate"
        assert task.as_dict()["memory_length"] == task.memory_length
