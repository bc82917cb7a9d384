"""Running a benchmark: each run trains and evaluates in a process of its own, results stream in.

:func:`run_benchmark` plans the runs, skips those whose rows are already in ``runs.csv`` with
status ``ok``, and hands the rest to an executor, which yields each run's rows as it finishes:

- :class:`LocalExecutor` (the default): up to ``workers`` runs at once on this machine, each in a
  fresh process, so a crash or an out-of-memory kill is one failed row and the peak memory
  recorded is the run's own;
- :class:`~genseg.benchmark.ray_executor.RayExecutor` (``genseg benchmark --ray``): every run a
  Ray task with declared CPUs and GPUs, on a local Ray instance or an existing cluster.

Both call :func:`execute_run`, the Python API of one run: write (or check) its ``config.json``,
train it unless ``result.json`` says it is trained (a half-finished run resumes from ``last.pt``),
evaluate the missing evaluation sets. One benchmark process owns an out folder at a time (an OS
lock, released when the process ends, however it ends); several runs at once are ``--workers``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from genseg.benchmark.report import write_reports
from genseg.benchmark.results import append_rows, evaluated_sets, result_rows
from genseg.benchmark.spec import BenchmarkSpec, PlannedRun, plan_runs
from genseg.data.io import atomic_write
from genseg.errors import ConfigError
from genseg.locks import owned
from genseg.processes import ProcessDied, run_in_processes
from genseg.run_data import write_plan
from genseg.runs import RunPaths, load_config, pretraining_key, save_config
from genseg.runtime import available_cores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunTask:
    """One run to execute: the planned run, its folder, the evaluation sets it still lacks, its threads."""

    run: PlannedRun
    run_dir: Path
    pending: tuple[str, ...]
    threads: int | None = None


class Executor(Protocol):
    """Runs tasks and yields each with its ``runs.csv`` rows as it finishes, in any order."""

    def execute(self, tasks: list[RunTask]) -> Iterator[tuple[RunTask, list[dict[str, Any]]]]: ...


@dataclass
class BenchmarkOutcome:
    """What one call of :func:`run_benchmark` did, by run name."""

    ok: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def run_benchmark(spec: BenchmarkSpec, executor: Executor | None = None) -> BenchmarkOutcome:
    """Run every run of ``spec`` not yet in ``runs.csv``, appending rows and refreshing reports.

    Args:
        executor: where the runs execute; default :class:`LocalExecutor` with one worker.

    Raises:
        ValueError: another benchmark process is using the out folder.
    """
    runs = plan_runs(spec)
    out = spec.out
    (out / "runs").mkdir(parents=True, exist_ok=True)
    executor = executor or LocalExecutor()
    outcome = BenchmarkOutcome()
    with owned(out, ".benchmark.lock", f"{out} is in use by another benchmark process; wait for it to end, or run "
               "several runs at once in one process with --workers N (or --ray)"):
        write_machine_info(out, spec.threads)
        evaluated = evaluated_sets(out / "runs.csv")
        tasks = []
        for run in runs:
            pending = tuple(name for name in run.eval_sets if name not in evaluated.get(run.key, set()))
            if pending:
                tasks.append(RunTask(run, out / "runs" / run.name, pending, spec.threads))
            else:
                outcome.skipped.append(run.name)
        log.info("%d runs to do, %d already in %s", len(tasks), len(outcome.skipped), out / "runs.csv")
        for position, (task, rows) in enumerate(executor.execute(tasks), start=1):
            append_rows(out / "runs.csv", rows)
            (outcome.ok if rows[0]["status"] == "ok" else outcome.failed).append(task.run.name)
            log.info("[%d/%d] %s: %s", position, len(tasks), task.run.name, _outcome_line(rows))
            write_reports(out)
    return outcome


def _execute_and_send(task: RunTask, sender: Connection) -> None:
    sender.send(execute_run(task))
    sender.close()


@dataclass
class LocalExecutor:
    """Up to ``workers`` runs at once on this machine, each in a fresh process (:mod:`genseg.processes`).

    A run without its own ``threads`` gets an equal share of the cores this process may use.

    Args:
        workers: runs at once.
        target: what each process runs: :func:`execute_run`, its rows sent back on the pipe.
    """

    workers: int = 1
    target: Callable[[RunTask, Connection], None] = _execute_and_send

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")

    def execute(self, tasks: list[RunTask]) -> Iterator[tuple[RunTask, list[dict[str, Any]]]]:
        share = max(1, available_cores() // self.workers)
        tasks = [task if task.threads is not None else RunTask(task.run, task.run_dir, task.pending, share)
                 for task in tasks]
        for task, answer in run_in_processes(tasks, self.target, self.workers, on_start=_log_start):
            if isinstance(answer, ProcessDied):
                answer = [failed_row(task.run, f"the run's process was {answer.how} (out of memory?); "
                                               f"its log: {task.run_dir / 'train.log'}")]
            yield task, answer


def _log_start(task: RunTask) -> None:
    log.info("started %s (%d threads; log: %s)", task.run.name, task.threads, task.run_dir / "train.log")


def execute_run(task: RunTask) -> list[dict[str, Any]]:
    """Train (unless already trained) and evaluate one run in this process; never raises.

    Training logs to ``train.log`` in the run folder, a failure's traceback goes to
    ``benchmark.log`` beside it. A generator pre-trained
    by an earlier run with the same :func:`~genseg.runs.pretraining_key` (``<out>/pretrained/``) is
    copied in instead of pre-training again.

    Returns:
        Its ``runs.csv`` rows: one per pending evaluation set and checkpoint, or one failed row.
    """
    from genseg.evaluation import evaluate
    from genseg.folds import train_folds
    from genseg.runtime import set_threads
    from genseg.training import train

    run, paths = task.run, RunPaths(task.run_dir)
    key = pretraining_key(run.config) if run.folds == 1 else None  # each fold pre-trains on its own pairs
    reusable = paths.root.parent.parent / "pretrained" / f"{key}.pt" if key else None
    stage = "train"
    try:
        set_threads(task.threads)
        if run.folds > 1:
            train_folds(run.config, paths.root, run.folds, resume=True, progress=False)  # keeps finished folds
        elif not _prepare_run_folder(run, paths):
            if reusable is not None and reusable.is_file() and not paths.pretrain.exists():
                _copy_atomic(reusable, paths.pretrain)
            train(run.config, paths.root, resume=True, progress=False)
        if reusable is not None and not reusable.is_file():
            _copy_atomic(paths.pretrain, reusable)
        for name in task.pending:
            stage = f"evaluate {name}"
            split, folder = run.eval_sets[name]
            evaluate(paths.root, data=folder, split=split)
        return result_rows(run, paths, list(task.pending))
    except Exception as error:  # one failed row; the traceback goes to the run folder
        paths.root.mkdir(parents=True, exist_ok=True)
        with (paths.root / "benchmark.log").open("a") as handle:
            handle.write(f"{stage} failed:\n{traceback.format_exc()}\n")
        return [failed_row(run, f"{stage}: {type(error).__name__}: {_first_line(error)}")]


def failed_row(run: PlannedRun, error: str) -> dict[str, Any]:
    """The ``runs.csv`` row of a run that did not finish."""
    return {**run.columns(), "status": "failed", "error": error}


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def _prepare_run_folder(run: PlannedRun, paths: RunPaths) -> bool:
    """Whether the run folder holds this run, trained to the end; a new folder gets its config and plan.

    A folder trained for fewer iterations with otherwise the same config is not: training it
    again extends it (a benchmark's iteration count raised after the fact continues its runs).

    Raises:
        ValueError: the folder holds a run with other settings.
    """
    if not paths.config.is_file():
        save_config(run.config, paths)
        if run.plan is not None:
            write_plan(run.plan, paths)
        return False
    from genseg.training import resume_config

    try:
        resume_config(paths.root, run.config)  # as dataclasses: fields added since take their defaults
    except ValueError as error:
        raise ConfigError(f"{error}; delete the folder or choose another out folder") from None
    # result.json is written last by train, and config.json holds the iterations it was trained for
    return paths.result.is_file() and load_config(paths).train.iterations == run.config.train.iterations


def _copy_atomic(source: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, partial)
    os.replace(partial, target)


def _outcome_line(rows: list[dict[str, Any]]) -> str:
    if rows[0]["status"] != "ok":
        return f"FAILED: {rows[0]['error']}"
    eval_set = rows[0]["eval_set"]
    dice = ", ".join(f"{row['dice']:.4f} ({row['checkpoint']})" for row in rows if row["eval_set"] == eval_set)
    return f"{eval_set} Dice {dice}; {rows[0]['seconds']:.0f} s"


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """CPU model, cores, torch version and threads, GPU name (``None`` without one).

    The CPU's family and model numbers and the vector instructions torch's kernels use are kept
    beside its name: two machines named alike ("AMD EPYC") trained the same run to different
    weights (docs/benchmarks.md, the ablation), and float sums differ between kernel paths.
    """
    import torch

    cpuinfo = Path("/proc/cpuinfo")
    fields: dict[str, str] = {}
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first core's
    return {
        "cpu": fields.get("model name") or platform.processor() or platform.machine(),
        "cpu_family_model": f"{fields.get('cpu family', '?')}/{fields.get('model', '?')}",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
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
