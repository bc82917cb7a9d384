"""The ``genseg`` command: a thin typer layer over the Python API.

Heavy modules (torch, MONAI) are imported inside the commands so that ``--help`` is instant.
User errors (bad data, bad options) print one clear line and exit with status 2.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import importlib.util
import inspect
import logging
import signal
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from genseg import __version__
from genseg.config import DataConfig, GeneratorConfig, MethodConfig, TrainConfig
from genseg.errors import ConfigError, UserError
from genseg.plugins import GENERATORS, METHODS, SEGMENTERS
from genseg.suggest import DEFAULT_STRATEGY, STRATEGIES

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,  # "[default]" is no style tag
                  help="Medical image segmentation from a handful of labels (GenSeg).")


def _version(value: bool) -> None:
    if value:
        print(f"genseg {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Medical image segmentation from a handful of labels (GenSeg)."""


# Logs and pipes get a wide console: metric tables would otherwise be cut at 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=160)


def _user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user errors into a one-line message instead of a traceback; report anything else as a bug."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (UserError, FileExistsError, FileNotFoundError) as error:
            _one_line(str(error))
        except OSError as error:
            if error.errno not in _DISK_FIXES:
                _report_bug(error)
            _one_line(f"{error.filename or 'a file'}: cannot write ({error.strerror}); {_DISK_FIXES[error.errno]}")
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as error:  # what no check foresaw is a bug, and reported as one
            _report_bug(error)

    return wrapper


def _report_bug(error: BaseException) -> None:
    """One line that says an unexpected error is a bug, and a file with its traceback to report."""
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile("w", prefix="genseg-bug-", suffix=".log", delete=False) as handle:
        handle.write("".join(traceback.format_exception(error)))
    console.print(f"[bold red]error:[/] {escape(f'{type(error).__name__}: {error}')}", soft_wrap=True)
    console.print(f"genseg did not expect this error: it is a bug, or a setting genseg does not check yet. The "
                  f"traceback is in {escape(handle.name)}; please report it with that file.", soft_wrap=True)
    raise typer.Exit(code=1) from None


_DISK_FIXES = {
    errno.ENOSPC: "free some space on that disk or choose an --out on another one, then run again (with --resume "
                  "for a training: its last checkpoint is whole)",
    errno.EDQUOT: "your disk quota is full: free some space or choose an --out elsewhere",
    errno.EACCES: "you may not write there: choose an --out you own",
    errno.EPERM: "you may not write there: choose an --out you own",
    errno.EROFS: "the file system is read-only: choose an --out on a writable disk",
}
"""Why a write failed, and the fix, for the OS errors a user can act on."""


def _one_line(message: str) -> None:
    # escape: file names may hold [brackets]; soft_wrap: one line, however narrow the terminal
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=2) from None


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=console, show_path=False)
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[handler])


def _print_summaries(summaries: dict[str, dict]) -> None:
    """One row per checkpoint: every metric's per-case mean ± SD, and undefined HD95 counts."""
    first = next(iter(summaries.values()))
    per_class = [key[: -len("_mean")] for key in first if key.startswith("dice_") and key.endswith("_mean") and key != "dice_mean"]
    metrics = ["dice", "iou", "hd95"] + (per_class if len(per_class) > 1 else [])
    table = Table(title=f"{first['split']}: per-case mean ± SD over {first['n_cases']} cases")
    for column in ("checkpoint", "iteration", *metrics, "HD95 undefined"):
        table.add_column(column, justify="left" if column == "checkpoint" else "right")
    for checkpoint, summary in summaries.items():
        cells = [f"{summary[m + '_mean']:.3f}±{summary[m + '_sd']:.3f}" for m in metrics]
        table.add_row(checkpoint, str(summary["iteration"]), *cells, str(summary["n_hd95_undefined"]))
    console.print(table)
    for checkpoint, summary in summaries.items():
        if "fold_dice_mean" in summary:  # a fold set's ensemble: each fold alone beside it
            alone = ", ".join(f"{fold} {dice:.3f}" for fold, dice in summary["fold_dice_mean"].items())
            console.print(f"{checkpoint}: ensemble Dice {summary['dice_mean']:.3f}; each fold alone: {alone}")


def _comma_list(text: Optional[str], convert: Callable[[str], Any]) -> Optional[list]:
    """``"a, b"`` -> ``[convert("a"), convert("b")]``; ``None`` stays ``None`` (option not given)."""
    if text is None:
        return None
    try:
        return [convert(item.strip()) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ConfigError(f"expected a comma-separated list, got {text!r}") from None


def _size(text: str) -> Optional[int]:
    """``"auto"`` -> None (planned); else the integer side."""
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--size must be auto or an integer multiple of 32, got {text!r}") from None


def _dims(text: str) -> Optional[int]:
    """``"auto"`` -> None (planned); else 2 or 3."""
    if text not in ("2", "3", "auto"):
        raise ConfigError(f"--dims must be 2, 3 or auto, got {text!r}")
    return None if text == "auto" else int(text)


def _existing(path: Path, what: str) -> Path:
    """Fail in one line, before torch is imported, when a path the command reads is missing."""
    from genseg.errors import DataError

    if not path.exists():
        raise DataError(f"{what} not found; check the path", path)
    return path


# train's options that set a config field: option -> (section, field). The ones people reach for
# first; --set SECTION.KEY=VALUE reaches every other field (REPLACED_BY_SET: the flags it replaced).
# One place: the defaults shown in --help are the dataclasses' own, and only options given on the
# command line override the config (from --config FILE, from the run being resumed, or the defaults).
_TRAIN_FIELDS = {
    "data": ("data", "root"), "split": ("data", "split_file"), "budget": ("data", "budget"),
    "n_val": ("data", "n_val"), "size": ("data", "size"), "axis": ("data", "axis"),
    "dims": ("data", "dims"), "segmenter": ("segmenter", "name"),
    "generator": ("generator", "name"), "pretrain_iterations": ("generator", "pretrain_iterations"),
    "method": ("method", "name"),
    **{name: ("train", name) for name in ("iterations", "batch_size", "lr", "seed", "device")},
    "setting": (None, None),  # --set SECTION.KEY=VALUE: any field
}

REPLACED_BY_SET = {
    "--max-size": "data.max_size", "--synthetic-batch-size": "method.synthetic_batch_size",
    "--optimizer": "train.optimizer", "--schedule": "train.schedule", "--warmup": "train.warmup",
    "--sampling": "train.sampling", "--augmentation": "train.augmentation", "--val-every": "train.val_every",
    "--select": "train.select", "--ema": "train.ema_decay", "--average-last": "train.average_last",
    "--val-views": "method.val_views", "--upper": "method.upper", "--hypergradient": "method.hypergradient",
    "--upper-every": "method.every", "--unroll-steps": "method.unroll_steps", "--arch-lr": "method.arch_lr",
    "--gamma": "method.gamma", "--ngf": "generator.ngf", "--generator-option KEY=VALUE": "generator.KEY",
}
"""train's former flags and the ``--set`` key of each (docs/usage.md)."""


def _defaults(section: type) -> SimpleNamespace:
    """A config section's constructor defaults, for --help (without running its checks)."""
    parameters = inspect.signature(section).parameters.values()
    return SimpleNamespace(**{p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty})


_D, _G, _M, _T = (_defaults(section) for section in (DataConfig, GeneratorConfig, MethodConfig, TrainConfig))
_METHODS = " | ".join(METHODS.names)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@_user_errors
def train(
    context: typer.Context,
    data: Optional[Path] = typer.Option(None, help="Data folder: images/ + masks/, images beside their _mask files, nnU-Net raw, or MSD."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default: runs/DATA-METHOD-nBUDGET-sSEED)."),
    config: Optional[Path] = typer.Option(None, help="A config file (a run's config.json); options below override it."),
    method: Optional[str] = typer.Option(None, help=f"{_METHODS} [{_M.name}]; its settings: --set method.KEY=VALUE."),
    split: Optional[Path] = typer.Option(None, help="Split file (benchmark format); default: make one in the run."),
    budget: Optional[int] = typer.Option(None, help=f"Labeled pairs N = n_train + n_val (volumes for 3D data) [{_D.budget}]."),
    n_val: Optional[int] = typer.Option(None, help="Validation pairs out of N [20%, at least 1]."),
    seed: Optional[int] = typer.Option(None, help=f"Run seed; also picks pool.seed<s> of the split file [{_T.seed}]."),
    segmenter: Optional[str] = typer.Option(None, help=f"{' | '.join(SEGMENTERS.names)} [unet]"),
    size: Optional[str] = typer.Option(None, help="Square image size (multiple of 32), or auto: planned from the budget (genseg plan) [auto]."),
    axis: Optional[int] = typer.Option(None, help="Slicing axis for 3D volumes trained in 2D [planned: across thick slices, else 0]."),
    dims: Optional[str] = typer.Option(None, help="2: train on images (volumes as slices); 3: on whole volumes (every method but copypaste); auto: the plan's choice (3D for volumes of spacing anisotropy at most 3) [auto]."),
    iterations: Optional[int] = typer.Option(None, help=f"Segmenter optimization steps; with --resume, a larger value extends the run [{_T.iterations}]."),
    batch_size: Optional[int] = typer.Option(None, help="Real pairs per step [planned: 4 images, 2 volumes in 3D]."),
    lr: Optional[float] = typer.Option(None, help=f"Segmenter peak learning rate [{_T.lr}]."),
    generator: Optional[str] = typer.Option(None, help=f"Generator kind of separate and genseg: {' | '.join(GENERATORS.names)} [{_G.name}: the plan's choice]."),
    pretrain_iterations: Optional[int] = typer.Option(None, help=f"Generator pre-training steps on the training pairs, before the first segmenter step of separate and genseg [{_G.pretrain_iterations}]."),
    device: Optional[str] = typer.Option(None, help=f"auto (cuda when present) | cpu | cuda | cuda:N [{_T.device}]"),
    threads: Optional[int] = typer.Option(None, help="CPU threads [OMP_NUM_THREADS, else the cores this process may use that are idle]."),
    pretrained_generator: Optional[Path] = typer.Option(None, help="Reuse a generator pre-training: a pretrain.pt or a separate/genseg run folder with the same data, budget, seed and generator settings."),
    setting: Optional[list[str]] = typer.Option(None, "--set", help="Any config field, SECTION.KEY=VALUE, repeatable (e.g. --set train.checkpoint_every=50, --set method.candidates=4); the sections and keys are those of a run's config.json. The options above override it."),
    folds: Optional[int] = typer.Option(None, help="Cross-validation: K runs whose validation cases rotate through the budget (every label trains K-1 of them), evaluated and predicted as one ensemble [1: one run]."),
    workers: int = typer.Option(1, help="With --folds: folds trained at once, each in its own process with a share of the cores."),
    resume: bool = typer.Option(False, help="Continue the run (or fold set) in --out from its last checkpoint."),
    tensorboard: bool = typer.Option(False, help="Log the validation curves to OUT/tensorboard (pip install 'genseg[tensorboard]')."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log to the console too."),
) -> None:
    """Train a segmenter on the budget's labeled pairs; keep the best, the final and the averaged checkpoint (the weights of the last third).

    Every other setting: --set SECTION.KEY=VALUE (e.g. --set method.upper=generator, --set train.schedule=poly,
    --set generator.spade=true), as in a run's config.json.
    """
    given = {name: value for name, value in locals().items() if name in _TRAIN_FIELDS and value is not None}
    _refuse_unknown_options(context.args)
    if data is not None:
        _existing(data, "data folder")
    if config is not None:
        _existing(config, "config file")
    if pretrained_generator is not None:
        _existing(pretrained_generator, "generator pre-training")
    if resume and out is None:
        raise ConfigError("--resume needs the --out folder of the run to continue")
    _setup_logging(verbose)
    from genseg.folds import train_folds
    from genseg.runs import read_fold_set
    from genseg.runtime import set_threads
    from genseg.training import train as run_training

    fold_set = read_fold_set(out) if resume and out is not None else None
    folds = folds or (fold_set.folds if fold_set is not None else 1)
    if workers != 1 and folds == 1:
        raise ConfigError("--workers trains the folds of --folds K at once; a single run takes --threads instead")
    if folds > 1 and pretrained_generator is not None:
        raise ConfigError("--pretrained-generator and --folds: each fold pre-trains its own generator on its own "
                          "training pairs; leave one of them out")
    resumed = (fold_set.members()[0].root if fold_set is not None else out) if resume else None
    run_config = _train_config(config, resumed, given)
    if run_config.data.root is None:
        raise ConfigError("no data folder: pass --data DIR (or a --config file that names one)")
    name = f"{run_config.data.root.name}-{run_config.method.name}-n{run_config.data.budget}-s{run_config.train.seed}"
    out = out or Path("runs") / (f"{name}-folds{folds}" if folds > 1 else name)
    set_threads(threads)
    if folds > 1:
        results = train_folds(run_config, out, folds, resume=resume, tensorboard=tensorboard, workers=workers)
    else:
        results = [run_training(run_config, out, resume=resume, pretrained_generator=pretrained_generator,
                                tensorboard=tensorboard)]
    for result in results:
        console.print(f"{result.run_dir.name}: best validation loss {result.best_val_loss:.4f} (Dice "
                      f"{result.best_val_dice:.4f}) at iteration {result.best_iteration}; {result.seconds:.0f} s")
    console.print(f"{'fold set' if folds > 1 else 'run folder'}: [bold]{out}[/]  next: genseg evaluate --run {out}")


def _refuse_unknown_options(extra: list[str]) -> None:
    """One line for an option train does not have, with the ``--set`` key of a former flag."""
    if not extra:
        return
    flag = extra[0].split("=")[0]
    former = {old.split()[0]: key for old, key in REPLACED_BY_SET.items()}
    if flag in former:
        raise ConfigError(f"{flag} is now --set {former[flag]}=VALUE (genseg train --help: the options; "
                          "docs/usage.md: every --set key)")
    raise ConfigError(f"train has no option or argument {extra[0]!r}; genseg train --help lists the options, "
                      "and --set SECTION.KEY=VALUE sets any field of a run's config.json")


def _train_config(config_file: Optional[Path], resumed: Optional[Path], given: dict[str, Any]) -> Any:
    """The run's config: a file's, or the resumed run's, or the defaults; then the given options."""
    import json

    from genseg.config import RunConfig, current_layout, parse_settings

    if config_file is not None:
        try:
            values = json.loads(config_file.read_text())
        except json.JSONDecodeError as error:
            raise ConfigError(f"{config_file}: not a JSON config ({error}); use a run's config.json") from None
    elif resumed is not None and (resumed / "config.json").is_file():
        values = json.loads((resumed / "config.json").read_text())
    else:  # the defaults in full: a section left out would read as a run saved before its settings existed
        values = RunConfig().to_dict()
    if "budget" in given and "n_val" not in given:  # the validation share follows the new budget
        values.get("data", {}).pop("n_val", None)
    values = current_layout(values)  # a config.json of an earlier genseg too
    if "generator" in given and given["generator"] != values.get("generator", {}).get("name"):
        generic = ("lr", "pretrain_iterations")  # another kind: the former kind's own settings do not apply
        values["generator"] = {key: value for key, value in values.get("generator", {}).items() if key in generic}
    former = values.get("method") if isinstance(values.get("method"), dict) else {}
    if "method" in given and given["method"] != former.get("name", MethodConfig().name):
        values["method"] = {}  # another method: the former one's settings do not apply
    sections = [f.name for f in dataclasses.fields(RunConfig)]
    for key, value in parse_settings(given.pop("setting", [])).items():
        section, dot, name = key.partition(".")
        if section == "mlo" and dot and name:
            raise ConfigError(f"--set {key}=...: GenSeg's settings are the method's now: --set method.{name}=VALUE")
        if not dot or section not in sections or not name:
            raise ConfigError(f"--set {key}=...: name a section and a key, SECTION.KEY=VALUE, with SECTION one of "
                             f"{', '.join(sections)} (as in a run's config.json)")
        values.setdefault(section, {})[name] = value
    for option, value in given.items():
        section, name = _TRAIN_FIELDS[option]
        converters = {"size": _size, "dims": _dims}
        values.setdefault(section, {})[name] = converters[option](value) if option in converters else value
    try:
        return RunConfig.from_dict(values)
    except TypeError as error:
        raise ConfigError(f"{config_file}: {error}") from None


@app.command()
@_user_errors
def evaluate(
    run: Path = typer.Option(..., help="Run folder of genseg train."),
    data: Optional[Path] = typer.Option(None, help="Data folder (default: the run's); another one is evaluated whole (out-of-domain)."),
    split: str = typer.Option("test", help="test | dev (pool cases outside the budget) | val | train | all"),
    checkpoint: str = typer.Option("all", help="best | final | averaged | all (every one the run saved)"),
    overlays: int = typer.Option(6, help="Cases that get an overlay PNG."),
    tta: bool = typer.Option(False, help="Average the mirrored views training has seen (up to 4x the inference time); results in eval/SPLIT/CHECKPOINT-tta/."),
) -> None:
    """Per-case Dice, IoU and HD95 of a run's checkpoints; CSV, JSON and overlays in run/eval/."""
    _setup_logging(False)
    from genseg.evaluation import evaluate as run_evaluation

    checkpoints = None if checkpoint == "all" else (checkpoint,)
    summaries = run_evaluation(run, data=data, split=split, checkpoints=checkpoints, overlays=overlays, tta=tta)
    _print_summaries(summaries)
    for name, summary in summaries.items():
        folder = name + ("-tta" if summary["tta"] else "")
        console.print(f"{folder}: {summary['split']} Dice {summary['dice_mean']:.4f}  ->  "
                      f"{run / 'eval' / summary['split'] / folder}")


@app.command()
@_user_errors
def predict(
    run: Path = typer.Option(..., help="Run folder of genseg train."),
    input: Path = typer.Option(..., help="A folder of images (2D files or NIfTI volumes), or one such file."),
    out: Path = typer.Option(..., help="Folder for the predicted masks."),
    checkpoint: Optional[str] = typer.Option(None, help="best | final | averaged [averaged where the run saved it, else best]"),
    overwrite: bool = typer.Option(False, help="Replace masks that exist in --out already."),
    tta: bool = typer.Option(False, help="Average the mirrored views training has seen (up to 4x the inference time)."),
) -> None:
    """Write a mask for every input image: PNG for 2D images, NIfTI for volumes, same geometry; predictions.json last."""
    _setup_logging(False)
    from genseg.evaluation import predict as run_prediction

    written = run_prediction(run, input, out, checkpoint=checkpoint, overwrite=overwrite, tta=tta)
    console.print(f"wrote {len(written)} masks to {out}")


@app.command()
@_user_errors
def report(
    run: Optional[Path] = typer.Option(None, help="Run folder of genseg train: writes RUN/report.html."),
    benchmark: Optional[Path] = typer.Option(None, help="Benchmark out folder: writes OUT/report.html."),
) -> None:
    """A self-contained HTML page: learning curves, cases worst-first, overlays, synthetic pairs, config."""
    if (run is None) == (benchmark is None):
        raise ConfigError("pass one of --run DIR or --benchmark DIR")
    _existing(run or benchmark, "run folder" if run else "benchmark folder")
    _setup_logging(False)
    from genseg.report import benchmark_report, run_report

    path = run_report(run) if run else benchmark_report(benchmark)
    console.print(f"wrote [bold]{path}[/]; open it in a browser")


@app.command()
@_user_errors
def plan(
    data: Path = typer.Option(..., help="Data folder."),
    budget: int = typer.Option(9, help="Labeled pairs N = n_train + n_val; only their masks are read."),
    seed: int = typer.Option(0, help="Run seed; picks pool.seed<s> of the split."),
    split: Optional[Path] = typer.Option(None, help="Split file (default: the one train would make)."),
    max_size: int = typer.Option(512, help="Largest size the plan may choose."),
    axis: Optional[int] = typer.Option(None, help="Slicing axis for 3D volumes trained in 2D [planned: across thick slices, else 0]."),
    dims: str = typer.Option("auto", help="2: images or slices; 3: whole volumes; auto: the plan's choice."),
    method: str = typer.Option(_M.name, help=f"Method to plan for: {_METHODS}."),
) -> None:
    """What train would plan: the budget's cases and labels, the image size and generator kind, and why."""
    from genseg.config import DataConfig, RunConfig, TrainConfig
    from genseg.data import index_cases, labels_of, read_split
    from genseg.run_data import default_split, plan_run

    config = RunConfig(data=DataConfig(root=data, budget=budget, max_size=max_size, axis=axis, dims=_dims(dims)),
                       method=MethodConfig(method), train=TrainConfig(seed=seed))
    index = index_cases(data)
    made = read_split(split) if split else default_split(config, index)
    run_plan = plan_run(config, index, made)
    console.print(f"data: {data}: {index.layout} layout, {len(index.ids)} labeled {'volumes' if index.is_volume else 'images'}",
                  soft_wrap=True)
    console.print(run_plan.describe())
    console.print(labels_of(index, [*run_plan.train_ids, *run_plan.val_ids]).describe())


@app.command()
@_user_errors
def advise(
    data: Path = typer.Option(..., help="Data folder of labeled cases."),
    out: Optional[Path] = typer.Option(None, help="Advice folder (default: advice/DATA); rerun it to resume."),
    methods: Optional[str] = typer.Option(None, help="Comma-separated methods [augment and the plan's synthesis: copypaste for small, sparse targets, separate otherwise]."),
    budgets: Optional[str] = typer.Option(None, help="Comma-separated labeled budgets of the curve [5 from 3 to the cases left beside the held-out ones]."),
    repeats: int = typer.Option(3, help="Held-out draws (and seeds) per budget."),
    holdout: Optional[int] = typer.Option(None, help="Labeled cases held out and scored per repeat [a fifth, at least 2]."),
    config: Optional[Path] = typer.Option(None, help="A config file (a run's config.json) every run starts from."),
    size: Optional[str] = typer.Option(None, help="Square image size, or auto (planned per run) [auto]."),
    iterations: Optional[int] = typer.Option(None, help=f"Segmenter steps of every run [{_T.iterations}]."),
    segmenter: Optional[str] = typer.Option(None, help=f"{' | '.join(SEGMENTERS.names)} [unet]"),
    setting: Optional[list[str]] = typer.Option(None, "--set", help="Any config field of the runs, SECTION.KEY=VALUE, repeatable."),
    suggest: Optional[int] = typer.Option(None, help="Instead of the curve: the K unlabeled images to label next."),
    unlabeled: Optional[Path] = typer.Option(None, help="With --suggest: images without masks [DATA/unlabeled, or DATA/imagesTs]."),
    run: Optional[Path] = typer.Option(None, help="With --suggest: rank with this run or fold set [a fold set trained on every label]."),
    strategy: str = typer.Option(DEFAULT_STRATEGY, help=f"With --suggest: {' | '.join(STRATEGIES)}."),
    folds: int = typer.Option(5, help="With --suggest: folds of the fold set trained to rank with."),
    workers: int = typer.Option(1, help="With --suggest: folds trained at once."),
    threads: Optional[int] = typer.Option(None, help="CPU threads [OMP_NUM_THREADS, else the idle cores]."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log to the console too."),
) -> None:
    """How good it gets with more labels, and which method wins: a learning curve on your own labeled cases.

    Nested budgets, each trained on a repeat's draw and scored on that repeat's held-out labeled
    cases; an inverse power law per method predicts the Dice at N, N+5 and N+10 labels.
    Writes curve.csv, advice.json and advice.html. With --suggest K it ranks the unlabeled images
    instead (suggestions.csv) and prints the K to label next.
    """
    given = {name: value for name, value in (("data", data), ("size", size), ("iterations", iterations),
                                              ("segmenter", segmenter), ("setting", setting)) if value is not None}
    _existing(data, "data folder")
    if config is not None:
        _existing(config, "config file")
    _setup_logging(verbose)
    from genseg.advise import advise as run_advice
    from genseg.runtime import set_threads

    run_config = _train_config(config, None, given)
    set_threads(threads)
    folder = out or Path("advice") / data.resolve().name
    if suggest is not None:
        from genseg.suggest import suggest as suggest_next

        chosen = suggest_next(run_config, folder, suggest, unlabeled=unlabeled, run=run, strategy=strategy,
                              folds=folds, workers=workers, announce=console.print)
        console.print(f"label next ({strategy}): " + ", ".join(chosen))
        console.print(f"every image ranked: [bold]{folder / 'suggestions.csv'}[/]")
        return
    advice = run_advice(run_config, folder,
                        methods=tuple(_comma_list(methods, str)) if methods else None,
                        budgets=tuple(_comma_list(budgets, int)) if budgets else None,
                        repeats=repeats, holdout=holdout, announce=console.print)
    console.print(advice.summary())
    console.print(f"page: [bold]{advice.page}[/]")


@app.command()
@_user_errors
def split(
    data: Path = typer.Option(..., help="Data folder."),
    out: Path = typer.Option(..., help="Split file to write (JSON, benchmark format)."),
    test_fraction: float = typer.Option(0.3, help="Share of cases held out as the test set."),
    seeds: int = typer.Option(3, help="Pool orders to write (seed0..seed<k-1>)."),
) -> None:
    """Make a seeded, sorted split file for your own data folder."""
    from genseg.data import index_cases, make_split, write_split

    index = index_cases(data)
    made = make_split(index.ids, dataset=data.name, test_fraction=test_fraction, seeds=tuple(range(seeds)))
    write_split(made, out)
    console.print(f"{len(made.test)} test cases, pool of {len(made.pool[0])}; written to {out}")


@app.command()
@_user_errors
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Folder for the phantom data and the runs."),
    iterations: Optional[int] = typer.Option(None, help="Segmenter steps per method [default: genseg.demo.DEMO_ITERATIONS]."),
    threads: Optional[int] = typer.Option(None, help="CPU threads [OMP_NUM_THREADS, else the idle cores]."),
) -> None:
    """GenSeg vs. standard augmentation on a built-in synthetic phantom (no data needed)."""
    _setup_logging(False)
    from genseg.demo import DEMO_ITERATIONS, DEMO_PRETRAIN_ITERATIONS
    from genseg.demo import demo as run_demo
    from genseg.runs import CHECKPOINTS
    from genseg.runtime import set_threads

    set_threads(threads)
    iterations = iterations or DEMO_ITERATIONS
    console.print("genseg demo: a procedural phantom (synthetic shapes, NOT medical data), 9 labels (7 + 2), 64 px.\n"
                  f"Phases: augment ({iterations} iterations); generator pre-training ({DEMO_PRETRAIN_ITERATIONS} steps); genseg "
                  f"({iterations} iterations of the multi-level optimization); evaluation of both on 12 test cases.\n"
                  "Expected time: about 2 minutes on 2 idle cores.")
    result = run_demo(out, iterations=iterations)
    table = Table(title="test Dice (per-case mean ± SD) by method and checkpoint")
    for column in ("method", *CHECKPOINTS, "IoU (averaged)", "HD95 px (averaged)"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for method, summaries in result.summaries.items():
        averaged = summaries["averaged"]
        table.add_row(method, *(f"{summaries[name]['dice_mean']:.3f} ± {summaries[name]['dice_sd']:.3f}"
                                for name in CHECKPOINTS),
                      f"{averaged['iou_mean']:.3f}", f"{averaged['hd95_mean']:.1f}")
    console.print(table)
    console.print(f"[bold]verdict:[/] {result.verdict()}")
    for method, run_dir in result.runs.items():
        console.print(f"{method}: genseg report --run {run_dir}")


@app.command()
@_user_errors
def generate(
    run: Path = typer.Option(..., help="Run folder with a generator (method separate or genseg, or pretrain-generator)."),
    masks: Optional[Path] = typer.Option(None, help="Folder of label maps to draw the synthetic pairs from (pix2pix) [the run's training pairs]."),
    out: Path = typer.Option(..., help="Output folder: images/ + masks/ (usable as training data; nnU-Net raw imagesTr/ + labelsTr/ for several channels) and contact_sheet.png."),
    n: int = typer.Option(100, help="Synthetic pairs to write."),
    seed: int = typer.Option(0, help="Seed of the mask augmentation and the generator's dropout."),
    checkpoint: str = typer.Option("final", help="best | final"),
    real: Optional[Path] = typer.Option(None, help="Real images for the contact sheet (default: the run's data folder's)."),
) -> None:
    """Write synthetic image-mask pairs from a run's generator (pix2pix: G(T(y)), T(y); composite: pasted real pairs), with a contact sheet."""
    _setup_logging(False)
    from genseg.generation import generate_pairs

    written = generate_pairs(run, masks, out, n=n, seed=seed, checkpoint=checkpoint, real_images_dir=real)
    folders = "imagesTr/, labelsTr/, dataset.json" if written and written[0].parent.name == "imagesTr" else "images/, masks/"
    console.print(f"wrote {len(written)} pairs to {out} ({folders}); look at {out / 'contact_sheet.png'}")


@app.command("pretrain-generator")
@_user_errors
def pretrain_generator(
    data: Path = typer.Option(..., help="Data folder: images/ + masks/, images beside their _mask files, nnU-Net raw, or MSD."),
    out: Path = typer.Option(..., help="Run folder to write (config.json, split.json, final.pt)."),
    split: Optional[Path] = typer.Option(None, help="Split file (benchmark format); default: make one in the run."),
    budget: int = typer.Option(9, help="Labeled pairs N = n_train + n_val; the GAN trains on the n_train."),
    seed: int = typer.Option(0, help="Run seed; also picks pool.seed<s> of the split file."),
    iterations: int = typer.Option(1000, help="GAN training steps."),
    size: str = typer.Option("auto", help="Square image size (multiple of 32), or auto (planned)."),
    generator: str = typer.Option("auto", help=f"Generator kind: {' | '.join(GENERATORS.names)} | auto (the plan's choice)."),
    ngf: Optional[int] = typer.Option(None, help="pix2pix's base width [32]."),
    batch_size: Optional[int] = typer.Option(None, help="Real pairs per step [planned: 4 images, 2 volumes in 3D]."),
    device: str = typer.Option("auto", help="auto (cuda when present) | cpu | cuda | cuda:N"),
) -> None:
    """Train only the mask-to-image generator (level 1) on the budget's training pairs."""
    _setup_logging(False)
    from genseg.config import DataConfig, GeneratorConfig, MethodConfig, RunConfig, TrainConfig
    from genseg.generator_level import pretrain_generator as run_pretraining

    config = RunConfig(
        data=DataConfig(root=data, split_file=split, budget=budget, size=_size(size)),
        generator=GeneratorConfig("pix2pix" if ngf is not None and generator == "auto" else generator,
                                  pretrain_iterations=iterations, **({} if ngf is None else {"ngf": ngf})),
        method=MethodConfig("separate"),
        train=TrainConfig(batch_size=batch_size, seed=seed, device=device),
    )
    checkpoint = run_pretraining(config, out)
    console.print(f"generator saved in {checkpoint}  next: genseg generate --run {out} --out DIR")


@app.command()
@_user_errors
def benchmark(
    config: Optional[Path] = typer.Option(None, help="Benchmark TOML file (e.g. benchmarks/issue4.toml); options below override it."),
    datasets: Optional[str] = typer.Option(None, help="Comma-separated data set folders under --data-root."),
    budgets: Optional[str] = typer.Option(None, help="Comma-separated budgets N, for every data set."),
    methods: Optional[str] = typer.Option(None, help="Comma-separated variants (default: the protocol's five); also genseg-none, -generator, -both, -pairs, -gamma, -darts."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated run seeds (default: 0,1,2)."),
    segmenter: Optional[str] = typer.Option(None, help="Segmenter of every run (default: unet)."),
    size: Optional[str] = typer.Option(None, help="Square image size, or auto: each run's plan (default: 128)."),
    iterations: Optional[int] = typer.Option(None, help="Segmenter steps per run (default: 1000)."),
    pretrain_iterations: Optional[int] = typer.Option(None, help="Generator pre-training steps (default: 1000)."),
    n_val: Optional[int] = typer.Option(None, help="Validation pairs out of N (default: 20%, at least 1)."),
    out: Optional[Path] = typer.Option(None, help="Out folder: runs.csv, table.md, plots, runs/ (default: benchmarks/results)."),
    data_root: Optional[Path] = typer.Option(None, help="Folder of the data sets (default: $GENSEG_DATA_ROOT; docs/datasets.md)."),
    splits_root: Optional[Path] = typer.Option(None, help="Folder of <dataset>.json splits (default: $GENSEG_SPLITS_ROOT, else benchmark/splits beside the data root's folder)."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda | cuda:N (default: auto)."),
    threads: Optional[int] = typer.Option(None, help="Torch threads per run (default: the cores divided among --workers; with --ray, --cpus-per-run)."),
    workers: int = typer.Option(1, help="Runs at once on this machine, each in its own process (threads split among them)."),
    ray: bool = typer.Option(False, "--ray", help="Run every run as a Ray task (pip install 'genseg[ray]'); a local Ray instance unless --address."),
    address: Optional[str] = typer.Option(None, help="With --ray: an existing Ray cluster, HOST:6379."),
    cpus_per_run: float = typer.Option(1.0, help="With --ray: CPUs reserved per run (and its threads unless --threads)."),
    gpus_per_run: float = typer.Option(0.0, help="With --ray: GPUs reserved per run (1: one run per GPU)."),
    report_only: bool = typer.Option(False, help="Only rewrite table.md and the plots from runs.csv."),
) -> None:
    """Run a benchmark (data sets x budgets x variants x seeds); resumable, results in out/runs.csv.

    Several cores: --workers N on this machine, or --ray (with --address for a cluster).
    """
    _setup_logging(True)
    from genseg.benchmark import (
        DEFAULT_OUT,
        load_spec,
        run_benchmark,
        spec_from_dict,
        write_machine_info,
        write_reports,
    )
    from genseg.plugins import EXECUTORS

    given = {"datasets": _comma_list(datasets, str), "budgets": _comma_list(budgets, int),
             "methods": _comma_list(methods, str), "seeds": _comma_list(seeds, int), "segmenter": segmenter,
             "size": None if size is None else (_size(size) or "auto"), "iterations": iterations, "pretrain_iterations": pretrain_iterations, "n_val": n_val,
             "out": out, "data_root": data_root, "splits_root": splits_root, "device": device, "threads": threads}
    given = {key: value for key, value in given.items() if value is not None}
    if report_only:
        target = out or (load_spec(config).out if config else DEFAULT_OUT)
        if not (target / "runs.csv").is_file():
            raise FileNotFoundError(f"{target / 'runs.csv'} not found; pass the benchmark's --out folder")
        if not (target / "machine.json").is_file():
            write_machine_info(target)
        write_reports(target)
        console.print(f"wrote {target / 'table.md'} and the plots")
        return
    spec = load_spec(config, given) if config else spec_from_dict(given)
    if address is not None and not ray:
        raise ConfigError("--address names a Ray cluster: add --ray")
    if ray and importlib.util.find_spec("ray") is None:
        if address is not None:
            raise ConfigError("--ray --address needs Ray on this machine: pip install 'genseg[ray]'")
        console.print("Ray is not installed (pip install 'genseg[ray]'): running the benchmark on the local "
                      f"runner with {workers} worker(s)")
        ray = False
    if ray:
        executor = EXECUTORS.load("ray")(address, cpus_per_run, gpus_per_run)
    else:
        executor = EXECUTORS.load("local")(workers)
        signal.signal(signal.SIGTERM, _exit_on_terminate)  # `kill` stops the worker processes too
    outcome = run_benchmark(spec, executor)
    console.print(f"{len(outcome.ok)} runs ok, {len(outcome.failed)} failed, {len(outcome.skipped)} already done; "
                  f"results in [bold]{spec.out / 'runs.csv'}[/], table in {spec.out / 'table.md'}")


def _exit_on_terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    app()
