#!/usr/bin/env python3
"""Encode throughput (tokens/s, single thread) of e2h's tokenizer next to Hugging Face
`tokenizers` on the same texts (MATH test problems + solutions), in one run.

  python3 bench/tokenize_bench.py [--build build] [--model tests/fixtures/tokenizer/smollm]

Both sides load the same tokenizer.json; the C side is build/bench/tokenize_bench. Each side
reports its best of --repeats passes; ids are compared so a fast-but-wrong tokenizer fails.
"""
import argparse
import json
import os
import subprocess
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"  # single thread for the reference too
os.environ["TOKENIZERS_PARALLELISM"] = "false"
from tokenizers import Tokenizer  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--model", default=os.path.join(ROOT, "tests/fixtures/tokenizer/smollm"))
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "math",
                                                  "math_test.jsonl"))
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    texts = []
    with open(a.data, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            texts += [r["problem"], r["solution"]]
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json")
                              if os.path.isdir(a.model) else a.model)

    # reference: one encode call per text (how an engine tokenizes prompts), and batched
    best_single = best_batch = 1e30
    n_tokens = 0
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        n_tokens = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)
        best_single = min(best_single, time.perf_counter() - t0)
        t0 = time.perf_counter()
        tok.encode_batch(texts, add_special_tokens=False)
        best_batch = min(best_batch, time.perf_counter() - t0)

    exe = os.path.join(a.build, "bench", "tokenize_bench")
    out = subprocess.run([exe, a.model, a.data, str(a.repeats)], check=True,
                         capture_output=True, text=True).stdout
    e2h = json.loads(out)
    if e2h["tokens"] != n_tokens:
        sys.exit(f"token counts differ: e2h {e2h['tokens']} vs reference {n_tokens}")
    hf_single = n_tokens / best_single
    hf_batch = n_tokens / best_batch
    print(f"texts: {len(texts)}  tokens: {n_tokens}  (MATH test problems + solutions)")
    print(f"hf tokenizers encode (1 call/text, 1 thread): {hf_single:12.0f} tokens/s")
    print(f"hf tokenizers encode_batch (1 thread)       : {hf_batch:12.0f} tokens/s")
    print(f"e2h e2h_tokenize (1 call/text, 1 thread)    : {e2h['tokens_per_s']:12.0f} tokens/s")
    print(f"speedup vs hf encode: {e2h['tokens_per_s'] / hf_single:.2f}x, "
          f"vs hf encode_batch: {e2h['tokens_per_s'] / hf_batch:.2f}x (goal >= 1.5x)")


if __name__ == "__main__":
    main()
