"""``runs.csv``: one row per run, checkpoint and evaluation set, appended as runs finish.

Rows are appended under a file lock and the header widens when rows bring new columns (per-class
Dice). A run is identified by :data:`KEY_COLUMNS`: a row with another segmenter, size or iteration
count is another run, so a changed benchmark never silently reuses old results.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genseg.data.io import atomic_write
from genseg.runs import RunPaths, eval_name, read_fold_set

if TYPE_CHECKING:
    from genseg.benchmark.spec import PlannedRun

KEY_COLUMNS = ("dataset", "n_labels", "method", "seed", "segmenter", "size", "iterations")
HEAD_COLUMNS = (*KEY_COLUMNS[:2], "n_train", "n_val", *KEY_COLUMNS[2:], "checkpoint", "eval_set",
                "dice", "iou", "hd95", "n_hd95_undefined", "n_cases")
TAIL_COLUMNS = ("seconds", "peak_mb", "status", "error")


def evaluated_sets(results: Path) -> dict[tuple[str, ...], set[str]]:
    """Run key (:data:`KEY_COLUMNS`) -> the evaluation sets with ``ok`` rows in a ``runs.csv``."""
    evaluated: dict[tuple[str, ...], set[str]] = {}
    for row in ok_rows(read_rows(results)):
        evaluated.setdefault(row_key(row), set()).add(row["eval_set"])
    return evaluated



def read_rows(results: Path) -> list[dict[str, str]]:
    """The rows of a ``runs.csv`` (empty if it does not exist yet)."""
    with _file_lock(results):
        return _read_unlocked(results)



def append_rows(results: Path, rows: list[dict[str, Any]]) -> None:
    """Append rows to a ``runs.csv`` under a file lock, widening its header if rows bring new columns."""
    with _file_lock(results):
        header = _header(results)
        new_columns = [c for row in rows for c in row if c not in header]
        if header and not new_columns:
            with results.open("a", newline="") as handle:
                csv.DictWriter(handle, fieldnames=header).writerows(rows)
            return
        everything = _read_unlocked(results) + rows
        text = _csv_text(everything, _ordered_columns([c for row in everything for c in row]))
        atomic_write(results, lambda temp: temp.write_text(text))



def result_rows(run: PlannedRun, paths: RunPaths, eval_sets: list[str] | None = None) -> list[dict[str, Any]]:
    """The ``runs.csv`` rows of a trained and evaluated run, for ``eval_sets`` (default: all)."""
    fold_set = read_fold_set(paths.root)
    members = fold_set.members() if fold_set is not None else [paths]
    results = [json.loads(member.result.read_text()) for member in members]
    trained = {"seconds": sum(r["seconds"] for r in results),  # a fold set's: all its folds'
               "peak_mb": max((r["peak_mb"] for r in results if r.get("peak_mb") is not None), default=None)}
    rows = []
    for eval_set in run.eval_sets if eval_sets is None else eval_sets:
        for checkpoint in (fold_set or paths).saved_checkpoints():
            results = paths.eval_dir(eval_name(*run.eval_sets[eval_set]), checkpoint)
            summary = json.loads((results / "summary.json").read_text())
            rows.append({**run.columns(), "checkpoint": checkpoint, "eval_set": eval_set,
                         **summary_columns(summary), "seconds": round(trained["seconds"], 1),
                         "peak_mb": _rounded(trained.get("peak_mb")), "status": "ok", "error": ""})
    return rows



def summary_columns(summary: dict[str, Any]) -> dict[str, Any]:
    """Flat metrics of an evaluation summary; per-class Dice only when there are several classes."""
    per_class = {key[: -len("_mean")]: summary[key] for key in summary
                 if key.startswith("dice_") and key.endswith("_mean") and key != "dice_mean"}
    return {"dice": summary["dice_mean"], "iou": summary["iou_mean"], "hd95": summary["hd95_mean"],
            "n_hd95_undefined": summary["n_hd95_undefined"], "n_cases": summary["n_cases"],
            **(per_class if len(per_class) > 1 else {})}



def _rounded(value: float | None) -> int | str:
    """Peak memory for runs.csv; blank where a run folder did not record it."""
    return "" if value is None else round(value)



@contextmanager
def _file_lock(results: Path) -> Iterator[None]:
    # A separate lock file: runs.csv itself is replaced when its header widens.
    results.parent.mkdir(parents=True, exist_ok=True)
    with (results.parent / f".{results.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)



def _read_unlocked(results: Path) -> list[dict[str, str]]:
    if not results.is_file():
        return []
    with results.open(newline="") as handle:
        return [{k: v or "" for k, v in row.items()} for row in csv.DictReader(handle)]



def _header(results: Path) -> list[str]:
    if not results.is_file():
        return []
    with results.open(newline="") as handle:
        return next(csv.reader(handle), [])



def _ordered_columns(columns: list[str]) -> list[str]:
    """Fixed columns first, then per-class Dice in order of appearance, then the run's costs and status."""
    fixed = set(HEAD_COLUMNS) | set(TAIL_COLUMNS)
    return [*HEAD_COLUMNS, *dict.fromkeys(c for c in columns if c not in fixed), *TAIL_COLUMNS]



def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()



def ok_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [row for row in rows if row["status"] == "ok"]



def row_key(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row[c] for c in KEY_COLUMNS)
