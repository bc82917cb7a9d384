"""A second kind of generator (``L1Conv`` of conftest.py) in the generative methods and export.

Registering it is all it takes: ``separate`` pre-trains and uses it, ``genseg`` feeds the
hypergradient back into its weights and resumes bit for bit, and its run exports pairs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from genseg.checkpoint import load_checkpoint
from genseg.config import GeneratorConfig, RunConfig
from genseg.generation import generate_pairs
from genseg.runs import RunPaths, load_config
from genseg.training import train


def _config(tiny_config: Callable[..., RunConfig], root: Path, method: str, **options: Any) -> RunConfig:
    config = tiny_config(root, method, options=options)
    return replace(config, generator=GeneratorConfig(name="l1conv", width=4, lr=1e-2, pretrain_iterations=3))


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_its_settings_round_trip_through_a_flat_config_section() -> None:
    config = RunConfig(generator=GeneratorConfig(name="l1conv", width=4))
    assert config.to_dict()["generator"] == {"name": "l1conv", "width": 4, "lr": 2e-4, "pretrain_iterations": 1000}
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_separate_pretrains_it_and_keeps_it_frozen(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    run = tmp_path / "separate"
    train(_config(tiny_config, tiny_phantom, "separate"), run, progress=False)

    assert load_config(RunPaths(run)).generator.name == "l1conv"
    pretrained = load_checkpoint(RunPaths(run).pretrain)["synthesis"]
    assert pretrained["pretrained_steps"] == 3
    assert _same(load_checkpoint(run / "final.pt")["generator"], pretrained["generator"])
    assert "loss_synthetic" in (run / "history.csv").read_text().splitlines()[0]
    written = generate_pairs(run, tiny_phantom / "masks", tmp_path / "pairs", n=2)
    assert [path.name for path in written] == ["syn_0000.png", "syn_0001.png"]


def test_genseg_feeds_the_hypergradient_into_its_weights_and_resumes_bit_for_bit(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path,
    kill_run: Callable[[RunConfig, Path, int], None],
) -> None:
    config = _config(tiny_config, tiny_phantom, "genseg", upper="generator")
    train(config, tmp_path / "whole", progress=False)
    header = (tmp_path / "whole" / "history.csv").read_text().splitlines()[0].split(",")
    assert {"upper_loss", "l1"} <= set(header)  # upper steps ran, and its own training step beside them
    final = load_checkpoint(tmp_path / "whole" / "final.pt")["generator"]
    assert not _same(final, load_checkpoint(RunPaths(tmp_path / "whole").pretrain)["synthesis"]["generator"])

    kill_run(config, tmp_path / "killed", 4)  # killed in iteration 5, an upper step
    train(config, tmp_path / "killed", resume=True, progress=False)
    resumed = load_checkpoint(tmp_path / "killed" / "final.pt")
    assert _same(resumed["generator"], final)
    assert _same(resumed["segmenter"], load_checkpoint(tmp_path / "whole" / "final.pt")["segmenter"])


def test_the_arch_upper_level_asks_for_architecture_weights_it_lacks(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="architecture weights A, but the generator has none"):
        train(_config(tiny_config, tiny_phantom, "genseg", upper="arch"), tmp_path / "arch", progress=False)
