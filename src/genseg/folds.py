"""Cross-validation over the budget: K runs whose validation cases rotate through it, one model.

With one run, the budget's validation pairs only choose a checkpoint and a post-processing: two
of nine labels never train. nnU-Net trains five folds instead and ensembles them at prediction:
every label trains K - 1 of the K models and validates one. ``train_folds`` trains the K runs
of a fold set (:class:`genseg.runs.FoldSet`) one after the other, each a whole run folder with
its own checkpoint policy and post-processing choice; for ``separate`` and ``genseg`` each fold
pre-trains its own generator on its own training pairs, so no fold's generator saw its
validation cases. Evaluation and prediction treat the set as one model
(:class:`genseg.evaluation.FoldEnsemble`).

Example:
    >>> from genseg import DataConfig, RunConfig
    >>> config = RunConfig(data=DataConfig(root=Path("data/lungs"), budget=9))
    >>> train_folds(config, Path("runs/lungs-folds5"), 5)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from genseg.config import RunConfig
from genseg.data import index_cases, read_split, write_split
from genseg.errors import ConfigError
from genseg.evaluation import choose_fold_postprocessing
from genseg.run_data import resolve_split
from genseg.runs import FoldSet, load_config, read_fold_set
from genseg.training import LOCK, TrainResult, resume_config, train

log = logging.getLogger(__name__)


def fold_configs(config: RunConfig, folds: int, split_file: Path) -> list[RunConfig]:
    """The config of each fold: ``config`` with its fold of the budget and the fold set's split."""
    return [replace(config, data=replace(config.data, folds=folds, fold=fold, n_val=None, split_file=split_file))
            for fold in range(folds)]


def train_folds(config: RunConfig, out: Path, folds: int, *, resume: bool = False, progress: bool = True,
                tensorboard: bool = False) -> list[TrainResult]:
    """Train the ``folds`` runs of a fold set in ``out``, then choose its ensemble's post-processing.

    Args:
        config: the settings every fold shares; its ``data.folds`` and ``data.fold`` are set per fold.
        out: the fold set's folder: ``folds.json``, ``split.json`` and ``fold_0/`` ... (see
            :mod:`genseg.runs`).
        folds: K, between 2 and the budget.
        resume: continue a fold set: finished folds are kept (a larger ``train.iterations``
            extends them), a killed one resumes from its ``last.pt``, the rest start.

    Returns:
        Each fold's result.
    """
    if not 2 <= folds <= config.data.budget:
        raise ConfigError(f"--folds must be between 2 and the budget {config.data.budget}, got {folds}")
    fold_set = FoldSet(Path(out), folds)
    _check_fold_folder(fold_set, resume)
    if config.data.root is None:
        raise ConfigError("no data folder given; pass --data DIR")
    split_file = fold_set.paths.split
    if not split_file.is_file():  # drawn once: every fold validates on its share of the same budget
        if config.data.split_file is not None:
            write_split(read_split(config.data.split_file), split_file)
        else:
            resolve_split(config, index_cases(config.data.root, layout=config.data.layout), fold_set.paths)
    fold_set.write_manifest()
    results = []
    for member, fold_config in zip(fold_set.members(), fold_configs(config, folds, split_file)):
        started = member.config.is_file()
        if started:  # as saved, the plan's choices included; only the length may grow
            iterations = load_config(member).train.iterations
            fold_config = resume_config(member.root, fold_config)
            if member.result.is_file() and iterations == fold_config.train.iterations:
                results.append(TrainResult.read(member))  # finished: kept as it is
                continue
        log.info("fold %d of %d: %s", fold_config.data.fold + 1, folds, member.root)
        results.append(train(fold_config, member.root, resume=started, progress=progress, tensorboard=tensorboard))
    choose_fold_postprocessing(fold_set)
    return results


def _check_fold_folder(fold_set: FoldSet, resume: bool) -> None:
    """Refuse a fold set to be overwritten, one of another K, or a folder of other files."""
    existing = read_fold_set(fold_set.root)
    if existing is not None and not resume:
        raise FileExistsError(f"{fold_set.root} already holds a fold set; pass --resume to continue it or choose "
                              "another --out")
    if existing is not None and existing.folds != fold_set.folds:
        raise ConfigError(f"{fold_set.root} is a fold set of {existing.folds} folds; resume it with --folds "
                          f"{existing.folds}, or train {fold_set.folds} folds in another --out")
    if existing is None and fold_set.root.is_dir():
        foreign = sorted(path.name for path in fold_set.root.iterdir() if path.name not in (LOCK, "split.json"))
        if foreign:
            raise FileExistsError(f"{fold_set.root} holds files but is not a fold set (e.g. {foreign[0]}); choose an "
                                  "empty or new --out, so nothing of yours is overwritten")
