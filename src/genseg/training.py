"""The one training loop every method shares.

Config at the top, the step in plain sight (``method.step``), validation on the budget's
validation pairs only, the best checkpoint by validation Dice (or loss), the final one beside
it, and a resumable ``last.pt`` written atomically every ``checkpoint_every`` iterations.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from genseg.checkpoint import load_checkpoint, save_atomic
from genseg.config import RunConfig
from genseg.evaluation import choose_postprocessing
from genseg.methods import create_method
from genseg.methods.base import TrainingContext
from genseg.optim import build_optimizer, build_schedule
from genseg.runs import (
    RunData,
    RunPaths,
    adopt_pretrained_generator,
    load_config,
    load_run_data,
    save_config,
    start_run,
    write_csv,
)
from genseg.runtime import resolve_device, seed_everything
from genseg.sampling import BatchSampler
from genseg.segmenters import segmenter_from_config
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


def resume_config(run_dir: Path, config: RunConfig) -> RunConfig:
    """The config a resumed run continues with: the saved one, extended if ``config`` asks for more iterations.

    Raises:
        ValueError: ``config`` differs from the saved one in anything else, or asks for fewer
            iterations than the run already has.
    """
    saved = load_config(RunPaths(Path(run_dir)))
    if config.data.size is None:  # a planned size was resolved when the run started
        config = replace(config, data=replace(config.data, size=saved.data.size))
    wanted, stored = config.to_dict(), saved.to_dict()
    changed = [f"{section}.{key} ({stored[section].get(key)!r} -> {value!r})"
               for section, values in wanted.items() for key, value in values.items()
               if stored[section].get(key) != value and (section, key) != ("train", "iterations")]
    if changed:
        raise ValueError(f"{run_dir} was trained with other settings: {', '.join(changed)}; resume it with its "
                         "own settings (only a larger --iterations may change) or train a new run (another --out)")
    if config.train.iterations < saved.train.iterations:
        raise ValueError(f"{run_dir} is a run of {saved.train.iterations} iterations; --iterations can only "
                         f"extend it, got {config.train.iterations}")
    return replace(saved, train=replace(saved.train, iterations=config.train.iterations))


def train(config: RunConfig, out: Path, *, resume: bool = False, progress: bool = True,
          pretrained_generator: Path | None = None, tensorboard: bool = False) -> TrainResult:
    """Train a segmenter with ``config.train.method`` and write the run folder ``out``.

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

    Returns:
        The best-validation iteration and scores, wall time and peak memory.

    Example:
        >>> from genseg import RunConfig, DataConfig, train
        >>> cfg = RunConfig(data=DataConfig(root=Path("data/lungs"), budget=9))
        >>> train(cfg, Path("runs/lungs"))  # doctest: +SKIP
    """
    paths = RunPaths(Path(out))
    if not resume and paths.last.is_file():
        raise FileExistsError(f"{paths.root} already holds a run; pass --resume to continue it or choose another --out")
    paths.root.mkdir(parents=True, exist_ok=True)
    _log_to_file(paths.log)
    seed_everything(config.train.seed)
    if resume and paths.config.is_file():
        config = resume_config(paths.root, config)
        save_config(config, paths)
        data = load_run_data(config, paths)
    else:
        config, data = start_run(config, paths)
    if pretrained_generator is not None:
        adopt_pretrained_generator(pretrained_generator, config, paths)
    device = resolve_device(config.train.device)
    context = build_context(config, data, device, progress)
    method = create_method(config.train.method, context)
    schedule = build_schedule(context.optimizer, config.train)
    ema = _ema(context.segmenter, config.train.ema_decay)
    state: dict[str, Any] = {"iteration": 0, "best": {"val_loss": float("inf"), "val_dice": -1.0, "iteration": 0},
                             "history": [], "seconds": 0.0}
    if resume and paths.last.is_file():
        state = _restore(load_checkpoint(paths.last), context, method, schedule, ema)
        log.info("resumed %s at iteration %d", paths.root, state["iteration"])
    log.info("%s: %s on %d train + %d val pairs, %d classes, %s", paths.root, config.train.method,
             len(data.train_ids), len(data.val_ids), data.num_classes, config.segmenter.name)
    started = time.perf_counter() - state["seconds"]
    method.prepare(paths.root)
    evaluated = ema.module if ema is not None else context.segmenter

    def weights(iteration: int, scores: dict[str, Any]) -> dict[str, Any]:
        """What best.pt and final.pt hold: the evaluated segmenter, what loading it needs, its scores."""
        return {"num_classes": data.num_classes, "in_channels": data.in_channels, "config": config.to_dict(),
                "train_ids": data.train_ids, "val_ids": data.val_ids, **method.exported_weights(),
                "segmenter": evaluated.state_dict(), "iteration": iteration,
                "val_loss": scores.get("val_loss"), "val_dice": scores.get("val_dice")}

    total = config.train.iterations
    bar = tqdm(range(state["iteration"], total), initial=state["iteration"], total=total,
               disable=not progress, desc=config.train.method, dynamic_ncols=True)
    running: dict[str, list[float]] = defaultdict(list)  # step scalars since the last validation
    board = _tensorboard(paths.root / "tensorboard") if tensorboard else None
    for iteration in bar:
        for name, value in method.step(iteration).items():
            running[name].append(value)
        schedule.step()
        if ema is not None:
            ema.update_parameters(context.segmenter)
        done = iteration + 1
        if done % config.train.val_every == 0 or done == total:
            scores = validate(evaluated, context.validation)
            means = {name: float(np.mean(values)) for name, values in running.items()}
            row = {"iteration": done, "train_loss": means.pop("loss"), **scores, **means}
            running.clear()
            state["history"].append(row)
            if improves(scores, state["best"], config.train.select):
                state["best"] = {**scores, "iteration": done}
                save_atomic(weights(done, scores), paths.weights("best"))
            write_csv(state["history"], paths.history)
            if board is not None:
                for name, value in row.items():
                    if name != "iteration":
                        board.add_scalar(name, value, done)
                board.flush()
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_dice=f"{scores['val_dice']:.3f}")
            log.info("iter %d %s", done, " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "iteration"))
        if done % config.train.checkpoint_every == 0 or done == total:
            state["iteration"] = done
            state["seconds"] = time.perf_counter() - started
            save_atomic(_snapshot(state, context, method, schedule, ema), paths.last)
    seconds = time.perf_counter() - started
    save_atomic(weights(total, state["history"][-1] if state["history"] else {}), paths.weights("final"))
    choose_postprocessing(paths.root)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best = state["best"]
    log.info("done in %.0f s; best val_loss %.4f (dice %.4f) at iteration %d", seconds,
             best["val_loss"], best["val_dice"], best["iteration"])
    result = TrainResult(paths.root, best["iteration"], best["val_loss"], best["val_dice"], seconds, peak_mb)
    paths.result.write_text(json.dumps({**asdict(result), "run_dir": str(paths.root)}, indent=2) + "\n")
    return result


def improves(scores: dict[str, float], best: dict[str, float], select: str) -> bool:
    """Whether a validation beats the best so far: by Dice (ties to the lower loss) or by loss."""
    if select == "loss" or scores["val_dice"] == best["val_dice"]:
        return scores["val_loss"] < best["val_loss"]
    return scores["val_dice"] > best["val_dice"]


def build_context(config: RunConfig, data: RunData, device: torch.device, progress: bool) -> TrainingContext:
    segmenter = segmenter_from_config(config.segmenter, data.in_channels, data.num_classes).to(device)
    rng = torch.Generator().manual_seed(config.train.seed)
    return TrainingContext(
        config=config,
        segmenter=segmenter,
        optimizer=build_optimizer(segmenter.parameters(), config.train),
        train=data.train.to(device),
        validation=ValidationSet.build(data.val.to(device), data.num_classes, config.mlo.val_views),
        num_classes=data.num_classes,
        rng=rng,
        sampler=BatchSampler(rng, config.train.batch_size, config.train.sampling),
        device=device,
        progress=progress,
        unlabeled=data.unlabeled.to(device) if data.unlabeled is not None else None,
    )


def _ema(model: nn.Module, decay: float) -> AveragedModel | None:
    if decay == 0.0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _snapshot(state: dict[str, Any], context: TrainingContext, method: Any, schedule: LRScheduler,
              ema: AveragedModel | None) -> dict:
    return {
        **state,
        "segmenter": context.segmenter.state_dict(),
        "optimizer": context.optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "sampler": context.sampler.state_dict(),
        "method": method.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "rng": context.rng.get_state(),
        "torch_rng": torch.get_rng_state(),
    }


def _restore(snapshot: dict[str, Any], context: TrainingContext, method: Any, schedule: LRScheduler,
             ema: AveragedModel | None) -> dict:
    context.segmenter.load_state_dict(snapshot["segmenter"])
    context.optimizer.load_state_dict(snapshot["optimizer"])
    schedule.load_state_dict(snapshot["schedule"])
    context.sampler.load_state_dict(snapshot["sampler"])
    method.load_state_dict(snapshot["method"])
    if ema is not None and snapshot["ema"] is not None:
        ema.load_state_dict(snapshot["ema"])
    context.rng.set_state(snapshot["rng"])
    torch.set_rng_state(snapshot["torch_rng"])
    return {k: snapshot[k] for k in ("iteration", "best", "history", "seconds")}


def _tensorboard(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ValueError("TensorBoard logging needs the tensorboard package: "
                         "pip install 'genseg[tensorboard]'") from None
    return SummaryWriter(str(folder))


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
