"""Shared fixtures: the real data sets beside the checkout, seeded RNGs."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from genseg.config import DataConfig, GeneratorConfig, MLOConfig, RunConfig, SegmenterConfig, TrainConfig
from genseg.data.phantom import make_phantom

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


# --- Tiny runs: a 12-case phantom at 32 px and configs that train in about a second. ---


def make_tiny_config(
    root: Path,
    method: str = "augment",
    *,
    budget: int = 4,
    seed: int = 0,
    iterations: int = 6,
    data: dict[str, Any] | None = None,
    generator: dict[str, Any] | None = None,
    mlo: dict[str, Any] | None = None,
) -> RunConfig:
    """A RunConfig small enough for unit tests; sections can be overridden field by field."""
    return RunConfig(
        data=DataConfig(root=root, budget=budget, size=32, **(data or {})),
        segmenter=SegmenterConfig(options={"base": 4}),
        generator=GeneratorConfig(**{"pretrain_iterations": 3, "ndf": 4,
                                     **({"ngf": 4} if (generator or {}).get("name", "pix2pix") == "pix2pix" else {}),
                                     **(generator or {})}),
        mlo=MLOConfig(**{"every": 2, **(mlo or {})}),  # 3 generator-side updates in 6 iterations
        train=TrainConfig(method=method, iterations=iterations, val_every=2, checkpoint_every=2, batch_size=2,
                          seed=seed),
    )


def train_until_killed(config: RunConfig, out: Path, kill_at: int) -> None:
    """Train ``config`` into ``out`` and stop it like Ctrl-C just before step ``kill_at`` (0-based)."""
    from genseg.training import TrainingHooks, train

    def stop(done: int, method: Any) -> None:
        if done == kill_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, out, progress=False, hooks=TrainingHooks(after_iteration=stop))


@pytest.fixture(scope="session")
def tiny_phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-case phantom data folder at 32 x 32 (read-only: runs write into their own folders)."""
    return make_phantom(tmp_path_factory.mktemp("tiny_phantom"), n_cases=12, size=32)


@pytest.fixture(scope="session")
def tiny_config() -> Callable[..., RunConfig]:
    """:func:`make_tiny_config`, for tests and module-scoped fixtures."""
    return make_tiny_config


@pytest.fixture(scope="session")
def kill_run() -> Callable[[RunConfig, Path, int], None]:
    """:func:`train_until_killed`: a run interrupted after its last checkpoint before a given step."""
    return train_until_killed


@pytest.fixture(scope="session")
def benchmark_script() -> Callable[[str], ModuleType]:
    """Imports a script of the repository's benchmarks/ folder as a module, by name."""

    def load(name: str) -> ModuleType:
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module

    return load
