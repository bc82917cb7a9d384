"""A compositing generator: synthetic pairs that carry real texture, pasted from the budget's pairs.

Copy-paste of real foreground is the synthesis with measured gains over strong baselines on
lesion-like targets (TumorCP, Soft-CP, CarveMix on top of nnU-Net): its images look real by
construction, because their texture is real. A pix2pix generator trained on 2-8 pairs cannot
draw a wound; a composite moves a real one.

A synthetic pair (:meth:`Compositor.draw`, then :meth:`Compositor.render`):

1. a target: a training pair under the geometric augmentation T (zero fill, as ``augment``);
2. ``pastes`` times, with probability ``probability``: the foreground of a source pair (any
   training pair, the target's own included) under its own draw of T, moved to a random place of
   the target's host tissue (:func:`host_region`: never on padding; near the target's own
   structures, on pixels coloured like the tissue around them), where at least
   :data:`MIN_INSIDE` of it lands on host tissue (:func:`place`; else the paste is dropped);
3. the image: each pasted footprint's source pixels, colour-adapted, blended over the target
   through a soft alpha edge; then the intensity augmentation of ``augment``. The mask is the
   union: the source's labels inside each footprint, the target's elsewhere.

The appearance is a handful of differentiable parameters (:class:`Appearance`): the alpha
edge's width (a Gaussian feather of sigma px), how far the pasted colours move toward the host
tissue's (``match``, per channel: 0 keeps the source's colours, 1 shifts them by the difference
of the two tissues' means), and a per-channel gain and bias. At their initial values (sigma 1 px,
no matching, gain 1, bias 0) a composite is plain copy-paste, the ``copypaste`` baseline. Its own
training (level 1) is adversarial: a PatchGAN critic learns to tell a composite from its target
without the paste, and the appearance parameters learn to hide the paste from it. GenSeg's
``generator`` upper level moves the same parameters by the validation hypergradient, which flows
through :meth:`Compositor.render`.

Paste count and probability are discrete choices: options, not learned.

Example:
    >>> from genseg.config import GeneratorConfig
    >>> compositor = Compositor(GeneratorConfig("composite"), num_classes=2, image_channels=3)
    >>> draw = compositor.draw(images, masks, 2, torch.Generator().manual_seed(0))  # doctest: +SKIP
    >>> compositor.render(draw).shape  # doctest: +SKIP
    torch.Size([2, 3, 256, 256])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor, nn

from genseg.augment import (
    IntensityParams,
    affine_matrices,
    apply_intensity,
    augment_pairs,
    sample_geometric,
    sample_intensity,
    warp,
)
from genseg.errors import ConfigError
from genseg.generators.base import SyntheticDraw
from genseg.generators.gan import AdversarialState, discriminator_loss, generator_loss
from genseg.generators.masks import encode_masks, image_to_generator_space, mask_channels
from genseg.generators.options import CompositeOptions
from genseg.generators.pix2pix import PatchDiscriminator

if TYPE_CHECKING:
    from genseg.config import GeneratorConfig

MIN_INSIDE = 0.9
"""A paste is dropped unless this share of its footprint lies on the target's host tissue."""
PADDING_LEVEL = 1 / 255
"""Pixels at most this bright in every channel, connected to the border, are padding."""
HOST_Z = 2.5
"""Host tissue: pixels within this many standard deviations (per channel) of the colour of the
ring around the target's own structures."""
NEAR_FRACTION = 0.2
"""Host tissue lies within this share of the side from the target's own structures."""
PLACEMENT_TRIES = 4
"""Positions tried for a paste before it is dropped."""
RING_FRACTION = 0.03
"""The ring around a footprint, whose colour stands for the tissue it sits in: this share of the side."""


class Appearance(nn.Module):
    """The composite's appearance parameters: the alpha edge, colour matching, gain and bias.

    Args:
        channels: image channels.
        feather: initial sigma of the alpha edge, px.
        max_feather: its upper bound, px.
    """

    def __init__(self, channels: int, feather: float = 1.0, max_feather: float = 4.0) -> None:
        super().__init__()
        self.max_feather = max_feather
        self.log_feather = nn.Parameter(torch.tensor([math.log(feather)]))
        self.match = nn.Parameter(torch.zeros(channels))
        self.log_gain = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    @property
    def sigma(self) -> Tensor:
        """The alpha edge's sigma in px, within [0.25, max_feather]."""
        return self.log_feather.exp().clamp(0.25, self.max_feather)

    def alpha(self, footprints: Tensor) -> Tensor:
        """Soft alpha masks (B, 1, H, W) of hard footprints, by a Gaussian blur of width :attr:`sigma`."""
        radius = math.ceil(3 * self.max_feather)
        offsets = torch.arange(-radius, radius + 1, device=footprints.device, dtype=footprints.dtype)
        kernel = torch.exp(-offsets**2 / (2 * self.sigma.to(footprints) ** 2))
        kernel = kernel / kernel.sum()
        padded = F.pad(footprints, (radius, radius, radius, radius), mode="replicate")
        blurred = F.conv2d(F.conv2d(padded, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))
        return blurred.clamp(0.0, 1.0)

    def pasted(self, sources: Tensor, shifts: Tensor) -> Tensor:
        """Source pixels as pasted: moved by ``match`` times the host-minus-source tissue colour
        ``shifts`` (B, C, 1, 1), then scaled by the gain and offset by the bias."""
        view = (1, -1, 1, 1)
        return (sources + self.match.view(view) * shifts) * self.log_gain.exp().view(view) + self.bias.view(view)


def padding_region(images: Tensor) -> Tensor:
    """(B, 1, H, W), of the images' dtype: 1 where a pixel is padding, dark in every channel and connected
    to the border."""
    dark = (images <= PADDING_LEVEL).all(dim=1).cpu().numpy()
    padding = np.zeros_like(dark)
    for i, image in enumerate(dark):
        labels, _ = ndimage.label(image)
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        padding[i] = np.isin(labels, border[border > 0])
    return torch.from_numpy(padding).to(images.device, images.dtype)[:, None]


def dilate(footprints: Tensor, width: int) -> Tensor:
    """(B, 1, H, W) footprints grown by ``width`` px (a square structuring element, separably)."""
    rows = F.max_pool2d(footprints, (2 * width + 1, 1), stride=1, padding=(width, 0))
    return F.max_pool2d(rows, (1, 2 * width + 1), stride=1, padding=(0, width))


def ring(footprints: Tensor, width: int) -> Tensor:
    """(B, 1, H, W): the band ``width`` px wide around each footprint, outside it."""
    return dilate(footprints, width) * (1 - footprints)


def masked_mean(images: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation of ``images`` over ``weights`` (B, 1, H, W), each (B, C, 1, 1);
    zero mean and unit deviation where the weights are all zero."""
    total = weights.sum(dim=(2, 3), keepdim=True)
    mean = (images * weights).sum(dim=(2, 3), keepdim=True) / total.clamp_min(1)
    var = ((images - mean) ** 2 * weights).sum(dim=(2, 3), keepdim=True) / total.clamp_min(1)
    return mean, torch.where(total > 0, var.sqrt(), torch.ones_like(var))


def host_region(images: Tensor, masks: Tensor, content: Tensor) -> Tensor:
    """(B, 1, H, W): where a target can host a pasted structure.

    Inside the content (no padding) and, for a target with structures of its own, near them
    (within :data:`NEAR_FRACTION` of the side) on pixels coloured like the tissue around them
    (within :data:`HOST_Z` standard deviations per channel): lesions on the limb that carries
    one, not on the sheet beside it. The whole content for a target without structures.
    """
    foreground = (masks > 0).to(images.dtype)[:, None]
    side = images.shape[-1]
    around = ring(foreground, max(1, round(RING_FRACTION * side))) * content
    mean, std = masked_mean(images, around)
    similar = (((images - mean) / std.clamp_min(1e-3)).abs() <= HOST_Z).all(dim=1, keepdim=True).to(images.dtype)
    coarse = F.max_pool2d(foreground, 4, ceil_mode=True)  # a wide dilation is cheaper at a quarter of the side
    near = F.interpolate(dilate(coarse, max(1, round(NEAR_FRACTION * side / 4))), scale_factor=4)
    near = near[..., :images.shape[-2], :side]
    has_host = around.sum(dim=(2, 3), keepdim=True) > 0
    return content * torch.where(has_host, torch.maximum(similar * near, foreground), torch.ones_like(similar))


def place(footprints: Tensor, region: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
    """Integer shifts (B, 2) that move each footprint's centre onto a random pixel of its region,
    kept where the moved footprint lies :data:`MIN_INSIDE` on the region, and whether one was found (B,).

    Each footprint gets :data:`PLACEMENT_TRIES` random positions, the first that fits is kept;
    its bounding box always stays inside the image.
    """
    batch, _, height, width = footprints.shape
    shifts = torch.zeros(batch, 2, dtype=torch.long)
    found = torch.zeros(batch, dtype=torch.bool)
    weights = region.flatten(1).cpu()
    for i in range(batch):
        ys, xs = torch.nonzero(footprints[i, 0].cpu(), as_tuple=True)
        candidates = torch.multinomial(weights[i] + 1e-12, PLACEMENT_TRIES, replacement=True, generator=rng)
        if ys.numel() == 0 or weights[i].sum() == 0:
            continue
        centre = torch.stack([ys.float().mean(), xs.float().mean()]).round().long()
        for candidate in candidates:
            shift = torch.stack([candidate // width, candidate % width]) - centre
            shift[0] = shift[0].clamp(-int(ys.min()), height - 1 - int(ys.max()))
            shift[1] = shift[1].clamp(-int(xs.min()), width - 1 - int(xs.max()))
            moved = torch.roll(footprints[i, 0].cpu(), tuple(shift.tolist()), dims=(0, 1))
            if (moved * weights[i].view(height, width)).sum() >= MIN_INSIDE * ys.numel():
                shifts[i], found[i] = shift, True
                break
    return shifts, found


def shifted(x: Tensor, shifts: Tensor) -> Tensor:
    """Each sample of ``x`` (B, ...) rolled over its last two axes by its integer ``shifts`` (B, 2)."""
    return torch.stack([torch.roll(sample, tuple(shift.tolist()), dims=(-2, -1)) for sample, shift in zip(x, shifts)])


def _intensity_inputs(params: IntensityParams) -> dict[str, Tensor]:
    return {f"intensity.{f.name}": getattr(params, f.name) for f in fields(IntensityParams)}


def _intensity_params(inputs: dict[str, Tensor]) -> IntensityParams:
    return IntensityParams(**{f.name: inputs[f"intensity.{f.name}"] for f in fields(IntensityParams)})


class Compositor(AdversarialState):
    """Composites of the budget's training pairs, with learned appearance, as a generator kind.

    Args:
        settings: the run's generator settings (``options`` as :class:`CompositeOptions`).
        num_classes: K of the label maps, background included.
        image_channels: channels of the images.
        device: where its parameters live.
        spatial_dims: 2 only: it pastes regions of 2D images (:class:`~genseg.errors.ConfigError` for 3).
    """

    Options = CompositeOptions
    draws_from_images = True

    def __init__(self, settings: GeneratorConfig, num_classes: int, image_channels: int,
                 device: torch.device | str = "cpu", spatial_dims: int = 2) -> None:
        if spatial_dims != 2:
            raise ConfigError("the compositing generator pastes regions of 2D images; use generator pix2pix "
                              "for volumes (--dims 3), or train on slices with --dims 2")
        self.options = CompositeOptions(**settings.options)
        self.num_classes = num_classes
        self.network = Appearance(image_channels, self.options.feather, self.options.max_feather).to(device)
        self.discriminator = PatchDiscriminator(mask_channels(num_classes) + image_channels,
                                                ndf=self.options.ndf).to(device)
        betas = (0.5, 0.999)
        self.generator_optimizer = torch.optim.Adam(self.network.parameters(), lr=self.options.appearance_lr,
                                                    betas=betas)
        self.discriminator_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=settings.lr, betas=betas)

    def draw(self, images: Tensor, masks: Tensor, count: int | None, rng: torch.Generator) -> SyntheticDraw:
        """Targets, pasted sources and their footprints for ``count`` composites of the real pairs given."""
        batch = images.shape[0]
        count = batch if count is None else count
        device = images.device
        padding = padding_region(images)
        side = images.shape[-2:]
        rows = torch.randint(batch, (count,), generator=rng).to(device)
        geometry = sample_geometric(count, rng, device=device)
        target, labels = augment_pairs(images[rows], masks[rows], self.num_classes, geometry)
        content = (warp(1 - padding[rows], affine_matrices(geometry, *side)) > 0.5).to(images.dtype)
        region = host_region(target, labels, content)
        inputs = {"target": target, "target_labels": labels, "content": content}
        width = max(1, round(RING_FRACTION * images.shape[-1]))
        for paste in range(self.options.pastes):
            picks = torch.randint(batch, (count,), generator=rng).to(device)
            made = torch.rand(count, generator=rng).to(device) < self.options.probability
            source_geometry = sample_geometric(count, rng, device=device)
            source, source_labels = augment_pairs(images[picks], masks[picks], self.num_classes, source_geometry)
            source_content = (warp(1 - padding[picks], affine_matrices(source_geometry, *side)) > 0.5).to(images.dtype)
            footprint = (source_labels[:, None] > 0).to(images.dtype) * source_content
            moves, found = place(footprint, region, rng)
            source, source_labels, source_content, footprint = (
                shifted(x, moves) for x in (source, source_labels, source_content, footprint))
            footprint = footprint * region * (made & found.to(device)).view(-1, 1, 1, 1).to(images.dtype)
            around = ring(footprint, width)
            shift = masked_mean(target, around * content)[0] - masked_mean(source, around * source_content)[0]
            labels = torch.where(footprint[:, 0] > 0, source_labels, labels)
            inputs.update({f"source.{paste}": source, f"footprint.{paste}": footprint, f"shift.{paste}": shift})
        inputs.update(_intensity_inputs(sample_intensity(count, rng, device=device)))
        return SyntheticDraw(labels, inputs)

    def render(self, draw: SyntheticDraw) -> Tensor:
        """The composites' images: each paste blended over the target by its soft alpha, then jittered."""
        image = draw.inputs["target"]
        for paste in range(self.options.pastes):
            alpha = self.network.alpha(draw.inputs[f"footprint.{paste}"]) * draw.inputs["content"]
            pasted = self.network.pasted(draw.inputs[f"source.{paste}"], draw.inputs[f"shift.{paste}"])
            image = alpha * pasted + (1 - alpha) * image
        return apply_intensity(image.clamp(0.0, 1.0), _intensity_params(draw.inputs))

    def unpasted(self, draw: SyntheticDraw) -> Tensor:
        """The draw's targets as they were before any paste, jittered alike: the real side of the critic."""
        return apply_intensity(draw.inputs["target"], _intensity_params(draw.inputs))

    def arch_parameters(self) -> list[nn.Parameter]:
        return []

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.network.parameters())

    def train_step(self, images: Tensor, masks: Tensor,
                   before_step: Callable[[], None] | None = None) -> dict[str, float]:
        """One critic and one appearance step: composites of the pairs against their unpasted targets.

        The draw's randomness comes from torch's global generator, which the training loop and the
        pre-training save for resume.
        """
        rng = torch.Generator().manual_seed(int(torch.randint(2**62, (1,))))
        with torch.no_grad():
            draw = self.draw(images, masks, None, rng)
            real = image_to_generator_space(self.unpasted(draw))
            real_masks = encode_masks(draw.inputs["target_labels"], self.num_classes)
        fake = image_to_generator_space(self.render(draw))
        encoded = encode_masks(draw.masks, self.num_classes)
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        critic_loss = discriminator_loss(self.discriminator, real_masks, real, fake, fake_masks_enc=encoded)
        critic_loss.backward()
        self.discriminator_optimizer.step()
        self.generator_optimizer.zero_grad(set_to_none=True)
        loss, parts = generator_loss(self.discriminator, encoded, real, fake, lambda_l1=0.0)
        loss.backward()
        if before_step is not None:
            before_step()
        self.generator_optimizer.step()
        return {"d_loss": critic_loss.item(), "g_gan": parts["gan"].item(),
                "feather": self.network.sigma.item(), "match": self.network.match.mean().item()}
