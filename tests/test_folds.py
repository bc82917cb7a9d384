"""Cross-validation fold sets: every budget case validates once, the ensemble is the folds' mean."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from genseg.cli import app
from genseg.config import DataConfig, RunConfig
from genseg.data import read_split
from genseg.errors import ConfigError
from genseg.evaluation import FoldEnsemble, TrainedSegmenter, evaluate, load_model, predict
from genseg.folds import train_folds
from genseg.runs import load_config, read_fold_set


@pytest.fixture(scope="module")
def fold_set(tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path_factory: pytest.TempPathFactory
             ) -> Path:
    out = tmp_path_factory.mktemp("folds") / "set"
    train_folds(tiny_config(tiny_phantom, budget=5, iterations=2), out, 2, progress=False)
    return out


def test_every_budget_case_validates_in_one_fold_and_trains_in_the_others(fold_set: Path) -> None:
    members = read_fold_set(fold_set).members()
    plans = [json.loads(m.plan.read_text()) for m in members]
    budget = read_split(fold_set / "split.json").pool[0][:5]
    assert sorted(v for plan in plans for v in plan["val_ids"]) == sorted(budget)  # each once
    for plan in plans:
        assert sorted(plan["train_ids"] + plan["val_ids"]) == sorted(budget)
    assert [load_config(m).data.n_val for m in members] == [3, 2]  # cases 0, 2, 4 and 1, 3
    assert all(read_split(m.split) == read_split(fold_set / "split.json") for m in members)  # one split


def test_the_ensemble_is_the_mean_of_the_folds_probabilities(fold_set: Path) -> None:
    ensemble = load_model(fold_set, "final")
    assert isinstance(ensemble, FoldEnsemble) and len(ensemble.members) == 2
    images = torch.rand(2, 1, 32, 32)
    mean = sum(torch.softmax(m.model(images), dim=1) for m in ensemble.members) / 2
    with torch.no_grad():
        assert torch.allclose(ensemble.probabilities(images), mean)
        assert not torch.allclose(ensemble.probabilities(images), torch.softmax(ensemble.members[0].model(images), 1))


def test_a_fold_set_is_scored_whole_and_fold_by_fold(fold_set: Path, tiny_phantom: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    passes = []
    probabilities = TrainedSegmenter.probabilities
    monkeypatch.setattr(TrainedSegmenter, "probabilities", lambda self, images: passes.append(len(images)) or
                        probabilities(self, images))
    summaries = evaluate(fold_set, checkpoints=("best", "final"), overlays=1)
    n_cases = summaries["final"]["n_cases"]
    assert sum(passes) == 2 * 2 * n_cases  # each fold sees each 2D case once per checkpoint: its scores and the mean
    for checkpoint, summary in summaries.items():
        alone = {fold: json.loads((fold_set / fold / "eval" / "test" / checkpoint / "summary.json").read_text())
                 for fold in ("fold_0", "fold_1")}
        assert summary["fold_dice_mean"] == {fold: s["dice_mean"] for fold, s in alone.items()}
        assert summary["n_cases"] == alone["fold_0"]["n_cases"] and len(summary["iteration"]) == 2
    together = (fold_set / "fold_1" / "eval" / "test" / "final" / "cases.csv").read_text()
    evaluate(fold_set / "fold_1", checkpoints=("final",))  # the fold on its own scores the same
    assert (fold_set / "fold_1" / "eval" / "test" / "final" / "cases.csv").read_text() == together
    assert (fold_set / "eval" / "test" / "final" / "cases.csv").is_file()
    assert set(json.loads((fold_set / "postprocessing.json").read_text())) == {"best", "final", "averaged"}
    written = predict(fold_set, tiny_phantom / "images", tmp_path / "masks")
    assert len(written) == 12 and json.loads((tmp_path / "masks" / "predictions.json").read_text())["run"]
    with pytest.raises(ConfigError, match="differ from fold to fold"):
        evaluate(fold_set, split="val")


def test_a_finished_fold_set_resumes_without_training_again(fold_set: Path, tiny_phantom: Path,
                                                           tiny_config: Callable[..., RunConfig]) -> None:
    before = [(m.history.read_text(), m.weights("final").read_bytes()) for m in read_fold_set(fold_set).members()]
    config = tiny_config(tiny_phantom, budget=5, iterations=2)
    train_folds(config, fold_set, 2, resume=True, progress=False)
    assert [(m.history.read_text(), m.weights("final").read_bytes())
            for m in read_fold_set(fold_set).members()] == before
    with pytest.raises(FileExistsError, match="already holds a fold set"):
        train_folds(config, fold_set, 2, progress=False)
    with pytest.raises(ConfigError, match="a fold set of 2 folds"):
        train_folds(config, fold_set, 3, resume=True, progress=False)
    with pytest.raises(ConfigError, match=r"trained with other settings: train.lr"):
        train_folds(replace(config, train=replace(config.train, lr=0.5)), fold_set, 2, resume=True, progress=False)


def test_folds_train_at_once_in_worker_processes_and_a_failed_one_is_named(
        tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path) -> None:
    config = tiny_config(tiny_phantom, budget=4, iterations=2)
    results = train_folds(config, tmp_path / "set", 2, progress=False, workers=2)
    assert [r.run_dir.name for r in results] == ["fold_0", "fold_1"]
    assert all(m.result.is_file() for m in read_fold_set(tmp_path / "set").members())
    broken = replace(config, train=replace(config.train, lr=float("inf")))  # the loss becomes infinite
    with pytest.raises(ConfigError, match=r"2 of 2 folds failed: fold_0 \(ConfigError: the training loss became"):
        train_folds(broken, tmp_path / "broken", 2, progress=False, workers=2)


def test_bad_fold_settings_are_one_line(tiny_phantom: Path, tiny_config: Callable[..., RunConfig],
                                        tmp_path: Path) -> None:
    assert [DataConfig(budget=9, folds=5, fold=k).n_val for k in range(5)] == [2, 2, 2, 2, 1]
    with pytest.raises(ConfigError, match="n_val follows from the fold"):
        DataConfig(budget=9, folds=5, fold=4, n_val=2)
    with pytest.raises(ConfigError, match="folds must be between 1 and the budget 4"):
        DataConfig(budget=4, folds=5)
    with pytest.raises(ConfigError, match="--folds must be between 2 and the budget 4"):
        train_folds(tiny_config(tiny_phantom), tmp_path / "set", 5)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a fold set"):
        train_folds(tiny_config(tiny_phantom), tmp_path / "mine", 2)
    single = replace(tiny_config(tiny_phantom), data=replace(tiny_config(tiny_phantom).data, folds=1))
    assert single.data.n_val == 1  # one run: 20 % of the budget, as before


def test_train_folds_from_the_command_line(tiny_phantom: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "set"
    args = ["--data", str(tiny_phantom), "--budget", "4", "--size", "32", "--iterations", "2", "--batch-size", "2",
            "--set", "train.val_every=2", "--folds", "2", "--out", str(out)]
    trained = runner.invoke(app, ["train", *args])
    assert trained.exit_code == 0, trained.output
    assert "fold_0: best validation loss" in trained.output and "fold_1: best validation loss" in trained.output
    evaluated = runner.invoke(app, ["evaluate", "--run", str(out), "--checkpoint", "final"])
    assert evaluated.exit_code == 0 and "final: ensemble Dice" in evaluated.output and "fold_1 0." in evaluated.output
    resumed = runner.invoke(app, ["train", "--out", str(out), "--resume", "--iterations", "4"])  # K from folds.json
    assert resumed.exit_code == 0, resumed.output
    assert [load_config(m).train.iterations for m in read_fold_set(out).members()] == [4, 4]
    report = runner.invoke(app, ["report", "--run", str(out)])
    assert report.exit_code != 0 and "a fold set, not one run" in report.output
