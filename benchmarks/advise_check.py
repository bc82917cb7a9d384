"""Check genseg advise's prediction against real runs on a benchmark data set.

Usage (from the repository root; the data sets beside it):

    OMP_NUM_THREADS=1 python benchmarks/advise_check.py --data ../shared/datasets/msd_hippocampus \
        --split ../shared/benchmark/splits/msd_hippocampus.json --labeled 10 --iterations 800 \
        --out benchmarks/results/advise-check/msd_hippocampus

A user with N labeled cases is simulated by the first N of the split's pool (seed 0): a folder of
links to them is all that `advise` sees. Its predictions for N and N + 5 labels are then set beside
real runs at those budgets, trained on the split file (seeds 0-2, each seed its own pool order;
seed 0's N + 5 adds five labels to the user's N) and scored on the split's test list, which advise
never sees. Writes check.json and prints one line per budget: predicted (interval) against measured.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from genseg.advise import advise, train_and_score
from genseg.benchmark.runner import machine_info
from genseg.config import DataConfig, MethodConfig, RunConfig, TrainConfig
from genseg.data import index_cases, read_split


def link_labeled(data: Path, ids: list[str], out: Path) -> Path:
    """A data folder of links to ``ids``' image and mask files, in the same layout."""
    index = index_cases(data)
    for case_id in ids:
        case = index.cases[case_id]
        for path in (case.image_path, case.mask_path):
            link = out / path.relative_to(data)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(path.resolve())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--labeled", type=int, default=10, help="N: the labeled cases the simulated user has")
    parser.add_argument("--iterations", type=int, default=800)
    parser.add_argument("--method", default="augment")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the real runs")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    split = read_split(args.split)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "machine.json").write_text(json.dumps(machine_info(threads=1), indent=2) + "\n")
    labeled = link_labeled(args.data, split.pool[0][:args.labeled], args.out / "labeled")
    # dims 2: volumes as slices, as the check in docs/benchmarks.md ran (3D costs about 40 times the CPU time)
    base = RunConfig(data=DataConfig(root=labeled, dims=2), method=MethodConfig(args.method),
                     train=TrainConfig(iterations=args.iterations))
    advice = advise(base, args.out / "advice", methods=(args.method,), repeats=args.repeats, announce=print)
    predicted = {p.labels: p for p in advice.predictions[args.method]}

    rows = []
    for budget in (args.labeled, args.labeled + 5):
        measured = {}
        for seed in (int(s) for s in args.seeds.split(",")):
            config = replace(base, data=DataConfig(root=args.data, budget=budget, split_file=args.split, dims=2),
                             train=replace(base.train, seed=seed))
            _, summary = train_and_score(config, args.out / "real" / f"{args.method}-n{budget}-s{seed}")
            measured[seed] = float(summary["dice_mean"])
        p = predicted[budget]
        values = np.array(list(measured.values()))
        rows.append({"labels": budget, "predicted": p.dice, "low": p.low, "high": p.high, "measured": measured,
                     "measured_mean": float(values.mean()),
                     "measured_sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                     "error_seed0": p.dice - measured.get(0, float("nan")),
                     "error_mean": p.dice - float(values.mean())})
        print(f"{budget} labels: predicted {p.dice:.3f} ({p.low:.3f}-{p.high:.3f}), measured "
              + ", ".join(f"seed {s} {d:.3f}" for s, d in measured.items())
              + f"; mean {values.mean():.3f}, prediction error {rows[-1]['error_mean']:+.3f}")
    (args.out / "check.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                     "advice": advice.summary(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
