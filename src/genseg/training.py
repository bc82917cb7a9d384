"""The one training loop every method shares.

Config at the top, the step in plain sight (``method.step``), validation on the budget's
validation pairs only, the best checkpoint by validation loss (or Dice), the final one beside
it (and, on request, the weights averaged over the run's end), and a resumable ``last.pt``
written atomically every ``checkpoint_every`` iterations.
:class:`TrainingHooks` let a caller watch or stop the loop, or score validation its own way,
without changing it.
"""

from __future__ import annotations

import json
import logging
import math
import resource
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from tqdm.auto import tqdm

from genseg.batches import Batches
from genseg.checkpoint import load_checkpoint, save_atomic
from genseg.checkpoint_policy import History, KeptWeights, tensorboard_writer
from genseg.config import AUTO, RunConfig
from genseg.data.io import atomic_write, remove_stale_temporaries
from genseg.errors import ConfigError, UserError
from genseg.evaluation import choose_postprocessing
from genseg.locks import owned
from genseg.methods import create_method
from genseg.methods.base import Method, TrainingContext
from genseg.methods.options import GenSegOptions, SyntheticPairOptions
from genseg.optim import build_optimizer, build_schedule
from genseg.run_data import RunData, load_run_data, planned, read_run_plan, start_run
from genseg.runs import RunPaths, adopt_pretrained_generator, load_config, save_config
from genseg.runtime import resolve_device, seed_everything
from genseg.segmenters import segmenter_from_config
from genseg.stepper import SegmenterStepper
from genseg.validation import ValidationSet, validate

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished run reports (also written to ``result.json``); peak_mb is the process's peak RSS."""

    run_dir: Path
    best_iteration: int
    best_val_loss: float
    best_val_dice: float
    seconds: float
    peak_mb: float

    @classmethod
    def read(cls, paths: RunPaths) -> TrainResult:
        """The result a finished run wrote to its ``result.json``."""
        saved = json.loads(paths.result.read_text())
        return cls(paths.root, *(saved[f.name] for f in fields(cls)[1:]))


@dataclass
class TrainingHooks:
    """Ways into the loop that leave it as it is: for notebooks, tools and tests.

    Args:
        after_iteration: called with the number of iterations done and the method after each
            iteration, its validation and checkpoint; it may record, plot or stop the run (an
            exception ends it as a kill would, ``last.pt`` left to resume from).
        score: the validation scores of the evaluated segmenter (``val_loss``, ``val_dice``).
    """

    after_iteration: Callable[[int, Method], None] | None = None
    score: Callable[[nn.Module, ValidationSet], dict[str, float]] = validate


def resume_config(run_dir: Path, config: RunConfig) -> RunConfig:
    """The config a resumed run continues with: the saved one, extended if ``config`` asks for more iterations.

    Raises:
        ValueError: ``config`` differs from the saved one in anything else, or asks for fewer
            iterations than the run already has.
    """
    paths = RunPaths(Path(run_dir))
    saved, plan = load_config(paths), read_run_plan(paths)
    if plan is not None:  # what the config leaves to the plan was decided when the run started
        config = planned(config, plan)
    # what is still left open resumes as it started (so do runs from before plan.json held the run's plan)
    if config.data.size is None:
        config = replace(config, data=replace(config.data, size=saved.data.size))
    if config.data.dims is None:
        config = replace(config, data=replace(config.data, dims=saved.data.dims))
    if config.data.axis is None:
        config = replace(config, data=replace(config.data, axis=saved.data.axis))
    if config.train.batch_size is None:
        config = replace(config, train=replace(config.train, batch_size=saved.train.batch_size))
    if config.generator.name == AUTO:
        config = replace(config, generator=saved.generator)
    wanted, stored = config.to_dict(), saved.to_dict()
    changed = [f"{section}.{key} ({stored[section].get(key)!r} -> {value!r})"
               for section, values in wanted.items() for key, value in values.items()
               if stored[section].get(key) != value and (section, key) != ("train", "iterations")]
    if changed:
        raise ConfigError(f"{run_dir} was trained with other settings: {', '.join(changed)}; resume it with its "
                         "own settings (only a larger --iterations may change) or train a new run (another --out)")
    if config.train.iterations < saved.train.iterations:
        raise ConfigError(f"{run_dir} is a run of {saved.train.iterations} iterations; --iterations can only "
                         f"extend it, got {config.train.iterations}")
    return replace(saved, train=replace(saved.train, iterations=config.train.iterations))


def train(config: RunConfig, out: Path, *, resume: bool = False, progress: bool = True,
          pretrained_generator: Path | None = None, tensorboard: bool = False,
          hooks: TrainingHooks | None = None) -> TrainResult:
    """Train a segmenter with ``config.method.name`` and write the run folder ``out``.

    Args:
        config: the run configuration; on resume it must be the saved one, except for a larger
            ``train.iterations``, which extends the run (see :func:`resume_config`).
        out: the run folder.
        resume: continue from ``out/last.pt`` if it exists.
        progress: show a progress bar.
        pretrained_generator: a ``pretrain.pt`` (or a run folder with one) of a run with the same
            data, budget, seed and generator settings, used instead of pre-training again.
        tensorboard: also log every validation row to ``out/tensorboard`` (needs the
            ``tensorboard`` extra: ``pip install genseg[tensorboard]``).
        hooks: what to call after each iteration, and how to score validation (default: none, and
            :func:`~genseg.validation.validate`).

    Returns:
        The best-validation iteration and scores, wall time and peak memory.

    Example:
        >>> from genseg import RunConfig, DataConfig, train
        >>> cfg = RunConfig(data=DataConfig(root=Path("data/lungs"), budget=9))
        >>> train(cfg, Path("runs/lungs"))  # doctest: +SKIP
    """
    paths = RunPaths(Path(out))
    check_run_folder(paths, resume)
    resolve_device(config.train.device)  # a device that is not there stops here, before anything is written
    with owned(paths.root, LOCK, f"{paths.root} is being trained by another process; wait for it to end or "
                                 "choose another --out"):
        try:
            return _train(config, paths, resume, progress, pretrained_generator, tensorboard, hooks or TrainingHooks())
        except UserError as error:
            log.error("the run stopped: %s", error)
            raise
        except Exception:
            log.exception("the run stopped on an unexpected error, a bug in genseg; its traceback:")
            raise


LOCK = ".train.lock"
"""The lock file of a run folder being trained (:func:`genseg.locks.owned`)."""


def check_run_folder(paths: RunPaths, resume: bool) -> None:
    """Refuse a folder that holds someone else's files, or a run that is not to be resumed.

    Raises:
        FileExistsError: a run is there and ``resume`` is off, or the folder holds files but no run.
    """
    if not resume and paths.last.is_file():
        raise FileExistsError(f"{paths.root} already holds a run; pass --resume to continue it or choose another --out")
    if paths.root.is_dir() and not paths.config.is_file():
        foreign = sorted(path.name for path in paths.root.iterdir() if path.name != LOCK)
        if foreign:
            raise FileExistsError(f"{paths.root} holds files but is not a genseg run folder (e.g. {foreign[0]}); "
                                  "choose an empty or new --out, so nothing of yours is overwritten")


def _train(config: RunConfig, paths: RunPaths, resume: bool, progress: bool, pretrained_generator: Path | None,
           tensorboard: bool, hooks: TrainingHooks) -> TrainResult:
    """:func:`train`, in the folder it holds: the loop, between :func:`_start` and :func:`_finish`."""
    config, data, context, method, schedule, kept, state = _start(config, paths, resume, progress,
                                                                  pretrained_generator)
    total = config.train.iterations
    started = time.perf_counter() - state["seconds"]
    method.prepare(paths.root)
    board = tensorboard_writer(paths.root / "tensorboard") if tensorboard else None
    history = History(paths.history, state["history"], board)
    bar = tqdm(range(state["iteration"], total), initial=state["iteration"], total=total,
               disable=not progress, desc=config.method.name, dynamic_ncols=True)
    running: dict[str, list[float]] = defaultdict(list)  # step scalars since the last validation
    for iteration in bar:
        scalars = method.step(iteration)
        if not math.isfinite(scalars["loss"]):  # nothing after this step could be trusted: stop, loudly
            raise ConfigError(f"the training loss became {scalars['loss']} at iteration {iteration + 1}; the run "
                             f"stopped (its last good checkpoint is {paths.last}): lower --lr, or check the images "
                             "for extreme values")
        for name, value in scalars.items():
            running[name].append(value)
        schedule.step()
        done = iteration + 1
        kept.after_step(done)
        if done % config.train.val_every == 0 or done == total:
            scores = hooks.score(kept.evaluated, context.validation)
            means = {name: float(np.mean(values)) for name, values in running.items()}
            running.clear()
            state["best"] = kept.validated(done, scores, state["best"])
            history.record({"iteration": done, "train_loss": means.pop("loss"), **scores, **means})
            bar.set_postfix(loss=f"{history.rows[-1]['train_loss']:.3f}", val_dice=f"{scores['val_dice']:.3f}")
        if done % config.train.checkpoint_every == 0 or done == total:
            state["iteration"], state["seconds"] = done, time.perf_counter() - started
            save_atomic(_snapshot(state, context, method, schedule, kept), paths.last)
        if hooks.after_iteration is not None:
            hooks.after_iteration(done, method)
    seconds = time.perf_counter() - started
    kept.finish(state["history"][-1] if state["history"] else {}, context.batches, hooks.score, context.validation)
    return _finish(paths, state, seconds)


def _start(config: RunConfig, paths: RunPaths, resume: bool, progress: bool, pretrained_generator: Path | None
           ) -> tuple[RunConfig, RunData, TrainingContext, Method, LRScheduler, KeptWeights, dict[str, Any]]:
    """The run's folder, config, data and collaborators, restored from last.pt when resumed."""
    paths.root.mkdir(parents=True, exist_ok=True)
    stale = remove_stale_temporaries(paths.root)  # left by a process killed mid-write: this one owns the folder
    _log_to_file(paths.log)
    if stale:
        log.info("removed %d temporary files a killed process left in %s", len(stale), paths.root)
    if resume and not paths.last.is_file():
        log.warning("%s has no last.pt to resume from: the run starts over from iteration 0", paths.root)
    seed_everything(config.train.seed)
    if resume and paths.config.is_file():
        config = resume_config(paths.root, config)
    if resume and paths.config.is_file() and paths.last.is_file():
        save_config(config, paths)
        data = load_run_data(config, paths, read_run_plan(paths))
    else:  # a new run, or one with nothing to resume (its folder's plan.json, if any, is taken)
        config, data = start_run(config, paths)
    if pretrained_generator is not None:
        adopt_pretrained_generator(pretrained_generator, config, paths)
    device = resolve_device(config.train.device)
    context = build_context(config, data, device, progress)
    method = create_method(config.method.name, context)
    schedule = build_schedule(context.stepper.optimizer, config.train)
    kept = KeptWeights(paths, config, data, context.stepper.segmenter, method)
    state: dict[str, Any] = {"iteration": 0, "best": {"val_loss": float("inf"), "val_dice": -1.0, "iteration": 0},
                             "history": [], "seconds": 0.0}
    if resume and paths.last.is_file():
        paths.result.unlink(missing_ok=True)  # a run extended to more iterations is unfinished until it ends again
        state = _restore(load_checkpoint(paths.last), context, method, schedule, kept)
        log.info("resumed %s at iteration %d", paths.root, state["iteration"])
    log.info("%s: %s on %d train + %d val pairs, %d classes, %s", paths.root, config.method.name,
             len(data.train_ids), len(data.val_ids), data.num_classes, config.segmenter.name)
    return config, data, context, method, schedule, kept, state


def _finish(paths: RunPaths, state: dict[str, Any], seconds: float) -> TrainResult:
    """The run's last steps once its weights are kept: the final-dip warning, the post-processing
    choice on the validation cases, and result.json, the mark of a finished run."""
    _warn_if_final_dips(state["history"], paths.root)
    choose_postprocessing(paths.root)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best = state["best"]
    log.info("done in %.0f s; best val_loss %.4f (dice %.4f) at iteration %d", seconds,
             best["val_loss"], best["val_dice"], best["iteration"])
    result = TrainResult(paths.root, best["iteration"], best["val_loss"], best["val_dice"], seconds, peak_mb)
    text = json.dumps({**asdict(result), "run_dir": str(paths.root)}, indent=2) + "\n"
    atomic_write(paths.result, lambda temp: temp.write_text(text))  # the mark of a finished run: whole or absent
    return result


DIP = 0.05
"""How far below its run's median validation Dice (after the first third) a validation must fall to be a dip."""


def validation_dips(iterations: list[int], dice: list[float]) -> tuple[list[int], int]:
    """The validations after the first third of a run whose Dice is more than :data:`DIP` below the
    median over that stretch, and how many validations the stretch has.

    At a constant learning rate a run has short loss spikes; a run stopped inside one (its final
    checkpoint) can score far below its best (JSRT 3 ``separate``, docs/benchmarks.md).
    """
    points = [(i, d) for i, d in zip(iterations, dice) if i > iterations[-1] / 3] if iterations else []
    if not points:
        return [], 0
    middle = float(np.median([d for _, d in points]))
    return [i for i, d in points if d < middle - DIP], len(points)


def _warn_if_final_dips(history: list[dict[str, float]], run: Path) -> None:
    iterations, dice = [int(row["iteration"]) for row in history], [row["val_dice"] for row in history]
    dips, _ = validation_dips(iterations, dice)
    if dips and dips[-1] == iterations[-1]:
        log.warning("%s: the final checkpoint's validation Dice (%.3f) is more than %.2f below the run's median "
                    "since its first third: the last steps hit a loss spike; do not use final.pt (genseg predict "
                    "takes averaged.pt, else best.pt; genseg evaluate scores each)", run, dice[-1], DIP)


def build_context(config: RunConfig, data: RunData, device: torch.device, progress: bool) -> TrainingContext:
    """What a run's method works with, on ``device``: a new segmenter, seeded batches, the validation pairs.

    Raises:
        ConfigError: the config leaves the batch size to the plan (:func:`genseg.run_data.start_run` plans it).
    """
    if config.train.batch_size is None:
        raise ConfigError("the batch size is left to the plan: start the run (genseg train) or set train.batch_size")
    segmenter = segmenter_from_config(config.segmenter, data.in_channels, data.num_classes,
                                      spatial_dims=data.dims).to(device)
    recipe, settings = config.train, config.method.settings
    pairs = settings if isinstance(settings, SyntheticPairOptions) else SyntheticPairOptions()  # unused if no pairs
    views = settings.val_views if isinstance(settings, GenSegOptions) else 1
    return TrainingContext(
        config=config,
        batches=Batches.seeded(data.train.to(device), data.num_classes, seed=recipe.seed, batch_size=recipe.batch_size,
                               sampling=recipe.sampling, augmentation=recipe.augmentation,
                               unlabeled=data.unlabeled.to(device) if data.unlabeled is not None else None,
                               synthetic=pairs.synthetic_batch_size,
                               patch=config.data.patch if config.data.dims == 3 else None),
        stepper=SegmenterStepper(segmenter, build_optimizer(segmenter.parameters(), recipe), gamma=pairs.gamma),
        validation=ValidationSet.build(data.val.to(device), data.num_classes, views),
        device=device,
        progress=progress,
    )


def _snapshot(state: dict[str, Any], context: TrainingContext, method: Method, schedule: LRScheduler,
              kept: KeptWeights) -> dict:
    """last.pt: the loop's state, each collaborator's, and the global random state."""
    return {
        **state,
        **context.stepper.state_dict(),
        "schedule": schedule.state_dict(),
        **context.batches.state_dict(),
        "method": method.state_dict(),
        **kept.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }


def _restore(snapshot: dict[str, Any], context: TrainingContext, method: Method, schedule: LRScheduler,
             kept: KeptWeights) -> dict:
    context.stepper.load_state_dict(snapshot)
    schedule.load_state_dict(snapshot["schedule"])
    method.load_state_dict(snapshot["method"])
    kept.load_state_dict(snapshot, snapshot["iteration"])
    context.batches.load_state_dict(snapshot)
    torch.set_rng_state(snapshot["torch_rng"])
    return {k: snapshot[k] for k in ("iteration", "best", "history", "seconds")}


def _log_to_file(path: Path) -> None:
    root = logging.getLogger("genseg")
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
