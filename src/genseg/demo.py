"""``genseg demo``: train and evaluate on a built-in synthetic phantom, needing nothing else.

The phantom (textured blobs on a noisy background, see :mod:`genseg.data.phantom`) is clearly
synthetic: it shows that the installation works end to end, not how well genseg segments
medical images (docs/benchmarks.md has those figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genseg.config import DataConfig, RunConfig, TrainConfig
from genseg.data.phantom import make_phantom
from genseg.evaluation import evaluate
from genseg.training import train


@dataclass
class DemoResult:
    """Where the demo wrote its run, and the test figures of its checkpoints."""

    run_dir: Path
    summaries: dict[str, dict]


def demo(out: Path = Path("runs/demo"), *, method: str = "augment", iterations: int = 300,
         progress: bool = True) -> DemoResult:
    """Make the phantom data set, train on 9 of its labels, evaluate on its held-out cases.

    Args:
        out: folder for the phantom data (``out/data``) and the run (``out/run``).
        method: training method.
        iterations: segmenter steps (300 take about a minute on 2 CPU cores).
        progress: show progress bars.
    """
    out = Path(out)
    data_dir = make_phantom(out / "data")
    config = RunConfig(
        data=DataConfig(root=data_dir, budget=9, size=64),
        train=TrainConfig(method=method, iterations=iterations, val_every=50, checkpoint_every=100),
    )
    run_dir = out / "run"
    train(config, run_dir, resume=True, progress=progress)
    return DemoResult(run_dir, evaluate(run_dir, split="test"))
