"""Largest-component post-processing and its choice on validation cases."""

from __future__ import annotations

import numpy as np

from genseg.postprocessing import choose_classes, keep_largest_component


def _map() -> np.ndarray:
    labels = np.zeros((20, 20), dtype=np.int64)
    labels[2:8, 2:8] = 1  # class 1: a big blob ...
    labels[15:17, 15:17] = 1  # ... and an island
    labels[10:12, 2:4] = 2  # class 2: two pieces that touch diagonally only
    labels[12:14, 4:6] = 2
    return labels


def test_keep_largest_component_drops_islands_of_the_chosen_classes_only() -> None:
    labels = _map()
    kept = keep_largest_component(labels, [1])
    assert (kept[15:17, 15:17] == 0).all() and (kept[2:8, 2:8] == 1).all()
    assert np.array_equal(kept == 2, labels == 2)  # class 2 not chosen: untouched
    both = keep_largest_component(labels, [1, 2])
    assert np.array_equal(both == 2, labels == 2)  # diagonal neighbours are one component
    assert np.array_equal(keep_largest_component(labels, []), labels)


def test_choice_keeps_a_class_only_where_validation_dice_rises() -> None:
    target = np.zeros((20, 20), dtype=np.int64)
    target[2:8, 2:8] = 1
    target[14:18, 14:18] = 2  # class 2 has two true structures
    target[2:5, 14:17] = 2
    prediction = target.copy()
    prediction[10:12, 10:12] = 1  # a stray island of class 1
    choice = choose_classes([prediction], [target], num_classes=3)
    assert choice["largest_component"] == [1]  # removing class 2's smaller true piece would hurt
    assert choice["dice_after"][1] == 1.0 > choice["dice_before"][1]
    assert choice["dice_after"][2] < choice["dice_before"][2] == 1.0
