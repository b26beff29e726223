#!/usr/bin/env python3
"""tools/kl_quant.py — KL divergence of each quantization against the unquantized model.

The default model is stored as Q4_1, so the "unquantized" base is its f32 dequantization
(tools/gguf_convert.py dequant: the same GGUF with f32 tensors; e2h on it matches llama.cpp on
it to top-1 at every position). Against that base we measure, with `e2h logits` on the same
~2,000 tokens of MATH solutions (../shared/data/math/math500.jsonl, chunks of --ctx tokens):

    q4_1 (file)   the original Q4_1 GGUF (as stored; int8 activations in the matmuls)
    q8_0/q4_0/q4_k  the f32 base quantized on load by e2h (`--quant`)

For each: mean KL(base || quant) over next-token distributions (nats), its 99th percentile,
top-1 agreement with the base, and the perplexity of the actual next tokens.

    python3 tools/kl_quant.py [--model weights/SmolLM2-135M-Instruct.Q4_1.gguf] [--tokens 2048]
                              [--ctx 512] [-t 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
MATH500 = os.path.join(ROOT, "..", "shared", "data", "math", "math500.jsonl")


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def math_tokens(e2h: str, model: str, n_tokens: int) -> list[int]:
    """Token ids of MATH500 problems + solutions (in file order) until n_tokens."""
    ids: list[int] = []
    with open(MATH500) as f:
        for line in f:
            r = json.loads(line)
            text = f"Problem: {r['problem']}\nSolution: {r['solution']}\n\n"
            out = subprocess.run([e2h, "tokenize", "-m", model, "--no-bos", text], capture_output=True,
                                 text=True, check=True)
            ids += json.loads(out.stdout)
            if len(ids) >= n_tokens:
                break
    return ids[:n_tokens]


def e2h_logits(e2h: str, model: str, ids: list[int], threads: int, quant: str | None, out: str) -> np.ndarray:
    cmd = [e2h, "logits", "-m", model, "--ids", ",".join(map(str, ids)), "-o", out, "-t", str(threads)]
    if quant:
        cmd += ["--quant", quant]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    return np.load(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "weights", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--e2h", default=os.path.join(ROOT, os.environ.get("BUILD", "build"), "e2h"))
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--ctx", type=int, default=512, help="tokens per logits call (each from an empty cache)")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--quants", default="q8_0,q4_0,q4_k")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    for p, what in ((a.model, "model (make model)"), (a.e2h, "e2h binary (make)"), (MATH500, "MATH500")):
        if not os.path.exists(p):
            sys.exit(f"kl_quant: {p} absent: {what}")
    import gguf_convert

    ids = math_tokens(a.e2h, a.model, a.tokens)
    chunks = [ids[i:i + a.ctx] for i in range(0, len(ids), a.ctx) if len(ids[i:i + a.ctx]) > 1]
    with tempfile.TemporaryDirectory() as tmp:
        base_model = os.path.join(tmp, "f32.gguf")
        gguf_convert.dequant_gguf(a.model, base_model)
        variants = [("q4_1 (file)", a.model, None)] + [(q, base_model, q) for q in a.quants.split(",") if q]
        stats = {name: {"kl": [], "top1": [], "nll": []} for name, _, _ in variants}
        stats["f32 (base)"] = {"kl": [], "top1": [], "nll": []}
        out = os.path.join(tmp, "l.npy")
        for c in chunks:
            base = log_softmax(e2h_logits(a.e2h, base_model, c, a.threads, None, out))[:-1]
            nxt = np.array(c[1:])
            pb = np.exp(base)
            stats["f32 (base)"]["nll"] += (-base[np.arange(len(nxt)), nxt]).tolist()
            for name, model, q in variants:
                s = stats[name]
                if "error" in s:
                    continue
                try:
                    lq = log_softmax(e2h_logits(a.e2h, model, c, a.threads, q, out))[:-1]
                except RuntimeError as e:  # e.g. q4_k needs rows that are multiples of 256
                    s["error"] = str(e)
                    continue
                s["kl"] += (pb * (base - lq)).sum(-1).tolist()
                s["top1"] += (lq.argmax(-1) == base.argmax(-1)).tolist()
                s["nll"] += (-lq[np.arange(len(nxt)), nxt]).tolist()
    n = len(stats["f32 (base)"]["nll"])
    rows = []
    print(f"{n} next-token positions ({len(chunks)} chunks of <= {a.ctx} tokens of MATH500 solutions)")
    print(f"{'weights':<14} {'mean KL':>10} {'p99 KL':>10} {'top-1 = base':>13} {'ppl':>8}")
    for name in ["f32 (base)"] + [v[0] for v in variants]:
        s = stats[name]
        if "error" in s:
            rows.append({"weights": name, "error": s["error"]})
            print(f"{name:<14} n/a: {s['error']}")
            continue
        ppl = float(np.exp(np.mean(s["nll"])))
        if name == "f32 (base)":
            row = {"weights": name, "mean_kl": 0.0, "p99_kl": 0.0, "top1_agree": 1.0, "ppl": ppl}
        else:
            kl = np.array(s["kl"])
            row = {"weights": name, "mean_kl": float(kl.mean()), "p99_kl": float(np.percentile(kl, 99)),
                   "top1_agree": float(np.mean(s["top1"])), "ppl": ppl}
        rows.append(row)
        print(f"{name:<14} {row['mean_kl']:>10.5f} {row['p99_kl']:>10.5f} {row['top1_agree']:>13.4f} {ppl:>8.3f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": os.path.basename(a.model), "positions": n, "ctx": a.ctx, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
