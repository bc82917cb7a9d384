"""The compositing generator in the generative methods: ``copypaste``, ``separate``, ``genseg``,
and GenSeg's selection of pairs from a larger pool."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from genseg.checkpoint import load_checkpoint
from genseg.config import RunConfig
from genseg.methods import create_method
from genseg.run_data import load_run_data
from genseg.runs import RunPaths
from genseg.runtime import seed_everything
from genseg.stepper import SegmenterStepper
from genseg.training import build_context, train

KillRun = Callable[[RunConfig, Path, int], None]
COMPOSITE = {"name": "composite"}


@dataclass
class SyntheticCounter(SegmenterStepper):
    """A stepper that records how many synthetic pairs each of its steps takes."""

    synthetic_pairs: list[int] = field(default_factory=list)

    def step(self, images: Tensor, masks: Tensor, synthetic: tuple[Tensor, Tensor] | None = None,
             synthetic_weights: Tensor | None = None) -> dict[str, float]:
        self.synthetic_pairs.append(0 if synthetic is None else synthetic[0].shape[0])
        return super().step(images, masks, synthetic, synthetic_weights)


def _method(config: RunConfig, run: Path) -> Any:
    seed_everything(config.train.seed)
    context = build_context(config, load_run_data(config, RunPaths(run)), torch.device("cpu"), progress=False)
    context = replace(context, stepper=SyntheticCounter(**vars(context.stepper)))
    return create_method(config.method.name, context)


def test_copypaste_adds_composites_at_a_fixed_appearance(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    method = _method(tiny_config(tiny_phantom, "copypaste"), tmp_path / "run")
    start = [p.detach().clone() for p in method.synthesis.generator.weight_parameters()]
    method.prepare(tmp_path / "run")
    scalars = [method.step(i) for i in range(3)]
    assert all("loss_synthetic" in s for s in scalars)
    assert method.context.stepper.synthetic_pairs == [2, 2, 2]  # the synthetic batch
    assert all(torch.equal(p, s) for p, s in zip(method.synthesis.generator.weight_parameters(), start))
    assert not RunPaths(tmp_path / "run").pretrain.exists()  # nothing is trained before the first step


@pytest.mark.parametrize(("method", "options"), [
    ("separate", {}),
    ("genseg", {}),  # upper = auto: the composite has no architecture weights, so its appearance
    ("genseg", {"upper": "pairs", "candidates": 2, "hypergradient": "darts"}),
], ids=["separate", "genseg-auto", "genseg-select"])
def test_composite_runs_resume_bit_for_bit(method: str, options: dict[str, Any], tiny_phantom: Path,
                                          tiny_config: Callable[..., RunConfig], tmp_path: Path,
                                          kill_run: KillRun) -> None:
    config = tiny_config(tiny_phantom, method, generator=COMPOSITE, options=options)
    whole = train(config, tmp_path / "whole", progress=False).run_dir
    kill_run(config, tmp_path / "killed", 3)  # in iteration 4, after the checkpoint of iteration 2
    train(config, tmp_path / "killed", resume=True, progress=False)
    resumed, uninterrupted = load_checkpoint(tmp_path / "killed" / "final.pt"), load_checkpoint(whole / "final.pt")
    for part in ("segmenter", "generator"):
        assert resumed[part].keys() == uninterrupted[part].keys()
        assert all(torch.equal(resumed[part][key], uninterrupted[part][key]) for key in resumed[part]), part
    pretrained = load_checkpoint(RunPaths(whole).pretrain)["synthesis"]["generator"]
    moved = any(not torch.equal(uninterrupted["generator"][key], pretrained[key]) for key in pretrained)
    assert moved == (method == "genseg")  # separate freezes the appearance; genseg keeps training it


def test_selection_steps_on_at_most_a_synthetic_batch_from_a_larger_pool(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    config = tiny_config(tiny_phantom, "genseg", generator=COMPOSITE,
                         options={"upper": "pairs", "candidates": 3, "hypergradient": "darts", "every": 1})
    method = _method(config, tmp_path / "run")
    method.prepare(tmp_path / "run")
    scalars = [method.step(i) for i in range(4)]
    pairs = method.context.stepper.synthetic_pairs
    batch = config.method.settings.synthetic_batch_size
    assert len(pairs) == 4 and all(count <= batch for count in pairs)  # of a pool of 6
    assert all(0.0 <= s["pairs_kept"] <= 1.0 for s in scalars)


def test_selection_needs_the_pair_weights() -> None:
    from genseg.config import MethodConfig

    with pytest.raises(ValueError, match="candidates = 4 selects .* upper = 'pairs'"):
        MethodConfig("genseg", upper="arch", candidates=4)
