"""Paired per-case comparisons of two evaluated runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from genseg.comparison import paired_difference
from genseg.runs import write_csv


def _scored(root: Path, values: dict[str, float]) -> Path:
    write_csv([{"case": case, "dice": value} for case, value in values.items()],
              root / "eval" / "test" / "best" / "cases.csv")
    return root


def test_paired_difference_is_b_minus_a_case_by_case(tmp_path: Path) -> None:
    a = _scored(tmp_path / "a", {f"c{i}": 0.5 for i in range(8)})
    b = _scored(tmp_path / "b", {f"c{i}": 0.5 + 0.01 * (i + 1) for i in range(8)})
    paired = paired_difference(a, b)
    assert paired.cases == 8 and paired.difference == pytest.approx(0.045)
    assert paired.p_value == pytest.approx(2 / 2**8)  # every difference positive: the exact two-sided p
    assert paired_difference(a, a).p_value == 1.0


def test_runs_scored_on_other_cases_are_refused(tmp_path: Path) -> None:
    a = _scored(tmp_path / "a", {"c1": 0.5, "c2": 0.6})
    b = _scored(tmp_path / "b", {"c1": 0.5, "c3": 0.6})
    with pytest.raises(ValueError, match="different test cases"):
        paired_difference(a, b)
