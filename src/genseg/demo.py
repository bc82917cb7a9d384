"""``genseg demo``: GenSeg against plain augmentation on a built-in phantom, needing nothing else.

The phantom (textured blobs on a noisy background, see :mod:`genseg.data.phantom`) is clearly
synthetic: the demo shows that the installation works end to end, not how well genseg segments
medical images (docs/benchmarks.md has those figures).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import wilcoxon

from genseg.config import DataConfig, GeneratorConfig, RunConfig, TrainConfig
from genseg.data.phantom import make_phantom
from genseg.evaluation import evaluate
from genseg.training import train

DEMO_METHODS = ("augment", "genseg")


@dataclass
class DemoResult:
    """Where the demo wrote each method's run, and the test figures of its checkpoints."""

    runs: dict[str, Path]
    summaries: dict[str, dict[str, dict]]

    def verdict(self, checkpoint: str = "best") -> str:
        """One line on the last method against the first, from their paired per-case test Dice."""
        (base, base_run), (other, other_run) = list(self.runs.items())[0], list(self.runs.items())[-1]
        a, b = (_case_dice(run / "eval" / "test" / checkpoint / "cases.csv") for run in (base_run, other_run))
        difference = float(np.mean(b - a))
        p = float(wilcoxon(b, a).pvalue) if np.any(b != a) else 1.0
        if p < 0.05 and abs(difference) >= 0.01:
            outcome = f"{other if difference > 0 else base} is higher"
        else:
            outcome = "no clear difference (within the noise of this small test set)"
        return (f"{other} vs {base} on {len(a)} phantom test cases ({checkpoint} checkpoint): mean Dice "
                f"{b.mean():.3f} vs {a.mean():.3f}, paired difference {difference:+.3f} (Wilcoxon p = {p:.2g}): "
                f"{outcome}.")


def demo(out: Path = Path("runs/demo"), *, methods: tuple[str, ...] = DEMO_METHODS, iterations: int = 200,
         pretrain_iterations: int = 200, progress: bool = True) -> DemoResult:
    """Make the phantom, train each method on 9 of its labels, evaluate on its held-out cases.

    Args:
        out: folder for the phantom data (``out/data``) and the runs (``out/<method>``).
        methods: training methods to compare.
        iterations: segmenter steps per method.
        pretrain_iterations: generator pre-training steps (generative methods).
        progress: show progress bars.
    """
    out = Path(out)
    data_dir = make_phantom(out / "data")
    runs, summaries = {}, {}
    for method in methods:
        config = RunConfig(
            data=DataConfig(root=data_dir, budget=9, size=64),
            generator=GeneratorConfig(ngf=16, ndf=16, pretrain_iterations=pretrain_iterations),
            train=TrainConfig(method=method, iterations=iterations, val_every=25, checkpoint_every=50),
        )
        runs[method] = out / method
        train(config, runs[method], resume=True, progress=progress)
        summaries[method] = evaluate(runs[method], split="test")
    return DemoResult(runs, summaries)


def _case_dice(cases_csv: Path) -> np.ndarray:
    with cases_csv.open() as handle:
        return np.array([float(row["dice"]) for row in csv.DictReader(handle)])
