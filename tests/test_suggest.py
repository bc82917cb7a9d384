"""Which images to label next: disagreement, the rankings, and genseg advise --suggest on a phantom."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from genseg.cli import app
from genseg.config import RunConfig
from genseg.data import index_images, load_samples, make_phantom
from genseg.errors import ConfigError
from genseg.evaluation import load_segmenter, predict_case
from genseg.folds import train_folds
from genseg.suggest import Candidate, disagreement, rank, score_candidates, suggest


def test_disagreement_is_one_minus_the_mean_pairwise_dice() -> None:
    a = np.zeros((4, 4), dtype=np.int64)
    a[:2] = 1  # 8 pixels
    b = np.zeros_like(a)
    b[1:3] = 1  # 8 pixels, 4 shared: Dice 0.5
    assert disagreement([a, a], 2) == 0.0
    assert disagreement([a, b], 2) == pytest.approx(0.5)
    assert disagreement([a, a, b], 2) == pytest.approx(1 - (1.0 + 0.5 + 0.5) / 3)
    assert disagreement([a, 1 - a], 2) == 1.0
    assert disagreement([np.zeros_like(a)] * 2, 2) == 0.0  # both empty: they agree
    three = np.where(a == 1, 2, 0)  # class 2 where a has 1; class 1 absent from both: left out
    assert disagreement([three, np.where(b == 1, 2, 0)], 3) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="at least two masks"):
        disagreement([a], 2)


def test_rankings_put_the_most_disputed_first_and_random_is_a_seeded_permutation() -> None:
    candidates = [Candidate("c", 0.2, 0.9), Candidate("a", 0.5, 0.1), Candidate("b", 0.2, 0.5)]
    assert rank(candidates, "folds") == ["a", "b", "c"]  # ties by id
    assert rank(candidates, "tta") == ["c", "b", "a"]
    drawn = rank(candidates, "random", seed=3)
    assert sorted(drawn) == ["a", "b", "c"] and drawn == rank(candidates, "random", seed=3)
    assert {tuple(rank(candidates, "random", seed=s)) for s in range(10)} != {tuple(drawn)}
    with pytest.raises(ConfigError, match="needs a fold set"):
        rank([Candidate("a", None, 0.1)], "folds")
    with pytest.raises(ConfigError, match="strategy must be one of folds, tta, random"):
        rank(candidates, "entropy")


@pytest.fixture(scope="module")
def unlabeled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six phantom images without masks (another seed than the labeled phantom)."""
    data = make_phantom(tmp_path_factory.mktemp("unlabeled"), n_cases=6, size=32, seed=7)
    return data / "images"


@pytest.fixture(scope="module")
def fold_set(tiny_phantom: Path, tiny_config: Callable[..., RunConfig],
             tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("suggest") / "folds"
    train_folds(tiny_config(tiny_phantom, budget=4, iterations=4), out, 2, progress=False)
    return out


def test_the_fold_score_is_the_disagreement_of_the_folds_own_predictions(fold_set: Path, unlabeled: Path) -> None:
    from genseg.evaluation import load_model

    images = index_images(unlabeled)
    candidates = score_candidates(load_model(fold_set), images)
    assert [c.case_id for c in candidates] == images.ids
    members = [load_segmenter(fold_set / f"fold_{k}") for k in range(2)]
    for candidate in candidates:
        samples = load_samples(images, [candidate.case_id], require_masks=False)
        masks = [predict_case(m, samples, postprocess=False) for m in members]
        assert candidate.folds == pytest.approx(disagreement(masks, 2))
        assert 0.0 <= candidate.tta <= 1.0  # trained with flips: two views
    single = score_candidates(load_model(fold_set / "fold_0"), images)
    assert all(c.folds is None and c.tta is not None for c in single)


def test_suggest_trains_a_fold_set_on_every_label_and_ranks_every_image(
        tiny_phantom: Path, tiny_config: Callable[..., RunConfig], unlabeled: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_phantom, iterations=4)
    chosen = suggest(config, tmp_path / "advice", 2, unlabeled=unlabeled, strategy="folds", folds=3, progress=False,
                     announce=lambda line: None)
    with (tmp_path / "advice" / "suggestions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and [row["case"] for row in rows[:2]] == chosen
    scores = [float(row["folds_disagreement"]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    fold_plan = (tmp_path / "advice" / "folds" / "fold_0" / "plan.json").read_text()
    assert '"val_ids"' in fold_plan
    trained = sorted(p.name for p in (tmp_path / "advice" / "folds").glob("fold_*"))
    assert trained == ["fold_0", "fold_1", "fold_2"]


def test_suggest_at_random_needs_no_model(tiny_phantom: Path, tiny_config: Callable[..., RunConfig], unlabeled: Path,
                                          tmp_path: Path) -> None:
    chosen = suggest(tiny_config(tiny_phantom), tmp_path, 3, unlabeled=unlabeled, strategy="random",
                     announce=lambda line: None)
    assert len(chosen) == 3 and not (tmp_path / "folds").exists()


def test_suggest_on_the_command_line_finds_unlabeled_beside_the_data_and_refuses_bad_input(
        tiny_phantom: Path, unlabeled: Path, fold_set: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_phantom, data)
    runner = CliRunner()
    missing = runner.invoke(app, ["advise", "--data", str(data), "--out", str(tmp_path / "a"), "--suggest", "2"])
    assert missing.exit_code != 0 and "unlabeled" in missing.output and "Traceback" not in missing.output
    zero = runner.invoke(app, ["advise", "--data", str(data), "--suggest", "0", "--run", str(fold_set)])
    assert zero.exit_code != 0 and "at least 1" in zero.output
    shutil.copytree(unlabeled, data / "unlabeled")
    ranked = runner.invoke(app, ["advise", "--data", str(data), "--out", str(tmp_path / "b"), "--suggest", "2",
                                 "--run", str(fold_set), "--strategy", "tta"])
    assert ranked.exit_code == 0, ranked.output
    assert "label next (tta): " in ranked.output and (tmp_path / "b" / "suggestions.csv").is_file()
