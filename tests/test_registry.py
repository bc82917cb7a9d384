"""One registry type for every plug-in: adding one is a class and one line, and reading a config needs no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from torch import Tensor, nn

from genseg.augment import GeometricRanges, IntensityRanges
from genseg.config import MethodConfig, RunConfig, SegmenterConfig
from genseg.evaluation import load_segmenter
from genseg.methods.options import GenSegOptions
from genseg.methods.supervised import Augment
from genseg.methods.upper import LearnedGamma
from genseg.plugins import AUGMENTATIONS, EXECUTORS, METHODS, SEGMENTERS, UPPER_VARIABLES
from genseg.registry import Registry
from genseg.training import train


@dataclass(frozen=True)
class TinyConvOptions:
    size_multiple = 1
    min_size = 8
    width: int = 4


def build_tiny_conv(in_channels: int, classes: int, options: TinyConvOptions) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, options.width, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(options.width, classes, 1))


@dataclass
class RepeatOptions:
    repeats: int = 2

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")


class AugmentRepeated(Augment):
    """Several augmented steps per iteration: a method that is one class, with its own setting."""

    name = "augment_repeated"

    def step(self, iteration: int) -> dict[str, float]:
        for _ in range(self.context.config.method.settings.repeats):
            scalars = super().step(iteration)
        return scalars


class HalfGamma(LearnedGamma):
    """An upper-level variable that is one class: the learned gamma, starting from half."""

    @classmethod
    def from_settings(cls, generator: object, settings: GenSegOptions) -> HalfGamma:
        variable = cls(settings.arch_lr)
        variable.log_scale.data.fill_(-0.693)
        return variable


@dataclass
class InlineExecutor:
    """Runs every task in this process, one after the other."""

    def execute(self, tasks: list) -> Iterator[tuple]:
        from genseg.benchmark.runner import execute_run

        for task in tasks:
            yield task, execute_run(task)


@pytest.fixture
def registered() -> Iterator[None]:
    additions = [(SEGMENTERS, "tiny_conv", build_tiny_conv, TinyConvOptions),
                 (METHODS, "augment_repeated", AugmentRepeated, RepeatOptions),
                 (UPPER_VARIABLES, "half_gamma", HalfGamma, None),
                 (AUGMENTATIONS, "flips_only", (GeometricRanges(pad=(0.0, 0.0), scale=(1.0, 1.0),
                                                                translate=(0.0, 0.0), rotate=(0.0, 0.0),
                                                                shear=(0.0, 0.0)), IntensityRanges(probability=0.0)),
                  None),
                 (EXECUTORS, "inline", InlineExecutor, None)]
    for registry, name, target, options in additions:
        registry.register(name, target, options)
    yield
    for registry, name, _, _ in additions:
        registry.unregister(name)


def test_a_segmenter_a_method_and_a_preset_registered_from_outside_train_a_run(
    registered: None, tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    config = tiny_config(tiny_phantom, "augment_repeated", iterations=2, options={"repeats": 3})
    config.segmenter = SegmenterConfig("tiny_conv", {"width": 3})
    config.train.augmentation = "flips_only"
    train(config, tmp_path / "run", progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["method"], saved["segmenter"]["name"], saved["train"]["augmentation"]) == (
        {"name": "augment_repeated", "repeats": 3}, "tiny_conv", "flips_only")
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        MethodConfig("augment_repeated", repeats=0)
    with pytest.raises(ValueError, match=r"\['gamma'\] for method 'augment_repeated'; accepted: repeats"):
        RunConfig.from_dict({**saved, "method": {"name": "augment_repeated", "gamma": 1.0}})
    model = load_segmenter(tmp_path / "run").model
    assert isinstance(model[0], nn.Conv2d) and model[0].out_channels == 3
    assert GenSegOptions(upper="half_gamma+arch").upper_names() == ["half_gamma", "arch"]
    assert EXECUTORS.load("inline") is InlineExecutor


def test_an_upper_level_variable_registered_from_outside_is_built_from_the_settings(registered: None) -> None:
    from genseg.methods.upper import upper_variables

    (variable,) = upper_variables(None, GenSegOptions(upper="half_gamma"))  # type: ignore[arg-type]
    assert isinstance(variable, HalfGamma) and float(variable.log_scale.detach().exp()) == pytest.approx(0.5, abs=1e-3)


def test_unknown_names_and_settings_are_named_with_the_registered_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown method 'agument'; available: supervised, augment, .*"
                                         r"did you mean 'augment'\?"):
        RunConfig.from_dict({"method": {"name": "agument"}})
    with pytest.raises(ValueError, match=r"\['depth'\] for segmenter 'unet'; accepted: base, norm"):
        SegmenterConfig("unet", {"depth": 3})
    with pytest.raises(ValueError, match="upper-level variable"):
        UPPER_VARIABLES.entry("archh")


def test_a_name_is_registered_once_and_paths_name_a_module_and_an_attribute() -> None:
    registry = Registry("thing", {"a": "genseg.registry:Registry"})
    assert registry.load("a") is Registry and registry.options_class("a") is None
    with pytest.raises(ValueError, match="thing 'a' is registered already"):
        registry.register("a", "genseg.registry:Entry")
    with pytest.raises(ValueError, match="must be 'module:attribute'"):
        registry.register("b", "genseg.registry.Entry")


def test_reading_a_config_and_the_cli_import_no_torch() -> None:
    """Building any RunConfig imported torch and pix2pix: config.py checked options against the implementations."""
    code = ("import sys, genseg.config, genseg.cli; genseg.config.RunConfig(); "
            "genseg.config.RunConfig.from_dict({'generator': {'name': 'composite', 'pastes': 2}}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'monai', 'segmentation_models_pytorch')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_registry_loads_every_entry() -> None:
    for registry in (METHODS, UPPER_VARIABLES, SEGMENTERS, AUGMENTATIONS, EXECUTORS):
        for name in registry:
            assert registry.load(name) is not None, (registry.kind, name)
    assert isinstance(SEGMENTERS.load("unet")(1, 2, SEGMENTERS.check_options("unet", {"base": 4}))(
        Tensor(1, 1, 32, 32).uniform_()), Tensor)
