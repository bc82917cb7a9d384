"""Seconds per training iteration of each method, measured in one process on the same data.

Usage (from the repository root; the data sets beside it):

    python benchmarks/speed.py --iterations 24 [--size 128] [--data ../shared/datasets/jsrt_lung]

It builds each method exactly as ``genseg train`` does (JSRT, budget 9 = 7 + 2, split file seed 0),
skips the generator's pre-training (it does not change the cost of a step), runs a few warm-up
steps and then times ``--iterations`` steps of every variant. The variants take their steps in
turn (round-robin), so a change in the machine's load during the measurement falls on all of them
alike and the ratios hold even on shared cores. GenSeg's generator side (upper-level and GAN step)
runs every ``--every`` iterations, so time a multiple of it: the average then holds both kinds of
iteration in their true proportion. ``--synthetic 4 2`` times ``separate`` and GenSeg with 4 and
with 2 synthetic pairs per step. Prints one line per variant with its ratio to ``augment`` and to
``separate`` with as many synthetic pairs, and the share of a whole run (the default generator
pre-training, then ``--run-iterations`` iterations) that the pre-training takes; a last line times
one pre-training step, also in turn with the others.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from genseg.config import DataConfig, GeneratorConfig, MethodConfig, RunConfig, TrainConfig
from genseg.generator_level import GeneratorLevel
from genseg.methods import Method, create_method
from genseg.methods.options import GenSegOptions, SyntheticPairOptions
from genseg.planning import BATCH_SIZE
from genseg.run_data import load_run_data
from genseg.runs import RunPaths
from genseg.training import build_context, seed_everything

REPO = Path(__file__).resolve().parents[1]
PRETRAINING = "generator pre-training"


def build_method(config: RunConfig) -> Method:
    """The method of ``config`` on its data, as ``genseg train`` builds it (without pre-training)."""
    seed_everything(0)
    with tempfile.TemporaryDirectory() as folder:
        data = load_run_data(config, RunPaths(Path(folder)))
    context = build_context(config, data, torch.device("cpu"), progress=False)
    return create_method(config.method.name, context)


class PretrainingStep:
    """A step of the generator's pre-training (as ``separate`` and ``genseg`` take it), timed like an iteration."""

    def __init__(self, level: GeneratorLevel) -> None:
        self.level = level

    def step(self, iteration: int) -> dict[str, float]:
        return self.level.train_step()


def interleaved_seconds(methods: dict[str, Method | PretrainingStep], iterations: int,
                        warmup: int = 4) -> dict[str, dict[int, float]]:
    """Seconds of each timed iteration, by variant and iteration number, the variants stepped in turn."""
    for iteration in range(warmup):
        for method in methods.values():
            method.step(iteration)
    seconds: dict[str, dict[int, float]] = {name: {} for name in methods}
    for iteration in range(warmup, warmup + iterations):
        for name, method in methods.items():
            start = time.perf_counter()
            method.step(iteration)
            seconds[name][iteration] = time.perf_counter() - start
    return seconds


def split_line(config: RunConfig, seconds: dict[int, float]) -> str:
    """For genseg: the mean of iterations with the generator side's updates and of the others."""
    if config.method.name != "genseg":
        return ""
    every = config.method.settings.every
    upper = [s for i, s in seconds.items() if i % every == 0]
    other = [s for i, s in seconds.items() if i % every != 0]
    return (f"   (generator-side iterations {statistics.mean(upper):.3f} s, "
            f"others {statistics.mean(other):.3f} s)" if upper and other else "")


def variants(base: RunConfig, every: list[int], upper: list[str], estimators: list[str],
             synthetic: list[int | None]) -> dict[str, RunConfig]:
    """``augment``, then ``separate`` and each GenSeg setting per synthetic batch size, by name."""
    configs = {"augment": base}
    for pairs in synthetic:
        suffix = "" if pairs is None else f" synthetic={pairs}"
        configs[f"separate{suffix}"] = replace(base, method=MethodConfig("separate", synthetic_batch_size=pairs))
        for steps in every:
            for variable in upper:
                for estimator in estimators:
                    if variable == "none" and estimator != estimators[0]:  # no hypergradient to vary
                        continue
                    configs[f"genseg upper={variable} {estimator} every={steps}{suffix}"] = replace(
                        base, method=MethodConfig("genseg", upper=variable, hypergradient=estimator, every=steps,
                                                  synthetic_batch_size=pairs))
    return configs


def separate_of(configs: dict[str, RunConfig], config: RunConfig) -> str:
    """The name of the ``separate`` variant with ``config``'s synthetic batch size: its reference."""
    return next(name for name, other in configs.items() if other.method.name == "separate"
                and other.method.options["synthetic_batch_size"] == config.method.options["synthetic_batch_size"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "jsrt_lung")
    parser.add_argument("--split", type=Path,
                        default=REPO.parent / "shared" / "benchmark" / "splits" / "jsrt_lung.json")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--budget", type=int, default=9)
    parser.add_argument("--iterations", type=int, default=24)
    parser.add_argument("--every", type=int, nargs="+", default=[GenSegOptions.every],
                        help="GenSeg's method.every values to time (default: the config default)")
    parser.add_argument("--upper", nargs="+", default=["none", "arch", "pairs", "gamma"])
    parser.add_argument("--hypergradient", nargs="+", default=["exact"])
    parser.add_argument("--run-iterations", type=int, default=2000,
                        help="segmenter steps of the run the pre-training's share is given for (the benchmark's)")
    parser.add_argument("--synthetic", type=int, nargs="+", default=[SyntheticPairOptions.synthetic_batch_size],
                        help="synthetic pairs per step of separate and genseg (default: the config default)")
    args = parser.parse_args(argv)
    base = RunConfig(  # set, not planned: nothing here runs the plan stage
        data=DataConfig(root=args.data, split_file=args.split, budget=args.budget, size=args.size, dims=2),
        generator=GeneratorConfig("pix2pix", pretrain_iterations=0),
        train=TrainConfig(batch_size=BATCH_SIZE[2]),
    )
    configs = variants(base, args.every, args.upper, args.hypergradient, args.synthetic)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, size {args.size}, "
          f"batch {base.train.batch_size}, {args.iterations} iterations "
          "of each variant, in turn", flush=True)
    methods: dict[str, Method | PretrainingStep] = {name: build_method(config) for name, config in configs.items()}
    first_separate = next(name for name, config in configs.items() if config.method.name == "separate")
    methods[PRETRAINING] = PretrainingStep(methods[first_separate].synthesis)  # the same generator in every variant
    seconds = interleaved_seconds(methods, args.iterations)
    means = {name: statistics.mean(values.values()) for name, values in seconds.items()}
    pretraining = GeneratorConfig().pretrain_iterations * means[PRETRAINING]
    for name, config in configs.items():
        line = f"{name:52s} {means[name]:7.3f} s/iteration   {means[name] / means['augment']:5.2f}x augment"
        if name != "augment":
            run = pretraining + args.run_iterations * means[name]
            line += (f"  {means[name] / means[separate_of(configs, config)]:5.2f}x separate"
                     f"  pre-training {pretraining / run:4.0%} of a run")
        print(line + split_line(config, seconds[name]))
    print(f"{PRETRAINING:52s} {means[PRETRAINING]:7.3f} s/step   {means[PRETRAINING] / means['augment']:5.2f}x augment"
          f"   (a run: {GeneratorConfig().pretrain_iterations} steps, then {args.run_iterations} iterations)")


if __name__ == "__main__":
    main()
