#!/usr/bin/env bash
# Issue 7's GPU measurements (the issue's figures are from an H100), in stages that each fit one 10-minute command of a lent GPU machine.
# The device tool now lends an H200 (the same Hopper SMs with faster, larger memory), and its records carry the
# device name. The original code would run somewhat faster there than the issue's H100 figures, so ratios
# against those figures overstate the speed-up. The closest same-machine baseline is the plain path (our
# eager per-op supernet, the original's computation without its deep copies).
# Run from the repository root. A lease of 15 minutes of device time in all (machine start included) holds
# one command of about 9 minutes: then run only
#
#   bash benchmarks/gpu_session.sh quick      # the five workloads eager (plain + fused), a profile, compiled ==
#                                             # eager on a small supernet, then compiled training and first order
#                                             # in the time left; no command runs past $BUDGET s (480)
#
# With a longer lease, one stage per call, in this order:
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
stage="${1:?stage: quick | check | search | rest | variants | profile}"
out="${OUT:-}"
log() { if [ -n "$out" ]; then tee -a "$out/$stage.log"; else cat; fi; }
budget="${BUDGET:-100000}"   # seconds after which no command starts and a running one is cut (quick: 480)
run() {   # run SECONDS COMMAND...: one measurement, its exit status reported, never fatal
    local limit="$1"; shift
    local left=$((budget - SECONDS))
    if [ "$left" -lt 20 ]; then echo "skipped (budget): $*" | log; return; fi
    if [ "$limit" -gt "$left" ]; then limit="$left"; fi
    echo "\$ $*   [limit ${limit} s, at ${SECONDS} s]" | log
    timeout "$limit" "$@" 2>&1 | log
    echo "exit ${PIPESTATUS[0]}" | log
    # results so far, at once: a command cut short by the device tool's own limit keeps what it had
    if [ -n "$out" ]; then cp -r benchmarks/results/. "$out/results/" 2>/dev/null; fi
}

case "$stage" in quick|check|search|rest|variants|profile) ;; *) echo "unknown stage $stage" >&2; exit 2 ;; esac
if [ "$stage" = quick ]; then budget="${BUDGET:-480}"; fi
if [ -n "$out" ]; then mkdir -p "$out/results"; fi
export PYTHONUNBUFFERED=1
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" 2>&1 | tail -1 | log
case "$stage" in
    quick)   # in order of what the issue's table needs most; each record is written as soon as it is measured
        d="${DEVICE:-cuda}"   # DEVICE=cpu: a dry run of this script here (small sizes)
        b="python benchmarks/bench.py --device $d --steps 10 --warmup 3"
        run 260 $b --record-timeout 120 --paths plain fused --workloads search-first search-pc-darts search-dnas train-darts-v2
        run 90 $b --record-timeout 80 --paths fused --workloads search-second
        run 60 python benchmarks/profile_step.py --device "$d" --steps 1 $([ "$d" = cpu ] || echo --paper)
        # compiled == eager on this GPU, on a small supernet (compiling the paper's takes minutes)
        run 90 python benchmarks/check_compiled.py --device "$d" --presets darts-1st dnas --steps 3 \
            --sizes '{"layers": 3, "nodes": 2}'
        run 400 $b --paths compiled --workloads train-darts-v2 search-first ;;   # whatever time is left
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
        # the variants' result files are named after the GPU, as bench.py names its default one
        dev=$(python -c "import sys, torch; sys.path.insert(0, 'benchmarks'); import bench; print(bench.slug(bench.device_name(torch.device('cuda'))))" 2>/dev/null || echo cuda)
        DIFFNAS_COMPILE_MODE=reduce-overhead run 200 python benchmarks/bench.py --device cuda --paths compiled \
            --workloads search-first train-darts-v2 --out $r/$dev-cudagraphs.json
        run 150 python benchmarks/bench.py --device cuda --precision bf16 --paths plain fused \
            --workloads search-first train-darts-v2 --out $r/$dev-bf16.json   # (training has no fused row)
        run 100 python benchmarks/bench.py --device cuda --memory-format channels_last --paths plain fused \
            --workloads search-first --out $r/$dev-channels-last.json
        for pw in grouped matmul; do
            DIFFNAS_POINTWISE=$pw run 60 python benchmarks/bench.py --device cuda --paths fused \
                --workloads search-first --out $r/$dev-pointwise-$pw.json
        done ;;
    profile)
        run 540 python benchmarks/profile_step.py --device cuda --paper ;;
esac
echo "stage $stage done at ${SECONDS} s" | log
