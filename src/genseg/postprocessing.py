"""Post-processing as nnU-Net does it: keep each class's largest connected component where that
helps on the validation cases.

Predicted lungs can have holes and stray islands; a single-structure class loses nothing by
dropping the islands, but a class with several true structures (two hippocampi in one volume,
several wounds) would. So the choice is made per class, on the run's validation cases only,
and recorded with the run (``postprocessing.json``); evaluation and prediction apply it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from genseg.metrics import case_metrics


def keep_largest_component(labels: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """``labels`` with every component of each class in ``classes`` but its largest set to background.

    Components are 8-connected in 2D (26 in 3D), so a diagonal step does not split a structure.
    """
    out = labels.copy()
    structure = np.ones((3,) * labels.ndim, dtype=bool)
    for label in classes:
        components, count = ndimage.label(labels == label, structure=structure)
        if count > 1:
            sizes = np.bincount(components.ravel())[1:]
            out[(components > 0) & (components != 1 + int(np.argmax(sizes)))] = 0
    return out


def choose_classes(
    predictions: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    num_classes: int,
    rois: Sequence[np.ndarray | None] | None = None,
) -> dict[str, object]:
    """The classes whose mean validation Dice rises when only their largest component is kept.

    Args:
        predictions: the validation cases' predicted label maps.
        targets: their reference label maps.
        num_classes: K, background included.
        rois: optional regions of interest, one per case.

    Returns:
        ``{"largest_component": [classes], "dice_before": {class: dice}, "dice_after": {...}}``.
    """
    rois = list(rois) if rois is not None else [None] * len(predictions)
    before: dict[int, float] = {}
    after: dict[int, float] = {}
    for label in range(1, num_classes):
        key = f"dice_{label}"
        before[label] = float(np.mean([case_metrics(p, t, num_classes, roi=r)[key]
                                       for p, t, r in zip(predictions, targets, rois, strict=True)]))
        after[label] = float(np.mean([case_metrics(keep_largest_component(p, [label]), t, num_classes, roi=r)[key]
                                      for p, t, r in zip(predictions, targets, rois, strict=True)]))
    chosen = [label for label in before if after[label] > before[label]]
    return {"largest_component": chosen, "dice_before": before, "dice_after": after}
