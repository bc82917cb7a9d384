"""The plan of a benchmark: data sets x budgets x method variants x seeds, and each run's config.

A :class:`BenchmarkSpec` comes from a TOML file (:func:`load_spec`) or from options
(:func:`spec_from_dict`); :func:`plan_runs` expands it into :class:`PlannedRun` s, checking every
data folder, split file and config before any run starts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from genseg.benchmark.results import KEY_COLUMNS
from genseg.config import (
    DataConfig,
    GeneratorConfig,
    MethodConfig,
    RunConfig,
    SegmenterConfig,
    TrainConfig,
)
from genseg.data import DataError, index_cases, read_split
from genseg.errors import ConfigError
from genseg.planning import RunPlan
from genseg.plugins import METHODS
from genseg.run_data import needs_plan, plan_run, planned, read_run_plan
from genseg.runs import RunPaths

DEFAULT_OUT = Path("benchmarks/results")


DATA_ROOT_VARIABLE = "GENSEG_DATA_ROOT"
"""Where the data sets are when neither --data-root nor the TOML file says (docs/datasets.md)."""


SPLITS_ROOT_VARIABLE = "GENSEG_SPLITS_ROOT"
"""Where the split files are when neither --splits-root nor the TOML file says; else
``benchmark/splits`` beside the data root's folder."""


PROTOCOL_METHODS = ("supervised", "augment", "separate", "semisup", "genseg")
PER_DATASET_TABLES = ("budgets", "methods_at", "sizes", "iterations_at", "axes", "ood")
"""BenchmarkSpec fields keyed by data set."""


@dataclass
class Variant:
    """A named setting of a training method: the method, its settings and overrides of the other
    config sections.

    Args:
        method: a training method (:data:`genseg.plugins.METHODS`).
        options: the method's settings (:mod:`genseg.methods.options`); in a TOML variant, the
            keys beside ``name`` of ``method = { name = "genseg", upper = "pairs" }``.
        generator: :class:`~genseg.config.GeneratorConfig` fields to override.
        train: :class:`~genseg.config.TrainConfig` fields to override.
        segmenter: options of the benchmark's segmenter to override (e.g. ``{"norm": "instance"}``).
        data: :class:`~genseg.config.DataConfig` fields to override (e.g. ``{"dims": 3}``: whole volumes).
        folds: K > 1 makes each run a fold set (:mod:`genseg.folds`), scored as the folds' ensemble.
    """

    method: str
    options: dict[str, Any] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    segmenter: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    folds: int = 1


VARIANTS: dict[str, Variant] = {
    **{name: Variant(name) for name in METHODS.names},
    "genseg": Variant("genseg", options={"upper": "arch", "hypergradient": "exact"}),
    "genseg-none": Variant("genseg", options={"upper": "none"}),  # the ablation: same schedule, no hypergradient
    "genseg-generator": Variant("genseg", options={"upper": "generator"}),
    "genseg-both": Variant("genseg", options={"upper": "both"}),
    "genseg-pairs": Variant("genseg", options={"upper": "pairs"}),  # learning to reweight the synthetic pairs
    "genseg-gamma": Variant("genseg", options={"upper": "gamma"}),  # the synthetic loss's weight, learned
    "genseg-darts": Variant("genseg", options={"upper": "arch", "hypergradient": "darts"}),
}


@dataclass
class BenchmarkSpec:
    """What to run: data sets x budgets x variants x seeds, with the settings all runs share.

    Args:
        datasets: data folder names under ``data_root``; each needs ``splits_root/<name>.json``.
        budgets: data set -> labeled budgets N (= n_train + n_val).
        methods: variant names run at every budget (see :data:`VARIANTS`).
        seeds: run seeds (each picks ``pool.seed<s>`` of the split file).
        segmenter: segmenter name, the same for every run.
        size: square training image size, or ``"auto"``: each run's plan from its budget's
            fingerprint (:mod:`genseg.planning`), written to the run's ``plan.json``.
        max_size: the largest side an ``"auto"`` plan may choose.
        dims: 2 (images, volumes as slices), 3 (whole volumes) or ``"auto"`` (each run's plan). 2 unless
            a file says otherwise: the protocol's rows trained volumes as slices, so a benchmark file goes
            on measuring what it measured when ``genseg train``'s default became the plan's choice. A
            variant's ``data`` table overrides it.
        iterations: segmenter optimization steps.
        pretrain_iterations: generator pre-training steps (separate, genseg).
        out: the benchmark's out folder.
        data_root: folder holding the data sets (relative to the current directory); default
            :data:`DATA_ROOT_VARIABLE` from the environment.
        splits_root: folder holding ``<dataset>.json`` split files; default
            :data:`SPLITS_ROOT_VARIABLE`, else ``benchmark/splits`` beside the data root.
        n_val: validation pairs out of each budget; default 20 %, at least 1.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
        threads: torch threads per run; default: the machine's cores divided among the runs at once.
        methods_at: data set -> budget -> variants run at that budget instead of ``methods``.
        sizes: data set -> image size (or ``"auto"``) instead of ``size``.
        iterations_at: data set -> segmenter steps instead of ``iterations`` (each data set's
            converged count).
        axes: data set -> slicing axis of 3D volumes trained in 2D (default: the plan's).
        splits: the run's own splits to evaluate: ``test`` and/or ``dev`` (pool cases outside the
            budget, where recipes are chosen; see :func:`genseg.data.dev_ids`).
        ood: data set -> out-of-domain data folders, each evaluated whole with the model selected
            in-domain: a bare name is a folder under ``data_root``, a path (with ``/``) is taken
            relative to the current directory. Adding one to a finished benchmark evaluates the
            trained runs on it without training them again.
        variants: the variants that can be named; the built-ins plus any defined in a TOML file.
        train: :class:`~genseg.config.TrainConfig` settings every run shares; a variant's own win
            (e.g. ``average_last = 0.0`` where a benchmark's runs were trained before averaging
            was the default, so that their folders resume).
        generator: :class:`~genseg.config.GeneratorConfig` settings every run shares; a variant's own
            win (``name = "pix2pix"`` where runs were trained before the plan chose the kind).
    """

    datasets: list[str]
    budgets: dict[str, list[int]]
    methods: list[str] = field(default_factory=lambda: list(PROTOCOL_METHODS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    segmenter: str = "unet"
    size: int | str = 128
    max_size: int = 512
    dims: int | str = 2
    iterations: int = 1000
    pretrain_iterations: int = 1000
    out: Path = DEFAULT_OUT
    data_root: Path | None = None
    splits_root: Path | None = None
    n_val: int | None = None
    device: str = "auto"
    threads: int | None = None
    methods_at: dict[str, dict[int, list[str]]] = field(default_factory=dict)
    sizes: dict[str, int | str] = field(default_factory=dict)
    iterations_at: dict[str, int] = field(default_factory=dict)
    axes: dict[str, int] = field(default_factory=dict)
    splits: list[str] = field(default_factory=lambda: ["test"])
    ood: dict[str, list[str]] = field(default_factory=dict)
    variants: dict[str, Variant] = field(default_factory=lambda: dict(VARIANTS))
    train: dict[str, Any] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        data_root = self.data_root or os.environ.get(DATA_ROOT_VARIABLE)
        self.data_root = None if data_root is None else Path(data_root)
        splits_root = self.splits_root or os.environ.get(SPLITS_ROOT_VARIABLE)
        if splits_root is None and self.data_root is not None:
            splits_root = self.data_root.parent / "benchmark" / "splits"
        self.splits_root = None if splits_root is None else Path(splits_root)
        if not self.datasets:
            raise ConfigError("no data sets given: pass --datasets or set datasets = [...] in the TOML file")
        if not self.seeds:
            raise ConfigError("no seeds given: pass --seeds or set seeds = [...]")
        if not self.splits or set(self.splits) - {"test", "dev"}:
            raise ConfigError(f"splits must name test and/or dev, got {self.splits}")
        for name in PER_DATASET_TABLES:
            unknown = sorted(set(getattr(self, name)) - set(self.datasets))
            if unknown:
                raise ConfigError(f"{name} names data sets that are not in datasets {self.datasets}: {unknown}")
        for dataset in self.datasets:
            if not self.budgets.get(dataset):
                raise ConfigError(f"no budgets for data set {dataset!r}: pass --budgets or set budgets.{dataset}")
            extra = sorted(set(self.methods_at.get(dataset, {})) - set(self.budgets[dataset]))
            if extra:
                raise ConfigError(f"methods_at.{dataset} names budgets {extra} that are not in its budgets "
                                 f"{self.budgets[dataset]}")
        for name in self.variants:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise ConfigError(f"variant name {name!r} must be letters, digits, '.', '_' or '-' (it names folders)")
        named = [*self.methods, *(m for at in self.methods_at.values() for ms in at.values() for m in ms)]
        unknown = sorted(set(named) - set(self.variants))
        if unknown:
            raise ConfigError(f"unknown method variants {unknown}; known: {', '.join(self.variants)} "
                             "(define more in a TOML [variants.NAME] table)")

    def methods_for(self, dataset: str, budget: int) -> list[str]:
        """The variants run on ``dataset`` at ``budget``."""
        return self.methods_at.get(dataset, {}).get(budget, self.methods)


def run_name(dataset: str, budget: int | str, variant: str, segmenter: str, seed: int | str) -> str:
    """A run folder's name, ``<dataset>-n<N>-<variant>[-<segmenter>]-s<seed>``.

    The segmenter is named when it is not the default UNet, so that runs of several segmenters can
    share one out folder.
    """
    tag = "" if segmenter == SegmenterConfig().name else f"-{segmenter}"
    return f"{dataset}-n{budget}-{variant}{tag}-s{seed}"


@dataclass(frozen=True)
class PlannedRun:
    """One run of a benchmark: its identity, its full config and its out-of-domain folders."""

    dataset: str
    budget: int
    variant: str
    seed: int
    config: RunConfig
    ood: tuple[Path, ...] = ()
    splits: tuple[str, ...] = ("test",)
    plan: RunPlan | None = None
    folds: int = 1
    """K > 1: the run is a fold set of K runs (its ``plan`` is then None: each fold plans its own cases)."""

    @property
    def name(self) -> str:
        """The run folder's name (:func:`run_name`)."""
        return run_name(self.dataset, self.budget, self.variant, self.config.segmenter.name, self.seed)

    @property
    def eval_sets(self) -> dict[str, tuple[str, Path | None]]:
        """Its evaluation sets: ``runs.csv`` name -> (split, data folder; None: the run's own)."""
        return {**{split: (split, None) for split in self.splits},
                **{f"ood-{other.name}": ("test", other) for other in self.ood}}

    @property
    def key(self) -> tuple[str, ...]:
        """The run's identity in ``runs.csv`` (values of :data:`KEY_COLUMNS`)."""
        return tuple(str(self.columns()[column]) for column in KEY_COLUMNS)

    def columns(self) -> dict[str, Any]:
        """The ``runs.csv`` columns that describe the run (not its results)."""
        data = self.config.data  # a fold set's: those of its fold 0, which validates on the most cases
        if self.folds > 1:
            data = replace(data, folds=self.folds, fold=0, n_val=None)
        return {"dataset": self.dataset, "n_labels": self.budget, "n_train": data.n_train, "n_val": data.n_val,
                "method": self.variant, "seed": self.seed, "segmenter": self.config.segmenter.name,
                "size": data.size, "iterations": self.config.train.iterations}


def load_spec(path: Path, overrides: dict[str, Any] | None = None) -> BenchmarkSpec:
    """Read a benchmark TOML file; ``overrides`` (e.g. from command-line options) win over it.

    Top-level keys are the fields of :class:`BenchmarkSpec`; ``budgets`` may be a list (for every
    data set) or a table per data set; ``[variants.NAME]`` tables (``method``, a name or a table of
    its name and settings, and optional ``generator``, ``train`` tables) define variants beside the
    built-ins; a ``[train]`` table holds training settings every run shares (see
    ``benchmarks/converged.toml``). Paths are relative to the current directory. See
    ``benchmarks/issue4.toml``.

    Raises:
        ValueError: invalid TOML, unknown keys or values (the message names the file).
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise ConfigError(f"{path}: reading TOML needs Python >= 3.11; pass the benchmark as options instead") from None
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    try:
        return spec_from_dict(_narrowed(values, overrides or {}))
    except ValueError as error:
        raise ConfigError(f"{path}: {error}") from None


def _narrowed(values: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The file's plan restricted by the options: ``--datasets`` drops the other data sets' tables,
    ``--budgets`` the other budgets' ``methods_at`` entries, and ``--methods`` keeps only those
    variants where ``methods_at`` lists its own."""
    values = {**values, **overrides}
    if "budgets" in overrides and "methods_at" in values:
        values["methods_at"] = {dataset: {b: m for b, m in table.items() if int(b) in overrides["budgets"]}
                                for dataset, table in values["methods_at"].items()}
    if "datasets" in overrides:
        for name in PER_DATASET_TABLES:
            if isinstance(values.get(name), dict):
                values[name] = {d: t for d, t in values[name].items() if d in overrides["datasets"]}
    if "methods" in overrides and "methods_at" in values:
        values["methods_at"] = {
            dataset: {budget: [m for m in methods if m in overrides["methods"]] for budget, methods in table.items()}
            for dataset, table in values["methods_at"].items()}
    return values


def spec_from_dict(values: dict[str, Any]) -> BenchmarkSpec:
    """Build a :class:`BenchmarkSpec` from plain values (a parsed TOML file or options).

    Raises:
        ValueError: unknown keys, malformed tables or an unknown variant.
    """
    values = dict(values)
    known = set(BenchmarkSpec.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown benchmark settings {unknown}; known: {', '.join(sorted(known))}")
    if "datasets" not in values or "budgets" not in values:
        raise ConfigError("a benchmark needs datasets and budgets (--datasets and --budgets, or TOML keys)")
    if isinstance(values["budgets"], list):  # one list for every data set, as --budgets gives
        values["budgets"] = {dataset: values["budgets"] for dataset in values["datasets"]}
    if "methods_at" in values:
        values["methods_at"] = {dataset: {_budget_key(dataset, budget): methods for budget, methods in table.items()}
                                for dataset, table in values["methods_at"].items()}
    values["variants"] = {**VARIANTS, **{name: _variant(name, table)
                                         for name, table in values.get("variants", {}).items()}}
    return BenchmarkSpec(**values)


def plan_runs(spec: BenchmarkSpec) -> list[PlannedRun]:
    """Every run of ``spec`` with its config, in order: data set, budget, seed, variant.

    Checks all data folders, split files and configs first, so a mistake fails before any run.

    Raises:
        DataError: a data folder or split file is missing.
        ValueError: a variant's overrides or a budget make an invalid config.
    """
    if spec.data_root is None or spec.splits_root is None:
        raise DataError(f"no data root given: pass --data-root DIR (the folder holding {', '.join(spec.datasets)}) "
                        f"or set {DATA_ROOT_VARIABLE}; docs/datasets.md says where each public data set comes from")
    runs = []
    for dataset in spec.datasets:
        root, split_file = _existing(spec.data_root / dataset), _existing(spec.splits_root / f"{dataset}.json")
        ood = tuple(_existing(_ood_folder(spec, other)) for other in spec.ood.get(dataset, []))
        index = None
        for budget in spec.budgets[dataset]:
            for seed in spec.seeds:
                for variant in spec.methods_for(dataset, budget):
                    config = _run_config(spec, dataset, root, split_file, budget, variant, seed)
                    folder = RunPaths(spec.out / "runs" / run_name(dataset, budget, variant, config.segmenter.name,
                                                                    seed))
                    plan = read_run_plan(folder)  # a run planned before is never planned again
                    if plan is None and needs_plan(config):  # its size or generator kind names the run's rows
                        index = index or index_cases(root, layout=config.data.layout)
                        plan = plan_run(config, index, read_split(split_file))
                    folds = spec.variants[variant].folds
                    if folds > budget:
                        raise ConfigError(f"variant {variant!r}: {folds} folds over a budget of {budget}; a fold set "
                                          "needs at least one case per fold")
                    runs.append(PlannedRun(dataset, budget, variant, seed, planned(config, plan) if plan else config,
                                           ood, tuple(spec.splits), plan if folds == 1 else None, folds))
    return runs


def _variant(name: str, table: dict[str, Any]) -> Variant:
    allowed = {"method", "generator", "train", "segmenter", "data", "folds"}
    if isinstance(table, dict) and "mlo" in table:
        raise ConfigError(f"[variants.{name}] mlo = {{ ... }}: GenSeg's settings are the method's now, "
                         f"method = {{ name = \"genseg\", ... }}")
    if not isinstance(table, dict) or "method" not in table or set(table) - allowed:
        raise ConfigError(f"[variants.{name}] needs method = \"NAME\" (or method = {{ name = \"NAME\", ... its "
                         f"settings }}) and may have generator, train, segmenter and data tables and folds = K; "
                         f"got {sorted(table) if isinstance(table, dict) else table!r}")
    table = dict(table)
    if not isinstance(table.get("folds", 1), int) or table.get("folds", 1) < 1:
        raise ConfigError(f"[variants.{name}] folds = K needs a whole number K >= 1, got {table['folds']!r}")
    method = table.pop("method")
    if isinstance(method, dict):
        options = dict(method)
        if not isinstance(options.pop("name", None), str):
            raise ConfigError(f"[variants.{name}] method = {{ name = \"NAME\", ... }} needs the method's name")
        return Variant(method["name"], options=options, **table)
    return Variant(method, **table)


def _budget_key(dataset: str, budget: str | int) -> int:
    try:
        return int(budget)
    except ValueError:
        raise ConfigError(f"methods_at.{dataset} keys must be budgets (integers), got {budget!r}") from None


def _ood_folder(spec: BenchmarkSpec, other: str) -> Path:
    return Path(other) if "/" in other else spec.data_root / other


def _existing(path: Path) -> Path:
    if not path.exists():
        raise DataError("not found; check --data-root and --splits-root (paths are relative to the "
                        "current directory)", path)
    return path.resolve()


def _run_config(spec: BenchmarkSpec, dataset: str, root: Path, split_file: Path, budget: int,
                variant_name: str, seed: int) -> RunConfig:
    variant = spec.variants[variant_name]
    try:
        return RunConfig(
            data=DataConfig(**{"root": root, "split_file": split_file, "budget": budget, "n_val": spec.n_val,
                               "size": _size(spec.sizes.get(dataset, spec.size)), "max_size": spec.max_size,
                               "axis": spec.axes.get(dataset), "dims": _dims(spec.dims), **variant.data}),
            segmenter=SegmenterConfig(name=spec.segmenter, options=dict(variant.segmenter)),
            generator=GeneratorConfig(**{"pretrain_iterations": spec.pretrain_iterations, **spec.generator,
                                         **variant.generator}),
            method=MethodConfig(variant.method, **variant.options),
            train=TrainConfig(**{"iterations": spec.iterations_at.get(dataset, spec.iterations), "device": spec.device,
                                 **spec.train, **variant.train, "seed": seed}),
        )
    except (TypeError, ValueError) as error:  # TypeError: an override names no config field
        raise ConfigError(f"{dataset} budget {budget}, variant {variant_name!r}: {error}") from None


def _dims(value: int | str) -> int | None:
    if value == "auto":
        return None
    if value not in (2, 3):
        raise ConfigError(f"dims is 2, 3 or \"auto\", got {value!r}")
    return value


def _size(value: int | str) -> int | None:
    if value == "auto":
        return None
    if not isinstance(value, int):
        raise ConfigError(f"sizes are integers or \"auto\", got {value!r}")
    return value
