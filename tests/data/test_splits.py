"""Split files: the benchmark format, seeded splits, budgets and the id checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genseg.data import (
    CaseIndex,
    DataError,
    Split,
    budget_ids,
    check_split_ids,
    fold_ids,
    index_cases,
    make_split,
    read_split,
    write_split,
)
from genseg.data.sample import Case


def _index(ids: list[str]) -> CaseIndex:
    return CaseIndex(root=Path("/data/toy"), layout="folders", cases={i: Case(i, Path(f"{i}.png")) for i in ids})


@pytest.mark.realdata
def test_budget_ids_on_the_jsrt_split_file(splits_dir: Path) -> None:
    path = splits_dir / "jsrt_lung.json"
    raw = json.loads(path.read_text())
    split = read_split(path)
    assert split.dataset == "jsrt_lung" and split.test == raw["test"] and sorted(split.pool) == [0, 1, 2]
    train_ids, val_ids = budget_ids(split, seed=0, n_train=7, n_val=2)
    assert train_ids == raw["pool"]["seed0"][:7]
    assert val_ids == raw["pool"]["seed0"][7:9]


@pytest.mark.realdata
def test_jsrt_split_ids_are_cases_of_the_data(splits_dir: Path, datasets_dir: Path) -> None:
    check_split_ids(read_split(splits_dir / "jsrt_lung.json"), index_cases(datasets_dir / "jsrt_lung"))


def test_budget_with_a_seed_not_in_the_file() -> None:
    split = Split("toy", test=["t"], pool={0: ["a", "b", "c"], 2: ["c", "b", "a"]})
    with pytest.raises(DataError, match=r"no pool for seed 1; available: seed0, seed2"):
        budget_ids(split, seed=1, n_train=1, n_val=1)


def test_budget_larger_than_the_pool() -> None:
    split = Split("toy", test=["t"], pool={0: ["a", "b", "c"]})
    with pytest.raises(DataError, match=r"budget of 4 cases \(3 train \+ 1 val\) is larger than the 3 cases"):
        budget_ids(split, seed=0, n_train=3, n_val=1)
    assert budget_ids(split, seed=0, n_train=2, n_val=1) == (["a", "b"], ["c"])


def test_folds_rotate_the_validation_cases_through_the_budget_only() -> None:
    split = Split("toy", test=["t"], pool={0: ["a", "b", "c", "d", "e", "f", "g", "x"]})
    folds = [fold_ids(split, seed=0, budget=7, folds=3, fold=k) for k in range(3)]
    assert [val for _, val in folds] == [["a", "d", "g"], ["b", "e"], ["c", "f"]]
    assert all(sorted(train + val) == list("abcdefg") for train, val in folds)  # "x" is outside the budget
    with pytest.raises(DataError, match="budget of 9 cases"):
        fold_ids(split, seed=0, budget=9, folds=3, fold=0)


def test_write_and_read_round_trip(tmp_path: Path) -> None:
    split = Split("toy", test=["t1", "t2"], pool={1: ["b", "a"], 0: ["a", "b"]}, note="hand made")
    path = tmp_path / "split.json"
    write_split(split, path)
    raw = json.loads(path.read_text())
    assert list(raw) == ["dataset", "note", "test", "pool"] and list(raw["pool"]) == ["seed0", "seed1"]
    assert read_split(path) == split
    assert [p.name for p in tmp_path.iterdir()] == ["split.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read split file"),
        ('{"dataset": "x", "test": []}', "a split file must hold"),
        ('{"dataset": "x", "test": ["a"], "pool": ["a"]}', "pool an object of lists"),
        ('{"dataset": "x", "test": ["a"], "pool": {"first": ["b"]}}', "pool keys must be seed0, seed1"),
        ('{"dataset": "x", "test": ["a", "b"], "pool": {"seed0": ["c", "b"]}}', "ids in both test and pool seed0: b"),
        ('{"dataset": "x", "test": ["a"], "pool": {"seed0": ["c", "c"]}}', "lists an id twice"),
    ],
)
def test_read_split_refuses_invalid_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "split.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_split(path)


def test_read_split_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.json: split file not found"):
        read_split(tmp_path / "missing.json")


def test_make_split_is_seeded_sorted_and_disjoint() -> None:
    ids = [f"case_{i:02d}" for i in range(20)]
    split = make_split(reversed(ids), dataset="toy", test_fraction=0.3)
    assert split == make_split(ids, dataset="toy", test_fraction=0.3)  # directory order does not matter
    assert len(split.test) == 6 and split.test == sorted(split.test)
    assert sorted(split.pool) == [0, 1, 2]
    rest = sorted(set(ids) - set(split.test))
    assert all(sorted(pool) == rest for pool in split.pool.values())
    assert split.pool[0] != split.pool[1] != split.pool[2]
    other = make_split(ids, dataset="toy", test_fraction=0.3, rng_seed=1)
    assert other.test != split.test


def test_make_split_keeps_a_test_case_unless_the_budget_needs_every_case() -> None:
    split = make_split(["a", "b", "c"], dataset="toy", test_fraction=0.9, seeds=(5,))
    assert len(split.test) == 1 and len(split.pool[5]) == 2
    nine = [f"case{i}" for i in range(9)]
    assert len(make_split(nine, dataset="toy", test_fraction=0.3, min_pool=8).test) == 1
    every = make_split(nine, dataset="toy", test_fraction=0.3, min_pool=9)
    assert every.test == [] and sorted(every.pool[0]) == nine
    with pytest.raises(DataError, match="--budget 9 or fewer"):
        make_split(nine, dataset="toy", test_fraction=0.3, min_pool=10)
    with pytest.raises(ValueError, match="test_fraction"):
        make_split(["a", "b", "c"], dataset="toy", test_fraction=1.0)


def test_check_split_ids_names_missing_ids_and_folder() -> None:
    split = Split("toy", test=["a"], pool={0: ["b", "c.png", "d.png"]})
    check_split_ids(split, _index(["a", "b", "c.png", "d.png"]))
    message = r"/data/toy.*2 ids .* not cases of this data folder: c\.png, d\.png.*without extension"
    with pytest.raises(DataError, match=message):
        check_split_ids(split, _index(["a", "b", "c", "d"]))
