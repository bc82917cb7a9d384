#!/usr/bin/env bash
# Stage what benchmarks/gpu/run.sh needs on a lent GPU machine that reaches nothing: the DRIVE and
# JSRT data and the benchmark splits (never committed: their terms allow no redistribution), the
# published rows (so finished runs are skipped and new ones pair with them), and wheels of the
# dependencies the machine's image lacks. Everything goes to .gpu/, which git ignores; the device
# call carries it (64 MiB at most). From the repository root: bash benchmarks/gpu/stage.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
stage=.gpu
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf "$stage" && mkdir -p "$stage/datasets" "$stage/whl"
cp -r ../shared/datasets/drive ../shared/datasets/jsrt_lung "$stage/datasets/"
cp -r ../shared/benchmark/splits "$stage/splits"
cp docs/benchmarks/converged/runs.csv docs/benchmarks/converged/cases.csv "$stage/"
# The image has torch, torchvision, timm, scipy, matplotlib, typer, rich, tifffile; pinned as in pyproject.toml.
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$stage/whl" monai==1.6.1 kornia==0.9.0 kornia-rs==0.2.0 nibabel==5.4.2 segmentation-models-pytorch==0.6.0
du -sh "$stage"
