"""HTML reports of a run and of a benchmark, checked in the page and in headless Chromium."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from genseg.cli import app
from genseg.config import RunConfig
from genseg.data import index_cases, read_split
from genseg.evaluation import evaluate
from genseg.generation import generate_pairs
from genseg.report import benchmark_report, run_report
from genseg.training import train


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


def test_a_compositing_run_in_the_flat_layout_reports_its_synthetic_pairs(
        tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path) -> None:
    flat = tmp_path / "flat"  # the phantom as images beside their _mask files
    flat.mkdir()
    for case in index_cases(tiny_phantom).cases.values():
        shutil.copy(case.image_path, flat / f"{case.case_id}.png")
        shutil.copy(case.mask_path, flat / f"{case.case_id}_mask.png")
    run = tmp_path / "run"
    train(tiny_config(flat, "separate", iterations=2, generator={"name": "composite"}), run, progress=False)
    page = run_report(run).read_text()
    assert "Synthetic pairs" in page and page.count("data:image/png;base64,") == 2  # the curves and the sheet
    without_real = tmp_path / "without-real"
    (tmp_path / "empty").mkdir()
    generate_pairs(run, None, without_real, n=2, real_images_dir=tmp_path / "empty")
    with Image.open(run / "synthetic" / "contact_sheet.png") as sheet, \
            Image.open(without_real / "contact_sheet.png") as narrower:
        assert sheet.width > narrower.width  # the flat folder's real images are the third column


def test_benchmark_report_renders_the_table(tmp_path: Path) -> None:
    (tmp_path / "table.md").write_text("# Results\n\n## a (unet)\n\n| N | Dice |\n|---|---|\n| 3 | 0.900 |\n")
    Image.new("RGB", (20, 10)).save(tmp_path / "efficiency_a.png")
    page = benchmark_report(tmp_path).read_text()
    assert "<h1>Results</h1>" in page and "<tr><td>3</td><td>0.900</td></tr>" in page
    assert page.count("data:image/png;base64,") == 1


def test_report_command_needs_one_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report"])
    assert result.exit_code == 2 and "--run DIR or --benchmark DIR" in result.output


def test_run_report_renders_in_headless_chromium(report: Path,
                                                in_chromium: Callable[[Path], tuple[str, np.ndarray]]) -> None:
    dom, pixels = in_chromium(report)
    assert "Cases, worst first" in dom and dom.count("<figure>") == 9
    assert pixels.std() > 10  # text, tables and images drawn, not a blank page
