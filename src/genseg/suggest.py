"""Which images to label next: unlabeled images ranked by how much the models disagree on them.

Two rankings, as MONAI Label offers them, and random choice beside them:

- ``folds``: the members of a fold set (``train --folds K``) each segment the image; the less
  their masks agree, the more the image is worth a label (query by committee).
- ``tta``: the model segments the mirrored views that training drew (:mod:`genseg.tta`); the less
  the views agree, the higher the rank.
- ``random``: a seeded random order, the baseline every ranking has to beat.

Disagreement is 1 - the mean Dice between every pair of masks (foreground classes, macro mean,
a class absent from both masks left out): a scale-free number in [0, 1], so a large structure does
not outrank a small one by its area alone. Published comparisons find such rankings often fail
to beat random selection; ``benchmarks/selection.py`` measures them on the benchmark's split files,
and :data:`DEFAULT_STRATEGY` follows that measurement (docs/benchmarks.md).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genseg.errors import ConfigError

if TYPE_CHECKING:  # the CLI reads STRATEGIES for its help without importing torch
    from torch import Tensor

    from genseg.config import RunConfig
    from genseg.data import CaseIndex
    from genseg.evaluation import Model

log = logging.getLogger(__name__)

STRATEGIES = ("folds", "tta", "random")
DEFAULT_STRATEGY = "random"  # until a ranking beats random on the benchmark (benchmarks/selection.py)


@dataclass(frozen=True)
class Candidate:
    """An unlabeled case and its disagreement scores (``None`` where the model cannot give one)."""

    case_id: str
    folds: float | None
    tta: float | None


def disagreement(masks: list[np.ndarray], num_classes: int) -> float:
    """1 - the mean Dice over every pair of ``masks`` (label maps of one case), in [0, 1]."""
    if len(masks) < 2:
        raise ConfigError("disagreement needs at least two masks of a case")
    pairs = [_mean_foreground_dice(a, b, num_classes) for a, b in combinations(masks, 2)]
    return float(1.0 - np.mean(pairs))


def _mean_foreground_dice(a: np.ndarray, b: np.ndarray, num_classes: int) -> float:
    # Plain Dice, not metrics.case_metrics: that one also computes HD95, which a ranking never reads.
    scores = []
    for label in range(1, num_classes):
        x, y = a == label, b == label
        if total := int(x.sum() + y.sum()):
            scores.append(2.0 * int((x & y).sum()) / total)
    return float(np.mean(scores)) if scores else 1.0  # both empty: they agree


@dataclass
class _Mirrored:
    """A model seen through one mirror: its probabilities of the flipped images, flipped back."""

    model: Model
    dims: tuple[int, ...]

    @property
    def config(self) -> RunConfig:
        return self.model.config

    @property
    def size(self) -> int:
        return self.model.size

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    def probabilities(self, images: Tensor) -> Tensor:
        if not self.dims:
            return self.model.probabilities(images)
        return self.model.probabilities(images.flip(self.dims)).flip(self.dims)


def _case_mask(model: Model | _Mirrored, samples: list) -> np.ndarray:
    from genseg.evaluation import predict_case

    return predict_case(model, samples, postprocess=False)


def score_candidates(model: Model, images: CaseIndex) -> list[Candidate]:
    """Each unlabeled case's fold disagreement (a fold set only) and mirrored-view disagreement
    (where training drew a mirror), from the model's raw masks (no post-processing)."""
    from genseg.data import load_samples
    from genseg.evaluation import FoldEnsemble

    axis = model.config.data.axis
    members = model.members if isinstance(model, FoldEnsemble) else ()
    mirrors = model.mirrors
    candidates = []
    for case_id in images.ids:
        samples = load_samples(images, [case_id], axis=axis, require_masks=False)
        folds = (disagreement([_case_mask(member, samples) for member in members], model.num_classes)
                 if members else None)
        tta = (disagreement([_case_mask(_Mirrored(model, dims), samples) for dims in mirrors],
                            model.num_classes) if len(mirrors) > 1 else None)
        candidates.append(Candidate(case_id, folds, tta))
    return candidates


def rank(candidates: list[Candidate], strategy: str, seed: int = 0) -> list[str]:
    """Case ids, the one to label first first: by ``strategy``'s disagreement, highest first (ties
    by id), or in a seeded random order."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    if strategy == "random":
        order = np.random.default_rng(seed).permutation(len(candidates))
        return [candidates[i].case_id for i in order]
    scores = {c.case_id: getattr(c, strategy) for c in candidates}
    if any(score is None for score in scores.values()):
        needs = "a fold set (train --folds K)" if strategy == "folds" else "a model trained with mirroring"
        raise ConfigError(f"the {strategy} ranking needs {needs}")
    return sorted(scores, key=lambda case_id: (-scores[case_id], case_id))


def write_suggestions(candidates: list[Candidate], strategy: str, path: Path, seed: int = 0) -> list[str]:
    """``path`` (CSV): every candidate in ``strategy``'s order with both scores; returns that order."""
    from genseg.data.io import atomic_write

    order = rank(candidates, strategy, seed)
    by_id = {c.case_id: c for c in candidates}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "case", "folds_disagreement", "tta_disagreement"])
    for number, case_id in enumerate(order, start=1):
        c = by_id[case_id]
        writer.writerow([number, case_id, *("" if s is None else f"{s:.4f}" for s in (c.folds, c.tta))])
    atomic_write(Path(path), lambda temp: temp.write_text(buffer.getvalue()))
    return order


def default_unlabeled(index: CaseIndex) -> Path:
    """Where a data folder keeps its unlabeled images: ``unlabeled/`` beside ``images/`` and
    ``masks/``, or ``imagesTs/`` in the nnU-Net and MSD layouts."""
    return index.root / ("unlabeled" if index.layout == "folders" else "imagesTs")


def suggest(config: RunConfig, out: Path, count: int, *, unlabeled: Path | None = None, run: Path | None = None,
            strategy: str = DEFAULT_STRATEGY, folds: int = 5, workers: int = 1, progress: bool = True,
            announce: Callable[[str], object] = log.info) -> list[str]:
    """The ``count`` unlabeled images to label next, and ``out/suggestions.csv`` with every one ranked.

    Args:
        config: the settings of the fold set trained when ``run`` is not given (data folder,
            method, segmenter, size, iterations, ...); it trains on every labeled case.
        out: the advice folder; the fold set goes in ``out/folds`` (a killed one resumes).
        unlabeled: a folder of images without masks (default: :func:`default_unlabeled`).
        run: a trained run or fold set to rank with instead of training one.
        strategy: one of :data:`STRATEGIES`.
        folds: K of the fold set trained (at most the labeled cases).
    """
    from genseg.data import index_cases, index_images
    from genseg.evaluation import load_model

    if count < 1:
        raise ConfigError(f"--suggest takes how many images to suggest, at least 1; got {count}")
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    if config.data.root is None:
        raise ConfigError("suggest needs a data folder of labeled cases (--data DIR)")
    labeled = index_cases(config.data.root, layout=config.data.layout)
    images = index_images(unlabeled or default_unlabeled(labeled))
    out = Path(out)
    if run is None and strategy != "random":
        run = out / "folds"
        _train_fold_set(config, labeled, run, min(folds, len(labeled.ids)), workers, progress, announce)
    if run is None:  # random needs no model
        candidates = [Candidate(case_id, None, None) for case_id in images.ids]
    else:
        announce(f"ranking {len(images.ids)} unlabeled images with {run}")
        candidates = score_candidates(load_model(run), images)
    return write_suggestions(candidates, strategy, out / "suggestions.csv")[:count]


def _train_fold_set(config: RunConfig, labeled: CaseIndex, run: Path, folds: int, workers: int, progress: bool,
                    announce: Callable[[str], object]) -> None:
    from genseg.data import write_split
    from genseg.data.splits import Split
    from genseg.folds import train_folds
    from genseg.runs import read_fold_set

    split = run.parent / "folds-split.json"
    if not split.is_file():
        write_split(Split(dataset=labeled.root.name, test=[], pool={0: labeled.ids},
                          note="genseg advise --suggest: every labeled case trains the fold set"), split)
    budget = len(labeled.ids)
    announce(f"training a {folds}-fold set on all {budget} labeled cases in {run}")
    fold_config = replace(config, data=replace(config.data, budget=budget, n_val=None, split_file=split),
                          train=replace(config.train, seed=0))
    train_folds(fold_config, run, folds, resume=read_fold_set(run) is not None, progress=progress, workers=workers)
