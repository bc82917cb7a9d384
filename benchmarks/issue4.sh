#!/usr/bin/env bash
# The runs of issue 4 (benchmarks/issue4.toml) in priority order, from the repository root:
#
#     OMP_NUM_THREADS=1 bash benchmarks/issue4.sh
#
# Each line is one `genseg benchmark` over part of the plan, two runs at once; runs already in
# runs.csv are skipped and a killed benchmark resumes where it stopped. The headline budgets (FUSeg 10, JSRT 3) come first with
# three seeds, then seed 0 of everything else, then the remaining seeds.
set -u
# The simulated out-of-domain sets that the plan's [ood] table names (written once; kept after).
python benchmarks/shift.py --data ../shared/datasets/jsrt_lung --split ../shared/benchmark/splits/jsrt_lung.json \
    --shift xray --out benchmarks/results/shifted/jsrt_lung-xray
python benchmarks/shift.py --data ../shared/datasets/fuseg --split ../shared/benchmark/splits/fuseg.json \
    --shift photo --out benchmarks/results/shifted/fuseg-photo
bench="genseg benchmark --config benchmarks/issue4.toml --threads 1 --workers 2"
$bench --datasets fuseg --budgets 10
$bench --datasets jsrt_lung --budgets 3
$bench --datasets drive --seeds 0
$bench --datasets msd_hippocampus --seeds 0
$bench --datasets fuseg --budgets 10 --methods augment,genseg --seeds 0 --segmenter deeplabv3plus
$bench --datasets fuseg --budgets 10 --methods augment,genseg --seeds 0 --segmenter segformer
$bench --datasets fuseg --budgets 50,200 --seeds 0
$bench --datasets jsrt_lung --budgets 150 --seeds 0
$bench  # the rest: remaining seeds, the reference budgets, out-of-domain evaluation of finished runs
# The model-agnostic pairs on the other seeds.
$bench --datasets fuseg --budgets 10 --methods augment,genseg --segmenter deeplabv3plus
$bench --datasets fuseg --budgets 10 --methods augment,genseg --segmenter segformer
