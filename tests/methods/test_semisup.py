"""The mean-teacher baseline: unlabeled pool images only, teacher as EMA, ramped consistency."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genseg.config import DataConfig, MethodConfig, RunConfig, SegmenterConfig, TrainConfig
from genseg.data import index_cases, make_split, write_split
from genseg.data.phantom import make_phantom
from genseg.methods import create_method
from genseg.run_data import images_only, load_run_data
from genseg.runs import RunPaths
from genseg.training import build_context


def _config(tmp_path: Path, method: str = "semisup") -> RunConfig:
    data = make_phantom(tmp_path / "data", n_cases=12, size=32)
    split_file = tmp_path / "split.json"
    write_split(make_split(index_cases(data).ids, dataset="phantom", test_fraction=0.25), split_file)
    return RunConfig(
        data=DataConfig(root=data, split_file=split_file, budget=3, size=32),
        segmenter=SegmenterConfig(options={"base": 4}),
        method=MethodConfig(method),
        train=TrainConfig(iterations=10, batch_size=2),
    )


def test_unlabeled_images_are_the_rest_of_the_pool_without_masks(tmp_path: Path) -> None:
    config = _config(tmp_path)
    data = load_run_data(config, RunPaths(tmp_path / "run"))
    assert data.unlabeled is not None and data.unlabeled.masks is None
    pool = make_split(index_cases(config.data.root).ids, dataset="phantom", test_fraction=0.25).pool[0]
    assert data.unlabeled.case_ids == [i for i in pool if i not in data.train_ids + data.val_ids]
    index = index_cases(config.data.root)
    assert all(case.mask_path is None for case in images_only(index, index.ids[:3]).cases.values())


def test_other_methods_load_no_unlabeled_images(tmp_path: Path) -> None:
    assert load_run_data(_config(tmp_path, "augment"), RunPaths(tmp_path / "run")).unlabeled is None


def test_teacher_follows_the_student_and_consistency_ramps_up(tmp_path: Path) -> None:
    config = _config(tmp_path)
    data = load_run_data(config, RunPaths(tmp_path / "run"))
    context = build_context(config, data, torch.device("cpu"), progress=False)
    method = create_method("semisup", context)
    student = context.stepper.segmenter
    weights = [method.consistency_weight(i) for i in range(0, 5)]
    assert weights == sorted(weights) and weights[0] < 0.01 and weights[-1] == pytest.approx(1.0)
    teacher_before = [p.clone() for p in method.teacher.parameters()]
    scalars = method.step(0)
    assert {"loss", "loss_real", "consistency"} <= set(scalars)
    # the first update is a plain copy (decay 0), later ones move part of the way
    assert all(torch.equal(t, s) for t, s in zip(method.teacher.parameters(), student.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(teacher_before, method.teacher.parameters()))
    method.step(1)
    assert any(not torch.equal(t, s) for t, s in zip(method.teacher.parameters(), student.parameters()))
    assert not any(p.requires_grad for p in method.teacher.parameters())


def test_semisup_without_unlabeled_images_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    data = load_run_data(config, RunPaths(tmp_path / "run"))
    data.unlabeled = None
    with pytest.raises(ValueError, match="unlabeled"):
        create_method("semisup", build_context(config, data, torch.device("cpu"), progress=False))


def test_mean_teacher_steps_through_the_stepper_with_the_labeled_pairs_in_their_own_pass(tmp_path: Path) -> None:
    """The labeled batch sees the batch statistics it sees in every other method; the
    unlabeled images go through the student in a second pass."""
    config = _config(tmp_path)
    data = load_run_data(config, RunPaths(tmp_path / "run"))
    context = build_context(config, data, torch.device("cpu"), progress=False)
    method = create_method("semisup", context)
    steps: list[dict] = []
    stepped = context.stepper.step
    context.stepper.step = lambda *args, **kwargs: steps.append(kwargs) or stepped(*args, **kwargs)
    batch_sizes: list[int] = []
    handle = context.stepper.segmenter.register_forward_hook(
        lambda module, inputs, output: batch_sizes.append(inputs[0].shape[0]))
    scalars = method.step(3)
    handle.remove()
    assert len(steps) == 1 and steps[0]["extra"] is not None
    assert len(batch_sizes) == 2 and batch_sizes[0] == config.train.batch_size  # labeled, then unlabeled
    weight = method.consistency_weight(3)
    assert scalars["loss"] == pytest.approx(scalars["loss_real"] + weight * scalars["consistency"], rel=1e-5)
