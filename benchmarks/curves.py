"""Plot validation curves of run folders: validation loss and Dice, and GenSeg's upper-level loss.

Usage:

    python benchmarks/curves.py OUT.png RUN_DIR [RUN_DIR ...]

Reads each run's history.csv (written by genseg train at every validation); the legend is the
run folder's name. It also prints, per run, whether the validation loss is flat over the last
third of the run (BENCHMARK.md's convergence rule, see :func:`last_third_change`).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from statistics import median

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy.stats import theilslopes  # noqa: E402

PANELS = (("val_loss", "validation loss (CE + soft Dice)"), ("val_dice", "validation Dice"),
          ("upper_loss", "upper level: L_val(theta') (mean since the last validation)"))


FLAT = 0.10
"""Largest change of the fitted validation loss over the last third, relative to its mean, that counts as flat."""


def last_third_change(iterations: list[int], losses: list[float]) -> float:
    """The change of a robust (Theil-Sen) line through the last third's validation losses across
    that third, relative to their median (negative: still falling). A robust line, because with
    one or two validation images single points jump by half their value or more."""
    start = iterations[-1] * 2 / 3
    points = [(i, loss) for i, loss in zip(iterations, losses) if i > start]
    if len(points) < 3:
        raise ValueError("need at least 3 validations in the last third of the run")
    xs, ys = zip(*points)
    slope = theilslopes(ys, xs).slope
    return float(slope * (xs[-1] - xs[0]) / median(ys))


def plot_curves(out: Path, run_dirs: list[Path]) -> None:
    figure, axes = plt.subplots(1, len(PANELS), figsize=(6 * len(PANELS), 4.5))
    for run_dir in run_dirs:
        with (run_dir / "history.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        iterations = [int(row["iteration"]) for row in rows]
        if (run_dir / "result.json").is_file():  # finished runs only
            change = last_third_change(iterations, [float(row["val_loss"]) for row in rows])
            print(f"{run_dir.name}: validation loss changes {change:+.0%} over the last third "
                  f"({'flat' if abs(change) < FLAT else 'NOT flat'})")
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
