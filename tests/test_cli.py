"""The ``genseg`` command: help, one-line user errors, and train -> evaluate -> predict."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from genseg.checkpoint import load_checkpoint
from genseg.cli import app

runner = CliRunner()


def _single_error_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("error: ") and "Traceback" not in output
    return lines[0]


COMMANDS = sorted(typer.main.get_command(app).commands)


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)], ids=["genseg", *COMMANDS])
def test_help_works_for_every_command(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_help_shows_the_defaults_of_word_options() -> None:
    """A default in square brackets such as [augment] is text, not a rich style tag to drop."""
    output = " ".join(runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "semisup [augment]" in output and "[unet]" in output and "cuda:N [auto]" in output


def test_image_without_mask_is_one_line_naming_the_file(tiny_phantom: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_phantom, data)
    (data / "masks" / "case_003.png").unlink()

    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "run")])

    assert result.exit_code == 2
    line = _single_error_line(result.output)
    assert str(data / "images" / "case_003.png") in line and "mask" in line


def test_a_size_mismatch_anywhere_in_the_split_stops_training_at_the_start(tiny_phantom: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_phantom, data)
    split = json.loads(runner.invoke(app, ["split", "--data", str(data), "--out", str(tmp_path / "s.json")]).output
                       and (tmp_path / "s.json").read_text())
    outside = split["test"][0]  # never in the budget
    with Image.open(data / "masks" / f"{outside}.png") as mask:
        mask.resize((20, 20)).save(data / "masks" / f"{outside}.png")

    result = runner.invoke(app, ["train", "--data", str(data), "--split", str(tmp_path / "s.json"), "--out",
                                 str(tmp_path / "run"), "--size", "32", "--budget", "3", "--iterations", "1"])

    assert result.exit_code == 2
    line = _single_error_line(result.output)
    assert "size mismatch" in line and f"{outside}.png" in line and "20x20" in line
    assert not (tmp_path / "run" / "last.pt").exists()


def test_budget_larger_than_the_pool_names_both_numbers(tiny_phantom: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--data", str(tiny_phantom), "--out", str(tmp_path / "run"),
                                 "--size", "32", "--budget", "20"])

    assert result.exit_code == 2
    line = _single_error_line(result.output)
    assert "budget of 20 labeled cases" in line and "--budget 12 or fewer" in line  # the folder holds 12


def test_a_budget_of_every_labeled_case_trains_without_a_test_set(tiny_phantom: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    trained = runner.invoke(app, ["train", "--data", str(tiny_phantom), "--out", str(run), "--size", "32",
                                  "--iterations", "2", "--budget", "12", "--batch-size", "2"])
    assert trained.exit_code == 0, trained.output
    assert json.loads((run / "split.json").read_text())["test"] == []
    evaluated = runner.invoke(app, ["evaluate", "--run", str(run)])
    assert evaluated.exit_code == 2
    line = _single_error_line(evaluated.output)
    assert "no test cases" in line and "genseg split" in line


def test_plan_without_a_split_plans_the_split_train_would_make(tiny_phantom: Path, tmp_path: Path) -> None:
    planned = runner.invoke(app, ["plan", "--data", str(tiny_phantom), "--budget", "4"])
    assert planned.exit_code == 0, planned.output
    run = tmp_path / "run"
    trained = runner.invoke(app, ["train", "--data", str(tiny_phantom), "--out", str(run), "--budget", "4",
                                  "--iterations", "1", "--threads", "1"])
    assert trained.exit_code == 0, trained.output
    plan = json.loads((run / "plan.json").read_text())
    lines = planned.output.splitlines()
    assert lines[0] == f"data: {tiny_phantom}: folders layout, 12 labeled images"
    assert lines[1].startswith(f"run: {len(plan['train_ids'])} train + {len(plan['val_ids'])} val cases")
    assert lines[2].startswith(f"plan: {plan['size']} px")
    assert planned.output.strip().endswith("labels 0, 1 (2 classes)")


def test_plan_and_train_leave_dims_and_batch_to_the_plan_by_default(tmp_path: Path) -> None:
    from genseg.data import make_volume_phantom

    volumes = make_volume_phantom(tmp_path / "Task04_Tiny", n_cases=5)
    planned = runner.invoke(app, ["plan", "--data", str(volumes), "--budget", "3"])
    assert planned.exit_code == 0, planned.output
    assert ("3D, volumes padded to 32x32x32 voxels of 1 x 1 x 1 mm (voxel spacing anisotropy 1.0, at most 3), "
            "batch 2" in planned.output)
    assert "data.dims" in planned.output and "train.batch_size" in planned.output
    sliced = runner.invoke(app, ["plan", "--data", str(volumes), "--budget", "3", "--dims", "2"])
    assert sliced.exit_code == 0 and "px" in sliced.output and "batch 4" in sliced.output, sliced.output
    run = tmp_path / "run"
    trained = runner.invoke(app, ["train", "--data", str(volumes), "--budget", "3", "--out", str(run),
                                  "--iterations", "1", "--threads", "1", "--set", "segmenter.options={\"base\": 4}"])
    assert trained.exit_code == 0, trained.output
    saved = json.loads((run / "config.json").read_text())
    assert (saved["data"]["dims"], saved["train"]["batch_size"]) == (3, 2)
    extent = json.loads((run / "plan.json").read_text())["volume_extent"]
    assert len(extent) == 3 and max(extent) <= 32  # every volume fits the patch whole
    assert json.loads((run / "plan.json").read_text())["dims"] == 3
    refused = runner.invoke(app, ["train", "--data", str(volumes), "--out", str(tmp_path / "run"), "--dims", "4"])
    assert refused.exit_code == 2 and "--dims must be 2, 3 or auto" in _single_error_line(refused.output)


@pytest.mark.parametrize("error", [ValueError("an internal check"), RuntimeError("a broken kernel")])
def test_an_unexpected_error_is_reported_as_a_bug_with_its_traceback_in_a_file(
    error: Exception, tiny_phantom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only DataError and ConfigError (and missing or existing files) are the user's: a plain
    ValueError from deep inside is a bug, and is not dressed up as bad input."""

    def broken(*args: object) -> None:
        raise error

    monkeypatch.setattr("genseg.run_data.plan_run", broken)
    result = runner.invoke(app, ["plan", "--data", str(tiny_phantom), "--budget", "4"])
    assert result.exit_code == 1
    first, second = result.output.strip().splitlines()[:2]
    assert first == f"error: {type(error).__name__}: {error}" and "it is a bug" in second
    traceback_file = Path(second.split("traceback is in ")[1].split(";")[0])
    assert "Traceback" in traceback_file.read_text() and "broken" in traceback_file.read_text()
    traceback_file.unlink()


def test_version_and_fast_path_errors(tmp_path: Path) -> None:
    assert runner.invoke(app, ["--version"]).output.startswith("genseg ")
    line = _single_error_line(runner.invoke(app, ["train", "--data", str(tmp_path / "missing")]).output)
    assert str(tmp_path / "missing") in line and "not found" in line


def test_config_file_with_overrides_and_resume_that_extends(tiny_phantom: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    args = ["--size", "32", "--iterations", "2", "--set", "train.val_every=2", "--budget", "4", "--batch-size", "2"]
    assert runner.invoke(app, ["train", "--data", str(tiny_phantom), "--out", str(first), *args]).exit_code == 0
    # A run's config.json is a config file; given options override it.
    second = tmp_path / "second"
    result = runner.invoke(app, ["train", "--config", str(first / "config.json"), "--out", str(second),
                                 "--seed", "1"])
    assert result.exit_code == 0, result.output
    saved, copied = (json.loads((run / "config.json").read_text()) for run in (first, second))
    assert copied["train"]["seed"] == 1 and {**copied["train"], "seed": 0} == saved["train"]
    # --resume with more iterations extends a finished run; fewer, or another setting, is refused.
    extended = runner.invoke(app, ["train", "--out", str(first), "--resume", "--iterations", "4"])
    assert extended.exit_code == 0, extended.output
    assert load_checkpoint(first / "final.pt")["iteration"] == 4
    assert json.loads((first / "config.json").read_text())["train"]["iterations"] == 4
    shorter = runner.invoke(app, ["train", "--out", str(first), "--resume", "--iterations", "3"])
    assert "can only extend" in _single_error_line(shorter.output)
    other = runner.invoke(app, ["train", "--out", str(first), "--resume", "--lr", "0.5"])
    assert "train.lr" in _single_error_line(other.output)


def test_train_evaluate_predict(tiny_phantom: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    trained = runner.invoke(app, ["train", "--data", str(tiny_phantom), "--out", str(run), "--size", "32",
                                  "--iterations", "4", "--set", "train.val_every=2", "--budget", "4",
                                  "--batch-size", "2"])
    assert trained.exit_code == 0, trained.output
    assert (run / "best.pt").is_file() and (run / "final.pt").is_file() and (run / "averaged.pt").is_file()

    evaluated = runner.invoke(app, ["evaluate", "--run", str(run), "--checkpoint", "final"])
    assert evaluated.exit_code == 0, evaluated.output
    dice = re.search(r"final: test Dice (\d\.\d{4})", evaluated.output)
    summary = json.loads((run / "eval" / "test" / "final" / "summary.json").read_text())
    assert dice is not None and dice.group(1) == f"{summary['dice_mean']:.4f}"  # what is printed is what is saved

    predicted = runner.invoke(app, ["predict", "--run", str(run), "--input", str(tiny_phantom / "images"),
                                    "--out", str(tmp_path / "masks")])
    assert predicted.exit_code == 0, predicted.output
    assert "wrote 12 masks" in predicted.output
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == sorted(
        [p.name for p in (tiny_phantom / "images").iterdir()] + ["predictions.json"])


def test_generator_and_synthetic_settings_reach_the_config(tiny_phantom: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["--size", "32", "--iterations", "1", "--budget", "4", "--batch-size", "2", "--method", "separate",
            "--pretrain-iterations", "1", "--generator", "pix2pix", "--set", "generator.ngf=4",
            "--set", "generator.spade=true", "--set", "generator.noise=2", "--set", "method.synthetic_batch_size=1"]
    result = runner.invoke(app, ["train", "--data", str(tiny_phantom), "--out", str(run), *args])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "config.json").read_text())
    generator = saved["generator"]
    assert (generator["ngf"], generator["spade"], generator["noise"]) == (4, True, 2)
    assert saved["method"] == {"name": "separate", "gamma": 1.0, "synthetic_batch_size": 1}
    unknown = runner.invoke(app, ["train", "--data", str(tiny_phantom), "--out", str(tmp_path / "other"),
                                  *args[:-2], "--set", "generator.sparkle=1"])
    line = _single_error_line(unknown.output)
    assert "sparkle" in line and "accepted" in line


@pytest.mark.parametrize(("flag", "key"), [("--upper", "method.upper"), ("--ngf=4", "generator.ngf"),
                                           ("--generator-option", "generator.KEY"), ("--val-every", "train.val_every")])
def test_a_former_train_flag_names_its_set_key(flag: str, key: str, tiny_phantom: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--data", str(tiny_phantom), "--out", str(tmp_path / "run"), flag, "2"])
    line = _single_error_line(result.output)
    assert result.exit_code == 2 and f"is now --set {key}=VALUE" in line and not (tmp_path / "run").exists()
    typo = runner.invoke(app, ["train", "--data", str(tiny_phantom), "--out", str(tmp_path / "run"),
                               "--iteratons", "2"])
    assert "no option or argument '--iteratons'" in _single_error_line(typo.output)


def test_the_method_s_settings_are_set_under_method(tmp_path: Path) -> None:
    """GenSeg's settings were the mlo section; another method's settings are refused in one line."""
    from genseg.cli import _train_config

    config = _train_config(None, None, {"data": tmp_path, "method": "genseg", "setting": ["method.upper=pairs"]})
    assert (config.method.name, config.method.settings.upper) == ("genseg", "pairs")
    with pytest.raises(ValueError, match=r"the method's now: --set method.upper=VALUE"):
        _train_config(None, None, {"data": tmp_path, "method": "genseg", "setting": ["mlo.upper=pairs"]})
    with pytest.raises(ValueError, match=r"\['upper'\] for method 'augment'; accepted: none"):
        _train_config(None, None, {"data": tmp_path, "setting": ["method.upper=pairs"]})
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps(config.to_dict()))
    assert _train_config(saved, None, {"method": "separate"}).method.options == {"gamma": 1.0,
                                                                              "synthetic_batch_size": 2}


def test_a_run_without_a_config_file_takes_every_default(tmp_path: Path) -> None:
    """A fresh run read as a config.json of before averaging existed: average_last 0, no averaged.pt."""
    from genseg.cli import _train_config
    from genseg.config import RunConfig

    config = _train_config(None, None, {"data": tmp_path, "method": "copypaste"})
    defaults = RunConfig()
    assert config.train == defaults.train and config.train.average_last > 0
    assert config.method.options["synthetic_batch_size"] == 2


@pytest.mark.parametrize(("budget", "n_val"), [(2, 1), (3, 1), (9, 2), (20, 4)])
def test_the_budget_given_sets_the_validation_share(budget: int, n_val: int, tmp_path: Path) -> None:
    """--budget 3 trained 1 + 2 pairs: the default budget's n_val of 2 stayed."""
    from genseg.cli import _train_config

    config = _train_config(None, None, {"data": tmp_path, "budget": budget})
    assert (config.data.n_train, config.data.n_val) == (budget - n_val, n_val)
    assert _train_config(None, None, {"data": tmp_path, "budget": 9, "n_val": 3}).data.n_val == 3  # given: kept
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps(_train_config(None, None, {"data": tmp_path, "budget": 9}).to_dict()))
    assert _train_config(saved, None, {"budget": budget}).data.n_val == n_val  # a config file's follows too


@pytest.mark.parametrize("option, message", [(["--segmenter", "nonsense"], "nonsense"),
                                             (["--device", "cuda"], "no CUDA GPU is visible"),
                                             (["--seed", "-1"], "seed")])
def test_a_bad_training_option_is_one_line_before_any_file(option: list[str], message: str, tiny_phantom: Path,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--segmenter nonsense and --device cuda on a CPU machine failed after writing config.json and split.json."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(tiny_phantom), "--out", str(out), *option])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_any_config_field_is_reachable_through_set(tiny_phantom: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    trained = runner.invoke(app, ["train", "--data", str(tiny_phantom), "--out", str(run), "--size", "32",
                                  "--iterations", "4", "--budget", "4", "--set", "train.checkpoint_every=2",
                                  "--set", "segmenter.options={\"base\": 4}", "--set", "train.val_every=1",
                                  "--set", "train.val_every=2", "--set", "train.iterations=9"])
    assert trained.exit_code == 0, trained.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["train"]["checkpoint_every"] == 2 and saved["segmenter"]["options"] == {"base": 4}
    assert saved["train"]["val_every"] == 2  # the last --set of a key wins
    assert saved["train"]["iterations"] == 4  # and a named option wins over --set
    wrong = runner.invoke(app, ["train", "--data", str(tiny_phantom), "--out", str(tmp_path / "x"),
                                "--set", "checkpoint_every=2"])
    assert wrong.exit_code == 2 and "SECTION.KEY=VALUE" in wrong.output and not (tmp_path / "x").exists()
