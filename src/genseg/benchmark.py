"""The benchmark runner: many training runs, one CSV of results, a markdown table and plots.

A benchmark (:class:`BenchmarkSpec`, from a TOML file or from options) is the product of data
sets x budgets x method variants x seeds, run by the protocol of ``../shared/BENCHMARK.md``.
Each run is two subprocesses, ``genseg train --resume`` and ``genseg evaluate``, so a crash or an
out-of-memory kill is recorded as a failed run instead of ending the benchmark, and the peak
memory in ``result.json`` is the run's own. Layout of the out folder::

    runs.csv         one row per finished run, checkpoint and evaluation set (appended as runs end)
    table.md         mean ± SD over seeds per data set, budget and variant
    efficiency_<dataset>.png   test Dice vs labeled pairs N, one line per variant
    machine.json     CPU, cores, torch version and threads, GPU
    runs/<dataset>-n<N>-<variant>-s<seed>/   the run folders (``config.json`` written here first)
    locks/<run>/     runs claimed by a running benchmark process

A restarted benchmark skips the runs whose rows are in ``runs.csv`` with status ``ok`` and
resumes half-finished run folders. Several processes may share one out folder (start the same
command twice to use two cores): each run is claimed by an atomic ``mkdir`` of its lock and rows
are appended under a file lock. A process killed mid-run leaves its lock behind; remove such
stale locks with :func:`clear_locks` (``genseg benchmark --clear-locks``) once no benchmark
process is running on the folder.

Example:
    >>> spec = load_spec(Path("benchmarks/issue4.toml"))  # doctest: +SKIP
    >>> run_benchmark(spec)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from genseg.config import (
    DataConfig,
    GeneratorConfig,
    MLOConfig,
    RunConfig,
    SegmenterConfig,
    TrainConfig,
)
from genseg.data import DataError, read_split
from genseg.data.io import atomic_write
from genseg.methods import METHOD_NAMES
from genseg.planning import Plan
from genseg.runs import (
    CHECKPOINTS,
    RunPaths,
    eval_name,
    load_config,
    plan_for,
    pretraining_key,
    save_config,
    write_plan,
)

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("benchmarks/results")
DEFAULT_DATA_ROOT = Path("../shared/datasets")
DEFAULT_SPLITS_ROOT = Path("../shared/benchmark/splits")
PROTOCOL_METHODS = ("supervised", "augment", "separate", "semisup", "genseg")

# The columns that identify a run in runs.csv: a row with another segmenter, size or iteration
# count is another run, so a changed benchmark never silently reuses old results.
PER_DATASET_TABLES = ("budgets", "methods_at", "sizes", "axes", "ood")
"""BenchmarkSpec fields keyed by data set."""
KEY_COLUMNS = ("dataset", "n_labels", "method", "seed", "segmenter", "size", "iterations")
HEAD_COLUMNS = (*KEY_COLUMNS[:2], "n_train", "n_val", *KEY_COLUMNS[2:], "checkpoint", "eval_set",
                "dice", "iou", "hd95", "n_hd95_undefined", "n_cases")
TAIL_COLUMNS = ("seconds", "peak_mb", "status", "error")


@dataclass
class Variant:
    """A named setting of a training method: the method and overrides of its config sections.

    Args:
        method: a training method (``supervised``, ``augment``, ``separate``, ``semisup``, ``genseg``).
        mlo: :class:`~genseg.config.MLOConfig` fields to override.
        generator: :class:`~genseg.config.GeneratorConfig` fields to override.
        train: :class:`~genseg.config.TrainConfig` fields to override.
        segmenter: options of the benchmark's segmenter to override (e.g. ``{"norm": "instance"}``).
    """

    method: str
    mlo: dict[str, Any] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    segmenter: dict[str, Any] = field(default_factory=dict)


VARIANTS: dict[str, Variant] = {
    **{name: Variant(name) for name in METHOD_NAMES},
    "genseg": Variant("genseg", mlo={"upper": "arch", "hypergradient": "exact"}),
    "genseg-none": Variant("genseg", mlo={"upper": "none"}),  # the ablation: same schedule, no hypergradient
    "genseg-generator": Variant("genseg", mlo={"upper": "generator"}),
    "genseg-both": Variant("genseg", mlo={"upper": "both"}),
    "genseg-darts": Variant("genseg", mlo={"upper": "arch", "hypergradient": "darts"}),
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
        iterations: segmenter optimization steps.
        pretrain_iterations: generator pre-training steps (separate, genseg).
        out: the benchmark's out folder.
        data_root: folder holding the data sets (relative to the current directory).
        splits_root: folder holding ``<dataset>.json`` split files.
        n_val: validation pairs out of each budget; default 20 %, at least 1.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
        threads: torch threads per run (``OMP_NUM_THREADS``); default torch's own choice.
        methods_at: data set -> budget -> variants run at that budget instead of ``methods``.
        sizes: data set -> image size (or ``"auto"``) instead of ``size``.
        axes: data set -> slicing axis of 3D volumes (default 0).
        splits: the run's own splits to evaluate: ``test`` and/or ``dev`` (pool cases outside the
            budget, where recipes are chosen; see :func:`genseg.data.dev_ids`).
        ood: data set -> out-of-domain data folders, each evaluated whole with the model selected
            in-domain: a bare name is a folder under ``data_root``, a path (with ``/``) is taken
            relative to the current directory. Adding one to a finished benchmark evaluates the
            trained runs on it without training them again.
        variants: the variants that can be named; the built-ins plus any defined in a TOML file.
    """

    datasets: list[str]
    budgets: dict[str, list[int]]
    methods: list[str] = field(default_factory=lambda: list(PROTOCOL_METHODS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    segmenter: str = "unet"
    size: int | str = 128
    max_size: int = 512
    iterations: int = 1000
    pretrain_iterations: int = 1000
    out: Path = DEFAULT_OUT
    data_root: Path = DEFAULT_DATA_ROOT
    splits_root: Path = DEFAULT_SPLITS_ROOT
    n_val: int | None = None
    device: str = "auto"
    threads: int | None = None
    methods_at: dict[str, dict[int, list[str]]] = field(default_factory=dict)
    sizes: dict[str, int | str] = field(default_factory=dict)
    axes: dict[str, int] = field(default_factory=dict)
    splits: list[str] = field(default_factory=lambda: ["test"])
    ood: dict[str, list[str]] = field(default_factory=dict)
    variants: dict[str, Variant] = field(default_factory=lambda: dict(VARIANTS))

    def __post_init__(self) -> None:
        self.out, self.data_root, self.splits_root = Path(self.out), Path(self.data_root), Path(self.splits_root)
        if not self.datasets:
            raise ValueError("no data sets given: pass --datasets or set datasets = [...] in the TOML file")
        if not self.seeds:
            raise ValueError("no seeds given: pass --seeds or set seeds = [...]")
        if not self.splits or set(self.splits) - {"test", "dev"}:
            raise ValueError(f"splits must name test and/or dev, got {self.splits}")
        for name in PER_DATASET_TABLES:
            unknown = sorted(set(getattr(self, name)) - set(self.datasets))
            if unknown:
                raise ValueError(f"{name} names data sets that are not in datasets {self.datasets}: {unknown}")
        for dataset in self.datasets:
            if not self.budgets.get(dataset):
                raise ValueError(f"no budgets for data set {dataset!r}: pass --budgets or set budgets.{dataset}")
            extra = sorted(set(self.methods_at.get(dataset, {})) - set(self.budgets[dataset]))
            if extra:
                raise ValueError(f"methods_at.{dataset} names budgets {extra} that are not in its budgets "
                                 f"{self.budgets[dataset]}")
        for name in self.variants:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise ValueError(f"variant name {name!r} must be letters, digits, '.', '_' or '-' (it names folders)")
        named = [*self.methods, *(m for at in self.methods_at.values() for ms in at.values() for m in ms)]
        unknown = sorted(set(named) - set(self.variants))
        if unknown:
            raise ValueError(f"unknown method variants {unknown}; known: {', '.join(self.variants)} "
                             "(define more in a TOML [variants.NAME] table)")

    def methods_for(self, dataset: str, budget: int) -> list[str]:
        """The variants run on ``dataset`` at ``budget``."""
        return self.methods_at.get(dataset, {}).get(budget, self.methods)


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
    plan: Plan | None = None

    @property
    def name(self) -> str:
        """The run folder's name, ``<dataset>-n<N>-<variant>[-<segmenter>]-s<seed>``.

        The segmenter is named when it is not the default UNet, so that runs of several
        segmenters can share one out folder.
        """
        segmenter = self.config.segmenter.name
        tag = "" if segmenter == SegmenterConfig().name else f"-{segmenter}"
        return f"{self.dataset}-n{self.budget}-{self.variant}{tag}-s{self.seed}"

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
        data = self.config.data
        return {"dataset": self.dataset, "n_labels": self.budget, "n_train": data.n_train, "n_val": data.n_val,
                "method": self.variant, "seed": self.seed, "segmenter": self.config.segmenter.name,
                "size": data.size, "iterations": self.config.train.iterations}


@dataclass
class BenchmarkOutcome:
    """What one call of :func:`run_benchmark` did, by run name."""

    ok: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)


class RunFailed(Exception):
    """A subprocess of a run ended badly; the message says how."""


def load_spec(path: Path, overrides: dict[str, Any] | None = None) -> BenchmarkSpec:
    """Read a benchmark TOML file; ``overrides`` (e.g. from command-line options) win over it.

    Top-level keys are the fields of :class:`BenchmarkSpec`; ``budgets`` may be a list (for every
    data set) or a table per data set; ``[variants.NAME]`` tables (``method`` and optional
    ``mlo``, ``generator``, ``train`` tables) define variants beside the built-ins. Paths are
    relative to the current directory. See ``benchmarks/issue4.toml``.

    Raises:
        ValueError: invalid TOML, unknown keys or values (the message names the file).
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise ValueError(f"{path}: reading TOML needs Python >= 3.11; pass the benchmark as options instead") from None
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: invalid TOML: {error}") from None
    try:
        return spec_from_dict(_narrowed(values, overrides or {}))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


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
        raise ValueError(f"unknown benchmark settings {unknown}; known: {', '.join(sorted(known))}")
    if "datasets" not in values or "budgets" not in values:
        raise ValueError("a benchmark needs datasets and budgets (--datasets and --budgets, or TOML keys)")
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
    runs = []
    for dataset in spec.datasets:
        root, split_file = _existing(spec.data_root / dataset), _existing(spec.splits_root / f"{dataset}.json")
        ood = tuple(_existing(_ood_folder(spec, other)) for other in spec.ood.get(dataset, []))
        for budget in spec.budgets[dataset]:
            for seed in spec.seeds:
                for variant in spec.methods_for(dataset, budget):
                    config = _run_config(spec, dataset, root, split_file, budget, variant, seed)
                    plan = None
                    if config.data.size is None:
                        plan = plan_for(config, read_split(split_file))
                        config = replace(config, data=replace(config.data, size=plan.size))
                    runs.append(PlannedRun(dataset, budget, variant, seed, config, ood, tuple(spec.splits), plan))
    return runs


def run_benchmark(spec: BenchmarkSpec) -> BenchmarkOutcome:
    """Run every run of ``spec`` not yet in ``runs.csv``, appending rows and refreshing reports.

    Returns:
        The runs that finished (ok or failed), were already done, or are held by another process.
    """
    runs = plan_runs(spec)
    out = spec.out
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "locks").mkdir(exist_ok=True)
    write_machine_info(out, spec.threads)
    env = _subprocess_env(spec.threads)
    outcome = BenchmarkOutcome()
    for position, run in enumerate(runs, start=1):
        if not _claim(out, run.name):
            outcome.locked.append(run.name)
            continue
        try:
            # Checked after claiming: another process may have finished the run meanwhile.
            evaluated = evaluated_sets(out / "runs.csv").get(run.key, set())
            if set(run.eval_sets) <= evaluated:
                outcome.skipped.append(run.name)
                continue
            log.info("[%d/%d] %s", position, len(runs), run.name)
            rows = execute_run(run, out / "runs" / run.name, env, evaluated=evaluated)
            append_rows(out / "runs.csv", rows)
        finally:
            _release(out, run.name)
        (outcome.ok if rows[0]["status"] == "ok" else outcome.failed).append(run.name)
        log.info("%s: %s", run.name, _outcome_line(rows))
        write_reports(out)
    return outcome


def execute_run(
    run: PlannedRun, run_dir: Path, env: dict[str, str] | None = None, *, evaluated: set[str] | None = None
) -> list[dict[str, Any]]:
    """Train (unless already trained) and evaluate one run in subprocesses.

    The run's ``config.json`` is written first and ``genseg train --resume`` runs it, so a
    half-finished run folder continues where it stopped. Subprocess output goes to
    ``benchmark.log`` in the run folder. A generator pre-trained by an earlier run with the same
    :func:`~genseg.runs.pretraining_key` (``<out>/pretrained/``) is copied in instead of pre-training again.

    Args:
        evaluated: evaluation sets already in ``runs.csv``; they are not evaluated again.

    Returns:
        Its ``runs.csv`` rows: one per new evaluation set and checkpoint, or one failed row.
    """
    pending = [name for name in run.eval_sets if name not in (evaluated or set())]
    paths = RunPaths(run_dir)
    shared = run_dir.parent.parent / "pretrained" / f"{key}.pt" if (key := pretraining_key(run.config)) else None
    try:
        _write_or_check_config(run, paths)
        data = str(run.config.data.root)
        if not paths.result.is_file():  # written last by train: the run is trained
            if shared is not None and shared.is_file() and not paths.pretrain.exists():
                _copy_atomic(shared, paths.pretrain)
            _run_cli(["train", "--data", data, "--out", str(run_dir), "--resume"], paths.root, env)
        if shared is not None and not shared.is_file():
            _copy_atomic(paths.pretrain, shared)
        for name in pending:
            split, folder = run.eval_sets[name]
            data_option = [] if folder is None else ["--data", str(folder)]
            _run_cli(["evaluate", "--run", str(run_dir), "--split", split, *data_option, "--checkpoint", "both"],
                     paths.root, env)
        return result_rows(run, paths, pending)
    except RunFailed as failure:
        return [{**run.columns(), "status": "failed", "error": str(failure)}]


def _copy_atomic(source: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, partial)
    os.replace(partial, target)


def evaluated_sets(results: Path) -> dict[tuple[str, ...], set[str]]:
    """Run key (:data:`KEY_COLUMNS`) -> the evaluation sets with ``ok`` rows in a ``runs.csv``."""
    evaluated: dict[tuple[str, ...], set[str]] = {}
    for row in _ok(read_rows(results)):
        evaluated.setdefault(_row_key(row), set()).add(row["eval_set"])
    return evaluated


def read_rows(results: Path) -> list[dict[str, str]]:
    """The rows of a ``runs.csv`` (empty if it does not exist yet)."""
    with _file_lock(results):
        return _read_unlocked(results)


def append_rows(results: Path, rows: list[dict[str, Any]]) -> None:
    """Append rows to a ``runs.csv`` under a file lock, widening its header if rows bring new columns."""
    with _file_lock(results):
        header = _header(results)
        new_columns = [c for row in rows for c in row if c not in header]
        if header and not new_columns:
            with results.open("a", newline="") as handle:
                csv.DictWriter(handle, fieldnames=header).writerows(rows)
            return
        everything = _read_unlocked(results) + rows
        text = _csv_text(everything, _ordered_columns([c for row in everything for c in row]))
        atomic_write(results, lambda temp: temp.write_text(text))


def clear_locks(out: Path) -> list[str]:
    """Remove every run lock of an out folder (left by killed processes); returns the run names."""
    locks = Path(out) / "locks"
    names = sorted(lock.name for lock in locks.iterdir()) if locks.is_dir() else []
    for name in names:
        (locks / name).rmdir()
    return names


def write_reports(out: Path) -> None:
    """Write ``table.md`` and one ``efficiency_<dataset>.png`` per data set from ``runs.csv``."""
    rows = read_rows(out / "runs.csv")
    text = results_table(rows)
    atomic_write(out / "table.md", lambda temp: temp.write_text(text))
    for dataset in dict.fromkeys(row["dataset"] for row in _ok(rows)):
        plot_efficiency([row for row in rows if row["dataset"] == dataset], out / f"efficiency_{dataset}.png")


def results_table(rows: list[dict[str, str]]) -> str:
    """Markdown tables of ``runs.csv`` rows: mean ± SD over seeds, per data set and evaluation set.

    One section per data set and shared setting (segmenter, size, iterations), one table per
    evaluation set (``test``, ``ood-<name>``), a per-class table for multi-class data, and a list
    of the runs that failed and have no successful result.
    """
    lines = ["# Benchmark results", "",
             "Mean ± SD over seeds (sample SD; a single seed shows its value). \"best\": the checkpoint "
             "with the lowest validation loss; \"final\": the last iteration. HD95 in pixels, over the cases "
             "where it is defined; \"(k undef.)\" counts the other cases over all seeds. "
             "Per-seed values: runs.csv.", ""]
    ok = _ok(rows)
    for setting, section in _groups(ok, ("dataset", "segmenter", "size", "iterations")).items():
        dataset, segmenter, size, iterations = setting
        lines += [f"## {dataset} ({segmenter}, {size} px, {iterations} iterations)", ""]
        for (eval_set,), evaluated in _groups(section, ("eval_set",)).items():
            title = {"test": "test set", "dev": "development cases (pool outside the budget)"}.get(
                eval_set, f"{eval_set}: whole folder, model selected in-domain")
            lines += [f"### {title}", "", *_metrics_table(evaluated), ""]
            per_class = [c for c in evaluated[0] if c.startswith("dice_") and any(row.get(c) for row in evaluated)]
            if per_class:
                lines += ["Per-class Dice, best checkpoint:", "", *_per_class_table(evaluated, per_class), ""]
    done = {_row_key(row) for row in ok}
    failed = {_row_key(row): row for row in rows if _row_key(row) not in done}  # the latest attempt's error
    if failed:
        lines += ["## Failed runs (no successful result)", ""]
        lines += [f"- {_run_label(row)}: {row['error']}" for row in failed.values()] + [""]
    return "\n".join(lines)


def plot_efficiency(rows: list[dict[str, str]], path: Path) -> None:
    """Test Dice vs labeled pairs N of one data set: one line per variant, error bars = SD over seeds.

    Two panels: the best-validation checkpoint (solid) and the final one (dashed).
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    test = [row for row in _ok(rows) if row["eval_set"] == "test"]
    settings = _groups(test, ("segmenter", "size", "iterations"))
    figure = Figure(figsize=(10, 4), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    budgets = sorted({int(row["n_labels"]) for row in test})
    colours = {key: f"C{i}" for i, key in enumerate(_groups(test, ("segmenter", "size", "iterations", "method")))}
    # Each line's points shift a few percent along the log axis so equal budgets do not hide each other.
    dodge = {key: 1.04 ** (i - (len(colours) - 1) / 2) for i, key in enumerate(colours)}
    for ax, checkpoint, style in zip(axes, CHECKPOINTS, ("-", "--")):
        for (segmenter, size, iterations), group in settings.items():
            suffix = f" ({segmenter}, {size} px, {iterations} it.)" if len(settings) > 1 else ""
            for (method,), lines in _groups([r for r in group if r["checkpoint"] == checkpoint], ("method",)).items():
                points = _groups(lines, ("n_labels",))
                xs = sorted(points, key=lambda key: int(key[0]))
                values = [[float(row["dice"]) for row in points[x]] for x in xs]
                line = (segmenter, size, iterations, method)
                ax.errorbar([int(x[0]) * dodge[line] for x in xs], [statistics.mean(v) for v in values],
                            yerr=[_sd(v) or 0.0 for v in values], linestyle=style, marker="o", capsize=3,
                            color=colours[line], label=method + suffix)
        ax.set_xscale("log")
        ax.set_xticks(budgets, labels=[str(b) for b in budgets])
        ax.minorticks_off()
        ax.set_xlabel("labeled pairs N (train + val)")
        ax.set_title(f"{checkpoint} checkpoint")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test Dice (mean ± SD over seeds)")
    if axes[0].get_legend_handles_labels()[0]:  # a plan scored on development cases only has no test rows
        axes[0].legend(fontsize="small")
    figure.suptitle(f"{rows[0]['dataset']}: data efficiency")
    atomic_write(path, lambda temp: figure.savefig(temp, format="png", dpi=120))


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """CPU model, cores, torch version and threads, GPU name (``None`` without one)."""
    import torch

    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.is_file() else []
    return {
        "cpu": models[0] if models else platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": threads or torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_machine_info(out: Path, threads: int | None = None) -> None:
    """Write ``machine.json`` into the out folder."""
    text = json.dumps(machine_info(threads), indent=2) + "\n"
    atomic_write(Path(out) / "machine.json", lambda temp: temp.write_text(text))


def _variant(name: str, table: dict[str, Any]) -> Variant:
    allowed = {"method", "mlo", "generator", "train", "segmenter"}
    if not isinstance(table, dict) or "method" not in table or set(table) - allowed:
        raise ValueError(f"[variants.{name}] needs method = \"...\" and may have mlo, generator, train and segmenter "
                         f"tables; got {sorted(table) if isinstance(table, dict) else table!r}")
    return Variant(**table)


def _budget_key(dataset: str, budget: str | int) -> int:
    try:
        return int(budget)
    except ValueError:
        raise ValueError(f"methods_at.{dataset} keys must be budgets (integers), got {budget!r}") from None


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
            data=DataConfig(root=root, split_file=split_file, budget=budget, n_val=spec.n_val,
                            size=_size(spec.sizes.get(dataset, spec.size)), max_size=spec.max_size,
                            axis=spec.axes.get(dataset, 0)),
            segmenter=SegmenterConfig(name=spec.segmenter, options=dict(variant.segmenter)),
            generator=GeneratorConfig(**{"pretrain_iterations": spec.pretrain_iterations, **variant.generator}),
            mlo=MLOConfig(**variant.mlo),
            train=TrainConfig(**{"iterations": spec.iterations, "device": spec.device, **variant.train,
                                 "method": variant.method, "seed": seed}),
        )
    except (TypeError, ValueError) as error:  # TypeError: an override names no config field
        raise ValueError(f"{dataset} budget {budget}, variant {variant_name!r}: {error}") from None


def _size(value: int | str) -> int | None:
    if value == "auto":
        return None
    if not isinstance(value, int):
        raise ValueError(f"sizes are integers or \"auto\", got {value!r}")
    return value


def _write_or_check_config(run: PlannedRun, paths: RunPaths) -> None:
    if not paths.config.is_file():
        save_config(run.config, paths)
        if run.plan is not None:
            write_plan(run.plan, paths)
    elif load_config(paths) != run.config:  # as dataclasses: fields added since then take their defaults
        raise RunFailed(f"{paths.root} holds a run with another config; delete it or choose another out folder")


def _subprocess_env(threads: int | None) -> dict[str, str]:
    # A wide console keeps the CLI's one-line error messages on one line in the log.
    env = {**os.environ, "COLUMNS": "1000"}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def _run_cli(args: list[str], run_dir: Path, env: dict[str, str] | None) -> None:
    """Run ``genseg <args>`` in a subprocess, its output appended to ``run_dir/benchmark.log``."""
    log_path = run_dir / "benchmark.log"
    run_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as handle:
        handle.write(f"$ genseg {' '.join(args)}\n")
    start = log_path.stat().st_size
    with log_path.open("ab") as handle:
        returncode = subprocess.run([sys.executable, "-m", "genseg.cli", *args], stdout=handle,
                                    stderr=subprocess.STDOUT, env=env, check=False).returncode
    if returncode != 0:
        text = log_path.read_bytes()[start:].decode(errors="replace")
        output = [line.strip() for line in text.splitlines() if line.strip()]
        how = f"killed by signal {-returncode}" if returncode < 0 else f"exited with status {returncode}"
        raise RunFailed(f"genseg {args[0]} {how}" + (f": {output[-1]}" if output else ""))


def result_rows(run: PlannedRun, paths: RunPaths, eval_sets: list[str] | None = None) -> list[dict[str, Any]]:
    """The ``runs.csv`` rows of a trained and evaluated run, for ``eval_sets`` (default: all)."""
    trained = json.loads(paths.result.read_text())
    rows = []
    for eval_set in run.eval_sets if eval_sets is None else eval_sets:
        for checkpoint in CHECKPOINTS:
            results = paths.eval_dir(eval_name(*run.eval_sets[eval_set]), checkpoint)
            summary = json.loads((results / "summary.json").read_text())
            rows.append({**run.columns(), "checkpoint": checkpoint, "eval_set": eval_set,
                         **summary_columns(summary), "seconds": round(trained["seconds"], 1),
                         "peak_mb": _rounded(trained.get("peak_mb")), "status": "ok", "error": ""})
    return rows


def summary_columns(summary: dict[str, Any]) -> dict[str, Any]:
    """Flat metrics of an evaluation summary; per-class Dice only when there are several classes."""
    per_class = {key[: -len("_mean")]: summary[key] for key in summary
                 if key.startswith("dice_") and key.endswith("_mean") and key != "dice_mean"}
    return {"dice": summary["dice_mean"], "iou": summary["iou_mean"], "hd95": summary["hd95_mean"],
            "n_hd95_undefined": summary["n_hd95_undefined"], "n_cases": summary["n_cases"],
            **(per_class if len(per_class) > 1 else {})}


def _outcome_line(rows: list[dict[str, Any]]) -> str:
    if rows[0]["status"] != "ok":
        return f"FAILED: {rows[0]['error']}"
    eval_set = rows[0]["eval_set"]
    dice = {row["checkpoint"]: row["dice"] for row in rows if row["eval_set"] == eval_set}
    return f"{eval_set} Dice {dice['best']:.4f} (best), {dice['final']:.4f} (final); {rows[0]['seconds']:.0f} s"


def _claim(out: Path, name: str) -> bool:
    try:
        (out / "locks" / name).mkdir()  # atomic: exactly one process succeeds
    except FileExistsError:
        return False
    return True


def _release(out: Path, name: str) -> None:
    (out / "locks" / name).rmdir()


@contextmanager
def _file_lock(results: Path) -> Iterator[None]:
    # A separate lock file: runs.csv itself is replaced when its header widens.
    results.parent.mkdir(parents=True, exist_ok=True)
    with (results.parent / f".{results.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_unlocked(results: Path) -> list[dict[str, str]]:
    if not results.is_file():
        return []
    with results.open(newline="") as handle:
        return [{k: v or "" for k, v in row.items()} for row in csv.DictReader(handle)]


def _header(results: Path) -> list[str]:
    if not results.is_file():
        return []
    with results.open(newline="") as handle:
        return next(csv.reader(handle), [])


def _ordered_columns(columns: list[str]) -> list[str]:
    """Fixed columns first, then per-class Dice in order of appearance, then the run's costs and status."""
    fixed = set(HEAD_COLUMNS) | set(TAIL_COLUMNS)
    return [*HEAD_COLUMNS, *dict.fromkeys(c for c in columns if c not in fixed), *TAIL_COLUMNS]


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _ok(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [row for row in rows if row["status"] == "ok"]


def _row_key(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row[c] for c in KEY_COLUMNS)


def _groups(rows: list[dict[str, str]], columns: tuple[str, ...]) -> dict[tuple[str, ...], list[dict[str, str]]]:
    """Rows grouped by the values of ``columns``, groups in order of first appearance."""
    groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[c] for c in columns), []).append(row)
    return groups


def _table_order(groups: dict[tuple[str, ...], Any]) -> list[tuple[str, ...]]:
    """(n_labels, method) keys by budget, then built-in variants in registry order, then others."""
    order = list(VARIANTS)
    return sorted(groups, key=lambda key: (int(key[0]), order.index(key[1]) if key[1] in order else len(order), key[1]))


def _metrics_table(rows: list[dict[str, str]]) -> list[str]:
    lines = ["| N | train+val | method | Dice best | Dice final | IoU best | IoU final | HD95 best | HD95 final "
             "| s/run | peak MB | seeds |", "|---|---|---|" + "---|" * 9]
    groups = _groups(rows, ("n_labels", "method"))
    for key in _table_order(groups):
        group = groups[key]
        by_checkpoint = {c: [row for row in group if row["checkpoint"] == c] for c in CHECKPOINTS}
        best, final = by_checkpoint["best"], by_checkpoint["final"]
        cells = [key[0], f"{group[0]['n_train']}+{group[0]['n_val']}", key[1],
                 _cell(best, "dice", 3), _cell(final, "dice", 3), _cell(best, "iou", 3), _cell(final, "iou", 3),
                 _hd95_cell(best), _hd95_cell(final), _cell(best, "seconds", 0),
                 _peak_cell(group), str(len({row["seed"] for row in group}))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _per_class_table(rows: list[dict[str, str]], columns: list[str]) -> list[str]:
    lines = ["| N | method | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    groups = _groups([row for row in rows if row["checkpoint"] == "best"], ("n_labels", "method"))
    for key in _table_order(groups):
        lines.append("| " + " | ".join([*key, *(_cell(groups[key], c, 3) for c in columns)]) + " |")
    return lines


def _cell(rows: list[dict[str, str]], column: str, digits: int) -> str:
    """Mean ± SD over the rows (one per seed) of a column."""
    values = [float(row[column]) for row in rows if row.get(column)]
    if not values:
        return "–"
    sd = _sd(values)
    return f"{statistics.mean(values):.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None else "")


def _hd95_cell(rows: list[dict[str, str]]) -> str:
    undefined = sum(int(float(row["n_hd95_undefined"])) for row in rows)
    return _cell(rows, "hd95", 1) + (f" ({undefined} undef.)" if undefined else "")


def _sd(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def _run_label(row: dict[str, str]) -> str:
    return f"{row['dataset']}-n{row['n_labels']}-{row['method']}-s{row['seed']}"


def _peak_cell(rows: list[dict[str, str]]) -> str:
    """The largest recorded peak memory, with how many runs did not record it."""
    recorded = [float(row["peak_mb"]) for row in rows if row["peak_mb"] != ""]
    missing = len(rows) - len(recorded)
    text = f"{max(recorded):.0f}" if recorded else "n/a"
    return text + (f" ({missing} not recorded)" if recorded and missing else "")


def _rounded(value: float | None) -> int | str:
    """Peak memory for runs.csv; blank where a run folder did not record it."""
    return "" if value is None else round(value)
