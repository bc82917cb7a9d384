"""The built-in demo data: a small, clearly synthetic segmentation task in the folders layout.

Each image is a grey background with smooth noise and an illumination gradient, holding 1-3
textured blobs (deformed ellipses) that are a little brighter and grainier than the background.
Blur, noise and the overlapping intensity ranges make the task learnable but not trivial.

Example:
    >>> root = make_phantom(Path("phantom"), n_cases=40)  # doctest: +SKIP
    >>> index_cases(root).ids[:2]  # doctest: +SKIP
    ['case_000', 'case_001']
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from genseg.data.io import atomic_write, write_mask_png
from genseg.errors import ConfigError

_README = """\
SYNTHETIC DEMO DATA made by genseg.data.make_phantom (n_cases={n_cases}, size={size}, seed={seed}).
These are procedural images (grey noise with textured blobs), not medical images. images/ holds
the pictures and masks/ the blob masks (0 = background, 255 = blob), matched by file name.
"""


def make_phantom(out_dir: Path, *, n_cases: int = 40, size: int = 128, seed: int = 0) -> Path:
    """Write a synthetic image/mask data set (deterministic for a seed).

    Args:
        out_dir: the folder to create; ``images/``, ``masks/`` and ``README.txt`` are written
            into it, replacing files of the same names.
        n_cases: number of image/mask pairs (``case_000.png``, ...).
        size: side of the square images, at least 32.
        seed: random seed.

    Returns:
        ``out_dir``, ready for :func:`~genseg.data.discovery.index_cases`.
    """
    if n_cases < 1 or size < 32:
        raise ConfigError(f"n_cases must be >= 1 and size >= 32, got {n_cases} and {size}")
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    width = max(3, len(str(n_cases - 1)))
    for case in range(n_cases):
        image, mask = phantom_pair(rng, size)
        name = f"case_{case:0{width}d}.png"
        pixels = np.round(image * 255).astype(np.uint8)
        atomic_write(out_dir / "images" / name,
                     lambda temp, pixels=pixels: Image.fromarray(pixels).save(temp, format="PNG"))
        write_mask_png(out_dir / "masks" / name, mask)
    (out_dir / "README.txt").write_text(_README.format(n_cases=n_cases, size=size, seed=seed))
    return out_dir


def phantom_pair(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic pair: float image (size, size) in [0, 1] and int64 mask with values {0, 1}."""
    rows, cols = np.mgrid[0:size, 0:size] / size
    mask = np.zeros((size, size), dtype=bool)
    for _ in range(rng.integers(1, 4)):
        mask |= _blob(rng, rows, cols)
    background = 0.42 + 0.12 * (rng.uniform(-1, 1) * (rows - 0.5) + rng.uniform(-1, 1) * (cols - 0.5))
    background = background + _smooth_noise(rng, size, sigma=size / 12, amplitude=0.08)
    grain = _smooth_noise(rng, size, sigma=1.0, amplitude=0.07)
    image = background + mask * (rng.uniform(0.08, 0.16) + grain)
    image = gaussian_filter(image, sigma=0.8) + rng.normal(0.0, 0.04, size=(size, size))
    return np.clip(image, 0.0, 1.0), mask.astype(np.int64)


def _blob(rng: np.random.Generator, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A rotated ellipse whose outline is bent by smooth noise."""
    center_row, center_col = rng.uniform(0.2, 0.8, size=2)
    half_axes = rng.uniform(0.07, 0.18, size=2)
    angle = rng.uniform(0, np.pi)
    along = (rows - center_row) * np.cos(angle) + (cols - center_col) * np.sin(angle)
    across = -(rows - center_row) * np.sin(angle) + (cols - center_col) * np.cos(angle)
    radius = (along / half_axes[0]) ** 2 + (across / half_axes[1]) ** 2
    wobble = _smooth_noise(rng, rows.shape[0], sigma=rows.shape[0] / 16, amplitude=0.35)
    return radius + wobble < 1.0


def _smooth_noise(rng: np.random.Generator, size: int, *, sigma: float, amplitude: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to standard deviation ``amplitude``."""
    noise = gaussian_filter(rng.normal(size=(size, size)), sigma=sigma)
    return amplitude * noise / (noise.std() + 1e-8)


def make_volume_phantom(out_dir: Path, *, n_cases: int = 4, shape: tuple[int, int, int] = (12, 16, 20),
                        affine: np.ndarray | None = None, seed: int = 0) -> Path:
    """An MSD-style folder (imagesTr/, labelsTr/) of small noisy NIfTI volumes with two box-shaped
    classes that move a little from case to case: the 3D counterpart of :func:`make_phantom`, for
    tests and trying the 3D path out.

    Args:
        out_dir: the folder to create.
        n_cases: volumes.
        shape: each volume's voxels along its three axes (at least 12 x 16 x 20).
        affine: the 4x4 voxel-to-world matrix written into each file (default: 1 mm voxels).
        seed: the noise's seed.
    """
    import nibabel as nib

    if any(side < least for side, least in zip(shape, (12, 16, 20))):
        raise ConfigError(f"volume phantoms need at least 12 x 16 x 20 voxels, got {shape}")
    rng = np.random.default_rng(seed)
    affine = np.eye(4) if affine is None else affine
    root = Path(out_dir)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for case in range(n_cases):
        labels = np.zeros(shape, dtype=np.uint8)
        labels[2:10, 3 + case % 5:9 + case % 5, 4:10] = 1
        labels[3:9, 8:14, 11 + case % 3:17] = 2
        image = 100.0 + 60.0 * labels + rng.normal(0.0, 10.0, shape)
        nib.save(nib.Nifti1Image(image.astype(np.float32), affine), root / "imagesTr" / f"vol_{case:03d}.nii.gz")
        nib.save(nib.Nifti1Image(labels, affine), root / "labelsTr" / f"vol_{case:03d}.nii.gz")
    return root
