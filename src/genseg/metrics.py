"""Segmentation metrics: per-case Dice, IoU and HD95, their summary, and batch Dice for validation.

Pure functions over label maps; they know nothing of training. Per-case metrics follow one
explicit convention for empty structures (see :func:`case_metrics`) and flag them, so that a
summary can count undefined distances instead of averaging them away.

Example:
    >>> import numpy as np
    >>> target = np.zeros((8, 8), dtype=np.int64); target[2:6, 2:6] = 1
    >>> case_metrics(target, target, num_classes=2)["dice"]
    1.0
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from monai.metrics import compute_dice, compute_hausdorff_distance, compute_iou
from torch import Tensor

__all__ = ["case_metrics", "hard_dice", "soft_dice", "summarize"]

_METRICS = ("dice", "iou", "hd95")


def case_metrics(
    pred: np.ndarray | Tensor,
    target: np.ndarray | Tensor,
    num_classes: int,
    roi: np.ndarray | Tensor | None = None,
    class_names: Sequence[str] | None = None,
    spacing: Sequence[float] | None = None,
) -> dict[str, float]:
    """Dice, IoU and HD95 of one case, per foreground class and averaged over them.

    HD95 is MONAI's: the larger of the two directed 95th-percentile distances between the
    boundaries, in pixels (voxels), or in mm where ``spacing`` is given. Empty structures follow
    fixed rules:

    ============================  ====  ===  =====
    case                          dice  iou  hd95
    ============================  ====  ===  =====
    target empty, pred empty      1     1    0
    target empty, pred not empty  0     0    NaN
    target present, pred empty    0     0    NaN
    ============================  ====  ===  =====

    and are flagged: ``empty_target_<name>`` is 1.0 when the class is absent from the target,
    ``empty_pred_<name>`` is 1.0 when the prediction misses a class present in the target. The
    case's means are over the classes present in the target or the prediction (over all of them
    when none is).

    Args:
        pred: predicted integer label map (H, W) or (D, H, W), values in 0..num_classes-1.
        target: ground-truth label map of the same shape.
        num_classes: K, background included (2 for a binary task).
        roi: optional bool mask of the same shape; pixels outside it are set to background in
            both maps before anything is computed (e.g. DRIVE's field of view).
        class_names: a name per label value, background first (length K); default ``"1"`` ..
        spacing: the voxel size along each axis of the maps (a volume's, in mm), for HD95 in mm.

    Returns:
        ``dice``, ``iou``, ``hd95``: means over the foreground classes (``hd95`` is NaN when
        any class's is); ``dice_<name>``, ``iou_<name>``, ``hd95_<name>`` and the two flags for
        each foreground class; and for K > 2 the same for ``fg``, all foreground classes merged.
    """
    pred, target = _label_map(pred, "pred", num_classes), _label_map(target, "target", num_classes)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} and target shape {target.shape} differ")
    if roi is not None:
        roi = _as_numpy(roi).astype(bool)
        if roi.shape != target.shape:
            raise ValueError(f"roi shape {roi.shape} differs from the label maps' shape {target.shape}")
        pred, target = np.where(roi, pred, 0), np.where(roi, target, 0)
    names = _foreground_names(num_classes, class_names)
    structures = {name: (pred == label, target == label) for label, name in enumerate(names, start=1)}
    if num_classes > 2:
        structures["fg"] = (pred > 0, target > 0)
    per_structure = _structure_metrics(structures, spacing)
    # A class absent from both maps says nothing about this case: it is left out of the mean rather
    # than counted as a perfect 1 (six absent classes made a 0.13 class read 0.876). A case with no
    # structure in either map is a correct empty answer and keeps the rules above.
    present = [name for name, (pred_mask, target_mask) in structures.items()
               if name in names and (pred_mask.any() or target_mask.any())] or names
    means = {metric: float(np.mean([per_structure[f"{metric}_{name}"] for name in present])) for metric in _METRICS}
    return {**means, **per_structure}


def summarize(rows: Sequence[dict[str, object]]) -> dict[str, float]:
    """Mean and SD over cases of every metric of :func:`case_metrics` rows.

    Dice and IoU are plain means (a NaN would show). HD95 means skip the NaN cases, which are
    counted instead: ``n_<key>_undefined`` for every ``hd95`` key. Flags are summed into
    ``n_<flag>`` (e.g. ``n_empty_pred_1``: cases where class 1 was missed). SDs are population
    SDs (ddof 0). Non-numeric fields, such as a case id added by the caller, are ignored.

    Args:
        rows: one dict per case, all with the same metric keys.

    Returns:
        ``n_cases``, ``<key>_mean`` and ``<key>_sd`` per metric key, and the counts above.
    """
    if not rows:
        raise ValueError("no cases to summarize")
    keys = dict.fromkeys(key for row in rows for key, value in row.items() if isinstance(value, numbers.Real))
    summary: dict[str, float] = {"n_cases": len(rows)}
    for key in keys:
        missing = [i for i, row in enumerate(rows) if key not in row]
        if missing:
            raise ValueError(f"metric {key!r} is missing from rows {missing}; summarize cases with the same classes")
        values = np.array([row[key] for row in rows], dtype=float)
        if key.startswith("empty_"):
            summary[f"n_{key}"] = int(values.sum())
            continue
        if key.startswith("hd95"):
            undefined = np.isnan(values)
            summary[f"n_{key}_undefined"] = int(undefined.sum())
            values = values[~undefined]
        summary[f"{key}_mean"] = float(values.mean()) if values.size else math.nan
        summary[f"{key}_sd"] = float(values.std()) if values.size else math.nan
    return summary


def soft_dice(logits: Tensor, target: Tensor) -> Tensor:
    """Soft Dice of the softmax probabilities, pooled over the batch, mean over foreground classes.

    Pooling all pixels of the batch per class (rather than averaging per image) keeps images
    without foreground from dominating a small validation batch. Differentiable.

    Args:
        logits: (B, K, H, W) segmenter output.
        target: int64 labels (B, H, W).

    Returns:
        A scalar tensor in [0, 1].
    """
    return _pooled_dice(logits.softmax(dim=1), target)


def hard_dice(logits: Tensor, target: Tensor) -> Tensor:
    """Dice of the argmax prediction, pooled over the batch, mean over foreground classes.

    A class absent from both prediction and target scores 1 (smoothing 1e-5).

    Args:
        logits: (B, K, H, W) segmenter output.
        target: int64 labels (B, H, W).

    Returns:
        A scalar tensor in [0, 1], without gradient.
    """
    one_hot = F.one_hot(logits.detach().argmax(dim=1), logits.shape[1]).movedim(-1, 1)
    return _pooled_dice(one_hot.to(logits.dtype), target)


# Dice over all pixels of the batch (batch=True), per foreground class, averaged over classes.
_pooled_dice_loss = DiceLoss(include_background=False, to_onehot_y=True, batch=True)


def _pooled_dice(probabilities: Tensor, target: Tensor) -> Tensor:
    if probabilities.shape[1] < 2:
        raise ValueError(f"logits need K >= 2 channels (background included), got {tuple(probabilities.shape)}")
    return 1.0 - _pooled_dice_loss(probabilities, target.unsqueeze(1))


def _structure_metrics(structures: dict[str, tuple[np.ndarray, np.ndarray]], spacing: Sequence[float] | None = None
                       ) -> dict[str, float]:
    """Dice, IoU, HD95 and empty flags of each named (pred, target) pair of bool masks."""
    # MONAI's layout: (batch 1, one channel per structure, *spatial) binary maps.
    preds = torch.from_numpy(np.stack([p for p, _ in structures.values()])[None].astype(np.float32))
    targets = torch.from_numpy(np.stack([t for _, t in structures.values()])[None].astype(np.float32))
    # ignore_empty=False gives exactly the rules of case_metrics: 1 if both empty, else 0 when one is.
    dice = compute_dice(preds, targets, include_background=True, ignore_empty=False)[0]
    iou = compute_iou(preds, targets, include_background=True, ignore_empty=False)[0]
    row: dict[str, float] = {}
    for i, (name, (pred, target)) in enumerate(structures.items()):
        pred_empty, target_empty = not pred.any(), not target.any()
        row[f"dice_{name}"] = float(dice[i])
        row[f"iou_{name}"] = float(iou[i])
        row[f"hd95_{name}"] = _hd95(preds[:, i : i + 1], targets[:, i : i + 1], pred_empty, target_empty, spacing)
        row[f"empty_target_{name}"] = float(target_empty)
        row[f"empty_pred_{name}"] = float(pred_empty and not target_empty)
    return row


def _hd95(pred: Tensor, target: Tensor, pred_empty: bool, target_empty: bool,
          spacing: Sequence[float] | None = None) -> float:
    if pred_empty and target_empty:
        return 0.0
    if pred_empty or target_empty:
        return math.nan
    with warnings.catch_warnings():
        # MONAI 1.6 passes its own deprecated get_mask_edges argument; nothing a caller can change.
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy", category=FutureWarning)
        return float(compute_hausdorff_distance(pred, target, include_background=True, percentile=95,
                                                spacing=None if spacing is None else list(spacing)))


def _label_map(labels: np.ndarray | Tensor, what: str, num_classes: int) -> np.ndarray:
    labels = _as_numpy(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"{what} must be a 2D (H, W) or 3D (D, H, W) label map, got shape {labels.shape}")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise ValueError(f"{what} must hold integer labels, got dtype {labels.dtype}; take the argmax of logits")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{what} labels span {labels.min()}..{labels.max()}, "
            f"outside 0..{num_classes - 1} for num_classes={num_classes}"
        )
    return labels


def _foreground_names(num_classes: int, class_names: Sequence[str] | None) -> list[str]:
    if num_classes < 2:
        raise ValueError(f"num_classes counts the background and must be at least 2, got {num_classes}")
    if class_names is None:
        return [str(label) for label in range(1, num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(
            f"class_names needs one name per label value, background first ({num_classes}), got {list(class_names)}"
        )
    names = list(class_names[1:])
    if len(set(names)) != len(names) or "fg" in names:
        raise ValueError(f"foreground class names must be distinct and not 'fg', got {names}")
    return names


def _as_numpy(array: np.ndarray | Tensor) -> np.ndarray:
    return array.detach().cpu().numpy() if isinstance(array, Tensor) else np.asarray(array)
