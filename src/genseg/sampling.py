"""Which rows of the training pairs make each batch (at random, or epoch by epoch), and which patch
of each volume where volumes are larger than the run's patch.

Budgets can be smaller than a batch (2 training images, batch 4), so both modes repeat rows
within a batch when they must. ``epochs`` walks fresh random permutations and carries the rest
of one into the next batch, so every row is used equally often.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from genseg.errors import ConfigError


class BatchSampler:
    """Row indices for batches of ``batch_size``, from one seeded generator.

    Args:
        rng: the run's generator (its state is saved with the run).
        batch_size: rows per batch.
        mode: ``"replacement"`` or ``"epochs"``.

    Example:
        >>> sampler = BatchSampler(torch.Generator().manual_seed(0), batch_size=4, mode="epochs")
        >>> sorted(torch.cat([sampler(6), sampler(6), sampler(6)]).tolist())[:6]
        [0, 0, 1, 1, 2, 2]
    """

    def __init__(self, rng: torch.Generator, batch_size: int, mode: str = "replacement") -> None:
        if mode not in ("replacement", "epochs"):
            raise ConfigError(f"sampling must be 'replacement' or 'epochs', got {mode!r}")
        self.rng, self.batch_size, self.mode = rng, batch_size, mode
        self._queues: dict[int, list[int]] = {}  # rows left in the current permutation, per row count

    def __call__(self, count: int) -> Tensor:
        """``batch_size`` indices into ``count`` rows."""
        if self.mode == "replacement":
            return torch.randint(count, (self.batch_size,), generator=self.rng)
        queue = self._queues.setdefault(count, [])
        while len(queue) < self.batch_size:
            queue.extend(torch.randperm(count, generator=self.rng).tolist())
        picks, self._queues[count] = queue[: self.batch_size], queue[self.batch_size:]
        return torch.tensor(picks)

    def state_dict(self) -> dict[str, Any]:
        return {"queues": {count: list(rows) for count, rows in self._queues.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._queues = {int(count): list(rows) for count, rows in state["queues"].items()}


FOREGROUND_SHARE = 1 / 3
"""Share of patches centred on a foreground voxel of their volume (nnU-Net's oversampling), the
rest placed uniformly, so that small structures in large volumes are seen often enough."""


def crop_patches(images: Tensor, masks: Tensor, patch: tuple[int, int, int], rng: torch.Generator
                 ) -> tuple[Tensor, Tensor]:
    """One (D, H, W) patch of each volume of a batch, (B, C, *canvas) and (B, *canvas) -> patch-sized.

    Each patch is centred on a random foreground voxel with probability :data:`FOREGROUND_SHARE`
    (where the volume has one), else placed uniformly; every draw comes from ``rng``. Volumes no
    larger than the patch are returned as they are, and nothing is drawn.
    """
    canvas = tuple(images.shape[-3:])
    if canvas == tuple(patch):
        return images, masks
    room = torch.tensor([side - want for side, want in zip(canvas, patch)])
    crops_images, crops_masks = [], []
    for row in range(images.shape[0]):
        start = (torch.rand(3, generator=rng) * (room + 1)).long().clamp(max=room)
        if torch.rand(1, generator=rng).item() < FOREGROUND_SHARE:  # the voxels are listed only then
            foreground = (masks[row] > 0).nonzero()
            if len(foreground):
                centre = foreground[torch.randint(len(foreground), (1,), generator=rng).item()].cpu()
                start = torch.minimum((centre - torch.tensor(patch) // 2).clamp(min=0), room)
        window = tuple(slice(int(s), int(s) + want) for s, want in zip(start, patch))
        crops_images.append(images[(row, slice(None), *window)])
        crops_masks.append(masks[(row, *window)])
    return torch.stack(crops_images), torch.stack(crops_masks)

