"""Which images to label next, measured: each ranking of genseg.suggest against random choice.

Usage (from the repository root; the data sets beside it):

    OMP_NUM_THREADS=1 python benchmarks/selection.py --data ../shared/datasets/msd_hippocampus \
        --split ../shared/benchmark/splits/msd_hippocampus.json --budget 5 --add 3 --candidates 40 \
        --iterations 800 --out benchmarks/results/selection/msd_hippocampus

Per seed s, the user holds the first N cases of the split's pool s. A K-fold set trained on them
ranks the next ``--candidates`` cases of the pool (whose labels the benchmark knows, and the
ranking never reads). Each strategy adds its top ``--add`` cases; random choice adds ``--draws``
seeded draws. Every choice is then trained as one run of N + add labels (seed s) and scored on the
split's test list with the averaged checkpoint. The N + add pairs are ordered so that every run of
a seed validates on the same original cases and every added case trains: a strategy's labels are
never spent on validation. Writes selection.csv (a row per run) and prints each strategy's test Dice
beside the mean of the random draws, paired per seed.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from genseg.advise import train_and_score
from genseg.benchmark.runner import machine_info
from genseg.config import DataConfig, MethodConfig, RunConfig, TrainConfig, default_n_val
from genseg.data import CaseIndex, index_cases, read_split, write_split
from genseg.data.splits import Split
from genseg.evaluation import load_model
from genseg.folds import train_folds
from genseg.runs import read_fold_set
from genseg.suggest import rank, score_candidates

RANKINGS = ("folds", "tta")


def added_order(labeled: list[str], added: list[str]) -> list[str]:
    """The pool order of N + K pairs whose validation cases are the last of the original N and
    whose added cases all train (a budget takes its first n_train cases to train)."""
    n_val = default_n_val(len(labeled) + len(added))
    return [*labeled[:len(labeled) - n_val], *added, *labeled[len(labeled) - n_val:]]


def budget_config(base: RunConfig, budget: int, split_file: Path, seed: int) -> RunConfig:
    """``base`` at ``budget`` labels of ``split_file``'s pool ``seed``, validating on the budget's default
    share (as :func:`added_order` expects), not on the share of the budget ``base`` had."""
    return replace(base, data=replace(base.data, budget=budget, n_val=None, split_file=split_file),
                   train=replace(base.train, seed=seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--budget", type=int, required=True, help="N: the labels held before choosing")
    parser.add_argument("--add", type=int, default=3, help="K: the labels each strategy adds")
    parser.add_argument("--candidates", type=int, default=40, help="unlabeled cases ranked (the pool after N)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--draws", type=int, default=3, help="random draws per seed")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--iterations", type=int, default=800)
    parser.add_argument("--method", default="augment")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    split = read_split(args.split)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "machine.json").write_text(json.dumps(machine_info(threads=1), indent=2) + "\n")
    index = index_cases(args.data)
    table = args.out / "selection.csv"
    done = {(r["seed"], r["strategy"], r["draw"]): r for r in csv.DictReader(table.open())} if table.is_file() else {}
    # dims 2: volumes as slices, as the study in docs/benchmarks.md ran (3D costs about 40 times the CPU time)
    base = RunConfig(data=DataConfig(root=args.data, dims=2), method=MethodConfig(args.method),
                     train=TrainConfig(iterations=args.iterations))
    for seed in (int(s) for s in args.seeds.split(",")):
        pool = split.pool[seed]
        labeled, candidates = pool[:args.budget], pool[args.budget:args.budget + args.candidates]
        folder = args.out / f"s{seed}"
        fold_set = folder / "folds"
        fold_config = budget_config(base, args.budget, args.split, seed)
        train_folds(fold_config, fold_set, min(args.folds, args.budget), resume=read_fold_set(fold_set) is not None,
                    progress=False)
        scored = score_candidates(load_model(fold_set), CaseIndex(index.root, index.layout,
                                                                  {c: index.cases[c] for c in candidates},
                                                                  index.is_volume, index.labels))
        choices = {(name, 0): rank(scored, name)[:args.add] for name in RANKINGS}
        choices |= {("random", d): rank(scored, "random", seed=1000 * seed + d)[:args.add] for d in range(args.draws)}
        trained = {tuple(r["added"].split()): float(r["dice"]) for r in done.values() if r["seed"] == str(seed)}
        for (strategy, draw), added in choices.items():
            key = (str(seed), strategy, str(draw))
            if key in done:
                continue
            split_file = folder / f"{strategy}{draw}.json"
            write_split(Split(dataset=split.dataset, test=split.test, pool={seed: added_order(labeled, added)},
                              note=f"selection: {args.budget} of pool seed{seed} + {strategy} draw {draw}"), split_file)
            config = budget_config(base, args.budget + args.add, split_file, seed)
            # Two strategies that add the same cases train the same run: it is trained once.
            if tuple(added) not in trained:
                trained[tuple(added)] = float(train_and_score(config, folder / f"{strategy}{draw}")[1]["dice_mean"])
            dice = trained[tuple(added)]
            done[key] = {"seed": str(seed), "strategy": strategy, "draw": str(draw), "dice": f"{dice:.6f}",
                         "added": " ".join(added)}
            with table.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=["seed", "strategy", "draw", "dice", "added"])
                writer.writeheader()
                writer.writerows(done.values())
            print(f"seed {seed} {strategy} draw {draw}: test Dice {dice:.4f} ({' '.join(added)})", flush=True)
    summarize(list(done.values()))


def summarize(rows: list[dict]) -> None:
    """Each ranking minus the mean of the random draws, per seed, and their mean ± SD."""
    seeds = sorted({r["seed"] for r in rows})
    random_mean = {s: np.mean([float(r["dice"]) for r in rows if r["seed"] == s and r["strategy"] == "random"])
                   for s in seeds}
    for strategy in RANKINGS:
        gains = [float(r["dice"]) - random_mean[r["seed"]] for r in rows if r["strategy"] == strategy]
        sd = np.std(gains, ddof=1) if len(gains) > 1 else 0.0
        print(f"{strategy} - random: {100 * np.mean(gains):+.2f} ± {100 * sd:.2f} Dice points over "
              f"{len(gains)} seeds ({', '.join(f'{100 * g:+.2f}' for g in gains)})")


if __name__ == "__main__":
    main()
