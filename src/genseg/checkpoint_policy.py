"""Which weights a run keeps, and its validation record: the training loop's two collaborators.

:class:`KeptWeights` follows the segmenter through the run: its exponential moving average (if
asked for), its average over the run's last stretch (``averaged.pt``, SWA, batch-norm statistics
measured anew at the end), the best validation so far (``best.pt``) and the last weights
(``final.pt``). :class:`History` writes each validation row to ``history.csv``, the log and,
on request, TensorBoard.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from genseg.batches import Batches
from genseg.checkpoint import save_atomic
from genseg.config import RunConfig
from genseg.errors import ConfigError
from genseg.methods.base import Method
from genseg.run_data import RunData, weights_checkpoint
from genseg.runs import RunPaths, write_csv

log = logging.getLogger(__name__)

BATCH_NORM_BATCHES = 32
"""Augmented training batches over which the averaged weights' batch-norm statistics are measured."""


def improves(scores: dict[str, float], best: dict[str, float], select: str) -> bool:
    """Whether a validation beats the best so far: by Dice (ties to the lower loss) or by loss."""
    if select == "loss" or scores["val_dice"] == best["val_dice"]:
        return scores["val_loss"] < best["val_loss"]
    return scores["val_dice"] > best["val_dice"]


class KeptWeights:
    """The weights a run keeps, from its segmenter and its method.

    Args:
        paths: the run folder.
        config: the run's config (``train.ema_decay``, ``average_last``, ``select``, ``iterations``).
        data: the run's data (what a checkpoint records of it).
        segmenter: the segmenter being trained.
        method: the method (its exported weights go into every checkpoint).
    """

    def __init__(self, paths: RunPaths, config: RunConfig, data: RunData, segmenter: nn.Module,
                 method: Method) -> None:
        self.paths, self.config, self.data, self.method = paths, config, data, method
        decay = config.train.ema_decay
        self.ema = None if decay == 0.0 else AveragedModel(segmenter, multi_avg_fn=get_ema_multi_avg_fn(decay),
                                                           use_buffers=True)
        total = config.train.iterations
        self.averaging_from = total - round(total * config.train.average_last)  # iterations done before averaging
        self.averaged = AveragedModel(segmenter) if self.averaging_from < total else None
        self.segmenter = segmenter

    @property
    def evaluated(self) -> nn.Module:
        """What validation scores and best.pt and final.pt hold: the moving average, else the segmenter."""
        return self.ema.module if self.ema is not None else self.segmenter

    def after_step(self, done: int) -> None:
        """Follow the segmenter's new weights (``done`` iterations made)."""
        if self.ema is not None:
            self.ema.update_parameters(self.segmenter)
        if self.averaged is not None and done > self.averaging_from:
            self.averaged.update_parameters(self.segmenter)

    def validated(self, done: int, scores: dict[str, float], best: dict[str, Any]) -> dict[str, Any]:
        """The best validation after this one; best.pt is saved when it improves."""
        if not improves(scores, best, self.config.train.select):
            return best
        self.save("best", self.evaluated, done, scores)
        return {**scores, "iteration": done}

    def save(self, checkpoint: str, model: nn.Module, iteration: int, scores: dict[str, Any]) -> None:
        """best.pt, final.pt or averaged.pt: a segmenter beside the method's exported weights."""
        weights = {**self.method.exported_weights(), "segmenter": model.state_dict()}
        save_atomic(weights_checkpoint(self.config, self.data, weights, iteration, scores),
                    self.paths.weights(checkpoint))

    def finish(self, last_scores: dict[str, Any], batches: Batches, score: Any, validation: Any) -> None:
        """final.pt, and averaged.pt with its batch-norm statistics measured anew (the averaged
        weights never ran a batch)."""
        total = self.config.train.iterations
        self.save("final", self.evaluated, total, last_scores)
        if self.averaged is not None and int(self.averaged.n_averaged) > 0:
            update_bn((batches.augmented()[0] for _ in range(BATCH_NORM_BATCHES)), self.averaged.module)
            self.save("averaged", self.averaged.module, total, score(self.averaged.module, validation))

    def state_dict(self) -> dict[str, Any]:
        """What last.pt keeps of them (the best validation is the loop's)."""
        return {"ema": self.ema.state_dict() if self.ema is not None else None,
                **({"averaged": {"from": self.averaging_from, "state": self.averaged.state_dict()}}
                   if self.averaged is not None else {})}

    def load_state_dict(self, snapshot: dict[str, Any], done: int) -> None:
        if self.ema is not None and snapshot["ema"] is not None:
            self.ema.load_state_dict(snapshot["ema"])
        if self.averaged is None:
            return
        saved = snapshot.get("averaged")
        if saved is not None and saved["from"] == self.averaging_from:
            self.averaged.load_state_dict(saved["state"])
        elif done > self.averaging_from:  # the run was extended: its window moved, the average restarts here
            log.warning("averaged.pt averages the weights from iteration %d, where this run resumed, not from %d: "
                        "the run was extended", done, self.averaging_from)


@dataclass
class History:
    """The validation rows of a run, written as they come."""

    path: Path
    rows: list[dict[str, float]] = field(default_factory=list)
    board: Any = None
    """A TensorBoard ``SummaryWriter``, or None."""

    def record(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        write_csv(self.rows, self.path)
        if self.board is not None:
            for name, value in row.items():
                if name != "iteration":
                    self.board.add_scalar(name, value, row["iteration"])
            self.board.flush()
        log.info("iter %d %s", row["iteration"], " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "iteration"))


def tensorboard_writer(folder: Path) -> Any:
    """A TensorBoard writer into ``folder``."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("TensorBoard logging needs the tensorboard package: "
                         "pip install 'genseg[tensorboard]'") from None
    return SummaryWriter(str(folder))
