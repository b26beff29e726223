#!/usr/bin/env python3
"""Calibrates the leveled task against a policy: greedy accuracy and pass@k per level.

For each problem of a problems JSONL (tools/gen_leveled_task.py output, or MATH-schema), runs
`e2h generate -i` (chat messages: the job's system prompt and few-shot turns, tools/job/)
with --samples K --temp T, and greedy and a greedy run, extracts
"The answer is N" (last occurrence) and prints per-level greedy accuracy, mean sample accuracy
and the unbiased pass@k (k = 1, 4, K).

usage: python3 tools/calibrate_leveled_task.py --e2h build/e2h -m MODEL --problems FILE
       [--per-level 20] [--samples 16] [--temp 0.7] [-n 200] [-t 1] [--json OUT]
"""
import argparse
import collections
import json
import math
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_FILE = os.path.join(HERE, "job", "system.txt")
FEWSHOT_FILE = os.path.join(HERE, "job", "fewshot.jsonl")


def chat_prompt(system, shots, problem):
    """ChatML with the few-shot pairs as prior turns (what `e2h search --system --fewshot` sends)."""
    t = f"<|im_start|>system\n{system}<|im_end|>\n"
    for q, a in shots:
        t += f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>\n"
    return t + f"<|im_start|>user\n{problem}<|im_end|>\n<|im_start|>assistant\n"
ANSWER_RE = re.compile(r"answer is\s*:?\s*\$?\\?(?:boxed\{)?\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)")


def extract(text):
    m = ANSWER_RE.findall(text or "")
    return m[-1].replace(",", "") if m else None


def same(a, ref):
    if a is None:
        return False
    try:
        return float(a) == float(ref)
    except ValueError:
        return a.strip() == ref.strip()


def pass_at_k(n, c, k):
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def messages(system, shots, problem):
    """The job's chat: system, few-shot pairs as prior turns, then the problem."""
    m = [{"role": "system", "content": system}] if system else []
    for q, ans in shots:
        m += [{"role": "user", "content": q}, {"role": "assistant", "content": ans}]
    return m + [{"role": "user", "content": problem}]


def run(e2h, model, chats, samples, temp, n_tok, threads, seed, parallel):
    """Texts of `samples` samples per chat (one e2h generate -i call for all chats)."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for i, m in enumerate(chats):
            f.write(json.dumps({"messages": m, "seed": seed + i}) + "\n")
        path = f.name
    try:
        cmd = [e2h, "generate", "-m", model, "-i", path, "-n", str(n_tok), "-t", str(threads),
               "--samples", str(samples), "--temp", str(temp if samples > 1 else 0),
               "--parallel", str(parallel), "--quiet", "--kv-mem", "2"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(path)
    res = [json.loads(l) for l in out.splitlines() if l.strip()]
    res.sort(key=lambda r: r["index"])
    return [[s["text"] for s in r["samples"]] for r in res]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--e2h", default="build/e2h")
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--problems", required=True)
    ap.add_argument("--per-level", type=int, default=20)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--temp", type=float, default=0.7)
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("-t", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--system", default=SYSTEM_FILE, help="system prompt file")
    ap.add_argument("--fewshot", default=FEWSHOT_FILE, help="few-shot JSONL ('' for none)")
    ap.add_argument("--json", help="write per-problem results here")
    ap.add_argument("--parallel", type=int, default=16, help="prompts per forward pass")
    a = ap.parse_args(argv)
    system = open(a.system).read().rstrip("\n")
    shots = [(j["problem"], j["solution"]) for j in
             (json.loads(l) for l in open(a.fewshot) if l.strip())] if a.fewshot else []
    rows = [json.loads(l) for l in open(a.problems) if l.strip()]
    taken = collections.Counter()
    picked = []
    for r in rows:
        if taken[r.get("level")] < a.per_level:
            taken[r.get("level")] += 1
            picked.append(r)
    chats = [messages(system, shots, r["problem"]) for r in picked]
    greedy = run(a.e2h, a.model, chats, 1, 0, a.n, a.t, a.seed, a.parallel)
    sampled = run(a.e2h, a.model, chats, a.samples, a.temp, a.n, a.t, a.seed, max(1, a.parallel // 4))
    res = collections.defaultdict(list)
    out = []
    for r, g, s in zip(picked, greedy, sampled):
        lv = r.get("level")
        gc = same(extract(g[0]), r["answer"])
        c = sum(same(extract(t), r["answer"]) for t in s)
        res[lv].append((gc, c, len(s)))
        out.append({"unique_id": r.get("unique_id"), "level": lv, "greedy": gc, "correct": c,
                    "n": len(s)})
    print(f"{'level':>5} {'probs':>5} {'greedy':>7} {'mean@1':>7} {'pass@4':>7} "
          f"{'pass@' + str(a.samples):>8}")
    for lv in sorted(res, key=lambda x: (x is None, x)):
        v = res[lv]
        g = sum(x[0] for x in v) / len(v)
        m1 = sum(x[1] / x[2] for x in v) / len(v)
        p4 = sum(pass_at_k(x[2], x[1], min(4, x[2])) for x in v) / len(v)
        pk = sum(x[1] > 0 for x in v) / len(v)
        print(f"{lv!s:>5} {len(v):>5} {g:>7.2f} {m1:>7.3f} {p4:>7.2f} {pk:>8.2f}")
    if a.json:
        with open(a.json, "w") as f:
            for o in out:
                f.write(json.dumps(o) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
