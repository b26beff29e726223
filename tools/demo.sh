#!/usr/bin/env bash
# tools/demo.sh E2H MODEL — the default job on the default model, in miniature: for one easy
# (level 1) and one hard (level 5) MATH500 problem, draw K solutions in parallel through the
# shared KV cache (one `e2h generate -i` run: one model load for both problems), extract each
# \boxed{} answer and majority-vote. (PRM-weighted voting and step-level search build on the
# same calls; see the README.)
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
with open(f"{tmp}/problems.jsonl", "w") as f:
    for r in pick:  # {"problem"} lines: a chat user turn + the "reason step by step ... \boxed{}" suffix
        f.write(json.dumps({"problem": r["problem"], "answer": r["answer"], "level": r["level"]}) + "\n")
PY
"$e2h" generate -m "$model" -i "$tmp/problems.jsonl" -o "$tmp/samples.jsonl" --samples "$K" -n "$N" \
    --temp 0.7 --top-p 0.95 --seed 1 -t "$(nproc)" --quiet 2> "$tmp/stderr.txt" ||
    { cat "$tmp/stderr.txt" >&2; exit 1; }
python3 - "$tmp" <<'PY'
import collections, json, sys
tmp = sys.argv[1]
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
stats = next(json.loads(l)["stats"] for l in open(f"{tmp}/stderr.txt") if l.startswith('{"stats"'))
for row in map(json.loads, open(f"{tmp}/samples.jsonl")):
    samples, ref, problem = row["samples"], row["answer"], row["problem"]
    answers = [boxed(s["text"] or "") for s in samples]
    votes = collections.Counter(a for a in answers if a)
    maj = votes.most_common(1)[0][0] if votes else None
    print(f"level {row['level']}: {problem[:150]}{'...' if len(problem) > 150 else ''}")
    print(f"  {len(samples)} samples, answers {dict(votes) or '{}'} -> majority {maj!r}, reference {ref!r}: "
          f"{'correct' if maj == ref else 'wrong'}")
    print("  first sample:", (samples[0]["text"] or "")[:300].replace("\n", " "), "...")
print(f"{stats['generated_tokens']} tokens at {stats['tok_s']:.1f} tok/s; KV {stats['kv_bytes_used']/2**20:.1f} MiB "
      f"shared vs {stats['kv_bytes_independent']/2**20:.1f} MiB as independent copies (one problem's {stats['samples_per_prompt']} samples)")
PY
