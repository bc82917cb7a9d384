"""Split files: a fixed test set and, per seed, an ordered pool that labeled budgets are cut from.

The JSON format (as in the benchmark's ``splits/*.json``)::

    {"dataset": "jsrt_lung", "note": "...", "test": ["JPCLN002", ...],
     "pool": {"seed0": ["JPCNN045", ...], "seed1": [...], "seed2": [...]}}

A budget of N = n_train + n_val cases for seed s is the first n_train ids of ``pool.seed<s>``
(training) and the next n_val (validation); the test cases are never trained or selected on.

Example:
    >>> split = read_split(Path("splits/jsrt_lung.json"))  # doctest: +SKIP
    >>> train_ids, val_ids = budget_ids(split, seed=0, n_train=7, n_val=2)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genseg.data.io import atomic_write
from genseg.data.sample import CaseIndex
from genseg.errors import ConfigError, DataError

_SEED_PREFIX = "seed"


@dataclass
class Split:
    """A test set and one ordered training pool per seed.

    Args:
        dataset: the data set's name.
        test: held-out case ids.
        pool: seed -> case ids in the order budgets take them.
        note: free text (what the ids are, where the split comes from).
    """

    dataset: str
    test: list[str]
    pool: dict[int, list[str]]
    note: str = ""


def read_split(path: Path) -> Split:
    """Read and check a split file.

    Raises:
        DataError: missing file, invalid JSON, missing keys, or ids in both test and pool.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("split file not found", path)
    try:
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read split file: {error}", path) from error
    expected = '{"dataset": ..., "test": [ids], "pool": {"seed0": [ids], ...}}'
    if not isinstance(content, dict) or not {"dataset", "test", "pool"} <= content.keys():
        raise DataError(f"a split file must hold {expected}", path)
    test, pool = content["test"], content["pool"]
    if not _is_id_list(test) or not isinstance(pool, dict) or not all(map(_is_id_list, pool.values())):
        raise DataError(f"test must be a list of case ids and pool an object of lists; expected {expected}", path)
    split = Split(
        dataset=str(content["dataset"]),
        test=list(test),
        pool={_seed_from_key(key, path): list(ids) for key, ids in pool.items()},
        note=str(content.get("note", "")),
    )
    _check_disjoint(split, path)
    return split


def write_split(split: Split, path: Path) -> None:
    """Write a split file in the benchmark format (atomically)."""
    content = {
        "dataset": split.dataset,
        "note": split.note,
        "test": split.test,
        "pool": {f"{_SEED_PREFIX}{seed}": ids for seed, ids in sorted(split.pool.items())},
    }
    text = json.dumps(content, indent=1) + "\n"
    atomic_write(Path(path), lambda temp: temp.write_text(text))


def make_split(
    case_ids: Iterable[str],
    *,
    dataset: str,
    test_fraction: float,
    seeds: Sequence[int] = (0, 1, 2),
    rng_seed: int = 0,
    min_pool: int = 2,
) -> Split:
    """Make a seeded split: one fixed test set, and one pool order per seed.

    The test set gives way to the pool: a folder of 9 labeled images and a budget of 9 makes a
    split with no test cases rather than a budget that cannot be met.

    The ids are sorted first, so the split depends only on the set of ids and the seeds, never
    on directory order.

    Args:
        case_ids: all case ids of the data set.
        dataset: the data set's name.
        test_fraction: share of cases held out for testing, in (0, 1).
        seeds: the training seeds that get a pool order.
        rng_seed: seed of the test draw (and mixed into each pool order).
        min_pool: the pool keeps at least this many cases (the budget), even if the test set
            then gets fewer than ``test_fraction`` of them, or none.

    Returns:
        The split; test ids sorted, at least ``min_pool`` (and 2) pool cases.
    """
    ids = sorted(set(case_ids))
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
    min_pool = max(2, min_pool)
    if len(ids) < min_pool:
        raise DataError(f"a budget of {min_pool} labeled cases needs at least {min_pool} cases, found {len(ids)}; "
                        f"choose --budget {len(ids)} or fewer")
    n_test = max(0, min(max(1, round(test_fraction * len(ids))), len(ids) - min_pool))
    order = np.random.default_rng(rng_seed).permutation(len(ids))
    test = sorted(ids[i] for i in order[:n_test])
    rest = [ids[i] for i in sorted(order[n_test:])]
    pool = {seed: [rest[i] for i in np.random.default_rng([rng_seed, seed]).permutation(len(rest))] for seed in seeds}
    note = f"made by genseg: test_fraction {test_fraction}, rng_seed {rng_seed}; ids are case ids (file stems)"
    return Split(dataset=dataset, test=test, pool=pool, note=note)


def budget_ids(split: Split, seed: int, n_train: int, n_val: int) -> tuple[list[str], list[str]]:
    """The training and validation ids of a budget: the first n_train + n_val of the seed's pool.

    Raises:
        DataError: the seed is not in the split, or the budget is larger than the pool.
    """
    if seed not in split.pool:
        available = ", ".join(f"{_SEED_PREFIX}{key}" for key in sorted(split.pool))
        raise DataError(f"split of {split.dataset!r} has no pool for seed {seed}; available: {available}")
    pool = split.pool[seed]
    if n_train < 1 or n_val < 0:
        raise ConfigError(f"n_train must be >= 1 and n_val >= 0, got {n_train} and {n_val}")
    if n_train + n_val > len(pool):
        parts = f" ({n_train} train + {n_val} val)" if n_val else ""
        raise DataError(
            f"budget of {n_train + n_val} cases{parts} is larger than the "
            f"{len(pool)} cases of pool seed{seed} in the split of {split.dataset!r}; choose --budget {len(pool)} "
            "or fewer, or a split file with a larger pool (genseg split --test-fraction ...)"
        )
    return pool[:n_train], pool[n_train : n_train + n_val]


def fold_ids(split: Split, seed: int, budget: int, folds: int, fold: int) -> tuple[list[str], list[str]]:
    """The training and validation ids of one cross-validation fold of a budget.

    Fold ``fold`` validates on every ``folds``-th case of the budget, from the fold's own
    position, and trains on the others: each case validates in exactly one fold and trains in
    the other ``folds`` - 1.
    """
    ids, _ = budget_ids(split, seed, budget, 0)
    val = ids[fold::folds]
    return [case_id for case_id in ids if case_id not in val], val


DEV_CASES = 50
"""Most pool cases a development set holds (enough to rank recipes, cheap to score)."""


def dev_ids(split: Split, seed: int, budget: int, limit: int = DEV_CASES) -> list[str]:
    """Development cases: the seed's pool cases right after the budget's N, at most ``limit``.

    They are never trained on and never the test list, so recipes and hyper-parameters are
    chosen on them (docs/method.md's protocol). Empty when the budget takes the whole pool.
    """
    if seed not in split.pool:
        budget_ids(split, seed, 1, 0)  # raises the error that names the available seeds
    return split.pool[seed][budget:budget + limit]


def check_split_ids(split: Split, index: CaseIndex) -> None:
    """Check every id of the split is a case of the data folder.

    Raises:
        DataError: naming the first missing ids and the folder.
    """
    listed = dict.fromkeys([*split.test, *(case_id for ids in split.pool.values() for case_id in ids)])
    missing = [case_id for case_id in listed if case_id not in index.cases]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DataError(
            f"{len(missing)} ids of the split of {split.dataset!r} are not cases of this data folder: {shown}; "
            "split files must list file names without extension, for the data folder they were made for",
            index.root,
        )


def _is_id_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _seed_from_key(key: str, path: Path) -> int:
    suffix = key[len(_SEED_PREFIX) :]
    if not key.startswith(_SEED_PREFIX) or not suffix.isdigit():
        raise DataError(f"pool keys must be seed0, seed1, ...; found {key!r}", path)
    return int(suffix)


def _check_disjoint(split: Split, path: Path) -> None:
    """Test ids never appear in a pool, and no pool lists an id twice."""
    test = set(split.test)
    for seed, ids in split.pool.items():
        overlap = sorted(test.intersection(ids))
        if overlap:
            shown = ", ".join(overlap[:5])
            raise DataError(f"ids in both test and pool seed{seed}: {shown}; the test set must stay unseen", path)
        if len(set(ids)) != len(ids):
            raise DataError(f"pool seed{seed} lists an id twice", path)
