"""Metrics on hand-made masks whose Dice, IoU and HD95 are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genseg.metrics import case_metrics, hard_dice, soft_dice, summarize


def _square(top: int, left: int, side: int, shape: tuple[int, int] = (32, 32), label: int = 1) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.int64)
    labels[top : top + side, left : left + side] = label
    return labels


def test_overlapping_squares() -> None:
    target, pred = _square(2, 2, 4), _square(2, 4, 4)  # 16 pixels each, 8 shared
    metrics = case_metrics(pred, target, num_classes=2)
    assert metrics["dice"] == metrics["dice_1"] == pytest.approx(0.5)
    assert metrics["iou"] == metrics["iou_1"] == pytest.approx(8 / 24)
    assert metrics["empty_pred_1"] == metrics["empty_target_1"] == 0.0


def test_identical_masks() -> None:
    target = _square(5, 7, 9)
    expected = {"dice": 1.0, "iou": 1.0, "hd95": 0.0, "dice_1": 1.0, "iou_1": 1.0, "hd95_1": 0.0}
    assert case_metrics(target, target, num_classes=2) == expected | {"empty_target_1": 0.0, "empty_pred_1": 0.0}


@pytest.mark.parametrize(("side", "shift"), [(20, 3), (10, 5), (12, 1)])
def test_hd95_of_shifted_square_is_the_shift(side: int, shift: int) -> None:
    target, pred = _square(4, 4, side, (40, 40)), _square(4, 4 + shift, side, (40, 40))
    assert case_metrics(pred, target, num_classes=2)["hd95"] == pytest.approx(shift)


def test_empty_cases() -> None:
    empty, square = np.zeros((16, 16), dtype=np.int64), _square(3, 3, 5, (16, 16))
    both_empty = case_metrics(empty, empty, num_classes=2)
    assert (both_empty["dice"], both_empty["iou"], both_empty["hd95"]) == (1.0, 1.0, 0.0)
    assert (both_empty["empty_target_1"], both_empty["empty_pred_1"]) == (1.0, 0.0)

    false_positive = case_metrics(square, empty, num_classes=2)
    assert (false_positive["dice"], false_positive["iou"]) == (0.0, 0.0)
    assert math.isnan(false_positive["hd95"])
    assert (false_positive["empty_target_1"], false_positive["empty_pred_1"]) == (1.0, 0.0)

    missed = case_metrics(empty, square, num_classes=2)
    assert (missed["dice"], missed["iou"]) == (0.0, 0.0)
    assert math.isnan(missed["hd95"])
    assert (missed["empty_target_1"], missed["empty_pred_1"]) == (0.0, 1.0)


def test_roi_restricts_the_count() -> None:
    target = _square(2, 2, 6)
    pred = target + _square(20, 20, 6)  # a false positive in the lower right
    roi = np.zeros((32, 32), dtype=bool)
    roi[:16, :16] = True
    assert case_metrics(pred, target, num_classes=2)["dice"] == pytest.approx(2 / 3)
    inside = case_metrics(pred, target, num_classes=2, roi=roi)
    assert (inside["dice"], inside["iou"], inside["hd95"]) == (1.0, 1.0, 0.0)


def test_volume_input() -> None:
    target = np.zeros((10, 20, 20), dtype=np.int64)
    target[2:8, 5:15, 5:15] = 1
    pred = np.roll(target, 2, axis=0)  # 4 of 6 slices overlap
    metrics = case_metrics(torch.from_numpy(pred), torch.from_numpy(target), num_classes=2)
    assert metrics["dice"] == pytest.approx(4 / 6)
    assert metrics["iou"] == pytest.approx(4 / 8)
    assert metrics["hd95"] == pytest.approx(2.0)


def test_multiclass_keys_union_and_means() -> None:
    target = _square(2, 2, 4) + _square(10, 10, 4, label=2)
    pred = _square(2, 2, 4) + _square(10, 12, 4, label=2)  # class 2 half overlaps
    metrics = case_metrics(pred, target, num_classes=3, class_names=["background", "left", "right"])
    structures = ("left", "right", "fg")
    per_structure = {f"{key}_{s}" for s in structures for key in ("dice", "iou", "hd95", "empty_target", "empty_pred")}
    assert set(metrics) == {"dice", "iou", "hd95"} | per_structure
    assert (metrics["dice_left"], metrics["dice_right"]) == (1.0, pytest.approx(0.5))
    assert metrics["dice"] == pytest.approx(0.75)  # mean over the classes, not the union
    assert metrics["dice_fg"] == pytest.approx(2 * 24 / 64)  # union: 32 pixels each side, 24 shared
    assert metrics["hd95"] == pytest.approx((0.0 + metrics["hd95_right"]) / 2)


def test_classes_absent_from_both_maps_are_left_out_of_the_mean() -> None:
    """Labels {0, 7} made an 8-class model: six absent classes scored 1.0 each and hid a poor class 7."""
    target = np.zeros((16, 16), dtype=np.int64)
    target[2:10, 2:10] = 7
    pred = np.zeros_like(target)
    pred[2:4, 2:10] = 7  # a quarter of it
    metrics = case_metrics(pred, target, num_classes=8)
    assert metrics["dice"] == pytest.approx(metrics["dice_7"]) == pytest.approx(2 * 16 / (16 + 64))
    assert metrics["empty_target_3"] == 1.0
    empty = case_metrics(np.zeros_like(target), np.zeros_like(target), num_classes=8)
    assert empty["dice"] == 1.0  # nothing there and nothing predicted: a correct empty answer


def test_mean_hd95_is_undefined_when_a_class_is() -> None:
    target = _square(2, 2, 4) + _square(10, 10, 4, label=2)
    metrics = case_metrics(_square(2, 2, 4), target, num_classes=3)
    assert metrics["empty_pred_2"] == 1.0
    assert math.isnan(metrics["hd95"]) and metrics["hd95_1"] == 0.0


@pytest.mark.parametrize(
    ("pred", "target", "kwargs", "message"),
    [
        (np.zeros((4, 4), np.int64), np.zeros((4, 5), np.int64), {}, "differ"),
        (np.zeros((4, 4), np.float32), np.zeros((4, 4), np.int64), {}, "integer"),
        (np.full((4, 4), 2), np.zeros((4, 4), np.int64), {}, "outside 0..1"),
        (np.zeros(4, np.int64), np.zeros(4, np.int64), {}, "2D"),
        (np.zeros((4, 4), np.int64), np.zeros((4, 4), np.int64), {"roi": np.ones((2, 2), bool)}, "roi"),
        (np.zeros((4, 4), np.int64), np.zeros((4, 4), np.int64), {"class_names": ["lung"]}, "background first"),
    ],
)
def test_invalid_inputs(pred: np.ndarray, target: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        case_metrics(pred, target, num_classes=2, **kwargs)


def test_summarize_counts_undefined_hd95_instead_of_averaging() -> None:
    target, empty = _square(2, 2, 10), np.zeros((32, 32), dtype=np.int64)
    rows = [
        case_metrics(target, target, num_classes=2),  # dice 1, hd95 0
        case_metrics(_square(2, 4, 10), target, num_classes=2),  # dice 0.8, hd95 2
        case_metrics(empty, target, num_classes=2),  # missed: dice 0, hd95 NaN
    ]
    rows[0]["case_id"] = "case_0"  # non-numeric fields are ignored
    summary = summarize(rows)
    assert summary["n_cases"] == 3
    assert summary["dice_mean"] == pytest.approx(0.6)
    assert summary["dice_sd"] == pytest.approx(np.std([1.0, 0.8, 0.0]))
    assert summary["hd95_mean"] == pytest.approx(1.0) and summary["hd95_sd"] == pytest.approx(1.0)
    assert summary["n_hd95_undefined"] == summary["n_hd95_1_undefined"] == 1
    assert summary["n_empty_pred_1"] == 1 and summary["n_empty_target_1"] == 0
    assert "case_id_mean" not in summary


def test_summarize_rejects_mixed_or_no_rows() -> None:
    binary = case_metrics(_square(2, 2, 4), _square(2, 2, 4), num_classes=2)
    multi = case_metrics(_square(2, 2, 4), _square(2, 2, 4), num_classes=3)
    with pytest.raises(ValueError, match=r"'dice_2' is missing from rows \[1\]"):
        summarize([multi, binary])
    with pytest.raises(ValueError, match=r"'dice_2' is missing from rows \[0\]"):
        summarize([binary, multi])
    with pytest.raises(ValueError, match="no cases"):
        summarize([])


def _logits(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return 30.0 * F.one_hot(labels, num_classes).movedim(-1, 1).float()


def test_batch_dice_pools_pixels_over_the_batch() -> None:
    target = torch.from_numpy(np.stack([_square(2, 2, 4, (8, 8)), np.zeros((8, 8), np.int64)]))
    pred = target.clone()
    pred[1, :2, :2] = 1  # 4 false-positive pixels in the image without foreground
    expected = 2 * 16 / (20 + 16)  # per-image averaging would give (1 + 0) / 2
    assert hard_dice(_logits(pred, 2), target).item() == pytest.approx(expected, abs=1e-5)
    assert soft_dice(_logits(pred, 2), target).item() == pytest.approx(expected, abs=1e-5)


def test_batch_dice_averages_foreground_classes() -> None:
    target = torch.from_numpy(_square(2, 2, 4, (8, 8)) + _square(0, 6, 2, (8, 8), label=2))[None]
    pred = target.clone()
    pred[target == 2] = 0  # class 2 missed entirely
    assert hard_dice(_logits(pred, 3), target).item() == pytest.approx(0.5, abs=1e-5)
    assert hard_dice(_logits(target, 3), target).item() == pytest.approx(1.0)


def test_soft_dice_is_differentiable_and_hard_dice_is_not() -> None:
    logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    target = torch.randint(0, 2, (2, 8, 8))
    (grad,) = torch.autograd.grad(soft_dice(logits, target), logits)
    assert grad.abs().sum() > 0
    assert not hard_dice(logits, target).requires_grad


def test_hd95_is_in_mm_where_the_spacing_is_given() -> None:
    target = np.zeros((4, 10, 10), dtype=np.int64)
    target[1:3, 2:5, 2:5] = 1
    pred = np.roll(target, 3, axis=2)  # 3 voxels along the last axis
    assert case_metrics(pred, target, 2)["hd95"] == pytest.approx(3.0)
    assert case_metrics(pred, target, 2, spacing=(2.0, 1.0, 0.5))["hd95"] == pytest.approx(1.5)
