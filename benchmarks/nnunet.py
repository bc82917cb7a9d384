"""nnU-Net v2 on a genseg benchmark split: the reference a user would pick instead (BENCHMARK.md).

nnU-Net lives in a virtual environment of its own, never among genseg's dependencies::

    python3 -m venv ../nnunet-venv && ../nnunet-venv/bin/pip install nnunetv2==2.8.1

Then, from the repository root with genseg's environment active::

    python benchmarks/nnunet.py --dataset jsrt_lung --budget 9 --seed 0 \\
        --nnunet-bin ../nnunet-venv/bin --trainer nnUNetTrainer_5epochs --device cpu

Steps, each skipped when its output exists (a killed run goes on from the last finished step):

1. convert: the budget's training and validation ids (``pool.seed<s>``, as genseg takes them) into
   ``nnUNet_raw/Dataset<id>_<name>/`` (``imagesTr``, ``labelsTr`` with labels 0..K-1,
   ``dataset.json``), the test ids into ``imagesTs``;
2. ``nnUNetv2_plan_and_preprocess -c <configuration>``, then ``splits_final.json`` with fold 0 =
   exactly genseg's training and validation ids, so nnU-Net sees the same N labels and nothing else;
3. ``nnUNetv2_train <id> <configuration> 0 -tr <trainer>``: the default trainer (1000 epochs) on a
   GPU, a shorter variant (``nnUNetTrainer_5epochs``, ...) on a CPU, named in every result row;
4. ``nnUNetv2_predict`` of the test ids (and of each ``--ood`` folder) with the final and the best
   checkpoint;
5. scoring with genseg's own metrics against the original masks (inside ``fov/`` where present),
   rows appended to ``<out>/runs.csv`` in the benchmark's columns (method ``nnunet``, segmenter
   the trainer).

``--size N`` gives nnU-Net the 2D images at genseg's working resolution (N x N, as genseg resizes
them) instead of the native one, for a comparison on equal pixels and a CPU-sized run; the label maps
it predicts are brought back to each image's own size (one-hot, bilinear, argmax) before scoring.

``--configuration`` is nnU-Net's: ``2d`` (the default), or ``3d_fullres`` for volumes (nnU-Net
resamples them to its planned spacing and writes its predictions back in each input's geometry).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from genseg.benchmark import append_rows, summary_columns
from genseg.data import CaseIndex, budget_ids, index_cases, labels_of, load_samples, read_split
from genseg.data.io import read_label_volume, read_mask
from genseg.data.tensors import resize_labels, resize_probabilities
from genseg.evaluation import case_reference
from genseg.metrics import case_metrics, summarize
from genseg.runs import eval_name, write_csv

CHECKPOINTS = {"best": "checkpoint_best.pth", "final": "checkpoint_final.pth"}


@dataclass(frozen=True)
class Job:
    """One nnU-Net reference run: a data set's budget for one seed, and where it works."""

    dataset: str
    budget: int
    seed: int
    n_val: int
    data_root: Path
    splits_root: Path
    work: Path
    trainer: str
    size: int | None = None
    configuration: str = "2d"

    @property
    def dataset_id(self) -> int:
        """A stable nnU-Net dataset id (500-899) for this data set, budget and seed."""
        at = f"-{self.size}" if self.size else ""
        return 500 + zlib.crc32(f"{self.dataset}-{self.budget}-{self.seed}{at}".encode()) % 400

    @property
    def name(self) -> str:
        at = f"px{self.size}" if self.size else ""
        return f"Dataset{self.dataset_id:03d}_{self.dataset}n{self.budget}s{self.seed}{at}"

    @property
    def raw(self) -> Path:
        return self.work / "nnUNet_raw" / self.name

    @property
    def preprocessed(self) -> Path:
        return self.work / "nnUNet_preprocessed" / self.name

    @property
    def results(self) -> Path:
        plans = f"{self.trainer}__nnUNetPlans__{self.configuration}"
        return self.work / "nnUNet_results" / self.name / plans / "fold_0"

    def env(self) -> dict[str, str]:
        folders = {key: str(self.work / key) for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
        return {**os.environ, **folders}


def budget_of(job: Job) -> tuple[CaseIndex, list[str], list[str], list[str]]:
    """The data folder's index, and genseg's training, validation and test ids for the job."""
    index = index_cases(job.data_root / job.dataset)
    split = read_split(job.splits_root / f"{job.dataset}.json")
    train_ids, val_ids = budget_ids(split, job.seed, job.budget - job.n_val, job.n_val)
    return index, train_ids, val_ids, split.test


def convert(job: Job) -> None:
    """Write the nnU-Net raw data set (step 1): budget cases with labels, test images alone."""
    if (job.raw / "dataset.json").is_file():
        return
    index, train_ids, val_ids, test_ids = budget_of(job)
    partial = job.raw.with_name(job.raw.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    labeled = train_ids + val_ids
    for case_id in labeled:
        _write_case(index, case_id, partial / "imagesTr", partial / "labelsTr", job.size)
    for case_id in test_ids:
        _write_case(index, case_id, partial / "imagesTs", None, job.size)
    samples = load_samples(index, labeled[:1])
    classes = labels_of(index, labeled).num_classes
    channels = samples[0].image.shape[0]
    names = {value: key for key, value in index.labels.items()}
    metadata = {
        "channel_names": {str(c): name for c, name in enumerate(["R", "G", "B"] if channels == 3 else
                                                                 [f"channel{c}" for c in range(channels)])},
        "labels": {"background": 0, **{names.get(c, f"class{c}"): c for c in range(1, classes)}},
        "numTraining": len(labeled),
        "file_ending": ".nii.gz" if index.is_volume else ".png",
    }
    (partial / "dataset.json").write_text(json.dumps(metadata, indent=2) + "\n")
    if job.raw.exists():
        shutil.rmtree(job.raw)
    partial.rename(job.raw)


def _write_case(index: CaseIndex, case_id: str, images: Path, labels: Path | None, size: int | None = None) -> None:
    """Copy a case's image as ``<id>_0000`` and write its labels as 0..K-1 (nnU-Net's naming),
    resized to ``size`` x ``size`` when given (2D only)."""
    case = index.cases[case_id]
    images.mkdir(parents=True, exist_ok=True)
    ending = ".nii.gz" if index.is_volume else ".png"
    if size and index.is_volume:
        raise SystemExit("error: --size applies to 2D data sets; volumes go to nnU-Net at their own spacing")
    if index.is_volume:
        shutil.copyfile(case.image_path, images / f"{case_id}_0000{ending}")
    else:  # through PIL: nnU-Net reads PNG only, and keeps an RGB file as three channels
        with Image.open(case.image_path) as image:
            image = image.convert("RGB" if image.mode in ("RGB", "RGBA", "P") else "L")
            if size:
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            image.save(images / f"{case_id}_0000.png")
    if labels is None:
        return
    labels.mkdir(parents=True, exist_ok=True)
    assert case.mask_path is not None
    if index.is_volume:
        shutil.copyfile(case.mask_path, labels / f"{case_id}{ending}")
    else:
        label_map = read_mask(case.mask_path)
        if size:  # as genseg resizes its training masks
            classes = max(int(label_map.max()) + 1, 2)
            label_map = resize_labels(torch.from_numpy(label_map), (size, size), classes).numpy()
        Image.fromarray(label_map.astype(np.uint8)).save(labels / f"{case_id}.png")


def write_splits(job: Job) -> Path:
    """Fold 0 = genseg's training and validation ids, nothing else (step 2, after preprocessing)."""
    _, train_ids, val_ids, _ = budget_of(job)
    path = job.preprocessed / "splits_final.json"
    path.write_text(json.dumps([{"train": train_ids, "val": val_ids}], indent=2) + "\n")
    return path


def score(job: Job, predictions: Path, data: Path | None = None) -> tuple[list[dict], dict]:
    """Per-case metrics of the predicted label maps against the original masks (step 5).

    Args:
        data: a folder scored whole (out-of-domain); default the job's test ids.
    """
    own, train_ids, val_ids, test_ids = budget_of(job)
    index, case_ids = (own, test_ids) if data is None else (index_cases(data), index_cases(data).ids)
    classes = labels_of(own, train_ids + val_ids).num_classes
    rows = []
    for case_id in case_ids:
        target, roi = case_reference(load_samples(index, [case_id]), axis=0)
        if index.is_volume:
            prediction = read_label_volume(predictions / f"{case_id}.nii.gz")
        else:
            prediction = to_size(read_mask(predictions / f"{case_id}.png"), target.shape[-2:], classes)
        rows.append({"case": case_id, **case_metrics(prediction, target, classes, roi=roi)})
    return rows, summarize(rows)


def to_size(label_map: np.ndarray, size_hw: tuple[int, ...], classes: int) -> np.ndarray:
    """A predicted label map at ``size_hw``: one-hot, bilinear, argmax (genseg's own way back)."""
    if tuple(label_map.shape) == tuple(size_hw):
        return label_map
    one_hot = F.one_hot(torch.from_numpy(label_map).long(), classes).permute(2, 0, 1)[None].float()
    return resize_probabilities(one_hot, (int(size_hw[0]), int(size_hw[1])))[0].argmax(0).numpy()


def training_seconds(job: Job) -> float:
    """nnU-Net's training time: the sum of the epoch times its training logs record (a resumed or
    restarted job adds up its logs, and the time spent predicting is left out)."""
    return sum(float(line.split("Epoch time:")[1].split()[0])
               for log in sorted(job.results.glob("training_log_*.txt"))
               for line in log.read_text().splitlines() if "Epoch time:" in line)


def _run(command: list[str], job: Job, log: Path, env: dict[str, str] | None = None) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env={**job.env(), **(env or {})},
                              check=False).returncode
    if code != 0:
        tail = log.read_text().strip().splitlines()[-1:] or [""]
        sys.exit(f"error: {command[0]} exited with status {code}: {tail[0]} (log: {log})")


def _planner_threads() -> dict[str, str]:
    """nnU-Net's planner passes nnUNet_n_proc_DA to torch.set_num_threads, which refuses the 0 that
    asks training for augmentation in its own process (the setting for a CPU run)."""
    return {"nnUNet_n_proc_DA": "1"} if os.environ.get("nnUNet_n_proc_DA") == "0" else {}


def train_command(job: Job, binary: Path, device: str) -> list[str]:
    """nnU-Net's training of fold 0, going on from a killed run's checkpoint (``--c``) where there is one.

    ``--c`` takes checkpoint_latest, else checkpoint_best: a short trainer (5 epochs) never reaches
    nnU-Net's save_every (50 epochs) and writes only checkpoint_best, after each epoch that improves.
    """
    saved = [job.results / name for name in ("checkpoint_latest.pth", CHECKPOINTS["best"])]
    resume = ["--c"] if any(path.is_file() for path in saved) else []
    return [str(binary / "nnUNetv2_train"), str(job.dataset_id), job.configuration, "0", "-tr", job.trainer,
            "-device", device, *resume]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--budget", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-val", type=int, default=None, help="default: genseg's (20 %%, at least 1)")
    parser.add_argument("--trainer", default="nnUNetTrainer", help="nnUNetTrainer (1000 epochs) or a shorter variant")
    parser.add_argument("--configuration", default="2d", choices=["2d", "3d_fullres"],
                        help="nnU-Net's configuration; 3d_fullres for volumes")
    parser.add_argument("--device", default="cuda", help="cuda | cpu")
    parser.add_argument("--nnunet-bin", type=Path, required=True, help="bin/ of nnU-Net's virtual environment")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/nnunet"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/nnunet"), help="runs.csv goes here")
    parser.add_argument("--data-root", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--splits-root", type=Path, default=Path("../shared/benchmark/splits"))
    parser.add_argument("--size", type=int, default=None,
                        help="give nnU-Net 2D images at N x N (genseg's working resolution); default native")
    parser.add_argument("--ood", nargs="*", default=[],
                        help="data sets scored whole: folders under --data-root (medetec) or paths")
    parser.add_argument("--checkpoints", nargs="+", default=list(CHECKPOINTS), choices=list(CHECKPOINTS),
                        help="checkpoints to predict with (on a CPU each costs about 14 s per 200-px image)")
    args = parser.parse_args()
    from genseg.config import default_n_val

    job = Job(args.dataset, args.budget, args.seed, args.n_val or default_n_val(args.budget),
              args.data_root.resolve(), args.splits_root.resolve(), args.work.resolve(), args.trainer, args.size,
              args.configuration)
    if job.configuration != "2d" and not index_cases(job.data_root / job.dataset).is_volume:
        sys.exit(f"error: {job.dataset} holds 2D images: --configuration {job.configuration} needs volumes; use 2d")
    log = job.work / "logs" / f"{job.name}-{job.trainer}-{job.configuration}.log"
    binary = args.nnunet_bin.resolve()
    convert(job)
    preprocessed = job.preprocessed / f"preprocessed-{job.configuration}.done"  # written last: a killed step reruns
    if not preprocessed.is_file():
        _run([str(binary / "nnUNetv2_plan_and_preprocess"), "-d", str(job.dataset_id), "-c", job.configuration,
              "-np", "2", "--verify_dataset_integrity"], job, log, env=_planner_threads())
        write_splits(job)
        preprocessed.touch()
    if not (job.results / CHECKPOINTS["final"]).is_file():
        _run(train_command(job, binary, args.device), job, log)
    sets = {"test": (job.raw / "imagesTs", None)}
    for other in args.ood:
        folder = (args.data_root / other).resolve()  # a folder name, or a path (an absolute one wins)
        converted = job.work / "ood" / f"{folder.name}{f'-{job.size}' if job.size else ''}" / "imagesTs"
        if not converted.is_dir():
            index = index_cases(folder)
            for case_id in index.ids:
                _write_case(index, case_id, converted, None, job.size)
        sets[eval_name("test", folder)] = (converted, folder)
    rows = []
    for eval_set, (images, folder) in sets.items():
        for checkpoint in args.checkpoints:
            filename = CHECKPOINTS[checkpoint]
            predictions = job.results / f"predictions-{eval_set}-{checkpoint}"
            if not predictions.is_dir():  # predicted into a partial folder, renamed once complete
                partial = predictions.with_name(predictions.name + ".partial")
                shutil.rmtree(partial, ignore_errors=True)
                _run([str(binary / "nnUNetv2_predict"), "-i", str(images), "-o", str(partial), "-d",
                      str(job.dataset_id), "-c", job.configuration, "-f", "0", "-tr", job.trainer, "-chk", filename,
                      "-device", args.device], job, log)
                partial.rename(predictions)
            cases, summary = score(job, predictions, folder)
            write_csv(cases, job.results / f"cases-{eval_set}-{checkpoint}.csv")
            rows.append({"dataset": job.dataset, "n_labels": job.budget, "n_train": job.budget - job.n_val,
                         "n_val": job.n_val, "method": "nnunet", "seed": job.seed,
                         "segmenter": f"{job.trainer} {job.configuration}",
                         "size": job.size or "native", "iterations": "", "checkpoint": checkpoint, "eval_set": eval_set,
                         **summary_columns(summary), "seconds": round(training_seconds(job), 1), "peak_mb": "",
                         "status": "ok", "error": ""})
            print(f"{job.name} {job.trainer} {job.configuration} {eval_set} {checkpoint}: "
                  f"Dice {summary['dice_mean']:.4f} over {summary['n_cases']} cases")
    append_rows(args.out / "runs.csv", rows)


if __name__ == "__main__":
    main()
