"""Run configuration: defaults, validation on construction, the config.json round trip."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from genseg.config import (
    DataConfig,
    GeneratorConfig,
    MethodConfig,
    RunConfig,
    SegmenterConfig,
    TrainConfig,
    default_n_val,
    parse_settings,
)


def test_defaults_are_valid() -> None:
    config = RunConfig()
    assert config.data.n_val == default_n_val(config.data.budget) == 2
    assert config.data.n_train + config.data.n_val == config.data.budget
    assert RunConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("budget", "n_val"),
    [(3, 1), (9, 2), (35, 7), (150, 30), (10, 2), (25, 5), (50, 10), (200, 40), (5, 1), (20, 4), (2, 1)],
)
def test_default_n_val_matches_the_benchmark_budgets(budget: int, n_val: int) -> None:
    assert default_n_val(budget) == n_val
    assert DataConfig(budget=budget).n_val == n_val


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        (DataConfig, "budget", 1),
        (DataConfig, "n_val", 0),
        (DataConfig, "n_val", 9),  # the whole default budget: nothing left to train on
        (DataConfig, "size", 48),
        (DataConfig, "size", 0),
        (DataConfig, "axis", 3),
        (DataConfig, "layout", "bids"),
        (DataConfig, "test_fraction", 0.0),
        (DataConfig, "test_fraction", 1.0),
        (GeneratorConfig, "ngf", 2),
        (GeneratorConfig, "ndf", 3),
        (GeneratorConfig, "lambda_l1", -1.0),
        (GeneratorConfig, "lr", 0.0),
        (GeneratorConfig, "pretrain_iterations", -1),
        (TrainConfig, "iterations", 0),
        (TrainConfig, "batch_size", 0),
        (TrainConfig, "lr", -1e-3),
        (TrainConfig, "val_every", 0),
        (TrainConfig, "checkpoint_every", 0),
        (TrainConfig, "ema_decay", 1.0),
        (TrainConfig, "ema_decay", -0.1),
        (TrainConfig, "device", "tpu"),
    ],
)
def test_invalid_values_raise_naming_the_field(section: type, field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        section(**{field: value})


@pytest.mark.parametrize(
    ("method", "field", "value"),
    [
        ("genseg", "upper", "everything"),
        ("genseg", "hypergradient", "neumann"),
        ("genseg", "unroll_steps", 0),
        ("genseg", "every", 0),
        ("genseg", "arch_lr", 0.0),
        ("genseg", "generator_feedback", -1.0),
        ("genseg", "gamma", -0.5),
        ("genseg", "val_views", 0),
        ("separate", "synthetic_batch_size", 0),
        ("copypaste", "gamma", -1.0),
        ("semisup", "teacher_decay", 1.0),
        ("semisup", "ramp_up", 2.0),
    ],
)
def test_invalid_method_settings_raise_naming_the_field(method: str, field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        MethodConfig(method, **{field: value})


def test_a_setting_the_method_does_not_have_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="unknown method .mixup."):
        MethodConfig("mixup")
    refused = r"unknown setting\(s\) \['gamma'\] for method 'augment'; accepted: none"
    with pytest.raises(ValueError, match=refused) as error:
        MethodConfig("augment", gamma=1.0)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="upper"):
        MethodConfig("separate", upper="arch")  # GenSeg's, not separate's
    assert MethodConfig("separate", gamma=0.5).settings.gamma == 0.5
    assert MethodConfig("genseg").settings.every == 8 and MethodConfig("augment").settings is None


def test_darts_unrolls_one_step_only() -> None:
    assert MethodConfig("genseg", hypergradient="exact", unroll_steps=3).settings.unroll_steps == 3
    with pytest.raises(ValueError, match="unroll_steps"):
        MethodConfig("genseg", hypergradient="darts", unroll_steps=2)


def test_round_trip_through_json() -> None:
    config = RunConfig(
        data=DataConfig(root=Path("/data/lungs"), split_file=Path("splits/lungs.json"), budget=35, size=64, axis=2),
        segmenter=SegmenterConfig(name="unet", options={"base": 8}),
        generator=GeneratorConfig("pix2pix", ngf=16, searchable=False, pretrain_iterations=10),
        method=MethodConfig("genseg", upper="both", hypergradient="darts", every=3, val_views=4),
        train=TrainConfig(iterations=20, ema_decay=0.99, seed=2, device="auto"),
    )
    restored = RunConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    assert isinstance(restored.data.root, Path) and isinstance(restored.data.split_file, Path)
    assert restored.data.n_val == 7  # filled in from the budget and kept as given from then on


def test_a_config_written_before_generator_kinds_loads_and_writes_back_the_same() -> None:
    """pix2pix's settings sat beside the generic ones, as they still do: old runs resume, and their
    generator pre-trainings keep their key (a hash of this dict)."""
    values = RunConfig().to_dict()
    values["generator"] = {"name": "pix2pix", "ngf": 16, "ndf": 32, "searchable": False, "lambda_l1": 50.0,
                           "lr": 0.0002, "pretrain_iterations": 1000}
    config = RunConfig.from_dict(json.loads(json.dumps(values)))
    assert config.generator.options == {"ngf": 16, "ndf": 32, "searchable": False, "lambda_l1": 50.0}
    assert json.dumps(config.to_dict()) == json.dumps(values)


def test_generator_settings_of_the_kind_are_completed_with_its_defaults() -> None:
    assert GeneratorConfig("pix2pix", ngf=16) == GeneratorConfig("pix2pix", options={"ngf": 16, "ndf": 32}) \
        != GeneratorConfig("pix2pix")
    assert GeneratorConfig("pix2pix", ngf=16).options == {"ngf": 16, "ndf": 32, "searchable": True, "lambda_l1": 100.0}


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"train": {"iters": 5}}, "iters"),
        ({"method": {"name": "genseg", "upper": "arch", "lr_arch": 0.1}}, "lr_arch"),
        ({"optimizer": {"lr": 0.1}}, "optimizer"),
    ],
)
def test_unknown_keys_are_rejected(values: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RunConfig.from_dict(values)


def test_values_read_back_are_validated() -> None:
    values = RunConfig().to_dict()
    values["data"]["budget"] = 1
    with pytest.raises(ValueError, match="budget"):
        RunConfig.from_dict(values)


def test_data_paths_are_made_absolute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = DataConfig(root="data", split_file="split.json")
    assert config.root == tmp_path / "data" and config.split_file == tmp_path / "split.json"


def test_upper_level_names_join_variables_with_plus() -> None:
    from genseg.methods.options import GenSegOptions

    assert GenSegOptions(upper="arch+generator").upper_names() == GenSegOptions(upper="both").upper_names() \
        == ["arch", "generator"]
    assert GenSegOptions(upper="generator").upper_names() == ["generator"]
    assert GenSegOptions(upper="none").upper_names() == []
    assert GenSegOptions().upper_names(has_architecture=True) == ["arch"]  # auto: the paper's A on pix2pix
    assert GenSegOptions().upper_names(has_architecture=False) == ["generator"]
    for bad in ("arch+arch", "beta", "arch+", ""):
        with pytest.raises(ValueError, match="upper must be"):
            GenSegOptions(upper=bad)


def test_key_value_settings_are_read_as_json_values() -> None:
    assert parse_settings(["spade=true", "noise=8", "lambda_ms=0.5", "name=pix2pix"]) == {
        "spade": True, "noise": 8, "lambda_ms": 0.5, "name": "pix2pix"}
    for bad in ("spade", "=true"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_settings([bad])


def _former_layout(method: str, mlo: dict[str, Any], **train: Any) -> dict[str, Any]:
    """A config.json as genseg wrote it before the method section: the name in train, an mlo section."""
    values = RunConfig().to_dict()
    del values["method"]
    values["train"].update(method=method, **train)
    return {**values, "mlo": mlo}


def test_a_config_written_before_the_method_section_loads_into_it() -> None:
    """GenSeg's settings and synthetic_batch_size move into the method section; those the method
    does not have (GenSeg's, under augment) had no effect on it and are dropped."""
    mlo = {"upper": "pairs", "hypergradient": "exact", "unroll_steps": 1, "every": 4, "arch_lr": 0.003,
           "generator_feedback": 0.5, "gamma": 0.5, "val_views": 2, "candidates": 3}
    genseg = RunConfig.from_dict(json.loads(json.dumps(_former_layout("genseg", mlo, synthetic_batch_size=1))))
    assert genseg.method == MethodConfig("genseg", **{**mlo, "synthetic_batch_size": 1})
    assert RunConfig.from_dict(_former_layout("separate", mlo)).method.options == {
        "gamma": 0.5, "synthetic_batch_size": None}  # saved before the setting existed: the whole batch
    assert RunConfig.from_dict(_former_layout("augment", mlo)).method == MethodConfig("augment")
    assert RunConfig.from_dict(RunConfig().to_dict()).method == MethodConfig("augment")


def test_a_run_saved_before_a_setting_existed_keeps_what_it_trained_with() -> None:
    """Runs saved before train.average_last kept the final weights only; new runs average. Runs saved
    before data.dims trained on images or slices; new ones leave it to the plan."""
    saved = RunConfig().to_dict()
    del saved["train"]["average_last"], saved["data"]["dims"]
    assert RunConfig.from_dict(saved).train.average_last == 0.0
    assert RunConfig.from_dict(saved).data.dims == 2
    assert RunConfig.from_dict(RunConfig().to_dict()).train.average_last == TrainConfig().average_last
    assert RunConfig.from_dict(RunConfig().to_dict()).data.dims is None


@pytest.mark.parametrize(("values", "message"), [
    ([], "a config is a JSON object of sections, got list"),
    ({"train": None}, "config section 'train' must be an object of settings, got null"),
    ({"train": {"iterations": 4.5}}, "train.iterations must be int, got 4.5"),
    ({"train": {"iterations": True}}, "train.iterations must be int, got true"),  # silently 1 before
    ({"data": {"size": "64"}}, 'data.size must be int or None, got "64"'),
    ({"method": {"name": "genseg", "every": "8"}}, 'method.every must be int, got "8"'),
    ({"method": {"name": 3}}, "method.name must be str, got 3"),
    ({"mlo": []}, "config section 'mlo' must be an object of settings, got []"),
])
def test_a_config_file_of_the_wrong_shape_or_types_is_one_clear_error(values: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        RunConfig.from_dict(values)  # type: ignore[arg-type]
    assert RunConfig.from_dict({"train": {"lr": 1}, "method": {"name": "separate", "synthetic_batch_size": None}}
                               ).train.lr == 1  # an int is a float, None where the setting allows it


def test_a_negative_seed_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="seed must be a whole number from 0"):
        TrainConfig(seed=-1)
