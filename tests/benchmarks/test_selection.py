"""benchmarks/selection.py: every added case trains, and every run of a seed validates on the same cases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from genseg.config import DataConfig, RunConfig, default_n_val
from genseg.data.splits import Split, budget_ids


def test_added_cases_all_train_and_validation_stays_on_the_original_cases(
        benchmark_script: Callable[[str], ModuleType]) -> None:
    selection = benchmark_script("selection")
    labeled, added = ["a", "b", "c", "d", "e"], ["x", "y", "z"]
    order = selection.added_order(labeled, added)
    n_val = default_n_val(8)
    train, val = budget_ids(Split("d", [], {0: order}), 0, 8 - n_val, n_val)
    assert set(added) <= set(train) and val == ["d", "e"] and sorted(train + val) == sorted(labeled + added)


def test_a_retrained_budget_validates_on_its_own_default_share(benchmark_script: Callable[[str], ModuleType],
                                                               tmp_path: Path) -> None:
    selection = benchmark_script("selection")
    base = RunConfig(data=DataConfig(root=tmp_path))  # budget 9: 2 validation cases
    config = selection.budget_config(base, 10 + 3, tmp_path / "split.json", seed=2)
    assert (config.data.budget, config.data.n_val, config.train.seed) == (13, default_n_val(13), 2) == (13, 3, 2)
