"""The plan from a fingerprint: structure width, and the size chosen under its bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genseg.data import Sample
from genseg.planning import BASE_SIZE, MIN_WIDTH_PX, Fingerprint, fingerprint, plan_size, structure_width


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
    plan = plan_size(Fingerprint(cases=3, native_side=native, structure_width=width, channels=1), max_size=max_size)
    assert plan.size == expected
    assert plan.relative_cost == pytest.approx((expected / BASE_SIZE) ** 2, abs=0.01)
    if BASE_SIZE < expected < min(max_size, 32 * math.ceil(native / 32)):
        assert plan.width_at_size >= MIN_WIDTH_PX


def test_plan_rejects_a_cap_that_is_not_a_multiple_of_32() -> None:
    with pytest.raises(ValueError, match="max_size"):
        plan_size(Fingerprint(cases=1, native_side=100, structure_width=5, channels=1), max_size=100)
