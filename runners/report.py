"""Statistics and plots of studies and runs, with rliable: ``python -m runners.report DIR [DIR ...]``.

DIR is a study directory (``runners.study --out``), a run directory (``runners.ppo`` / ``runners.bc``) or any
folder holding run directories. Every run is scored by its **final evaluation** (the criterion of every
table, named in the report): the success rate for MiniGrid/BabyAI envs and the mean return otherwise, or the
metric its benchmark task names. Per task (an env, or one side of a suite) and, for benchmark tasks, in
aggregate over tasks (normalised scores), the report gives:

* learning curves: the mean over seeds of the periodic evaluations with a 95% stratified-bootstrap band;
* IQM and mean with 95% stratified-bootstrap intervals per memory (rliable's ``get_interval_estimates``);
* the probability of improvement of each memory over each other, with its interval;
* performance profiles (fraction of runs above each score);
* ``report.md``: the tables (seeds, IQM [95% CI], mean [95% CI], frames to threshold where the task has
  one, frames, fps), the command that produced the study, the machine and the date.

For a suite (runs trained on its training side, evaluated on ``train`` and ``heldout/<side>``), a
**generalization view** first: per memory, the IQM [95% CI] on every side and the generalization gap (IQM of
the per-run differences train - held-out side), in a table and a grouped bar chart. A run that lacks a side
the suite's other runs have is named in a warning and marked missing in that side's cells, never dropped.
The aggregate over a benchmark's tasks needs every memory on every task with as many runs on each: a memory
missing from some task is left out of it, and a task with more runs is cut to the first by seed, each named
in a warning on stderr and in the report.

The work is done by the ``studies`` library (``studies.report.write_report``); this module parses the
command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runners.cli import UsageError, make_parser, output_directory, positive_int, run_main
from studies.statistics import BOOTSTRAP_REPS


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "python -m runners.report", "Write report.md and plots for studies or runs (rliable)."
    )
    parser.add_argument("dirs", nargs="+", help="study directories, run directories or folders of runs")
    parser.add_argument(
        "--out",
        type=output_directory,
        default=None,
        help="where report.md and plots/ go (default: the first DIR)",
    )
    parser.add_argument("--reps", type=positive_int, default=BOOTSTRAP_REPS, help="bootstrap resamples")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import rliable  # noqa: F401
    except ImportError:
        raise UsageError(
            'runners.report needs the study extra: pip install -e ".[study]" (rliable)'
        ) from None
    from studies.report import write_report

    directories = [Path(d) for d in args.dirs]
    if not any(next(d.rglob("config.json"), None) for d in directories if d.is_dir()):
        raise UsageError(
            f"no run directories (no config.json) under {' '.join(args.dirs)}: pass a study's --out "
            "directory or runners.ppo / runners.bc run directories"
        )
    path = write_report(directories, Path(args.out) if args.out else directories[0], args.reps)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
