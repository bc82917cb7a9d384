"""Inference at the input's own resolution, per-case metrics, overlays and prediction export.

Predictions are made at the training size and their class probabilities resized back to each
image's original size before the argmax, so metrics compare against the untouched masks.
Volumes are predicted slice by slice and scored in 3D, one row per volume.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from PIL import Image, ImageDraw
from scipy import ndimage
from torch import Tensor, nn

from genseg.augment import augmentation_ranges
from genseg.checkpoint import load_checkpoint
from genseg.config import RunConfig
from genseg.data import (
    CaseIndex,
    DataError,
    LabelMap,
    Sample,
    dev_ids,
    index_cases,
    index_images,
    load_samples,
    read_split,
    resize_probabilities,
    to_tensors,
    value_name,
    volume_geometry,
    write_label_volume,
    write_mask_png,
)
from genseg.data.io import atomic_write, display_pixels, volume_output_suffix
from genseg.data.resample import probabilities_to_shape, resample_sample
from genseg.errors import ConfigError
from genseg.metrics import case_metrics, summarize
from genseg.plugins import method_class
from genseg.postprocessing import choose_classes, keep_largest_component
from genseg.run_data import checkpoint_labels, train_val_ids
from genseg.runs import FoldSet, RunPaths, eval_name, load_config, read_fold_set, write_csv
from genseg.segmenters import segmenter_from_config
from genseg.tta import Mirrors, mirrored_probabilities, training_mirrors

log = logging.getLogger(__name__)

SPLITS = ("test", "dev", "val", "train", "all")


@dataclass
class TrainedSegmenter:
    """A segmenter restored from a run, with what inference needs to know."""

    model: nn.Module
    config: RunConfig
    labels: LabelMap
    """The stored mask value of each class the model predicts."""
    iteration: int
    in_channels: int
    largest_component: tuple[int, ...] = ()
    checkpoint: str = ""
    """Which of the run's checkpoints it is (best, final, averaged)."""
    tta: bool = False
    """Whether inference averages the mirrored views training has seen (:attr:`mirrors`)."""

    @property
    def num_classes(self) -> int:
        return self.labels.num_classes

    @property
    def size(self) -> int | tuple[int, int, int]:
        """The square side images are resized to, or the patch of whole volumes."""
        return self.config.data.shape

    @property
    def mirrors(self) -> Mirrors:
        """The views TTA averages: those the training augmentation mirrored (:func:`training_mirrors`)."""
        augments = method_class(self.config.method.name).augments
        return training_mirrors(augmentation_ranges(self.config.train.augmentation)[0] if augments else None)

    def probabilities(self, images: Tensor) -> Tensor:
        """Class probabilities (B, C, H, W) of images at the training size; the mirrored views' mean with ``tta``."""
        if self.tta:
            return mirrored_probabilities(self.model, images, self.mirrors)
        return torch.softmax(self.model(images), dim=1)


@dataclass
class FoldEnsemble:
    """The segmenters of a fold set's folds, one checkpoint each, as one model: the mean of their
    probability maps (nnU-Net's cross-validation ensemble). Its post-processing is the fold
    set's own, chosen on the out-of-fold predictions (:func:`choose_fold_postprocessing`)."""

    members: tuple[TrainedSegmenter, ...]
    largest_component: tuple[int, ...] = ()

    @property
    def config(self) -> RunConfig:
        return self.members[0].config  # the folds differ only in their validation cases

    @property
    def labels(self) -> LabelMap:
        return self.members[0].labels

    @property
    def num_classes(self) -> int:
        return self.labels.num_classes

    @property
    def size(self) -> int | tuple[int, int, int]:
        return self.members[0].size

    @property
    def in_channels(self) -> int:
        return self.members[0].in_channels

    @property
    def checkpoint(self) -> str:
        return self.members[0].checkpoint

    @property
    def tta(self) -> bool:
        return self.members[0].tta

    @property
    def mirrors(self) -> Mirrors:
        return self.members[0].mirrors

    @property
    def iteration(self) -> list[int]:
        """Each fold's iteration."""
        return [member.iteration for member in self.members]

    def probabilities(self, images: Tensor) -> Tensor:
        return torch.stack([member.probabilities(images) for member in self.members]).mean(0)


Model = TrainedSegmenter | FoldEnsemble
"""What evaluation and prediction run: one run's segmenter, or a fold set's ensemble."""


def load_model(folder: Path, checkpoint: str | None = None, *, tta: bool = False) -> Model:
    """The model of a run folder (:func:`load_segmenter`) or of a fold set (:class:`FoldEnsemble`,
    the same checkpoint of every fold), with ``tta`` set."""
    fold_set = read_fold_set(Path(folder))
    if fold_set is None:
        return replace(load_segmenter(Path(folder), checkpoint), tta=tta)
    members = fold_set.members()
    require_fold_set_finished(fold_set)
    checkpoint = checkpoint or members[0].preferred_checkpoint()
    chosen = _postprocessing(fold_set.paths).get(checkpoint, {}).get("largest_component", [])
    return FoldEnsemble(tuple(replace(load_segmenter(m.root, checkpoint), tta=tta) for m in members), tuple(chosen))


def require_fold_set_finished(fold_set: FoldSet) -> None:
    """Refuse a fold set whose folds, or its out-of-fold post-processing choice, are not done."""
    unfinished = [m.root.name for m in fold_set.members() if not m.result.is_file()]
    if unfinished or not fold_set.paths.postprocessing.is_file():
        folds = f"folds {', '.join(unfinished)} have" if unfinished else "its ensemble's post-processing has"
        raise DataError(f"this fold set has not finished ({folds} not been made); finish it first: genseg train "
                        f"--resume --out {fold_set.root}", fold_set.manifest)


def load_segmenter(run_dir: Path, checkpoint: str | None = None, *, unfinished: bool = False) -> TrainedSegmenter:
    """Restore the ``best``, ``final`` or ``averaged`` segmenter of a run folder, in eval mode.

    ``None`` takes :meth:`~genseg.runs.RunPaths.preferred_checkpoint`: the averaged weights where
    the run saved them, else the best ones. A run killed before its end is refused (its best.pt
    is the best of a partial run) unless ``unfinished``, which the run's own last steps use.
    """
    run = RunPaths(Path(run_dir))
    checkpoint = checkpoint or run.preferred_checkpoint()
    path = run.weights(checkpoint)
    if not unfinished:
        require_finished(run)
    if checkpoint == "averaged" and not path.is_file():
        raise FileNotFoundError(f"{path}: no averaged weights here; the run was trained with "
                                "--set train.average_last=0")
    state = load_checkpoint(path)
    if "segmenter" not in state:
        raise _no_segmenter(run)
    config = RunConfig.from_dict(state["config"])
    model = segmenter_from_config(config.segmenter, state["in_channels"], state["num_classes"], config.data.dims)
    model.load_state_dict(state["segmenter"])
    model.eval()
    chosen = _postprocessing(run).get(checkpoint, {}).get("largest_component", [])
    return TrainedSegmenter(model, config, checkpoint_labels(state), state["iteration"], state["in_channels"],
                            tuple(chosen), checkpoint)


def require_finished(run: RunPaths) -> None:
    """Refuse a run killed before its end: its best.pt is the best of a partial run.

    Raises:
        DataError: no ``result.json`` (written when genseg train ends), with how to finish the run.
        ValueError: the folder is a generator pre-training, which has no segmenter.
    """
    if run.result.is_file():
        return
    if run.weights("final").is_file() and not run.last.is_file():  # what genseg pretrain-generator writes
        raise _no_segmenter(run)
    raise DataError("this run has not finished (it has no result.json), so its checkpoints are partial; "
                    f"finish it first: genseg train --resume --out {run.root}", run.root)


def _no_segmenter(run: RunPaths) -> ValueError:
    return ConfigError(f"{run.root} holds no segmenter (a genseg pretrain-generator run?); "
                      "evaluate and predict need a run of genseg train")


def _postprocessing(run: RunPaths) -> dict:
    return json.loads(run.postprocessing.read_text()) if run.postprocessing.is_file() else {}


def predict_case(segmenter: Model, samples: list[Sample], *, postprocess: bool = True) -> np.ndarray:
    """One case's label map at its own size (a 2D map, or the volume), post-processed as the run chose."""
    return label_case(segmenter, samples, sample_probabilities(segmenter, samples), postprocess=postprocess)


def label_case(segmenter: Model, samples: list[Sample], probabilities: list[Tensor], *,
               postprocess: bool = True) -> np.ndarray:
    """One case's label map from its samples' class probabilities (:func:`sample_probabilities`)."""
    labels = assemble_case(samples, [p.argmax(0).numpy().astype(np.int64) for p in probabilities],
                           segmenter.config.data.axis)
    return keep_largest_component(labels, segmenter.largest_component) if postprocess else labels


def choose_postprocessing(run_dir: Path, checkpoints: tuple[str, ...] | None = None) -> dict[str, dict]:
    """Decide, per checkpoint (default: every saved one), on the run's validation cases, which classes
    keep only their largest component; written to ``postprocessing.json`` (see :mod:`genseg.postprocessing`)."""
    run = RunPaths(Path(run_dir))
    checkpoints = run.saved_checkpoints() if checkpoints is None else checkpoints
    return _write_choice(run.postprocessing, [_validation_predictions(run, checkpoints)])


def choose_fold_postprocessing(fold_set: FoldSet) -> dict[str, dict]:
    """The post-processing choice of a fold set's ensemble, as nnU-Net makes it: on the out-of-fold
    predictions, every budget case predicted by the fold that validated on it."""
    checkpoints = fold_set.saved_checkpoints()
    return _write_choice(fold_set.paths.postprocessing,
                         [_validation_predictions(m, checkpoints) for m in fold_set.members()])


@dataclass
class _Predicted:
    """Validation cases of a run: each checkpoint's unprocessed predictions and the references."""

    predictions: dict[str, list[np.ndarray]]
    targets: list[np.ndarray]
    rois: list[np.ndarray | None]
    num_classes: int


def _validation_predictions(run: RunPaths, checkpoints: tuple[str, ...]) -> _Predicted:
    config = load_config(run)
    index = index_cases(config.data.root, layout=config.data.layout)
    ids = case_ids_for("val", run, config, index, same_data=True)
    # the run's own last step, before it has finished
    segmenters = {checkpoint: load_segmenter(run.root, checkpoint, unfinished=True) for checkpoint in checkpoints}
    labels = next(iter(segmenters.values())).labels  # the run's: every checkpoint has it
    predictions: dict[str, list[np.ndarray]] = {checkpoint: [] for checkpoint in segmenters}
    targets, rois = [], []
    for case_id in ids:  # one case in memory at a time; label maps kept as bytes (at most 32 classes)
        samples = load_samples(index, [case_id], axis=config.data.sample_axis, labels=labels)
        target, roi = case_reference(samples, config.data.axis)
        targets.append(target.astype(np.uint8))
        rois.append(roi)
        for checkpoint, segmenter in segmenters.items():
            predictions[checkpoint].append(predict_case(segmenter, samples, postprocess=False).astype(np.uint8))
    return _Predicted(predictions, targets, rois, labels.num_classes)


def _write_choice(path: Path, runs: list[_Predicted]) -> dict[str, dict]:
    """Choose on the validation cases of ``runs`` together; write the choice to ``path``."""
    choices = {}
    for checkpoint in runs[0].predictions:
        predictions = [p for run in runs for p in run.predictions[checkpoint]]
        choices[checkpoint] = choose_classes(predictions, [t for run in runs for t in run.targets],
                                             runs[0].num_classes, [r for run in runs for r in run.rois])
        log.info("post-processing of %s: largest component kept for classes %s (validation Dice %s -> %s)",
                 checkpoint, choices[checkpoint]["largest_component"], choices[checkpoint]["dice_before"],
                 choices[checkpoint]["dice_after"])
    atomic_write(path, lambda temp: temp.write_text(json.dumps(choices, indent=2) + "\n"))
    return choices


@torch.no_grad()
def sample_probabilities(segmenter: Model, samples: list[Sample], batch_size: int = 16) -> list[Tensor]:
    """Class probabilities (K, H, W) at each sample's original size; (K, D, H, W) for whole volumes."""
    if samples[0].is_volume:
        return [volume_probabilities(segmenter, sample) for sample in samples]
    probabilities: list[Tensor] = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        images = to_tensors(chunk, segmenter.size, segmenter.num_classes).images
        for sample, probs in zip(chunk, segmenter.probabilities(images)):
            probabilities.append(resize_probabilities(probs[None], sample.image.shape[-2:])[0])
    return probabilities


def volume_probabilities(segmenter: Model, sample: Sample, overlap: float = 0.5) -> Tensor:
    """Class probabilities (K, D, H, W) of a whole volume: MONAI's sliding window of the run's patch,
    Gaussian-weighted where windows overlap (nnU-Net's), the volume padded with zeros, centred, where
    it is smaller than the patch, as in training, so a volume that fits is one window: the
    whole-volume prediction. The volume is resampled to the run's spacing first and the probabilities
    back to its own grid (:mod:`genseg.data.resample`); a sample of unknown spacing is taken as on that grid."""
    patch, spacing = segmenter.size, segmenter.config.data.spacing
    assert isinstance(patch, tuple), "a run trained on whole volumes"
    seen = sample if spacing is None or sample.spacing is None else resample_sample(sample, spacing)
    image = torch.from_numpy(seen.image).float()[None]
    probabilities = sliding_window_inference(image, roi_size=patch, sw_batch_size=1,
                                             predictor=segmenter.probabilities, overlap=overlap, mode="gaussian")
    return probabilities_to_shape(probabilities[0], sample.image.shape[1:])


def assemble_case(samples: list[Sample], labels: list[np.ndarray], axis: int) -> np.ndarray:
    """One case's label map: the 2D map itself, or the slices stacked back into the volume."""
    if samples[0].slice_index is None:
        return labels[0]
    order = np.argsort([s.slice_index for s in samples])
    return np.stack([labels[i] for i in order], axis=axis)


def case_ids_for(split_name: str, run: RunPaths, config: RunConfig, index: CaseIndex, same_data: bool) -> list[str]:
    """The case ids of ``split_name``; a folder other than the training one is used whole."""
    if split_name not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split_name!r}")
    if split_name == "all" or not same_data:
        return index.ids
    split = read_split(run.split)
    if split_name == "test":
        if not split.test:
            raise DataError("this run has no test cases: its budget took every labeled case. Score other labeled "
                            "images with genseg evaluate --data DIR, or hold out a test set: genseg split --data DIR "
                            "--out split.json, then train with --split split.json and a smaller --budget", run.split)
        return split.test
    if split_name == "dev":
        ids = dev_ids(split, config.train.seed, config.data.budget)
        if not ids:
            raise DataError(f"no development cases: the budget of {config.data.budget} takes the whole pool of "
                            f"seed {config.train.seed}; evaluate --split test or choose a smaller budget", run.split)
        return ids
    train_ids, val_ids = train_val_ids(config, split)
    return train_ids if split_name == "train" else val_ids


def evaluate(
    run_dir: Path,
    *,
    data: Path | None = None,
    split: str = "test",
    checkpoints: tuple[str, ...] | None = None,
    overlays: int = 6,
    tta: bool = False,
) -> dict[str, dict]:
    """Score a run's checkpoints case by case and write CSV, JSON and overlay PNGs.

    A fold set (``genseg train --folds K``) is scored fold by fold, each in its own folder, and
    as one model, the folds' ensemble (:class:`FoldEnsemble`), in its own ``eval/``; the
    ensemble's summary also holds each fold's mean Dice on the same cases (``fold_dice_mean``).

    Args:
        run_dir: the run folder of ``genseg train``, or a fold set's folder.
        data: data folder; defaults to the run's own. Another folder (out-of-domain data) is
            evaluated whole, with the in-domain model unchanged.
        split: ``test`` (held out, never trained or selected on), ``dev`` (pool cases outside the
            budget, for choosing a recipe; see :func:`genseg.data.dev_ids`), ``val``, ``train``
            or ``all``.
        checkpoints: some of :data:`~genseg.runs.CHECKPOINTS` (default: every one the run saved).
        overlays: how many cases get an overlay PNG: the worst by Dice.
        tta: average the mirrored views (:mod:`genseg.tta`); the results go to
            ``eval/<split>/<checkpoint>-tta/`` beside those without.

    Returns:
        checkpoint -> summary (mean/SD per metric, counts of undefined HD95).
    """
    fold_set = read_fold_set(Path(run_dir))
    if fold_set is not None:
        return _evaluate_fold_set(fold_set, data, split, checkpoints, overlays, tta)
    run = RunPaths(Path(run_dir))
    config = load_config(run)
    cases = _cases(run, config, data, split)
    require_finished(run)
    checkpoints = run.saved_checkpoints() if checkpoints is None else checkpoints
    scores = [_Scores(run, checkpoint, replace(load_segmenter(run.root, checkpoint), tta=tta), overlays)
              for checkpoint in checkpoints]
    _score(scores, cases, lambda samples: [predict_case(score.model, samples) for score in scores])
    return {score.checkpoint: _write_scores(score, cases) for score in scores}


@dataclass
class _Cases:
    """The cases an evaluation scores: where they are, which, and the name of their results."""

    root: Path
    index: CaseIndex
    ids: list[str]
    name: str


def _cases(run: RunPaths, config: RunConfig, data: Path | None, split: str) -> _Cases:
    root = Path(data) if data is not None else config.data.root
    same_data = data is None or Path(data).resolve() == Path(config.data.root).resolve()
    index = index_cases(root, layout=config.data.layout if same_data else "auto")
    return _Cases(root, index, case_ids_for(split, run, config, index, same_data),
                  eval_name(split, None if same_data else root))


@dataclass
class _Scores:
    """One model's scores on the cases, and where they are written (``run``'s eval folder)."""

    run: RunPaths
    checkpoint: str
    model: Model
    overlays: int
    """How many of the worst cases get an overlay PNG."""
    rows: list[dict] = field(default_factory=list)
    views: dict[str, OverlayView] = field(default_factory=dict)
    """The overlays of the worst cases so far, no more than ``overlays`` (each may be megapixels)."""

    def keep_view(self, case_id: str, view: OverlayView) -> None:
        """Keep ``case_id``'s view if it is among the ``overlays`` worst rows so far, the order
        :func:`_write_scores` picks them in (by Dice, earlier cases first among equals)."""
        self.views[case_id] = view
        if len(self.views) > self.overlays:
            order = {row["case"]: position for position, row in enumerate(self.rows)}
            dice = {row["case"]: row["dice"] for row in self.rows}
            del self.views[max(self.views, key=lambda case: (dice[case], order[case]))]


def _evaluate_fold_set(fold_set: FoldSet, data: Path | None, split: str, checkpoints: tuple[str, ...] | None,
                       overlays: int, tta: bool) -> dict[str, dict]:
    """Each fold in its own folder, then the folds' ensemble, per checkpoint, in the fold set's: one
    pass of every fold over each case serves both its own scores and the ensemble's mean."""
    if split in ("val", "train"):
        raise ConfigError(f"a fold set's {split} cases differ from fold to fold; evaluate one fold's with "
                          f"--run {fold_set.root / 'fold_0'} --split {split}")
    require_fold_set_finished(fold_set)
    members = fold_set.members()
    cases = _cases(fold_set.paths, load_config(members[0]), data, split)
    checkpoints = fold_set.saved_checkpoints() if checkpoints is None else checkpoints
    ensembles = {checkpoint: load_model(fold_set.root, checkpoint, tta=tta) for checkpoint in checkpoints}
    folds = {checkpoint: [_Scores(member, checkpoint, model, 0) for member, model in zip(members, ensemble.members)]
             for checkpoint, ensemble in ensembles.items()}
    whole = {checkpoint: _Scores(fold_set.paths, checkpoint, ensemble, overlays)
             for checkpoint, ensemble in ensembles.items()}

    def predict(samples: list[Sample]) -> list[np.ndarray]:
        labels = []
        for ensemble in ensembles.values():  # in the order of the scores below
            probabilities = [sample_probabilities(fold, samples) for fold in ensemble.members]
            labels += [label_case(fold, samples, p) for fold, p in zip(ensemble.members, probabilities)]
            labels.append(label_case(ensemble, samples, [torch.stack(p).mean(0) for p in zip(*probabilities)]))
        return labels

    _score([score for checkpoint in checkpoints for score in (*folds[checkpoint], whole[checkpoint])], cases, predict)
    summaries = {}
    for checkpoint in checkpoints:
        alone = {score.run.root.name: _write_scores(score, cases)["dice_mean"] for score in folds[checkpoint]}
        summaries[checkpoint] = _write_scores(whole[checkpoint], cases, {"fold_dice_mean": alone})
    return summaries


def _score(scores: list[_Scores], cases: _Cases, predict: Callable[[list[Sample]], list[np.ndarray]]) -> None:
    """Per-case metrics of every model into its ``rows``; ``predict`` maps one case's samples to a
    label map per model, in the order of ``scores``."""
    first = scores[0].model
    axis, labels = first.config.data.axis, first.labels  # the run's: every checkpoint has them
    sample_axis = first.config.data.sample_axis
    names = {value: key for key, value in cases.index.labels.items()}
    class_names = [names.get(value, value_name(value)) for value in labels.values]
    for case_id in cases.ids:  # each case is read once, for every model
        samples = load_samples(cases.index, [case_id], axis=sample_axis, labels=labels)
        target, roi = case_reference(samples, axis)
        for score, prediction in zip(scores, predict(samples), strict=True):
            score.rows.append({"case": case_id, **case_metrics(prediction, target, score.model.num_classes, roi=roi,
                                                               class_names=class_names, spacing=samples[0].spacing)})
            if score.overlays:
                score.keep_view(case_id, overlay_view(samples, prediction, target, axis))


def _write_scores(score: _Scores, cases: _Cases, extra: dict | None = None) -> dict:
    """Write one model's ``cases.csv``, ``summary.json`` (with ``extra``) and worst-case overlays; its summary."""
    model = score.model
    summary = {"run": str(score.run.root), "data": str(cases.root), "split": cases.name,
               "checkpoint": score.checkpoint, "iteration": model.iteration,
               "largest_component": list(model.largest_component), "tta": model.tta,
               "tta_views": [list(view) for view in model.mirrors] if model.tta else [],
               "hd95_unit": "mm" if cases.index.is_volume else "px", **summarize(score.rows), **(extra or {})}
    folder = score.run.eval_dir(cases.name, score.checkpoint + ("-tta" if model.tta else ""))
    with replaced_folder(folder) as out:  # whole, or the earlier one untouched
        for row in sorted(score.rows, key=lambda row: row["dice"])[:score.overlays]:
            write_overlay(score.views[row["case"]], row["dice"], out / "overlays" / f"{row['case']}.png")
        write_csv(score.rows, out / "cases.csv")
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("%s %s %s: dice %.4f over %d cases", score.run.root.name, cases.name, score.checkpoint,
             summary["dice_mean"], len(cases.ids))
    return summary


@contextmanager
def replaced_folder(folder: Path) -> Iterator[Path]:
    """A fresh temporary folder beside ``folder``, moved onto it once the block has filled it.

    A process killed midway leaves the earlier folder as it was (and a hidden ``.<name>.partial``,
    cleared by the next attempt), never a mix of two evaluations.
    """
    partial = folder.parent / f".{folder.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        yield partial
        previous = folder.parent / f".{folder.name}.previous"
        shutil.rmtree(previous, ignore_errors=True)
        if folder.exists():
            folder.rename(previous)
        partial.rename(folder)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


PREDICTIONS_MANIFEST = "predictions.json"
"""Written last into a prediction folder: its files, run and checkpoint. A folder without it is partial."""


def predict(run_dir: Path, input_dir: Path, out_dir: Path, checkpoint: str | None = None,
            overwrite: bool = False, tta: bool = False) -> list[Path]:
    """Write a label map for every image in ``input_dir`` (a folder, or one file): PNG for 2D
    images, volumes in the input's own type (NIfTI, ``.mha``, ``.nrrd``), with ``checkpoint``'s
    weights (default: the run's preferred one, see :func:`load_segmenter`).

    Output files keep the input's stem (``<stem>.png`` / ``<stem>.nii.gz``, see
    :func:`~genseg.data.io.volume_output_suffix`) and geometry
    (same height and width; for volumes the same shape and affine). Every input is read and
    checked, and the output folder too, before the first mask is written: a bad file leaves no
    partial output, and nothing is written into the input or the run's data folder or over an
    existing file (unless ``overwrite``). :data:`PREDICTIONS_MANIFEST` is written last, so a
    prediction killed midway is recognisable. ``tta`` averages the mirrored views (:mod:`genseg.tta`).
    """
    segmenter = load_model(Path(run_dir), checkpoint, tta=tta)
    axis = segmenter.config.data.sample_axis
    index = index_images(Path(input_dir))
    for case_id in index.cases:  # check every input first
        _check_channels(load_samples(index, [case_id], axis=axis, require_masks=False), segmenter, index)
    out_dir = Path(out_dir)
    targets = {case_id: out_dir / f"{case_id}{volume_output_suffix(case.image_path) if index.is_volume else '.png'}"
               for case_id, case in index.cases.items()}
    _check_prediction_folder(out_dir, Path(input_dir), segmenter.config.data.root, list(targets.values()), overwrite)
    (out_dir / PREDICTIONS_MANIFEST).unlink(missing_ok=True)  # a folder being rewritten is partial until done
    for case_id, case in index.cases.items():
        samples = load_samples(index, [case_id], axis=axis, require_masks=False)
        labels = segmenter.labels.decode(predict_case(segmenter, samples))  # the user's own label values
        if index.is_volume:
            shape, affine = volume_geometry(case.image_path)
            if tuple(labels.shape) != tuple(shape):
                raise DataError(f"prediction shape {labels.shape} differs from the volume's {shape}", case.image_path)
            write_label_volume(targets[case_id], labels, affine)
        else:
            write_mask_png(targets[case_id], labels, colour=segmenter.labels.is_colour)
    manifest = {"run": str(Path(run_dir).resolve()), "checkpoint": segmenter.checkpoint, "tta": tta,
                "files": [path.name for path in targets.values()]}
    atomic_write(out_dir / PREDICTIONS_MANIFEST, lambda temp: temp.write_text(json.dumps(manifest, indent=2) + "\n"))
    log.info("wrote %d predictions to %s", len(targets), out_dir)
    return list(targets.values())


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _check_prediction_folder(out_dir: Path, input_path: Path, data_root: Path | None, targets: list[Path],
                             overwrite: bool) -> None:
    """Refuse an output folder that would overwrite inputs, reference data or earlier files."""
    input_folder = input_path if input_path.is_dir() else input_path.parent
    if _inside(out_dir, input_folder):
        raise DataError(f"--out is the input folder or inside it ({input_folder}); the masks would mix with or "
                        "replace the images: choose a folder outside it", out_dir)
    if data_root is not None and _inside(out_dir, data_root):
        raise DataError(f"--out is inside the run's data folder ({data_root}), whose masks are the reference: "
                        "choose a folder outside it", out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError("--out is a file; give a folder", out_dir)
    existing = [path for path in targets if path.exists()]
    if existing and not overwrite:
        raise DataError(f"{len(existing)} of the {len(targets)} masks to write exist already (e.g. "
                        f"{existing[0].name}); choose an empty --out, or pass --overwrite to replace them", out_dir)


def _check_channels(samples: list[Sample], segmenter: Model, index: CaseIndex) -> None:
    channels = samples[0].image.shape[0]
    if channels != segmenter.in_channels:
        kinds = {1: "grayscale", 3: "RGB"}
        theirs, ours = (kinds.get(c, f"{c}-channel") for c in (channels, segmenter.in_channels))
        article = "an" if theirs[0] in "aeiouR" else "a"
        raise DataError(f"{article} {theirs} image, but the model was trained on {ours} images; convert the images to "
                        f"{ours} or use a run trained on {theirs} images", index.cases[samples[0].case_id].image_path)


def case_reference(samples: list[Sample], axis: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A case's reference label map and its region of interest (None: everywhere), at its own size."""
    if any(s.mask is None for s in samples):
        raise DataError("case has no mask; evaluation needs labeled cases", samples[0].case_id)
    target = assemble_case(samples, [s.mask for s in samples], axis)
    rois = [s.roi for s in samples]
    return target, (None if rois[0] is None else assemble_case(samples, rois, axis))


@dataclass
class OverlayView:
    """What an overlay draws: the image (or three planes of a volume) as RGB, and two label maps."""

    rgb: np.ndarray
    prediction: np.ndarray
    reference: np.ndarray

    def __post_init__(self) -> None:
        """Label maps as bytes (at most 32 classes), and every :data:`OVERLAY_MAX_SIDE`-th pixel of a
        larger picture: an overlay is a preview, and a dozen 12-megapixel ones would fill gigabytes."""
        step = -(-max(self.rgb.shape[:2]) // OVERLAY_MAX_SIDE)
        self.rgb = self.rgb[::step, ::step]
        self.prediction = self.prediction[::step, ::step].astype(np.uint8)
        self.reference = self.reference[::step, ::step].astype(np.uint8)


OVERLAY_MAX_SIDE = 1024
"""The longest side of an overlay picture before any enlargement; larger images are subsampled."""

PLANE_GAP = 2
"""Black pixels between the three planes of a volume's overlay."""


def overlay_view(samples: list[Sample], prediction: np.ndarray, target: np.ndarray, axis: int) -> OverlayView:
    """The picture of a case an overlay shows: the image itself, or for a volume (whole or as
    slices) its three orthogonal planes side by side, each the one with the most reference foreground."""
    if samples[0].is_volume:
        volume = samples[0].image
    elif samples[0].slice_index is not None:
        volume = np.stack([s.image for s in sorted(samples, key=lambda s: s.slice_index or 0)], axis=axis + 1)
    else:
        return OverlayView(_rgb(samples[0].image), prediction, target)
    planes = []
    for plane_axis in range(3):
        others = tuple(other for other in range(3) if other != plane_axis)
        position = int(np.argmax((target > 0).sum(axis=others)))
        planes.append([np.take(volume, position, axis=plane_axis + 1), np.take(prediction, position, axis=plane_axis),
                       np.take(target, position, axis=plane_axis)])
    height = max(plane[1].shape[0] for plane in planes)

    def side_by_side(index: int) -> np.ndarray:
        parts = []
        for plane in planes:
            array = plane[index]
            rows, columns = height - array.shape[-2], PLANE_GAP
            pad = [(0, 0)] * (array.ndim - 2) + [(0, rows), (0, columns)]
            parts.append(np.pad(array, pad))
        return np.concatenate(parts, axis=-1)

    return OverlayView(_rgb(side_by_side(0)), side_by_side(1), side_by_side(2))


def _rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, 3) uint8, as :func:`display_pixels` shows it."""
    pixels = display_pixels(image)
    return pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=-1)


OVERLAY_MIN_WIDTH = 256  # small images are enlarged so the outlines and the caption stay readable
REFERENCE_COLOUR, PREDICTION_COLOUR = (0, 255, 0), (255, 0, 0)


def write_overlay(view: OverlayView, dice: float, path: Path) -> None:
    """The image with the reference outline in green and the prediction outline in red, and a
    caption bar naming the colours and the case's Dice."""
    rgb = view.rgb.copy()
    for labels, colour in ((view.reference, REFERENCE_COLOUR), (view.prediction, PREDICTION_COLOUR)):
        region = labels > 0
        rgb[region & ~ndimage.binary_erosion(region)] = colour
    picture = Image.fromarray(rgb)
    if picture.width < OVERLAY_MIN_WIDTH:
        scale = -(-OVERLAY_MIN_WIDTH // picture.width)
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    canvas = Image.new("RGB", (picture.width, picture.height + 16), (0, 0, 0))
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    y = picture.height + 2
    draw.text((4, y), f"Dice {dice:.3f}", fill=(255, 255, 255))
    draw.text((80, y), "reference", fill=REFERENCE_COLOUR)
    draw.text((150, y), "prediction", fill=PREDICTION_COLOUR)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, canvas.save)
