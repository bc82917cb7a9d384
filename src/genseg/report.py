"""Self-contained HTML reports: one page per run, one per benchmark, images inlined.

A run's page shows what a person checks first: the learning curves, each evaluation's summary
and its cases worst-first, the overlays of the worst cases, the synthetic pairs of generative
runs, the plan and the config. Everything is read from the run folder; nothing is recomputed
except the curve plot (and a contact sheet, where a generative run has none yet).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from genseg.config import RunConfig  # noqa: E402
from genseg.planning import volume_layout  # noqa: E402
from genseg.plugins import method_class  # noqa: E402
from genseg.runs import RunPaths, load_config, read_csv  # noqa: E402

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { display: inline-block; margin: 0.4em; text-align: center; font-size: 0.85em; }
figure img { max-width: 256px; display: block; }
.legend span { font-weight: bold; }
pre { background: #f5f5f5; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
"""
WORST_CASES_SHOWN = 30


def run_report(run_dir: Path) -> Path:
    """Write ``<run>/report.html`` and return its path."""
    run = RunPaths(Path(run_dir))
    config = load_config(run)
    parts = [f"<h1>genseg run {html.escape(run.root.name)}</h1>", _run_facts(run, config)]
    if not run.result.is_file():
        parts.insert(1, "<p><strong>This run has not finished</strong> (no result.json): its curves and checkpoints "
                        "are those of a partial run. Finish it with <code>genseg train --resume</code>.</p>")
    if run.history.is_file():
        parts += ["<h2>Learning curves</h2>", inline_png(_curves_png(read_csv(run.history)), "learning curves")]
    for summary_path in sorted(run.root.glob("eval/*/*/summary.json")):
        parts.append(_evaluation_section(summary_path))
    sheet = _contact_sheet(run, config)
    if sheet is not None:
        parts += ["<h2>Synthetic pairs</h2>", "<p>Augmented masks and the images the run's generator drew "
                  "for them (G(T(y)), T(y)), beside real images.</p>", inline_png(sheet.read_bytes(), "contact sheet")]
    if run.plan.is_file():
        parts += ["<h2>Plan</h2>", f"<pre>{html.escape(run.plan.read_text(), quote=False)}</pre>"]
    parts += ["<h2>Config</h2>", f"<pre>{html.escape(run.config.read_text(), quote=False)}</pre>"]
    return write_page(run.root / "report.html", f"genseg run {run.root.name}", parts)


def benchmark_report(out: Path) -> Path:
    """Write ``<out>/report.html`` from a benchmark's ``table.md`` and plots."""
    out = Path(out)
    table = out / "table.md"
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found; run genseg benchmark --report-only --out {out} first")
    parts = [_markdown(table.read_text())]
    for plot in sorted(out.glob("*.png")):
        parts += [f"<h2>{html.escape(plot.stem)}</h2>", inline_png(plot.read_bytes(), plot.stem)]
    return write_page(out / "report.html", f"genseg benchmark {out.name}", parts)


def _run_facts(run: RunPaths, config: RunConfig) -> str:
    data, train = config.data, config.train
    facts = {"method": config.method.name, "segmenter": config.segmenter.name,
             "data": str(data.root), "labeled budget": f"{data.budget} ({data.n_train} train + {data.n_val} val)",
             "seed": train.seed, **_shape_fact(config, run), "iterations": train.iterations}
    if run.result.is_file():
        result = json.loads(run.result.read_text())
        facts.update({"best iteration (validation loss)": result["best_iteration"],
                      "genseg predict uses": f"{run.preferred_checkpoint()}.pt",
                      "wall time": f"{result['seconds']:.0f} s", "peak memory": f"{result['peak_mb']:.0f} MB"})
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items())
    return f"<table>{rows}</table>"


def _shape_fact(config: RunConfig, run: RunPaths) -> dict[str, str]:
    """What the run trained on: images of a side, or volumes in a patch at a spacing."""
    data = config.data
    if data.dims != 3:
        return {"image size": f"{data.size} px"}
    extent = json.loads(run.plan.read_text()).get("volume_extent") if run.plan.is_file() else None
    return {"3D": volume_layout(data.patch, data.spacing, tuple(extent) if extent else None)}


def _evaluation_section(summary_path: Path) -> str:
    summary = json.loads(summary_path.read_text())
    folder = summary_path.parent
    cases = sorted(read_csv(folder / "cases.csv"), key=lambda row: float(row["dice"]))
    mirrored = ", mirrored views averaged (TTA)" if summary.get("tta") else ""
    title = (f"Evaluation: {summary['split']}, {summary['checkpoint']} checkpoint (iteration {summary['iteration']})"
             f"{mirrored}")
    kept = summary.get("largest_component") or []
    unit = summary.get("hd95_unit", "px")
    where = "millimetres of the original volumes" if unit == "mm" else "pixels of the original images"
    shown = f" (the worst {WORST_CASES_SHOWN})" if len(cases) > WORST_CASES_SHOWN else ""
    lines = [f"<h2>{html.escape(title)}</h2>",
             f"<table><tr><th>cases</th><th>Dice</th><th>IoU</th><th>HD95 ({unit})</th><th>HD95 undefined</th></tr>"
             f"<tr><td>{summary['n_cases']}</td>{_mean_sd(summary, 'dice')}{_mean_sd(summary, 'iou')}"
             f"{_mean_sd(summary, 'hd95')}<td>{summary.get('n_hd95_undefined', 0)}</td></tr></table>",
             f"<p>Post-processing: {'largest component kept for classes ' + str(kept) if kept else 'none'} "
             f"(chosen on the validation cases). HD95 in {where}; undefined where a "
             "prediction or reference is empty.</p>",
             f"<h3>Cases, worst first{shown}</h3>",
             f"<table><tr><th>case</th><th>Dice</th><th>IoU</th><th>HD95 ({unit})</th></tr>"]
    lines += [f"<tr><td>{html.escape(row['case'])}</td><td>{_number(row['dice'])}</td><td>{_number(row['iou'])}</td>"
              f"<td>{_number(row['hd95'])}</td></tr>" for row in cases[:WORST_CASES_SHOWN]]
    lines.append("</table>")
    overlays = {path.stem: path for path in (folder / "overlays").glob("*.png")}
    if overlays:
        lines.append('<p class="legend">Overlays of the worst cases: <span style="color:#0a0">green</span> = '
                     'reference, <span style="color:#d00">red</span> = prediction.</p>')
        for row in cases:
            if row["case"] in overlays:
                caption = f"{row['case']}: Dice {_number(row['dice'])}"
                lines.append(f"<figure>{inline_png(overlays[row['case']].read_bytes(), caption)}"
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return "\n".join(lines)


def _contact_sheet(run: RunPaths, config: RunConfig) -> Path | None:
    """The run's synthetic contact sheet; made (8 pairs) for a finished generative run, from its own
    training pairs: every generator can draw from them (a compositing one can draw from nothing else),
    in every data layout, and no mask outside the run's budget is shown."""
    sheet = run.root / "synthetic" / "contact_sheet.png"
    if sheet.is_file() or not method_class(config.method.name).needs_generator:
        return sheet if sheet.is_file() else None
    if config.data.root is None or not run.weights("final").is_file():
        return None
    from genseg.generation import generate_pairs

    generate_pairs(run.root, None, run.root / "synthetic", n=8)
    return sheet


def _curves_png(history: list[dict[str, str]]) -> bytes:
    iterations = [float(row["iteration"]) for row in history]
    figure, (losses, dice) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key, label in (("train_loss", "training loss"), ("val_loss", "validation loss")):
        if history and key in history[0]:
            losses.plot(iterations, [float(row[key]) for row in history], label=label)
    losses.set(xlabel="iteration", ylabel="loss (cross-entropy + soft Dice)")
    losses.legend()
    if history and "val_dice" in history[0]:
        dice.plot(iterations, [float(row["val_dice"]) for row in history], color="tab:green")
    dice.set(xlabel="iteration", ylabel="validation Dice")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _markdown(text: str) -> str:
    """The benchmark's table.md as HTML: headings, pipe tables and paragraphs (all it uses)."""
    out, table = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if not all(set(cell) <= set("-: ") for cell in cells):
                table.append(cells)
            continue
        if table:
            head, *body = table
            out.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
                       + "</table>")
            table = []
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 4)
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    return "\n".join(out)


def inline_png(png: bytes, alt: str) -> str:
    """An <img> holding the PNG itself, so the page stands alone."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _mean_sd(summary: dict, key: str) -> str:
    return f"<td>{_number(summary.get(key + '_mean'))} ± {_number(summary.get(key + '_sd'))}</td>"


def _number(value: object) -> str:
    try:
        return f"{float(value):.3f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "n/a"


def write_page(path: Path, title: str, parts: list[str]) -> Path:
    """Write a self-contained HTML page of ``parts`` (HTML fragments) atomically; return its path."""
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    from genseg.data.io import atomic_write

    atomic_write(path, lambda temp: temp.write_text(page))
    return path
