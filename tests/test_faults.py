"""Fault injection: a training killed at several points, a prediction and an evaluation killed midway.

After each fault, every later command either resumes to what an uninterrupted run gives (bit for
bit) or refuses in one line, and nothing partial is taken as complete.
"""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import genseg.checkpoint
import genseg.evaluation
import genseg.training
from genseg.checkpoint import load_checkpoint, save_atomic
from genseg.cli import app
from genseg.config import RunConfig
from genseg.data.io import TEMPORARY_MARK
from genseg.evaluation import PREDICTIONS_MANIFEST, predict
from genseg.runs import CHECKPOINTS
from genseg.training import TrainingHooks, train

runner = CliRunner()


@pytest.fixture(scope="module")
def config(tiny_phantom: Path, tiny_config: Callable[..., RunConfig]) -> RunConfig:
    return tiny_config(tiny_phantom, "augment")


@pytest.fixture(scope="module")
def whole(config: RunConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run every interrupted one must end up equal to."""
    out = tmp_path_factory.mktemp("faults") / "whole"
    train(config, out, progress=False)
    return out


def _assert_same_run(run: Path, whole: Path) -> None:
    for checkpoint in CHECKPOINTS:
        ours, theirs = load_checkpoint(run / f"{checkpoint}.pt"), load_checkpoint(whole / f"{checkpoint}.pt")
        assert ours["iteration"] == theirs["iteration"]
        for key, tensor in theirs["segmenter"].items():
            assert torch.equal(ours["segmenter"][key], tensor), (checkpoint, key)
    assert (run / "history.csv").read_text() == (whole / "history.csv").read_text()
    assert not list(run.glob(f".*{TEMPORARY_MARK}*"))


def _refused_as_unfinished(run: Path, tiny_phantom: Path, tmp_path: Path) -> None:
    """evaluate and predict stop in one line that says how to finish the run, and write nothing."""
    predict_command = ["predict", "--run", str(run), "--input", str(tiny_phantom / "images"),
                       "--out", str(tmp_path / "p")]
    for command in (["evaluate", "--run", str(run)], predict_command):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert "has not finished" in result.output and "--resume" in result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (run / "eval").exists() and not (tmp_path / "p").exists()


def test_killed_before_the_first_checkpoint_it_starts_over(config: RunConfig, whole: Path, tiny_phantom: Path,
                                                           tmp_path: Path, kill_run: Callable) -> None:
    run = tmp_path / "run"
    kill_run(config, run, 1)  # checkpoints every 2 steps: no last.pt yet
    assert not (run / "last.pt").exists()
    _refused_as_unfinished(run, tiny_phantom, tmp_path)

    train(config, run, resume=True, progress=False)

    assert "starts over from iteration 0" in (run / "train.log").read_text()
    _assert_same_run(run, whole)


def test_killed_while_writing_a_checkpoint_it_resumes_from_the_whole_one_before(
        config: RunConfig, whole: Path, tiny_phantom: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    real_save = torch.save
    writes = []

    def save_then_die(state: dict, path: Path) -> None:
        writes.append(Path(path))
        if len(writes) == 4:  # best 2, last 2, best 4, then last 4: half written, then killed
            Path(path).write_bytes(b"PK\x03\x04half")
            raise KeyboardInterrupt
        real_save(state, path)

    monkeypatch.setattr(genseg.checkpoint.torch, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(config, run, progress=False)
    monkeypatch.setattr(genseg.checkpoint.torch, "save", real_save)
    assert load_checkpoint(run / "last.pt")["iteration"] == 2  # the earlier, whole checkpoint
    (run / f".last.pt{TEMPORARY_MARK}x1y2.pt").write_bytes(b"")  # what a SIGKILL mid-write leaves
    _refused_as_unfinished(run, tiny_phantom, tmp_path)

    train(config, run, resume=True, progress=False)

    _assert_same_run(run, whole)


def test_killed_after_the_final_checkpoint_it_is_not_taken_as_finished(
        config: RunConfig, whole: Path, tiny_phantom: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(genseg.training, "choose_postprocessing", killed)
    with pytest.raises(KeyboardInterrupt):
        train(config, run, progress=False)
    monkeypatch.undo()
    assert (run / "final.pt").is_file() and not (run / "result.json").exists()
    _refused_as_unfinished(run, tiny_phantom, tmp_path)

    train(config, run, resume=True, progress=False)

    _assert_same_run(run, whole)
    assert (run / "result.json").is_file() and (run / "postprocessing.json").is_file()


def test_a_prediction_killed_midway_is_recognisably_partial_and_redone_only_on_request(
        whole: Path, tiny_phantom: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "masks"
    real_write = genseg.evaluation.write_mask_png
    written = []

    def write_then_die(path: Path, labels: np.ndarray, **options: bool) -> None:
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(path)
        real_write(path, labels, **options)

    monkeypatch.setattr(genseg.evaluation, "write_mask_png", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        predict(whole, tiny_phantom / "images", out)
    monkeypatch.undo()
    assert len(list(out.glob("*.png"))) == 3 and not (out / PREDICTIONS_MANIFEST).exists()  # partial, and says so

    again = runner.invoke(app, ["predict", "--run", str(whole), "--input", str(tiny_phantom / "images"),
                                "--out", str(out)])
    assert again.exit_code == 2 and "3 of the 12 masks to write exist already" in again.output

    predict(whole, tiny_phantom / "images", out, overwrite=True)
    manifest = json.loads((out / PREDICTIONS_MANIFEST).read_text())
    assert sorted(manifest["files"]) == sorted(path.name for path in out.glob("*.png")) and len(manifest["files"]) == 12


def test_an_evaluation_killed_midway_keeps_the_earlier_results_and_reruns_whole(
        whole: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    shutil.copytree(whole, run)
    first = runner.invoke(app, ["evaluate", "--run", str(run)])
    assert first.exit_code == 0, first.output
    before = {path: path.read_bytes() for path in (run / "eval").rglob("*") if path.is_file()}
    real_write = genseg.evaluation.write_csv

    def write_then_die(rows: list, path: Path) -> None:
        if "final" in str(path):  # best's folder already replaced, final's half-filled
            raise KeyboardInterrupt
        real_write(rows, path)

    monkeypatch.setattr(genseg.evaluation, "write_csv", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        genseg.evaluation.evaluate(run, split="test")
    monkeypatch.undo()
    after = {path: path.read_bytes() for path in (run / "eval").rglob("*") if path.is_file()}
    assert after == before  # best's new folder is bit-identical (deterministic); final's is the old one, whole
    assert not [path for path in (run / "eval").rglob("*") if path.name.endswith(".partial")]


def test_a_full_disk_or_a_read_only_out_is_one_line(config: RunConfig, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """torch reports a full disk as "unexpected pos"; a read-only --out was a PermissionError traceback."""

    def disk_full(state: dict, path: Path) -> None:
        Path(path).write_bytes(b"PK")
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")

    monkeypatch.setattr(genseg.checkpoint.torch, "save", disk_full)
    monkeypatch.setattr(genseg.checkpoint.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10, 10, 0))
    with pytest.raises(OSError) as raised:
        save_atomic({"x": 1}, tmp_path / "last.pt")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []  # no temporary file outlives the failed write

    for error in (OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "last.pt")),
                  PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "ro" / "config.json")),
                  OSError(errno.EROFS, "Read-only file system", str(tmp_path / "ro" / "config.json"))):
        def failing(*args: object, error: OSError = error, **kwargs: object) -> None:
            raise error

        monkeypatch.setattr(genseg.training, "train", failing)
        result = runner.invoke(app, ["train", "--data", str(config.data.root), "--out", str(tmp_path / "ro")])
        assert result.exit_code == 2, result.output
        line, = result.output.strip().splitlines()
        assert error.filename in line and error.strerror in line and "--out" in line


def test_an_extension_killed_midway_is_unfinished_again(config: RunConfig, whole: Path, tiny_phantom: Path,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 800-step result.json stayed while a run extended to 1600 was killed, so the benchmark took it as done."""
    run = tmp_path / "run"
    shutil.copytree(whole, run)
    longer = replace(config, train=replace(config.train, iterations=10))

    def stop(done: int, method: object) -> None:
        if done == 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(longer, run, resume=True, progress=False, hooks=TrainingHooks(after_iteration=stop))
    assert not (run / "result.json").exists()
    _refused_as_unfinished(run, tiny_phantom, tmp_path)
