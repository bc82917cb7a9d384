"""Every registered segmenter goes through the same checks (shapes, gradients, save/load)."""

from __future__ import annotations

import pytest
import torch

from genseg.errors import ConfigError
from genseg.losses import segmentation_loss
from genseg.plugins import SEGMENTERS
from genseg.segmenters import check_input_size, create_segmenter

SIZE = 32  # the smallest side every registered segmenter accepts
CLASSES = 3
# Narrow variants keep the file fast; a segmenter missing here is tested with its defaults.
SMALL_OPTIONS = {"unet": {"base": 4}, "attention_unet": {"base": 4}}


def _make(name: str, in_channels: int = 1) -> torch.nn.Module:
    return create_segmenter(name, in_channels=in_channels, classes=CLASSES, **SMALL_OPTIONS.get(name, {}))


def _batch(in_channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.rand(2, in_channels, SIZE, SIZE)
    labels = torch.randint(0, CLASSES, (2, SIZE, SIZE))
    return images, labels


@pytest.mark.parametrize("name", SEGMENTERS.names)
class TestSegmenter:
    """The shared tester: what the training loop and the hypergradient rely on."""

    @pytest.mark.parametrize("in_channels", [1, 3])
    def test_output_shape(self, name: str, in_channels: int) -> None:
        check_input_size(name, SIZE)
        images, _ = _batch(in_channels)
        logits = _make(name, in_channels)(images)
        assert logits.shape == (2, CLASSES, SIZE, SIZE)
        assert logits.dtype == torch.float32

    def test_gradients_reach_every_parameter(self, name: str) -> None:
        model = _make(name).train()
        images, labels = _batch()
        segmentation_loss(model(images), labels).backward()
        for parameter_name, parameter in model.named_parameters():
            if parameter.requires_grad:
                assert parameter.grad is not None, f"{name}: no gradient reaches {parameter_name}"
                assert torch.isfinite(parameter.grad).all(), f"{name}: non-finite gradient in {parameter_name}"

    def test_twice_differentiable(self, name: str) -> None:
        # The GenSeg hypergradient differentiates the parameter gradient w.r.t. the (synthetic) input.
        model = _make(name).train()
        images, labels = _batch()
        images.requires_grad_(True)
        loss = segmentation_loss(model(images), labels)
        grads = torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad], create_graph=True)
        (mixed,) = torch.autograd.grad(sum(g.square().sum() for g in grads), images)
        assert torch.isfinite(mixed).all()
        assert mixed.abs().sum() > 0

    def test_state_dict_round_trip(self, name: str, tmp_path) -> None:
        model = _make(name).eval()
        images, _ = _batch()
        path = tmp_path / "weights.pt"
        torch.save(model.state_dict(), path)
        torch.manual_seed(1)  # a differently initialized twin
        twin = _make(name)
        twin.load_state_dict(torch.load(path, weights_only=True))
        with torch.no_grad():
            assert torch.equal(model(images), twin.eval()(images))

    def test_rejects_invalid_sizes(self, name: str) -> None:
        for size in (SIZE + 8, 16, (SIZE, SIZE + 8)):
            with pytest.raises(ValueError, match=name):
                check_input_size(name, size)


def test_available_segmenters() -> None:
    assert SEGMENTERS.names == ("unet", "attention_unet", "deeplabv3plus", "segformer")


def test_unknown_name_lists_names_and_suggests() -> None:
    with pytest.raises(ValueError, match=r"'unte'; available: unet, attention_unet, deeplabv3plus, segformer; "
                                         r"did you mean 'unet'\?"):
        create_segmenter("unte", in_channels=1, classes=2)
    with pytest.raises(ValueError, match="did you mean 'segformer'"):
        check_input_size("segformr", 64)


def test_unknown_option_is_named() -> None:
    with pytest.raises(ValueError, match=r"\['width'\] for segmenter 'unet'; accepted: base, norm"):
        create_segmenter("unet", in_channels=1, classes=2, width=8)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("unet", {"base": 0}, "'base'"),
        ("deeplabv3plus", {"encoder": "resnet19"}, r"'encoder'.*did you mean 'resnet18'"),
    ],
)
def test_invalid_option_value_is_named(name: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_segmenter(name, in_channels=1, classes=2, **options)


def test_unet_base_sets_widths() -> None:
    narrow, wide = (sum(p.numel() for p in create_segmenter("unet", 1, 2, base=b).parameters()) for b in (4, 8))
    assert 3.5 < wide / narrow < 4.1  # conv weights scale with the width squared


def test_classes_must_count_background() -> None:
    with pytest.raises(ValueError, match="background"):
        create_segmenter("unet", in_channels=1, classes=1)


@pytest.mark.parametrize("name", ["unet", "attention_unet"])
def test_volume_segmenters_map_volumes_to_volume_logits(name: str) -> None:
    model = create_segmenter(name, in_channels=1, classes=3, spatial_dims=3, base=4)
    assert model(torch.rand(1, 1, 32, 32, 48)).shape == (1, 3, 32, 32, 48)


def test_a_2d_only_segmenter_asked_for_volumes_names_the_ones_that_can() -> None:
    with pytest.raises(ConfigError, match="'segformer' is 2D only; for volumes use one of unet, attention_unet"):
        create_segmenter("segformer", in_channels=1, classes=2, spatial_dims=3)
