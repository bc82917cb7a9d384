"""pix2pix's data-efficient options in a run: recorded only when set, checked, resumed bit for bit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from genseg.checkpoint import load_checkpoint
from genseg.config import GeneratorConfig, MethodConfig, RunConfig
from genseg.runs import pretraining_key
from genseg.training import train

DATA_EFFICIENT = {"diffaugment": True, "spade": True, "noise": 2, "lambda_ms": 1.0}


def test_options_left_off_leave_config_json_and_the_pretraining_key_as_they_were() -> None:
    before = {"name": "pix2pix", "ngf": 32, "ndf": 32, "searchable": True, "lambda_l1": 100.0, "lr": 2e-4,
              "pretrain_iterations": 1000}  # the section written before these options existed
    assert RunConfig(generator=GeneratorConfig("pix2pix")).to_dict()["generator"] == before
    assert GeneratorConfig("pix2pix", spade=False, noise=0) == GeneratorConfig("pix2pix")
    separate = RunConfig(generator=GeneratorConfig("pix2pix"), method=MethodConfig("separate"))
    explicit = RunConfig(generator=GeneratorConfig("pix2pix", diffaugment=False), method=separate.method)
    assert pretraining_key(explicit) == pretraining_key(separate)
    spade = RunConfig(generator=GeneratorConfig("pix2pix", spade=True), method=separate.method)
    assert pretraining_key(spade) != pretraining_key(separate)


def test_options_that_are_set_round_trip_through_config_json() -> None:
    config = RunConfig(generator=GeneratorConfig("pix2pix", **DATA_EFFICIENT))
    assert config.to_dict()["generator"].items() >= DATA_EFFICIENT.items()
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(("options", "named"), [({"lambda_ms": 1.0}, "set noise > 0"), ({"noise": -1}, "noise")])
def test_bad_options_are_refused(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        GeneratorConfig("pix2pix", **options)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[key], b[key]) if isinstance(a[key], torch.Tensor) else a[key] == b[key] for key in a)


def test_genseg_with_every_option_steers_A_and_resumes_bit_for_bit(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path,
    kill_run: Callable[[RunConfig, Path, int], None],
) -> None:
    config = tiny_config(tiny_phantom, "genseg", generator=DATA_EFFICIENT, options={"upper": "arch"})
    train(config, tmp_path / "whole", progress=False)
    whole = load_checkpoint(tmp_path / "whole" / "final.pt")
    pretrained = load_checkpoint(tmp_path / "whole" / "pretrain.pt")["synthesis"]["generator"]
    alphas = [key for key in whole["generator"] if key.endswith(".alpha")]
    assert alphas and any(not torch.equal(whole["generator"][k], pretrained[k]) for k in alphas)  # A moved

    kill_run(config, tmp_path / "killed", 4)  # killed in iteration 5, an upper step
    train(config, tmp_path / "killed", resume=True, progress=False)
    resumed = load_checkpoint(tmp_path / "killed" / "final.pt")
    assert _same(resumed["generator"], whole["generator"]) and _same(resumed["segmenter"], whole["segmenter"])
