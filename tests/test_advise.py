"""genseg advise: the learning curve's plan, the power-law fit, the runs on a phantom, resume and errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import genseg.advise
from genseg.advise import Advice, CurvePlan, PowerLaw, advise, considered_methods, fit_advice, fit_power_law, plan_curve
from genseg.cli import app
from genseg.config import RunConfig
from genseg.data import make_phantom, read_split
from genseg.errors import ConfigError


def test_the_default_curve_holds_out_a_fifth_and_spreads_five_budgets() -> None:
    curve = plan_curve(20, ("augment",))
    assert curve.holdout == 4 and curve.budgets == (3, 6, 10, 13, 16) and curve.runs == 5 * 3
    assert plan_curve(6, ("augment", "copypaste"), repeats=2).holdout == 2  # never fewer than 2
    assert plan_curve(9, ("augment",), budgets=(7, 3, 3)).budgets == (3, 7)


@pytest.mark.parametrize(("labeled", "options", "message"), [
    (4, {}, "4 labeled cases with 2 held out leave 2"),
    (20, {"budgets": (3, 17)}, "budgets must be between 2 and 16"),
    (20, {"budgets": (1, 5)}, "budgets must be between 2 and 16"),
    (20, {"repeats": 0}, "at least one repeat"),
])
def test_a_curve_that_cannot_be_drawn_is_one_clear_error(labeled: int, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_curve(labeled, ("augment",), **options)


def test_the_fit_recovers_a_known_power_law() -> None:
    budgets = np.array([3, 5, 8, 12, 16] * 2, dtype=float)
    known = PowerLaw(0.9, 0.6, 0.7)
    fit = fit_power_law(budgets, known(budgets))
    assert (fit.a, fit.b, fit.c) == pytest.approx((0.9, 0.6, 0.7), abs=1e-4)
    two = fit_power_law(np.array([3.0, 8.0]), known(np.array([3.0, 8.0])))
    assert two.c == genseg.advise.FIXED_EXPONENT  # two budgets cannot tell the exponent
    assert two(np.array([3.0, 8.0])) == pytest.approx(known(np.array([3.0, 8.0])), abs=1e-9)


def test_the_advice_predicts_with_an_interval_and_names_the_higher_curve() -> None:
    curve = CurvePlan(("augment", "copypaste"), (3, 5, 8), repeats=3, holdout=4, labeled=12)
    rng = np.random.default_rng(0)
    points = [{"method": method, "budget": b, "repeat": r, "dice": law(b) + rng.normal(0, 0.01)}
              for method, law in (("augment", PowerLaw(0.8, 0.5, 0.5)), ("copypaste", PowerLaw(0.9, 0.5, 0.5)))
              for b in curve.budgets for r in range(curve.repeats)]
    advice = fit_advice(curve, points)
    assert advice.winner == "copypaste"
    for predicted in advice.predictions.values():
        assert [p.labels for p in predicted] == [12, 17, 22]
        assert all(p.low <= p.dice <= p.high for p in predicted)
        assert predicted[0].dice < predicted[2].dice  # more labels, higher Dice
    assert advice.predictions["augment"][0].dice == pytest.approx(PowerLaw(0.8, 0.5, 0.5)(12), abs=0.03)
    assert "expected to win at 12 labels: copypaste" in advice.summary()


@pytest.fixture(scope="module")
def phantom20(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_phantom(tmp_path_factory.mktemp("advise") / "data", n_cases=20, size=32)


@pytest.fixture(scope="module")
def advised(phantom20: Path, tiny_config: Callable[..., RunConfig],
            tmp_path_factory: pytest.TempPathFactory) -> tuple[Advice, Path, list[str]]:
    out = tmp_path_factory.mktemp("advise") / "advice"
    told: list[str] = []
    advice = advise(tiny_config(phantom20, iterations=4), out, methods=("augment", "copypaste"), budgets=(3, 5, 8),
                    repeats=2, progress=False, announce=told.append)
    return advice, out, told


def test_advise_trains_every_point_scores_it_on_held_out_cases_and_writes_its_page(
        advised: tuple[Advice, Path, list[str]]) -> None:
    advice, out, told = advised
    rows = (out / "curve.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 3 * 2 and advice.plan.holdout == 4
    assert told[0].startswith("advise: 12 runs (augment, copypaste at budgets 3, 5, 8, 2 repeats)")
    assert any(line.startswith("the first copypaste run took") for line in told)
    for repeat in range(2):
        split = read_split(out / "splits" / f"repeat{repeat}.json")
        assert len(split.test) == 4 and not set(split.test) & set(split.pool[repeat])
        trained = set()
        for budget in (3, 5, 8):
            plan = json.loads((out / "runs" / f"augment-n{budget}-r{repeat}" / "plan.json").read_text())
            used = set(plan["train_ids"]) | set(plan["val_ids"])
            assert len(used) == budget and not used & set(split.test) and trained <= used  # nested budgets
            trained = used
    saved = json.loads((out / "advice.json").read_text())
    assert saved["winner"] == advice.winner and set(saved["predictions"]) == {"augment", "copypaste"}
    page = advice.page.read_text()
    assert "Expected to win at 20 labels" in page and page.count("data:image/png;base64,") == 1
    assert page.count("<tr>") == 2 * (1 + 2)  # two tables: a head and a row per method


def test_the_advice_page_renders_in_headless_chromium(advised: tuple[Advice, Path, list[str]],
                                                      in_chromium: Callable[[Path], tuple[str, np.ndarray]]) -> None:
    advice, _, _ = advised
    dom, pixels = in_chromium(advice.page)
    assert f"Expected to win at 20 labels: {advice.winner}" in dom and dom.count("<img") == 1
    assert pixels.std() > 10  # the plot and the tables drawn, not a blank page


def test_advise_run_again_trains_nothing_and_gives_the_same_advice(
        advised: tuple[Advice, Path, list[str]], phantom20: Path, tiny_config: Callable[..., RunConfig],
        monkeypatch: pytest.MonkeyPatch) -> None:
    advice, out, _ = advised
    monkeypatch.setattr(genseg.advise, "train", lambda *args, **kwargs: pytest.fail("a finished run was retrained"))
    again = advise(tiny_config(phantom20, iterations=4), out, methods=("augment", "copypaste"), budgets=(3, 5, 8),
                   repeats=2, progress=False, announce=lambda line: None)
    assert again.predictions == advice.predictions


def test_advise_resumes_a_curve_whose_last_point_was_lost(advised: tuple[Advice, Path, list[str]], phantom20: Path,
                                                         tiny_config: Callable[..., RunConfig]) -> None:
    advice, out, _ = advised
    lines = (out / "curve.csv").read_text().splitlines()
    (out / "curve.csv").write_text("\n".join(lines[:-1]) + "\n")  # killed before its row was written
    told: list[str] = []
    again = advise(tiny_config(phantom20, iterations=4), out, methods=("augment", "copypaste"), budgets=(3, 5, 8),
                   repeats=2, progress=False, announce=told.append)
    assert "11 already done" in told[0]
    assert again.predictions == advice.predictions  # the run folder was finished: scored again, not retrained


def test_the_methods_considered_are_augment_and_the_planned_synthesis(phantom20: Path,
                                                                      tiny_config: Callable[..., RunConfig]) -> None:
    assert considered_methods(tiny_config(phantom20)) == ("augment", "separate")  # blobs in place: pix2pix


def test_advise_on_the_command_line_refuses_bad_input_in_one_line(phantom20: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["advise", "--data", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and "nowhere" in missing.output and "Traceback" not in missing.output
    too_big = runner.invoke(app, ["advise", "--data", str(phantom20), "--out", str(tmp_path / "a"),
                                  "--budgets", "3,17"])
    assert too_big.exit_code != 0 and "budgets must be between 2 and 16" in too_big.output
    assert not (tmp_path / "a").exists()  # nothing written before the error
