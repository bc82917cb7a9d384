"""The benchmark: specs, resuming, one process per out folder, reports, real runs (locally and on Ray)."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from genseg.benchmark import (
    BenchmarkSpec,
    LocalExecutor,
    PlannedRun,
    RunTask,
    Variant,
    append_rows,
    load_spec,
    plan_runs,
    read_rows,
    results_table,
    run_benchmark,
    spec_from_dict,
    write_reports,
)
from genseg.benchmark.ray_executor import RayExecutor
from genseg.benchmark.spec import PROTOCOL_METHODS
from genseg.checkpoint import load_checkpoint
from genseg.cli import app
from genseg.config import MethodConfig
from genseg.data import DataError, index_cases, make_phantom, make_split, make_volume_phantom, write_split
from genseg.data.io import read_label_volume, write_label_volume
from genseg.data.loading import volume_geometry
from genseg.errors import ConfigError
from genseg.run_data import write_plan
from genseg.runs import CHECKPOINTS, RunPaths, pretraining_key, write_csv
from genseg.training import train

# A hand-written runs.csv: a two-class data set, augment on two seeds (test and out-of-domain
# rows) and a genseg run that failed.
FAKE_RUNS = """\
dataset,n_labels,n_train,n_val,method,seed,segmenter,size,iterations,checkpoint,eval_set,dice,iou,hd95,n_hd95_undefined,n_cases,dice_1,dice_2,seconds,peak_mb,status,error
hippo,5,4,1,augment,0,unet,64,100,best,test,0.80,0.70,4.0,1,10,0.75,0.85,100,800,ok,
hippo,5,4,1,augment,0,unet,64,100,final,test,0.70,0.60,5.0,0,10,0.65,0.75,100,800,ok,
hippo,5,4,1,augment,1,unet,64,100,best,test,0.90,0.80,6.0,0,10,0.85,0.95,120,900,ok,
hippo,5,4,1,augment,1,unet,64,100,final,test,0.75,0.65,7.0,0,10,0.70,0.80,120,900,ok,
hippo,5,4,1,augment,0,unet,64,100,best,ood-other,0.50,0.40,9.0,0,20,0.45,0.55,100,800,ok,
hippo,5,4,1,augment,0,unet,64,100,final,ood-other,0.40,0.30,9.5,0,20,0.35,0.45,100,800,ok,
hippo,5,4,1,genseg,0,unet,64,100,,,,,,,,,,,,failed,genseg train exited with status 1: RuntimeError: out of memory
"""


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """A data root with folders ``a``, ``b`` and ``other`` and a splits root with a.json, b.json."""
    data_root, splits_root = tmp_path / "data", tmp_path / "splits"
    for name in ("a", "b", "other"):
        (data_root / name).mkdir(parents=True)
    splits_root.mkdir()
    for name in ("a", "b"):
        (splits_root / f"{name}.json").write_text("{}")
    return data_root, splits_root


def test_spec_from_toml(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    data_root, splits_root = folders
    path = tmp_path / "bench.toml"
    path.write_text(f"""
datasets = ["a", "b"]
methods = ["augment", "genseg-fast"]
seeds = [0, 1]
size = 64
iterations = 20
out = "{tmp_path / 'out'}"
data_root = "{data_root}"
splits_root = "{splits_root}"

[budgets]
a = [3, 9]
b = [5]

[methods_at.a]
9 = ["augment"]

[sizes]
b = 32

[iterations_at]
a = 30

[axes]
b = 2

[ood]
a = ["other"]

[train]
average_last = 0.0
ema_decay = 0.9

[generator]
name = "pix2pix"
ngf = 8

[variants.genseg-fast]
method = {{ name = "genseg", every = 4 }}
train = {{ ema_decay = 0.5 }}
data = {{ axis = 1 }}
""")
    assert load_spec(path, {"iterations": 7}).iterations == 7  # options override the file
    spec = load_spec(path)
    assert spec.budgets == {"a": [3, 9], "b": [5]}
    assert spec.methods_for("a", 3) == ["augment", "genseg-fast"]
    assert spec.methods_for("a", 9) == ["augment"]
    runs = {run.name: run for run in plan_runs(spec)}
    assert sorted(runs) == sorted([
        "a-n3-augment-s0", "a-n3-genseg-fast-s0", "a-n3-augment-s1", "a-n3-genseg-fast-s1",
        "a-n9-augment-s0", "a-n9-augment-s1",
        "b-n5-augment-s0", "b-n5-genseg-fast-s0", "b-n5-augment-s1", "b-n5-genseg-fast-s1",
    ])
    custom = runs["b-n5-genseg-fast-s1"].config
    settings = custom.method.settings
    assert (custom.method.name, settings.every, custom.train.ema_decay) == ("genseg", 4, 0.5)  # the variant's win
    assert custom.train.average_last == runs["a-n3-augment-s0"].config.train.average_last == 0.0
    assert runs["a-n3-augment-s0"].config.train.ema_decay == 0.9
    assert (custom.generator.name, custom.generator.options["ngf"]) == ("pix2pix", 8)  # the shared table
    assert (custom.train.seed, custom.train.iterations, custom.data.size, custom.data.axis) == (1, 20, 32, 1)
    assert runs["b-n5-augment-s1"].config.data.axis == 2  # the data set's axis, where no variant sets one
    assert custom.data.dims == 2 and custom.train.batch_size is None  # slices unless the file says; batch planned
    assert (custom.data.budget, custom.data.n_train, custom.data.n_val) == (5, 4, 1)
    assert custom.data.split_file == (splits_root / "b.json").resolve()
    assert (runs["a-n3-augment-s0"].config.data.size, runs["a-n3-augment-s0"].config.train.iterations) == (64, 30)
    assert runs["a-n3-augment-s0"].ood == ((data_root / "other").resolve(),)
    assert runs["b-n5-augment-s0"].ood == ()

    other_segmenter = load_spec(path, {"datasets": ["b"], "seeds": [0], "segmenter": "segformer"})
    assert [run.name for run in plan_runs(other_segmenter)] == ["b-n5-augment-segformer-s0",
                                                                "b-n5-genseg-fast-segformer-s0"]

    # Options narrow the file's plan: other data sets' tables, other budgets, other methods go.
    narrowed = load_spec(path, {"datasets": ["a"], "budgets": [9], "methods": ["genseg-fast"]})
    assert [run.name for run in plan_runs(narrowed)] == []  # a at 9 lists augment only
    narrowed = load_spec(path, {"datasets": ["a"], "methods": ["genseg-fast"], "seeds": [0]})
    assert [run.name for run in plan_runs(narrowed)] == ["a-n3-genseg-fast-s0"]
    assert narrowed.sizes == {} and set(narrowed.ood) == {"a"}


def test_spec_from_options_applies_budgets_to_every_dataset() -> None:
    spec = spec_from_dict({"datasets": ["a", "b"], "budgets": [3, 9], "methods": ["augment", "genseg-darts"],
                           "seeds": [0], "out": "results"})
    assert spec.budgets == {"a": [3, 9], "b": [3, 9]}
    assert spec.out == Path("results")
    assert spec.variants["genseg-darts"].options == {"upper": "arch", "hypergradient": "darts"}
    assert spec_from_dict({"datasets": ["a"], "budgets": [3]}).methods == list(PROTOCOL_METHODS)


def test_every_upper_level_variable_has_a_built_in_variant() -> None:
    """The ablation (benchmarks/ablation.toml) names each variable alone: genseg is A, the rest genseg-<name>."""
    from genseg.benchmark.spec import VARIANTS
    from genseg.plugins import UPPER_VARIABLES

    for name in [*UPPER_VARIABLES, "none"]:
        variant = VARIANTS["genseg" if name == "arch" else f"genseg-{name}"]
        assert variant.method == "genseg" and variant.options["upper"] == name


def test_the_repository_benchmarks_plan_and_configure_shared_runs_alike() -> None:
    """Every benchmarks/*.toml plans; the ablation's runs that the protocol also has are configured alike
    (the ablation trains them again in its own out folder, so that its comparisons are on one machine),
    and the checkpoint-policy runs are the protocol's augment runs with weight averaging."""
    root = Path(__file__).resolve().parents[1]
    shared = root.parent / "shared"
    if not (shared / "datasets" / "jsrt_lung").is_dir():
        pytest.skip("the real data sets are not beside the checkout")
    planned = {}
    for path in sorted((root / "benchmarks").glob("*.toml")):
        spec = load_spec(path, {"data_root": shared / "datasets", "splits_root": shared / "benchmark" / "splits"})
        spec.ood = {}  # folders written by benchmarks/shift.py are not needed to plan
        planned[path.stem] = {run.name: run.config for run in plan_runs(spec)}
    ablation, protocol = planned["ablation"], planned["converged"]
    common = set(ablation) & set(protocol)
    assert {"jsrt_lung-n3-separate-s0", "fuseg-n10-genseg-s2"} <= common
    assert all(ablation[name] == protocol[name] for name in common)
    assert planned["policy"]
    for name, config in planned["policy"].items():  # the protocol's augment runs, averaging added
        augment = protocol[name.replace("augment-averaged", "augment")]
        assert config == replace(augment, train=replace(augment.train, average_last=config.train.average_last))


def test_unknown_variant_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown method variants \['genseg-fancy'\].*genseg-none"):
        spec_from_dict({"datasets": ["a"], "budgets": [3], "methods": ["augment", "genseg-fancy"]})


def test_cli_reports_option_errors_in_one_line() -> None:
    result = CliRunner().invoke(app, ["benchmark", "--datasets", "a", "--budgets", "3", "--methods", "augment,nope"])
    assert result.exit_code == 2
    assert "unknown method variants ['nope']" in result.output
    result = CliRunner().invoke(app, ["benchmark", "--datasets", "a", "--budgets", "3,x"])
    assert result.exit_code == 2 and "expected a comma-separated list, got '3,x'" in result.output


def test_bad_settings_are_value_errors(folders: tuple[Path, Path]) -> None:
    data_root, splits_root = folders
    with pytest.raises(ValueError, match="unknown benchmark settings"):
        spec_from_dict({"datasets": ["a"], "budgets": [3], "iteration": 5})
    with pytest.raises(ValueError, match="no budgets for data set 'b'"):
        spec_from_dict({"datasets": ["a", "b"], "budgets": {"a": [3]}})
    typo = spec_from_dict({"datasets": ["a"], "budgets": [3], "methods": ["x"], "data_root": data_root,
                           "splits_root": splits_root,
                           "variants": {"x": {"method": {"name": "genseg", "uper": "none"}}}})
    with pytest.raises(ValueError, match="variant 'x'.*uper"):
        plan_runs(typo)
    with pytest.raises(ValueError, match=r"\[variants.x\] mlo = .*method = \{ name = \"genseg\""):
        spec_from_dict({"datasets": ["a"], "budgets": [3], "methods": ["x"],
                        "variants": {"x": {"method": "genseg", "mlo": {"upper": "none"}}}})
    with pytest.raises(DataError, match="not found"):
        plan_runs(spec_from_dict({"datasets": ["missing"], "budgets": [3], "data_root": data_root}))
    with pytest.raises(ValueError, match='dims is 2, 3 or "auto", got 4'):
        plan_runs(spec_from_dict({"datasets": ["a"], "budgets": [3], "dims": 4, "data_root": data_root,
                                  "splits_root": splits_root}))


def _ok_rows(run: PlannedRun, dice: float) -> list[dict]:
    return [{**run.columns(), "checkpoint": checkpoint, "eval_set": "test", "dice": dice, "iou": dice, "hd95": 3.0,
             "n_hd95_undefined": 0, "n_cases": 2, "seconds": 1.0, "peak_mb": 10, "status": "ok", "error": ""}
            for checkpoint in ("best", "final")]


def _spec(folders: tuple[Path, Path], out: Path, **values) -> BenchmarkSpec:
    data_root, splits_root = folders
    return spec_from_dict({"datasets": ["a"], "budgets": [3], "methods": ["supervised", "augment"], "seeds": [0],
                           "out": out, "data_root": data_root, "splits_root": splits_root, **values})


class FakeExecutor:
    """Records the tasks it is given and answers each with fixed rows instead of training."""

    def __init__(self, rows: Callable[[RunTask], list[dict[str, Any]]]) -> None:
        self.rows, self.executed = rows, []

    def execute(self, tasks: list[RunTask]) -> Iterator[tuple[RunTask, list[dict[str, Any]]]]:
        for task in tasks:
            self.executed.append(task.run.name)
            yield task, self.rows(task)


def test_resume_skips_runs_with_ok_rows_and_retries_failed_ones(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    spec = _spec(folders, tmp_path / "out")
    supervised, augment = plan_runs(spec)
    failed = {**augment.columns(), "status": "failed", "error": "boom"}
    append_rows(spec.out / "runs.csv", [*_ok_rows(supervised, 0.5), failed])
    executor = FakeExecutor(lambda task: _ok_rows(task.run, 0.6))
    outcome = run_benchmark(spec, executor)
    assert executor.executed == ["a-n3-augment-s0"]
    assert (outcome.skipped, outcome.ok) == (["a-n3-supervised-s0"], ["a-n3-augment-s0"])
    assert [row["status"] for row in read_rows(spec.out / "runs.csv")] == ["ok", "ok", "failed", "ok", "ok"]
    assert "boom" not in (spec.out / "table.md").read_text()  # the failed attempt was redone

    outcome = run_benchmark(spec, executor)
    assert executor.executed == ["a-n3-augment-s0"]
    assert outcome.skipped == ["a-n3-supervised-s0", "a-n3-augment-s0"]


def test_an_out_folder_has_one_benchmark_process_at_a_time(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    spec = _spec(folders, tmp_path / "out", methods=["augment"])
    spec.out.mkdir()
    executor = FakeExecutor(lambda task: pytest.fail("a run started in a folder held by another process"))
    with (spec.out / ".benchmark.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another open file description: as another process would hold it
        with pytest.raises(ValueError, match="in use by another benchmark process.*--workers"):
            run_benchmark(spec, executor)
    assert executor.executed == [] and not (spec.out / "runs.csv").exists()
    assert run_benchmark(spec, FakeExecutor(lambda task: _ok_rows(task.run, 0.6))).ok == ["a-n3-augment-s0"]


def test_a_killed_run_process_is_one_failed_row(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    (run,) = plan_runs(_spec(folders, tmp_path / "out", methods=["augment"]))
    task = RunTask(run, tmp_path / "run", ("test",), threads=1)
    (done, rows), = LocalExecutor(workers=1, target=_killed).execute([task])
    assert done is task and rows[0]["status"] == "failed" and "killed by signal 9" in rows[0]["error"]


def _killed(task: RunTask, sender: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer ends a run


def test_a_benchmark_stopped_early_stops_its_run_processes(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    """An exception in the benchmark's process (Ctrl-C, or SIGTERM turned into SystemExit by the CLI)
    ends the runs it started, so none goes on writing its folder beside a restarted benchmark."""
    (run,) = plan_runs(_spec(folders, tmp_path / "out", methods=["augment"]))
    task = RunTask(run, tmp_path / "run", ("test",), threads=1)
    pid_file = tmp_path / "worker.pid"

    def interrupt_once_started(signum: int, frame: object) -> None:
        if pid_file.is_file():  # the worker has started: it writes its pid, then sleeps 60 s
            raise KeyboardInterrupt
        signal.setitimer(signal.ITIMER_REAL, 0.2)

    previous = signal.signal(signal.SIGALRM, interrupt_once_started)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(KeyboardInterrupt):
            list(LocalExecutor(workers=1, target=_sleeps).execute([task, task]))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    worker = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)  # terminated and reaped


def _sleeps(task: RunTask, sender: object) -> None:
    (task.run_dir.parent / "worker.pid").write_text(str(os.getpid()))
    time.sleep(60)


def test_append_rows_widens_the_header_for_per_class_columns(tmp_path: Path) -> None:
    results = tmp_path / "runs.csv"
    append_rows(results, [{"dataset": "a", "seed": 0, "status": "failed", "error": "x"}])
    append_rows(results, [{"dataset": "b", "seed": 1, "dice": 0.5, "dice_1": 0.4, "dice_2": 0.6, "status": "ok"}])
    with results.open() as handle:
        header = next(csv.reader(handle))
    assert header.index("n_cases") < header.index("dice_1") < header.index("dice_2") < header.index("seconds")
    rows = read_rows(results)
    assert [(row["dataset"], row["dice_1"], row["status"]) for row in rows] == [("a", "", "failed"), ("b", "0.4", "ok")]


def test_reports_from_a_hand_written_runs_csv(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs.csv").write_text(FAKE_RUNS)
    result = CliRunner().invoke(app, ["benchmark", "--report-only", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = (out / "table.md").read_text()
    assert "## hippo (unet, 64 px, 100 iterations)" in table
    # Dice best (0.80, 0.90), final (0.70, 0.75); IoU (0.70, 0.80), (0.60, 0.65); HD95 (4, 6) with one
    # undefined case, (5, 7); seconds (100, 120); peak MB max(800, 900); two seeds. SD: |a - b| / sqrt(2).
    assert ("| 5 | 4+1 | augment | 0.850 ± 0.071 | 0.725 ± 0.035 | 0.750 ± 0.071 | 0.625 ± 0.035 "
            "| 5.0 ± 1.4 (1 undef.) | 6.0 ± 1.4 | 110 ± 14 | 900 | 2 |") in table
    assert "| 5 | augment | 0.800 ± 0.071 | 0.900 ± 0.071 |" in table  # per-class Dice, best checkpoint
    assert "### ood-other: whole folder, model selected in-domain" in table
    assert "| 5 | 4+1 | augment | 0.500 | 0.400 | 0.400 | 0.300 | 9.0 | 9.5 | 100 | 800 | 1 |" in table
    assert "- hippo-n5-genseg-s0: genseg train exited with status 1: RuntimeError: out of memory" in table
    with Image.open(out / "efficiency_hippo.png") as image:
        assert image.format == "PNG" and image.width > 100
    machine = json.loads((out / "machine.json").read_text())
    assert {"cpu", "cpu_family_model", "cpu_capability", "cores", "torch", "threads", "gpu"} <= set(machine)
    assert machine["cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_reports_pair_genseg_with_each_baseline_case_by_case_even_after_the_run_folders_are_gone(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    head = ("dataset,n_labels,n_train,n_val,method,seed,segmenter,size,iterations,checkpoint,eval_set,dice,iou,hd95,"
            "n_hd95_undefined,n_cases,seconds,peak_mb,status,error")
    lines, scores = [head], {"augment": [0.5, 0.6, 0.7, 0.8], "genseg": [0.6, 0.7, 0.8, 0.8],
                             "genseg-none": [0.5, 0.5, 0.7, 0.8], "supervised": [0.5, 0.6, 0.7, 0.8]}
    for method, dice in scores.items():
        for seed in (0, 1):
            shifted = [d + 0.1 * seed * (method == "genseg") for d in dice]
            for checkpoint in ("best", "final"):
                lines.append(f"j,3,2,1,{method},{seed},unet,64,100,{checkpoint},test,{np.mean(shifted)},0.5,3,0,4,9,1,ok,")
                if method != "supervised":  # no run folder: this pair cannot be formed
                    write_csv([{"case": f"c{i}", "dice": d} for i, d in enumerate(shifted)],
                              out / "runs" / f"j-n3-{method}-s{seed}" / "eval" / "test" / checkpoint / "cases.csv")
    (out / "runs.csv").write_text("\n".join(lines) + "\n")
    write_reports(out)
    paired = {(row["method"], row["baseline"], row["seed"], row["checkpoint"]): row
              for row in read_rows(out / "paired.csv")}
    assert set(paired) == {(method, baseline, seed, checkpoint)
                           for method, baseline in (("genseg", "augment"), ("genseg-none", "augment"),
                                                    ("genseg", "genseg-none"))
                           for seed in "01" for checkpoint in ("best", "final")}
    # seed 0: +0.1 on three of four cases; seed 1: +0.2, +0.2, +0.2, +0.1
    assert float(paired["genseg", "augment", "0", "final"]["difference"]) == pytest.approx(0.075)
    assert float(paired["genseg", "augment", "1", "final"]["difference"]) == pytest.approx(0.175)
    assert float(paired["genseg-none", "augment", "0", "best"]["difference"]) == pytest.approx(-0.025)
    # the feedback alone: GenSeg minus its no-hypergradient ablation
    assert float(paired["genseg", "genseg-none", "1", "final"]["difference"]) == pytest.approx(0.2)
    assert paired["genseg", "augment", "0", "best"]["n_cases"] == "4"
    table = (out / "table.md").read_text()
    assert "| 3 | genseg − augment | final | +0.075 (p 0.25) | +0.175 (p 0.12) | +0.125 ± 0.071 |" in table
    assert table.index("genseg − augment") < table.index("genseg-none − augment")
    for folder in (out / "runs").iterdir():  # a fresh checkout of the results: runs.csv and cases.csv only
        shutil.rmtree(folder)
    (out / "paired.csv").unlink()
    write_reports(out)
    assert "| 3 | genseg − augment | final | +0.075 (p 0.25) | +0.175 (p 0.12) | +0.125 ± 0.071 |" in (
        out / "table.md").read_text()
    # a variant run later, in that checkout, is paired with the baselines whose folders are gone
    gamma = [0.9, 0.6, 0.7, 0.8]
    write_csv([{"case": f"c{i}", "dice": d} for i, d in enumerate(gamma)],
              out / "runs" / "j-n3-genseg-gamma-s0" / "eval" / "test" / "final" / "cases.csv")
    with (out / "runs.csv").open("a") as handle:
        handle.write(f"j,3,2,1,genseg-gamma,0,unet,64,100,final,test,{np.mean(gamma)},0.5,3,0,4,9,1,ok,\n")
    write_reports(out)
    paired = {(row["method"], row["baseline"], row["seed"], row["checkpoint"]): row
              for row in read_rows(out / "paired.csv")}
    assert float(paired["genseg-gamma", "augment", "0", "final"]["difference"]) == pytest.approx(0.1)
    assert float(paired["genseg", "augment", "1", "final"]["difference"]) == pytest.approx(0.175)


def test_reports_pair_a_runs_averaged_checkpoint_with_its_final_and_best_ones(tmp_path: Path) -> None:
    out = tmp_path / "out"
    head = ("dataset,n_labels,n_train,n_val,method,seed,segmenter,size,iterations,checkpoint,eval_set,dice,iou,hd95,"
            "n_hd95_undefined,n_cases,seconds,peak_mb,status,error")
    lines = [head]
    scores = {"best": [0.5, 0.6, 0.7, 0.8], "final": [0.6, 0.6, 0.7, 0.8], "averaged": [0.7, 0.7, 0.8, 0.8]}
    for seed in (0, 1):
        for checkpoint, dice in scores.items():
            shifted = [d + 0.1 * seed * (checkpoint == "averaged") for d in dice]
            lines.append(f"j,3,2,1,augment,{seed},unet,64,100,{checkpoint},dev,{np.mean(shifted)},0.5,3,0,4,9,1,ok,")
            write_csv([{"case": f"c{i}", "dice": d} for i, d in enumerate(shifted)],
                      out / "runs" / f"j-n3-augment-s{seed}" / "eval" / "dev" / checkpoint / "cases.csv")
    (out / "runs.csv").write_text("\n".join(lines) + "\n")
    write_reports(out)
    pairs = {(row["checkpoint"], row["baseline"], row["seed"]): float(row["difference"])
             for row in read_rows(out / "checkpoints.csv")}
    assert pairs == pytest.approx({("averaged", "final", "0"): 0.075, ("averaged", "best", "0"): 0.1,
                                   ("averaged", "final", "1"): 0.175, ("averaged", "best", "1"): 0.2})
    assert not (out / "paired.csv").exists()  # no GenSeg variant: nothing to pair across methods
    table = (out / "table.md").read_text()
    assert "| 3 | augment: averaged − final | averaged | +0.075 (p 0.25) | +0.175 (p 0.12) | +0.125 ± 0.071 |" in table


def test_pairs_are_the_same_from_the_run_folders_and_from_cases_csv(tmp_path: Path) -> None:
    out = tmp_path / "out"
    head = ("dataset,n_labels,n_train,n_val,method,seed,segmenter,size,iterations,checkpoint,eval_set,dice,iou,hd95,"
            "n_hd95_undefined,n_cases,seconds,peak_mb,status,error")
    augment = [0.5, 0.6, 0.7, 0.8, 0.9, 0.4]
    # differences below the stored precision: ties once rounded, which the Wilcoxon test drops
    scores = {"augment": augment, "genseg": [d + e for d, e in zip(augment, (3e-6, 2e-6, 0.01, 0.02, -0.01, 0.03))]}
    lines = [head]
    for method, dice in scores.items():
        lines.append(f"j,3,2,1,{method},0,unet,64,100,final,test,{np.mean(dice)},0.5,3,0,6,9,1,ok,")
        write_csv([{"case": f"c{i}", "dice": repr(d)} for i, d in enumerate(dice)],
                  out / "runs" / f"j-n3-{method}-s0" / "eval" / "test" / "final" / "cases.csv")
    (out / "runs.csv").write_text("\n".join(lines) + "\n")
    write_reports(out)
    from_folders = (out / "paired.csv").read_text()
    shutil.rmtree(out / "runs")
    write_reports(out)
    assert (out / "paired.csv").read_text() == from_folders
    assert read_rows(out / "paired.csv")[0]["n_cases"] == "6"


def test_results_table_leaves_out_failed_runs_that_later_succeeded() -> None:
    rows = list(csv.DictReader(FAKE_RUNS.splitlines()))
    retried = [{**row, "status": "ok", "error": "", "checkpoint": c, "eval_set": "test", "dice": "0.6",
                "n_hd95_undefined": "0", "peak_mb": "1"} for row in rows[-1:] for c in ("best", "final")]
    table = results_table(rows + retried)
    assert "Failed runs" not in table
    assert "| 5 | 4+1 | genseg | 0.600 | 0.600 |" in table


def test_results_table_gives_a_reference_without_iterations_its_own_section() -> None:
    rows = list(csv.DictReader(FAKE_RUNS.splitlines()))
    reference = [{**rows[0], "method": "nnunet", "segmenter": "nnUNetTrainer_5epochs", "size": "native",
                  "iterations": "", "checkpoint": c, "dice": "0.95"} for c in ("best", "final")]
    table = results_table(rows + reference)
    assert "## hippo (nnUNetTrainer_5epochs, native size)" in table
    assert "| 5 | 4+1 | nnunet | 0.950 | 0.950 |" in table


def test_results_table_adds_the_averaged_checkpoint_where_runs_saved_one() -> None:
    rows = list(csv.DictReader(FAKE_RUNS.splitlines()))[:4]  # test rows of seeds 0 and 1, best and final
    averaged = [{**row, "checkpoint": "averaged", "dice": dice, "iou": "0.5", "hd95": "3.0", "n_hd95_undefined": "0"}
                for row, dice in zip(rows[::2], ("0.82", "0.92"))]
    table = results_table(rows + averaged)
    assert "| Dice best | Dice final | Dice averaged | IoU best | IoU final | IoU averaged |" in table
    assert "| 5 | 4+1 | augment | 0.850 ± 0.071 | 0.725 ± 0.035 | 0.870 ± 0.071 | " in table
    assert "Dice averaged" not in results_table(rows)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """12 phantom cases of 32 px: 3 test cases and a pool of 9 for seed 0."""
    root = tmp_path_factory.mktemp("bench")
    data = make_phantom(root / "data" / "phantom", n_cases=12, size=32)
    split = make_split(index_cases(data).ids, dataset="phantom", test_fraction=0.25, seeds=(0,))
    write_split(split, root / "splits" / "phantom.json")
    return root / "data", root / "splits"


@pytest.mark.slow
def test_end_to_end_on_a_phantom(tmp_path: Path, phantom: tuple[Path, Path]) -> None:
    data_root, splits_root = phantom
    spec = spec_from_dict({
        "datasets": ["phantom"], "budgets": [4, 40], "methods": ["supervised", "augment"],
        "methods_at": {"phantom": {40: ["augment"]}},  # 40 > the pool of 9: must fail, alone
        "seeds": [0], "size": 32, "iterations": 2, "threads": 1,
        "out": tmp_path / "out", "data_root": data_root, "splits_root": splits_root,
    })
    outcome = run_benchmark(spec)
    assert outcome.ok == ["phantom-n4-supervised-s0", "phantom-n4-augment-s0"]
    assert outcome.failed == ["phantom-n40-augment-s0"]
    rows = read_rows(spec.out / "runs.csv")
    ok = [row for row in rows if row["status"] == "ok"]
    assert [(row["method"], row["checkpoint"], row["eval_set"]) for row in ok] == [
        (method, checkpoint, "test") for method in ("supervised", "augment") for checkpoint in CHECKPOINTS]
    for row in ok:
        assert (row["n_train"], row["n_val"], row["n_cases"], row["size"]) == ("3", "1", "3", "32")
        assert 0.0 <= float(row["dice"]) <= 1.0 and float(row["seconds"]) > 0 and float(row["peak_mb"]) > 0
    (failed,) = [row for row in rows if row["status"] == "failed"]
    assert "larger than the 9 cases" in failed["error"]
    assert (spec.out / "table.md").is_file() and (spec.out / "efficiency_phantom.png").is_file()
    assert (spec.out / "runs" / "phantom-n4-augment-s0" / "best.pt").is_file()

    # Re-running retries only the failed run; the finished ones are skipped.
    retry = FakeExecutor(lambda task: [{**task.run.columns(), "status": "failed", "error": "again"}])
    outcome = run_benchmark(spec, retry)
    assert retry.executed == ["phantom-n40-augment-s0"]
    assert outcome.skipped == ["phantom-n4-supervised-s0", "phantom-n4-augment-s0"]

    # An out-of-domain folder added later (a path, not a name under data_root) is evaluated with
    # the trained models, which are not trained again; only its rows are appended.
    other = make_phantom(tmp_path / "shifted" / "phantom-dark", n_cases=2, size=32, seed=7)
    trained = (spec.out / "runs" / "phantom-n4-augment-s0" / "best.pt").stat().st_mtime_ns
    with_ood = replace(spec, budgets={"phantom": [4]}, methods_at={}, ood={"phantom": [str(other)]})
    before = len(read_rows(spec.out / "runs.csv"))
    outcome = run_benchmark(with_ood)
    assert outcome.ok == ["phantom-n4-supervised-s0", "phantom-n4-augment-s0"]
    assert (spec.out / "runs" / "phantom-n4-augment-s0" / "best.pt").stat().st_mtime_ns == trained
    added = read_rows(spec.out / "runs.csv")[before:]
    assert [(row["method"], row["checkpoint"], row["eval_set"], row["n_cases"]) for row in added] == [
        (method, checkpoint, "ood-phantom-dark", "2")
        for method in ("supervised", "augment") for checkpoint in CHECKPOINTS]
    assert run_benchmark(with_ood).skipped == ["phantom-n4-supervised-s0", "phantom-n4-augment-s0"]


def test_a_run_is_scored_at_each_of_its_checkpoints_and_averaging_can_be_switched_off(
        tmp_path: Path, phantom: tuple[Path, Path]) -> None:
    data_root, splits_root = phantom
    spec = spec_from_dict({
        "datasets": ["phantom"], "budgets": [4], "methods": ["augment", "plain"], "seeds": [0], "size": 32,
        "iterations": 4, "threads": 1, "out": tmp_path / "out", "data_root": data_root, "splits_root": splits_root,
        "variants": {"plain": {"method": "augment", "train": {"average_last": 0.0}}},
    })
    assert run_benchmark(spec).ok == ["phantom-n4-augment-s0", "phantom-n4-plain-s0"]
    rows = read_rows(spec.out / "runs.csv")
    assert [(row["method"], row["checkpoint"]) for row in rows] == [
        ("augment", "best"), ("augment", "final"), ("augment", "averaged"), ("plain", "best"), ("plain", "final")]
    assert "Dice averaged" in (spec.out / "table.md").read_text()


def test_a_fold_set_variant_is_scored_as_its_ensemble_and_paired_with_the_single_run(
        tmp_path: Path, phantom: tuple[Path, Path]) -> None:
    data_root, splits_root = phantom
    spec = spec_from_dict({
        "datasets": ["phantom"], "budgets": [4], "methods": ["augment", "augment-folds"], "seeds": [0], "size": 32,
        "iterations": 2, "threads": 1, "out": tmp_path / "out", "data_root": data_root, "splits_root": splits_root,
        "variants": {"augment-folds": {"method": "augment", "folds": 2}},
    })
    assert run_benchmark(spec).ok == ["phantom-n4-augment-s0", "phantom-n4-augment-folds-s0"]
    rows = [row for row in read_rows(spec.out / "runs.csv") if row["method"] == "augment-folds"]
    folds = spec.out / "runs" / "phantom-n4-augment-folds-s0"
    ensemble = json.loads((folds / "eval" / "test" / "final" / "summary.json").read_text())
    final = next(row for row in rows if row["checkpoint"] == "final")
    assert (final["n_train"], final["n_val"], float(final["dice"])) == ("2", "2", ensemble["dice_mean"])
    seconds = sum(json.loads((folds / f"fold_{k}" / "result.json").read_text())["seconds"] for k in range(2))
    assert float(final["seconds"]) == pytest.approx(seconds, abs=0.1)
    paired = read_rows(spec.out / "paired.csv")
    assert any(row["method"] == "augment-folds" and row["baseline"] == "augment" for row in paired)
    assert run_benchmark(spec).skipped == ["phantom-n4-augment-s0", "phantom-n4-augment-folds-s0"]
    with pytest.raises(ConfigError, match="3 folds over a budget of 2"):
        plan_runs(replace(spec, budgets={"phantom": [2]},
                          variants={**spec.variants, "augment-folds": Variant("augment", folds=3)}))


@pytest.mark.slow
def test_raising_the_iterations_extends_the_trained_runs(tmp_path: Path, phantom: tuple[Path, Path]) -> None:
    data_root, splits_root = phantom
    spec = spec_from_dict({
        "datasets": ["phantom"], "budgets": [4], "methods": ["augment"], "seeds": [0], "size": 32,
        "iterations": 2, "threads": 1, "out": tmp_path / "out", "data_root": data_root, "splits_root": splits_root,
    })
    (run,) = plan_runs(spec)
    history = spec.out / "runs" / run.name / "history.csv"
    assert run_benchmark(spec).ok == [run.name]
    first = history.read_text().splitlines()
    longer = replace(spec, iterations=4)
    assert run_benchmark(longer, LocalExecutor(workers=2)).ok == [run.name]
    extended = history.read_text().splitlines()
    assert extended[:len(first)] == first  # continued from the saved run, not trained again
    assert [line.split(",")[0] for line in extended[1:]] == ["2", "4"]  # a validation at each run's end
    assert [row["iterations"] for row in read_rows(spec.out / "runs.csv")] == ["2"] * 3 + ["4"] * 3
    faster = Variant("augment", train={"lr": 0.5})
    other = replace(longer, iterations=6, variants={**longer.variants, "augment": faster})
    assert run_benchmark(other).failed == [run.name]
    error = read_rows(spec.out / "runs.csv")[-1]["error"]
    assert "train.lr" in error and "delete the folder" in error


@pytest.mark.slow
def test_a_two_run_grid_on_local_ray(tmp_path: Path, phantom: tuple[Path, Path]) -> None:
    data_root, splits_root = phantom
    spec = spec_from_dict({
        "datasets": ["phantom"], "budgets": [4], "methods": ["supervised", "augment"], "seeds": [0], "size": 32,
        "iterations": 2, "out": tmp_path / "out", "data_root": data_root, "splits_root": splits_root,
    })
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # what --ray starts on this machine
    try:
        outcome = run_benchmark(spec, RayExecutor(cpus_per_run=1))
    finally:
        ray.shutdown()
    assert sorted(outcome.ok) == ["phantom-n4-augment-s0", "phantom-n4-supervised-s0"] and not outcome.failed
    rows = read_rows(spec.out / "runs.csv")
    assert sorted((row["method"], row["checkpoint"]) for row in rows) == sorted(
        (method, checkpoint) for method in ("augment", "supervised") for checkpoint in CHECKPOINTS)
    assert all(row["status"] == "ok" and row["n_cases"] == "3" for row in rows)
    for run in plan_runs(spec):  # trained and evaluated by the Ray workers, in the shared out folder
        assert (spec.out / "runs" / run.name / "eval" / "test" / "best" / "summary.json").is_file()
        assert "iter 2" in (spec.out / "runs" / run.name / "train.log").read_text()
    assert run_benchmark(spec, RayExecutor()).skipped == [run.name for run in plan_runs(spec)]


@pytest.mark.slow
def test_runs_that_differ_only_in_method_share_one_pretraining(tmp_path: Path, phantom: tuple[Path, Path]) -> None:
    data_root, splits_root = phantom
    tiny = {"name": "pix2pix", "ngf": 4, "ndf": 4, "pretrain_iterations": 3}
    spec = spec_from_dict({
        "datasets": ["phantom"], "budgets": [4], "methods": ["sep", "gs"], "seeds": [0], "size": 32,
        "iterations": 2, "threads": 1, "out": tmp_path / "out", "data_root": data_root, "splits_root": splits_root,
        "variants": {"sep": {"method": "separate", "generator": tiny},
                     "gs": {"method": {"name": "genseg", "upper": "none"}, "generator": tiny}},
    })
    separate, genseg = plan_runs(spec)
    key = pretraining_key(separate.config)
    assert key is not None and key == pretraining_key(genseg.config)
    assert pretraining_key(replace(separate.config, train=replace(separate.config.train, seed=1))) != key
    assert pretraining_key(replace(separate.config, method=MethodConfig("augment"))) is None

    assert run_benchmark(spec).ok == [separate.name, genseg.name]
    shared = spec.out / "pretrained" / f"{key}.pt"
    copied = RunPaths(spec.out / "runs" / genseg.name).pretrain
    own = RunPaths(spec.out / "runs" / separate.name).pretrain
    assert shared.read_bytes() == copied.read_bytes() == own.read_bytes()
    # The copy changes nothing: genseg pre-training itself ends with the same weights, bit for bit.
    train(genseg.config, tmp_path / "alone", progress=False)
    alone, via_share = RunPaths(tmp_path / "alone"), RunPaths(spec.out / "runs" / genseg.name)
    for a, b in ((alone.pretrain, via_share.pretrain), (alone.weights("final"), via_share.weights("final"))):
        assert _same_tensors(load_checkpoint(a), load_checkpoint(b)), a.name


def _same_tensors(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.equal(a, b)
    return True  # other values (steps, optimizer settings) do not decide the weights


def test_shift_script_writes_shifted_test_cases_with_their_masks(
    tmp_path: Path, phantom: tuple[Path, Path], benchmark_script: Callable[[str], ModuleType]
) -> None:
    shift = benchmark_script("shift")
    data_root, splits_root = phantom
    source = index_cases(data_root / "phantom")
    out = tmp_path / "phantom-xray"
    assert shift.write_shifted(data_root / "phantom", splits_root / "phantom.json", "xray", out)
    shifted = index_cases(out)
    assert shifted.ids == sorted(json.loads((splits_root / "phantom.json").read_text())["test"])
    for case_id in shifted.ids:
        before, after = source.cases[case_id], shifted.cases[case_id]
        assert after.mask_path.read_bytes() == before.mask_path.read_bytes()
        original, changed = np.asarray(Image.open(before.image_path)), np.asarray(Image.open(after.image_path))
        assert changed.shape == original.shape and changed.dtype == np.uint8
        assert np.abs(changed.astype(float) - original).mean() > 5  # a visible change, not a copy
    assert not list(tmp_path.glob(".phantom-xray.*"))  # no partial folder left behind
    assert not shift.write_shifted(data_root / "phantom", splits_root / "phantom.json", "xray", out)

    gray = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
    rgb = np.stack([gray] * 3, axis=-1)
    one, two = (shift.apply_shift(gray, shift.SHIFTS["xray"], np.random.default_rng(1)) for _ in range(2))
    assert one.shape == gray.shape and np.array_equal(one, two)  # seeded: the same set every time
    warm = shift.apply_shift(rgb, shift.SHIFTS["photo"], np.random.default_rng(1))
    assert warm.shape == rgb.shape and warm[..., 0].mean() > warm[..., 2].mean()  # the white balance shifts


def test_plan_resolves_auto_sizes_dev_splits_and_segmenter_overrides(phantom: tuple[Path, Path], tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run is planned once: a run folder's plan.json is read back, never decided again."""
    data_root, splits_root = phantom
    spec = spec_from_dict({
        "datasets": ["phantom"], "budgets": [4], "methods": ["augment", "inst"], "seeds": [0], "size": "auto",
        "splits": ["test", "dev"], "out": tmp_path / "out", "data_root": data_root, "splits_root": splits_root,
        "variants": {"inst": {"method": "augment", "segmenter": {"norm": "instance"}}},
    })
    plain, instance = plan_runs(spec)
    assert plain.config.data.size == plain.plan.size == 32  # the phantom's side caps the plan
    for run in (plain, instance):  # as the runner does for a new run folder
        write_plan(run.plan, RunPaths(spec.out / "runs" / run.name))

    def never(*args: object) -> None:
        raise AssertionError("a run with a plan.json was planned again")

    monkeypatch.setattr("genseg.benchmark.spec.plan_run", never)
    assert [run.config for run in plan_runs(spec)] == [plain.config, instance.config]
    assert plain.eval_sets == {"test": ("test", None), "dev": ("dev", None)}
    assert plain.config.segmenter.options == {} and instance.config.segmenter.options == {"norm": "instance"}
    with pytest.raises(ValueError, match="splits"):
        replace(spec, splits=["holdout"])


def test_nnunet_script_converts_the_budget_and_scores_with_genseg_metrics(
    tmp_path: Path, phantom: tuple[Path, Path], benchmark_script: Callable[[str], ModuleType]
) -> None:
    nnunet = benchmark_script("nnunet")
    data_root, splits_root = phantom
    job = nnunet.Job("phantom", budget=4, seed=0, n_val=1, data_root=data_root, splits_root=splits_root,
                     work=tmp_path, trainer="nnUNetTrainer_5epochs")
    nnunet.convert(job)
    index, train_ids, val_ids, test_ids = nnunet.budget_of(job)
    labeled = train_ids + val_ids
    assert sorted(p.name for p in (job.raw / "imagesTr").iterdir()) == sorted(f"{c}_0000.png" for c in labeled)
    assert sorted(p.stem for p in (job.raw / "labelsTr").iterdir()) == sorted(train_ids + val_ids)
    assert sorted(p.name for p in (job.raw / "imagesTs").iterdir()) == sorted(f"{c}_0000.png" for c in test_ids)
    label = np.asarray(Image.open(job.raw / "labelsTr" / f"{train_ids[0]}.png"))
    assert set(np.unique(label).tolist()) <= {0, 1} and label.any()  # 0..K-1, not 0/255
    metadata = json.loads((job.raw / "dataset.json").read_text())
    assert metadata["labels"] == {"background": 0, "class1": 1} and metadata["numTraining"] == 4

    job.preprocessed.mkdir(parents=True)
    assert json.loads(nnunet.write_splits(job).read_text()) == [{"train": train_ids, "val": val_ids}]
    job.results.mkdir(parents=True)  # a run restarted once: two logs, their epoch times summed
    (job.results / "training_log_1.txt").write_text("2026-12-01 04:04:05.998535: Epoch time: 1052.15 s \nx\n")
    (job.results / "training_log_2.txt").write_text("2026-12-01 04:20:41.991601: Epoch time: 992.91 s \n")
    assert nnunet.training_seconds(job) == pytest.approx(2045.06)
    assert "--c" not in nnunet.train_command(job, tmp_path / "bin", "cpu")
    (job.results / "checkpoint_best.pth").write_bytes(b"")  # a killed 5-epoch run leaves only its best epoch
    assert nnunet.train_command(job, tmp_path / "bin", "cpu")[-1] == "--c"

    # Predictions equal to the references score Dice 1; one emptied prediction scores 0 there.
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    for case_id in test_ids:
        mask = np.asarray(Image.open(index.cases[case_id].mask_path)) > 0
        Image.fromarray(mask.astype(np.uint8)).save(predictions / f"{case_id}.png")
    Image.fromarray(np.zeros_like(mask, dtype=np.uint8)).save(predictions / f"{test_ids[0]}.png")
    rows, summary = nnunet.score(job, predictions)
    assert [row["case"] for row in rows] == test_ids
    assert [row["dice"] for row in rows] == [0.0] + [1.0] * (len(test_ids) - 1)
    assert summary["dice_mean"] == pytest.approx((len(test_ids) - 1) / len(test_ids))


def test_paired_script_pairs_a_run_folder_with_a_cases_file_found_by_a_wildcard(
    tmp_path: Path, benchmark_script: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    paired = benchmark_script("paired")
    run = tmp_path / "runs" / "augment-s1"
    for checkpoint, dice in (("best", [0.9, 0.8, 0.7]), ("final", [0.6, 0.6, 0.6])):
        cases = RunPaths(run).eval_dir("test", checkpoint) / "cases.csv"
        cases.parent.mkdir(parents=True)
        write_csv([{"case": c, "dice": d} for c, d in zip("abc", dice)], cases)
    reference = tmp_path / "Dataset781_s1" / "fold_0" / "cases-test-final.csv"
    reference.parent.mkdir(parents=True)
    write_csv([{"case": c, "dice": d} for c, d in zip("abc", [0.5, 0.5, 0.5])], reference)

    pattern = str(tmp_path / "Dataset*_s{seed}" / "fold_0" / "cases-test-final.csv")
    monkeypatch.setattr("sys.argv", ["paired.py", "--a", pattern, "--b", str(tmp_path / "runs" / "augment-s{seed}"),
                                     "--seeds", "1"])
    paired.main()
    best, final = capsys.readouterr().out.splitlines()
    assert best.startswith("seed 1 best  test: b - a = +0.300 over 3 cases (0.800 vs 0.500)")
    assert final.startswith("seed 1 final test: b - a = +0.100 over 3 cases (0.600 vs 0.500)")

    monkeypatch.setattr("sys.argv", ["paired.py", "--a", pattern, "--b", str(run), "--seeds", "2"])
    with pytest.raises(SystemExit, match="matches 0 paths"):
        paired.main()


def test_nnunet_script_at_a_working_size_resizes_inputs_and_scores_at_the_native_size(
    tmp_path: Path, phantom: tuple[Path, Path], benchmark_script: Callable[[str], ModuleType]
) -> None:
    nnunet = benchmark_script("nnunet")
    data_root, splits_root = phantom
    job = nnunet.Job("phantom", budget=4, seed=0, n_val=1, data_root=data_root, splits_root=splits_root,
                     work=tmp_path, trainer="nnUNetTrainer_5epochs", size=16)
    nnunet.convert(job)
    index, train_ids, _, test_ids = nnunet.budget_of(job)
    native = np.asarray(Image.open(index.cases[train_ids[0]].mask_path)) > 0
    assert native.shape == (32, 32)
    label = np.asarray(Image.open(job.raw / "labelsTr" / f"{train_ids[0]}.png"))
    image = Image.open(job.raw / "imagesTs" / f"{test_ids[0]}_0000.png")
    assert label.shape == (16, 16) and image.size == (16, 16)
    assert abs(label.mean() - native.mean()) < 0.05  # the label's area survives the resize

    # Each reference, shrunk as the labels were, scores close to 1 once brought back to 32 px.
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    for case_id in test_ids:
        mask = (np.asarray(Image.open(index.cases[case_id].mask_path)) > 0).astype(np.uint8)
        small = mask.reshape(16, 2, 16, 2).mean(axis=(1, 3)) >= 0.5
        Image.fromarray(small.astype(np.uint8)).save(predictions / f"{case_id}.png")
    rows, summary = nnunet.score(job, predictions)
    assert len(rows) == len(test_ids) and 0.85 < summary["dice_mean"] < 1.0


def test_nnunet_script_in_3d_copies_volumes_and_scores_them_per_volume(
    tmp_path: Path, benchmark_script: Callable[[str], ModuleType]
) -> None:
    nnunet = benchmark_script("nnunet")
    data = make_volume_phantom(tmp_path / "data" / "volumes", n_cases=6)
    write_split(make_split(index_cases(data).ids, dataset="volumes", test_fraction=0.34, seeds=(0,)),
                tmp_path / "splits" / "volumes.json")
    job = nnunet.Job("volumes", budget=3, seed=0, n_val=1, data_root=tmp_path / "data", splits_root=tmp_path / "splits",
                     work=tmp_path / "work", trainer="nnUNetTrainer_5epochs", configuration="3d_fullres")
    assert job.results.parent.name == "nnUNetTrainer_5epochs__nnUNetPlans__3d_fullres"
    nnunet.convert(job)
    index, train_ids, val_ids, test_ids = nnunet.budget_of(job)
    labeled = train_ids + val_ids
    assert sorted(p.name for p in (job.raw / "labelsTr").iterdir()) == sorted(f"{c}.nii.gz" for c in labeled)
    assert sorted(p.name for p in (job.raw / "imagesTs").iterdir()) == sorted(f"{c}_0000.nii.gz" for c in test_ids)
    assert json.loads((job.raw / "dataset.json").read_text())["file_ending"] == ".nii.gz"

    # The references as predictions score 1; one volume predicted empty scores 0.
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    for case_id in test_ids:
        reference = index.cases[case_id].mask_path
        label_map = read_label_volume(reference)
        predicted = np.zeros_like(label_map) if case_id == test_ids[0] else label_map
        write_label_volume(predictions / f"{case_id}.nii.gz", predicted, volume_geometry(reference)[1])
    rows, _ = nnunet.score(job, predictions)
    assert [row["dice"] for row in rows] == [0.0] + [1.0] * (len(test_ids) - 1)


def test_the_data_root_comes_from_the_option_or_the_environment(phantom: tuple[Path, Path],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    data_root, splits_root = phantom
    values = {"datasets": ["phantom"], "budgets": [4], "methods": ["augment"], "seeds": [0], "size": 32}
    monkeypatch.delenv("GENSEG_DATA_ROOT", raising=False)
    monkeypatch.delenv("GENSEG_SPLITS_ROOT", raising=False)
    with pytest.raises(DataError, match="no data root given: pass --data-root DIR .* or set GENSEG_DATA_ROOT"):
        plan_runs(spec_from_dict(values))
    monkeypatch.setenv("GENSEG_DATA_ROOT", str(data_root))
    monkeypatch.setenv("GENSEG_SPLITS_ROOT", str(splits_root))
    (run,) = plan_runs(spec_from_dict(values))
    assert run.config.data.root == (data_root / "phantom").resolve()
