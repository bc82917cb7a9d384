"""genseg: segmentation from 9-50 labels with a generator tuned for the segmenter (GenSeg).

The public API mirrors the CLI::

    from pathlib import Path
    import genseg

    config = genseg.RunConfig(data=genseg.DataConfig(root=Path("data/lungs"), budget=9),
                              method=genseg.MethodConfig("genseg", upper="pairs"))
    genseg.train(config, Path("runs/lungs"))
    genseg.evaluate(Path("runs/lungs"), split="test")
    genseg.predict(Path("runs/lungs"), Path("new_images"), Path("predictions"))

Names are imported lazily so that ``genseg --help`` does not pay for importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "RunConfig": "genseg.config",
    "DataConfig": "genseg.config",
    "SegmenterConfig": "genseg.config",
    "GeneratorConfig": "genseg.config",
    "MethodConfig": "genseg.config",
    "TrainConfig": "genseg.config",
    "train": "genseg.training",
    "train_folds": "genseg.folds",
    "evaluate": "genseg.evaluation",
    "predict": "genseg.evaluation",
    "load_segmenter": "genseg.evaluation",
    "demo": "genseg.demo",
    "generate_pairs": "genseg.generation",
    "load_generator": "genseg.generation",
    "pretrain_generator": "genseg.generator_level",
    "BenchmarkSpec": "genseg.benchmark",
    "load_spec": "genseg.benchmark",
    "run_benchmark": "genseg.benchmark",
    "create_segmenter": "genseg.segmenters",
    "create_generator": "genseg.generators",
    "DataError": "genseg.errors",
    "ConfigError": "genseg.errors",
    "UserError": "genseg.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'genseg' has no attribute {name!r}")
