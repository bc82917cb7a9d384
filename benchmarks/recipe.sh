#!/usr/bin/env bash
# Issue 9's recipe runs, in priority order, two at once (one per core). OLD=1 first runs the pre-fix code (commit 3c4fc4f: instance norm, masks warped
# at 0.1) from a git worktree in /tmp/genseg-old, scored on the test set.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
if [ "${OLD:-0}" = 1 ]; then
    [ -d /tmp/genseg-old ] || git worktree add /tmp/genseg-old 3c4fc4f
    PYTHONPATH=/tmp/genseg-old/src python -m genseg.cli benchmark --datasets jsrt_lung --budgets 3 \
        --methods augment --seeds 0,1,2 --iterations 800 --out benchmarks/results/recipe-old --threads 1
fi
genseg benchmark --config benchmarks/recipe-confirm.toml --threads 1 --workers 2
genseg benchmark --config benchmarks/recipe.toml --threads 1 --workers 2
