#!/usr/bin/env bash
# The converged protocol's rows that the 2 CPU cores cannot run, on a lent GPU machine (one H200,
# 16 cores), in one device call of at most 10 minutes:
#   DRIVE 5 at its planned 512 px: augment, separate, genseg, seeds 0-2 (first: CPU cannot);
#   then JSRT 3 seed 2 and JSRT 9 seeds 0-2, separate and genseg.
# Runs already in the published runs.csv are skipped. What finished comes back in $OUT: runs.csv,
# cases.csv, table.md, machine.json, the log and DRIVE's curves (copy the first two over
# docs/benchmarks/converged/, then regenerate the table there). Stage first (benchmarks/gpu/stage.sh), then:
#   run(command="bash benchmarks/gpu/run.sh", carry=[".gpu"], timeout_s=600)
# LIMIT (seconds, default 480) bounds the benchmark so that the results are copied back in time;
# DEVICE, WORKERS and EXTRA (more benchmark options) make a short dry run on the CPU possible.
set -uo pipefail
cd "$(dirname "$0")/../.."
if ! python3 -c "import monai, kornia, nibabel, segmentation_models_pytorch" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl || exit 1
fi
export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1
out=/tmp/converged
mkdir -p "$out" && cp .gpu/runs.csv .gpu/cases.csv "$out/"
nvidia-smi -L || true
[ -d benchmarks/results/shifted/jsrt_lung-xray ] || python3 benchmarks/shift.py --data .gpu/datasets/jsrt_lung --split .gpu/splits/jsrt_lung.json --shift xray \
    --out benchmarks/results/shifted/jsrt_lung-xray
timeout "${LIMIT:-480}" python3 -m genseg.cli benchmark --config benchmarks/converged.toml \
    --data-root .gpu/datasets --splits-root .gpu/splits --out "$out" --device "${DEVICE:-cuda}" --workers "${WORKERS:-8}" --threads 2 \
    --datasets drive,jsrt_lung --methods augment,separate,genseg ${EXTRA:-} 2>&1 | tee "$OUT/benchmark.log"
cp "$out"/runs.csv "$out"/cases.csv "$out"/table.md "$out"/machine.json "$OUT/"
runs=("$out"/runs/drive-n5-*/)
[ -e "${runs[0]}" ] && python3 benchmarks/curves.py "$OUT/curves_drive5.png" "${runs[@]}" > "$OUT/curves.txt" 2>&1
exit 0
