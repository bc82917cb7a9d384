"""benchmarks/curves.py: the convergence rule."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest


def test_last_third_change_is_the_robust_slope_across_the_last_third(
        benchmark_script: Callable[[str], ModuleType]) -> None:
    curves = benchmark_script("curves")
    iterations = list(range(100, 1300, 100))
    falling = [1.0 - 0.05 * k for k in range(12)]  # last third: 0.6 .. 0.45 around a median of 0.525
    assert curves.last_third_change(iterations, falling) == pytest.approx(-0.15 / 0.525)
    spiked = [0.5] * 12
    spiked[-2] = 5.0  # one outlying validation does not move a Theil-Sen line
    assert curves.last_third_change(iterations, spiked) == pytest.approx(0.0)
