"""Typed run configuration: one source of truth for every default, validated on construction.

A run is described by a :class:`RunConfig` made of one dataclass per concern. It round-trips
through ``config.json`` in the run folder (:func:`RunConfig.to_dict` / :func:`RunConfig.from_dict`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from genseg.errors import ConfigError
from genseg.generators.options import RECORDED_WHEN_SET
from genseg.plugins import AUGMENTATIONS, GENERATORS, METHODS, SEGMENTERS
from genseg.registry import options_dict

LAYOUTS = ("folders", "flat", "nnunet", "msd")
"""The data layouts a config may name (read by :mod:`genseg.data.discovery`); here so that reading a
config imports no torch."""

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "poly", "cosine")
SAMPLINGS = ("replacement", "epochs")
SELECTIONS = ("dice", "loss")


AUTO = "auto"
"""A setting left to the plan (the generator kind; the image size is None)."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def default_n_val(budget: int) -> int:
    """Validation pairs taken out of a labeled budget N: 20 %, at least 1 (9 -> 7 + 2).

    Matches every budget of the benchmark protocol (3 -> 2+1, 35 -> 28+7, 200 -> 160+40).
    """
    return max(1, int(0.2 * budget + 0.5))


@dataclass
class DataConfig:
    """Where the labeled pairs come from and how they are split and resized.

    Args:
        root: data folder (images/ + masks/, nnU-Net raw, or MSD NIfTI); ``None`` for the
            built-in synthetic phantom.
        split_file: split file in the benchmark format; ``None`` makes one in the run folder.
        budget: labeled pairs N = n_train + n_val (volumes for 3D data).
        n_val: validation pairs out of the budget; default 20 % of N, at least 1.
        size: square side the images are resized to; ``None`` plans it from the budget's
            fingerprint (see :mod:`genseg.planning`), and the run saves the side it chose.
        max_size: the largest side a plan may choose (what the hardware allows).
        axis: slicing axis for 3D volumes trained in 2D; ``None`` plans it
            (:func:`genseg.planning.plan_axis`: across thick slices, else 0).
        dims: 2 trains on images (volumes as slices along ``axis``), 3 on whole volumes (MSD and
            nnU-Net NIfTI data; every method but copypaste, whose pasting is 2D); None leaves it to
            the plan (:func:`genseg.planning.plan_dims`: 3D for volumes of spacing anisotropy at most 3).
        patch: the (D, H, W) of a training patch in 3D, each a multiple of 16 and at least 32:
            smaller volumes are padded, centred, larger ones cropped at random (a third of the
            patches on foreground); ``None`` plans it (:func:`genseg.planning.plan_patch`).
        spacing: in 3D, the voxel size in mm, along the volume's three axes, every volume is resampled
            to (:mod:`genseg.data.resample`); ``None`` plans it (the median of the budget's,
            :func:`genseg.planning.plan_spacing`).
        layout: ``"auto"`` or one of :data:`LAYOUTS`.
        test_fraction: share of cases held out as test when genseg makes the split file.
        folds: cross-validation folds over the budget (1: none). Fold ``fold`` validates on every
            ``folds``-th case of the budget from its own (:func:`genseg.data.fold_ids`) and trains
            on the others, so its ``n_val`` follows from the fold; ``genseg train --folds K``
            trains all K (:mod:`genseg.folds`).
        fold: which fold this run is, 0 to ``folds`` - 1.
    """

    root: Path | None = None
    split_file: Path | None = None
    budget: int = 9
    n_val: int | None = None
    size: int | None = None
    max_size: int = 512
    axis: int | None = None
    dims: int | None = None
    patch: tuple[int, int, int] | None = None
    spacing: tuple[float, float, float] | None = None
    layout: str = "auto"
    test_fraction: float = 0.3
    folds: int = 1
    fold: int = 0

    def __post_init__(self) -> None:
        # Absolute, so a run folder can be evaluated or resumed from any working directory.
        self.root = Path(self.root).expanduser().resolve() if self.root is not None else None
        self.split_file = Path(self.split_file).expanduser().resolve() if self.split_file is not None else None
        _check(self.budget >= 2, f"budget must be at least 2 (1 train + 1 val), got {self.budget}")
        _check(1 <= self.folds <= self.budget,
               f"folds must be between 1 and the budget {self.budget}, got {self.folds}")
        _check(0 <= self.fold < self.folds, f"fold must be between 0 and folds - 1 = {self.folds - 1}, got {self.fold}")
        if self.folds > 1:
            in_fold = len(range(self.fold, self.budget, self.folds))
            _check(self.n_val in (None, in_fold), f"n_val follows from the fold: fold {self.fold} of {self.folds} over "
                                                 f"a budget of {self.budget} validates on {in_fold}, got {self.n_val}")
            self.n_val = in_fold
        if self.n_val is None:
            self.n_val = default_n_val(self.budget)
        _check(
            1 <= self.n_val < self.budget,
            f"n_val must be between 1 and budget - 1 = {self.budget - 1}, got {self.n_val}",
        )
        for name in ("size", "max_size"):
            value = getattr(self, name)
            _check(value is None or (value >= 32 and value % 32 == 0), f"{name} must be a multiple of 32, got {value}")
        _check(self.axis in (None, 0, 1, 2), f"axis must be 0, 1, 2 or None (planned), got {self.axis}")
        _check(self.dims in (None, 2, 3),
               f"dims must be 2 (images or slices), 3 (whole volumes) or None (planned), got {self.dims}")
        if self.patch is not None:
            self.patch = tuple(int(side) for side in self.patch)  # JSON gives a list
            _check(len(self.patch) == 3 and all(side >= 32 and side % 16 == 0 for side in self.patch),
                   f"patch must be three sides (D, H, W), each a multiple of 16 and at least 32, got {self.patch}")
        if self.spacing is not None:
            self.spacing = tuple(float(side) for side in self.spacing)  # JSON gives a list
            _check(len(self.spacing) == 3 and all(side > 0 for side in self.spacing),
                   f"spacing must be three voxel sides in mm, each above 0, got {self.spacing}")
        _check(self.layout in ("auto", *LAYOUTS), f"layout must be auto, {', '.join(LAYOUTS)}, got {self.layout!r}")
        _check(0.0 < self.test_fraction < 1.0, "test_fraction must be in (0, 1)")

    @property
    def n_train(self) -> int:
        assert self.n_val is not None
        return self.budget - self.n_val

    @property
    def sample_axis(self) -> int | None:
        """The axis volumes are sliced along, or None where they are kept whole (3D).

        Raises:
            ConfigError: the axis is still left to the plan (a run's saved config always has one).
        """
        if self.dims == 3:
            return None
        if self.axis is None:
            raise ConfigError("the slicing axis is left to the plan: start the run (genseg train) or set data.axis")
        return self.axis

    @property
    def shape(self) -> int | tuple[int, int, int] | None:
        """What the samples are brought to: the square side in 2D, the patch in 3D (None: left to the plan)."""
        if self.dims is None:
            return None
        return self.patch if self.dims == 3 else self.size


@dataclass
class SegmenterConfig:
    """The segmentation network, created by name (see :func:`genseg.segmenters.create_segmenter`);
    the name and its options are checked here (:data:`genseg.plugins.SEGMENTERS`)."""

    name: str = "unet"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        SEGMENTERS.check_options(self.name, self.options)


@dataclass(init=False)
class GeneratorConfig:
    """The mask-to-image generator and its own training on real pairs (level 1 of docs/method.md).

    The fields every kind of generator has come first; the kind's own settings (pix2pix:
    ``ngf``, ``ndf``, ``searchable``, ``lambda_l1`` and the data-efficient ``diffaugment``,
    ``spade``, ``noise``, ``lambda_ms``, see
    :class:`~genseg.generators.pix2pix.Pix2PixOptions`; the compositing generator's, see
    :class:`~genseg.generators.composite.CompositeOptions`) are keywords beside them, flat as in
    config.json and in a benchmark variant, and live in ``options``, checked and completed with
    the kind's defaults. ``GeneratorConfig("pix2pix", ngf=16)`` is pix2pix with a base width of 16.

    Args:
        name: the kind, a registered generator (:data:`genseg.plugins.GENERATORS`), or
            ``"auto"``: the plan's choice from the budget's masks (:func:`genseg.planning.plan_synthesis`),
            with the kind's default settings.
        lr: learning rate of the generator's own training.
        pretrain_iterations: its training steps on the budget's training pairs before the
            segmenter starts.
        options: the kind's settings, as a dict (what ``**kind_options`` add to).
        **kind_options: the kind's settings, as keywords.
    """

    name: str
    lr: float
    pretrain_iterations: int
    options: dict[str, Any]

    def __init__(self, name: str = AUTO, lr: float = 2e-4, pretrain_iterations: int = 1000,
                 options: dict[str, Any] | None = None, **kind_options: Any) -> None:
        _check(lr > 0, f"lr must be > 0, got {lr}")
        _check(pretrain_iterations >= 0, f"pretrain_iterations must be >= 0, got {pretrain_iterations}")
        settings = {**(options or {}), **kind_options}
        self.name, self.lr, self.pretrain_iterations = name, lr, pretrain_iterations
        if name == AUTO:
            _check(not settings, f"generator settings {sorted(settings)} belong to a kind: name it (pix2pix or "
                                 "composite) beside them, or leave them out and the plan picks the kind")
            self.options = {}
            return
        self.options = _generator_options(name, settings)

    def of_kind(self, name: str) -> GeneratorConfig:
        """These generic settings with kind ``name`` and its default settings (what the plan's choice makes)."""
        return GeneratorConfig(name, lr=self.lr, pretrain_iterations=self.pretrain_iterations)

    def to_dict(self) -> dict[str, Any]:
        """The flat section of config.json: the name, the kind's settings, then the generic ones."""
        return {"name": self.name, **self.options, "lr": self.lr, "pretrain_iterations": self.pretrain_iterations}


def _generator_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The settings of kind ``name``, checked by its ``Options`` and completed with its defaults
    (but for those added later and left at their default, see :func:`~genseg.generators.options.added_setting`).

    Raises:
        ValueError: an unknown kind, a setting the kind does not have, or a value it refuses.
    """
    checked = asdict(GENERATORS.check_options(name, options))
    return {f.name: checked[f.name] for f in fields(GENERATORS.options_class(name))
            if not (f.metadata.get(RECORDED_WHEN_SET) and checked[f.name] == f.default)}


@dataclass(init=False)
class MethodConfig:
    """The training method and its own settings, flat beside its name as in config.json.

    ``MethodConfig("genseg", upper="pairs", candidates=4)`` is GenSeg learning to select its
    synthetic pairs. The settings are the method's ``Options`` (:mod:`genseg.methods.options`:
    the synthetic pairs' of ``copypaste``, ``separate`` and ``genseg``, GenSeg's upper level,
    mean teacher's), checked and completed with their defaults; ``supervised`` and ``augment``
    have none.

    Args:
        name: a registered method (:data:`genseg.plugins.METHODS`).
        options: the method's settings, as a dict (what ``**method_options`` add to).
        **method_options: the method's settings, as keywords.
    """

    name: str
    options: dict[str, Any]

    def __init__(self, name: str = "augment", options: dict[str, Any] | None = None, **method_options: Any) -> None:
        self.name = name
        self.options = options_dict(METHODS.check_options(name, {**(options or {}), **method_options}))

    @property
    def settings(self) -> Any:
        """The method's ``Options`` instance (None for a method without settings)."""
        return METHODS.check_options(self.name, self.options)

    def to_dict(self) -> dict[str, Any]:
        """The flat section of config.json: the name, then the method's settings."""
        return {"name": self.name, **self.options}


@dataclass
class TrainConfig:
    """The one training loop and its recipe (the same for every method).

    Args:
        iterations: segmenter optimization steps.
        batch_size: real pairs per step; None leaves it to the plan (:data:`genseg.planning.BATCH_SIZE`:
            4 images, or 2 volumes in 3D).
        lr: peak learning rate of the segmenter.
        optimizer: ``adam``, ``adamw`` (weight decay 1e-4) or ``sgd`` (Nesterov, momentum 0.99,
            as nnU-Net; use lr 1e-2).
        schedule: learning rate over the run: ``constant``, ``poly`` (nnU-Net's
            ``(1 - t / T) ** 0.9``) or ``cosine``, after ``warmup`` linear warm-up iterations.
        warmup: iterations of linear warm-up from lr / warmup to lr.
        sampling: ``replacement`` (each batch drawn at random) or ``epochs`` (every training
            pair once per pass, in a fresh random order).
        augmentation: augmentation ranges of ``augment`` (and the real pairs of the generative
            methods): ``standard`` (docs/method.md's T plus intensity jitter) or ``nnunet`` (nnU-Net's 2D
            ranges and probabilities, see :mod:`genseg.augment.presets`).
        val_every: iterations between validations (and best-checkpoint choices).
        select: what picks ``best.pt`` among the validations: ``loss`` (the lowest validation
            loss) or ``dice`` (the highest mean validation Dice, ties to the lower loss). With
            one or two validation pairs both are noisy (docs/benchmarks.md, the checkpoint
            policy): the final checkpoint is the one the benchmark reports first.
        checkpoint_every: iterations between resumable checkpoints.
        ema_decay: decay of an exponential moving average of the segmenter's weights used for
            validation and the saved model; 0 switches it off.
        average_last: the last fraction of the run whose weights are averaged, equally, into a
            third checkpoint, ``averaged.pt`` (stochastic weight averaging, batch-norm statistics
            recomputed on training batches); 0 switches it off. It leaves the trajectory as it is:
            one run gives the best, the final and the averaged checkpoint. The default, the last
            third, is what ``predict`` uses: on development cases it scored 9.7 Dice points above
            the final weights on FUSeg 10 and level on JSRT 3 (docs/benchmarks.md, the checkpoint
            policy).
        seed: run seed; also picks ``pool.seed<s>`` of a benchmark split file.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    """

    iterations: int = 1000
    batch_size: int | None = None
    lr: float = 1e-3
    optimizer: str = "adam"
    schedule: str = "constant"
    warmup: int = 0
    sampling: str = "replacement"
    augmentation: str = "standard"
    val_every: int = 50
    select: str = "loss"
    checkpoint_every: int = 100
    ema_decay: float = 0.0
    average_last: float = 1 / 3
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        _check(self.iterations >= 1 and (self.batch_size is None or self.batch_size >= 1),
               "iterations and batch_size must be >= 1")
        _check(self.lr > 0, "lr must be > 0")
        for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("sampling", SAMPLINGS),
                              ("select", SELECTIONS)):
            _check(getattr(self, name) in allowed, f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        AUGMENTATIONS.entry(self.augmentation)  # an unknown preset: the registered ones and the closest
        _check(0 <= self.warmup < self.iterations, f"warmup must be in [0, iterations), got {self.warmup}")
        _check(self.val_every >= 1 and self.checkpoint_every >= 1, "val_every, checkpoint_every >= 1")
        _check(0.0 <= self.ema_decay < 1.0, "ema_decay must be in [0, 1)")
        _check(0.0 <= self.average_last <= 1.0, f"average_last must be in [0, 1], got {self.average_last}")
        _check(0 <= self.seed < 2**32, f"seed must be a whole number from 0 to 2**32 - 1, got {self.seed}")
        _check(re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device) is not None,
               f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")


@dataclass
class RunConfig:
    """Everything one training run needs; saved as ``config.json`` in the run folder."""

    data: DataConfig = field(default_factory=DataConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings)."""
        values = asdict(self)
        values["generator"], values["method"] = self.generator.to_dict(), self.method.to_dict()
        return _jsonable(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys are an error.

        A setting added after a run was saved takes the value that run trained with
        (:data:`BEFORE_ADDED`), or else its default; a config.json saved before the ``method``
        section existed is read as it was meant (:func:`current_layout`)."""
        _check(isinstance(values, dict), f"a config is a JSON object of sections, got {type(values).__name__}")
        values = current_layout(values)
        unknown_sections = set(values) - {f.name for f in fields(cls)}
        _check(not unknown_sections, f"unknown sections in config: {sorted(unknown_sections)}")
        parts = {}
        for f in fields(cls):
            sub_cls = {"data": DataConfig, "segmenter": SegmenterConfig, "generator": GeneratorConfig,
                       "method": MethodConfig, "train": TrainConfig}[f.name]
            section = values.get(f.name, {})
            _check(isinstance(section, dict), f"config section {f.name!r} must be an object of settings, got "
                                              f"{json.dumps(section, default=str)}")
            given = {**BEFORE_ADDED.get(f.name, {}), **section}
            unknown = set(given) - {sf.name for sf in fields(sub_cls)}
            if sub_cls not in (GeneratorConfig, MethodConfig):  # a kind or method checks the keys beside its name
                _check(not unknown, f"unknown {f.name} settings in config: {sorted(unknown)}")
            typed = list(fields(sub_cls))
            if sub_cls is MethodConfig and isinstance(given.get("name", "augment"), str):
                typed += _method_fields(given.get("name", "augment"))
            for sf in typed:
                if sf.name in given:
                    _check_type(f"{f.name}.{sf.name}", given[sf.name], str(sf.type))
            parts[f.name] = sub_cls(**given)
        return cls(**parts)


BEFORE_ADDED: dict[str, dict[str, Any]] = {"train": {"average_last": 0.0}, "data": {"dims": 2}}
"""Settings whose default differs from what runs saved before the setting existed trained with, by section."""


def current_layout(values: dict[str, Any]) -> dict[str, Any]:
    """The sections of a config.json, in today's layout (those of an earlier genseg migrated).

    Before the ``method`` section existed, the method's name was ``train.method``, GenSeg's
    settings (and ``gamma``, which ``separate`` read too) an ``mlo`` section, and
    ``train.synthetic_batch_size`` (None, the whole batch, where absent: the runs made before it
    existed). The settings the method has are kept; the others had no effect on it.
    """
    if not isinstance(values, dict):
        return values  # RunConfig.from_dict names the wrong shape
    train = values.get("train")
    moved = isinstance(train, dict) and bool({"method", "synthetic_batch_size"} & set(train))
    if "method" in values or not ("mlo" in values or moved):
        return values
    values = dict(values)
    train = dict(train) if isinstance(train, dict) else {}
    mlo = values.pop("mlo", {})
    _check(isinstance(mlo, dict), f"config section 'mlo' must be an object of settings, got {json.dumps(mlo)}")
    former = {**mlo, "synthetic_batch_size": train.pop("synthetic_batch_size", None)}
    name = train.pop("method", "augment")
    accepted = {f.name for f in _method_fields(name)}
    values["train"], values["method"] = train, {"name": name, **{k: v for k, v in former.items() if k in accepted}}
    return values


def _method_fields(name: str) -> tuple:
    options_class = METHODS.options_class(name)
    return fields(options_class) if options_class is not None else ()


_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "Path": (str, Path),
          "dict[str, Any]": (dict,)}


def _check_type(name: str, value: Any, annotation: str) -> None:
    """A config file's value of the annotated type (``"iterations": true`` is not 1, nor 4.5 an int)."""
    kinds = [kind.strip() for kind in annotation.split("|")]
    if value is None and "None" in kinds:
        return
    allowed = tuple(t for kind in kinds if kind != "None" for t in _TYPES.get(kind, (object,)))
    wrong_bool = isinstance(value, bool) and bool not in allowed
    _check(isinstance(value, allowed) and not wrong_bool,
           f"{name} must be {' or '.join(kind for kind in kinds)}, got {json.dumps(value, default=str)}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` settings (of a generator's kind, say); values read as JSON (``true``, ``8``,
    ``0.5``), else kept as text.

    Raises:
        ValueError: an item without ``=`` or without a key.
    """
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        if not separator or not key:
            raise ConfigError(f"expected KEY=VALUE, got {pair!r} (e.g. spade=true)")
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
    return settings
