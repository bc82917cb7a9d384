"""Atomic checkpoints: a save either replaces the file whole or leaves the old one untouched."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path
from typing import Any

import pytest
import torch

from genseg.checkpoint import load_checkpoint, save_atomic
from genseg.errors import DataError


def test_save_atomic_writes_what_load_checkpoint_reads(tmp_path: Path) -> None:
    path = tmp_path / "run" / "last.pt"  # the folder is made on the way
    state = {"weights": torch.arange(6.0).reshape(2, 3), "iteration": 7, "rng": torch.get_rng_state()}

    save_atomic(state, path)
    loaded = load_checkpoint(path)

    assert loaded["iteration"] == 7
    assert torch.equal(loaded["weights"], state["weights"]) and torch.equal(loaded["rng"], state["rng"])
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_failed_save_keeps_the_previous_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_atomic({"iteration": 1}, path)
    before = path.read_bytes()

    with pytest.raises((pickle.PicklingError, AttributeError)):  # pickle's error for a local function
        save_atomic({"iteration": 2, "callback": lambda: None}, path)

    assert path.read_bytes() == before
    assert load_checkpoint(path)["iteration"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_kill_during_write_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    save_atomic({"iteration": 1}, path)

    def half_written(state: Any, target: Any) -> None:
        Path(target).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", half_written)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"iteration": 2}, path)
    monkeypatch.undo()

    assert load_checkpoint(path)["iteration"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_missing_checkpoint_says_to_train_first(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="genseg train"):
        load_checkpoint(tmp_path / "best.pt")


def test_saved_files_get_the_usual_mode_not_a_private_one(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        save_atomic({"iteration": 1}, tmp_path / "best.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "best.pt").stat().st_mode) == 0o644


class _RunsCode:
    """A pickle whose loading would run a command: what a crafted checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    crafted = tmp_path / "averaged.pt"
    torch.save({"segmenter": _RunsCode(marker)}, crafted)
    with pytest.raises(DataError, match="not a genseg checkpoint"):
        load_checkpoint(crafted)
    assert not marker.exists()


def test_a_damaged_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    damaged = tmp_path / "final.pt"
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot read this checkpoint"):
        load_checkpoint(damaged)
