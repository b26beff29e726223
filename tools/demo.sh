#!/usr/bin/env bash
# tools/demo.sh E2H MODEL — the default job on the default model: one hard (level 5) MATH500
# problem, K samples drawn through the shared KV cache, printed as JSON lines.
# (The full easy-to-hard job — PRM step scoring and weighted voting — builds on this.)
set -euo pipefail
e2h=$1; model=$2
problem="Find the number of ordered pairs of positive integers (a, b) such that a + b = 1000 and neither a nor b has a zero digit."
data=../shared/data/math/math500.jsonl
if [ -f "$data" ]; then
    problem=$(python3 -c "
import json,sys
rows=[json.loads(l) for l in open('$data')]
r=[x for x in rows if x['level']==5][0]
print(r['problem'])")
fi
echo "problem: $problem"
echo "--- 4 samples (temperature 0.7, stop at 512 tokens), SmolLM2-135M-Instruct Q4_1, 2 threads"
"$e2h" generate -m "$model" --chat -p "$problem Please reason step by step, and put your final answer within \\boxed{}." \
    --samples 4 -n 512 --temp 0.7 --top-p 0.95 --seed 1 -t 2
