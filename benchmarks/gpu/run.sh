#!/usr/bin/env bash
# The benchmark rows that the 2 CPU cores cannot run, on a lent GPU machine (one H100 or H200,
# 16 cores), in one device call of at most 10 minutes. What runs is what benchmarks/gpu/stage.sh
# staged (.gpu/settings.sh): by default the converged protocol's DRIVE 5 at its planned 512 px and
# JSRT separate and genseg; with CONFIG=benchmarks/volumes.toml the hippocampus in 2D and 3D with
# the 3D pix2pix. Runs already in the published rows are skipped. What finished comes back in
# $OUT: runs.csv, cases.csv, table.md, machine.json, the log and each data set's curves (copy the
# first two over the published folder, then regenerate the table there). Stage first, then:
#   run(command="bash benchmarks/gpu/run.sh", carry=[".gpu"], timeout_s=600)
# LIMIT (seconds, default 480) bounds the benchmark so that the results are copied back in time;
# DEVICE, WORKERS and EXTRA (more benchmark options) make a short dry run on the CPU possible.
set -uo pipefail
cd "$(dirname "$0")/../.."
. .gpu/settings.sh || exit 1
if ! python3 -c "import monai, kornia, nibabel, segmentation_models_pytorch" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl || exit 1
fi
export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1
out=/tmp/gpu-benchmark
mkdir -p "$out" && cp .gpu/published/*.csv "$out/" 2>/dev/null
nvidia-smi -L || true
if [[ ",$DATASETS," == *",jsrt_lung,"* ]] && [ ! -d benchmarks/results/shifted/jsrt_lung-xray ]; then
    python3 benchmarks/shift.py --data .gpu/datasets/jsrt_lung --split .gpu/splits/jsrt_lung.json --shift xray \
        --out benchmarks/results/shifted/jsrt_lung-xray
fi
timeout "${LIMIT:-480}" python3 -m genseg.cli benchmark --config "$CONFIG" \
    --data-root .gpu/datasets --splits-root .gpu/splits --out "$out" --device "${DEVICE:-cuda}" --workers "${WORKERS:-8}" --threads 2 \
    --datasets "$DATASETS" --methods "$METHODS" ${EXTRA:-} 2>&1 | tee "$OUT/benchmark.log"
cp "$out"/runs.csv "$out"/cases.csv "$out"/table.md "$out"/machine.json "$OUT/" 2>/dev/null
for dataset in ${DATASETS//,/ }; do
    runs=("$out"/runs/"$dataset"-*/)
    [ -e "${runs[0]}" ] && python3 benchmarks/curves.py "$OUT/curves_$dataset.png" "${runs[@]}" >> "$OUT/curves.txt" 2>&1
done
exit 0
