"""Which rows of the training pairs make each batch: at random, or epoch by epoch.

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
