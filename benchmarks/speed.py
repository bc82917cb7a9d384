"""Seconds per training iteration of each method, measured in one process on the same data.

Usage (from the repository root; the data sets beside it):

    python benchmarks/speed.py --iterations 20 [--size 128] [--data ../shared/datasets/jsrt_lung]

It builds each method exactly as ``genseg train`` does (JSRT, budget 9 = 7 + 2, split file seed 0),
skips the generator's pre-training (it does not change the cost of a step), runs a few warm-up
steps and then times ``--iterations`` steps. GenSeg's generator side (upper-level and GAN step)
runs every ``--every`` iterations, so time a multiple of it: the average then holds both kinds of
iteration in their true proportion. Prints one line per variant and the
ratio to ``augment``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from genseg.config import DataConfig, GeneratorConfig, MLOConfig, RunConfig, TrainConfig
from genseg.methods import create_method
from genseg.runs import RunPaths, load_run_data
from genseg.training import build_context, seed_everything

REPO = Path(__file__).resolve().parents[1]


def iteration_seconds(config: RunConfig, iterations: int, warmup: int = 3) -> dict[int, float]:
    """Seconds of each timed iteration, by iteration number."""
    seed_everything(0)
    with tempfile.TemporaryDirectory() as folder:
        data = load_run_data(config, RunPaths(Path(folder)))
    context = build_context(config, data, torch.device("cpu"), progress=False)
    method = create_method(config.train.method, context)
    for iteration in range(warmup):
        method.step(iteration)
    seconds = {}
    for iteration in range(warmup, warmup + iterations):
        start = time.perf_counter()
        method.step(iteration)
        seconds[iteration] = time.perf_counter() - start
    return seconds


def split_line(config: RunConfig, seconds: dict[int, float]) -> str:
    """For genseg: the mean of iterations with the generator side's updates and of the others."""
    if config.train.method != "genseg":
        return ""
    every = config.mlo.every
    upper = [s for i, s in seconds.items() if i % every == 0]
    other = [s for i, s in seconds.items() if i % every != 0]
    return (f"   (generator-side iterations {statistics.mean(upper):.3f} s, "
            f"others {statistics.mean(other):.3f} s)" if upper and other else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "jsrt_lung")
    parser.add_argument("--split", type=Path,
                        default=REPO.parent / "shared" / "benchmark" / "splits" / "jsrt_lung.json")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--every", type=int, nargs="+", default=[MLOConfig.every],
                        help="GenSeg's mlo.every values to time (default: the config default)")
    parser.add_argument("--upper", nargs="+", default=["none", "arch", "generator"])
    parser.add_argument("--hypergradient", nargs="+", default=["exact", "darts"])
    args = parser.parse_args()
    base = RunConfig(
        data=DataConfig(root=args.data, split_file=args.split, budget=9, size=args.size),
        generator=GeneratorConfig(pretrain_iterations=0),
        train=TrainConfig(method="augment"),
    )
    variants = {
        "augment": base,
        "separate": replace(base, train=replace(base.train, method="separate")),
    }
    for every in args.every:
        for upper in args.upper:
            for estimator in args.hypergradient:
                if upper == "none" and estimator != args.hypergradient[0]:  # no hypergradient to vary
                    continue
                variants[f"genseg upper={upper} {estimator} every={every}"] = replace(
                    base, train=replace(base.train, method="genseg"),
                    mlo=MLOConfig(upper=upper, hypergradient=estimator, every=every))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, size {args.size}, "
          f"batch {base.train.batch_size} (+{base.train.batch_size} synthetic)")
    reference = None
    for name, config in variants.items():
        seconds = iteration_seconds(config, args.iterations)
        mean = statistics.mean(seconds.values())
        reference = reference or mean
        print(f"{name:40s} {mean:7.3f} s/iteration   {mean / reference:5.2f}x augment"
              f"{split_line(config, seconds)}", flush=True)


if __name__ == "__main__":
    main()
