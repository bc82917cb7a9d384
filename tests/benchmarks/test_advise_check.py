"""benchmarks/advise_check.py: the simulated user's folder holds the chosen labeled cases and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from genseg.data import index_cases, make_phantom


def test_the_labeled_folder_links_exactly_the_chosen_cases(benchmark_script: Callable[[str], ModuleType],
                                                           tmp_path: Path) -> None:
    check = benchmark_script("advise_check")
    data = make_phantom(tmp_path / "data", n_cases=6, size=32)
    chosen = ["case_004", "case_001", "case_002"]
    labeled = check.link_labeled(data, chosen, tmp_path / "labeled")
    index = index_cases(labeled)
    assert index.ids == sorted(chosen)
    assert all(case.image_path.read_bytes() == (data / "images" / f"{case.case_id}.png").read_bytes()
               for case in index.cases.values())
    assert check.link_labeled(data, chosen, tmp_path / "labeled") == labeled  # a rerun finds its links in place
