#!/usr/bin/env bash
# `make demo`: experiment 0 on CPU from a fresh checkout (after `make install`).
#   1. the synthetic data set and its converters (skipped when already converted);
#   2. experiment 0: its warm start first (a tiny segmentor trained on the SYNTHIA-like set, the
#      stand-in for ImageNet weights; every core, once for all seeds), then source-only vs
#      DAFormer-style UDA vs UDA+BLV vs UDA+LA from it (finished runs are skipped),
#      DEMO_PARALLEL runs at once (default: one per core), each on one CPU thread;
#   3. the analysis table with paired intervals, results.json and the Figure 3 plot.
# DEMO_SEEDS (default 0) chooses the seeds; `make demo-full` runs 0,1,2, which the paired
# intervals need (docs/measurements.md has the times).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
DATA=${DEMO_DATA:-data/synthetic}
SEEDS=${DEMO_SEEDS:-0}
PARALLEL=${DEMO_PARALLEL:-$(nproc)}
WORK=${DEMO_WORK:-work_dirs/exp0}
START=$(date +%s)

step() { echo; echo "=== [$(($(date +%s) - START)) s] $*"; }

step "1/3 synthetic data in $DATA"
if [ -f "$DATA/gta/sample_class_stats.json" ] && [ -f "$DATA/synthia/sample_class_stats.json" ] \
    && [ -f "$DATA/cityscapes/sample_class_stats.json" ]; then
    WANT=$("$PYTHON" -c 'from mmseg_uda.datasets.synthetic import GENERATOR_VERSION as v; print(v)' 2>/dev/null)
    HAVE=$(cat "$DATA/GENERATOR_VERSION" 2>/dev/null || echo 1)
    if [ "$HAVE" != "$WANT" ]; then
        echo "error: $DATA was written by version $HAVE of the synthetic generator; this checkout's" >&2
        echo "is version $WANT. Delete it and the runs trained on it (rm -rf $DATA $WORK)," >&2
        echo "then run again to regenerate it." >&2
        exit 1
    fi
    echo "already generated and converted; delete $DATA to regenerate"
else
    "$PYTHON" tools/make_synthetic_data.py "$DATA" --seed 0 --scale small
    for dataset in gta synthia cityscapes; do
        "$PYTHON" tools/convert_datasets/$dataset.py "$DATA/$dataset" --nproc 2
    done
fi

step "2/3 experiment 0 (seeds $SEEDS; $PARALLEL runs at once): the warm start, then source-only, UDA, UDA + BLV, UDA + LA"
"$PYTHON" run_experiments.py --exp 0 --seeds "$SEEDS" --data-root "$DATA" --work-root "$WORK" \
    --parallel "$PARALLEL"

step "3/3 results"
"$PYTHON" tools/analyze_results.py "$WORK" --exp 0 --seeds "$SEEDS" \
    --json "$WORK/results.json" --plot "$WORK/figures"
step "demo finished"
