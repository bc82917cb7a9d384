"""A second kind of generator, registered for every test here: what adding a kind takes.

``L1Conv`` is one class implementing :class:`~genseg.generators.base.MaskToImage` (two 3 x 3
convolutions trained with an L1 loss: no critic, no architecture weights), and the fixture below
is its one registry line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genseg.config import GeneratorConfig
from genseg.generators.base import MaskConditioned
from genseg.generators.masks import encode_masks, image_to_generator_space, mask_channels, synthesize
from genseg.plugins import GENERATORS


@dataclass
class L1ConvOptions:
    """Its one setting: the width of the hidden layer."""

    width: int = 8


class L1Conv(MaskConditioned):
    """Two 3 x 3 convolutions from the mask encoding to the image, trained by Adam on the L1 loss."""

    Options = L1ConvOptions

    def __init__(self, settings: GeneratorConfig, num_classes: int, image_channels: int,
                 device: torch.device | str = "cpu", spatial_dims: int = 2) -> None:
        width = L1ConvOptions(**settings.options).width
        self.num_classes = num_classes
        self.network = nn.Sequential(nn.Conv2d(mask_channels(num_classes), width, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(width, image_channels, 3, padding=1), nn.Tanh()).to(device)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=settings.lr)

    def generate(self, masks: Tensor) -> Tensor:
        return synthesize(self.network, masks, self.num_classes)

    def arch_parameters(self) -> list[nn.Parameter]:
        return []

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.network.parameters())

    def train_step(self, images: Tensor, masks: Tensor,
                   before_step: Callable[[], None] | None = None) -> dict[str, float]:
        fake = self.network(encode_masks(masks, self.num_classes))
        loss = F.l1_loss(fake, image_to_generator_space(images))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if before_step is not None:
            before_step()
        self.optimizer.step()
        return {"l1": loss.item()}

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.network.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["generator"])
        self.optimizer.load_state_dict(state["optimizer"])


@pytest.fixture(autouse=True)
def _second_kind() -> Iterator[None]:
    GENERATORS.register("l1conv", L1Conv, L1ConvOptions)
    yield
    GENERATORS.unregister("l1conv")
