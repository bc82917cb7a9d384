"""The phantom demo: augment and genseg trained and evaluated with nothing but the package."""

from __future__ import annotations

from pathlib import Path

from genseg.demo import DEMO_METHODS, demo


def test_demo_trains_and_evaluates_every_method_on_the_phantom(tmp_path: Path) -> None:
    result = demo(tmp_path, iterations=2, pretrain_iterations=1, progress=False)

    assert set(result.runs) == set(result.summaries) == set(DEMO_METHODS)
    for method, summaries in result.summaries.items():
        assert result.runs[method] == tmp_path / method
        assert set(summaries) == {"best", "final"}
        for summary in summaries.values():
            assert summary["n_cases"] == 12 and 0.0 <= summary["dice_mean"] <= 1.0  # 30 % of 40 phantom cases
        assert (tmp_path / method / "eval" / "test" / "best" / "cases.csv").is_file()
    assert (tmp_path / "data" / "README.txt").is_file()
    verdict = result.verdict()
    assert verdict.startswith("genseg vs augment on 12 phantom test cases") and "Wilcoxon p" in verdict
