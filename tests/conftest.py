"""Shared fixtures: the real data sets beside the checkout, seeded RNGs."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from genseg.config import DataConfig, GeneratorConfig, MethodConfig, RunConfig, SegmenterConfig, TrainConfig
from genseg.data.phantom import make_phantom, make_volume_phantom

REPO_ROOT = Path(__file__).resolve().parents[1]
# The real data sets: GENSEG_DATA_ROOT, else a ``shared/`` folder beside the checkout (docs/datasets.md).
DATA_ROOT = Path(os.environ.get("GENSEG_DATA_ROOT", REPO_ROOT.parent / "shared" / "datasets"))
SPLITS_ROOT = Path(os.environ.get("GENSEG_SPLITS_ROOT", DATA_ROOT.parent / "benchmark" / "splits"))


def _real(path: Path, what: str) -> Path:
    """``path`` if it exists; else the test is skipped, or fails where GENSEG_REQUIRE_DATA=1 (CI)."""
    if path.is_dir():
        return path
    message = (f"{what} not found at {path}; set GENSEG_DATA_ROOT to the folder holding jsrt_lung/, fuseg/, ... "
               "(docs/datasets.md)")
    if os.environ.get("GENSEG_REQUIRE_DATA") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The real medical data sets (GENSEG_DATA_ROOT); tests that need them skip without them."""
    return _real(DATA_ROOT, "the real data sets")


@pytest.fixture(scope="session")
def splits_dir() -> Path:
    """The benchmark split files beside the data sets (GENSEG_SPLITS_ROOT)."""
    return _real(SPLITS_ROOT, "the benchmark split files")


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
    options: dict[str, Any] | None = None,
) -> RunConfig:
    """A RunConfig small enough for unit tests; sections can be overridden field by field.

    The generator is pix2pix unless ``generator`` names another kind (or ``auto``), with narrow
    networks for the kinds that have them; ``options`` are the method's settings."""
    kind = (generator or {}).get("name", "pix2pix")
    fewer_generator_steps = {"every": 2} if method == "genseg" else {}  # 3 generator-side updates in 6 steps
    narrow = {"pix2pix": {"ngf": 4, "ndf": 4}, "composite": {"ndf": 4}}.get(kind, {})
    return RunConfig(
        data=DataConfig(**{"root": root, "budget": budget, "size": 32, **(data or {})}),
        segmenter=SegmenterConfig(options={"base": 4}),
        generator=GeneratorConfig(**{"name": kind, "pretrain_iterations": 3, **narrow, **(generator or {})}),
        method=MethodConfig(method, **{**fewer_generator_steps, **(options or {})}),
        train=TrainConfig(iterations=iterations, val_every=2, checkpoint_every=2, batch_size=2,
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


def make_slice_phantom(out_dir: Path, *, n_cases: int, affine: np.ndarray | None = None) -> Path:
    """An MSD-style folder of 2D NIfTI images (X, Y): each case of :func:`make_volume_phantom` cut to
    its slice 7 along axis 2 (through class 1)."""
    import nibabel as nib

    root = make_volume_phantom(out_dir, n_cases=n_cases, affine=affine)
    for path in [*(root / "imagesTr").iterdir(), *(root / "labelsTr").iterdir()]:
        volume = nib.load(path)
        nib.save(nib.Nifti1Image(np.asarray(volume.dataobj)[:, :, 7], volume.affine), path)
    return root


@pytest.fixture(scope="session")
def slice_phantom() -> Callable[..., Path]:
    """:func:`make_slice_phantom`: 2D images in a volume format."""
    return make_slice_phantom


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


# --- Pages in a browser: CI installs Chromium and sets GENSEG_REQUIRE_BROWSER=1, so these never skip there. ---

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def in_chromium(tmp_path: Path) -> Callable[[Path], tuple[str, np.ndarray]]:
    """Loads an HTML page in headless Chromium: its DOM and a 1000 x 1400 screenshot's gray pixels."""
    if CHROMIUM is None:
        assert os.environ.get("GENSEG_REQUIRE_BROWSER") != "1", "GENSEG_REQUIRE_BROWSER=1 but no chromium on PATH"
        pytest.skip("Chromium is not installed (CI installs it)")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1400"]

    def load(page: Path) -> tuple[str, np.ndarray]:
        dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                             check=True).stdout
        screenshot = tmp_path / "page.png"
        subprocess.run([*flags, f"--screenshot={screenshot}", page.as_uri()], capture_output=True, timeout=120,
                       check=True)
        with Image.open(screenshot) as image:
            assert image.size == (1000, 1400)
            return dom, np.asarray(image.convert("L"), dtype=float)

    return load
