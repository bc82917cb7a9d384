"""Paired per-case comparison of runs, seed by seed: run b minus run a, with a Wilcoxon test.

Usage (run folders as genseg benchmark names them, ``{seed}`` filled in for each seed)::

    python benchmarks/paired.py --a benchmarks/results/recipe-old/runs/jsrt_lung-n3-augment-s{seed} \\
        --b benchmarks/results/recipe/runs/jsrt_lung-n3-augment-s{seed} --seeds 0 1 2 --eval-set test

Either side may instead be a ``cases.csv`` (e.g. the ``cases-test-final.csv`` that
``benchmarks/nnunet.py`` writes beside nnU-Net's checkpoints), scored as it is for every
``--checkpoint``; a pattern may hold shell wildcards, and must then match exactly one path.
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

from genseg.comparison import paired_difference


def resolve(pattern: str, seed: int) -> Path:
    """The one path that ``pattern``, with ``{seed}`` filled in, names or matches."""
    path = pattern.format(seed=seed)
    if not any(char in path for char in "*?["):
        return Path(path)
    matches = glob.glob(path)
    if len(matches) != 1:
        raise SystemExit(f"{path} matches {len(matches)} paths; make the pattern name exactly one")
    return Path(matches[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="run folder or cases.csv pattern with {seed}")
    parser.add_argument("--b", required=True, help="run folder or cases.csv pattern with {seed}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-set", default="test")
    parser.add_argument("--checkpoint", nargs="+", default=["best", "final"])
    args = parser.parse_args()
    for seed in args.seeds:
        a, b = resolve(args.a, seed), resolve(args.b, seed)
        for checkpoint in args.checkpoint:
            try:
                paired = paired_difference(a, b, args.eval_set, checkpoint)
            except (FileNotFoundError, ValueError) as error:
                raise SystemExit(str(error)) from None
            print(f"seed {seed} {checkpoint:5s} {args.eval_set}: {paired.describe()}")


if __name__ == "__main__":
    main()
