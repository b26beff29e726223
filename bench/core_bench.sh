#!/usr/bin/env bash
# bench/core_bench.sh — issue #2's first benchmark: prefill and decode tokens/s of a random-
# weight model with 1B-class shapes (TinyLlama-1.1B: dim 2048, 22 layers, 32/4 heads, ffn 5632,
# vocab 32000) in f32 and bf16 at 1 and 2 threads, then the prefill GEMM's GFLOP/s next to
# OpenBLAS's cblas_sgemm on the same shapes (bench/gemm_vs_openblas.c).
#
#   bash bench/core_bench.sh [PROMPT=512] [GEN=128] [REPS=3]
# Models are written once to $E2H_MODELS_DIR (default /work/models) by tools/make_random_hf.py.
set -euo pipefail
P=${1:-512}; N=${2:-128}; R=${3:-3}
DIR=${E2H_MODELS_DIR:-/work/models}
BUILD=${BUILD:-build}
mkdir -p "$DIR"
for dt in f32 bf16; do
    [ -f "$DIR/llama1b_$dt/model.safetensors" ] || python3 tools/make_random_hf.py "$DIR/llama1b_$dt" --dtype $dt
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load: $(cut -d' ' -f1-3 /proc/loadavg)"
for dt in f32 bf16; do
    for t in 1 2; do
        "$BUILD/e2h" bench -m "$DIR/llama1b_$dt" -p "$P" -n "$N" -r "$R" -t "$t" | grep -E "pp|tg"
    done
done
echo
echo "prefill GEMM (ours, batch-invariant) vs OpenBLAS cblas_sgemm, same shapes:"
"$BUILD/bench/gemm_vs_openblas" 2
