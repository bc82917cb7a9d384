"""``cases.csv``, ``paired.csv`` and ``checkpoints.csv``: every variant minus every baseline, and a
run's averaged checkpoint minus its final and best ones, case by case, seed by seed.

docs/method.md's protocol compares methods on the same cases and seed, because the spread between cases is far
larger than most differences between methods. The per-case scores live in the run folders
(``runs/<name>/eval/<set>/<checkpoint>/cases.csv``), which a fresh checkout of the published
results lacks, so every run's per-case Dice is also kept in ``<out>/cases.csv`` beside ``runs.csv``:
runs whose folders are here are refreshed from them, the others stay as they were. The pairs are
formed from that table, so a run added later is paired with baselines whose folders are long gone.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from genseg.benchmark.results import ok_rows
from genseg.benchmark.spec import run_name
from genseg.comparison import paired_scores
from genseg.data.io import atomic_write
from genseg.runs import RunPaths, read_csv, write_csv

# In order: a baseline is itself paired with the ones before it (copypaste with augment, separate with
# copypaste). genseg-none is GenSeg with its GAN training and no hypergradient: the difference to it
# is the validation feedback alone, where `separate` also differs by the generator kept training.
BASELINES = ("supervised", "augment", "copypaste", "semisup", "separate", "genseg-none")
SETTING_COLUMNS = ("dataset", "n_labels", "segmenter", "size", "iterations", "eval_set", "checkpoint", "seed")
SCORED_COLUMNS = (*SETTING_COLUMNS, "method")
CASE_COLUMNS = (*SCORED_COLUMNS, "case", "dice")
PAIR_COLUMNS = (*SCORED_COLUMNS, "baseline")
PAIRED_COLUMNS = (*PAIR_COLUMNS, "n_cases", "dice_method", "dice_baseline", "difference", "p_value")
CHECKPOINT_PAIRS = (("averaged", "final"), ("averaged", "best"))
"""Checkpoints compared within a run (the checkpoint policy): the averaged weights against the two
checkpoints every run has. In ``checkpoints.csv`` the ``baseline`` column names the second one."""

Scored = tuple[str, ...]  # a SCORED_COLUMNS key: one run, one evaluation set, one checkpoint
DIGITS = 5  # of a Dice in cases.csv; scores read from run folders are rounded alike, so that the
# pairs (and their Wilcoxon ties) come out the same whether or not the folders are still there


def baselines_of(variant: str) -> tuple[str, ...]:
    """The baselines a variant is paired with: all of them, or for a baseline the ones listed before it."""
    return BASELINES[:BASELINES.index(variant)] if variant in BASELINES else BASELINES


def update_paired(out: Path, rows: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Refresh ``cases.csv`` from the run folders in ``out/runs``; write ``paired.csv`` and
    ``checkpoints.csv`` from it.

    Args:
        rows: the ``runs.csv`` rows; only ``ok`` ones are scored and paired.

    Returns:
        Every row of the new ``paired.csv``, and of ``checkpoints.csv``.
    """
    scores = update_case_scores(out, rows)
    paired, checkpoints = paired_rows(scores), checkpoint_rows(scores)
    for name, table in (("paired.csv", paired), ("checkpoints.csv", checkpoints)):
        if table:
            atomic_write(out / name, lambda temp, table=table: write_csv(table, temp))
    return paired, checkpoints


def update_case_scores(out: Path, rows: list[dict[str, str]]) -> dict[Scored, dict[str, float]]:
    """Per-case Dice of every ``ok`` run: from its folder where present, else as ``cases.csv`` had it.

    Returns:
        ``SCORED_COLUMNS`` key -> case id -> Dice; written to ``out/cases.csv``.
    """
    ok = {tuple(row[c] for c in SCORED_COLUMNS): row for row in ok_rows(rows)}
    scores: dict[Scored, dict[str, float]] = defaultdict(dict)
    for case in (read_csv(out / "cases.csv") if (out / "cases.csv").is_file() else []):
        key = tuple(case[c] for c in SCORED_COLUMNS)
        if key in ok:
            scores[key][case["case"]] = _stored(case["dice"])
    for key, row in ok.items():
        path = RunPaths(out / "runs" / _folder(row)).eval_dir(row["eval_set"], row["checkpoint"]) / "cases.csv"
        if path.is_file():
            scores[key] = {case["case"]: _stored(case["dice"]) for case in read_csv(path)}
    table = [{**dict(zip(SCORED_COLUMNS, key)), "case": case, "dice": f"{dice:.{DIGITS}f}"}
             for key, cases in scores.items() for case, dice in cases.items()]
    if table:
        atomic_write(out / "cases.csv", lambda temp: write_csv(table, temp))
    return dict(scores)


def paired_rows(scores: dict[Scored, dict[str, float]]) -> list[dict[str, str]]:
    """Dice of each variant minus each of its baselines (:func:`baselines_of`) with the same setting and
    seed, per case.

    Args:
        scores: ``SCORED_COLUMNS`` key -> case id -> Dice (:func:`update_case_scores`); a pair
            whose two runs were not scored on the same cases is left out.
    """
    paired = []
    for key, cases in scores.items():
        *setting, method = key
        for baseline in baselines_of(method):
            reference = scores.get((*setting, baseline))
            if reference is not None and reference.keys() == cases.keys():
                paired.append(_pair_row(key, baseline, reference, cases))
    return paired


def checkpoint_rows(scores: dict[Scored, dict[str, float]]) -> list[dict[str, str]]:
    """Within each run, its averaged checkpoint minus its final and best ones (:data:`CHECKPOINT_PAIRS`), per case.

    Args:
        scores: as for :func:`paired_rows`.
    """
    at = SCORED_COLUMNS.index("checkpoint")
    paired = []
    for key, cases in scores.items():
        for checkpoint, other in CHECKPOINT_PAIRS:
            reference = scores.get((*key[:at], other, *key[at + 1:])) if key[at] == checkpoint else None
            if reference is not None and reference.keys() == cases.keys():
                paired.append(_pair_row(key, other, reference, cases))
    return paired


def _pair_row(key: Scored, baseline: str, reference: dict[str, float], cases: dict[str, float]) -> dict[str, str]:
    difference = paired_scores(reference, cases)
    return {**dict(zip(SCORED_COLUMNS, key)), "baseline": baseline, "n_cases": str(difference.cases),
            "dice_method": f"{difference.mean_b:.4f}", "dice_baseline": f"{difference.mean_a:.4f}",
            "difference": f"{difference.difference:.4f}", "p_value": f"{difference.p_value:.3g}"}


def _stored(dice: str) -> float:
    return round(float(dice), DIGITS)


def _folder(row: dict[str, str]) -> str:
    return run_name(row["dataset"], row["n_labels"], row["method"], row["segmenter"], row["seed"])
