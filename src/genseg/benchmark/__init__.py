"""The benchmark: many training runs, one CSV of results, a markdown table and plots.

A benchmark (:class:`BenchmarkSpec`, from a TOML file or from options) is the product of data
sets x budgets x method variants x seeds, run by the protocol of ``docs/method.md``.

- :mod:`~genseg.benchmark.spec`: the plan, and each run's config;
- :mod:`~genseg.benchmark.runner`: the runs, each in a process of its own, locally;
- :mod:`~genseg.benchmark.ray_executor`: the same runs as Ray tasks, locally or on a cluster;
- :mod:`~genseg.benchmark.results`: ``runs.csv``;
- :mod:`~genseg.benchmark.paired`: ``cases.csv``, ``paired.csv`` (GenSeg's variants minus the baselines) and
  ``checkpoints.csv`` (a run's averaged checkpoint minus its final and best ones), per case;
- :mod:`~genseg.benchmark.report`: ``table.md`` and the efficiency plots.

Layout of the out folder::

    runs.csv         one row per finished run, checkpoint and evaluation set (appended as runs end)
    cases.csv        per-case Dice of every run, checkpoint and evaluation set (outlives the run folders)
    paired.csv       per seed: each GenSeg variant minus each baseline on the same cases, Wilcoxon p
    checkpoints.csv  per seed: a run's averaged checkpoint minus its final and best ones, alike
    table.md         mean ± SD over seeds per data set, budget and variant, and the paired differences
    efficiency_<dataset>.png   test Dice vs labeled pairs N, one line per variant
    machine.json     CPU (name, family/model, torch's vector instructions), cores, torch version and threads, GPU
    runs/<dataset>-n<N>-<variant>-s<seed>/   the run folders (``config.json`` written here first)
    pretrained/      generator pre-trainings reused by runs with the same data, budget and seed

Example:
    >>> spec = load_spec(Path("benchmarks/converged.toml"))  # doctest: +SKIP
    >>> run_benchmark(spec, LocalExecutor(workers=2))  # doctest: +SKIP
"""

from genseg.benchmark.report import results_table, write_reports
from genseg.benchmark.results import append_rows, evaluated_sets, read_rows, result_rows, summary_columns
from genseg.benchmark.runner import (
    BenchmarkOutcome,
    LocalExecutor,
    RunTask,
    execute_run,
    run_benchmark,
    write_machine_info,
)
from genseg.benchmark.spec import (
    DEFAULT_OUT,
    VARIANTS,
    BenchmarkSpec,
    PlannedRun,
    Variant,
    load_spec,
    plan_runs,
    spec_from_dict,
)

__all__ = [
    "DEFAULT_OUT", "VARIANTS", "BenchmarkOutcome", "BenchmarkSpec", "LocalExecutor", "PlannedRun",
    "RunTask",
    "Variant", "append_rows", "evaluated_sets", "execute_run", "load_spec", "plan_runs", "read_rows",
    "result_rows", "results_table", "run_benchmark", "spec_from_dict", "summary_columns", "write_machine_info",
    "write_reports",
]
