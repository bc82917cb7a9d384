"""Generator quality in numbers: TSTR Dice, mask consistency and a contact sheet (issue 10, item 3).

For one data set, budget, seed and set of generator settings:

1. the generator is pre-trained on the budget's training pairs, as ``separate`` pre-trains it
   (:func:`genseg.generator_level.pretrain_generator`; its run folder under ``<out>/generators/``
   is reused when finished, and a killed one goes on from its ``pretrain.pt``);
2. (a) TSTR, train on synthetic, test on real: a segmenter learns from synthetic pairs alone,
   (G(T(y)), T(y)) drawn afresh each step from the training masks y under genseg's mask
   augmentation T, and is scored on the real test cases with genseg's metrics, each case at its
   own size as ``genseg evaluate`` scores it;
3. (b) mask consistency: the segmenter of ``--real-run`` (``genseg train --method augment`` on the
   same data set, budget and seed) segments synthetic pairs; Dice against the masks they were
   drawn for;
4. (c) a contact sheet, ``<out>/sheets/<name>.png``: per training pair, the mask, the real image
   and several draws for that mask.

The image size, segmenter and recipe (optimizer, learning rate, schedule, batch size, sampling)
are the real run's, so the two segmenters differ only in what they learned from. One line is
printed and a row appended to ``<out>/generator_quality.csv``. The segmenters run on the CPU.
From the repository root, the old generator and the data-efficient options::

    python benchmarks/generator_quality.py --dataset jsrt_lung --budget 3 --seed 0 \\
        --real-run benchmarks/results/recipe/runs/jsrt_lung-n3-augment-s0
    python benchmarks/generator_quality.py --dataset jsrt_lung --budget 3 --seed 0 \\
        --real-run benchmarks/results/recipe/runs/jsrt_lung-n3-augment-s0 \\
        --generator diffaugment=true --generator spade=true --generator noise=8 --generator lambda_ms=1
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from genseg.config import GeneratorConfig, MethodConfig, RunConfig, parse_settings
from genseg.data import CaseIndex, DataError, LabelMap, index_cases, load_samples, read_split
from genseg.evaluation import TrainedSegmenter, case_reference, load_segmenter, predict_case
from genseg.generation import (
    TrainedGenerator,
    image_tile,
    load_generator,
    mask_tile,
    synthesize_pairs,
    tile_side,
    to_uint8,
    write_image_grid,
)
from genseg.generator_level import pretrain_generator
from genseg.losses import segmentation_loss
from genseg.metrics import case_metrics, summarize
from genseg.optim import build_optimizer, build_schedule
from genseg.run_data import load_run_data
from genseg.runs import RunPaths, write_csv
from genseg.runtime import seed_everything, set_threads
from genseg.sampling import BatchSampler
from genseg.segmenters import segmenter_from_config


def settings_label(settings: dict[str, Any]) -> str:
    """A folder-safe name for generator settings: ``default``, or e.g. ``spade-true_noise-8``."""
    return "_".join(f"{key}-{json.dumps(value)}" for key, value in settings.items()) or "default"


def check_same_budget(real: RunConfig, dataset: str, budget: int, seed: int, split_file: Path) -> None:
    """Refuse a real run made on other data, another budget or seed, or another split."""
    made_on = (Path(real.data.root).name, real.data.budget, real.train.seed, real.data.split_file)
    if made_on != (dataset, budget, seed, split_file.resolve()):
        raise DataError(f"the real run was trained on {made_on[0]} budget {made_on[1]} seed {made_on[2]} with split "
                        f"{made_on[3]}; pass a genseg train --method augment run of {dataset} budget {budget} "
                        f"seed {seed} with --split {split_file}", split_file)


def generator_config(real: RunConfig, settings: dict[str, Any], pretrain_iterations: int) -> RunConfig:
    """The config of the generator's pre-training: the real run's data and recipe, these generator settings."""
    settings = {"name": "pix2pix", **settings}  # the kind measured unless the settings name another
    return replace(real, generator=GeneratorConfig(pretrain_iterations=pretrain_iterations, **settings),
                   method=MethodConfig("separate"))


def train_on_synthetic(generator: TrainedGenerator, images: Tensor, masks: Tensor, iterations: int,
                       seed: int) -> TrainedSegmenter:
    """A segmenter of the run's kind and recipe trained for ``iterations`` steps on synthetic pairs alone.

    Each step draws fresh pairs from a batch of the training pairs, as ``separate`` draws its
    synthetic half (:func:`~genseg.generation.synthesize_pairs`; pix2pix: (G(T(y)), T(y))).
    """
    config = generator.config
    recipe = replace(config.train, iterations=iterations, warmup=min(config.train.warmup, iterations - 1))
    seed_everything(seed)
    model = segmenter_from_config(config.segmenter, generator.image_channels, generator.num_classes)
    optimizer = build_optimizer(model.parameters(), recipe)
    schedule = build_schedule(optimizer, recipe)
    rng = torch.Generator().manual_seed(seed)
    sampler = BatchSampler(rng, recipe.batch_size, recipe.sampling)
    model.train()
    for _ in range(iterations):
        draw_seed = int(torch.randint(2**31 - 1, (1,), generator=rng))
        picks = sampler(masks.shape[0])
        synthetic, labels = synthesize_pairs(generator, masks[picks], recipe.batch_size, draw_seed,
                                             images=images[picks])
        optimizer.zero_grad(set_to_none=True)
        segmentation_loss(model(synthetic), labels).backward()
        optimizer.step()
        schedule.step()
    return TrainedSegmenter(model.eval(), config, LabelMap.identity(generator.num_classes), iterations,
                            generator.image_channels)


def real_case_scores(segmenter: TrainedSegmenter, index: CaseIndex, case_ids: list[str]) -> dict[str, float]:
    """genseg's summary of ``segmenter`` on real cases, each predicted and scored at its own size."""
    axis = segmenter.config.data.axis
    rows = []
    for case_id in case_ids:
        samples = load_samples(index, [case_id], axis=axis, labels=segmenter.labels)
        target, roi = case_reference(samples, axis)
        rows.append(case_metrics(predict_case(segmenter, samples), target, segmenter.num_classes, roi=roi))
    return summarize(rows)


@torch.no_grad()
def mask_consistency(segmenter: TrainedSegmenter, images: Tensor, masks: Tensor) -> dict[str, float]:
    """genseg's summary of ``segmenter`` on synthetic ``images`` against the ``masks`` they were drawn for."""
    if images.shape[-1] != segmenter.size:
        raise ValueError(f"synthetic images of {images.shape[-1]} px for a segmenter of {segmenter.size} px")
    predictions = torch.cat([segmenter.model(chunk).argmax(1) for chunk in images.split(16)])
    return summarize([case_metrics(p, m, segmenter.num_classes) for p, m in zip(predictions, masks)])


@torch.no_grad()
def write_draws_sheet(path: Path, generator: TrainedGenerator, images: Tensor, masks: Tensor, draws: int,
                      seed: int) -> None:
    """A contact sheet: per training pair its mask and real image, then ``draws`` synthetic pairs
    (mask, image), each drawn from these pairs as training draws them."""
    drawn = [synthesize_pairs(generator, masks, masks.shape[0], seed + d, images=images) for d in range(draws)]
    side, classes = tile_side(masks.shape[-1]), generator.num_classes
    rows = []
    for i in range(masks.shape[0]):
        row = [mask_tile(masks[i].numpy(), classes, side), image_tile(to_uint8(images[i]), side)]
        for synthetic, labels in drawn:
            row += [mask_tile(labels[i].numpy(), classes, side), image_tile(to_uint8(synthetic[i]), side)]
        rows.append(row)
    titles = [f"{part} {d + 1}" for d in range(draws) for part in ("mask", "draw")]
    write_image_grid(path, ["mask", "real", *titles], rows)


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Add one row to the table, which keeps its own columns (widened if the row brings new ones)."""
    rows = list(csv.DictReader(path.open(newline=""))) if path.is_file() else []
    write_csv([*rows, row], path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--budget", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real-run", type=Path, required=True,
                        help="a genseg train --method augment run folder of this data set, budget and seed")
    parser.add_argument("--checkpoint", default="best", help="the real run's checkpoint: best | final")
    parser.add_argument("--generator", action="append", default=[], metavar="KEY=VALUE",
                        help="a generator setting (repeat): ngf=16, spade=true, noise=8, ...")
    parser.add_argument("--label", default=None, help="name of these settings in files and rows (default: from them)")
    parser.add_argument("--pretrain-iterations", type=int, default=1000)
    parser.add_argument("--tstr-iterations", type=int, default=800)
    parser.add_argument("--pairs", type=int, default=64, help="synthetic pairs for mask consistency")
    parser.add_argument("--draws", type=int, default=4, help="synthetic draws per mask on the contact sheet")
    parser.add_argument("--sheet-rows", type=int, default=4, help="training pairs on the contact sheet")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the idle cores)")
    parser.add_argument("--splits-root", type=Path, default=Path("../shared/benchmark/splits"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/generator-quality"))
    args = parser.parse_args(argv)
    set_threads(args.threads)

    settings = parse_settings(args.generator)
    real = load_segmenter(args.real_run, args.checkpoint)
    check_same_budget(real.config, args.dataset, args.budget, args.seed, args.splits_root / f"{args.dataset}.json")
    label = args.label or settings_label(settings)
    name = f"{args.dataset}-n{args.budget}-s{args.seed}-{label}"
    run = RunPaths(args.out / "generators" / name)
    pretrain_seconds = None  # a finished pre-training is reused, its time unknown here
    if not run.weights("final").is_file():
        started = time.perf_counter()
        pretrain_generator(generator_config(real.config, settings, args.pretrain_iterations), run.root)
        pretrain_seconds = round(time.perf_counter() - started, 1)
    generator = load_generator(run.root)
    train = load_run_data(generator.config, run).train  # the budget's training pairs the generator learned from
    assert train.masks is not None

    tstr = real_case_scores(train_on_synthetic(generator, train.images, train.masks, args.tstr_iterations, args.seed),
                            index_cases(generator.config.data.root, layout=generator.config.data.layout),
                            read_split(run.split).test)
    consistency = mask_consistency(real, *synthesize_pairs(generator, train.masks, args.pairs, args.seed,
                                                           images=train.images))
    sheet = args.out / "sheets" / f"{name}.png"
    write_draws_sheet(sheet, generator, train.images[:args.sheet_rows], train.masks[:args.sheet_rows], args.draws,
                      args.seed)

    row = {"dataset": args.dataset, "n_labels": args.budget, "seed": args.seed, "generator": label,
           "settings": json.dumps(generator.config.generator.to_dict(), sort_keys=True),
           "pretrain_iterations": generator.config.generator.pretrain_iterations,
           "tstr_iterations": args.tstr_iterations, "tstr_dice": round(tstr["dice_mean"], 4),
           "tstr_dice_sd": round(tstr["dice_sd"], 4), "n_test": tstr["n_cases"],
           "consistency_dice": round(consistency["dice_mean"], 4),
           "consistency_dice_sd": round(consistency["dice_sd"], 4), "n_pairs": consistency["n_cases"],
           "real_run": str(args.real_run), "real_checkpoint": args.checkpoint, "pretrain_seconds": pretrain_seconds,
           "sheet": str(sheet)}
    append_row(args.out / "generator_quality.csv", row)
    pretraining = "reused" if pretrain_seconds is None else f"{pretrain_seconds / 60:.1f} min"
    print(f"{name}: TSTR Dice {row['tstr_dice']:.4f} ({row['n_test']} test cases), mask consistency Dice "
          f"{row['consistency_dice']:.4f} ({row['n_pairs']} pairs), pre-training {pretraining}, sheet {sheet}")


if __name__ == "__main__":
    main()
