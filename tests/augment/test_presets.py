"""Named augmentation presets."""

from __future__ import annotations

import pytest
import torch

from genseg.augment import augmentation_ranges, sample_intensity
from genseg.config import TrainConfig
from genseg.plugins import AUGMENTATIONS


def test_the_config_accepts_every_preset_and_names_the_others() -> None:
    for name in AUGMENTATIONS:
        assert TrainConfig(augmentation=name).augmentation == name
    with pytest.raises(ValueError, match="unknown augmentation 'nnUnet'; available: standard, nnunet; did you mean"):
        TrainConfig(augmentation="nnUnet")


def test_nnunet_preset_rotates_over_the_circle_on_some_samples_only() -> None:
    geometric, intensity = augmentation_ranges("nnunet")
    assert geometric.rotate == (-180.0, 180.0) and geometric.probability < 1.0
    params = sample_intensity(400, torch.Generator().manual_seed(0), intensity)
    untouched = (params.contrast == 1) & (params.gamma == 1) & (params.noise_std == 0) & (params.brightness == 0)
    assert 0.3 < untouched.float().mean().item() < 0.7


def test_unknown_preset_is_named() -> None:
    with pytest.raises(ValueError, match="unknown augmentation 'strong'"):
        augmentation_ranges("strong")
