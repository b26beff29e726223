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
fixture holds e2h to exact top-1 and greedy agreement. On the Q4_1 file e2h quantizes activations
exactly as llama.cpp does, but float-order noise still flips int8 values and f16 block scales and
the engines disagree at near-ties, as llama.cpp does with itself when the prompt is fed token by
token (recorded per prompt as seq_greedy, seq_argmax, seq_top_err; see the test's docstring).
llama.cpp runs with an f32 KV cache and no flash attention (LLAMA_SETTINGS, written to the JSON).

tests/fixtures/llamacpp/smollm2_q4_1_plain.json: the same records for PLAIN_PROMPTS, raw-text
prompts (no chat template) that the model continues confidently (sequences, lists). There
llama.cpp's top-1 decisions are not coin flips (its margins are recorded), so the test holds
e2h to llama.cpp's exact 64 greedy tokens and exact top-1 at every position, on the file as
stored.

It also writes tests/fixtures/llamacpp/q8_act.bin: llama.cpp's own activation quantizers and
dot products on awkward inputs (write_act_fixture; --act-only writes just that), checked bit
for bit by tests/test_kernels_quant.c.

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
# Chosen from candidates by llama.cpp's smallest top-1 margin over prompt + 64 greedy tokens
# (>= 0.19 here; "5, 10, 15, ..." and "1. 1\n2. 2\n..." were dropped for margins of 0.0005 and
# 0.055 at a prompt position, where either engine's answer is a coin flip).
PLAIN_PROMPTS = ["1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "10, 20, 30, 40, 50,",
                 "The numbers are 1, 2, 3, 4, 5, 6, 7,", "100, 101, 102, 103, 104,",
                 "a, b, c, d, e, f, g,"]
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
    scores = np.array(llm.scores[: llm.n_tokens], dtype=np.float32)  # (n_prompt + 64, vocab), a copy
    order = np.argsort(-scores, axis=1)[:, :N_TOP]
    top = [[[int(i), round(float(s[i]), 5)] for i in o] for s, o in zip(scores, order)]
    margin = [round(float(s[o[0]] - s[o[1]]), 5) for s, o in zip(scores, order)]
    # llama.cpp's own noise: the same run with the prompt fed one token at a time. Its
    # attention and Q8_0-head matmuls then sum in another order, and through the int8/f16
    # rounding of activations that moves logits about as much as a different engine does.
    llm.reset()
    for t in ids:
        llm.eval([t])
    seq_greedy = []
    for _ in range(N_GEN):
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        seq_greedy.append(tok)
        llm.eval([tok])
    llm.reset()
    for t in list(ids) + greedy:
        llm.eval([t])
    seq = np.asarray(llm.scores[: llm.n_tokens], dtype=np.float32)
    seq_err = [round(float(np.abs(seq[i, o] - scores[i, o]).mean()), 5) for i, o in enumerate(order)]
    return {"text": text, "prompt_ids": [int(i) for i in ids], "greedy": greedy,
            "argmax": [int(o[0]) for o in order], "margin": margin, "top": top,
            "seq_greedy": seq_greedy, "seq_argmax": [int(i) for i in seq.argmax(1)],
            "seq_top_err": seq_err}


def write_fixture(llama_cpp, path: str, source: str, problems: list[dict], out_path: str) -> None:
    with open(source, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    llm = llama_cpp.Llama(model_path=path, **LLAMA_SETTINGS, type_k=llama_cpp.GGML_TYPE_F32,
                          type_v=llama_cpp.GGML_TYPE_F32, verbose=False)
    prompts = [run_one(llm, p["text"] if "text" in p else chat(p["problem"])) | {"unique_id": p["unique_id"]}
               for p in problems]
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
        same = next((i for i, (a, b) in enumerate(zip(p["greedy"], p["seq_greedy"])) if a != b), N_GEN)
        flips = sum(a != b for a, b in zip(p["argmax"], p["seq_argmax"]))
        print(f"{p['unique_id']}: {len(p['prompt_ids'])} prompt tokens, min margin {min(p['margin']):.4f}; "
              f"token-by-token llama.cpp: greedy identical for {same}, {flips} top-1 flips, "
              f"top-{N_TOP} |dlogit| mean {np.mean(p['seq_top_err']):.3f}")
    print(f"wrote {out_path}")
    del llm


# ---------------------------------------------------------------- activation quantization

ACT_ROWS, ACT_IN, ACT_W = 32, 288, 4  # 9 blocks a row (an odd count, as e2h pads to chunks)


def _act_inputs(rng: np.random.Generator) -> np.ndarray:
    """(ACT_ROWS, ACT_IN) f32 activations: ordinary rows at several scales plus awkward blocks."""
    x = rng.standard_normal((ACT_ROWS, ACT_IN)).astype(np.float32)
    x *= np.float32(10.0) ** rng.integers(-3, 3, (ACT_ROWS, 1)).astype(np.float32)
    b = x.reshape(ACT_ROWS, -1, 32)
    b[0, 0] = np.arange(32, dtype=np.float32) - 15.5  # amax 15.5: no exact ties, many near
    b[0, 1, :] = 0.5 + np.arange(32, dtype=np.float32)  # x*id has .5 ties: 127/31.5 rounds
    b[0, 2, :] = np.float32(127.0)
    b[0, 2, 1:12] = np.float32([2.5, -2.5, 3.5, -3.5, 0.5, -0.5, 1.5, -0.0, 126.5, -126.5, 1e-3])
    b[0, 3, :] = 0.0                                 # all-zero block
    b[0, 4, :] = 1.0
    b[0, 4, 7], b[0, 4, 20] = -9.0, 9.0              # equal |max| of both signs
    b[0, 5, :] *= np.float32(1e-30)                  # d rounds to half 0 (127/amax still finite)
    b[0, 6, :] = np.float32(1e-4)
    b[0, 6, 3] = np.float32(6e-5 * 127)              # d near the half subnormal range
    # blocks whose d = amax/127 lies within a few ulps of a half rounding midpoint
    for r in range(1, 4):
        for k in range(9):
            mid = np.float32(np.float16(rng.uniform(1e-3, 1.0)))
            up = np.float32(np.nextafter(np.float16(mid), np.float16(np.inf)))
            amax = np.float32((np.float32(mid) + up) / np.float32(2) * np.float32(127))
            amax = np.nextafter(amax, np.float32(np.inf if k % 2 else -np.inf), dtype=np.float32) if k % 3 else amax
            blk = b[r, k]
            blk *= np.float32(0.99) * amax / np.abs(blk).max()
            blk[k] = amax * (1 if k % 2 else -1)
    # rows 4-7: x*id within an ulp of k + 0.5, where round(x * (127/amax)) and the rounding of
    # x / (amax/127) often differ (about 1 in 8)
    for r in range(4, 8):
        for k in range(9):
            amax = np.float32(rng.uniform(0.01, 10))
            lv = rng.integers(-126, 126, 32)
            blk = b[r, k]
            blk[:] = ((lv + 0.5) * np.float64(amax) / 127).astype(np.float32)
            blk[k] = amax
    return x


def write_act_fixture(out_path: str) -> None:
    """llama.cpp's own activation quantizers and dot products on awkward activations.

    Calls ggml-cpu's x86 quantize_row_q8_0 / quantize_row_q8_1 (the functions llama.cpp uses
    for the activations of Q4_0/Q5_0/Q8_0 resp. Q4_1/Q5_1 weights) and ggml_vec_dot_q4_1_q8_1 /
    ggml_vec_dot_q8_0_q8_0 from the installed llama-cpp-python, and writes (little endian):
      "E2HQ8ACT" u32 rows u32 n_in u32 n_w
      f32 x[rows][n_in]
      block_q8_0 [rows][n_in/32]   (f16 d, i8 qs[32])
      block_q8_1 [rows][n_in/32]   (f16 d, f16 s, i8 qs[32])
      block_q4_1 w41[n_w][n_in/32] (quantize_row_q4_1_ref of random normals)
      block_q8_0 w80[n_w][n_in/32] (quantize_row_q8_0_ref)
      f32 y41[rows][n_w], y80[rows][n_w] (the vec_dot results)
    tests/test_kernels_quant.c compares e2h's activation scratch with these bytes exactly and
    its matmul with the dots up to float summation order.
    """
    import ctypes
    import llama_cpp
    lib = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    cpu = ctypes.CDLL(os.path.join(lib, "libggml-cpu.so"))
    base = ctypes.CDLL(os.path.join(lib, "libggml-base.so"))
    cpu.ggml_cpu_init()
    nb = ACT_IN // 32
    rng = np.random.default_rng(20241127)
    x = _act_inputs(rng)
    p = ctypes.c_void_p
    for f in (cpu.quantize_row_q8_0, cpu.quantize_row_q8_1, base.quantize_row_q4_1_ref,
              base.quantize_row_q8_0_ref):
        f.argtypes, f.restype = [p, p, ctypes.c_int64], None
    for f in (cpu.ggml_vec_dot_q4_1_q8_1, cpu.ggml_vec_dot_q8_0_q8_0):
        f.argtypes = [ctypes.c_int, p, ctypes.c_size_t, p, ctypes.c_size_t, p, ctypes.c_size_t, ctypes.c_int]
        f.restype = None

    def run(fn, src: np.ndarray, bsz: int) -> np.ndarray:
        src = np.ascontiguousarray(src, dtype=np.float32)
        out = np.zeros((src.shape[0], nb * bsz), np.uint8)
        for r in range(src.shape[0]):
            fn(src[r].ctypes.data, out[r].ctypes.data, ACT_IN)
        return out

    q80, q81 = run(cpu.quantize_row_q8_0, x, 34), run(cpu.quantize_row_q8_1, x, 36)
    wf = (rng.standard_normal((ACT_W, ACT_IN)) * 0.05).astype(np.float32)
    w41, w80 = run(base.quantize_row_q4_1_ref, wf, 20), run(base.quantize_row_q8_0_ref, wf, 34)

    def dots(fn, w: np.ndarray, a: np.ndarray) -> np.ndarray:
        y = np.zeros((ACT_ROWS, ACT_W), np.float32)
        s = ctypes.c_float()
        for r in range(ACT_ROWS):
            for j in range(ACT_W):
                fn(ACT_IN, ctypes.byref(s), 0, w[j].ctypes.data, 0, a[r].ctypes.data, 0, 1)
                y[r, j] = s.value
        return y

    y41, y80 = dots(cpu.ggml_vec_dot_q4_1_q8_1, w41, q81), dots(cpu.ggml_vec_dot_q8_0_q8_0, w80, q80)
    # how many activations the previous e2h rule (q = round(x / d), d = amax/127 in f32) got wrong
    xb = x.reshape(ACT_ROWS, nb, 32)
    amax = np.abs(xb).max(-1, keepdims=True)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        old = np.rint(xb * np.where(d > 0, np.float32(1) / d, 0).astype(np.float32))
    new = q81.reshape(ACT_ROWS, nb, 36)[..., 4:].view(np.int8)
    print(f"activations: {np.count_nonzero(old != new)} of {x.size} q values differ from the old e2h rule")
    with open(out_path, "wb") as f:
        f.write(b"E2HQ8ACT")
        f.write(np.array([ACT_ROWS, ACT_IN, ACT_W], "<u4").tobytes())
        for a in (x, q80, q81, w41, w80, y41, y80):
            f.write(np.ascontiguousarray(a).tobytes())
    print(f"wrote {out_path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--n-prompts", type=int, default=4)
    ap.add_argument("-o", "--out-dir", default=OUT_DIR)
    ap.add_argument("--act-only", action="store_true", help="only write q8_act.bin")
    ap.add_argument("--plain-only", action="store_true", help="only write smollm2_q4_1_plain.json")
    a = ap.parse_args()
    try:
        import llama_cpp
    except ImportError:
        sys.exit("make_llamacpp_fixtures: needs llama-cpp-python (see tools/requirements-bench.txt)")
    if not os.path.exists(a.model):
        sys.exit(f"make_llamacpp_fixtures: {a.model} absent (run `make model`)")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gguf_convert

    if a.plain_only:
        plain = [{"text": t, "unique_id": f"plain/{i}"} for i, t in enumerate(PLAIN_PROMPTS)]
        write_fixture(llama_cpp, a.model, a.model, plain, os.path.join(a.out_dir, "smollm2_q4_1_plain.json"))
        return 0
    write_act_fixture(os.path.join(a.out_dir, "q8_act.bin"))
    if a.act_only:
        return 0
    problems = pick_problems(a.n_prompts)
    with tempfile.TemporaryDirectory() as tmp:
        f32 = os.path.join(tmp, "smollm2_f32.gguf")
        gguf_convert.dequant_gguf(a.model, f32)
        for path, name in ((a.model, "smollm2_q4_1.json"), (f32, "smollm2_f32.json")):
            write_fixture(llama_cpp, path, a.model, problems, os.path.join(a.out_dir, name))
    plain = [{"text": t, "unique_id": f"plain/{i}"} for i, t in enumerate(PLAIN_PROMPTS)]
    write_fixture(llama_cpp, a.model, a.model, plain, os.path.join(a.out_dir, "smollm2_q4_1_plain.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
