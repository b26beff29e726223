#!/usr/bin/env python3
"""tools/make_llamacpp_fixtures.py — llama.cpp reference outputs for the default model.

Runs llama.cpp (llama-cpp-python, logits_all=True, 2 threads) on the SmolLM2-135M-Instruct Q4_1
GGUF for a few chat-formatted MATH500 problems (tokenized by llama.cpp itself) and writes
tests/fixtures/llamacpp/smollm2_q4_1.json with, per prompt:

    prompt_ids   the prompt as llama.cpp tokenizes it (special tokens parsed, no BOS: the
                 file's add_bos_token is false)
    greedy       64 greedy tokens (argmax, EOS ignored) decoded one at a time after the prompt
    argmax       argmax of the logits at every position of prompt + greedy (len = n_prompt + 64)
    margin       top-1 minus top-2 logit at each of those positions (how close a tie it was)
    top          the 8 largest logits at each position as [[id, logit], ...]

It also writes tests/fixtures/llamacpp/smollm2_f32.json: the same prompts run by llama.cpp on the
f32 dequantization of that file (tools/gguf_convert.py dequant: same tensors, same layout, f32).
Without quantized activations both engines compute the same math up to float rounding, so that
fixture holds e2h to exact top-1 and greedy agreement; on the Q4_1 file the two engines round
activations to int8 differently and disagree at near-ties (see the test's docstring).

tests/py/test_llamacpp_parity.py compares e2h with these.

    python3 tools/make_llamacpp_fixtures.py [--model weights/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DEFAULT_MODEL = os.path.join(ROOT, "weights", "SmolLM2-135M-Instruct.Q4_1.gguf")
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "llamacpp")
MATH500 = os.path.join(ROOT, "..", "shared", "data", "math", "math500.jsonl")
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
N_GEN = 64
N_TOP = 8
# llama.cpp configured to compute what e2h computes: an f32 KV cache (with f16, llama.cpp
# stores K/V as halves, and its attention rounds Q to f16 for Q·K) and no flash attention
# (its CPU flash attention also works in f16); every matmul and the rest stay stock.
LLAMA_SETTINGS = {"n_ctx": 1024, "n_batch": 512, "n_threads": 2, "logits_all": True,
                  "flash_attn": False}


def chat(problem: str) -> str:
    """The model's own chat template (tokenizer.chat_template) with add_generation_prompt."""
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{problem}<|im_end|>\n"
            "<|im_start|>assistant\n")


def pick_problems(n: int) -> list[dict]:
    with open(MATH500) as f:
        rows = [json.loads(line) for line in f]
    # short problems of different subjects, so prompts stay ~100 tokens
    rows = sorted((r for r in rows if len(r["problem"]) < 220), key=lambda r: r["unique_id"])
    out, seen = [], set()
    for r in rows:
        if r["subject"] not in seen:
            out.append(r)
            seen.add(r["subject"])
        if len(out) == n:
            break
    return out


def run_one(llm, text: str) -> dict:
    ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    llm.reset()
    llm.eval(ids)
    greedy = []
    for _ in range(N_GEN):
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        greedy.append(tok)
        llm.eval([tok])  # evaluates the last one too, for the argmax at every position
    scores = np.asarray(llm.scores[: llm.n_tokens], dtype=np.float32)  # (n_prompt + 64, vocab)
    order = np.argsort(-scores, axis=1)[:, :N_TOP]
    top = [[[int(i), round(float(s[i]), 5)] for i in o] for s, o in zip(scores, order)]
    margin = [round(float(s[o[0]] - s[o[1]]), 5) for s, o in zip(scores, order)]
    return {"text": text, "prompt_ids": [int(i) for i in ids], "greedy": greedy,
            "argmax": [int(o[0]) for o in order], "margin": margin, "top": top}


def write_fixture(llama_cpp, path: str, source: str, problems: list[dict], out_path: str) -> None:
    with open(source, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    llm = llama_cpp.Llama(model_path=path, **LLAMA_SETTINGS, type_k=llama_cpp.GGML_TYPE_F32,
                          type_v=llama_cpp.GGML_TYPE_F32, verbose=False)
    prompts = [run_one(llm, chat(p["problem"])) | {"unique_id": p["unique_id"]} for p in problems]
    out = {"model": os.path.basename(source), "sha256": sha,
           "weights": "f32 dequantization" if path != source else "as stored",
           "llama_cpp_python": getattr(llama_cpp, "__version__", "?"), "n_threads": 2,
           "llama_settings": LLAMA_SETTINGS | {"type_k": "f32", "type_v": "f32"},
           "n_gen": N_GEN, "prompts": prompts}
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    for p in prompts:
        print(f"{p['unique_id']}: {len(p['prompt_ids'])} prompt tokens, min margin {min(p['margin']):.4f}")
    print(f"wrote {out_path}")
    del llm


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--n-prompts", type=int, default=4)
    ap.add_argument("-o", "--out-dir", default=OUT_DIR)
    a = ap.parse_args()
    try:
        import llama_cpp
    except ImportError:
        sys.exit("make_llamacpp_fixtures: needs llama-cpp-python (see tools/requirements-bench.txt)")
    if not os.path.exists(a.model):
        sys.exit(f"make_llamacpp_fixtures: {a.model} absent (run `make model`)")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gguf_convert

    problems = pick_problems(a.n_prompts)
    with tempfile.TemporaryDirectory() as tmp:
        f32 = os.path.join(tmp, "smollm2_f32.gguf")
        gguf_convert.dequant_gguf(a.model, f32)
        for path, name in ((a.model, "smollm2_q4_1.json"), (f32, "smollm2_f32.json")):
            write_fixture(llama_cpp, path, a.model, problems, os.path.join(a.out_dir, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
