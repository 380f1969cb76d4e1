"""When a plain-demo BC run leaves the plateau, or memorises instead: its per-epoch accuracies, plotted.

    python benchmarks/bc_generalization.py --memories M --suites --seed S --demo-noise 0 --save-dir runs/M-S
    PYTHONPATH=. python docs/studies/bc-plain-pairs/learning_curves.py --out curves.png \\
        "tlb 19=runs/tlb-19/bc-tlb-log/progress.csv" \\
        "tlb-paper 19=runs/tlb-paper-19/bc-tlb-paper-log/progress.csv"

Each argument is ``LABEL=PATH`` of a ``progress.csv`` that the benchmark's ``--save-dir`` writes. Prints one
markdown row per run: epochs, training and validation accuracy at the end, and the escape epoch: the first
epoch whose validation accuracy reached 0.95 (the high mode; "none" if it never did within the budget).
Training accuracy is measured on the relabelled minibatches as they were trained on, during the epoch, so it
lags the weights by up to one epoch. The plot shows validation accuracy (solid) and training accuracy
(dashed) per epoch: a run that memorises its demos has the two part ways, training accuracy rising towards 1
while validation accuracy stays at the plateau.
"""

from __future__ import annotations

import argparse
import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HIGH_MODE = 0.95
HEADER = "| run | epochs | train acc | val acc | escape epoch (val acc >= 0.95) |\n|---|---|---|---|---|"


def read_curve(path: str) -> tuple[list[int], list[float], list[float]]:
    """Epochs 1.., their training accuracy and their validation accuracy."""
    with open(path) as file:
        rows = [row for row in csv.DictReader(file) if int(row["bc/epoch"]) > 0]
    epochs = [int(row["bc/epoch"]) for row in rows]
    return (
        epochs,
        [float(row["bc/train_accuracy"]) for row in rows],
        [float(row["bc/val_accuracy"]) for row in rows],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="LABEL=PATH of a progress.csv")
    parser.add_argument("--out", required=True, help="the plot's path (.png)")
    args = parser.parse_args()
    figure, axis = plt.subplots(figsize=(8, 4.5))
    print(HEADER)
    for number, item in enumerate(args.runs):
        label, _, path = item.partition("=")
        epochs, train, val = read_curve(path)
        escape = next((epoch for epoch, accuracy in zip(epochs, val) if accuracy >= HIGH_MODE), None)
        print(f"| {label} | {epochs[-1]} | {train[-1]:.3f} | {val[-1]:.3f} | {escape or 'none'} |")
        colour = f"C{number % 10}"
        axis.plot(epochs, val, color=colour, label=label)
        axis.plot(epochs, train, color=colour, linestyle="--", linewidth=0.8)
    axis.axhline(HIGH_MODE, color="grey", linewidth=0.5)
    axis.set_xlabel("epoch (15 minutes of BC)")
    axis.set_ylabel("accuracy: validation (solid), training (dashed)")
    axis.set_ylim(0.75, 1.0)
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(args.out, dpi=100)


if __name__ == "__main__":
    main()
