"""Plot validation curves of run folders: validation loss and Dice, and GenSeg's upper-level loss.

Usage:

    python benchmarks/curves.py OUT.png RUN_DIR [RUN_DIR ...]

Reads each run's history.csv (written by genseg train at every validation); the legend is the
run folder's name. It also prints, per run, whether the validation loss is flat over the last
third of the run (BENCHMARK.md's convergence rule, see :func:`last_third_change`), and the shortest of the
lengths the run passed (its first 400, 800, ... iterations) after which the loss no longer falls
(:func:`shortest_settled_length`): the iteration count a benchmark needs. Last, the validations
after the first third whose Dice dips far below the run's median there (:func:`genseg.training.validation_dips`):
how often a run stopped at a validation would stop in a short loss spike.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from statistics import median

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy.stats import theilslopes  # noqa: E402

from genseg.training import DIP, validation_dips  # noqa: E402

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


def shortest_settled_length(iterations: list[int], losses: list[float], step: int = 400) -> int | None:
    """The shortest run length (a multiple of ``step``) after which the validation loss no longer
    falls: its last third changes by more than -FLAT, at that length and at every longer length
    the run reached. A loss that rises again (over-fitting) counts as settled: a longer run would
    not help. None when the run never got there."""
    lengths = [n for n in range(step, iterations[-1] + 1, step) if n in iterations]
    settled = [last_third_change(iterations[:iterations.index(n) + 1], losses[:iterations.index(n) + 1]) > -FLAT
               for n in lengths]
    shortest = None
    for n, is_settled in zip(reversed(lengths), reversed(settled)):
        if not is_settled:
            break
        shortest = n
    return shortest


def plot_curves(out: Path, run_dirs: list[Path]) -> None:
    figure, axes = plt.subplots(1, len(PANELS), figsize=(6 * len(PANELS), 4.5))
    for run_dir in run_dirs:
        with (run_dir / "history.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        iterations = [int(row["iteration"]) for row in rows]
        if (run_dir / "result.json").is_file():  # finished runs only
            losses = [float(row["val_loss"]) for row in rows]
            change = last_third_change(iterations, losses)
            print(f"{run_dir.name}: validation loss changes {change:+.0%} over the last third "
                  f"({'flat' if abs(change) < FLAT else 'NOT flat'}); no longer falling from a length of "
                  f"{shortest_settled_length(iterations, losses) or 'none yet'}")
            dips, validations = validation_dips(iterations, [float(row["val_dice"]) for row in rows])
            where = f" (iterations {', '.join(map(str, dips))})" if dips else ""
            print(f"{run_dir.name}: {len(dips)} of {validations} validations after the first third dip more than "
                  f"{DIP:.2f} below their median Dice{where}")
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the figure to write (.png)")
    parser.add_argument("runs", type=Path, nargs="+", help="run folders with a history.csv")
    arguments = parser.parse_args()
    plot_curves(arguments.out, arguments.runs)
