"""Turn run folders made by hand (``genseg train`` + ``genseg evaluate``) into a benchmark report.

Usage:

    python benchmarks/collect.py OUT RUN_DIR [RUN_DIR ...]

Each RUN_DIR must be named ``<dataset>-n<N>-<variant>-s<seed>`` (the runner's convention) and
hold result.json and eval/test/{best,final}/summary.json. Rows are appended to OUT/runs.csv (runs
already there are skipped) and OUT/table.md and the efficiency plots are rewritten, exactly as
``genseg benchmark`` does for the runs it starts itself.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from genseg.benchmark import PlannedRun, append_rows, evaluated_sets, result_rows, write_machine_info, write_reports
from genseg.runs import RunPaths, load_config

NAME = re.compile(r"^(?P<dataset>.+)-n(?P<budget>\d+)-(?P<variant>.+)-s(?P<seed>\d+)$")


def collect(out: Path, run_dirs: list[Path]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results = out / "runs.csv"
    for run_dir in run_dirs:
        match = NAME.match(run_dir.name)
        if match is None:
            raise SystemExit(f"{run_dir}: name must be <dataset>-n<N>-<variant>-s<seed>")
        paths = RunPaths(run_dir)
        run = PlannedRun(match["dataset"], int(match["budget"]), match["variant"], int(match["seed"]),
                         load_config(paths))
        if run.key in evaluated_sets(results):
            continue
        append_rows(results, result_rows(run, paths))
    if not (out / "machine.json").is_file():
        write_machine_info(out)
    write_reports(out)


if __name__ == "__main__":
    collect(Path(sys.argv[1]), [Path(arg) for arg in sys.argv[2:]])
