"""A run's data: its split, its plan, and its budget's labeled pairs in memory.

Only the budget's N cases are read with their masks. The plan stage (:func:`plan_run`) decides,
once, what the run trains on and what the config left to the plan (the image size, the generator
kind); :func:`start_run` writes it to ``plan.json`` (or takes the one the benchmark wrote), and a
resumed run reads it back (:func:`read_run_plan`). :func:`load_run_data` then loads the planned
cases and decides nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from genseg.config import AUTO, RunConfig
from genseg.data import (
    CaseIndex,
    DataError,
    LabelMap,
    PairTensors,
    Sample,
    Split,
    budget_ids,
    check_sizes,
    check_split_ids,
    fold_ids,
    index_cases,
    iter_samples,
    labels_of,
    make_split,
    read_split,
    to_tensors,
    volume_geometry,
    voxel_sides,
    write_split,
)
from genseg.data.io import atomic_write
from genseg.data.resample import resample_sample, resampled_shape
from genseg.errors import ConfigError
from genseg.planning import (
    BATCH_SIZE,
    RunPlan,
    fingerprint,
    make_plan,
    plan_axis,
    plan_dims,
    plan_patch,
    plan_spacing,
    single_slice_axis,
    spacing_anisotropy,
)
from genseg.plugins import METHODS, method_class
from genseg.runs import RunPaths, save_config

log = logging.getLogger(__name__)


def default_split(config: RunConfig, index: CaseIndex) -> Split:
    """The seeded split a run makes of a data folder when it is given none."""
    return make_split(index.ids, dataset=index.root.name, test_fraction=config.data.test_fraction,
                      min_pool=config.data.budget)


def resolve_split(config: RunConfig, index: CaseIndex, paths: RunPaths) -> Split:
    """The run's split: the given split file, else the run's own, else a new seeded one.

    The split used is always written to ``split.json`` in the run folder, so a run can be
    evaluated on exactly the test cases it never saw.
    """
    own = config.data.split_file is None and paths.split.is_file() and _drawn_from_this_folder(
        read_split(paths.split), index, paths)
    if config.data.split_file is not None:
        split = read_split(config.data.split_file)
    elif own:
        split = read_split(paths.split)
    else:
        split = default_split(config, index)
        log.info("made a seeded split of %d cases (%d test) in %s", len(index.ids), len(split.test), paths.split)
        if len(split.test) < round(config.data.test_fraction * len(index.ids)):
            log.warning("the budget of %d takes the test cases: %d of %d cases are held out for testing",
                        config.data.budget, len(split.test), len(index.ids))
    check_split_ids(split, index)
    if not own:
        write_split(split, paths.split)
    return split


def _drawn_from_this_folder(split: Split, index: CaseIndex, paths: RunPaths) -> bool:
    """Whether the run's own split covers exactly the folder's cases. It does not where the data
    changed after a failed start: that run never trained, so a new split is drawn (reusing the old
    one left new cases out). A run that has trained is refused, since its weights saw the old data.
    """
    drawn = set(split.test).union(*split.pool.values())
    added, removed = sorted(set(index.ids) - drawn), sorted(drawn - set(index.ids))
    if not added and not removed:
        return True
    change = "; ".join(f"{len(ids)} {what} (e.g. {ids[0]})" for what, ids in (("added", added), ("removed", removed))
                       if ids)
    if paths.last.is_file():
        raise DataError(f"the data folder changed since this run drew its split: {change}; its checkpoints were "
                        "trained on the old cases, so start a new run with another --out", paths.split)
    log.info("the data folder changed since this unfinished run drew its split (%s): drawing a new one", change)
    return False


def images_only(index: CaseIndex, case_ids: list[str]) -> CaseIndex:
    """The cases ``case_ids`` with their mask paths removed, so no mask can be read."""
    cases = {case_id: replace(index.cases[case_id], mask_path=None) for case_id in case_ids}
    return CaseIndex(index.root, index.layout, cases, index.is_volume, index.labels)


@dataclass
class RunData:
    """The labeled pairs of one run, resized and in memory."""

    train: PairTensors
    val: PairTensors
    labels: LabelMap
    in_channels: int
    train_ids: list[str]
    val_ids: list[str]
    unlabeled: PairTensors | None = None

    @property
    def num_classes(self) -> int:
        return self.labels.num_classes

    @property
    def dims(self) -> int:
        """2 for images (B, C, H, W), 3 for volumes (B, C, D, H, W)."""
        return self.train.images.ndim - 2


def plan_run(config: RunConfig, index: CaseIndex, split: Split) -> RunPlan:
    """The plan stage: the run's budget in its split, its label values, and the data set's plan
    from the budget's fingerprint, which fills in what the config leaves to it (``data.size``
    None, ``generator.name`` auto for a method that trains a generator).

    Raises:
        DataError: the budget's masks are background everywhere, or mix label encodings.
    """
    train_ids, val_ids = train_val_ids(config, split)
    labels = labels_of(index, train_ids + val_ids)
    geometries = [volume_geometry(index.cases[case_id].image_path) for case_id in train_ids + val_ids
                  ] if index.is_volume else []
    axis = config.data.axis
    if axis is None:  # images have no axis to choose
        axis = plan_axis(geometries) if geometries else 0
    samples = iter_samples(index, train_ids + val_ids, axis=axis, labels=labels)
    data_set = make_plan(fingerprint(samples), max_size=config.data.max_size)
    decided = []
    size = config.data.size
    if size is None:
        size, decided = data_set.size, [*decided, "data.size"]
    generator = config.generator.name
    anisotropy = spacing_anisotropy([affine for _, affine in geometries]) if geometries else None
    dims = config.data.dims
    if dims is None:
        single_slice = bool(geometries) and single_slice_axis(geometries) is not None
        dims = plan_dims(anisotropy, method_class(config.method.name).volumes, single_slice)
        decided = [*decided, "data.dims"]
    if geometries and dims == 2 and config.data.axis is None:
        decided = [*decided, "data.axis"]
    if _leaves_generator(config):  # in 3D pix2pix: the compositor pastes regions of 2D images
        generator = data_set.synthesis if dims == 2 else "pix2pix"
        decided = [*decided, "generator.name"]
    patch, spacing, extent = config.data.patch, config.data.spacing, None
    if dims == 3:
        _check_volumes(config, index)
        if spacing is None:
            spacing, decided = plan_spacing([affine for _, affine in geometries]), [*decided, "data.spacing"]
        shapes = [resampled_shape(shape, voxel_sides(affine), spacing) for shape, affine in geometries]
        extent = tuple(max(sides) for sides in zip(*shapes))
        if patch is None:
            patch, decided = plan_patch(shapes), [*decided, "data.patch"]
    batch_size = config.train.batch_size
    if batch_size is None:
        batch_size, decided = BATCH_SIZE[dims], [*decided, "train.batch_size"]
    return RunPlan(tuple(train_ids), tuple(val_ids), labels.values, size, generator, data_set, tuple(decided),
                   dims=dims, patch=patch, anisotropy=anisotropy, spacing=spacing, batch_size=batch_size,
                   volume_extent=extent, axis=axis)


def _check_volumes(config: RunConfig, index: CaseIndex) -> None:
    """3D needs volumes and a method that trains on them."""
    if not index.is_volume:
        raise ConfigError(f"data.dims 3 trains on whole volumes, and {index.root} holds 2D images; use --dims 2")
    method = method_class(config.method.name)
    if not method.volumes:
        able = ", ".join(name for name in METHODS.names if method_class(name).volumes)
        raise ConfigError(f"method {config.method.name!r} does not train on whole volumes yet ({able} do); "
                          "use --dims 2 to train it on slices")


def needs_plan(config: RunConfig) -> bool:
    """Whether the config leaves to the plan something that needs the data: 2D or 3D, the image size (the
    patch and the spacing in 3D), or the kind of the generator of a method that trains one. (The batch size
    follows from 2D or 3D alone; the run's own plan stage fills it in.)"""
    data = config.data
    return (data.size is None or data.shape is None or (data.dims == 3 and data.spacing is None)
            or _leaves_generator(config))


def _leaves_generator(config: RunConfig) -> bool:
    return config.generator.name == AUTO and method_class(config.method.name).needs_generator


def planned(config: RunConfig, plan: RunPlan) -> RunConfig:
    """The config with what it left to the plan filled in from ``plan``; what it sets stays."""
    if config.data.axis is None:  # for images too (0), so that a run's saved config always has one
        config = replace(config, data=replace(config.data, axis=plan.axis))
    if "data.dims" in plan.decided and config.data.dims is None:
        config = replace(config, data=replace(config.data, dims=plan.dims))
    if "data.size" in plan.decided and config.data.size is None:
        config = replace(config, data=replace(config.data, size=plan.size))
    if "data.patch" in plan.decided and config.data.patch is None:
        config = replace(config, data=replace(config.data, patch=plan.patch))
    if "data.spacing" in plan.decided and config.data.spacing is None:
        config = replace(config, data=replace(config.data, spacing=plan.spacing))
    if "train.batch_size" in plan.decided and config.train.batch_size is None:
        config = replace(config, train=replace(config.train, batch_size=plan.batch_size))
    if "generator.name" in plan.decided and _leaves_generator(config):
        config = replace(config, generator=config.generator.of_kind(plan.generator))
    return config


def write_plan(plan: RunPlan, paths: RunPaths) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    atomic_write(paths.plan, lambda path: path.write_text(json.dumps(plan.to_dict(), indent=2) + "\n"))


def read_run_plan(paths: RunPaths) -> RunPlan | None:
    """The run's ``plan.json``; None if it has none, or one from before plans held the run's cases
    (its config.json then holds what was planned)."""
    if not paths.plan.is_file():
        return None
    try:
        return RunPlan.from_dict(json.loads(paths.plan.read_text()))
    except (KeyError, TypeError):
        return None
    except ValueError as error:  # JSON that does not parse
        raise DataError(f"the run's plan does not parse ({error}); delete it to plan the run again",
                        paths.plan) from None


def start_run(config: RunConfig, paths: RunPaths) -> tuple[RunConfig, RunData]:
    """Start a new run: save its config, plan it (or take the plan already in its folder, written
    by the benchmark for this budget) and load its data.

    Returns:
        The config with the plan's choices filled in, and the run's data.
    """
    index = _index(config)
    if config.data.dims == 3:
        _check_volumes(config, index)  # before the folder becomes a run's
    save_config(config, paths)  # the folder is a run's from here on (training.check_run_folder)
    split = resolve_split(config, index, paths)
    plan = read_run_plan(paths)
    if plan is None or [list(plan.train_ids), list(plan.val_ids)] != list(train_val_ids(config, split)):
        plan = plan_run(config, index, split)
        write_plan(plan, paths)
    log.info("%s", plan.describe())
    config = planned(config, plan)
    save_config(config, paths)
    return config, load_run_data(config, paths, plan)


def train_val_ids(config: RunConfig, split: Split) -> tuple[list[str], list[str]]:
    """The run's training and validation case ids: its budget in the pool of its seed, or its fold of it."""
    data = config.data
    if data.folds > 1:
        return fold_ids(split, config.train.seed, data.budget, data.folds, data.fold)
    return budget_ids(split, config.train.seed, data.n_train, data.n_val)


def _index(config: RunConfig) -> CaseIndex:
    if config.data.root is None:
        raise DataError("no data folder given; pass --data DIR (or run genseg demo)")
    return index_cases(config.data.root, layout=config.data.layout)


def load_run_data(config: RunConfig, paths: RunPaths, plan: RunPlan | None = None) -> RunData:
    """Index the data folder and load the planned train/val cases as tensors, at ``data.size``.

    Only the budget's N cases are read with their masks: nothing else with a label reaches
    training. The semi-supervised method also gets the images (never the masks) of the rest
    of the pool. Without a plan the cases are the budget's in the run's split.

    Raises:
        ValueError: the config's image size is still left to the plan (start the run with
            :func:`start_run`, which plans it).
        DataError: the masks' values differ from those the run was planned with.
    """
    index = _index(config)
    if not index.is_volume:  # images: 2D, no axis, nothing for the plan to choose
        config = replace(config, data=replace(config.data, dims=config.data.dims or 2,
                                              axis=0 if config.data.axis is None else config.data.axis))
    if config.data.shape is None or (config.data.dims == 2 and config.data.axis is None):
        raise ConfigError("the image size (2D or 3D, the patch, the slicing axis) is left to the plan: start the run "
                          "(genseg train) or set data.size and data.dims")
    split = resolve_split(config, index, paths)
    check_sizes(index, [*split.test, *split.pool.get(config.train.seed, [])])  # headers only: no label is read
    train_ids, val_ids = (list(plan.train_ids), list(plan.val_ids)) if plan else train_val_ids(config, split)
    labels = labels_of(index, train_ids + val_ids)  # background-only masks stop here
    if plan is not None and labels.values != plan.label_values:
        raise DataError(f"the budget's masks hold the values {list(labels.values)}, the run was planned with "
                        f"{list(plan.label_values)}: the data changed; start a new run with another --out", paths.plan)
    log.info("%s", labels.describe())
    size, classes = config.data.shape, labels.num_classes
    train = to_tensors(_run_samples(config, index, train_ids, labels), size, classes)
    val = to_tensors(_run_samples(config, index, val_ids, labels), size, classes)
    unlabeled = None
    if method_class(config.method.name).needs_unlabeled:
        labeled = set(train_ids) | set(val_ids)
        rest = [case_id for case_id in split.pool[config.train.seed] if case_id not in labeled]
        if rest:  # none: the method says so in one line
            unlabeled = to_tensors(_run_samples(config, images_only(index, rest), rest), size, classes)
    return RunData(train=train, val=val, labels=labels, in_channels=train.images.shape[1],
                   train_ids=train_ids, val_ids=val_ids, unlabeled=unlabeled)


def _run_samples(config: RunConfig, index: CaseIndex, case_ids: list[str], labels: LabelMap | None = None
                 ) -> Iterator[Sample]:
    """The cases as the run trains on them, read one at a time: images or slices, or in 3D whole
    volumes at the run's spacing."""
    samples = iter_samples(index, case_ids, axis=config.data.sample_axis, labels=labels,
                           require_masks=labels is not None)
    if config.data.dims == 3 and config.data.spacing is not None:
        return (resample_sample(sample, config.data.spacing) for sample in samples)
    return samples


def checkpoint_labels(state: dict[str, Any]) -> LabelMap:
    """The label map a checkpoint (:func:`weights_checkpoint`) was trained with; 0..K-1 for runs
    made before label maps were recorded."""
    values = state.get("label_values")
    return LabelMap(tuple(values)) if values else LabelMap.identity(state["num_classes"])


def weights_checkpoint(config: RunConfig, data: RunData, weights: dict[str, Any], iteration: int,
                       scores: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``best.pt`` and ``final.pt`` hold: the weights and what loading and judging them needs.

    Args:
        config: the run's config (the segmenter's and generator's settings; the data's size).
        data: the run's data: its classes, image channels and the budget's case ids.
        weights: state dicts by name: ``segmenter``, and what the method exports (``generator``).
        iteration: the iteration the weights are from.
        scores: their validation scores (``val_loss``, ``val_dice``); None if never validated.
    """
    scores = scores or {}
    return {"num_classes": data.num_classes, "label_values": list(data.labels.values),
            "in_channels": data.in_channels, "config": config.to_dict(),
            "train_ids": data.train_ids, "val_ids": data.val_ids, **weights, "iteration": iteration,
            "val_loss": scores.get("val_loss"), "val_dice": scores.get("val_dice")}
