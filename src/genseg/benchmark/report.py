"""A benchmark's ``table.md`` and ``efficiency_<dataset>.png``, written from ``runs.csv``, ``paired.csv`` and
``checkpoints.csv``."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from genseg.benchmark.paired import BASELINES, CHECKPOINT_PAIRS, update_paired
from genseg.benchmark.results import ok_rows, read_rows, row_key
from genseg.benchmark.spec import VARIANTS
from genseg.data.io import atomic_write
from genseg.runs import CHECKPOINTS


def write_reports(out: Path) -> None:
    """Write ``paired.csv``, ``checkpoints.csv``, ``table.md`` and one ``efficiency_<dataset>.png`` per data set
    from ``runs.csv``."""
    rows = read_rows(out / "runs.csv")
    text = results_table(rows, *update_paired(out, rows))
    atomic_write(out / "table.md", lambda temp: temp.write_text(text))
    for dataset in dict.fromkeys(row["dataset"] for row in ok_rows(rows)):
        plot_efficiency([row for row in rows if row["dataset"] == dataset], out / f"efficiency_{dataset}.png")



def results_table(rows: list[dict[str, str]], paired: list[dict[str, str]] = (),
                  checkpoint_pairs: list[dict[str, str]] = ()) -> str:
    """Markdown tables of ``runs.csv`` rows: mean ± SD over seeds, per data set and evaluation set.

    One section per data set and common setting (segmenter, size, iterations), one table per
    evaluation set (``test``, ``ood-<name>``), a per-class table for multi-class data, the paired
    per-case differences of the variants against the baselines (``paired.csv`` rows) and of
    a run's averaged checkpoint against its others (``checkpoints.csv`` rows), and a list of the
    runs that failed and have no successful result.
    """
    lines = ["# Benchmark results", "",
             "Mean ± SD over seeds (sample SD; a single seed shows its value). \"best\": the checkpoint "
             "chosen on the validation pairs (the run's train.select); \"final\": the last iteration. "
             "HD95 in pixels, over the cases where it is defined; \"(k undef.)\" counts the other cases "
             "over all seeds. Per-seed values: runs.csv.", ""]
    ok = ok_rows(rows)
    for setting, section in _groups(ok, ("dataset", "segmenter", "size", "iterations")).items():
        dataset, segmenter, size, iterations = setting
        pixels = f"{size} px" if size.isdigit() else f"{size} size"
        schedule = f", {iterations} iterations" if iterations else ""  # a reference (nnU-Net) has its own
        lines += [f"## {dataset} ({segmenter}, {pixels}{schedule})", ""]
        for (eval_set,), evaluated in _groups(section, ("eval_set",)).items():
            title = {"test": "test set", "dev": "development cases (pool outside the budget)"}.get(
                eval_set, f"{eval_set}: whole folder, model selected in-domain")
            lines += [f"### {title}", "", *_metrics_table(evaluated), ""]
            per_class = [c for c in evaluated[0] if c.startswith("dice_") and any(row.get(c) for row in evaluated)]
            if per_class:
                lines += ["Per-class Dice, best checkpoint:", "", *_per_class_table(evaluated, per_class), ""]
            if compared := _of_setting(paired, (*setting, eval_set)):
                lines += ["Paired per-case Dice, variant minus baseline on the same cases and seed: the mean "
                          "difference, with the two-sided Wilcoxon signed-rank p-value; the last column is "
                          "the mean ± SD of the per-seed differences (paired.csv). A p-value compares two "
                          "trained models on these cases; whether the methods differ is read from the seeds.",
                          "",
                          *_paired_table(compared, BASELINES), ""]
            if compared := _of_setting(checkpoint_pairs, (*setting, eval_set)):
                lines += ["Checkpoints of one run, paired per case: the averaged weights minus the final and the "
                          "best checkpoint, as above (checkpoints.csv).", "",
                          *_paired_table(compared, [other for _, other in CHECKPOINT_PAIRS], within_run=True), ""]
    done = {row_key(row) for row in ok}
    failed = {row_key(row): row for row in rows if row_key(row) not in done}  # the latest attempt's error
    if failed:
        lines += ["## Failed runs (no successful result)", ""]
        lines += [f"- {_run_label(row)}: {row['error']}" for row in failed.values()] + [""]
    return "\n".join(lines)



def plot_efficiency(rows: list[dict[str, str]], path: Path) -> None:
    """Test Dice vs labeled pairs N of one data set: one line per variant, error bars = SD over seeds.

    Two panels: the best-validation checkpoint (solid) and the final one (dashed).
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    test = [row for row in ok_rows(rows) if row["eval_set"] == "test"]
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
    """Dice, IoU and HD95 of each checkpoint the rows hold (averaged only where runs saved one)."""
    checkpoints = [c for c in CHECKPOINTS if any(row["checkpoint"] == c for row in rows)]
    metrics = [f"{metric} {c}" for metric in ("Dice", "IoU", "HD95") for c in checkpoints]
    lines = ["| N | train+val | method | " + " | ".join(metrics) + " | s/run | peak MB | seeds |",
             "|---|---|---|" + "---|" * (len(metrics) + 3)]
    groups = _groups(rows, ("n_labels", "method"))
    for key in _table_order(groups):
        group = groups[key]
        by_checkpoint = [[row for row in group if row["checkpoint"] == c] for c in checkpoints]
        cells = [key[0], f"{group[0]['n_train']}+{group[0]['n_val']}", key[1],
                 *(_cell(scored, "dice", 3) for scored in by_checkpoint),
                 *(_cell(scored, "iou", 3) for scored in by_checkpoint),
                 *(_hd95_cell(scored) for scored in by_checkpoint), _cell(by_checkpoint[0], "seconds", 0),
                 _peak_cell(group), str(len({row["seed"] for row in group}))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines



def _of_setting(pairs: list[dict[str, str]], setting: tuple[str, ...]) -> list[dict[str, str]]:
    """The pairs of one section and evaluation set: (dataset, segmenter, size, iterations, eval_set)."""
    return [row for row in pairs
            if tuple(row[c] for c in ("dataset", "segmenter", "size", "iterations", "eval_set")) == setting]


def _paired_table(rows: list[dict[str, str]], baselines: list[str] | tuple[str, ...],
                  within_run: bool = False) -> list[str]:
    """Per-seed paired differences, one line per variant, baseline and checkpoint; the baseline is another
    method, or (``within_run``) another checkpoint of the same run; lines in the order of ``baselines``."""
    seeds = sorted({row["seed"] for row in rows}, key=int)
    lines = ["| N | variant − baseline | checkpoint | " + " | ".join(f"seed {s}" for s in seeds) + " | over seeds |",
             "|---|---|---|" + "---|" * (len(seeds) + 1)]
    groups = _groups(rows, ("n_labels", "method", "baseline", "checkpoint"))
    order = list(VARIANTS)
    for key in sorted(groups, key=lambda k: (int(k[0]), order.index(k[1]) if k[1] in order else len(order), k[1],
                                             list(baselines).index(k[2]), CHECKPOINTS.index(k[3]))):
        by_seed = {row["seed"]: row for row in groups[key]}
        cells = [f"{float(by_seed[s]['difference']):+.3f} (p {float(by_seed[s]['p_value']):.2g})"
                 if s in by_seed else "–" for s in seeds]
        differences = [float(row["difference"]) for row in by_seed.values()]
        sd = _sd(differences)
        spread = f"{statistics.mean(differences):+.3f}" + (f" ± {sd:.3f}" if sd is not None else "")
        compared = f"{key[1]}: {key[3]} − {key[2]}" if within_run else f"{key[1]} − {key[2]}"
        lines.append(f"| {key[0]} | {compared} | {key[3]} | " + " | ".join(cells) + f" | {spread} |")
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
