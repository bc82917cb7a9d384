"""Write a simulated acquisition shift of a data set's test cases, for out-of-domain evaluation.

Usage (from the repository root; the data sets beside it):

    python benchmarks/shift.py --data ../shared/datasets/jsrt_lung \
        --split ../shared/benchmark/splits/jsrt_lung.json --shift xray \
        --out benchmarks/results/shifted/jsrt_lung-xray

A stand-in for a second data set of the same task where none is at hand: the held-out test images
(never trained or selected on) pass through a fixed, seeded change of the kind another scanner,
camera or protocol brings (tone curve, contrast, colour balance, blur, noise); the masks are
copied unchanged. Name the folder in a benchmark's ``[ood]`` table (it is then evaluated whole,
with the models selected in-domain). It is a simulation, not real out-of-domain data: report it
as such.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from monai.transforms import AdjustContrast, GaussianSmooth
from PIL import Image

from genseg.data import index_cases, read_split


@dataclass(frozen=True)
class Shift:
    """One acquisition change, applied in this order to an image scaled to [0, 1].

    Args:
        gamma: tone curve exponent (> 1 darkens mid-tones, < 1 brightens them).
        contrast: factor on the deviation from the image mean (< 1 flattens).
        channel_gain: factor per colour channel (white balance); ignored for gray images.
        blur_sigma: Gaussian blur in pixels of the stored image.
        noise_sd: standard deviation of additive Gaussian noise.
    """

    gamma: float
    contrast: float
    channel_gain: tuple[float, float, float]
    blur_sigma: float
    noise_sd: float


SHIFTS = {
    # Another X-ray system and post-processing: heavier tone curve, flatter, softer, noisier.
    "xray": Shift(gamma=1.5, contrast=0.8, channel_gain=(1.0, 1.0, 1.0), blur_sigma=1.0, noise_sd=0.03),
    # Another camera and light: warmer white balance, brighter mid-tones, softer, noisier.
    "photo": Shift(gamma=0.8, contrast=0.9, channel_gain=(1.15, 1.0, 0.8), blur_sigma=1.0, noise_sd=0.02),
}


def apply_shift(image: np.ndarray, shift: Shift, rng: np.random.Generator) -> np.ndarray:
    """``image`` (H x W or H x W x C, uint8) after ``shift``, as uint8 of the same shape."""
    channels = np.atleast_3d(image.astype(np.float32) / 255.0).transpose(2, 0, 1)  # C x H x W
    shifted = np.asarray(AdjustContrast(gamma=shift.gamma)(channels))
    shifted = shifted.mean() + shift.contrast * (shifted - shifted.mean())
    if shifted.shape[0] == 3:
        shifted = shifted * np.asarray(shift.channel_gain, dtype=np.float32)[:, None, None]
    shifted = np.asarray(GaussianSmooth(sigma=shift.blur_sigma)(shifted))
    shifted = shifted + rng.normal(0.0, shift.noise_sd, size=shifted.shape)
    out = (np.clip(shifted, 0.0, 1.0) * 255.0).round().astype(np.uint8).transpose(1, 2, 0)
    return out[..., 0] if image.ndim == 2 else out


def write_shifted(data: Path, split_file: Path, shift_name: str, out: Path, seed: int = 0) -> bool:
    """Write the shifted test cases of ``data`` to ``out/images`` and ``out/masks``.

    The folder appears whole or not at all (written beside it, then renamed), so a benchmark
    never evaluates a half-written set; an existing ``out`` is left as it is.

    Returns:
        False if ``out`` already existed.
    """
    if out.exists():
        return False
    shift = SHIFTS[shift_name]
    index = index_cases(data)
    cases = [index.cases[case_id] for case_id in read_split(split_file).test]
    for case in cases:  # checked before writing anything
        if case.image_path.suffix.lower() != ".png" or case.mask_path is None:
            raise SystemExit(f"{case.image_path}: only labeled 2D PNG cases can be shifted")
    rng = np.random.default_rng(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    for folder in ("images", "masks"):
        (partial / folder).mkdir()
    for case in cases:
        case_id = case.case_id
        with Image.open(case.image_path) as image:
            shifted = apply_shift(np.asarray(image), shift, rng)
        Image.fromarray(shifted).save(partial / "images" / f"{case_id}.png")
        shutil.copyfile(case.mask_path, partial / "masks" / f"{case_id}{case.mask_path.suffix}")
    (partial / "README.txt").write_text(
        f"Simulated acquisition shift '{shift_name}' of the {len(cases)} test cases of {data} "
        f"(split {split_file}), noise seed {seed}: {asdict(shift)}. Masks unchanged. "
        "Written by benchmarks/shift.py; research use only, like the source data.\n")
    try:
        partial.rename(out)
    except OSError:  # another process wrote the same folder first
        shutil.rmtree(partial)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="Data folder (images/ + masks/ PNG).")
    parser.add_argument("--split", type=Path, required=True, help="Benchmark split file; its test cases are shifted.")
    parser.add_argument("--shift", choices=sorted(SHIFTS), required=True)
    parser.add_argument("--out", type=Path, required=True,
                        help="Folder to write (outside the repository's tracked files).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the noise.")
    args = parser.parse_args()
    written = write_shifted(args.data, args.split, args.shift, args.out, args.seed)
    print(f"{'wrote' if written else 'kept the existing'} shifted test cases in {args.out}")


if __name__ == "__main__":
    main()
