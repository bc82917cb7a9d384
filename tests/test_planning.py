"""The plan from a fingerprint: structure width, the size chosen under its bounds, the synthesis."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from genseg.data import Sample
from genseg.errors import ConfigError
from genseg.planning import (
    BASE_SIZE,
    MIN_WIDTH_PX,
    Fingerprint,
    RunPlan,
    fingerprint,
    make_plan,
    plan_axis,
    plan_dims,
    plan_patch,
    plan_spacing,
    plan_synthesis,
    spacing_anisotropy,
    structure_width,
    volume_layout,
)


def _disc(side: int, diameter: float) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side]
    return (((yy - side / 2) ** 2 + (xx - side / 2) ** 2) < (diameter / 2) ** 2).astype(np.int64)


def test_structure_width_of_a_strip_is_its_width_and_of_a_disc_half_its_diameter() -> None:
    strip = np.zeros((128, 128), dtype=np.int64)
    strip[40:46, 10:118] = 1
    assert structure_width(strip) == pytest.approx(6.0, rel=0.1)
    assert structure_width(_disc(200, 80)) == pytest.approx(40.0, rel=0.15)  # digital boundaries run short
    assert math.isnan(structure_width(np.zeros((8, 8), dtype=np.int64)))


def test_fingerprint_measures_every_case_and_ranks_by_width() -> None:
    wide = [Sample(f"w{i}", np.zeros((1, 200, 200), np.float32), _disc(200, 80)) for i in range(9)]
    thin = np.zeros((200, 200), dtype=np.int64)
    thin[100:103, 20:180] = 1
    samples = [*wide, Sample("thin", np.zeros((1, 200, 200), np.float32), thin)]
    fp = fingerprint(samples)
    assert fp.cases == 10 and fp.native_side == 200 and fp.channels == 1
    widths = [structure_width(_disc(200, 80))] * 9 + [structure_width(thin)]
    assert fp.structure_width == pytest.approx(np.percentile(widths, 10))  # pulled toward the thin case
    assert fp.structure_width < structure_width(_disc(200, 80))


@pytest.mark.parametrize(
    ("native", "width", "max_size", "expected"),
    [
        (200, 33.0, 512, BASE_SIZE),  # lungs: the floor
        (256, 4.0, 512, 256),  # wounds: the images' own side
        (584, 3.7, 512, 512),  # vessels: the cap
        (584, 3.7, 256, 256),  # a smaller cap
        (53, 4.3, 512, 64),  # hippocampus slices: never above the images' side
        (400, 8.0, 512, 224),  # in between: 400 * 4 / 8 = 200, rounded up to 224
    ],
)
def test_plan_keeps_narrow_structures_wide_within_its_bounds(native: float, width: float, max_size: int,
                                                             expected: int) -> None:
    plan = make_plan(Fingerprint(cases=3, native_side=native, structure_width=width, channels=1), max_size=max_size)
    assert plan.size == expected
    assert plan.relative_cost == pytest.approx((expected / BASE_SIZE) ** 2, abs=0.01)
    if BASE_SIZE < expected < min(max_size, 32 * math.ceil(native / 32)):
        assert plan.width_at_size >= MIN_WIDTH_PX


def test_plan_rejects_a_cap_that_is_not_a_multiple_of_32() -> None:
    with pytest.raises(ValueError, match="max_size"):
        make_plan(Fingerprint(cases=1, native_side=100, structure_width=5, channels=1), max_size=100)


def _lesion_phantom(case: int) -> Sample:
    """A photo-like image with one small round lesion (1 % of the image) wherever it falls."""
    rng = np.random.default_rng(case)
    mask = np.zeros((128, 128), dtype=np.int64)
    row, col = rng.integers(20, 108, 2)
    mask[(np.mgrid[0:128, 0:128][0] - row) ** 2 + (np.mgrid[0:128, 0:128][1] - col) ** 2 < 40] = 1
    return Sample(f"lesion{case}", rng.random((3, 128, 128), dtype=np.float32), mask)


def _anatomy_phantom(case: int) -> Sample:
    """A chest-like image with two large fields (lungs, 30 % of the image) in place, a little moved."""
    mask = np.zeros((128, 128), dtype=np.int64)
    shift = case % 3
    mask[24 + shift:104 + shift, 16:56] = 1
    mask[24 + shift:104 + shift, 72:112] = 1
    return Sample(f"chest{case}", np.zeros((1, 128, 128), np.float32), mask)


def test_the_plan_gives_lesions_the_compositing_generator_and_anatomy_pix2pix() -> None:
    lesions = fingerprint([_lesion_phantom(case) for case in range(8)])
    assert lesions.foreground_fraction == pytest.approx(125 / 128**2, rel=0.05) and lesions.components == 1
    assert lesions.position_spread > 0.1  # they fall anywhere
    anatomy = fingerprint([_anatomy_phantom(case) for case in range(8)])
    assert anatomy.foreground_fraction == pytest.approx(2 * 80 * 40 / 128**2) and anatomy.components == 2
    assert anatomy.position_spread < 0.02
    assert plan_synthesis(lesions) == make_plan(lesions).synthesis == "composite"
    assert plan_synthesis(anatomy) == make_plan(anatomy).synthesis == "pix2pix"
    assert "synthesis composite" in make_plan(lesions).describe()


def test_many_small_pieces_are_not_lesions() -> None:
    """Vessels cover little of the image in hundreds of pieces: pix2pix draws trees, pasting breaks them."""
    vessels = Fingerprint(cases=5, native_side=565, structure_width=3.7, channels=3, foreground_fraction=0.02,
                          components=400, position_spread=0.05)
    assert plan_synthesis(vessels) == "pix2pix"
    assert plan_synthesis(Fingerprint(cases=1, native_side=64, structure_width=math.nan, channels=1)) == "pix2pix"


@pytest.mark.realdata
@pytest.mark.parametrize(("dataset", "budget", "expected", "dims"), [
    ("fuseg", 10, "composite", 2), ("jsrt_lung", 3, "pix2pix", 2), ("msd_hippocampus", 2, "pix2pix", 3),
    ("drive", 5, "pix2pix", 2)])
def test_the_benchmark_budgets_are_planned_as_their_targets_call_for(dataset: str, budget: int, expected: str,
                                                                     dims: int, datasets_dir: Path,
                                                                     splits_dir: Path) -> None:
    from genseg.config import DataConfig, MethodConfig, RunConfig, TrainConfig
    from genseg.data import index_cases, read_split
    from genseg.run_data import plan_run

    split, index = read_split(splits_dir / f"{dataset}.json"), index_cases(datasets_dir / dataset)
    for seed in (0, 1, 2):
        config = RunConfig(data=DataConfig(root=datasets_dir / dataset, budget=budget),
                           method=MethodConfig("separate"), train=TrainConfig(seed=seed))
        plan = plan_run(config, index, split)
        assert plan.data_set.synthesis == plan.generator == expected, seed
        assert plan.dims == dims and plan.batch_size == {2: 4, 3: 2}[dims], seed
        volume = {"data.spacing", "data.patch"} if dims == 3 else set()
        assert set(plan.decided) == {"data.size", "data.dims", "generator.name", "train.batch_size", *volume}


def test_the_patch_fits_every_budget_volume_in_steps_of_16_and_at_least_32() -> None:
    assert plan_patch([(35, 51, 35), (43, 59, 47), (31, 40, 24)]) == (48, 64, 48)
    assert plan_patch([(12, 16, 20)]) == (32, 32, 32)


def test_the_volume_layout_says_padded_or_cropped_from_larger_volumes() -> None:
    assert volume_layout((48, 64, 48), (1.0, 1.0, 1.0), (43, 59, 47)) == (
        "volumes padded to 48x64x48 voxels of 1 x 1 x 1 mm")
    assert volume_layout((96, 96, 96), (0.8, 0.8, 1.6), (160, 96, 90)) == (
        "patches of 96x96x96 voxels of 0.8 x 0.8 x 1.6 mm cropped from volumes up to 160x96x90, a third on foreground")
    assert volume_layout((32, 32, 32), None) == "volumes padded to 32x32x32 voxels"


def test_a_patch_above_the_voxel_cap_shrinks_its_longest_side() -> None:
    patch = plan_patch([(200, 90, 70)], max_voxels=96**3)
    assert patch[1:] == (96, 80) and patch[0] % 16 == 0 and math.prod(patch) <= 96**3
    assert patch[0] == max(side for side in range(32, 209, 16) if side * 96 * 80 <= 96**3)


# --- 2D or 3D ---


def test_spacing_anisotropy_is_the_coarsest_over_the_finest_voxel_side() -> None:
    rotated = np.diag([1.0, 1.0, 5.0, 1.0])
    rotated[:3, :3] = rotated[:3, :3] @ np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]])  # axes permuted, sides kept
    assert spacing_anisotropy([np.eye(4), np.diag([0.5, 0.5, 1.0, 1]), rotated]) == 2.0  # median of 1, 2, 5


@pytest.mark.parametrize(("anisotropy", "volumes", "dims"), [
    (None, True, 2),     # images
    (1.0, True, 3),      # isotropic volumes
    (3.0, True, 3),      # at the limit
    (5.0, True, 2),      # thick slices
    (1.0, False, 2),     # a method that trains only on images
])
def test_plan_dims_gives_3d_to_volumes_of_sensible_spacing(anisotropy: float | None, volumes: bool,
                                                           dims: int) -> None:
    assert plan_dims(anisotropy, volumes) == dims
    assert plan_dims(anisotropy, volumes, single_slice=True) == 2  # 2D images in a volume format


@pytest.mark.parametrize(("spacing", "method", "dims"), [
    ((1.0, 1.0, 1.0), "augment", 3), ((1.0, 1.0, 5.0), "augment", 2), ((1.0, 1.0, 1.0), "copypaste", 2),
])
def test_by_default_the_plan_decides_dims_and_batch_with_its_reason(
    spacing: tuple[float, float, float], method: str, dims: int, tmp_path: Path,
) -> None:
    from genseg.config import DataConfig, MethodConfig, RunConfig, TrainConfig
    from genseg.data import index_cases, make_volume_phantom
    from genseg.run_data import default_split, plan_run, planned

    root = make_volume_phantom(tmp_path / "Task04_Tiny", n_cases=5, affine=np.diag([*spacing, 1.0]))
    config = RunConfig(data=DataConfig(root=root, budget=3), method=MethodConfig(method))
    index = index_cases(root)
    plan = plan_run(config, index, default_split(config, index))
    assert plan.dims == dims and {"data.dims", "train.batch_size"} <= set(plan.decided)
    assert plan.anisotropy == pytest.approx(max(spacing) / min(spacing))
    assert f"voxel spacing anisotropy {plan.anisotropy:.1f}" in plan.describe()
    assert f"batch {plan.batch_size}" in plan.describe()
    assert (planned(config, plan).data.dims, planned(config, plan).train.batch_size) == (dims, {2: 4, 3: 2}[dims])
    assert (plan.patch is not None) == (dims == 3)
    assert RunPlan.from_dict(plan.to_dict()) == plan
    batch_of_three = replace(config, train=TrainConfig(batch_size=3))  # what the config sets stays
    plan = plan_run(batch_of_three, index, default_split(config, index))
    assert plan.batch_size == 3 and "train.batch_size" not in plan.decided
    assert planned(batch_of_three, plan).train.batch_size == 3


@pytest.mark.parametrize(("sides", "shape", "axis"), [
    ((1.0, 1.0, 1.0), (12, 16, 20), 0),    # isotropic: as before the axis was planned
    ((2.0, 1.0, 1.0), (12, 16, 20), 0),    # mildly anisotropic: not thick slices
    ((0.8, 0.8, 5.0), (12, 16, 20), 2),    # thick axial slices: slice across them
    ((1.0, 6.0, 1.0), (12, 16, 20), 1),
    ((1.0, 1.0, 1.0), (12, 16, 1), 2),     # 2D images stored as volumes: their one slice
])
def test_the_planned_axis_slices_across_thick_slices_and_through_single_slice_images(
    sides: tuple[float, float, float], shape: tuple[int, int, int], axis: int,
) -> None:
    assert plan_axis([(shape, np.diag([*sides, 1.0]))] * 3) == axis
    with pytest.raises(ConfigError, match="geometries"):
        plan_axis([])


def test_a_thick_sliced_budget_is_trained_on_its_acquired_slices(tmp_path: Path) -> None:
    """Thick-sliced volumes were cut along axis 0 whatever their spacing: slices 5 mm by 1 mm, across
    the acquired images. Now the plan slices along the coarse axis, says so, and keeps a set axis."""
    from genseg.config import DataConfig, RunConfig
    from genseg.data import index_cases, make_volume_phantom
    from genseg.run_data import default_split, plan_run, planned

    root = make_volume_phantom(tmp_path / "Task05_Thick", n_cases=5, affine=np.diag([1.0, 1.0, 5.0, 1.0]))
    config = RunConfig(data=DataConfig(root=root, budget=3))
    index = index_cases(root)
    plan = plan_run(config, index, default_split(config, index))
    assert (plan.dims, plan.axis) == (2, 2) and "data.axis" in plan.decided
    assert "slices along axis 2" in plan.describe()
    assert planned(config, plan).data.sample_axis == 2
    assert RunPlan.from_dict(plan.to_dict()) == plan
    along_0 = replace(config, data=replace(config.data, axis=0))
    plan = plan_run(along_0, index, default_split(config, index))
    assert plan.axis == 0 and "data.axis" not in plan.decided
    with pytest.raises(ConfigError, match="slicing axis is left to the plan"):
        _ = config.data.sample_axis


def test_2d_nifti_images_are_planned_as_images_through_their_one_slice(
    slice_phantom: Callable[..., Path], tmp_path: Path,
) -> None:
    """Isotropic 2D NIfTI images (X, Y, 1) were planned as 3D volumes padded to 32 voxels deep."""
    from genseg.config import DataConfig, RunConfig
    from genseg.data import index_cases
    from genseg.run_data import default_split, plan_run

    root = slice_phantom(tmp_path / "Task06_Slices", n_cases=5)
    config = RunConfig(data=DataConfig(root=root, budget=3))
    index = index_cases(root)
    plan = plan_run(config, index, default_split(config, index))
    assert (plan.dims, plan.axis, plan.patch) == (2, 2, None)


def test_the_planned_spacing_is_the_budgets_median_voxel_side_per_axis() -> None:
    rotated = np.array([[0.0, -0.8, 0.0, 5.0], [1.5, 0.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    affines = [np.diag([1.0, 0.7, 3.0, 1.0]), np.diag([1.2, 0.9, 2.5, 1.0]), rotated]
    assert plan_spacing(affines) == (1.2, 0.8, 2.5)  # the sides of each array axis, whatever the orientation
    assert plan_spacing([np.diag([0.9765625, 0.9765625, 1.0, 1.0])]) == (0.977, 0.977, 1.0)
    with pytest.raises(ConfigError, match="geometries"):
        plan_spacing([])
