"""A run folder: where its files live, its config, its CSV files and its generator pre-training.

Layout of ``runs/NAME/``::

    config.json   the RunConfig          split.json   the split actually used
    plan.json     the run's plan: its cases, labels, image size and generator kind, and the fingerprint
    train.log     the log                history.csv  validation curve
    last.pt       resumable state        best.pt / final.pt  segmenter weights
    result.json   wall time, peak memory, best validation scores
    postprocessing.json  per checkpoint, the classes that keep only their largest component
    eval/<split>/<checkpoint>/  per-case metrics, summary, overlays (eval/ood-<folder>/ for another folder)

A fold set (``genseg train --folds K``, :mod:`genseg.folds`) is a folder of K such runs::

    folds.json    the fold count and the run folders  split.json  the split all folds share
    fold_0/ ... fold_<K-1>/  one run folder each      postprocessing.json  the ensemble's, out of fold
    eval/<split>/<checkpoint>/  the ensemble's per-case metrics (each fold's in its own folder)

Which split and which labeled pairs a run uses, and what it plans, is :mod:`genseg.run_data`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from genseg.config import RunConfig
from genseg.data import DataError
from genseg.data.io import atomic_write
from genseg.errors import ConfigError
from genseg.plugins import generator_methods, method_class

log = logging.getLogger(__name__)

CHECKPOINTS = ("best", "final", "averaged")
"""best.pt (chosen on the validation pairs), final.pt (the last iteration) and, where
``train.average_last`` asked for it, averaged.pt (the weights averaged over the run's end)."""


@dataclass(frozen=True)
class RunPaths:
    """The files of one run folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def split(self) -> Path:
        return self.root / "split.json"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def postprocessing(self) -> Path:
        """Which classes keep only their largest component, per checkpoint (chosen on validation)."""
        return self.root / "postprocessing.json"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    @property
    def last(self) -> Path:
        return self.root / "last.pt"

    @property
    def pretrain(self) -> Path:
        """The generator's pre-training checkpoint (``separate`` and ``genseg``)."""
        return self.root / "pretrain.pt"

    def weights(self, checkpoint: str) -> Path:
        """``best.pt`` (chosen on the validation pairs, ``train.select``), ``final.pt`` (last iteration)
        or ``averaged.pt`` (the weights averaged over the last ``train.average_last`` of the run)."""
        if checkpoint not in CHECKPOINTS:
            raise ConfigError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
        return self.root / f"{checkpoint}.pt"

    def saved_checkpoints(self) -> tuple[str, ...]:
        """The checkpoints this run has written, in :data:`CHECKPOINTS` order."""
        return tuple(name for name in CHECKPOINTS if (self.root / f"{name}.pt").is_file())

    def preferred_checkpoint(self) -> str:
        """The checkpoint to predict with: ``averaged`` where the run saved it, else ``best``
        (the checkpoint policy, docs/benchmarks.md)."""
        return "averaged" if self.weights("averaged").is_file() else "best"

    def eval_dir(self, split_name: str, checkpoint: str) -> Path:
        return self.root / "eval" / split_name / checkpoint


FOLDS_FILE = "folds.json"
"""The manifest of a fold set: the fold count and the run folder of each fold."""


@dataclass(frozen=True)
class FoldSet:
    """The folder of a cross-validation fold set: the runs of its K folds, scored as one model."""

    root: Path
    folds: int

    @property
    def manifest(self) -> Path:
        return self.root / FOLDS_FILE

    @property
    def paths(self) -> RunPaths:
        """The fold set's own files (split, post-processing, eval/), laid out as a run folder's."""
        return RunPaths(self.root)

    def members(self) -> list[RunPaths]:
        return [RunPaths(self.root / f"fold_{fold}") for fold in range(self.folds)]

    def saved_checkpoints(self) -> tuple[str, ...]:
        """The checkpoints every fold has written."""
        members = self.members()
        return tuple(c for c in members[0].saved_checkpoints() if all(c in m.saved_checkpoints() for m in members))

    def write_manifest(self) -> None:
        text = json.dumps({"folds": self.folds, "runs": [m.root.name for m in self.members()]}, indent=2) + "\n"
        atomic_write(self.manifest, lambda temp: temp.write_text(text))


def read_fold_set(folder: Path) -> FoldSet | None:
    """The fold set in ``folder``, or ``None`` where it holds none (a single run, say)."""
    manifest = Path(folder) / FOLDS_FILE
    if not manifest.is_file():
        return None
    try:
        folds = json.loads(manifest.read_text())["folds"]
    except (ValueError, KeyError, TypeError):
        raise DataError("not a fold manifest (it needs a \"folds\" count); restore it or train the fold set again",
                        manifest) from None
    return FoldSet(Path(folder), int(folds))


def eval_name(split: str, other_data: Path | None = None) -> str:
    """The name of an evaluation's results: the split, or ``ood-<folder>`` for another data folder
    (scored whole, so no split of it is named)."""
    return split if other_data is None else f"ood-{other_data.name}"


def pretraining_key(config: RunConfig) -> str | None:
    """A hash of what a run's generator pre-training depends on; None if it pre-trains nothing.

    Pre-training runs before the method's first step, from the same seeded generators, in every
    method that needs a generator: runs that differ only in the method, its settings or the
    number of segmenter iterations pre-train the same generator, bit for bit (a test checks it).
    """
    if not method_class(config.method.name).needs_generator or config.generator.pretrain_iterations == 0:
        return None
    values = config.to_dict()
    del values["method"]
    values["train"] = {k: v for k, v in values["train"].items() if k != "iterations"}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def adopt_pretrained_generator(source: Path, config: RunConfig, paths: RunPaths) -> None:
    """Copy another run's generator pre-training into this run, after checking it is the same one.

    Args:
        source: a ``pretrain.pt`` or a run folder holding one.
        config: this run's config (image size resolved).
        paths: this run's folder.

    Raises:
        DataError: no pre-training there, or one made for other data, budget, seed or generator.
    """
    source = Path(source)
    source = source / "pretrain.pt" if source.is_dir() else source
    if not source.is_file():
        raise DataError("no generator pre-training here (a pretrain.pt, or a separate/genseg run folder holding "
                        "one)", source)
    from genseg.checkpoint import load_checkpoint  # torch, only when a pre-training is adopted

    theirs = load_checkpoint(source).get("key")
    ours = pretraining_key(config)
    if ours is None:
        raise DataError(f"method {config.method.name!r} pre-trains no generator; --pretrained-generator is for "
                        f"{', '.join(generator_methods())}", source)
    if theirs != ours:
        raise DataError("this pre-training was made for other data, budget, seed, image size or generator "
                        "settings than this run's (or by an older genseg); pre-train with this run's settings", source)
    if source.resolve() != paths.pretrain.resolve():
        atomic_write(paths.pretrain, lambda temp: shutil.copyfile(source, temp))


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts (what :func:`write_csv` wrote)."""
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(rows: list[dict], path: Path) -> None:
    """Rows of dicts as CSV; the columns are every key, in first-seen order (blank where absent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def save_config(config: RunConfig, paths: RunPaths) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(json.dumps(config.to_dict(), indent=2) + "\n")


def load_config(paths: RunPaths) -> RunConfig:
    if not paths.config.is_file():
        if (paths.root / FOLDS_FILE).is_file():
            raise DataError(f"a fold set, not one run: evaluate and predict take it whole; for anything else "
                            f"pass one fold's folder, e.g. {paths.root / 'fold_0'}", paths.root)
        raise DataError("not a genseg run folder (no config.json); pass the --out folder of genseg train", paths.root)
    return RunConfig.from_dict(json.loads(paths.config.read_text()))
