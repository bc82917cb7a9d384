"""Batch sampling: with replacement, or every row once per pass."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from genseg.sampling import BatchSampler, crop_patches


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


def test_patches_are_cut_from_the_volume_and_a_share_lands_on_foreground() -> None:
    images = torch.arange(2 * 1 * 48 * 32 * 64, dtype=torch.float32).view(2, 1, 48, 32, 64)
    masks = torch.zeros(2, 48, 32, 64, dtype=torch.long)
    masks[:, 40:44, 2:5, 58:62] = 1  # one small structure in a corner
    hits = 0
    rng = torch.Generator().manual_seed(0)
    for _ in range(60):
        patch_images, patch_masks = crop_patches(images, masks, (32, 32, 32), rng)
        assert patch_images.shape == (2, 1, 32, 32, 32) and patch_masks.shape == (2, 32, 32, 32)
        first = patch_images[0, 0, 0, 0, 0].long().item()  # where the patch starts in the volume
        d, rest = divmod(first, 32 * 64)
        h, w = divmod(rest, 64)
        assert torch.equal(patch_images[0, 0], images[0, 0, d:d + 32, h:h + 32, w:w + 32])
        assert torch.equal(patch_masks[0], masks[0, d:d + 32, h:h + 32, w:w + 32])
        hits += int(patch_masks.flatten(1).any(dim=1).sum())
    # a uniform patch sees this corner about 1 time in 9; with a third centred on it, about 4 in 9
    assert 0.3 < hits / 120 < 0.6


def test_volumes_that_fit_the_patch_are_not_cropped_and_draw_nothing() -> None:
    images, masks = torch.rand(2, 1, 32, 32, 32), torch.zeros(2, 32, 32, 32, dtype=torch.long)
    rng = torch.Generator().manual_seed(0)
    state = rng.get_state()
    assert crop_patches(images, masks, (32, 32, 32), rng)[0] is images
    assert torch.equal(rng.get_state(), state)
