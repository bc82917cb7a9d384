"""HTML reports of a run and of a benchmark, checked in the page and in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from genseg.advise import CurvePlan, fit_advice, write_advice_page
from genseg.cli import app
from genseg.config import RunConfig
from genseg.data import read_split
from genseg.evaluation import evaluate
from genseg.report import benchmark_report, run_report
from genseg.training import train

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Chromium and sets this, so the browser test can never be skipped there.
REQUIRE_BROWSER = os.environ.get("GENSEG_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def report(tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    train(tiny_config(tiny_phantom, "augment", iterations=4), out, progress=False)
    evaluate(out, split="test", overlays=3)
    return run_report(out)


def test_run_report_holds_curves_cases_worst_first_and_overlays(report: Path) -> None:
    page = report.read_text()
    test_ids = read_split(report.parent / "split.json").test
    assert "Learning curves" in page and "HD95 (px)" in page and "<td>method</td><td>augment</td>" in page
    for checkpoint in ("best", "final", "averaged"):
        assert f"Evaluation: test, {checkpoint} checkpoint" in page
    assert "<td>genseg predict uses</td><td>averaged.pt</td>" in page
    first_table = page.split("Cases, worst first")[1].split("</table>")[0]
    dice = [float(value) for value in re.findall(r"<td>case_\d+</td><td>([0-9.]+)</td>", first_table)]
    assert len(dice) == len(test_ids) and dice == sorted(dice)
    assert page.count("data:image/png;base64,") == 1 + 3 * 3  # the curves, three overlays per checkpoint
    assert "green</span> = reference" in page


def test_benchmark_report_renders_the_table(tmp_path: Path) -> None:
    (tmp_path / "table.md").write_text("# Results\n\n## a (unet)\n\n| N | Dice |\n|---|---|\n| 3 | 0.900 |\n")
    Image.new("RGB", (20, 10)).save(tmp_path / "efficiency_a.png")
    page = benchmark_report(tmp_path).read_text()
    assert "<h1>Results</h1>" in page and "<tr><td>3</td><td>0.900</td></tr>" in page
    assert page.count("data:image/png;base64,") == 1


def test_report_command_needs_one_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report"])
    assert result.exit_code == 2 and "--run DIR or --benchmark DIR" in result.output


def _in_chromium(page: Path, tmp_path: Path) -> tuple[str, np.ndarray]:
    """The page's DOM after headless Chromium loaded it, and a 1000 x 1400 screenshot's gray pixels."""
    assert CHROMIUM is not None, "GENSEG_REQUIRE_BROWSER=1 but no chromium on PATH"
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1400"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    screenshot = tmp_path / "page.png"
    subprocess.run([*flags, f"--screenshot={screenshot}", page.as_uri()], capture_output=True, timeout=120,
                   check=True)
    with Image.open(screenshot) as image:
        assert image.size == (1000, 1400)
        return dom, np.asarray(image.convert("L"), dtype=float)


needs_chromium = pytest.mark.skipif(CHROMIUM is None and not REQUIRE_BROWSER,
                                    reason="Chromium is not installed (CI installs it)")


@needs_chromium
def test_run_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    dom, pixels = _in_chromium(report, tmp_path)
    assert "Cases, worst first" in dom and dom.count("<figure>") == 9
    assert pixels.std() > 10  # text, tables and images drawn, not a blank page


@needs_chromium
def test_advice_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    curve = CurvePlan(("augment", "copypaste"), (3, 5, 8), repeats=2, holdout=4, labeled=12)
    points = [{"method": method, "budget": b, "repeat": r, "dice": top - 0.5 / b**0.5 + 0.01 * r}
              for method, top in (("augment", 0.8), ("copypaste", 0.85)) for b in curve.budgets for r in range(2)]
    page = write_advice_page(fit_advice(curve, points), tmp_path / "advice.html")
    dom, pixels = _in_chromium(page, tmp_path)
    assert "Expected to win at 12 labels: copypaste" in dom and dom.count("<img") == 1
    assert pixels.std() > 10
