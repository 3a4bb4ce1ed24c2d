#!/usr/bin/env bash
# Issue 7's GPU measurements (the issue's figures are from an H100), in stages that each fit one 10-minute command of a lent GPU machine.
# Run from the repository root, one stage per call, in this order:
#
#   bash benchmarks/gpu_session.sh check      # compiled == eager on CUDA? (first: a native crash shows here)
#   bash benchmarks/gpu_session.sh search     # search-first, search-second: plain, fused, compiled
#   bash benchmarks/gpu_session.sh rest       # search-pc-darts, search-dnas, train-darts-v2: plain, fused, compiled
#   bash benchmarks/gpu_session.sh variants   # CUDA graphs, bf16, channels_last, grouped / matmul 1x1 convs
#   bash benchmarks/gpu_session.sh profile    # operator and kernel counts, GPU time per operator family
#
# Records go to benchmarks/results/ (one JSON file per variant, see benchmarks/README.md); each stage's
# output is also written to $OUT/<stage>.log and the results folder copied to $OUT/results when $OUT
# is set (the device tool returns $OUT). Each command has its own timeout, so one slow compile does
# not cost the stage's other figures.
set -uo pipefail
cd "$(dirname "$0")/.."
stage="${1:?stage: check | search | rest | variants | profile}"
out="${OUT:-}"
log() { if [ -n "$out" ]; then tee -a "$out/$stage.log"; else cat; fi; }
run() {   # run SECONDS COMMAND...: one measurement, its exit status reported, never fatal
    local limit="$1"; shift
    echo "\$ $*" | log
    timeout "$limit" "$@" 2>&1 | log
    echo "exit ${PIPESTATUS[0]}" | log
}

case "$stage" in check|search|rest|variants|profile) ;; *) echo "unknown stage $stage" >&2; exit 2 ;; esac
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" 2>&1 | tail -1 | log
# the variants' result files are named after the GPU, as bench.py names its default one
dev=$(python -c "import sys, torch; sys.path.insert(0, 'benchmarks'); import bench; print(bench.slug(bench.device_name(torch.device('cuda'))))" 2>/dev/null || echo cuda)
case "$stage" in
    check)
        run 540 python benchmarks/check_compiled.py --device cuda ;;
    search)
        run 280 python benchmarks/bench.py --device cuda --workloads search-first
        run 280 python benchmarks/bench.py --device cuda --workloads search-second ;;
    rest)
        run 200 python benchmarks/bench.py --device cuda --workloads search-pc-darts
        run 180 python benchmarks/bench.py --device cuda --workloads search-dnas
        run 180 python benchmarks/bench.py --device cuda --workloads train-darts-v2 ;;
    variants)
        r=benchmarks/results
        DIFFNAS_COMPILE_MODE=reduce-overhead run 200 python benchmarks/bench.py --device cuda --paths compiled \
            --workloads search-first train-darts-v2 --out $r/$dev-cudagraphs.json
        run 150 python benchmarks/bench.py --device cuda --precision bf16 --paths fused \
            --workloads search-first train-darts-v2 --out $r/$dev-bf16.json
        run 100 python benchmarks/bench.py --device cuda --memory-format channels_last --paths plain fused \
            --workloads search-first --out $r/$dev-channels-last.json
        for pw in grouped matmul; do
            DIFFNAS_POINTWISE=$pw run 60 python benchmarks/bench.py --device cuda --paths fused \
                --workloads search-first --out $r/$dev-pointwise-$pw.json
        done ;;
    profile)
        run 540 python benchmarks/profile_step.py --device cuda --paper ;;
esac
if [ -n "$out" ]; then cp -r benchmarks/results "$out/results"; fi
