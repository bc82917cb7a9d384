"""Searchable cells: softmax(alpha)-weighted mixtures of candidate down/up-sampling operations.

A :class:`MixedOp` computes ``sum_i softmax(alpha)_i * op_i(x)``; ``alpha`` (one logit per
candidate) is the architecture variable A of docs/method.md's level 3. The candidates differ in kind,
not only in kernel size: a mixture of same-stride linear convolutions with nothing nonlinear
between them is itself one linear convolution, so searching over kernel sizes alone (as in the
paper) only re-parameterizes a single convolution. Here each cell type offers

* the plain pix2pix operation (linear, learned 4x4 kernel),
* a linear operation with a different fixed structure (dilated kernel, or interpolation),
* a small nonlinear operation (conv 3x3 -> activation -> conv 1x1 around a resampling step).

The two linear candidates alone would still mix into one (larger) convolution; the nonlinear one
is what keeps the mixture from collapsing, so the search chooses between operations that
differ in what they can represent. After the search, :meth:`MixedOp.discretize` keeps the strongest candidate.

Example:
    >>> cell = down_cell(8, 16)
    >>> cell(torch.randn(2, 8, 32, 32)).shape
    torch.Size([2, 16, 16, 16])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genseg.generators.layers import Layers, layers

#: Down-sampling candidates (stride 2), the plain pix2pix one first.
DOWN_OPS = ("conv4x4", "dilated_conv3x3", "avgpool_mlp")
#: Up-sampling candidates (stride 2), the plain pix2pix one first.
UP_OPS = ("transposed_conv4x4", "bilinear_conv3x3", "subpixel_mlp")


class OpChoice(NamedTuple):
    """The candidate a cell uses (or would use if discretized now)."""

    index: int
    name: str


def _hidden_width(in_channels: int, out_channels: int) -> int:
    # The nonlinear candidates need a hidden layer wider than the few output channels of the
    # generator's last cell (1-3 image channels), hence at least half the input width.
    return max(out_channels, in_channels // 2)


def _conv4x4(in_channels: int, out_channels: int, bias: bool, nets: Layers) -> nn.Module:
    return nets.conv(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)


def _dilated_conv3x3(in_channels: int, out_channels: int, bias: bool, nets: Layers) -> nn.Module:
    # A sparse 5x5 receptive field for the cost of a 3x3 kernel.
    return nets.conv(in_channels, out_channels, 3, stride=2, padding=2, dilation=2, bias=bias)


def _avgpool_mlp(in_channels: int, out_channels: int, bias: bool, nets: Layers) -> nn.Module:
    hidden = _hidden_width(in_channels, out_channels)
    return nn.Sequential(
        nets.avg_pool(2),
        nets.conv(in_channels, hidden, 3, padding=1),
        nn.LeakyReLU(0.2),
        nets.conv(hidden, out_channels, 1, bias=bias),
    )


def _transposed_conv4x4(in_channels: int, out_channels: int, bias: bool, nets: Layers) -> nn.Module:
    return nets.conv_transpose(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)


def _bilinear_conv3x3(in_channels: int, out_channels: int, bias: bool, nets: Layers) -> nn.Module:
    # Fixed interpolation then a convolution: no checkerboard artifacts of transposed convs.
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode=nets.interpolation, align_corners=False),
        nets.conv(in_channels, out_channels, 3, padding=1, bias=bias),
    )


def _subpixel_mlp(in_channels: int, out_channels: int, bias: bool, nets: Layers) -> nn.Module:
    # Sub-pixel convolution (Shi et al. 2016) with a hidden nonlinearity, computed at the input
    # resolution and rearranged into 2x2 (2x2x2) output pixels.
    hidden = _hidden_width(in_channels, out_channels)
    return nn.Sequential(
        nets.conv(in_channels, hidden, 3, padding=1),
        nn.ReLU(),
        nets.conv(hidden, 2**nets.dims * out_channels, 1, bias=bias),
        nets.pixel_shuffle(2),
    )


_BUILDERS: dict[str, Callable[[int, int, bool, Layers], nn.Module]] = {
    "conv4x4": _conv4x4,
    "dilated_conv3x3": _dilated_conv3x3,
    "avgpool_mlp": _avgpool_mlp,
    "transposed_conv4x4": _transposed_conv4x4,
    "bilinear_conv3x3": _bilinear_conv3x3,
    "subpixel_mlp": _subpixel_mlp,
}


class MixedOp(nn.Module):
    """A softmax(alpha)-weighted sum of candidate operations, or one plain operation.

    With a single candidate there is nothing to search: no ``alpha`` is created and the cell is
    that operation. ``alpha`` is a registered parameter, so it is saved in ``state_dict``, moves
    with ``.to()`` and reaches the forward pass on every device (the original code kept A in a
    module-level tensor that did neither). The choice made by :meth:`discretize` is a plain
    integer kept in the module's extra state: saved and restored with the weights, and read in
    ``forward`` without a device synchronization.

    Args:
        candidates: operation name -> module; all map (B, C_in, H, W) to the same output shape.
    """

    def __init__(self, candidates: dict[str, nn.Module]) -> None:
        super().__init__()
        if not candidates:
            raise ValueError("a MixedOp needs at least one candidate operation")
        self.ops = nn.ModuleDict(candidates)
        if len(candidates) > 1:
            # Zeros: the search starts from the uniform mixture.
            self.alpha = nn.Parameter(torch.zeros(len(candidates)))
            self._kept: int | None = None
        else:
            self.register_parameter("alpha", None)
            self._kept = 0

    @property
    def names(self) -> tuple[str, ...]:
        """The candidate names, in the order of ``alpha``."""
        return tuple(self.ops.keys())

    @property
    def is_searching(self) -> bool:
        """Whether the output is still a mixture weighted by ``alpha``."""
        return self._kept is None

    def weights(self) -> Tensor:
        """softmax(alpha): the mixture weights, summing to 1."""
        if self.alpha is None:
            raise ValueError(f"the single-candidate cell {self.names[0]!r} has no mixture weights")
        return F.softmax(self.alpha, dim=0)

    def forward(self, x: Tensor) -> Tensor:
        if self._kept is not None:
            return self.ops[self.names[self._kept]](x)
        return sum(weight * op(x) for weight, op in zip(self.weights(), self.ops.values()))

    def chosen(self) -> OpChoice:
        """The kept candidate after :meth:`discretize`, else the current argmax of ``alpha``."""
        index = self._kept if self._kept is not None else int(torch.argmax(self.alpha.detach()))
        return OpChoice(index, self.names[index])

    def discretize(self) -> OpChoice:
        """Freeze the choice on the argmax of ``alpha``: later forwards use that operation alone.

        The other candidates and ``alpha`` stay in the module (unused), so checkpoints taken
        before and after discretizing load into either.

        Returns:
            The kept candidate.
        """
        choice = self.chosen()
        self._kept = choice.index
        return choice

    def get_extra_state(self) -> dict[str, int | None]:
        """The discrete choice, saved in ``state_dict`` beside the weights."""
        return {"kept": self._kept}

    def set_extra_state(self, state: dict[str, int | None]) -> None:
        """Restore the discrete choice from ``state_dict``."""
        self._kept = state["kept"]


def down_cell(in_channels: int, out_channels: int, searchable: bool = True, bias: bool = False,
              spatial_dims: int = 2) -> MixedOp:
    """A stride-2 down-sampling cell: (B, in, H, W) -> (B, out, H/2, W/2), or its 3D counterpart.

    Candidates (:data:`DOWN_OPS`): ``conv4x4``, the pix2pix strided convolution;
    ``dilated_conv3x3``, a stride-2 3x3 convolution with dilation 2 (wider, sparser receptive
    field); ``avgpool_mlp``, average pooling then conv 3x3 -> LeakyReLU(0.2) -> conv 1x1 (nonlinear).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        searchable: mix all candidates; ``False`` builds only the plain ``conv4x4``.
        bias: whether the candidates' last layers have a bias (pix2pix: only without a norm after).
        spatial_dims: 2 for images, 3 for volumes (the same candidates in 3D).

    Returns:
        The cell.
    """
    names = DOWN_OPS if searchable else DOWN_OPS[:1]
    nets = layers(spatial_dims)
    return MixedOp({name: _BUILDERS[name](in_channels, out_channels, bias, nets) for name in names})


def up_cell(in_channels: int, out_channels: int, searchable: bool = True, bias: bool = False,
            spatial_dims: int = 2) -> MixedOp:
    """A stride-2 up-sampling cell: (B, in, H, W) -> (B, out, 2H, 2W), or its 3D counterpart.

    Candidates (:data:`UP_OPS`): ``transposed_conv4x4``, the pix2pix transposed convolution;
    ``bilinear_conv3x3``, bilinear up-sampling then conv 3x3 (no checkerboard artifacts);
    ``subpixel_mlp``, conv 3x3 -> ReLU -> conv 1x1 to 4x the channels at the input resolution,
    then pixel shuffle (nonlinear).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        searchable: mix all candidates; ``False`` builds only the plain ``transposed_conv4x4``.
        bias: whether the candidates' last layers have a bias.
        spatial_dims: 2 for images, 3 for volumes.

    Returns:
        The cell.
    """
    names = UP_OPS if searchable else UP_OPS[:1]
    nets = layers(spatial_dims)
    return MixedOp({name: _BUILDERS[name](in_channels, out_channels, bias, nets) for name in names})


def mixed_ops(module: nn.Module) -> Iterator[tuple[str, MixedOp]]:
    """Every :class:`MixedOp` inside ``module``, with its qualified name."""
    for name, child in module.named_modules():
        if isinstance(child, MixedOp):
            yield name, child


def arch_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The ``alpha`` of every cell of ``module`` that is still searching (empty once discretized)."""
    return [op.alpha for _, op in mixed_ops(module) if op.is_searching]


def weight_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Every parameter of ``module`` that is not a cell's ``alpha``."""
    alphas = {id(op.alpha) for _, op in mixed_ops(module) if op.alpha is not None}
    return [p for p in module.parameters() if id(p) not in alphas]
