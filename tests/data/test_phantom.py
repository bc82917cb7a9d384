"""The built-in synthetic demo data set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genseg.data import index_cases, load_samples, make_phantom


def test_phantom_is_a_folders_dataset_of_binary_pairs(tmp_path: Path) -> None:
    root = make_phantom(tmp_path / "phantom", n_cases=6, size=64, seed=3)
    assert "synthetic" in (root / "README.txt").read_text().lower()
    index = index_cases(root)
    assert index.layout == "folders" and index.ids == [f"case_{i:03d}" for i in range(6)]
    samples = load_samples(index, index.ids)
    for sample in samples:
        assert sample.image.shape == (1, 64, 64)
        assert set(np.unique(sample.mask)) == {0, 1}
        assert 0.005 < sample.mask.mean() < 0.6


def test_phantom_foreground_is_brighter_but_overlaps(tmp_path: Path) -> None:
    index = index_cases(make_phantom(tmp_path, n_cases=8, size=64, seed=0))
    samples = load_samples(index, index.ids)
    inside = np.concatenate([s.image[0][s.mask == 1] for s in samples])
    outside = np.concatenate([s.image[0][s.mask == 0] for s in samples])
    assert inside.mean() > outside.mean() + 0.1  # learnable...
    assert np.percentile(inside, 10) < np.percentile(outside, 90)  # ...but not by a threshold


def test_phantom_is_deterministic_per_seed(tmp_path: Path) -> None:
    first = make_phantom(tmp_path / "a", n_cases=3, size=32, seed=1)
    again = make_phantom(tmp_path / "b", n_cases=3, size=32, seed=1)
    other = make_phantom(tmp_path / "c", n_cases=3, size=32, seed=2)
    name = "images/case_002.png"
    assert (first / name).read_bytes() == (again / name).read_bytes()
    assert (first / name).read_bytes() != (other / name).read_bytes()

