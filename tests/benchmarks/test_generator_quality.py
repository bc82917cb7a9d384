"""benchmarks/generator_quality.py on a tiny phantom: its metrics on known answers, and one whole measurement."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from genseg.config import RunConfig
from genseg.data import DataError, LabelMap, index_cases, make_split, read_split, write_split
from genseg.data.phantom import make_phantom
from genseg.evaluation import TrainedSegmenter, evaluate, load_segmenter
from genseg.generation import TrainedGenerator
from genseg.generators.base import MaskConditioned
from genseg.run_data import load_run_data
from genseg.runs import RunPaths
from genseg.training import train


@pytest.fixture(scope="module")
def quality(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_script("generator_quality")


@pytest.fixture(scope="module")
def benchmark_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 12-case phantom of 32 px as benchmarks keep it: the data folder and the splits folder."""
    root = tmp_path_factory.mktemp("quality")
    data = make_phantom(root / "data" / "phantom", n_cases=12, size=32)
    write_split(make_split(index_cases(data).ids, dataset="phantom", test_fraction=0.25, seeds=(0,)),
                root / "splits" / "phantom.json")
    return data, root / "splits"


@pytest.fixture(scope="module")
def real_run(benchmark_data: tuple[Path, Path], tiny_config: Callable[..., RunConfig],
             tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ``augment`` run on the phantom's budget of 4 (3 training pairs), seed 0."""
    data, splits = benchmark_data
    out = tmp_path_factory.mktemp("real") / "run"
    train(tiny_config(data, "augment", data={"split_file": splits / "phantom.json"}), out, progress=False)
    return out


class MaskAsImage(MaskConditioned):
    """A perfect generator for a known answer: the image of a mask is the mask itself."""

    num_classes = 2

    def generate(self, masks: Tensor) -> Tensor:
        return masks[:, None].float()


def _threshold_segmenter(config: RunConfig) -> TrainedSegmenter:
    """Class 1 where the image is above 0.5: right on every image made by :class:`MaskAsImage`."""
    model = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        model.weight[:] = torch.tensor([-10.0, 10.0]).view(2, 1, 1, 1)
        model.bias[:] = torch.tensor([5.0, -5.0])
    return TrainedSegmenter(model, config, LabelMap.identity(2), iteration=0, in_channels=1)


def _train_masks(run: Path) -> Tensor:
    masks = load_run_data(load_segmenter(run).config, RunPaths(run)).train.masks
    assert masks is not None and masks.any()
    return masks


def test_settings_get_a_folder_safe_label(quality: ModuleType) -> None:
    assert quality.settings_label({"spade": True, "noise": 8}) == "spade-true_noise-8"
    assert quality.settings_label({}) == "default"


def test_mask_consistency_is_dice_against_the_masks_the_images_were_drawn_for(
    quality: ModuleType, real_run: Path
) -> None:
    masks = _train_masks(real_run)
    segmenter = _threshold_segmenter(load_segmenter(real_run).config)
    assert quality.mask_consistency(segmenter, MaskAsImage().generate(masks), masks)["dice_mean"] == 1.0
    shifted = masks.roll(4, dims=-1)
    dice = [2 * (a & b).sum() / (a.sum() + b.sum()) for a, b in zip(shifted.numpy() > 0, masks.numpy() > 0)]
    consistency = quality.mask_consistency(segmenter, MaskAsImage().generate(shifted), masks)
    assert consistency["dice_mean"] == pytest.approx(np.mean(dice)) and consistency["n_cases"] == len(masks)


def test_real_cases_are_scored_as_genseg_evaluate_scores_them(quality: ModuleType, real_run: Path) -> None:
    config = load_segmenter(real_run).config
    scores = quality.real_case_scores(load_segmenter(real_run, "best"), index_cases(config.data.root),
                                      read_split(RunPaths(real_run).split).test)
    evaluated = evaluate(real_run, checkpoints=("best",), overlays=0)["best"]
    assert scores == pytest.approx({key: evaluated[key] for key in scores}, nan_ok=True)


def test_a_segmenter_trained_on_perfect_synthetic_pairs_segments_them(quality: ModuleType, real_run: Path) -> None:
    config = load_segmenter(real_run).config
    config = replace(config, train=replace(config.train, lr=1e-2))  # the recipe's, faster for 30 steps
    generator = TrainedGenerator(MaskAsImage(), config, labels=LabelMap.identity(2), image_channels=1)
    masks = _train_masks(real_run)
    segmenter = quality.train_on_synthetic(generator, torch.zeros(masks.shape[0], 1, *masks.shape[-2:]), masks,
                                           iterations=30, seed=0)
    assert quality.mask_consistency(segmenter, MaskAsImage().generate(masks), masks)["dice_mean"] > 0.9


def test_a_measurement_writes_its_row_and_sheet_and_reuses_its_generator(quality: ModuleType,
    benchmark_data: tuple[Path, Path], real_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, splits = benchmark_data
    argv = ["--dataset", "phantom", "--budget", "4", "--real-run", str(real_run), "--splits-root", str(splits),
            "--generator", "ngf=4", "--generator", "ndf=4", "--generator", "spade=true", "--generator", "noise=2",
            "--pretrain-iterations", "2", "--tstr-iterations", "2", "--pairs", "5", "--draws", "2",
            "--threads", "1", "--out", str(tmp_path)]
    quality.main(argv)
    quality.main(argv)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("phantom-n4-s0-ngf-4_ndf-4_spade-true_noise-2: TSTR Dice") and "reused" in lines[1]
    with (tmp_path / "generator_quality.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and rows[0]["n_test"] == "3" and rows[0]["n_pairs"] == "5"
    assert all(0 <= float(row[key]) <= 1 for row in rows for key in ("tstr_dice", "consistency_dice"))
    assert '"spade": true' in rows[0]["settings"]
    with Image.open(rows[0]["sheet"]) as sheet:  # 3 training pairs: mask | real | 2 draws of mask | image
        assert sheet.size == (4 + 6 * (128 + 4), 18 + 3 * (128 + 4))


def test_a_real_run_of_another_budget_is_refused(quality: ModuleType, benchmark_data: tuple[Path, Path], real_run: Path,
                                                 tmp_path: Path) -> None:
    _, splits = benchmark_data
    with pytest.raises(DataError, match="budget 4 seed 0"):
        quality.main(["--dataset", "phantom", "--budget", "5", "--real-run", str(real_run), "--splits-root",
                      str(splits), "--out", str(tmp_path)])
