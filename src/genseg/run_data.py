"""A run's data: its split, its budget's labeled pairs in memory, its label map and its plan.

Only the budget's N cases are read with their masks (:func:`load_run_data`). What the config
leaves to the plan (the image size, the generator kind) is resolved here, once, when the run
starts (:func:`start_run`), and written to ``plan.json``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any

from genseg.config import AUTO, RunConfig
from genseg.data import (
    CaseIndex,
    DataError,
    LabelMap,
    PairTensors,
    Split,
    budget_ids,
    check_sizes,
    check_split_ids,
    index_cases,
    labels_of,
    load_samples,
    make_split,
    read_split,
    to_tensors,
    write_split,
)
from genseg.methods import method_class
from genseg.planning import Plan, fingerprint, make_plan
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
    plan: Plan | None = None

    @property
    def num_classes(self) -> int:
        return self.labels.num_classes


def start_run(config: RunConfig, paths: RunPaths) -> tuple[RunConfig, RunData]:
    """Save a new run's config and load its data; what the plan chose is saved, with ``plan.json``.

    Returns:
        The config with the image size and generator kind resolved, and the run's data.
    """
    save_config(config, paths)
    data = load_run_data(config, paths)
    if data.plan is not None:
        config = planned(config, data.plan)
        save_config(config, paths)
        write_plan(data.plan, paths)
    return config, data


def needs_plan(config: RunConfig) -> bool:
    """Whether the config leaves something to the plan: the image size, or the kind of the generator
    of a method that trains one."""
    planned_kind = config.generator.name == AUTO and method_class(config.train.method).needs_generator
    return config.data.size is None or planned_kind


def planned(config: RunConfig, plan: Plan) -> RunConfig:
    """The config with what it left to the plan filled in from ``plan``; what it sets stays."""
    if config.data.size is None:
        config = replace(config, data=replace(config.data, size=plan.size))
    if config.generator.name == AUTO and method_class(config.train.method).needs_generator:
        config = replace(config, generator=config.generator.of_kind(plan.synthesis))
    return config


def train_val_ids(config: RunConfig, split: Split) -> tuple[list[str], list[str]]:
    """The run's training and validation case ids: its budget in the pool of its seed."""
    return budget_ids(split, config.train.seed, config.data.n_train, config.data.n_val)


def plan_for(config: RunConfig, split: Split) -> Plan:
    """The plan of a run's budget before the run exists (what ``size=None`` and the generator ``auto`` resolve to)."""
    if config.data.root is None:
        raise DataError("no data folder given; pass --data DIR")
    index = index_cases(config.data.root, layout=config.data.layout)
    train_ids, val_ids = train_val_ids(config, split)
    return _plan(config, load_samples(index, train_ids + val_ids, axis=config.data.axis))


def _plan(config: RunConfig, budget_samples: list) -> Plan:
    """The plan from the budget's labeled samples, under the config's cap."""
    return make_plan(fingerprint(budget_samples), max_size=config.data.max_size)


def write_plan(plan: Plan, paths: RunPaths) -> None:
    paths.plan.write_text(json.dumps(plan.to_dict(), indent=2) + "\n")


def load_run_data(config: RunConfig, paths: RunPaths) -> RunData:
    """Index the data folder, pick the budget's train/val cases, and load them as tensors.

    Only the budget's N cases are read with their masks: nothing else with a label reaches
    training. The semi-supervised method also gets the images (never the masks) of the rest
    of the pool.
    """
    if config.data.root is None:
        raise DataError("no data folder given; pass --data DIR (or run genseg demo)")
    index = index_cases(config.data.root, layout=config.data.layout)
    split = resolve_split(config, index, paths)
    check_sizes(index, [*split.test, *split.pool.get(config.train.seed, [])])  # headers only: no label is read
    train_ids, val_ids = train_val_ids(config, split)
    labels = labels_of(index, train_ids + val_ids)  # background-only masks stop here
    log.info("%s", labels.describe())
    train_samples = load_samples(index, train_ids, axis=config.data.axis, labels=labels)
    val_samples = load_samples(index, val_ids, axis=config.data.axis, labels=labels)
    classes = labels.num_classes
    plan = None
    if needs_plan(config):
        plan = _plan(config, train_samples + val_samples)
        log.info("%s", plan.describe())
    size = config.data.size or plan.size
    train = to_tensors(train_samples, size, classes)
    unlabeled = None
    if method_class(config.train.method).needs_unlabeled:
        labeled = set(train_ids) | set(val_ids)
        rest = [case_id for case_id in split.pool[config.train.seed] if case_id not in labeled]
        unlabeled = to_tensors(load_samples(images_only(index, rest), rest, axis=config.data.axis,
                                            require_masks=False), size, classes)
    return RunData(
        train=train,
        val=to_tensors(val_samples, size, classes),
        labels=labels,
        in_channels=train.images.shape[1],
        train_ids=train_ids,
        val_ids=val_ids,
        unlabeled=unlabeled,
        plan=plan,
    )


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
