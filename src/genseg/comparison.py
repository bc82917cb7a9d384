"""Paired comparisons of two runs on the same cases: per-case differences and a Wilcoxon test.

docs/method.md's protocol compares methods case by case (the same test cases, the same seed), because the
spread between cases is far larger than most differences between methods.

Example:
    >>> paired_difference(Path("runs/augment"), Path("runs/genseg")).describe()  # doctest: +SKIP
    'b - a = +0.012 over 96 cases (0.943 vs 0.931), Wilcoxon p = 0.003'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import wilcoxon

from genseg.errors import ConfigError
from genseg.runs import RunPaths, read_csv


@dataclass(frozen=True)
class PairedDifference:
    """Run b minus run a on the same cases.

    Args:
        cases: cases compared.
        mean_a: the metric's mean over the cases, run a.
        mean_b: the same for run b.
        difference: mean of the per-case differences b - a.
        p_value: two-sided Wilcoxon signed-rank p-value (1 when every difference is 0).
    """

    cases: int
    mean_a: float
    mean_b: float
    difference: float
    p_value: float

    def describe(self) -> str:
        return (f"b - a = {self.difference:+.3f} over {self.cases} cases ({self.mean_b:.3f} vs {self.mean_a:.3f}), "
                f"Wilcoxon p = {self.p_value:.2g}")


def paired_difference(run_a: Path, run_b: Path, eval_set: str = "test", checkpoint: str = "best",
                      metric: str = "dice") -> PairedDifference:
    """Compare two evaluated runs case by case (``eval/<eval_set>/<checkpoint>/cases.csv`` of each).

    Either may instead be a ``cases.csv`` itself (e.g. one another tool's predictions were scored
    into), taken as it is whatever ``eval_set`` and ``checkpoint`` say.

    Raises:
        ValueError: the runs were scored on different cases.
    """
    a, b = (_per_case(_cases_csv(Path(run), eval_set, checkpoint), metric) for run in (run_a, run_b))
    if a.keys() != b.keys():
        raise ConfigError(f"{run_a} and {run_b} were scored on different {eval_set} cases")
    return paired_scores(a, b)


def paired_scores(a: dict[str, float], b: dict[str, float]) -> PairedDifference:
    """Scores b minus scores a, matched by case id (both must score the same cases)."""
    values_a, values_b = np.array([a[case] for case in a]), np.array([b[case] for case in a])
    differences = values_b - values_a
    p_value = float(wilcoxon(values_b, values_a).pvalue) if np.any(differences != 0) else 1.0
    return PairedDifference(len(a), float(values_a.mean()), float(values_b.mean()), float(differences.mean()),
                            p_value)


def _cases_csv(run: Path, eval_set: str, checkpoint: str) -> Path:
    return run if run.is_file() else RunPaths(run).eval_dir(eval_set, checkpoint) / "cases.csv"


def _per_case(path: Path, metric: str) -> dict[str, float]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; evaluate the run first (genseg evaluate)")
    return {row["case"]: float(row[metric]) for row in read_csv(path)}
