"""Paired per-case comparison of runs, seed by seed: run b minus run a, with a Wilcoxon test.

Usage (run folders as genseg benchmark names them, ``{seed}`` filled in for each seed)::

    python benchmarks/paired.py --a benchmarks/results/recipe-old/runs/jsrt_lung-n3-augment-s{seed} \\
        --b benchmarks/results/recipe/runs/jsrt_lung-n3-augment-s{seed} --seeds 0 1 2 --eval-set test
"""

from __future__ import annotations

import argparse
from pathlib import Path

from genseg.comparison import paired_difference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="run folder pattern with {seed}")
    parser.add_argument("--b", required=True, help="run folder pattern with {seed}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-set", default="test")
    parser.add_argument("--checkpoint", nargs="+", default=["best", "final"])
    args = parser.parse_args()
    for seed in args.seeds:
        for checkpoint in args.checkpoint:
            paired = paired_difference(Path(args.a.format(seed=seed)), Path(args.b.format(seed=seed)),
                                       args.eval_set, checkpoint)
            print(f"seed {seed} {checkpoint:5s} {args.eval_set}: {paired.describe()}")


if __name__ == "__main__":
    main()
