"""The shared training loop: run folder, determinism, checkpoint choice, budget, resume."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from genseg.checkpoint import load_checkpoint
from genseg.checkpoint_policy import BATCH_NORM_BATCHES, improves
from genseg.config import RunConfig, SegmenterConfig
from genseg.data import DataError, make_volume_phantom, read_split
from genseg.errors import ConfigError
from genseg.evaluation import evaluate, load_segmenter
from genseg.methods import Method
from genseg.runs import RunPaths, load_config
from genseg.training import TrainingHooks, train, validation_dips

PNG_HEADER_BYTES = 41  # signature and IHDR: the image's size, none of its pixels
EASY_CASE_DICE = 0.85  # bright discs, 40 iterations: 0.96 measured (0.90-0.98 over seeds 0-2)


def _history(run: Path) -> list[dict[str, float]]:
    with (run / "history.csv").open() as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def _assert_same_weights(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Equal state dicts: tensors bit for bit, other entries (a cell's kept candidates) by value."""
    assert a.keys() == b.keys()
    for key in a:
        same = torch.equal(a[key], b[key]) if isinstance(a[key], torch.Tensor) else a[key] == b[key]
        assert same, key


@pytest.fixture(scope="module")
def config(tiny_phantom: Path, tiny_config: Callable[..., RunConfig]) -> RunConfig:
    return tiny_config(tiny_phantom, "augment")


@pytest.fixture(scope="module")
def run(config: RunConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("training") / "augment"
    train(config, out, progress=False)
    return out


def test_run_folder_holds_every_file(run: Path, config: RunConfig) -> None:
    for name in ("config.json", "split.json", "train.log", "history.csv", "best.pt", "final.pt", "last.pt",
                 "postprocessing.json"):
        assert (run / name).is_file(), name
    as_planned = replace(config, data=replace(config.data, dims=2, axis=0))  # what the tiny config leaves
    assert config.data.dims is None and RunConfig.from_dict(json.loads((run / "config.json").read_text())) == as_planned
    assert [row["iteration"] for row in _history(run)] == [2, 4, 6]
    assert load_checkpoint(run / "last.pt")["iteration"] == load_checkpoint(run / "final.pt")["iteration"] == 6
    assert str(run) in (run / "train.log").read_text()


def test_same_seed_gives_identical_weights_and_another_seed_differs(
    run: Path, config: RunConfig, tmp_path: Path
) -> None:
    train(config, tmp_path / "again", progress=False)
    _assert_same_weights(load_checkpoint(tmp_path / "again" / "final.pt")["segmenter"],
                         load_checkpoint(run / "final.pt")["segmenter"])

    other = RunConfig.from_dict({**config.to_dict(), "train": {**config.to_dict()["train"], "seed": 1}})
    train(other, tmp_path / "seed1", progress=False)
    seed0 = load_checkpoint(run / "final.pt")["segmenter"]
    seed1 = load_checkpoint(tmp_path / "seed1" / "final.pt")["segmenter"]
    assert any(not torch.equal(seed0[key], seed1[key]) for key in seed0)


def test_best_checkpoint_is_the_lowest_validation_loss(run: Path) -> None:
    history = _history(run)
    lowest = min(history, key=lambda row: row["val_loss"])
    best = load_checkpoint(run / "best.pt")
    assert best["iteration"] == lowest["iteration"]
    assert best["val_loss"] == lowest["val_loss"] and best["val_dice"] == lowest["val_dice"]


def test_best_checkpoint_holds_the_weights_of_its_iteration(config: RunConfig, tmp_path: Path) -> None:
    """With a scripted validation curve whose minimum is in the middle, best.pt is that iteration's model."""
    losses: Iterator[float] = iter([1.0, 0.5, 0.8, 0.6])  # the last: the averaged weights
    weights_after: dict[int, dict[str, torch.Tensor]] = {}

    def record_weights(done: int, method: Method) -> None:
        weights_after[done] = {k: v.clone() for k, v in method.context.stepper.segmenter.state_dict().items()}

    hooks = TrainingHooks(after_iteration=record_weights,
                          score=lambda model, validation: {"val_loss": next(losses), "val_dice": 0.0})
    result = train(config, tmp_path / "run", progress=False, hooks=hooks)

    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert result.best_iteration == best["iteration"] == 4 and best["val_loss"] == 0.5
    _assert_same_weights(best["segmenter"], weights_after[4])
    _assert_same_weights(load_checkpoint(tmp_path / "run" / "final.pt")["segmenter"], weights_after[6])


def test_the_averaged_checkpoint_is_the_mean_of_the_last_weights_with_batch_norm_measured_anew(
    config: RunConfig, tmp_path: Path
) -> None:
    config = replace(config, train=replace(config.train, average_last=0.5))  # iterations 4, 5 and 6 of 6
    weights_after: dict[int, dict[str, torch.Tensor]] = {}

    def record_weights(done: int, method: Method) -> None:
        weights_after[done] = {k: v.clone() for k, v in method.context.stepper.segmenter.named_parameters()}

    train(config, tmp_path / "run", progress=False, hooks=TrainingHooks(after_iteration=record_weights))

    averaged, final = (load_checkpoint(tmp_path / "run" / f"{name}.pt") for name in ("averaged", "final"))
    for name in weights_after[6]:
        mean = torch.stack([weights_after[done][name] for done in (4, 5, 6)]).mean(0)
        torch.testing.assert_close(averaged["segmenter"][name], mean, rtol=1e-5, atol=1e-6)
    tracked = [key for key in averaged["segmenter"] if key.endswith("num_batches_tracked")]
    assert tracked and all(int(averaged["segmenter"][key]) == BATCH_NORM_BATCHES for key in tracked)
    statistics = [key for key in averaged["segmenter"] if key.endswith("running_mean")]
    assert any(not torch.equal(averaged["segmenter"][key], final["segmenter"][key]) for key in statistics)
    assert averaged["iteration"] == 6 and "val_dice" in averaged
    assert set(evaluate(tmp_path / "run", split="test", overlays=0)) == {"best", "final", "averaged"}


def test_a_run_without_averaging_has_no_averaged_checkpoint_and_predicts_with_the_best(
        config: RunConfig, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(replace(config, train=replace(config.train, average_last=0.0)), run, progress=False)
    assert RunPaths(run).saved_checkpoints() == ("best", "final")
    assert RunPaths(run).preferred_checkpoint() == "best"
    with pytest.raises(FileNotFoundError, match="train.average_last=0"):
        evaluate(run, split="test", checkpoints=("averaged",), overlays=0)


def test_a_run_predicts_with_its_averaged_weights_by_default(run: Path) -> None:
    assert RunPaths(run).saved_checkpoints() == ("best", "final", "averaged")
    default = load_segmenter(run).model.state_dict()
    _assert_same_weights(default, load_checkpoint(run / "averaged.pt")["segmenter"])
    assert not all(torch.equal(default[k], v) for k, v in load_checkpoint(run / "final.pt")["segmenter"].items())
    assert RunPaths(run).preferred_checkpoint() == "averaged"


def test_only_the_budget_cases_are_read(run: Path, config: RunConfig, tmp_path: Path) -> None:
    """Every file outside the budget keeps its header (sizes are checked) but loses its pixels: training
    still succeeds, so none of them was read."""
    split = read_split(run / "split.json")
    budget = split.pool[config.train.seed][: config.data.budget]
    data = tmp_path / "data"
    shutil.copytree(config.data.root, data)
    for path in sorted(data.rglob("*.png")):
        if path.stem not in budget:
            path.write_bytes(path.read_bytes()[:PNG_HEADER_BYTES])
    config = replace(config, data=replace(config.data, root=data, split_file=run / "split.json"))
    train(config, tmp_path / "run", progress=False)

    best = load_checkpoint(tmp_path / "run" / "best.pt")
    used = best["train_ids"] + best["val_ids"]
    assert len(used) == len(set(used)) == config.data.budget
    assert len(best["val_ids"]) == config.data.n_val
    assert not set(used) & set(split.test)
    assert used == budget


def test_resume_after_a_kill_reproduces_the_uninterrupted_run(
    run: Path, config: RunConfig, tmp_path: Path, kill_run: Callable[[RunConfig, Path, int], None]
) -> None:
    out = tmp_path / "killed"
    kill_run(config, out, 4)  # killed during step 5, after the checkpoint of iteration 4
    assert load_checkpoint(out / "last.pt")["iteration"] == 4
    assert not (out / "final.pt").exists()

    result = train(config, out, resume=True, progress=False)

    _assert_same_weights(load_checkpoint(out / "final.pt")["segmenter"], load_checkpoint(run / "final.pt")["segmenter"])
    assert _history(out) == _history(run)
    assert result.best_iteration == load_checkpoint(run / "best.pt")["iteration"]
    assert "resumed" in (out / "train.log").read_text()


def test_resume_continues_the_average_of_the_weights_bit_for_bit(
    config: RunConfig, tmp_path: Path, kill_run: Callable[[RunConfig, Path, int], None]
) -> None:
    config = replace(config, train=replace(config.train, average_last=0.5))
    whole = train(config, tmp_path / "whole", progress=False).run_dir
    kill_run(config, tmp_path / "killed", 5)  # inside the averaged stretch, after the checkpoint of iteration 4
    train(config, tmp_path / "killed", resume=True, progress=False)
    _assert_same_weights(load_checkpoint(tmp_path / "killed" / "averaged.pt")["segmenter"],
                         load_checkpoint(whole / "averaged.pt")["segmenter"])


def test_existing_run_is_not_overwritten_without_resume(run: Path, config: RunConfig) -> None:
    before = {name: (run / name).read_bytes() for name in ("config.json", "last.pt")}
    with pytest.raises(FileExistsError, match="resume"):
        train(config, run, progress=False)
    assert {name: (run / name).read_bytes() for name in before} == before


def test_resume_restores_the_schedule_and_the_epoch_sampler(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path,
    kill_run: Callable[[RunConfig, Path, int], None],
) -> None:
    config = tiny_config(tiny_phantom, "augment")
    config.train = replace(config.train, optimizer="sgd", lr=0.01, schedule="poly", warmup=2, sampling="epochs",
                           augmentation="nnunet")
    whole = train(config, tmp_path / "whole", progress=False).run_dir
    kill_run(config, tmp_path / "killed", 3)  # the sampler is mid-permutation (3 pairs, batches of 2)
    train(config, tmp_path / "killed", resume=True, progress=False)
    _assert_same_weights(load_checkpoint(tmp_path / "killed" / "final.pt")["segmenter"],
                         load_checkpoint(whole / "final.pt")["segmenter"])
    assert _history(tmp_path / "killed") == _history(whole)


def test_a_planned_size_is_saved_with_its_plan(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    config = tiny_config(tiny_phantom, "augment", iterations=2)
    config.data = replace(config.data, size=None)
    train(config, tmp_path / "planned", progress=False)
    plan = json.loads((tmp_path / "planned" / "plan.json").read_text())
    saved = json.loads((tmp_path / "planned" / "config.json").read_text())
    assert plan["size"] == saved["data"]["size"] == 32  # the phantom's own side caps the plan
    assert load_checkpoint(tmp_path / "planned" / "final.pt")["config"]["data"]["size"] == 32


def _lesion_folder(root: Path, cases: int = 8) -> Path:
    """Photos with one small wound each (1 % of the image), wherever it falls."""
    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    for case in range(cases):
        mask = np.zeros((64, 64), dtype=np.uint8)
        row, col = rng.integers(8, 52, 2)
        mask[row:row + 6, col:col + 6] = 255
        image = (rng.random((64, 64, 3)) * 200).astype(np.uint8)
        image[mask > 0] = (200, 30, 30)
        Image.fromarray(image).save(root / "images" / f"case{case}.png")
        Image.fromarray(mask).save(root / "masks" / f"case{case}.png")
    return root


@pytest.mark.parametrize(("data", "kind", "expected"), [
    ("lesions", "auto", "composite"), ("phantom", "auto", "pix2pix"), ("lesions", "pix2pix", "pix2pix")])
def test_the_plan_picks_the_generator_kind_unless_one_is_named(
    data: str, kind: str, expected: str, tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _lesion_folder(tmp_path / "lesions") if data == "lesions" else tiny_phantom
    config = tiny_config(root, "separate", iterations=2, generator={"name": kind}, data={"size": None})
    train(config, tmp_path / "run", progress=False)
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    saved = RunConfig.from_dict(json.loads((tmp_path / "run" / "config.json").read_text()))
    assert plan["data_set"]["synthesis"] == ("composite" if data == "lesions" else "pix2pix")  # what the masks call for
    assert saved.generator.name == plan["generator"] == expected  # the plan's choice, or the one named
    assert ("generator.name" in plan["decided"]) == (kind == "auto") and "data.size" in plan["decided"]
    assert saved.data.size == plan["size"] and len(plan["train_ids"]) == saved.data.n_train
    assert saved.generator.pretrain_iterations == 3  # the generic settings stay

    def never(*args: object) -> None:
        raise AssertionError("a resumed run was planned again")

    monkeypatch.setattr("genseg.run_data.plan_run", never)
    extended = replace(config, train=replace(config.train, iterations=3))
    resumed = train(extended, tmp_path / "run", resume=True, progress=False)  # the kind and size it planned
    assert resumed.run_dir == tmp_path / "run"
    assert load_config(RunPaths(tmp_path / "run")).generator.name == expected


def test_a_pretrained_generator_is_reused_only_for_the_same_settings(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    train(tiny_config(tiny_phantom, "separate", iterations=2), tmp_path / "separate", progress=False)
    reused = tiny_config(tiny_phantom, "genseg", iterations=2, options={"upper": "none"})
    train(reused, tmp_path / "genseg", progress=False, pretrained_generator=tmp_path / "separate")
    assert (tmp_path / "genseg" / "pretrain.pt").read_bytes() == (tmp_path / "separate" / "pretrain.pt").read_bytes()
    with pytest.raises(DataError, match="other data, budget, seed"):
        train(tiny_config(tiny_phantom, "genseg", seed=1), tmp_path / "other", progress=False,
              pretrained_generator=tmp_path / "separate" / "pretrain.pt")


def test_tensorboard_logs_every_validation_row(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_config(tiny_phantom, "augment", iterations=4), tmp_path / "run", progress=False, tensorboard=True)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert {"train_loss", "val_loss", "val_dice"} <= set(events.Tags()["scalars"])
    assert [event.step for event in events.Scalars("val_dice")] == [2, 4]
    assert [event.value for event in events.Scalars("val_dice")] == pytest.approx(
        [row["val_dice"] for row in _history(tmp_path / "run")])


def test_best_checkpoint_by_dice_never_prefers_an_empty_model_for_its_lower_loss() -> None:
    empty = {"val_loss": 0.20, "val_dice": 0.0}  # small structures: predicting nothing has a low loss
    found = {"val_loss": 0.35, "val_dice": 0.40}
    first = {"val_loss": float("inf"), "val_dice": -1.0}
    assert improves(empty, first, "dice") and improves(found, empty, "dice")
    assert not improves(empty, found, "dice")
    assert improves(empty, found, "loss") and not improves(found, empty, "loss")
    assert improves({"val_loss": 0.30, "val_dice": 0.40}, found, "dice")  # a tie in Dice goes to the lower loss


def test_validation_dips_are_deep_drops_below_the_median_after_the_first_third() -> None:
    iterations = list(range(50, 2050, 50))  # 40 validations, 27 of them after iteration 666
    dice = [0.95] * 40
    dice[3] = 0.5  # in the first third: not counted
    dice[20] = 0.91  # 4 points below the median: not a dip
    dice[-1] = 0.77  # the last validation, 18 points below
    assert validation_dips(iterations, dice) == ([2000], 27)
    assert validation_dips([], []) == ([], 0)


@pytest.mark.parametrize("last_dice, warned", [(0.70, True), (0.93, False)])
def test_a_final_checkpoint_in_a_loss_spike_is_named_in_a_warning(
        config: RunConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture, last_dice: float, warned: bool) -> None:
    validations = iter([0.90, 0.95, last_dice, 0.95])  # 6 iterations, validated every 2; then the averaged weights

    def scripted(segmenter: torch.nn.Module, validation: object) -> dict[str, float]:
        return {"val_loss": 0.1, "val_dice": next(validations)}

    with caplog.at_level("WARNING", logger="genseg.training"):
        train(config, tmp_path / "run", progress=False, hooks=TrainingHooks(score=scripted))
    assert ("do not use final.pt" in caplog.text) == warned


def _bright_discs(root: Path, n_cases: int = 12, size: int = 32) -> Path:
    """An easy task in the folders layout: one bright disc on a dark, mildly noisy background per image."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:size, 0:size]
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    for case in range(n_cases):
        (row, col), radius = rng.uniform(8, size - 8, size=2), rng.uniform(4, 8)
        disc = (rows - row) ** 2 + (cols - col) ** 2 <= radius**2
        image = np.clip(0.25 + 0.5 * disc + rng.normal(0.0, 0.05, (size, size)), 0.0, 1.0)
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(root / "images" / f"case_{case:03d}.png")
        Image.fromarray(disc.astype(np.uint8) * 255).save(root / "masks" / f"case_{case:03d}.png")
    return root


def test_a_known_easy_case_reaches_a_stated_test_dice(tiny_config: Callable[..., RunConfig], tmp_path: Path) -> None:
    """If this fails, something between the data and the metric is broken, not merely untuned."""
    config = tiny_config(_bright_discs(tmp_path / "discs"), "augment", iterations=40)
    config = replace(config, segmenter=SegmenterConfig(options={"base": 8}),
                     train=replace(config.train, lr=3e-3, batch_size=4, val_every=20, checkpoint_every=40))
    train(config, tmp_path / "run", progress=False)
    summary = evaluate(tmp_path / "run", split="test", checkpoints=("best",), overlays=0)["best"]
    assert summary["n_cases"] == 4 and summary["dice_mean"] > EASY_CASE_DICE


def test_a_loss_that_becomes_infinite_stops_the_run(tiny_phantom: Path, tiny_config: Callable[..., RunConfig],
                                                      tmp_path: Path) -> None:
    """--lr inf exited 0, and predict then wrote all-zero masks."""
    config = tiny_config(tiny_phantom, "augment")
    config = replace(config, train=replace(config.train, lr=float("inf")))
    with pytest.raises(ValueError, match=r"the training loss became nan at iteration \d; the run stopped"):
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "final.pt").exists()


def test_masks_that_are_background_everywhere_are_refused_before_training(
    tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    data = tmp_path / "empty"
    for folder in ("images", "masks"):
        (data / folder).mkdir(parents=True)
    for case in range(6):
        Image.fromarray(np.full((32, 32), 40 * case, np.uint8)).save(data / "images" / f"c{case}.png")
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(data / "masks" / f"c{case}.png")
    with pytest.raises(DataError, match="background only: there is nothing to learn"):
        train(tiny_config(data, "augment"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_folder_of_other_files_is_not_trained_into(tiny_phantom: Path, tiny_config: Callable[..., RunConfig],
                                                     tmp_path: Path) -> None:
    """--out at a folder that was not a run overwrote its config.json, best.pt, history.csv."""
    folder = tmp_path / "my-notes"
    folder.mkdir()
    (folder / "history.csv").write_text("mine\n")
    with pytest.raises(FileExistsError, match="holds files but is not a genseg run folder"):
        train(tiny_config(tiny_phantom, "augment"), folder, progress=False)
    assert sorted(path.name for path in folder.iterdir()) == ["history.csv"]
    assert (folder / "history.csv").read_text() == "mine\n"


def test_a_second_training_into_the_same_folder_stops_with_one_line(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    from genseg.locks import owned
    from genseg.training import LOCK

    with owned(tmp_path / "run", LOCK, "held"):  # what a first training holds while it runs
        with pytest.raises(ValueError, match="being trained by another process"):
            train(tiny_config(tiny_phantom, "augment"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "config.json").exists()


def test_an_unfinished_run_is_not_evaluated_or_used_to_predict(
    config: RunConfig, tmp_path: Path, tiny_phantom: Path, kill_run: Callable[[RunConfig, Path, int], None]
) -> None:
    """A run killed at iteration 4 of 6 was evaluated and predicted with as if it had finished."""
    kill_run(config, tmp_path / "killed", 4)
    assert (tmp_path / "killed" / "best.pt").is_file()
    with pytest.raises(DataError, match="has not finished .* genseg train --resume"):
        evaluate(tmp_path / "killed")
    with pytest.raises(DataError, match="has not finished"):
        load_segmenter(tmp_path / "killed")
    train(config, tmp_path / "killed", resume=True, progress=False)
    assert evaluate(tmp_path / "killed", checkpoints=("final",), overlays=0)["final"]["n_cases"] > 0


def test_gray_and_colour_images_mixed_across_the_split_stop_before_training(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    """A colour image among gray ones, anywhere in the split, gave a traceback at the first validation or
    at evaluate."""
    data = tmp_path / "mixed"
    shutil.copytree(tiny_phantom, data)
    with Image.open(data / "images" / "case_011.png") as image:
        image.convert("RGBA").save(data / "images" / "case_011.png")
    with pytest.raises(DataError, match="case_011.png: a colour image among gray ones"):
        train(tiny_config(data, "augment"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_failed_start_draws_a_new_split_once_the_data_are_fixed(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    """The split of a run that failed at the start was reused: cases added later were silently left out."""
    data = tmp_path / "data"
    shutil.copytree(tiny_phantom, data)
    bad_mask = data / "masks" / "case_011.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(bad_mask)  # stops the start, after split.json
    with pytest.raises(DataError, match="size mismatch"):
        train(tiny_config(data, "augment", iterations=2), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "split.json").is_file()
    shutil.copy(tiny_phantom / "masks" / "case_011.png", data / "masks" / "case_011.png")
    for folder in ("images", "masks"):  # and a case added
        shutil.copy(tiny_phantom / folder / "case_000.png", data / folder / "case_new.png")

    train(tiny_config(data, "augment", iterations=2), tmp_path / "run", progress=False)

    split = read_split(tmp_path / "run" / "split.json")
    assert "case_new" in split.test + split.pool[0]
    assert "drawing a new one" in (tmp_path / "run" / "train.log").read_text()


def test_a_trained_run_whose_data_changed_is_not_resumed(run: Path, config: RunConfig, tmp_path: Path) -> None:
    data, copy = tmp_path / "data", tmp_path / "run"
    shutil.copytree(config.data.root, data)
    shutil.copytree(run, copy)
    (data / "images" / "case_003.png").unlink()
    (data / "masks" / "case_003.png").unlink()
    moved = replace(config, data=replace(config.data, root=data), train=replace(config.train, iterations=8))
    saved = json.loads((copy / "config.json").read_text())
    saved["data"]["root"] = str(data)
    (copy / "config.json").write_text(json.dumps(saved))
    with pytest.raises(DataError, match=r"data folder changed since this run drew its split: 1 removed \(e\.g\. "
                                        r"case_003\).*start a new run"):
        train(moved, copy, resume=True, progress=False)


def test_an_unexpected_error_leaves_its_traceback_in_the_run_log(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a broken kernel")

    monkeypatch.setattr("genseg.training.create_method", broken)
    with pytest.raises(RuntimeError, match="a broken kernel"):
        train(tiny_config(tiny_phantom, "augment", iterations=2), tmp_path / "run", progress=False)
    log = (tmp_path / "run" / "train.log").read_text()
    assert "unexpected error, a bug in genseg" in log and "Traceback" in log and "a broken kernel" in log


# --- 3D: whole volumes ---


@pytest.fixture(scope="module")
def volumes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_volume_phantom(tmp_path_factory.mktemp("volumes") / "Task04_Tiny", n_cases=5)


def test_a_3d_run_plans_its_patch_and_resumes_bit_for_bit(
    volumes: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path,
    kill_run: Callable[[RunConfig, Path, int], None],
) -> None:
    config = tiny_config(volumes, "augment", budget=3, data={"dims": 3})
    whole = train(config, tmp_path / "whole", progress=False).run_dir
    assert load_config(RunPaths(whole)).data.patch == (32, 32, 32)  # the 12 x 16 x 20 volumes, padded
    assert json.loads((whole / "plan.json").read_text())["dims"] == 3
    kill_run(config, tmp_path / "killed", 3)
    train(config, tmp_path / "killed", resume=True, progress=False)
    for name in ("final.pt", "best.pt"):
        _assert_same_weights(load_checkpoint(tmp_path / "killed" / name)["segmenter"],
                             load_checkpoint(whole / name)["segmenter"])
    assert load_checkpoint(whole / "final.pt")["segmenter"]["conv_0.conv_0.conv.weight"].ndim == 5


@pytest.mark.parametrize("method", ["separate", "genseg", "semisup"])
def test_a_3d_run_of_a_generative_or_semisupervised_method_resumes_bit_for_bit(
    method: str, volumes: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path,
    kill_run: Callable[[RunConfig, Path, int], None],
) -> None:
    config = tiny_config(volumes, method, budget=2, data={"dims": 3})  # semisup: 1 unlabeled pool volume
    whole = train(config, tmp_path / "whole", progress=False).run_dir
    kill_run(config, tmp_path / "killed", 3)
    train(config, tmp_path / "killed", resume=True, progress=False)
    final, resumed = load_checkpoint(whole / "final.pt"), load_checkpoint(tmp_path / "killed" / "final.pt")
    _assert_same_weights(resumed["segmenter"], final["segmenter"])
    if method != "semisup":
        _assert_same_weights(resumed["generator"], final["generator"])
        assert final["generator"]["down.0.conv.ops.conv4x4.weight"].ndim == 5  # a 3D pix2pix
        assert json.loads((whole / "plan.json").read_text())["generator"] == "pix2pix"


@pytest.mark.parametrize(("method", "data", "message"), [
    ("copypaste", "volumes", r"method 'copypaste' does not train on whole volumes yet \(.*semisup.*\)"),
    ("augment", "pictures", r"holds 2D images; use --dims 2"),
])
def test_3d_refuses_what_it_cannot_train_before_writing_anything(
    method: str, data: str, message: str, volumes: Path, tiny_phantom: Path, tiny_config: Callable[..., RunConfig],
    tmp_path: Path,
) -> None:
    root = volumes if data == "volumes" else tiny_phantom
    with pytest.raises(ConfigError, match=message):
        train(tiny_config(root, method, budget=3, data={"dims": 3}), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "config.json").exists()


def test_a_3d_run_on_volumes_larger_than_its_patch_crops_patches_and_resumes_bit_for_bit(
    tmp_path_factory: pytest.TempPathFactory, tiny_config: Callable[..., RunConfig], tmp_path: Path,
    kill_run: Callable[[RunConfig, Path, int], None],
) -> None:
    long_volumes = make_volume_phantom(tmp_path_factory.mktemp("long") / "Task04_Long", n_cases=5, shape=(12, 16, 40))
    config = tiny_config(long_volumes, "augment", budget=3, data={"dims": 3, "patch": [32, 32, 32]})
    whole = train(config, tmp_path / "whole", progress=False).run_dir
    kill_run(config, tmp_path / "killed", 3)
    train(config, tmp_path / "killed", resume=True, progress=False)
    _assert_same_weights(load_checkpoint(tmp_path / "killed" / "final.pt")["segmenter"],
                         load_checkpoint(whole / "final.pt")["segmenter"])
    summary = evaluate(whole, split="test", checkpoints=("final",))["final"]
    assert summary["n_cases"] == 2 and 0.0 <= summary["dice_mean"] <= 1.0
