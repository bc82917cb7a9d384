"""Shared fixtures: the real data sets beside the checkout, seeded RNGs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"
SHARED_SPLITS = REPO_ROOT.parent / "shared" / "benchmark" / "splits"


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """../shared/datasets: real medical data, present on developer machines and in CI."""
    if not SHARED_DATASETS.is_dir():
        pytest.fail(f"real data sets not found at {SHARED_DATASETS}; tests need ../shared/datasets")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def splits_dir() -> Path:
    """../shared/benchmark/splits: the benchmark split files."""
    if not SHARED_SPLITS.is_dir():
        pytest.fail(f"split files not found at {SHARED_SPLITS}")
    return SHARED_SPLITS


# Tiny test tensors run far faster on one thread than on two contended ones.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)
