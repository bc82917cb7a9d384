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
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path

from genseg.config import RunConfig
from genseg.data import index_cases, read_split, write_split
from genseg.errors import ConfigError
from genseg.evaluation import choose_fold_postprocessing
from genseg.processes import ProcessDied, run_in_processes
from genseg.run_data import resolve_split
from genseg.runs import FoldSet, RunPaths, load_config, read_fold_set
from genseg.runtime import available_cores, set_threads
from genseg.training import LOCK, TrainResult, resume_config, train

log = logging.getLogger(__name__)


def fold_configs(config: RunConfig, folds: int, split_file: Path) -> list[RunConfig]:
    """The config of each fold: ``config`` with its fold of the budget and the fold set's split."""
    return [replace(config, data=replace(config.data, folds=folds, fold=fold, n_val=None, split_file=split_file))
            for fold in range(folds)]


def train_folds(config: RunConfig, out: Path, folds: int, *, resume: bool = False, progress: bool = True,
                tensorboard: bool = False, workers: int = 1) -> list[TrainResult]:
    """Train the ``folds`` runs of a fold set in ``out``, then choose its ensemble's post-processing.

    Args:
        config: the settings every fold shares; its ``data.folds`` and ``data.fold`` are set per fold.
        out: the fold set's folder: ``folds.json``, ``split.json`` and ``fold_0/`` ... (see
            :mod:`genseg.runs`).
        folds: K, between 2 and the budget.
        resume: continue a fold set: finished folds are kept (a larger ``train.iterations``
            extends them), a killed one resumes from its ``last.pt``, the rest start.
        workers: folds trained at once, each in its own process with a share of the cores
            (:mod:`genseg.processes`).

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
    to_train = []
    for member, fold_config in zip(fold_set.members(), fold_configs(config, folds, split_file)):
        if member.config.is_file():  # as saved, the plan's choices included; only the length may grow
            iterations = load_config(member).train.iterations
            fold_config = resume_config(member.root, fold_config)
            if member.result.is_file() and iterations == fold_config.train.iterations:
                continue  # finished: kept as it is
        to_train.append((member, fold_config))
    if workers > 1 and len(to_train) > 1:
        _train_in_processes(to_train, workers, tensorboard)
    else:
        for member, fold_config in to_train:
            log.info("fold %d of %d: %s", fold_config.data.fold + 1, folds, member.root)
            train(fold_config, member.root, resume=member.config.is_file(), progress=progress,
                  tensorboard=tensorboard)
    choose_fold_postprocessing(fold_set)
    return [TrainResult.read(member) for member in fold_set.members()]


def _train_in_processes(to_train: list[tuple[RunPaths, RunConfig]], workers: int, tensorboard: bool) -> None:
    """Train folds ``workers`` at a time, each in a spawned process; name every fold that failed."""
    threads = max(1, available_cores() // workers)
    folds = [_Fold(member.root, config, threads, tensorboard) for member, config in to_train]
    failed = []
    for fold, answer in run_in_processes(folds, _train_and_send, workers, on_start=_log_start):
        if answer is not None:
            how = f"its process was {answer.how}" if isinstance(answer, ProcessDied) else answer
            failed.append(f"{fold.run_dir.name} ({how}; its log: {fold.run_dir / 'train.log'})")
    if failed:
        raise ConfigError(f"{len(failed)} of {len(folds)} folds failed: {'; '.join(sorted(failed))}; fix the cause "
                          "and continue with --resume")


@dataclass(frozen=True)
class _Fold:
    """One fold to train in a process of its own."""

    run_dir: Path
    config: RunConfig
    threads: int
    tensorboard: bool


def _log_start(fold: _Fold) -> None:
    log.info("started fold %d (%d threads; log: %s)", fold.config.data.fold + 1, fold.threads,
             fold.run_dir / "train.log")


def _train_and_send(fold: _Fold, sender: Connection) -> None:
    """One fold's training in a worker process; it sends None, or the error's first line."""
    try:
        set_threads(fold.threads)
        train(fold.config, fold.run_dir, resume=RunPaths(fold.run_dir).config.is_file(), progress=False,
              tensorboard=fold.tensorboard)
        sender.send(None)
    except Exception as error:  # the traceback is in the fold's train.log
        sender.send(f"{type(error).__name__}: {error}".splitlines()[0])
    finally:
        sender.close()


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
