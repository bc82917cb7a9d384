"""``genseg demo``: GenSeg against plain augmentation on a built-in phantom, needing nothing else.

The phantom (textured blobs on a noisy background, see :mod:`genseg.data.phantom`) is clearly
synthetic: the demo shows that the installation works end to end, not how well genseg segments
medical images (docs/benchmarks.md has those figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
