"""``genseg demo``: GenSeg against plain augmentation on a built-in phantom, needing nothing else.

The phantom (textured blobs on a noisy background, see :mod:`genseg.data.phantom`) is clearly
synthetic: the demo shows that the installation works end to end, not how well genseg segments
medical images (docs/benchmarks.md has those figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genseg.comparison import paired_difference
from genseg.config import DataConfig, GeneratorConfig, MethodConfig, RunConfig, TrainConfig
from genseg.data.phantom import make_phantom
from genseg.evaluation import evaluate
from genseg.training import train

DEMO_ITERATIONS = 100
"""Segmenter steps per method: with the pre-training below, the demo's 2-minute budget on 2 cores."""
DEMO_PRETRAIN_ITERATIONS = 200
"""Generator pre-training steps: at 100 the phantom's synthetic pairs cost genseg 0.2 Dice."""

DEMO_METHODS = ("augment", "genseg")


@dataclass
class DemoResult:
    """Where the demo wrote each method's run, and the test figures of its checkpoints."""

    runs: dict[str, Path]
    summaries: dict[str, dict[str, dict]]

    def verdict(self, checkpoint: str = "averaged") -> str:
        """One line on the last method against the first, from their paired per-case test Dice."""
        (base, base_run), (other, other_run) = list(self.runs.items())[0], list(self.runs.items())[-1]
        paired = paired_difference(base_run, other_run, "test", checkpoint)
        if paired.p_value < 0.05 and abs(paired.difference) >= 0.01:
            outcome = f"{other if paired.difference > 0 else base} is higher"
        else:
            outcome = "no clear difference (within the noise of this small test set)"
        return (f"{other} vs {base} on {paired.cases} phantom test cases ({checkpoint} checkpoint): mean Dice "
                f"{paired.mean_b:.3f} vs {paired.mean_a:.3f}, paired difference {paired.difference:+.3f} "
                f"(Wilcoxon p = {paired.p_value:.2g}): {outcome}.")


def demo(out: Path = Path("runs/demo"), *, methods: tuple[str, ...] = DEMO_METHODS, iterations: int = DEMO_ITERATIONS,
         pretrain_iterations: int = DEMO_PRETRAIN_ITERATIONS, progress: bool = True) -> DemoResult:
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
            generator=GeneratorConfig("pix2pix", ngf=16, ndf=16, pretrain_iterations=pretrain_iterations),
            method=MethodConfig(method),
            train=TrainConfig(iterations=iterations, val_every=25, checkpoint_every=50),
        )
        runs[method] = out / method
        train(config, runs[method], resume=True, progress=progress)
        summaries[method] = evaluate(runs[method], split="test")
    return DemoResult(runs, summaries)
