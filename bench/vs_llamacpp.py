#!/usr/bin/env python3
"""bench/vs_llamacpp.py — e2h vs llama.cpp on the same GGUF file and thread count.

Measures, like llama-bench:
  pp<P>  prefill: P tokens evaluated in one batch (n_batch = P) into an empty context
  tg<N>  decode: N single-token evaluations into an empty context
for e2h (`build/e2h bench -m FILE -p P -n N -t T -r R --json`) and llama.cpp
(llama-cpp-python's low-level API, timed here; see tools/requirements-bench.txt), at every
thread count, and prints tokens/s mean ± stdev, the e2h/llama.cpp ratio, and decode as a
percentage of the memory-bandwidth roofline:

  roofline tok/s = membw(T threads) / bytes of weights read per decoded token

where membw comes from build*/bench/membw --json (multi-stream AVX-512 read probe, >= 1 GiB
buffer) and the bytes per token are summed from the GGUF's tensor table (every layer matrix,
the norms, and the output matrix -- token_embd when tied; one embedding row otherwise).

    python3 bench/vs_llamacpp.py                 # SmolLM2-135M Q4_1 + random 7B Q4_0/Q8_0, t=1,2
    python3 bench/vs_llamacpp.py --quick         # small models only, fewer reps
    python3 bench/vs_llamacpp.py --models weights/SmolLM2-135M-Instruct.Q4_1.gguf --threads 2
    python3 bench/vs_llamacpp.py --no-e2h        # llama.cpp half only
    python3 bench/vs_llamacpp.py --llama-path "" --llama-path DIR   # two llama.cpp builds side by side

Each llama.cpp measurement runs in a child process (this script with --llama-worker) so a
crash or its memory never outlives one model; e2h and llama.cpp never run at the same time.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(os.environ.get("E2H_MODELS_DIR", "/work/models"))

# name -> path; the random 7B files come from tools/write_random_gguf.py
DEFAULT_MODELS = {
    "smollm2-135m-q4_1": REPO / "weights/SmolLM2-135M-Instruct.Q4_1.gguf",
    "random-7b-q4_0": MODELS_DIR / "random-llama2-7b-q4_0.gguf",
    "random-7b-q8_0": MODELS_DIR / "random-llama2-7b-q8_0.gguf",
}
QUICK_MODELS = {
    "smollm2-135m-q4_1": DEFAULT_MODELS["smollm2-135m-q4_1"],
    "random-smollm2-q4_1": MODELS_DIR / "random-smollm2-135m-q4_1.gguf",
}


# ----------------------------------------------------------------------------- statistics

def mean_sd(xs: list[float]) -> tuple[float, float]:
    if not xs:
        return math.nan, math.nan
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def pool_rounds(per: list[tuple[float, float]]) -> tuple[float, float] | None:
    """(mean, sd) of one engine over rounds: one round keeps its own sd over repetitions,
    several give the mean and sd of the rounds' means."""
    if not per:
        return None
    return per[0] if len(per) == 1 else mean_sd([m for m, _ in per])


def fmt_ms(m: float, s: float) -> str:
    if m is None or math.isnan(m):
        return "n/a"
    return f"{m:.2f} ± {s:.2f}" if m < 100 else f"{m:.1f} ± {s:.1f}"


# ----------------------------------------------------------------------------- model facts

def weight_bytes_per_token(path: Path) -> dict:
    """Bytes of weights a single decode step reads, from the GGUF tensor table."""
    from gguf import GGUFReader  # header + memmap only: cheap even for 7 GB files
    r = GGUFReader(path)
    sizes = {t.name: int(t.n_bytes) for t in r.tensors}
    total = sum(sizes.values())
    emb = sizes.get("token_embd.weight", 0)
    tied = "output.weight" not in sizes
    n_vocab = len(r.fields["tokenizer.ggml.tokens"].data) if "tokenizer.ggml.tokens" in r.fields \
        else 1
    # tied: the output matmul reads all of token_embd; untied: the lookup reads one row
    per_token = total if tied else total - emb + emb // max(n_vocab, 1)
    return {"file_bytes": path.stat().st_size, "tensor_bytes": total,
            "bytes_per_token": per_token, "tied": tied}


# ----------------------------------------------------------------------------- membw

def find_membw_bin() -> Path | None:
    cands = sorted(REPO.glob("build*/bench/membw"), key=lambda p: p.stat().st_mtime,
                   reverse=True)
    return cands[0] if cands else None


def measure_membw(binary: Path | None, threads: list[int], reps: int) -> dict[int, float]:
    if binary is None or not binary.exists():
        print("membw: no build*/bench/membw binary (run `make bench`); roofline column "
              "left empty", file=sys.stderr)
        return {}
    cmd = [str(binary), "--threads", ",".join(map(str, threads)), "--reps", str(reps),
           "--l3-mib", "0", "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"membw: {' '.join(cmd)} failed: {p.stderr.strip()}", file=sys.stderr)
        return {}
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1]
    return {int(k): float(v) for k, v in json.loads(line)["dram_gbs"].items()}


def parse_membw_arg(s: str) -> dict[int, float]:
    out = {}
    for part in s.split(","):
        t, g = part.split(":")
        out[int(t)] = float(g)
    return out


def bw_at(membw: dict[int, float], t: int) -> float | None:
    if t in membw:
        return membw[t]
    lower = [k for k in membw if k <= t]
    return membw[max(lower)] if lower else None


# ----------------------------------------------------------------------------- llama.cpp

def llama_worker(path: str, threads: list[int], n_prompt: int, n_gen: int, reps: int,
                 flash_attn: str, seed: int, depth: int = 0) -> dict:
    """Runs in a child process; returns pp/tg samples per thread count."""
    import llama_cpp as L

    L.llama_backend_init()
    mp = L.llama_model_default_params()
    mp.n_gpu_layers = 0
    model = L.llama_model_load_from_file(path.encode(), mp)
    if not model:
        raise RuntimeError(f"{path}: llama.cpp could not load the model")
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    bos = L.llama_vocab_bos(vocab)

    cp = L.llama_context_default_params()
    cp.n_ctx = depth + max(n_prompt, 32) + n_gen  # as llama-bench (the warm-up fills up to 32)
    cp.n_batch = max(n_prompt, 32)  # -p 0 (decode only) still needs a batch for the warm-up
    cp.n_ubatch = max(n_prompt, 32)
    cp.n_seq_max = 1
    cp.n_threads = cp.n_threads_batch = threads[0]
    if hasattr(cp, "flash_attn_type"):
        cp.flash_attn_type = {"auto": -1, "off": 0, "on": 1}[flash_attn]
    else:  # llama.cpp before mid-2025 (--llama-path to an older build): a bool, off by default
        cp.flash_attn = flash_attn == "on"
    cp.no_perf = True
    ctx = L.llama_init_from_model(model, cp)
    if not ctx:
        raise RuntimeError(f"{path}: llama_init_from_model failed")
    if hasattr(L, "llama_get_memory"):
        mem = L.llama_get_memory(ctx)
        clear = lambda: L.llama_memory_clear(mem, True)  # noqa: E731
    else:  # older API: the KV cache belongs to the context
        clear = lambda: L.llama_kv_cache_clear(ctx)  # noqa: E731
    batch = L.llama_batch_init(max(n_prompt, 32), 0, 1)
    rng = random.Random(seed)

    def fill(tokens: list[int], pos0: int) -> None:
        for i, tok in enumerate(tokens):
            batch.token[i] = tok
            batch.pos[i] = pos0 + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 0
        batch.logits[len(tokens) - 1] = 1  # logits of the last token only, as llama-bench
        batch.n_tokens = len(tokens)

    def decode() -> None:
        rc = L.llama_decode(ctx, batch)
        if rc != 0:
            raise RuntimeError(f"{path}: llama_decode returned {rc}")
        L.llama_synchronize(ctx)

    def fill_depth() -> None:  # untimed: `depth` tokens in batches of n_batch, as llama-bench -d
        clear()
        toks = [bos] + [rng.randrange(n_vocab) for _ in range(depth - 1)]
        for i in range(0, depth, cp.n_batch):
            fill(toks[i:i + cp.n_batch], i)
            decode()

    def run_pp(n: int) -> float:
        fill_depth()
        toks = [rng.randrange(n_vocab) for _ in range(n)]
        if not depth:
            toks[0] = bos  # a prompt from an empty context starts with BOS
        t0 = time.perf_counter()
        fill(toks, depth)
        decode()
        return time.perf_counter() - t0

    def run_tg(n: int, do_decode: bool = True) -> float:
        if do_decode:
            fill_depth()
        else:
            clear()
        tok = rng.randrange(n_vocab) if depth else bos
        t0 = time.perf_counter()
        for i in range(n):
            fill([tok], depth + i)
            if do_decode:
                decode()
            tok = rng.randrange(n_vocab)
        return time.perf_counter() - t0

    out = {"llama_cpp_version": getattr(L, "__version__", "?"),
           "system_info": L.llama_print_system_info().decode(errors="replace").strip(),
           "n_vocab": n_vocab, "flash_attn": flash_attn,
           # Python cost of one tg step without the decode: must be tiny next to a decode
           "py_overhead_us_per_token": 1e6 * min(run_tg(max(n_gen, 32), False) for _ in range(3))
           / max(n_gen, 32),
           "threads": {}}
    for t in threads:
        L.llama_set_n_threads(ctx, t, t)
        run_pp(min(n_prompt, 32))  # warm-up: threadpool, page faults of the weights
        run_tg(2)
        res = {}
        if n_prompt > 0:
            run_pp(n_prompt)  # full-size warm-up: allocates the n_prompt compute graph
            res["pp"] = [n_prompt / run_pp(n_prompt) for _ in range(reps)]
        if n_gen > 0:
            res["tg"] = [n_gen / run_tg(n_gen) for _ in range(reps)]
        out["threads"][str(t)] = res
    L.llama_batch_free(batch)
    L.llama_free(ctx)
    L.llama_model_free(model)
    return out


def run_llama(path: Path, a: argparse.Namespace, lib: str = "") -> dict:
    """One llama.cpp measurement; lib: a directory holding another llama-cpp-python
    (pip install --target DIR), put first on the child's import path; "" = the installed one."""
    env = dict(os.environ)
    if lib:
        env["PYTHONPATH"] = os.pathsep.join(x for x in (lib, env.get("PYTHONPATH", "")) if x)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--llama-worker", str(path),
           "--threads", ",".join(map(str, a.threads)), "-p", str(a.n_prompt),
           "-n", str(a.n_gen), "-r", str(a.reps), "-d", str(a.depth), "--llama-fa", a.llama_fa]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"llama.cpp worker timed out after {a.timeout} s"}
    if a.verbose:
        sys.stderr.write(p.stderr)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = "\n".join(p.stderr.strip().splitlines()[-5:])
        return {"error": f"llama.cpp worker failed (rc {p.returncode}): {tail}"}
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------- e2h

def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (str(k).lower(),))
    elif isinstance(obj, list) and obj and all(isinstance(x, (int, float)) for x in obj):
        yield path, obj
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (str(i),))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def e2h_extract(records: list[dict], kind: str) -> tuple[float, float] | None:
    """Finds (mean, stdev) tokens/s of 'pp' or 'tg' in e2h bench JSON, whatever its layout.

    Accepted: llama-bench style records ({"n_prompt":512,"n_gen":0,"avg_ts":..,
    "stddev_ts":..}), or keys such as pp_tok_s / prefill.tok_s_mean / tg.tok_s_std /
    decode_tps, or a list of per-repetition samples (…tok_s_samples / …samples).
    """
    words = {"pp": ("pp", "prefill", "prompt"), "tg": ("tg", "decode", "gen")}[kind]
    for rec in records:  # llama-bench layout
        if "avg_ts" in rec and ("n_prompt" in rec or "n_gen" in rec):
            is_pp = rec.get("n_prompt", 0) > 0 and rec.get("n_gen", 0) == 0
            if (kind == "pp") == is_pp:
                return float(rec["avg_ts"]), float(rec.get("stddev_ts", 0.0))
    for rec in records:  # e2h bench layout: {"pp": {"tps_mean": .., "tps_std": .., "tps": [..]}}
        sub = rec.get(kind)
        if isinstance(sub, dict) and "tps_mean" in sub:
            return float(sub["tps_mean"]), float(sub.get("tps_std", 0.0))
    mean = sd = None
    samples = None
    for rec in records:
        for path, v in _leaves(rec):
            key = "_".join(path)
            if not any(w in p for p in path for w in words) and \
                    not any(key.startswith(w) for w in words):
                continue
            if not any(s in key for s in ("tok_s", "tps", "tokens_per_s", "_ts", "per_sec",
                                          "tok/s", "t_s")):
                continue
            if isinstance(v, list):
                samples = [float(x) for x in v]
            elif any(s in key for s in ("std", "stdev", "sd")):
                sd = float(v)
            elif mean is None:
                mean = float(v)
    if samples:
        return mean_sd(samples)
    if mean is not None:
        return mean, sd if sd is not None else 0.0
    return None


def run_e2h(path: Path, t: int, a: argparse.Namespace) -> dict:
    exe = Path(a.e2h)
    if not exe.exists():
        return {"error": f"{exe} not found (build it with `make`)"}
    cmd = [str(exe), "bench", "-m", str(path), "-p", str(a.n_prompt), "-n", str(a.n_gen),
           "-t", str(t), "-r", str(a.reps), "-d", str(a.depth), "--json"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"e2h bench timed out after {a.timeout} s", "cmd": cmd}
    records = []
    for ln in p.stdout.splitlines():
        ln = ln.strip()
        if ln.startswith("{"):
            try:
                records.append(json.loads(ln))
            except json.JSONDecodeError:
                pass
    if not records:
        try:
            records = [json.loads(p.stdout)]
        except json.JSONDecodeError:
            pass
    if p.returncode != 0 or not records:
        tail = "\n".join((p.stderr.strip() or p.stdout.strip()).splitlines()[-3:])
        return {"error": f"e2h bench failed (rc {p.returncode}): {tail}", "cmd": cmd}
    res = {"raw": records, "cmd": cmd}
    for kind in ("pp", "tg"):
        got = e2h_extract(records, kind)
        if got:
            res[kind] = got
    if "pp" not in res and "tg" not in res:
        res["error"] = "e2h bench --json output has no recognisable pp/tg tokens/s fields"
    return res


# ----------------------------------------------------------------------------- report

def test_name(kind: str, n_prompt: int, n_gen: int, depth: int) -> str:
    return (f"pp{n_prompt}" if kind == "pp" else f"tg{n_gen}") + (f"@d{depth}" if depth else "")


def print_table(rows: list[dict], n_prompt: int, n_gen: int, depth: int = 0) -> None:
    hdr = (f"{'model':<22} {'t':>2} {'test':<10} {'llama.cpp':<9} {'e2h tok/s':>16} {'llama.cpp tok/s':>16} "
           f"{'e2h/llama':>9} {'roofline':>9} {'e2h %roof':>9} {'llama %roof':>11}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        test = test_name(r["test"], n_prompt, n_gen, depth)
        e, l = r.get("e2h"), r.get("llama")
        ratio = f"{e[0] / l[0]:.2f}" if e and l and l[0] > 0 else "n/a"
        roof = r.get("roofline_tok_s")
        roof_s = f"{roof:.1f}" if roof and r["test"] == "tg" else ""
        pe = f"{100 * e[0] / roof:.0f}%" if roof and e and r["test"] == "tg" else ""
        pl = f"{100 * l[0] / roof:.0f}%" if roof and l and r["test"] == "tg" else ""
        print(f"{r['model']:<22} {r['threads']:>2} {test:<10} {r['baseline']:<9} "
              f"{fmt_ms(*(e or (math.nan, 0))):>16} {fmt_ms(*(l or (math.nan, 0))):>16} "
              f"{ratio:>9} {roof_s:>9} {pe:>9} {pl:>11}")


def resolve_models(a: argparse.Namespace) -> dict[str, Path]:
    if a.models:
        out = {}
        for m in a.models:
            table = {**DEFAULT_MODELS, **QUICK_MODELS}
            p = table.get(m, Path(m))
            out[m if m in table else Path(m).stem] = p
        return out
    return dict(QUICK_MODELS if a.quick else DEFAULT_MODELS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+",
                    help=f"names ({', '.join({**DEFAULT_MODELS, **QUICK_MODELS})}) or paths")
    ap.add_argument("--threads", default=None, help="comma list (default 1,2)")
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("-r", "--reps", type=int, default=None, help="repetitions (default 3)")
    ap.add_argument("-d", "--depth", type=int, default=0,
                    help="context depth: every test runs after this many tokens (llama-bench -d)")
    ap.add_argument("--quick", action="store_true", help="small models only, 2 reps")
    ap.add_argument("--e2h", default=str(REPO / "build/e2h"))
    ap.add_argument("--no-e2h", action="store_true")
    ap.add_argument("--no-llama", action="store_true")
    ap.add_argument("--membw", default=None, help="membw binary (default newest build*/bench/membw)")
    ap.add_argument("--membw-gbs", default=None, help="skip the probe: e.g. 1:16.0,2:30.5")
    ap.add_argument("--llama-path", action="append", default=None, metavar="DIR",
                    help="another llama-cpp-python build (pip install --target DIR) as a baseline; "
                         "repeat for several, '' for the installed one (default: only the installed one)")
    ap.add_argument("--llama-fa", choices=["auto", "on", "off"], default="auto",
                    help="llama.cpp flash attention (llama.cpp's own default: auto)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run both engines this many times, alternating which goes first "
                         "(ratios per round are printed; default 1)")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per engine per model")
    ap.add_argument("--json-out", type=Path, help="write every number here")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--llama-worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.reps = a.reps or (2 if a.quick else 3)
    a.threads = [int(x) for x in (a.threads or "1,2").split(",")]
    if a.n_prompt < 0 or a.n_gen < 0 or a.depth < 0 or a.reps < 1 or min(a.threads) < 1 or a.rounds < 1:
        ap.error("-p/-n must be >= 0, -r, --rounds and threads >= 1")

    if a.llama_worker:  # child process: one model, every thread count, JSON on stdout
        res = llama_worker(a.llama_worker, a.threads, a.n_prompt, a.n_gen, a.reps,
                           a.llama_fa, seed=1, depth=a.depth)
        print(json.dumps(res))
        return 0

    models = resolve_models(a)
    libs = a.llama_path or [""]
    membw = parse_membw_arg(a.membw_gbs) if a.membw_gbs else \
        measure_membw(Path(a.membw) if a.membw else find_membw_bin(), a.threads, 5)
    print(f"membw GB/s: {membw or 'n/a'}", flush=True)

    rows, report = [], {"membw_gbs": membw, "n_prompt": a.n_prompt, "n_gen": a.n_gen, "depth": a.depth,
                        "reps": a.reps, "models": {}}
    for name, path in models.items():
        if not path.exists():
            print(f"{name}: {path} missing, skipped (tools/write_random_gguf.py / make model)",
                  file=sys.stderr)
            continue
        facts = weight_bytes_per_token(path)
        rec = {"path": str(path), **facts}
        print(f"{name}: {path} ({facts['bytes_per_token'] / 1e6:.1f} MB read per token)",
              flush=True)
        # Rounds alternate which engine runs first: on a shared host the bandwidth left to
        # this VM drifts over minutes, and a fixed order would hand one engine the quieter
        # minutes. Each round's ratio is kept; the table shows the mean over rounds.
        rec["rounds"] = []
        for rnd in range(a.rounds):
            rd = {"e2h": {}, "llama": {}}
            order = ("llama", "e2h") if rnd % 2 == 0 else ("e2h", "llama")
            for eng in order:
                for lib in (libs if eng == "llama" and not a.no_llama else []):
                    rd["llama"][lib] = lr = run_llama(path, a, lib)
                    if "error" in lr:
                        print(f"  llama.cpp {lib}: {lr['error']}", file=sys.stderr)
                    else:
                        print(f"  round {rnd + 1}: llama.cpp {lr['llama_cpp_version']} done (python "
                              f"overhead {lr['py_overhead_us_per_token']:.1f} us/token)", flush=True)
                if eng == "e2h" and not a.no_e2h:
                    for t in a.threads:
                        rd["e2h"][str(t)] = e = run_e2h(path, t, a)
                        if "error" in e:
                            print(f"  e2h t={t}: {e['error']}", file=sys.stderr)
                    print(f"  round {rnd + 1}: e2h done", flush=True)
            rec["rounds"].append(rd)
        for t in a.threads:
            bw = bw_at(membw, t)
            roof = bw * 1e9 / facts["bytes_per_token"] if bw else None
            for kind in [k for k, n in (("pp", a.n_prompt), ("tg", a.n_gen)) if n > 0]:
                for lib in libs:
                    per_e, per_l = [], []  # each round's mean tok/s
                    for rd in rec["rounds"]:
                        lt = rd["llama"].get(lib, {}).get("threads", {}).get(str(t), {})
                        e = rd["e2h"].get(str(t), {}).get(kind)
                        if e and kind in lt:
                            per_e.append(e)
                            per_l.append(mean_sd(lt[kind]))
                    ver = next((rd["llama"][lib].get("llama_cpp_version") for rd in rec["rounds"]
                                if "error" not in rd["llama"].get(lib, {"error": 1})), "?")
                    row = {"model": name, "threads": t, "test": kind, "baseline": ver,
                           "e2h": pool_rounds(per_e), "llama": pool_rounds(per_l),
                           "round_ratios": [e[0] / l[0] for e, l in zip(per_e, per_l) if l[0] > 0],
                           "roofline_tok_s": roof}
                    rows.append(row)
        report["models"][name] = rec

    print()
    print_table(rows, a.n_prompt, a.n_gen, a.depth)
    llv = ", ".join(sorted({r["baseline"] for r in rows if r["llama"]})) or None
    if a.rounds > 1:
        print("\nratio e2h/llama.cpp in each round (engines alternate going first):")
        for r in rows:
            if r["round_ratios"]:
                test = test_name(r["test"], a.n_prompt, a.n_gen, a.depth)
                print(f"  {r['model']:<22} {r['threads']:>2} {test:<10} {r['baseline']:<9} "
                      + " ".join(f"{x:.2f}" for x in r["round_ratios"]))
    spread = (f"mean ± stdev over {a.reps} reps" if a.rounds == 1 else
              f"mean ± stdev of {a.rounds} rounds' means ({a.reps} reps each)")
    print(f"\nllama.cpp: llama-cpp-python {llv}, flash_attn={a.llama_fa}; {spread}; "
          f"roofline = membw(t) / weight bytes per token")
    report["rows"] = rows
    if a.json_out:
        a.json_out.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
