"""Run folders: which cases a run reads and how many classes it trains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from genseg.config import DataConfig, RunConfig
from genseg.run_data import load_run_data
from genseg.runs import RunPaths


def _nnunet_folder(root: Path, cases: int = 6) -> Path:
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    for index in range(cases):
        image = rng.integers(0, 255, (32, 32), dtype=np.uint8)
        label = np.zeros((32, 32), dtype=np.uint8)
        label[8:16, 8:16] = 1  # label 2 is declared but absent from every case
        Image.fromarray(image).save(root / "imagesTr" / f"case{index}_0000.png")
        Image.fromarray(label).save(root / "labelsTr" / f"case{index}.png")
    dataset = {"channel_names": {"0": "xray"}, "labels": {"background": 0, "lesion": 1, "organ": 2},
               "numTraining": cases, "file_ending": ".png"}
    (root / "dataset.json").write_text(json.dumps(dataset))
    return root


def test_declared_classes_count_even_when_the_budget_lacks_them(tmp_path: Path) -> None:
    config = RunConfig(data=DataConfig(root=_nnunet_folder(tmp_path / "data"), budget=2, size=32))
    data = load_run_data(config, RunPaths(tmp_path / "run"))
    assert data.num_classes == 3


def test_a_run_reads_only_its_budget_and_writes_its_split(tmp_path: Path) -> None:
    config = RunConfig(data=DataConfig(root=_nnunet_folder(tmp_path / "data"), budget=3, size=32))
    data = load_run_data(config, RunPaths(tmp_path / "run"))
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert data.train_ids + data.val_ids == split["pool"]["seed0"][:3]
    assert not set(data.train_ids + data.val_ids) & set(split["test"])
    assert data.train.images.shape == (2, 1, 32, 32) and data.val.images.shape == (1, 1, 32, 32)
