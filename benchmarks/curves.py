"""Plot validation curves of run folders: validation loss and Dice, and GenSeg's upper-level loss.

Usage:

    python benchmarks/curves.py OUT.png RUN_DIR [RUN_DIR ...]

Reads each run's history.csv (written by genseg train at every validation); the legend is the
run folder's name.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = (("val_loss", "validation loss (CE + soft Dice)"), ("val_dice", "validation Dice"),
          ("upper_loss", "upper level: L_val(theta') (mean since the last validation)"))


def plot_curves(out: Path, run_dirs: list[Path]) -> None:
    figure, axes = plt.subplots(1, len(PANELS), figsize=(6 * len(PANELS), 4.5))
    for run_dir in run_dirs:
        with (run_dir / "history.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        iterations = [int(row["iteration"]) for row in rows]
        for axis, (column, _) in zip(axes, PANELS):
            values = [float(row[column]) if row.get(column) else float("nan") for row in rows]
            axis.plot(iterations, values, marker=".", label=run_dir.name)
    for axis, (_, title) in zip(axes, PANELS):
        axis.set_title(title)
        axis.set_xlabel("iteration")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out, dpi=110)


if __name__ == "__main__":
    plot_curves(Path(sys.argv[1]), [Path(arg) for arg in sys.argv[2:]])
