#!/usr/bin/env bash
# tools/demo.sh E2H MODEL — the default job on the default model, in miniature: for one easy
# (level 1) and one hard (level 5) MATH500 problem, draw K solutions in parallel through the
# shared KV cache, extract each \boxed{} answer and majority-vote. (PRM-weighted voting and
# step-level search build on the same calls; see the README.)
set -euo pipefail
e2h=$1; model=$2; K=${E2H_DEMO_SAMPLES:-8}; N=${E2H_DEMO_TOKENS:-384}
data=../shared/data/math/math500.jsonl
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 - "$data" "$tmp" <<'PY'
import json, os, sys
data, tmp = sys.argv[1], sys.argv[2]
if os.path.exists(data):
    rows = [json.loads(l) for l in open(data)]
    pick = [next(r for r in rows if r["level"] == 1), next(r for r in rows if r["level"] == 5)]
else:  # ../shared absent: two built-in problems
    pick = [{"problem": "What is $3 + 4 \\cdot 2$?", "answer": "11", "level": 1},
            {"problem": "How many positive divisors does $6!$ have?", "answer": "30", "level": 5}]
for i, r in enumerate(pick):
    open(f"{tmp}/p{i}.txt", "w").write(r["problem"] + "\nPlease reason step by step, and put your final answer within \\boxed{}.")
    open(f"{tmp}/a{i}.txt", "w").write(r["answer"] + "\n" + str(r["level"]))
PY
for i in 0 1; do
    "$e2h" generate -m "$model" --chat -f "$tmp/p$i.txt" --samples "$K" -n "$N" --temp 0.7 \
        --top-p 0.95 --seed 1 -t "$(nproc)" > "$tmp/s$i.jsonl" 2> "$tmp/e$i.txt"
    python3 - "$tmp" "$i" <<'PY'
import collections, json, re, sys
tmp, i = sys.argv[1], sys.argv[2]
ref, level = open(f"{tmp}/a{i}.txt").read().split("\n")
problem = open(f"{tmp}/p{i}.txt").read().split("\nPlease reason")[0]
def boxed(t):
    k = t.rfind("\\boxed{")
    if k < 0: return None
    d, j = 0, k + 7
    for m in range(j, len(t)):
        d += t[m] == "{"
        if t[m] == "}":
            if d == 0: return t[j:m].strip()
            d -= 1
    return None
samples = [json.loads(l) for l in open(f"{tmp}/s{i}.jsonl")]
answers = [boxed(s["text"] or "") for s in samples]
votes = collections.Counter(a for a in answers if a)
maj = votes.most_common(1)[0][0] if votes else None
stats = json.loads(open(f"{tmp}/e{i}.txt").read().split("stats: ", 1)[1])
print(f"level {level}: {problem[:150]}{'...' if len(problem) > 150 else ''}")
print(f"  {len(samples)} samples, answers {dict(votes) or '{}'} -> majority {maj!r}, reference {ref!r}: "
      f"{'correct' if maj == ref else 'wrong'}")
print(f"  {stats['generated_tokens']} tokens at {stats['tok_s']:.1f} tok/s; KV {stats['kv_bytes_used']/2**20:.1f} MiB "
      f"shared vs {stats['kv_bytes_independent']/2**20:.1f} MiB as independent copies")
print("  first sample:", (samples[0]["text"] or "")[:300].replace("\n", " "), "...")
PY
done
