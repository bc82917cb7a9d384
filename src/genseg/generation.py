"""Synthetic image-mask pairs from a trained generator.

:func:`generate_pairs` turns a folder of label maps into a data folder of the ``folders`` layout
(``images/`` + ``masks/`` with matching names, usable as training data as it is) and a contact
sheet (mask | synthetic image | real image) to judge the pairs by eye. Each pair is made exactly as
the ``separate`` and ``genseg`` methods make them in training (:meth:`~genseg.generators.base.MaskToImage.draw`
and ``render``): for pix2pix ``(x~, y~) = (G(T(y)), T(y))``, a mask y of the folder under a random
geometry T and the image the generator draws for it (its dropout is its source of variety); for
the compositing generator, a composite of the run's own training pairs. The run is one of
``genseg train`` with a generative method, or of :func:`~genseg.generator_level.pretrain_generator`.

Example:
    >>> generate_pairs(Path("runs/lungs"), Path("lung_masks"), Path("synthetic"), n=200)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from genseg.checkpoint import load_checkpoint
from genseg.config import RunConfig
from genseg.data import (
    DataError,
    LabelMap,
    index_cases,
    normalize_intensity,
    read_image,
    read_mask,
    resize_labels,
    volume_geometry,
    voxel_sides,
    write_mask_png,
)
from genseg.data.io import atomic_write, display_pixels, is_image_file, write_image_volume, write_label_volume
from genseg.errors import ConfigError
from genseg.generators import MaskToImage, create_generator
from genseg.planning import RunPlan
from genseg.plugins import generator_methods
from genseg.run_data import checkpoint_labels, load_run_data, read_run_plan
from genseg.runs import RunPaths
from genseg.sampling import crop_patches

log = logging.getLogger(__name__)

#: Rows of the contact sheet at most.
CONTACT_ROWS = 8
# Contact-sheet tiles are enlarged to at least this many pixels so small images can be judged.
_MIN_TILE = 128
_GAP = 4
_HEADER = 18


class TrainedGenerator(NamedTuple):
    """A generator restored from a run, with what synthesis needs to know."""

    model: MaskToImage
    config: RunConfig
    labels: LabelMap
    image_channels: int

    @property
    def num_classes(self) -> int:
        return self.labels.num_classes


def load_generator(run_dir: Path, checkpoint: str = "final") -> TrainedGenerator:
    """Restore the generator saved in a run's ``best.pt`` or ``final.pt``.

    Args:
        run_dir: a run folder of ``genseg train`` (method separate or genseg) or of
            ``genseg pretrain-generator``.
        checkpoint: ``"final"`` or ``"best"``.

    Returns:
        The generator (on the CPU), the run's config, its label map and image channels.

    Raises:
        ValueError: the run was trained with a method that has no generator.
    """
    run_dir = Path(run_dir)
    state = load_checkpoint(RunPaths(run_dir).weights(checkpoint))
    config = RunConfig.from_dict(state["config"])
    if "generator" not in state:
        raise ConfigError(f"run {run_dir} was trained with method {config.method.name}, which has no generator; "
                         f"train with --method {' or '.join(generator_methods())}")
    model = create_generator(config.generator, state["num_classes"], state["in_channels"],
                             spatial_dims=config.data.dims)
    model.network.load_state_dict(state["generator"])
    return TrainedGenerator(model, config, checkpoint_labels(state), state["in_channels"])


def read_label_maps(folder: Path, size: int, labels: LabelMap) -> Tensor:
    """Every mask file of ``folder`` (sorted by name) as a label map of classes resized to ``size``.

    Args:
        folder: a folder of 2D mask files, in the label values of the run's data.
        size: the square side to resize to.
        labels: the run's label map; a value it lacks is refused, naming the file.

    Returns:
        int64 (M, size, size), classes 0..K-1.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("mask folder not found", folder)
    files = _image_files(folder)
    if not files:
        raise DataError("no mask files found (PNG, TIFF, BMP...); pass the folder that holds the label maps",
                        folder)
    maps = []
    for path in files:
        classes = labels.encode(read_mask(path, stored=True), path)
        maps.append(resize_labels(torch.from_numpy(classes), (size, size), labels.num_classes))
    return torch.stack(maps)


@torch.no_grad()
def synthesize_pairs(generator: TrainedGenerator, masks: Tensor, n: int, seed: int = 0,
                     images: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Draw ``n`` synthetic pairs as training draws them, cycling through ``masks`` (and ``images``).

    Pairs are drawn from batches of the run's batch size, as in training (pix2pix's BatchNorm works
    on batch statistics; a compositor pastes within the batch): pix2pix's pair is (G(T(y)), T(y)).
    The global torch RNG (the generator's noise) is seeded inside a fork, so the caller's random
    state is left alone.

    Args:
        generator: from :func:`load_generator`.
        masks: int64 label maps (M, S, S) at the run's size (volumes: (M, D, H, W) at its patch).
        n: pairs to draw; pair i starts from mask ``i % M``.
        seed: seeds the draws (the geometry T, what is pasted where) and the dropout.
        images: the masks' images (M, C, S, S), for a kind that draws from them.

    Returns:
        Images (n, C, S, S) in [0, 1] and their label maps (n, S, S) (volumes: (n, C, D, H, W), (n, D, H, W)).
    """
    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    if images is None:
        if generator.model.draws_from_images:
            raise ConfigError(f"the {generator.config.generator.name} generator draws from real pairs: "
                             "pass their images")
        images = torch.zeros(masks.shape[0], generator.image_channels, *masks.shape[1:])  # never read
    draw_rng = torch.Generator().manual_seed(seed)
    picks = torch.arange(n) % masks.shape[0]
    batch = generator.config.train.batch_size
    drawn, labels = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, n, batch):
            rows = picks[start:start + batch]
            draw = generator.model.draw(images[rows], masks[rows], None, draw_rng)
            drawn.append(generator.model.render(draw))
            labels.append(draw.masks)
    return torch.cat(drawn), torch.cat(labels)


def generate_pairs(
    run_dir: Path,
    masks_dir: Path | None,
    out_dir: Path,
    *,
    n: int = 100,
    seed: int = 0,
    checkpoint: str = "final",
    real_images_dir: Path | None = None,
) -> list[Path]:
    """Write ``n`` synthetic pairs made by a run's generator, and a contact sheet.

    Layout of ``out_dir``: ``images/syn_0000.png`` (8-bit gray or RGB), ``masks/syn_0000.png``
    (as :func:`~genseg.data.write_mask_png`, in the label values of the run's data, so the pairs can
    join it), ... and ``contact_sheet.png``: up to 8 rows of
    mask | synthetic image | real image (the real column only when real images are found). A 3D
    run writes volumes (``syn_0000.nii.gz``, float32 images and uint8 label maps in the voxel grid
    of the budget's volumes) and a sheet of their middle slices in the three planes, beside the
    real volume each was drawn from. Images of other than 1 or 3 channels (several modalities) go
    into nnU-Net v2 raw data instead, one gray PNG per channel: ``imagesTr/syn_0000_0000.png``,
    ``imagesTr/syn_0000_0001.png``, ``labelsTr/syn_0000.png`` and ``dataset.json``.

    Args:
        run_dir: a run folder with a generator (see :func:`load_generator`).
        masks_dir: a folder of label maps to draw the pairs from, any size, resized to the run's;
            None: the run's own training pairs (the budget's), what a compositor pastes and
            what a 3D run draws from.
        out_dir: the output folder; its ``images/`` and ``masks/`` (``imagesTr/`` and ``labelsTr/``)
            must not hold files yet.
        n: number of pairs.
        seed: seed of the geometry and the generator's dropout (same seed, same files).
        checkpoint: ``"final"`` or ``"best"``.
        real_images_dir: real images for the contact sheet; default the images of the run's data
            folder if it still indexes, else the sheet has no real column.

    Returns:
        The image files written (channel 0's for several channels), in order; each mask has the
        image's file name under ``masks/`` (the case's name under ``labelsTr/``).
    """
    generator = load_generator(Path(run_dir), checkpoint)
    volumes = generator.config.data.dims == 3
    if volumes and masks_dir is not None:
        raise ConfigError("a 3D run draws its synthetic volumes from its own training volumes; leave out --masks")
    plan = read_run_plan(RunPaths(Path(run_dir)))
    if volumes and plan is None:  # every 3D run writes one when it starts
        raise DataError("the 3D run's plan is missing: it names the training volumes whose voxel grid the "
                        "synthetic volumes take; generate from a run folder genseg train wrote",
                        RunPaths(Path(run_dir)).plan)
    source_images, source = _sources(generator, run_dir, masks_dir, seed, plan)
    real = []
    if not volumes:
        real_files = (_image_files(Path(real_images_dir)) if real_images_dir is not None
                      else _default_real_files(generator.config))
        real = _read_real_images(real_files[:CONTACT_ROWS])
    out_dir = Path(out_dir)
    channels = not volumes and generator.image_channels not in (1, 3)  # one PNG per channel, as nnU-Net's raw data
    for folder in (out_dir / name for name in (("imagesTr", "labelsTr") if channels else ("images", "masks"))):
        if folder.is_dir() and any(folder.iterdir()):
            raise FileExistsError(f"{folder} already holds files; choose another --out or empty it")
    images, labels = synthesize_pairs(generator, source, n, seed, images=source_images)
    width = max(4, len(str(n - 1)))
    names = [f"syn_{i:0{width}d}" for i in range(n)]
    if volumes:
        assert source_images is not None and plan is not None
        written = _write_volume_pairs(out_dir, names, images, generator.labels.decode(labels.numpy()),
                                      _volume_affine(generator.config, plan))
        sources = torch.arange(min(n, CONTACT_ROWS)) % source.shape[0]
        rows = [(labels[i], images[i], source_images[sources[i]]) for i in range(len(sources))]
        write_volume_contact_sheet(out_dir / "contact_sheet.png", rows, generator.num_classes)
    else:
        written = (_write_channel_pairs(out_dir, names, images, labels, generator.num_classes) if channels
                   else _write_image_pairs(out_dir, names, images, generator.labels, labels))
        rows = [(label.numpy(), to_uint8(image))
                for image, label in zip(images[:CONTACT_ROWS], labels[:CONTACT_ROWS])]
        write_contact_sheet(out_dir / "contact_sheet.png", rows, generator.num_classes, real)
    log.info("wrote %d synthetic pairs from %s to %s", n, run_dir, out_dir)
    return written


def _write_image_pairs(out_dir: Path, names: list[str], images: Tensor, label_map: LabelMap,
                       labels: Tensor) -> list[Path]:
    for name, image, label in zip(names, images, label_map.decode(labels.numpy())):
        _write_image_png(out_dir / "images" / f"{name}.png", to_uint8(image))
        write_mask_png(out_dir / "masks" / f"{name}.png", label, colour=label_map.is_colour)
    return [out_dir / "images" / f"{name}.png" for name in names]


def _write_channel_pairs(out_dir: Path, names: list[str], images: Tensor, labels: Tensor,
                         num_classes: int) -> list[Path]:
    """Images of other than 1 or 3 channels as nnU-Net v2 raw data, which genseg reads too:
    ``imagesTr/NAME_000k.png`` per channel, ``labelsTr/NAME.png`` (class indices) and ``dataset.json``."""
    for name, image, label in zip(names, images, labels):
        for channel, pixels in enumerate(image):
            _write_image_png(out_dir / "imagesTr" / f"{name}_{channel:04d}.png", to_uint8(pixels[None]))
        _write_image_png(out_dir / "labelsTr" / f"{name}.png", label.numpy().astype(np.uint8))
    dataset = {"channel_names": {str(k): f"channel_{k}" for k in range(images.shape[1])},
               "labels": {"background": 0, **{f"class_{k}": k for k in range(1, num_classes)}},
               "numTraining": len(names), "file_ending": ".png"}
    atomic_write(out_dir / "dataset.json", lambda temp: temp.write_text(json.dumps(dataset, indent=2)))
    return [out_dir / "imagesTr" / f"{name}_0000.png" for name in names]


def _write_volume_pairs(out_dir: Path, names: list[str], images: Tensor, stored: np.ndarray,
                        affine: np.ndarray) -> list[Path]:
    for name, image, label in zip(names, images, stored):
        write_image_volume(out_dir / "images" / f"{name}.nii.gz", image.numpy(), affine)
        write_label_volume(out_dir / "masks" / f"{name}.nii.gz", label, affine)
    return [out_dir / "images" / f"{name}.nii.gz" for name in names]


def _volume_affine(config: RunConfig, plan: RunPlan) -> np.ndarray:
    """The orientation of the run's first training volume, its columns scaled to the run's spacing,
    without its offset: synthetic volumes are on the voxel grid the run trains on, not at a place in
    a scanner."""
    index = index_cases(config.data.root, layout=config.data.layout)
    affine = np.array(volume_geometry(index.cases[plan.train_ids[0]].image_path)[1], dtype=np.float64)
    if config.data.spacing is not None:
        affine[:3, :3] *= np.asarray(config.data.spacing) / voxel_sides(affine)
    affine[:3, 3] = 0.0
    return affine


def _sources(generator: TrainedGenerator, run_dir: Path, masks_dir: Path | None, seed: int,
             plan: RunPlan | None) -> tuple[Tensor | None, Tensor]:
    """(images or None, label maps) the pairs are drawn from: a folder of masks, or the run's training
    pairs (volumes larger than the run's patch: a patch of each, as training crops them)."""
    if masks_dir is None:
        config = generator.config
        train = load_run_data(config, RunPaths(Path(run_dir)), plan).train
        assert train.masks is not None
        if config.data.dims == 3 and config.data.patch is not None:
            return crop_patches(train.images, train.masks, config.data.patch, torch.Generator().manual_seed(seed))
        return train.images, train.masks
    if generator.model.draws_from_images:
        raise ConfigError(f"the {generator.config.generator.name} generator pastes the run's own training pairs; "
                         "leave out --masks")
    return None, read_label_maps(Path(masks_dir), generator.config.data.size, generator.labels)


def write_contact_sheet(path: Path, rows: list[tuple[np.ndarray, np.ndarray]], num_classes: int,
                        real: list[np.ndarray]) -> None:
    """A PNG grid, one row per pair: mask | synthetic image | real image (if any are given).

    Args:
        path: the PNG to write.
        rows: (label map (S, S), uint8 image (S, S) or (S, S, 3)) per row.
        num_classes: K, to spread the labels over the gray range.
        real: uint8 real images of any size, used in turn; empty leaves the column out.
    """
    tile = tile_side(rows[0][0].shape[0])
    titles = ["mask", "synthetic"] + (["real"] if real else [])
    tiles = []
    for row, (labels, image) in enumerate(rows):
        tiles.append([mask_tile(labels, num_classes, tile), image_tile(image, tile)])
        if real:
            tiles[-1].append(image_tile(real[row % len(real)], tile, Image.BILINEAR))
    write_image_grid(Path(path), titles, tiles)


def write_volume_contact_sheet(path: Path, rows: list[tuple[Tensor, Tensor, Tensor]], num_classes: int) -> None:
    """A PNG grid, one row per synthetic volume: mask | synthetic | real, each as the middle slice of
    the three planes (axes 0, 1 and 2 of the volume), padded to square tiles.

    Args:
        path: the PNG to write.
        rows: (label map (D, H, W), image (C, D, H, W) in [0, 1], the real image it was drawn from).
        num_classes: K, to spread the labels over the gray range.
    """
    labels = rows[0][0]
    tile = tile_side(max(labels.shape))
    titles = [f"{kind} {axis}" for axis in ("axis 0", "axis 1", "axis 2") for kind in ("mask", "synthetic", "real")]
    tiles = []
    for label, image, real in rows:
        row = []
        for axis in range(3):
            middle = label.shape[axis] // 2
            row += [mask_tile(_square(label.select(axis, middle).numpy()), num_classes, tile),
                    image_tile(_square(to_uint8(image.select(axis + 1, middle))), tile),
                    image_tile(_square(to_uint8(real.select(axis + 1, middle))), tile)]
        tiles.append(row)
    write_image_grid(Path(path), titles, tiles)


def _square(pixels: np.ndarray) -> np.ndarray:
    """A slice padded with zeros to a square, centred, so a tile keeps its aspect."""
    height, width = pixels.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    padding = [(top, side - height - top), (left, side - width - left)] + [(0, 0)] * (pixels.ndim - 2)
    return np.pad(pixels, padding)


def tile_side(size: int) -> int:
    """The side of a grid tile for images of ``size``: a multiple of it, and at least 128 px to judge by eye."""
    return size * math.ceil(_MIN_TILE / size)


def mask_tile(labels: np.ndarray, num_classes: int, tile: int) -> Image.Image:
    """A label map (S, S) as a gray tile of side ``tile``, its labels spread over the gray range."""
    pixels = (labels * (255 // (num_classes - 1))).astype(np.uint8)
    return Image.fromarray(pixels).resize((tile, tile), Image.NEAREST)


def image_tile(pixels: np.ndarray, tile: int, resample: int = Image.NEAREST) -> Image.Image:
    """A uint8 image (see :func:`to_uint8`) as a tile of side ``tile``."""
    return Image.fromarray(pixels).resize((tile, tile), resample)


def write_image_grid(path: Path, titles: list[str], rows: list[list[Image.Image]]) -> None:
    """A PNG of square tiles of one side, a title over each column, written atomically."""
    tile = rows[0][0].width
    sheet = Image.new("RGB", (_GAP + len(titles) * (tile + _GAP), _HEADER + len(rows) * (tile + _GAP)), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(titles):
        draw.text((_GAP + column * (tile + _GAP), 3), title, fill="black")
    for row, tiles in enumerate(rows):
        for column, picture in enumerate(tiles):
            sheet.paste(picture.convert("RGB"), (_GAP + column * (tile + _GAP), _HEADER + row * (tile + _GAP)))
    atomic_write(path, lambda temp: sheet.save(temp, format="PNG"))


def _default_real_files(config: RunConfig) -> list[Path]:
    """The images of the run's data folder (channel 0's in the nnunet layout), in every layout; none
    if the folder is gone or no longer indexes (the sheet then has no real column)."""
    if config.data.root is None:
        return []
    try:
        index = index_cases(config.data.root, layout=config.data.layout)
    except DataError:
        return []
    return [] if index.is_volume else [index.cases[case_id].image_path for case_id in index.ids]


def _read_real_images(files: list[Path]) -> list[np.ndarray]:
    """2D images, normalized as for training, as uint8."""
    return [to_uint8(torch.from_numpy(normalize_intensity(read_image(path)))) for path in files]


def _image_files(folder: Path) -> list[Path]:
    """The 2D image files of a folder, sorted by name; hidden and other files are skipped."""
    if not folder.is_dir():
        raise DataError("real image folder not found", folder)
    return sorted(path for path in folder.iterdir() if path.is_file() and is_image_file(path))


def to_uint8(image: Tensor) -> np.ndarray:
    """A (C, H, W) image tensor in [0, 1] as the picture :func:`display_pixels` makes of it."""
    return display_pixels(image.detach().cpu().numpy())


def _write_image_png(path: Path, pixels: np.ndarray) -> None:
    atomic_write(path, lambda temp: Image.fromarray(pixels).save(temp, format="PNG"))
