"""The phantom demo: augment and genseg trained and evaluated with nothing but the package."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from genseg.demo import DEMO_METHODS, demo


def test_demo_trains_and_evaluates_every_method_on_the_phantom(tmp_path: Path) -> None:
    result = demo(tmp_path, iterations=2, pretrain_iterations=1, progress=False)

    assert set(result.runs) == set(result.summaries) == set(DEMO_METHODS)
    for method, summaries in result.summaries.items():
        assert result.runs[method] == tmp_path / method
        assert set(summaries) == {"best", "final", "averaged"}
        for checkpoint, summary in summaries.items():
            with (tmp_path / method / "eval" / "test" / checkpoint / "cases.csv").open() as handle:
                dice = [float(row["dice"]) for row in csv.DictReader(handle)]
            assert summary["n_cases"] == len(dice) == 12  # 30 % of 40 phantom cases
            assert summary["dice_mean"] == pytest.approx(sum(dice) / len(dice))
    assert (tmp_path / "data" / "README.txt").is_file()
    verdict = result.verdict()
    assert verdict.startswith("genseg vs augment on 12 phantom test cases (averaged checkpoint)")
    assert "Wilcoxon p" in verdict
    means = re.search(r"mean Dice (\d\.\d{3}) vs (\d\.\d{3}), paired difference ([+-]\d\.\d{3})", verdict)
    genseg, augment = (result.summaries[method]["averaged"]["dice_mean"] for method in ("genseg", "augment"))
    assert means is not None and means.groups() == (f"{genseg:.3f}", f"{augment:.3f}", f"{genseg - augment:+.3f}")
