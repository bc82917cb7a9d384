"""pix2pix as a :class:`~genseg.generators.base.MaskToImage`: a U-Net with searchable cells, its
PatchGAN critic, and the GAN step that trains them.

Isola et al., "Image-to-image translation with conditional adversarial networks" (CVPR 2017):
a U-Net whose encoder blocks are LeakyReLU(0.2) -> stride-2 conv -> BatchNorm and whose decoder
blocks are ReLU -> stride-2 up-conv -> BatchNorm (-> dropout 0.5, pix2pix's only noise source),
with skip connections and a Tanh output in [-1, 1]. In GenSeg every down/up convolution is a
searchable cell (:mod:`genseg.generators.cells`) whose mixture weights softmax(alpha) are the
architecture variables A.

Widths are ``ngf * min(2**i, 4)`` at depth i (pix2pix caps at 8; 4 keeps the deep, low-resolution
levels from holding most of the parameters). The default depth, 5 levels, accepts every image
size genseg allows (multiples of 32, see :class:`~genseg.config.DataConfig`): 128 px gives a 4 x 4
bottleneck. With ``ngf=32`` the searchable generator has 4.3 M parameters and the plain one 1.8 M
(the original GenSeg generator had 272 M).

:class:`Pix2Pix` holds the generator G, the critic D and their Adam optimizers, and takes the
pix2pix GAN step (:mod:`genseg.generators.gan`) on real pairs; its settings are
:class:`Pix2PixOptions`. Its data-efficient options, all off by default, are for 2-8 training
pairs: the critic's inputs under DiffAugment (:mod:`genseg.generators.diffaugment`), SPADE
normalization in the decoder (:mod:`genseg.generators.spade`), and a latent noise input, with a
mode-seeking term that keeps the generator from ignoring it.

Example:
    >>> generator = UNetGenerator(mask_channels=1, image_channels=1, ngf=8)
    >>> generator(torch.zeros(2, 1, 64, 64)).shape
    torch.Size([2, 1, 64, 64])
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from genseg.errors import ConfigError
from genseg.generators import cells
from genseg.generators.base import MaskConditioned
from genseg.generators.diffaugment import augment_critic_input, sample_critic_augmentation
from genseg.generators.gan import AdversarialState, Critic, discriminator_loss, generator_loss, mode_seeking_loss
from genseg.generators.layers import layers
from genseg.generators.masks import encode_masks, image_to_generator_space, mask_channels, synthesize
from genseg.generators.options import Pix2PixOptions
from genseg.generators.spade import SPADE

if TYPE_CHECKING:
    from genseg.config import GeneratorConfig

#: Deeper levels are at most this many times ``ngf`` wide.
MAX_WIDTH_FACTOR = 4
#: Stride-2 levels of images and of volumes: 3D patches are planned in multiples of 16
#: (:func:`~genseg.planning.plan_patch`), and a 4-level 3D U-Net holds a 3 x 4 x 3 bottleneck at 48 x 64 x 48.
NUM_DOWNS = {2: 5, 3: 4}


class UNetGenerator(nn.Module):
    """The pix2pix U-Net generator, with searchable down/up cells.

    Args:
        mask_channels: input channels (the mask encoding, see :func:`~genseg.generators.masks.encode_masks`).
        image_channels: output channels (1 for grey-level images, 3 for RGB).
        ngf: width of the first level; deeper levels are ``ngf * min(2**i, 4)`` wide.
        num_downs: number of stride-2 levels; inputs must have sides divisible by ``2**num_downs``.
        searchable: make every down/up convolution a mixture of candidate operations; ``False``
            gives the plain pix2pix U-Net.
        dropout: dropout probability in the three deepest decoder blocks, the innermost
            included as in the pix2pix paper (its reference code starts one level higher);
            0 switches it off.
        spade: normalize the decoder by :class:`~genseg.generators.spade.SPADE` (scale and shift
            from the mask) instead of BatchNorm.
        noise: channels of a latent z ~ N(0, I) per image, drawn at each forward unless given,
            broadcast over the image and concatenated to the mask: at the input and, with
            ``spade``, in every decoder normalization. 0: none.
        spatial_dims: 2 for images (B, C, H, W), 3 for volumes (B, C, D, H, W).
    """

    def __init__(
        self,
        mask_channels: int,
        image_channels: int,
        ngf: int = 32,
        num_downs: int = 5,
        searchable: bool = True,
        dropout: float = 0.5,
        spade: bool = False,
        noise: int = 0,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        nets = layers(spatial_dims)
        if num_downs < 2:
            raise ConfigError(f"num_downs must be at least 2, got {num_downs}")
        if mask_channels < 1 or image_channels < 1 or ngf < 1:
            raise ConfigError(
                f"mask_channels, image_channels and ngf must be positive, got "
                f"{mask_channels}, {image_channels}, {ngf}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        if noise < 0:
            raise ConfigError(f"noise must be >= 0, got {noise}")
        self.num_downs = num_downs
        self.spatial_dims = spatial_dims
        self.noise_channels = noise
        condition_channels = mask_channels + noise  # what the mask and the latent bring in
        widths = [ngf * min(2**i, MAX_WIDTH_FACTOR) for i in range(num_downs)]
        innermost = num_downs - 1

        self.down = nn.ModuleList()
        for i in range(num_downs):
            block: OrderedDict[str, nn.Module] = OrderedDict()
            if i > 0:  # the outermost block sees the mask itself, not an activation
                block["act"] = nn.LeakyReLU(0.2)
            block["conv"] = cells.down_cell(
                condition_channels if i == 0 else widths[i - 1], widths[i], searchable, spatial_dims=spatial_dims
            )
            if 0 < i < innermost:  # pix2pix has no norm on the outermost or innermost down block
                block["norm"] = nets.batch_norm(widths[i])
            self.down.append(nn.Sequential(block))

        # up[i] restores the resolution of down[i]'s input; all but the innermost take the
        # skip connection concatenated to the deeper block's output.
        self.up = nn.ModuleList()
        for i in range(num_downs):
            in_channels = widths[i] if i == innermost else 2 * widths[i]
            block = OrderedDict(act=nn.ReLU())
            if i == 0:
                block["conv"] = cells.up_cell(in_channels, image_channels, searchable, bias=True,
                                              spatial_dims=spatial_dims)
                block["out"] = nn.Tanh()
            else:
                block["conv"] = cells.up_cell(in_channels, widths[i - 1], searchable, spatial_dims=spatial_dims)
                block["norm"] = (SPADE(widths[i - 1], condition_channels, spatial_dims=spatial_dims) if spade
                                 else nets.batch_norm(widths[i - 1]))
                if dropout > 0 and i >= num_downs - 3:
                    block["dropout"] = nn.Dropout(dropout)
            self.up.append(nn.Sequential(block))

    def forward(self, masks: Tensor, latents: Tensor | None = None) -> Tensor:
        """Generate images from encoded masks.

        Args:
            masks: (B, mask_channels, H, W) in [-1, 1] ((B, mask_channels, D, H, W) in 3D), every
                side divisible by ``2**num_downs``.
            latents: (B, noise) for a generator with noise; default fresh ones (:meth:`sample_latents`).

        Returns:
            (B, image_channels, H, W) in [-1, 1] ((B, image_channels, D, H, W) in 3D).
        """
        factor = 2**self.num_downs
        sides = tuple(masks.shape[2:])
        if masks.ndim != self.spatial_dims + 2:
            raise ConfigError(f"a {self.spatial_dims}D generator got input of shape {tuple(masks.shape)}; "
                              f"it takes (B, C, {', '.join('DHW'[3 - self.spatial_dims:])})")
        if any(side % factor for side in sides):
            raise ConfigError(
                f"generator input of size {'x'.join(map(str, sides))} is not divisible by 2**num_downs = "
                f"{factor}; resize the data to a multiple of {factor} or lower num_downs"
            )
        condition = self._condition(masks, latents)
        skips = []
        hidden = condition
        for block in self.down:
            hidden = block(hidden)
            skips.append(hidden)
        hidden = _decode(self.up[-1], skips[-1], condition)
        for i in range(self.num_downs - 2, -1, -1):
            hidden = _decode(self.up[i], torch.cat([skips[i], hidden], dim=1), condition)
        return hidden

    def sample_latents(self, batch: int, device: torch.device | str = "cpu") -> Tensor:
        """Latents z ~ N(0, I), (batch, noise), from torch's global CPU generator (saved for resume
        by the training loop and the pre-training, on any device)."""
        return torch.randn(batch, self.noise_channels).to(device)

    def _condition(self, masks: Tensor, latents: Tensor | None) -> Tensor:
        """The mask encoding, with the latents broadcast over the image beside it if there is noise."""
        if self.noise_channels == 0:
            if latents is not None:
                raise ConfigError("this generator has no noise input (noise=0); pass no latents")
            return masks
        if latents is None:
            latents = self.sample_latents(masks.shape[0], masks.device)
        spatial = masks.shape[2:]
        return torch.cat([masks, latents.view(*latents.shape, *[1] * len(spatial)).expand(-1, -1, *spatial)], dim=1)

    def arch_parameters(self) -> list[nn.Parameter]:
        """The ``alpha`` of every cell still searching: the architecture variables A.

        They are registered parameters, so ``state_dict`` saves them and ``.to()`` moves them;
        the original GenSeg code kept A in a module-level tensor that did neither.
        """
        return cells.arch_parameters(self)

    def weight_parameters(self) -> list[nn.Parameter]:
        """All parameters except the cells' ``alpha``: the generator weights W."""
        return cells.weight_parameters(self)

    def discretize(self) -> dict[str, str]:
        """Keep the argmax candidate in every cell; later forwards use only those.

        Returns:
            The resulting :meth:`architecture`.
        """
        for _, op in cells.mixed_ops(self):
            op.discretize()
        return self.architecture()

    def architecture(self) -> dict[str, str]:
        """Cell name (e.g. ``"down.2.conv"``) -> chosen (or currently strongest) operation name."""
        return {name: op.chosen().name for name, op in cells.mixed_ops(self)}


def _decode(block: nn.Sequential, hidden: Tensor, condition: Tensor) -> Tensor:
    """One decoder block; a SPADE normalization in it also reads the condition."""
    for layer in block:
        hidden = layer(hidden, condition) if isinstance(layer, SPADE) else layer(hidden)
    return hidden


class PatchDiscriminator(nn.Module):
    """The pix2pix PatchGAN: one real/fake logit per overlapping patch (70 x 70 for 3 layers).

    Args:
        in_channels: channels of ``concat(mask encoding, image in [-1, 1])``.
        ndf: width of the first layer.
        n_layers: stride-2 layers after the first (3 gives the 70 x 70 receptive field).
        spatial_dims: 2 for images, 3 for volumes (70 x 70 x 70 patches).
    """

    def __init__(self, in_channels: int, ndf: int = 32, n_layers: int = 3, spatial_dims: int = 2) -> None:
        super().__init__()
        nets = layers(spatial_dims)
        if in_channels < 1 or ndf < 1 or n_layers < 1:
            raise ConfigError(
                f"in_channels, ndf and n_layers must be positive, got {in_channels}, {ndf}, {n_layers}"
            )
        stack: list[nn.Module] = [nets.conv(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        width = ndf
        for n in range(1, n_layers + 1):
            next_width = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last of these keeps the resolution
            stack += [
                nets.conv(width, next_width, 4, stride=stride, padding=1, bias=False),
                nets.batch_norm(next_width),
                nn.LeakyReLU(0.2),
            ]
            width = next_width
        stack.append(nets.conv(width, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*stack)

    def forward(self, pairs: Tensor) -> Tensor:
        """Patch logits, (B, 1, h, w), for ``pairs`` = concat(mask encoding, image), (B, C, H, W)
        (one more spatial axis in 3D)."""
        return self.model(pairs)


class Pix2Pix(MaskConditioned, AdversarialState):
    """The pix2pix generator G, its critic D and their optimizers, as a mask-to-image generator.

    Args:
        settings: the run's generator settings (``options`` as :class:`Pix2PixOptions`).
        num_classes: K of the label maps, background included.
        image_channels: channels of the images it draws.
        device: where its networks live.
        spatial_dims: 2 draws images, 3 volumes (a 3D U-Net of :data:`NUM_DOWNS` levels and a 3D critic).
    """

    Options = Pix2PixOptions

    def __init__(self, settings: GeneratorConfig, num_classes: int, image_channels: int,
                 device: torch.device | str = "cpu", spatial_dims: int = 2) -> None:
        self.options = Pix2PixOptions(**settings.options)
        if spatial_dims == 3 and self.options.diffaugment:
            raise ConfigError("DiffAugment's translations and cutout are 2D; "
                              "set generator.diffaugment false for volumes")
        channels = mask_channels(num_classes)
        self.num_classes = num_classes
        self.network = UNetGenerator(channels, image_channels, ngf=self.options.ngf, num_downs=NUM_DOWNS[spatial_dims],
                                     searchable=self.options.searchable, spade=self.options.spade,
                                     noise=self.options.noise, spatial_dims=spatial_dims).to(device)
        self.discriminator = PatchDiscriminator(channels + image_channels, ndf=self.options.ndf,
                                                spatial_dims=spatial_dims).to(device)
        betas = (0.5, 0.999)  # pix2pix's Adam settings
        self.generator_optimizer = torch.optim.Adam(self.network.weight_parameters(), lr=settings.lr, betas=betas)
        self.discriminator_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=settings.lr, betas=betas)

    def generate(self, masks: Tensor) -> Tensor:
        """Images in [0, 1] for label maps, in train mode: dropout (and the latent, with noise) vary them."""
        self.network.train()
        return synthesize(self.network, masks, self.num_classes)

    def arch_parameters(self) -> list[nn.Parameter]:
        return self.network.arch_parameters()

    def weight_parameters(self) -> list[nn.Parameter]:
        return self.network.weight_parameters()

    def train_step(self, images: Tensor, masks: Tensor,
                   before_step: Callable[[], None] | None = None) -> dict[str, float]:
        """One critic step and one generator step of pix2pix on real pairs (``before_step``: see
        :meth:`~genseg.generators.base.MaskToImage.train_step`)."""
        self.network.train()
        encoded = encode_masks(masks, self.num_classes)
        target = image_to_generator_space(images)
        fake, diversity = self._draw(encoded)
        critic = self._critic(target)
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        critic_loss = discriminator_loss(critic, encoded, target, fake)
        critic_loss.backward()
        self.discriminator_optimizer.step()
        self.generator_optimizer.zero_grad(set_to_none=True)
        loss, parts = generator_loss(critic, encoded, target, fake, lambda_l1=self.options.lambda_l1)
        if diversity is not None:
            loss = loss + self.options.lambda_ms * diversity
        loss.backward()
        if before_step is not None:
            before_step()
        self.generator_optimizer.step()
        scalars = {"d_loss": critic_loss.item(), "g_gan": parts["gan"].item(), "g_l1": parts["l1"].item()}
        return scalars if diversity is None else {**scalars, "g_ms": diversity.item()}

    def _draw(self, encoded: Tensor) -> tuple[Tensor, Tensor | None]:
        """The step's generated images, and with ``lambda_ms`` its mode-seeking term: every mask
        drawn with two latents in one forward, the first draw serving the GAN and L1 terms."""
        if self.options.lambda_ms == 0:
            return self.network(encoded), None
        batch = encoded.shape[0]
        latents = self.network.sample_latents(2 * batch, encoded.device)
        fakes = self.network(torch.cat([encoded, encoded]), latents)
        return fakes[:batch], mode_seeking_loss(fakes[:batch], fakes[batch:], latents[:batch], latents[batch:])

    def _critic(self, images: Tensor) -> Critic:
        """The critic of this step: the network, or with ``diffaugment`` the network behind one
        DiffAugment draw that every pair of the step, real or generated, goes through."""
        if not self.options.diffaugment:
            return self.discriminator
        params = sample_critic_augmentation(images.shape[0], *images.shape[-2:], device=images.device)
        return lambda pairs: self.discriminator(augment_critic_input(pairs, params, images.shape[1]))
