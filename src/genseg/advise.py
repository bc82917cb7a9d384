"""How good will it get with more labels, and which method wins: a learning curve on your own cases.

``genseg advise`` answers on the user's labeled cases alone, as no fixed benchmark can. Each
repeat r holds out a seeded share of the labeled cases (its test cases, never trained or selected
on) and orders the rest; budget b takes the first b of that order (20 % of them validating, as in
``train``), so a repeat's budgets are nested. Every (method, budget, repeat) is one run folder,
trained with seed r and scored on the repeat's held-out cases with the checkpoint ``predict``
uses. An inverse power law, Dice(n) = a - b n^-c (the usual shape of segmentation learning
curves), is fitted per method to all its points; refits over repeats drawn with replacement give
an 80 % interval for the Dice expected at N, N + 5 and N + 10 labels (N: every labeled case).

Everything lands in the advice folder: ``splits/``, ``runs/``, ``curve.csv`` (one row per run,
written as each finishes, so a killed advice resumes where it stopped), ``advice.json`` and
``advice.html`` (the plot and the tables).

Example:
    >>> from genseg import DataConfig, RunConfig
    >>> advice = advise(RunConfig(data=DataConfig(root=Path("data/lungs"))), Path("advice/lungs"))  # doctest: +SKIP
    >>> advice.winner  # doctest: +SKIP
"""

from __future__ import annotations

import html
import io
import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from tqdm.auto import tqdm

from genseg.config import MethodConfig, RunConfig
from genseg.data import index_cases, write_split
from genseg.data.io import atomic_write
from genseg.data.splits import Split
from genseg.errors import ConfigError, DataError
from genseg.evaluation import evaluate
from genseg.run_data import default_split, plan_run
from genseg.runs import RunPaths, read_csv, write_csv
from genseg.training import train

log = logging.getLogger(__name__)

SMALLEST_BUDGET = 3  # 2 train + 1 validation: below it the curve says nothing
CURVE_POINTS = 5  # budgets on the curve by default, from SMALLEST_BUDGET to the largest the cases allow
HOLDOUT_FRACTION = 0.2
INTERVAL = (10.0, 90.0)  # percentiles of the refits: an 80 % interval
FIXED_EXPONENT = 0.5  # c where fewer than three budgets cannot determine it
LOOK_AHEAD = (0, 5, 10)  # labels beyond N that the advice predicts


@dataclass(frozen=True)
class CurvePlan:
    """What the advice trains: the methods, the nested budgets, the repeats and their held-out cases."""

    methods: tuple[str, ...]
    budgets: tuple[int, ...]
    repeats: int
    holdout: int
    labeled: int

    @property
    def runs(self) -> int:
        return len(self.methods) * len(self.budgets) * self.repeats


@dataclass(frozen=True)
class PowerLaw:
    """Dice(n) = a - b n^-c."""

    a: float
    b: float
    c: float

    def __call__(self, n: np.ndarray | float) -> np.ndarray:
        return self.a - self.b * np.power(np.asarray(n, dtype=float), -self.c)


@dataclass
class Prediction:
    """The Dice a method is expected to reach with ``labels`` labeled cases, with its interval."""

    labels: int
    dice: float
    low: float
    high: float


@dataclass
class Advice:
    """The measured curve, each method's fit and predictions, and the method expected to win at N."""

    plan: CurvePlan
    points: list[dict]
    fits: dict[str, PowerLaw]
    predictions: dict[str, list[Prediction]]
    winner: str
    page: Path | None = field(default=None)

    def summary(self) -> str:
        n = self.plan.labeled
        lines = [f"with {n} labels, expected test Dice (80 % interval), from {self.plan.runs} runs:"]
        for method, predicted in self.predictions.items():
            lines.append(f"  {method}: " + "; ".join(f"{p.labels} labels {p.dice:.3f} ({p.low:.3f}-{p.high:.3f})"
                                                   for p in predicted))
        lines.append(f"expected to win at {n} labels: {self.winner}")
        return "\n".join(lines)


def plan_curve(labeled: int, methods: tuple[str, ...], *, budgets: tuple[int, ...] | None = None,
               repeats: int = 3, holdout: int | None = None) -> CurvePlan:
    """The curve's budgets and held-out share for ``labeled`` cases; defaults: a fifth held out (at
    least 2) and :data:`CURVE_POINTS` budgets spread from 3 to the rest.

    Raises:
        ConfigError: too few cases, or budgets that do not fit beside the held-out cases.
    """
    holdout = max(2, round(HOLDOUT_FRACTION * labeled)) if holdout is None else holdout
    largest = labeled - holdout
    if holdout < 1 or largest < SMALLEST_BUDGET:
        raise ConfigError(f"a learning curve needs at least {SMALLEST_BUDGET} training and 1 held-out labeled case "
                          f"per repeat; {labeled} labeled cases with {holdout} held out leave {largest}")
    if budgets is None:
        budgets = tuple(sorted({round(b) for b in np.linspace(SMALLEST_BUDGET, largest, CURVE_POINTS)}))
    if not budgets or min(budgets) < 2 or max(budgets) > largest:
        raise ConfigError(f"budgets must be between 2 and {largest} ({labeled} labeled cases, {holdout} held out), "
                          f"got {list(budgets)}")
    if repeats < 1 or not methods:
        raise ConfigError("advise needs at least one repeat and one method")
    return CurvePlan(tuple(methods), tuple(sorted(set(budgets))), repeats, holdout, labeled)


def considered_methods(config: RunConfig) -> tuple[str, ...]:
    """``augment`` and the synthesis the plan picks for these masks: ``copypaste`` for small, sparse
    targets (the compositing generator's kind), ``separate`` with pix2pix for anatomy."""
    index = index_cases(config.data.root, layout=config.data.layout)
    labeled = len(index.ids)
    everything = replace(config, data=replace(config.data, budget=labeled, n_val=None, split_file=None))
    synthesis = plan_run(everything, index, default_split(everything, index)).data_set.synthesis
    return ("augment", "copypaste" if synthesis == "composite" else "separate")


def advise(config: RunConfig, out: Path, *, methods: tuple[str, ...] | None = None,
           budgets: tuple[int, ...] | None = None, repeats: int = 3, holdout: int | None = None,
           progress: bool = True, announce: Callable[[str], object] = log.info) -> Advice:
    """Train and score the learning curve's runs in ``out`` (finished ones are kept, a killed one
    resumes), fit it and write ``advice.json`` and ``advice.html``.

    Args:
        config: the settings every run shares (data folder, segmenter, size, iterations, ...);
            its budget, split, method and seed are set per run.
        out: the advice folder.
        methods: the methods compared (default: :func:`considered_methods`).
        budgets: the curve's labeled budgets (default: :func:`plan_curve`).
        repeats: held-out draws (and seeds) per budget.
        holdout: labeled cases held out per repeat (default: a fifth, at least 2).
        announce: where the plan and the time estimate (after the first run) are told.
    """
    if config.data.root is None:
        raise ConfigError("advise needs a data folder of labeled cases (--data DIR)")
    index = index_cases(config.data.root, layout=config.data.layout)
    labeled = index.ids
    curve = plan_curve(len(labeled), methods or considered_methods(config), budgets=budgets, repeats=repeats,
                       holdout=holdout)
    out = Path(out)
    splits = [_repeat_split(labeled, curve, repeat, out, config.data.root.name) for repeat in range(curve.repeats)]
    done = {_point_key(row): row for row in read_csv(out / "curve.csv")} if (out / "curve.csv").is_file() else {}
    todo = [(m, b, r) for r in range(curve.repeats) for b in curve.budgets for m in curve.methods
            if (m, b, r) not in done]
    announce(f"advise: {curve.runs} runs ({', '.join(curve.methods)} at budgets {', '.join(map(str, curve.budgets))}, "
             f"{curve.repeats} repeats) of {config.train.iterations} iterations, "
             f"{curve.runs - len(todo)} already done; "
             f"{len(labeled)} labeled cases, {curve.holdout} held out per repeat")
    seconds: dict[str, float] = {}  # each method's first run, for the time estimate
    for number, (method, budget, repeat) in enumerate(tqdm(todo, desc="advise", unit="run", disable=not progress)):
        run_config = replace(config, data=replace(config.data, budget=budget, n_val=None, split_file=splits[repeat]),
                             method=MethodConfig(method), train=replace(config.train, seed=repeat))
        point = _train_and_score(run_config, out / "runs" / f"{method}-n{budget}-r{repeat}")
        done[(method, budget, repeat)] = point
        write_csv(sorted(done.values(), key=_point_key), out / "curve.csv")
        if method not in seconds and number + 1 < len(todo):
            seconds[method] = point["seconds"]
            announce(_estimate(method, seconds, [m for m, _, _ in todo[number + 1:]]))
    points = [done[key] for key in sorted(done) if key[0] in curve.methods and key[1] in curve.budgets
              and key[2] < curve.repeats]
    advice = fit_advice(curve, points)
    text = json.dumps(_advice_dict(advice), indent=2) + "\n"
    atomic_write(out / "advice.json", lambda path: path.write_text(text))
    advice.page = write_advice_page(advice, out / "advice.html")
    return advice


def _estimate(method: str, seconds: dict[str, float], left: list[str]) -> str:
    """The time the runs left will take, from each method's first run (the slowest so far where a
    method has not run yet: a generator's pre-training can make one method many times slower)."""
    minutes = sum(seconds.get(m, max(seconds.values())) for m in left) / 60
    guessed = "" if set(left) <= set(seconds) else " (a guess until every method has run once)"
    return (f"the first {method} run took {seconds[method]:.0f} s: "
            f"about {minutes:.0f} min for the {len(left)} left{guessed}")


def _repeat_split(labeled: list[str], curve: CurvePlan, repeat: int, out: Path, dataset: str) -> Path:
    """Repeat ``repeat``'s split file: its held-out cases as test, the rest as its seed's pool."""
    order = [labeled[i] for i in np.random.default_rng([repeat, len(labeled)]).permutation(len(labeled))]
    path = out / "splits" / f"repeat{repeat}.json"
    split = Split(dataset=dataset, test=sorted(order[:curve.holdout]), pool={repeat: order[curve.holdout:]},
                  note=f"genseg advise: repeat {repeat}, {curve.holdout} of {len(labeled)} labeled cases held out")
    if not path.is_file():
        write_split(split, path)
    return path


def _point_key(row: dict) -> tuple[str, int, int]:
    return str(row["method"]), int(row["budget"]), int(row["repeat"])


def train_and_score(config: RunConfig, folder: Path, split: str = "test") -> tuple[str, dict]:
    """Train the run in ``folder`` (or resume it) unless it finished, and score the checkpoint
    ``predict`` uses on ``split``: that checkpoint's name and summary."""
    paths = RunPaths(folder)
    if not paths.result.is_file():
        train(config, folder, resume=paths.config.is_file(), progress=False)
    checkpoint = paths.preferred_checkpoint()
    return checkpoint, evaluate(folder, split=split, checkpoints=(checkpoint,), overlays=0)[checkpoint]


def _train_and_score(config: RunConfig, folder: Path) -> dict:
    """One point of the curve: the run trained (or resumed) and its preferred checkpoint scored."""
    started = time.perf_counter()
    checkpoint, summary = train_and_score(config, folder)
    return {"method": config.method.name, "budget": config.data.budget, "repeat": config.train.seed,
            "checkpoint": checkpoint, "dice": summary["dice_mean"], "n_cases": summary["n_cases"],
            "seconds": round(time.perf_counter() - started, 1)}


def fit_power_law(budgets: np.ndarray, dice: np.ndarray) -> PowerLaw:
    """Least-squares Dice(n) = a - b n^-c, with a in [0, 1], b >= 0 and c in [0.05, 3]; c is held at
    :data:`FIXED_EXPONENT` where fewer than three budgets (or a fit that fails) leave it undetermined."""
    budgets, dice = np.asarray(budgets, dtype=float), np.asarray(dice, dtype=float)
    if len(np.unique(budgets)) >= 3:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                (a, b, c), _ = curve_fit(lambda n, a, b, c: a - b * n ** -c, budgets, dice,
                                         p0=(min(1.0, dice.max() + 0.05), 0.5, 0.5),
                                         bounds=([0.0, 0.0, 0.05], [1.0, 10.0, 3.0]), maxfev=20000)
            return PowerLaw(float(a), float(b), float(c))
        except RuntimeError:
            pass
    x = budgets ** -FIXED_EXPONENT
    slope, intercept = np.polyfit(x, dice, 1) if len(np.unique(budgets)) > 1 else (0.0, float(dice.mean()))
    return PowerLaw(float(min(1.0, intercept)), float(max(0.0, -slope)), FIXED_EXPONENT)


def fit_advice(curve: CurvePlan, points: list[dict], draws: int = 200, seed: int = 0) -> Advice:
    """Each method's fit to its points, predictions at N, N + 5 and N + 10 with the refits' interval."""
    rng = np.random.default_rng(seed)
    targets = [curve.labeled + extra for extra in LOOK_AHEAD]
    fits, predictions = {}, {}
    for method in curve.methods:
        rows = [row for row in points if row["method"] == method]
        if not rows:
            raise DataError(f"no finished run of {method} in the learning curve")
        budgets = np.array([float(row["budget"]) for row in rows])
        dice = np.array([float(row["dice"]) for row in rows])
        repeats = np.array([int(row["repeat"]) for row in rows])
        fits[method] = fit_power_law(budgets, dice)
        ids = np.unique(repeats)
        refits = []
        for _ in range(draws):
            chosen = rng.choice(ids, size=len(ids), replace=True)
            rows_of = np.concatenate([np.flatnonzero(repeats == r) for r in chosen])
            refits.append(fit_power_law(budgets[rows_of], dice[rows_of])(targets))
        low, high = np.percentile(np.array(refits), INTERVAL, axis=0)
        predictions[method] = [Prediction(n, float(fits[method](n)), float(lo), float(hi))
                               for n, lo, hi in zip(targets, low, high)]
    winner = max(curve.methods, key=lambda method: predictions[method][0].dice)
    return Advice(curve, points, fits, predictions, winner)


def _advice_dict(advice: Advice) -> dict:
    return {"plan": asdict(advice.plan), "winner": advice.winner,
            "fits": {method: asdict(fit) for method, fit in advice.fits.items()},
            "predictions": {m: [asdict(p) for p in ps] for m, ps in advice.predictions.items()},
            "interval": "80 %: the 10th-90th percentile of refits over repeats drawn with replacement"}


def write_advice_page(advice: Advice, path: Path) -> Path:
    """``advice.html``: the curve with each fit and interval, the measured points and the predictions."""
    from genseg.report import inline_png, write_page

    curve = advice.plan
    parts = [f"<h1>genseg advise: {curve.labeled} labeled cases</h1>",
             f"<p>{curve.runs} runs: {', '.join(curve.methods)} at budgets {', '.join(map(str, curve.budgets))}, "
             f"{curve.repeats} repeats, each scored on its own {curve.holdout} held-out labeled cases. Fit: Dice(n) = "
             "a - b n<sup>-c</sup>; intervals: 80 % of refits over repeats drawn with replacement.</p>",
             f"<p><strong>Expected to win at {curve.labeled} labels: {html.escape(advice.winner)}</strong>.</p>",
             inline_png(_curve_png(advice), "learning curve"),
             "<h2>Predicted test Dice</h2>", _table(["method", *[f"{p.labels} labels" for p in
                                                                 next(iter(advice.predictions.values()))]],
                                                    [[m, *[f"{p.dice:.3f} ({p.low:.3f}-{p.high:.3f})" for p in ps]]
                                                     for m, ps in advice.predictions.items()]),
             "<h2>Measured</h2><p>Mean ± SD over repeats of the held-out Dice.</p>",
             _table(["method", *[f"{b} labels" for b in curve.budgets]],
                    [[m, *[_mean_sd([float(r["dice"]) for r in advice.points
                                     if r["method"] == m and int(r["budget"]) == b]) for b in curve.budgets]]
                     for m in curve.methods])]
    return write_page(path, "genseg advise", parts)


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{html.escape(cell)}</th>" for cell in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _curve_png(advice: Advice) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = advice.plan
    n = np.linspace(2, curve.labeled + max(LOOK_AHEAD), 200)
    figure, axes = plt.subplots(figsize=(7, 4))
    for number, method in enumerate(curve.methods):
        colour = f"C{number}"
        rows = [row for row in advice.points if row["method"] == method]
        axes.scatter([int(r["budget"]) + 0.15 * (number - 0.5) for r in rows], [float(r["dice"]) for r in rows],
                     color=colour, s=14, alpha=0.6)
        axes.plot(n, advice.fits[method](n), color=colour, label=method)
        predicted = advice.predictions[method]
        axes.errorbar([p.labels for p in predicted], [p.dice for p in predicted],
                      yerr=[[p.dice - p.low for p in predicted], [p.high - p.dice for p in predicted]],
                      fmt="o", color=colour, capsize=3)
    axes.axvline(curve.labeled, color="gray", linestyle=":", label=f"N = {curve.labeled}")
    axes.set(xlabel="labeled cases", ylabel="held-out Dice")
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
