#!/usr/bin/env bash
# Stage what benchmarks/gpu/run.sh needs on a lent GPU machine that reaches nothing: the data sets
# and the benchmark splits (never committed: their terms allow no redistribution), the published
# rows (so finished runs are skipped and new ones pair with them), and wheels of the dependencies
# the machine's image lacks. Everything goes to .gpu/, which git ignores; the device call carries
# it (64 MiB at most). From the repository root, one of:
#   bash benchmarks/gpu/stage.sh            # the converged protocol's DRIVE and JSRT rows
#   CONFIG=benchmarks/volumes.toml DATASETS=msd_hippocampus METHODS=augment,augment-3d,separate-3d,genseg-3d \
#       PUBLISHED=docs/benchmarks/volumes-bench bash benchmarks/gpu/stage.sh    # the 3D rows
set -euo pipefail
cd "$(dirname "$0")/../.."
stage=.gpu
CONFIG=${CONFIG:-benchmarks/converged.toml}
DATASETS=${DATASETS:-drive,jsrt_lung}
METHODS=${METHODS:-augment,separate,genseg}
PUBLISHED=${PUBLISHED:-docs/benchmarks/converged}
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf "$stage" && mkdir -p "$stage/datasets" "$stage/whl" "$stage/published"
for dataset in ${DATASETS//,/ }; do cp -r "../shared/datasets/$dataset" "$stage/datasets/"; done
cp -r ../shared/benchmark/splits "$stage/splits"
for file in runs.csv cases.csv; do [ -f "$PUBLISHED/$file" ] && cp "$PUBLISHED/$file" "$stage/published/"; done
printf 'CONFIG=%q\nDATASETS=%q\nMETHODS=%q\n' "$CONFIG" "$DATASETS" "$METHODS" > "$stage/settings.sh"
# The image has torch, torchvision, timm, scipy, matplotlib, typer, rich, tifffile; pinned as in pyproject.toml.
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$stage/whl" monai==1.6.1 kornia==0.9.0 kornia-rs==0.2.0 nibabel==5.4.2 segmentation-models-pytorch==0.6.0
du -sh "$stage"
