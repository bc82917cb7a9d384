"""``paired.csv``: every GenSeg variant minus every baseline, case by case, seed by seed.

BENCHMARK.md compares methods on the same cases and seed, because the spread between cases is far
larger than most differences between methods. The per-case scores live in the run folders
(``runs/<name>/eval/<set>/<checkpoint>/cases.csv``), which a fresh checkout of the published
results lacks, so the comparisons are kept in ``paired.csv`` beside ``runs.csv``: rows whose run
folders are gone stay as they were, rows whose folders are here are recomputed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genseg.benchmark.results import ok_rows, read_rows
from genseg.benchmark.spec import run_name
from genseg.comparison import paired_difference
from genseg.data.io import atomic_write
from genseg.runs import RunPaths, write_csv

BASELINES = ("supervised", "augment", "semisup", "separate")
SETTING_COLUMNS = ("dataset", "n_labels", "segmenter", "size", "iterations", "eval_set", "checkpoint", "seed")
PAIR_COLUMNS = (*SETTING_COLUMNS, "method", "baseline")
PAIRED_COLUMNS = (*PAIR_COLUMNS, "n_cases", "dice_method", "dice_baseline", "difference", "p_value")


def is_genseg(variant: str) -> bool:
    """Whether a variant is GenSeg's (``genseg`` or ``genseg-<ablation>``)."""
    return variant == "genseg" or variant.startswith("genseg-")


def update_paired(out: Path, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Recompute the comparisons whose run folders are in ``out/runs``, keep the others; write ``paired.csv``.

    Returns:
        Every row of the new ``paired.csv``.
    """
    path = out / "paired.csv"
    merged = {_pair_key(row): row for row in read_rows(path)}
    merged.update({_pair_key(row): row for row in paired_rows(out / "runs", rows)})
    if merged:
        atomic_write(path, lambda temp: write_csv(list(merged.values()), temp))
    return list(merged.values())


def paired_rows(runs: Path, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Dice of each GenSeg variant minus each baseline with the same setting and seed, per case.

    Args:
        runs: the folder of the run folders.
        rows: ``runs.csv`` rows; pairs with a run folder or per-case scores missing are left out.
    """
    ok = ok_rows(rows)
    present = {(*(row[c] for c in SETTING_COLUMNS), row["method"]) for row in ok}
    paired = []
    for row in ok:
        if not is_genseg(row["method"]):
            continue
        setting = tuple(row[c] for c in SETTING_COLUMNS)
        for baseline in BASELINES:
            folders = [runs / _folder(row, method) for method in (baseline, row["method"])]
            if (*setting, baseline) not in present or not all(_scored(f, row) for f in folders):
                continue
            difference = paired_difference(*folders, eval_set=row["eval_set"], checkpoint=row["checkpoint"])
            paired.append({**dict(zip(SETTING_COLUMNS, setting)), "method": row["method"], "baseline": baseline,
                           "n_cases": str(difference.cases), "dice_method": f"{difference.mean_b:.4f}",
                           "dice_baseline": f"{difference.mean_a:.4f}", "difference": f"{difference.difference:.4f}",
                           "p_value": f"{difference.p_value:.3g}"})
    return paired


def _folder(row: dict[str, Any], method: str) -> str:
    return run_name(row["dataset"], row["n_labels"], method, row["segmenter"], row["seed"])


def _scored(run: Path, row: dict[str, str]) -> bool:
    return (RunPaths(run).eval_dir(row["eval_set"], row["checkpoint"]) / "cases.csv").is_file()


def _pair_key(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row[c] for c in PAIR_COLUMNS)
