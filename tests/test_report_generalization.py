"""runners.report's generalization view of suite runs: the per-side IQM table with the generalization gap, the
grouped bar chart, and runs missing a held-out side (marked missing and warned about, never dropped). The
runs are fabricated run directories (no training), scored by their final evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runners import report
from runners.cli import run_main
from studies import statistics
from studies.runs import Run
from studies.scores import group_suites

SUITE = "memory-length"
TRAIN_ENV = "MiniGrid-MemoryS7-v0"
# Per memory: the success rate of every seed on each side (identical seeds: the IQM is the value itself).
SUCCESS = {
    "tlb": {"train": 0.9, "heldout/MemoryS9": 0.6, "heldout/MemoryS11": 0.4},
    "lstm": {"train": 0.8, "heldout/MemoryS9": 0.7, "heldout/MemoryS11": 0.5},
}
REPS = "200"  # bootstrap resamples: enough for a test, fast


def write_suite_run(run_dir: Path, memory: str, seed: int, success: dict[str, float]) -> None:
    """A finished ``runners.ppo --suite memory-length`` run as the loader reads it: ``config.json`` (the
    suite fixes its envs, so ``env`` is empty), ``final_eval.json`` with one result per side present in
    ``success``, and two periodic evaluations per side. Mean returns differ from the success rates, so a
    report scoring the wrong metric shows."""
    (run_dir / "eval").mkdir(parents=True)
    config = {
        "env": None,
        "suite": SUITE,
        "memory": memory,
        "seed": seed,
        "eval_episodes": 10,
        "stochastic_eval": False,
        "command": f"python -m runners.ppo --suite {SUITE} --memory {memory} --seed {seed}",
    }
    (run_dir / "config.json").write_text(json.dumps(config))
    final = {
        side: {"episodes": 10, "successes": round(10 * rate), "success_rate": rate, "success_ci95": [0, 1],
               "mean_return": rate / 10, "mean_length": 5.0}
        for side, rate in success.items()
    }  # fmt: skip
    (run_dir / "final_eval.json").write_text(json.dumps(final, sort_keys=True))  # as runners.cli writes it
    rows = [
        {"timesteps": t, "env": side, **result, "success_rate": result["success_rate"] * t / 200}
        for side, result in final.items()
        for t in (100, 200)
    ]
    (run_dir / "eval" / "evaluations.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (run_dir / "run_summary.json").write_text(json.dumps({"frames": 200, "fps": 100.0}))


def write_study(root: Path, seeds: int = 3) -> None:
    for memory, success in SUCCESS.items():
        for seed in range(seeds):
            write_suite_run(root / f"{memory}-s{seed}", memory, seed, success)


def section(text: str, heading: str) -> str:
    """The report's text from ``heading`` to the next ``## `` heading."""
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def table_rows(text: str) -> dict[str, list[str]]:
    """The cells of a markdown table's rows, keyed by their first cell (the header row under ``memory``)."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.slow
def test_the_generalization_table_has_every_side_and_the_gap_is_train_minus_heldout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_study(tmp_path)
    assert run_main(report.main, [str(tmp_path), "--reps", REPS]) == 0
    assert "warning" not in capsys.readouterr().err
    text = (tmp_path / "report.md").read_text()
    assert text.index(f"## Generalization: {SUITE}") < text.index("## Per task")
    view = section(text, f"## Generalization: {SUITE}")
    rows = table_rows(view)
    # Sides in the suite's order (S9 before S11, though final_eval.json sorts S11 first), then the gaps.
    assert rows["memory"] == [
        "seeds",
        "train IQM [95% CI]",
        "heldout/MemoryS9 IQM [95% CI]",
        "heldout/MemoryS11 IQM [95% CI]",
        "gap train - MemoryS9 [95% CI]",
        "gap train - MemoryS11 [95% CI]",
    ]
    # Identical seeds: every IQM and interval is the value; the gaps are 0.9 - 0.6 and 0.9 - 0.4 (success
    # rate, not the mean return of a tenth of it).
    assert rows["tlb"] == ["3", "0.9 [0.9, 0.9]", "0.6 [0.6, 0.6]", "0.4 [0.4, 0.4]", "0.3 [0.3, 0.3]",
                           "0.5 [0.5, 0.5]"]  # fmt: skip
    assert rows["lstm"] == ["3", "0.8 [0.8, 0.8]", "0.7 [0.7, 0.7]", "0.5 [0.5, 0.5]", "0.1 [0.1, 0.1]",
                            "0.3 [0.3, 0.3]"]  # fmt: skip
    # The protocol under the table, and the bar chart.
    after_table = view[view.index("| lstm |") :]
    assert "Score: success rate of the final evaluation" in after_table
    assert "greedy actions, 10 episodes per evaluation; trained on MiniGrid-MemoryS7-v0" in after_table
    chart = tmp_path / "plots" / f"generalization_{SUITE}.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"](plots/generalization_{SUITE}.png)" in view
    # Seeded bootstraps: the same runs give the same view.
    assert run_main(report.main, [str(tmp_path), "--reps", REPS]) == 0
    assert section((tmp_path / "report.md").read_text(), f"## Generalization: {SUITE}") == view


@pytest.mark.slow
def test_the_gap_is_the_iqm_of_per_run_differences() -> None:
    """Seeds that differ: the gap is the IQM of each run's train - held-out score (with 3 runs, their mean),
    not the difference of the sides' IQMs, and its interval comes from the same seeded bootstrap."""
    train, heldout = [0.9, 0.8, 0.7], [0.6, 0.6, 0.1]
    runs = [
        Run(
            run_dir=Path(f"r{seed}"), task=SUITE, label="tlb", seed=seed, env_id=TRAIN_ENV,
            metric="success_rate", score=None, curves={}, frames=None, fps=None, command="",
            deterministic_eval=True, eval_episodes=10,
            final={"train": {"success_rate": train[seed]},
                   "heldout/MemoryS9": {"success_rate": heldout[seed]}},
        )
        for seed in range(3)
    ]  # fmt: skip
    (suite,) = group_suites(runs)
    scores, gaps = statistics.generalization_estimates(suite)
    differences = np.array(train) - np.array(heldout)
    assert gaps["heldout/MemoryS9"]["tlb"].point == pytest.approx(differences.mean())  # 0.367
    points, intervals = statistics.interval_estimates({"tlb": differences[:, None]})
    assert gaps["heldout/MemoryS9"]["tlb"].low == pytest.approx(intervals["tlb"][0][0])
    assert gaps["heldout/MemoryS9"]["tlb"].high == pytest.approx(intervals["tlb"][1][0])
    assert scores["train"]["tlb"].point == pytest.approx(0.8)
    assert group_suites([Run(**{**vars(runs[0]), "final": {"heldout": {}}})]) == []  # plain env


@pytest.mark.slow
def test_a_run_missing_a_heldout_side_is_marked_missing_and_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_study(tmp_path)
    lacking = tmp_path / "lstm-s2"
    final = json.loads((lacking / "final_eval.json").read_text())
    del final["heldout/MemoryS11"]  # e.g. an evaluation that crashed on that side
    (lacking / "final_eval.json").write_text(json.dumps(final))
    assert run_main(report.main, [str(tmp_path), "--reps", REPS]) == 0
    warning = f"{lacking} (lstm, seed 2) has no final evaluation on heldout/MemoryS11, which 5 other run(s)"
    assert warning in capsys.readouterr().err
    view = section((tmp_path / "report.md").read_text(), f"## Generalization: {SUITE}")
    assert f"Warning: {warning}" in view
    rows = table_rows(view)
    # The run stays on its other sides (3 seeds); S11 and its gap use the 2 runs that have it, and say so.
    assert rows["lstm"][:3] == ["3", "0.8 [0.8, 0.8]", "0.7 [0.7, 0.7]"]
    assert rows["lstm"][3] == "0.5 [0.5, 0.5] from 2 of 3 runs; missing (1 of 3 runs)"
    assert rows["lstm"][5] == "0.3 [0.3, 0.3] from 2 of 3 runs; missing (1 of 3 runs)"
    assert rows["tlb"][3] == "0.4 [0.4, 0.4]"  # other memories untouched
    assert (tmp_path / "plots" / f"generalization_{SUITE}.png").is_file()


@pytest.mark.slow
def test_a_side_no_run_of_a_memory_has_is_missing_for_all_its_runs(tmp_path: Path) -> None:
    write_study(tmp_path, seeds=2)
    for seed in range(2):
        path = tmp_path / f"tlb-s{seed}" / "final_eval.json"
        final = json.loads(path.read_text())
        del final["heldout/MemoryS9"]
        path.write_text(json.dumps(final))
    assert run_main(report.main, [str(tmp_path), "--reps", REPS]) == 0
    view = section((tmp_path / "report.md").read_text(), f"## Generalization: {SUITE}")
    rows = table_rows(view)
    assert rows["tlb"][2] == rows["tlb"][4] == "missing (2 of 2 runs)"
    assert rows["tlb"][3] == "0.4 [0.4, 0.4]" and rows["lstm"][2] == "0.7 [0.7, 0.7]"
    assert view.count("Warning: ") == 2
    assert (tmp_path / "plots" / f"generalization_{SUITE}.png").is_file()
