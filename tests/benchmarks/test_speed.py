"""benchmarks/speed.py on a tiny phantom: every variant timed in turn, the ratios printed."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from genseg.data import index_cases, make_split, write_split
from genseg.data.phantom import make_phantom


def test_speed_times_each_variant_in_turn_and_prints_its_ratios(
    tmp_path: Path, benchmark_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    speed = benchmark_script("speed")
    data = make_phantom(tmp_path / "phantom", n_cases=12, size=32)
    split = tmp_path / "phantom.json"
    write_split(make_split(index_cases(data).ids, dataset="phantom", test_fraction=0.25, seeds=(0,)), split)

    speed.main(["--data", str(data), "--split", str(split), "--size", "32", "--budget", "4", "--iterations", "4",
                "--every", "2", "--upper", "none", "pairs", "--synthetic", "4", "2"])
    lines = capsys.readouterr().out.splitlines()
    ratios = {line.split("  ")[0].strip(): re.findall(r"([\d.]+)x (augment|separate)", line) for line in lines[1:-1]}
    names = [f"{variant} synthetic={pairs}" for pairs in (4, 2)
             for variant in ("separate", "genseg upper=none exact every=2", "genseg upper=pairs exact every=2")]
    assert list(ratios) == ["augment", *names]
    assert ratios["augment"] == [("1.00", "augment")]
    assert all(ratios[f"separate synthetic={pairs}"][1] == ("1.00", "separate") for pairs in (4, 2))
    assert "generator-side iterations" in lines[-2] and "generator-side" not in lines[2]
    shares = [float(share) for share in re.findall(r"pre-training +(\d+)% of a run", "\n".join(lines))]
    assert len(shares) == 6 and all(0 < share < 100 for share in shares)
    assert lines[-1].startswith("generator pre-training") and "s/step" in lines[-1]
