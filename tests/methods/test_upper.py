"""GenSeg's upper-level variables: what the per-pair weights do with their hypergradient.

Their hypergradient against a numerical derivative: tests/test_mlo.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from genseg.checkpoint import load_checkpoint
from genseg.config import RunConfig
from genseg.methods.upper import LearnedGamma, PairWeights, pair_weights
from genseg.training import train


def test_pairs_that_would_hurt_get_no_weight_and_the_rest_average_one() -> None:
    assert torch.equal(pair_weights(torch.tensor([-1.0, 2.0, -3.0, 0.5])), torch.tensor([1.0, 0.0, 3.0, 0.0]))
    assert torch.equal(pair_weights(torch.tensor([1.0, 2.0])), torch.zeros(2))  # no pair helps: none counts
    variable = PairWeights()
    variable.tensors(2)
    assert variable.step_weights() is None  # before its hypergradient, the step is not weighted
    variable.apply([torch.tensor([-0.2, -0.6])])
    assert torch.allclose(variable.step_weights(), torch.tensor([0.5, 1.5]))


@pytest.mark.parametrize("upper", ["arch+pairs", "gamma"])
def test_genseg_with_weighing_variables_trains_and_resumes_bit_for_bit(
    upper: str, tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path,
    kill_run: Callable[[RunConfig, Path, int], None],
) -> None:
    config = tiny_config(tiny_phantom, "genseg", options={"upper": upper})
    train(config, tmp_path / "whole", progress=False)
    history = (tmp_path / "whole" / "history.csv").read_text()
    assert ("pairs_kept" in history.splitlines()[0]) == ("pairs" in upper)
    kill_run(config, tmp_path / "killed", 4)  # killed in iteration 5, an upper step
    train(config, tmp_path / "killed", resume=True, progress=False)
    whole, resumed = (load_checkpoint(tmp_path / run / "final.pt") for run in ("whole", "killed"))
    for part in ("segmenter", "generator"):
        assert _same_tensors(whole[part], resumed[part]), part
    states = [load_checkpoint(tmp_path / run / "last.pt")["method"]["upper"] for run in ("whole", "killed")]
    assert _same_tensors(*states)
    if upper == "gamma":
        assert states[0]["gamma"]["log_scale"].abs().item() > 0  # the learned gamma moved


def test_learned_gamma_stays_positive_and_weighs_every_step() -> None:
    gamma = LearnedGamma(lr=0.5)
    for _ in range(5):
        gamma.tensors(4)
        gamma.apply([torch.tensor([10.0])])  # the validation loss would rise with more synthetic weight
    weight = gamma.step_weights()
    assert 0 < weight.item() < 1 and gamma.step_weights() is not None  # positive, and not used up


def _same_tensors(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_tensors(a[key], b[key]) for key in a)
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.equal(a, b)
    return a == b
