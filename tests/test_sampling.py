"""Batch sampling: with replacement, or every row once per pass."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from genseg.sampling import BatchSampler


def test_epochs_use_every_row_equally_often() -> None:
    sampler = BatchSampler(torch.Generator().manual_seed(0), batch_size=4, mode="epochs")
    counts = Counter(torch.cat([sampler(3) for _ in range(9)]).tolist())  # 36 draws = 12 passes over 3 rows
    assert counts == {0: 12, 1: 12, 2: 12}


def test_replacement_draws_at_random() -> None:
    sampler = BatchSampler(torch.Generator().manual_seed(0), batch_size=4)
    counts = Counter(torch.cat([sampler(3) for _ in range(9)]).tolist())
    assert set(counts) == {0, 1, 2} and len(set(counts.values())) > 1


def test_state_round_trip_continues_the_same_sequence() -> None:
    first = BatchSampler(torch.Generator().manual_seed(1), batch_size=2, mode="epochs")
    first(5)
    second = BatchSampler(torch.Generator(), batch_size=2, mode="epochs")
    second.load_state_dict(first.state_dict())
    second.rng.set_state(first.rng.get_state())
    assert torch.equal(first(5), second(5)) and torch.equal(first(5), second(5))


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="sampling"):
        BatchSampler(torch.Generator(), 2, mode="shuffle")
