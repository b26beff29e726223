#!/usr/bin/env python3
"""bench/batched_vs_llamacpp.py — K parallel samples of one prompt: e2h vs llama.cpp (issue #5).

From one MATH500 prompt of about 200 tokens (SmolLM2 chat format), draw K = 1, 4, 16, 64
samples of 256 tokens each at temperature 0.7 and report total generated tokens/s and KV
memory, for
  e2h:       build/e2h generate -m MODEL -p TEXT --samples K -n 256 --temp 0.7 --seed 1 --json
  llama.cpp: llama-cpp-python low-level API, as llama.cpp's examples/batched: the prompt is
             decoded once with all K sequence ids on its tokens (its KV cells are shared), then
             one llama_batch per step holds the next token of every live sequence; unified KV
             cache of n_prompt + K * n_gen cells.
Both ignore end-of-sequence by default so every run generates exactly K * n tokens
(--stop-at-eos to stop each sample at EOS instead; then tokens/s counts what was generated).

    python3 bench/batched_vs_llamacpp.py                   # K = 1,4,16,64, n = 256, 2 threads
    python3 bench/batched_vs_llamacpp.py --quick           # K = 1,4,16, n = 64
    python3 bench/batched_vs_llamacpp.py --no-e2h --ks 1,4

llama.cpp tokens/s is generated tokens / time of the generation loop (prompt prefill
excluded, as examples/batched reports it); the prefill time is reported separately. KV memory:
llama.cpp's allocated cache (f16 K and V, n_ctx cells, padded by llama.cpp to 256) and the
cells actually used; "indep" is what K independent copies of prompt + sample would take.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import math
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MATH500 = REPO.parent / "shared/data/math/math500.jsonl"
DEFAULT_MODEL = REPO / "weights/SmolLM2-135M-Instruct.Q4_1.gguf"
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def chat_prompt(problem: str) -> str:
    """SmolLM2-Instruct chat format (its GGUF chat template), ready for generation."""
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n"
            f"<|im_start|>user\n{problem}\n{INSTRUCTION}<|im_end|>\n"
            f"<|im_start|>assistant\n")


# ----------------------------------------------------------------------------- llama.cpp

_LOG_CB = None  # the ctypes callback must outlive every llama.cpp call


def quiet_llama_logs(L) -> None:
    """Drops llama.cpp's info logs (model loading prints hundreds of lines); keeps errors."""
    global _LOG_CB
    if _LOG_CB is None:
        def cb(level, text, _user):
            if level == 4:  # GGML_LOG_LEVEL_ERROR (5 = continuation of any level)
                sys.stderr.write(text.decode(errors="replace"))
        _LOG_CB = L.llama_log_callback(cb)
        L.llama_log_set(_LOG_CB, ctypes.c_void_p())


class LlamaModel:
    """A loaded llama.cpp model (CPU only) plus the helpers the benchmark needs."""

    def __init__(self, path: str, vocab_only: bool = False):
        import llama_cpp as L
        self.L = L
        quiet_llama_logs(L)
        L.llama_backend_init()
        mp = L.llama_model_default_params()
        mp.n_gpu_layers = 0
        mp.vocab_only = vocab_only
        self.model = L.llama_model_load_from_file(path.encode(), mp)
        if not self.model:
            raise RuntimeError(f"{path}: llama.cpp could not load the model")
        self.vocab = L.llama_model_get_vocab(self.model)

    def detokenize(self, ids: list[int]) -> str:
        L, out = self.L, bytearray()
        buf = ctypes.create_string_buffer(256)
        for t in ids:
            n = L.llama_token_to_piece(self.vocab, t, buf, len(buf), 0, False)
            out += buf.raw[:max(n, 0)]
        return out.decode(errors="replace")

    def tokenize(self, text: str) -> list[int]:
        L = self.L
        raw = text.encode()
        buf = (L.llama_token * (len(raw) + 16))()
        # add_special: BOS if the model wants it; parse_special: <|im_start|> is one token
        n = L.llama_tokenize(self.vocab, raw, len(raw), buf, len(buf), True, True)
        if n < 0:
            raise RuntimeError("llama_tokenize: buffer too small")
        return list(buf[:n])

    def kv_bytes_per_cell(self) -> int:
        L = self.L
        n_embd, n_head = L.llama_model_n_embd(self.model), L.llama_model_n_head(self.model)
        n_head_kv, n_layer = L.llama_model_n_head_kv(self.model), L.llama_model_n_layer(self.model)
        return n_layer * 2 * n_head_kv * (n_embd // n_head) * 2  # K and V, f16

    def free(self) -> None:
        self.L.llama_model_free(self.model)


def pick_prompt(model_path: str, target: int) -> tuple[str, int, str]:
    """The MATH500 problem whose chat prompt is closest to `target` tokens (first on ties)."""
    m = LlamaModel(model_path, vocab_only=True)
    best = None
    with open(MATH500) as f:
        for line in f:
            rec = json.loads(line)
            text = chat_prompt(rec["problem"])
            n = len(m.tokenize(text))
            if best is None or abs(n - target) < abs(best[1] - target):
                best = (text, n, rec["unique_id"])
    m.free()
    return best


def llama_batched_run(m: LlamaModel, prompt: list[int], k: int, n_gen: int, threads: int,
                      temp: float, seed: int, stop_at_eos: bool) -> dict:
    L = m.L
    n_prompt = len(prompt)
    cp = L.llama_context_default_params()
    cp.n_ctx = n_prompt + k * n_gen  # as examples/batched (n_kv_req)
    cp.n_batch = cp.n_ubatch = max(n_prompt, k)
    cp.n_seq_max = k
    cp.kv_unified = True  # one cache for all sequences, so the prompt cells can be shared
    cp.n_threads = cp.n_threads_batch = threads
    cp.no_perf = True
    ctx = L.llama_init_from_model(m.model, cp)
    if not ctx:
        raise RuntimeError("llama_init_from_model failed")
    batch = L.llama_batch_init(max(n_prompt, k), 0, k)
    samplers = []
    for i in range(k):
        s = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        L.llama_sampler_chain_add(s, L.llama_sampler_init_temp(temp))
        L.llama_sampler_chain_add(s, L.llama_sampler_init_dist(seed + i))
        samplers.append(s)

    def decode() -> None:
        rc = L.llama_decode(ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc} (K={k})")

    # the prompt, once, its tokens tagged with every sequence id
    t0 = time.perf_counter()
    for i, tok in enumerate(prompt):
        batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = tok, i, k, 0
        for s in range(k):
            batch.seq_id[i][s] = s
    batch.logits[n_prompt - 1] = 1
    batch.n_tokens = n_prompt
    decode()
    L.llama_synchronize(ctx)
    t_prefill = time.perf_counter() - t0

    i_batch = [n_prompt - 1] * k  # where each sequence's logits are in the last batch
    streams: list[list[int]] = [[] for _ in range(k)]
    n_cur, n_generated = n_prompt, 0
    t0 = time.perf_counter()
    while n_cur < n_prompt + n_gen:
        j = 0
        for s in range(k):
            if i_batch[s] < 0:
                continue
            tok = L.llama_sampler_sample(samplers[s], ctx, i_batch[s])
            n_generated += 1
            streams[s].append(tok)
            if stop_at_eos and L.llama_vocab_is_eog(m.vocab, tok):
                i_batch[s] = -1
                continue
            batch.token[j], batch.pos[j], batch.n_seq_id[j], batch.logits[j] = tok, n_cur, 1, 1
            batch.seq_id[j][0] = s
            i_batch[s] = j
            j += 1
        n_cur += 1
        if j == 0 or n_cur == n_prompt + n_gen:
            break  # the last sampled tokens need no forward pass
        batch.n_tokens = j
        decode()
    L.llama_synchronize(ctx)
    t_gen = time.perf_counter() - t0

    n_ctx = L.llama_n_ctx(ctx)
    per_cell = m.kv_bytes_per_cell()
    for s in samplers:
        L.llama_sampler_free(s)
    L.llama_batch_free(batch)
    L.llama_free(ctx)
    return {"k": k, "n_prompt": n_prompt, "generated": n_generated, "t_prefill_s": t_prefill,
            "t_gen_s": t_gen, "tok_s": n_generated / t_gen,
            "kv_alloc_bytes": n_ctx * per_cell,
            "kv_used_bytes": (n_prompt + n_generated) * per_cell,
            "kv_indep_bytes": k * (n_prompt + n_gen) * per_cell,
            # first and last sample, to check by eye that sharing the prompt works
            "text_first": m.detokenize(streams[0]), "text_last": m.detokenize(streams[-1])}


def llama_worker(a: argparse.Namespace) -> dict:
    m = LlamaModel(str(a.model))
    prompt = m.tokenize(a.prompt_text)
    out = {"runs": {}}
    # warm-up: page in the weights, start the threadpool
    llama_batched_run(m, prompt, 1, 4, a.threads, a.temp, a.seed, False)
    for k in a.ks:
        out["runs"][str(k)] = [llama_batched_run(m, prompt, k, a.n_gen, a.threads, a.temp,
                                                 a.seed, a.stop_at_eos) for _ in range(a.reps)]
    m.free()
    return out


# ----------------------------------------------------------------------------- e2h

def stats_prompt_tokens(recs: list) -> int | None:
    return next((r["prompt_tokens"] for r in recs if isinstance(r.get("prompt_tokens"), int)), None)


def run_e2h(a: argparse.Namespace, k: int) -> dict:
    exe = Path(a.e2h)
    if not exe.exists():
        return {"error": f"{exe} not found (build it with `make`)"}
    cmd = [str(exe), "generate", "-m", str(a.model), "-p", a.prompt_text, "--samples", str(k),
           "-n", str(a.n_gen), "--temp", str(a.temp), "--seed", str(a.seed), "--json",
           "-t", str(a.threads)] + ([] if a.stop_at_eos else ["--ignore-eos"]) + \
          (["--kv-f16"] if a.kv_f16 else [])
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {a.timeout} s"}
    wall = time.perf_counter() - t0
    recs = []
    # one JSON object per prompt on stdout ({"samples": [...]}); e2h prints its summary as a
    # {"stats": {...}} line on stderr
    for ln in p.stdout.splitlines() + p.stderr.splitlines():
        ln = ln.strip()
        if ln.startswith("{"):
            try:
                recs.append(json.loads(ln))
            except json.JSONDecodeError:
                pass
    samples = [s for r in recs for s in r.get("samples", [])]
    recs = [r.get("stats", r) for r in recs if "samples" not in r]
    if p.returncode != 0 or not samples:
        tail = "\n".join((p.stderr.strip() or p.stdout.strip()).splitlines()[-3:])
        return {"error": f"rc {p.returncode}: {tail}"}
    tokens = sum(int(r.get("tokens", 0)) for r in samples)
    res = {"samples": len(samples), "generated": tokens, "wall_s": wall, "timing": "wall",
           "prompt_tokens": stats_prompt_tokens(recs),
           "text_first": samples[0].get("text"), "text_last": samples[-1].get("text")}
    # e2h's own timing / KV numbers when it prints them (any summary record, these keys)
    names = {"tok_s": "tok_s", "gen_tok_s": "tok_s", "decode_s": "t_gen_s", "gen_s": "t_gen_s",
             "prefill_s": "t_prefill_s", "kv_bytes_used": "kv_used_bytes",
             "kv_used_bytes": "kv_used_bytes", "kv_bytes_independent": "kv_indep_bytes",
             "kv_alloc_bytes": "kv_alloc_bytes", "generated_tokens": "generated"}
    for r in recs:
        for key, v in r.items():
            if key in names and isinstance(v, (int, float)) and not isinstance(v, bool):
                res[names[key]] = v
    if "tok_s" in res:
        res["timing"] = "e2h"
    elif "t_gen_s" in res and res["generated"]:
        res["tok_s"], res["timing"] = res["generated"] / res["t_gen_s"], "e2h"
    elif res["generated"]:  # includes model load and prefill: a lower bound on e2h's speed
        res["tok_s"] = res["generated"] / wall
    return res


# ----------------------------------------------------------------------------- main

def mean_sd(xs: list[float]) -> tuple[float, float]:
    if not xs:
        return math.nan, math.nan
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def mb(x) -> str:
    return f"{x / 2**20:.1f}" if x else "n/a"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--ks", default=None, help="comma list of K (default 1,4,16,64)")
    ap.add_argument("-n", "--n-gen", type=int, default=None, help="tokens per sample (256)")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--temp", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-r", "--reps", type=int, default=1)
    ap.add_argument("--prompt-tokens", type=int, default=200, help="target prompt length")
    ap.add_argument("--stop-at-eos", action="store_true")
    ap.add_argument("--kv-f16", action="store_true", help="e2h stores K/V in f16 (llama.cpp's default)")
    ap.add_argument("--quick", action="store_true", help="K = 1,4,16 and n = 64")
    ap.add_argument("--e2h", default=str(REPO / "build/e2h"))
    ap.add_argument("--no-e2h", action="store_true")
    ap.add_argument("--no-llama", action="store_true")
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--llama-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--prompt-text", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.ks = [int(x) for x in (a.ks or ("1,4,16" if a.quick else "1,4,16,64")).split(",")]
    a.n_gen = a.n_gen or (64 if a.quick else 256)
    if min(a.ks) < 1 or a.n_gen < 1 or a.threads < 1 or a.reps < 1:
        ap.error("K, -n, -t and -r must be >= 1")
    if not a.model.exists():
        sys.exit(f"batched_vs_llamacpp: {a.model}: model file not found (run `make model`)")

    if a.llama_worker:
        print(json.dumps(llama_worker(a)))
        return 0

    if not MATH500.exists():
        sys.exit(f"batched_vs_llamacpp: {MATH500} not found (../shared/ is needed)")
    a.prompt_text, n_prompt, uid = pick_prompt(str(a.model), a.prompt_tokens)
    print(f"prompt: MATH500 {uid}, {n_prompt} tokens (llama.cpp tokenizer); "
          f"K={a.ks}, n={a.n_gen}, t={a.threads}, temp={a.temp}", flush=True)

    report = {"prompt_uid": uid, "n_prompt": n_prompt, "n_gen": a.n_gen, "threads": a.threads,
              "temp": a.temp, "stop_at_eos": a.stop_at_eos, "llama": {}, "e2h": {}}
    if not a.no_llama:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--llama-worker", "-m",
               str(a.model), "--ks", ",".join(map(str, a.ks)), "-n", str(a.n_gen), "-t",
               str(a.threads), "--temp", str(a.temp), "--seed", str(a.seed), "-r", str(a.reps),
               "--prompt-text", a.prompt_text] + (["--stop-at-eos"] if a.stop_at_eos else [])
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        if p.returncode != 0 or not lines:
            print("llama.cpp worker failed: " + "\n".join(p.stderr.splitlines()[-5:]),
                  file=sys.stderr)
        else:
            report["llama"] = json.loads(lines[-1])["runs"]
    if not a.no_e2h:
        for k in a.ks:
            report["e2h"][str(k)] = runs = [run_e2h(a, k) for _ in range(a.reps)]
            if "error" in runs[0]:
                print(f"e2h K={k}: {runs[0]['error']}", file=sys.stderr)

    hdr = (f"{'K':>3} {'e2h tok/s':>16} {'llama tok/s':>16} {'ratio':>6} {'prefill s e2h/llama':>19} "
           f"{'e2h KV MiB':>10} {'llama KV MiB alloc/used':>23} {'indep KV MiB':>12}")
    print()
    print(hdr)
    print("-" * len(hdr))
    for k in a.ks:
        lr = report["llama"].get(str(k), [])
        er = [r for r in report["e2h"].get(str(k), []) if "tok_s" in r]
        lm, ls = mean_sd([r["tok_s"] for r in lr])
        em, es = mean_sd([r["tok_s"] for r in er])
        ratio = f"{em / lm:.2f}" if er and lr else "n/a"
        pre_l = f"{mean_sd([r['t_prefill_s'] for r in lr])[0]:.3f}" if lr else "n/a"
        pre_e = f"{er[0]['t_prefill_s']:.3f}" if er and "t_prefill_s" in er[0] else "n/a"
        pre = f"{pre_e}/{pre_l}"
        ekv = mb(er[0].get("kv_used_bytes")) if er else "n/a"
        if er and er[0].get("timing") == "wall":
            ekv += " (wall)"  # e2h printed no timing: its number includes load + prefill
        lkv = f"{mb(lr[0]['kv_alloc_bytes'])}/{mb(lr[0]['kv_used_bytes'])}" if lr else "n/a"
        ind = mb(lr[0]["kv_indep_bytes"]) if lr else "n/a"
        e_s = f"{em:.1f} ± {es:.1f}" if er else "n/a"
        l_s = f"{lm:.1f} ± {ls:.1f}" if lr else "n/a"
        print(f"{k:>3} {e_s:>16} {l_s:>16} {ratio:>6} {pre:>19} {ekv:>10} {lkv:>23} {ind:>12}")
    if a.json_out:
        a.json_out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
