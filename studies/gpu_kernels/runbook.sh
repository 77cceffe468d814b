#!/usr/bin/env bash
# The GPU runbook (studies/gpu_kernels/README.md, "Runbook for the next GPU session") as one
# script, so a lent GPU's 30 minutes go to measuring. Each item stays under the device tool's
# 10-minute command limit; run them in one or two commands:
#
#   bash studies/gpu_kernels/runbook.sh "$OUT" 1 2      # tests, then the D = 3 step A/B
#   bash studies/gpu_kernels/runbook.sh "$OUT" 3 4      # the D = 8 step A/B, the fast-tanh timing
#   bash studies/gpu_kernels/runbook.sh "$OUT" 5        # end to end with NVML energy
#
# Items: 1 GPU tests; 2 fused step, paper geometry (D = 3, as the committed H100 rows), default
# kernel vs TUNING["MASK"], ["STORE"] and both, N = 65k and 1M; 3 the same for the default
# model (D = 8), N = 65k,
# k = 16 and 64; 4 PTX fast tanh vs the exact gate; 5 (if time is left) whole train and
# inference steps of the default model with NVML energy, torch vs triton vs dense. Results and logs go to OUT; a failed item
# is reported and the next one still runs; the exit status is the number of failed items.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: runbook.sh OUT_DIR [ITEM...]}
shift
items=${*:-1 2 3 4}
mkdir -p "$out"
python3 -c "import rsgn" 2>/dev/null ||
    python3 -m pip install -q --no-deps --no-build-isolation -e . >"$out/install.log" 2>&1
failed=0
run() {  # run NAME SECONDS CMD...: one item, its output in OUT/NAME.log
    local name=$1 secs=$2
    shift 2
    echo "== $name: $*"
    local t0=$SECONDS
    timeout "$secs" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    tail -n 3 "$out/$name.log"
    echo "== $name: exit $rc after $((SECONDS - t0)) s"
    [ "$rc" -eq 0 ] || failed=$((failed + 1))
}
for item in $items; do
    case $item in
    1) run gpu_tests 240 python3 -m pytest -q tests/test_primitives.py tests/test_fused_step.py \
        tests/test_kernels.py tests/test_triton_backend.py ;;
    2) run step_paper 420 python3 studies/gpu_kernels/step_bench.py --config paper \
        --sizes 65536 1048576 --ks 16 --variants MASK STORE MASK+STORE --out "$out/step_paper.json" ;;
    3) run step_default 420 python3 studies/gpu_kernels/step_bench.py \
        --sizes 65536 --ks 16 64 --variants MASK STORE MASK+STORE --out "$out/step_default.json" ;;
    4) run primitives_tanh 180 python3 studies/gpu_kernels/primitives.py --only tanh \
        --out "$out/primitives_tanh.json" ;;
    5) run bench 540 python3 studies/gpu_kernels/bench.py --sizes 4096 65536 --ks 16 \
        --out "$out/bench.json" ;;
    *)
        echo "runbook.sh: unknown item $item (items: 1 2 3 4 5)" >&2
        exit 2
        ;;
    esac
done
exit "$failed"
