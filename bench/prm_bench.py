#!/usr/bin/env python3
"""PRM step scoring on a beam-search-shaped workload: e2h incremental vs full re-scoring (e2h, torch).

Workload (issue #13): B branches x S steps of ~T tokens each over one shared ~P-token problem (default
16 x 20 x 40 over 200). Round k appends step k to every branch and scores it. The PRM is a random-weight
Qwen2-1.5B-shaped model with a Skywork-style value head (protocol "value-head"), written once as bf16
safetensors; e2h runs it as stored (bf16) and quantized on load (q8_0). Variants, in one run:

  (a) e2h incremental: a policy engine (the tiny fixture policy; its cost is negligible) with the PRM
      attached; each round the branches' policy sequences get their new step text and
      e2h_prm_score_new_steps scores them: the PRM mirrors compute only the new step's tokens.
  (a') the same, but round 1 scores one branch before the others (variant "s"; it used to let the other
      branches' mirrors find the problem in the prefix cache: since new sibling mirrors share the problem,
      it is no longer needed and (a) = (a')).
  (b) e2h full re-scoring: every round, every branch's whole prefix (problem + steps 1..k) is scored by
      e2h_prm_score_texts on a fresh engine, so nothing is reused (what PRM-guided search tools do).
  (c) transformers on CPU (torch f32 / bf16): every round, one padded batch of the B full prefixes
      through Qwen2Model + the value head (the fastest way to run what the reference code runs; the
      reference also computes the LM logits, which we skip in its favour).

The variants run side by side: round k of every variant runs before round k + 1 of any (rotating which goes
first), so load changes on a shared machine hit all of them alike; the 1-minute load average is sampled after
each variant's round and reported (mean, min-max).

Reported per variant: PRM tokens processed (e2h: counted by the engine; torch: the unpadded prefix tokens,
padded count in brackets), wall time and CPU time (the process's user + system seconds over the variant's
rounds: on a shared, loaded machine the steadier figure, since wall time there is mostly waiting for a core),
plus ratios to (a). Scores of (a), (b) and (c) must agree (a check, printed as the max |diff| against torch f32).
Then the issue's goals, each with its measured ratio: (b) / (a) PRM tokens and wall time >= 10x per e2h weight
type; (c) / (a) wall time >= 20x for every pair of torch dtype and e2h weight type.

The issue's real shape (28 layers; a, c with both e2h types and torch bf16: ~42 minutes on 2 idle Zen 4
cores, most of it torch; add b and torch f32 for the complete comparison, hours):

    python3 bench/prm_bench.py --layers 28 --branches 16 --steps 20 -t 2 --variants a,c --torch-dtypes bf16

One layer keeps the complete comparison to ~10 minutes, but it overstates e2h against torch: torch's
per-forward overheads weigh more at 1 layer, and e2h runs the last layer on the scored rows only (all but
the K/V projections of one of 1 layers, against 1 of 28):

    python3 bench/prm_bench.py --layers 1 --branches 16 --steps 20 -t 2 -o prm_bench.json
    python3 bench/prm_bench.py --layers 2 --branches 4  # smaller, for a 2-core box
    python3 bench/prm_bench.py --variants a,b --dtypes q8_0

Needs `make` (build/libe2h.so with the PRM API), numpy, safetensors; torch/transformers for (c).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

# numpy's own OpenBLAS threads (nothing here needs them) spin-wait after any BLAS call and took
# ~1% of the cores in a profile of (a); torch keeps its own thread pool (set_num_threads below)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(REPO, "python"))
FIX = os.path.join(REPO, "tests", "fixtures", "prm")

# Qwen2-1.5B (Qwen/Qwen2.5-1.5B config.json): the backbone of Skywork-o1-Open-PRM-Qwen-2.5-1.5B
QWEN2_15B = dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, vocab_size=151936, rope_theta=1000000.0, rms_norm_eps=1e-6,
                 max_position_embeddings=32768, tie_word_embeddings=True)


def to_bf16_bits(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_bf16_safetensors(path, tensors):
    header, off = {}, 0
    for k, v in tensors.items():
        header[k] = {"dtype": "BF16", "shape": list(v.shape), "data_offsets": [off, off + v.nbytes]}
        off += v.nbytes
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for k, v in tensors.items():
            if k != "__metadata__":
                f.write(np.ascontiguousarray(v).tobytes())


def make_model(out, layers, seed=0):
    """Random bf16 Qwen2-1.5B-shaped value-head PRM with the value_head fixture's tokenizer."""
    cfg = dict(QWEN2_15B, num_hidden_layers=layers)
    marker = os.path.join(out, "config.json")
    if os.path.exists(marker):
        with open(marker) as f:
            if json.load(f).get("num_hidden_layers") == layers:
                return out
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    H, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = H // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * hd

    def mat(r, c, std=0.02):
        return to_bf16_bits(rng.standard_normal((r, c), dtype=np.float32) * std)

    def vec(n, base=0.0, std=0.0):
        return to_bf16_bits(base + std * rng.standard_normal(n, dtype=np.float32))

    t = {"model.embed_tokens.weight": mat(V, H), "model.norm.weight": vec(H, 1.0)}
    for i in range(layers):
        p = f"model.layers.{i}."
        t.update({p + "input_layernorm.weight": vec(H, 1.0), p + "post_attention_layernorm.weight": vec(H, 1.0),
                  p + "self_attn.q_proj.weight": mat(H, H), p + "self_attn.q_proj.bias": vec(H, 0, 0.02),
                  p + "self_attn.k_proj.weight": mat(kv, H), p + "self_attn.k_proj.bias": vec(kv, 0, 0.02),
                  p + "self_attn.v_proj.weight": mat(kv, H), p + "self_attn.v_proj.bias": vec(kv, 0, 0.02),
                  p + "self_attn.o_proj.weight": mat(H, H),
                  p + "mlp.gate_proj.weight": mat(F, H), p + "mlp.up_proj.weight": mat(F, H),
                  p + "mlp.down_proj.weight": mat(H, F)})
    t["v_head.summary.weight"] = mat(1, H, 0.05)
    t["v_head.summary.bias"] = vec(1, 0, 0.1)
    write_bf16_safetensors(os.path.join(out, "model.safetensors"), t)
    src = os.path.join(FIX, "value_head")
    with open(os.path.join(src, "tokenizer_config.json")) as f:
        tcfg = json.load(f)
    with open(os.path.join(src, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tcfg, f)
    ids = {a["content"]: a["id"] for a in tok["added_tokens"]}
    config = dict(cfg, architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_act="silu",
                  torch_dtype="bfloat16", use_sliding_window=False, sliding_window=None, max_window_layers=layers,
                  bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], attention_dropout=0.0,
                  initializer_range=0.02, use_cache=True)
    with open(marker, "w") as f:
        json.dump(config, f, indent=1)
    return out


def make_texts(tok, n_branches, n_steps, step_tokens, problem_tokens, seed=0):
    """Problem and B x S distinct steps built from MATH text, each cut to ~the target token count with the
    PRM's tokenizer; ASCII, no newlines."""
    words = []
    src = os.path.join(REPO, "..", "shared", "data", "math", "math_train.jsonl")
    if os.path.exists(src):
        with open(src, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= 400:
                    break
                words += [w for w in json.loads(line)["solution"].split() if w.isascii()]
    if len(words) < 1000:
        words = ("we compute the sum of the roots using the factorization and then simplify the fraction "
                 "so that the answer is an integer").split() * 200
    rng = np.random.default_rng(seed)

    def piece(n_tok):
        start = int(rng.integers(0, len(words) - 400))
        out = []
        for w in words[start:start + 400]:
            out.append(w)
            if len(tok.encode(" ".join(out))) >= n_tok:
                break
        return " ".join(out)

    problem = piece(problem_tokens)
    steps = [[piece(step_tokens) for _ in range(n_steps)] for _ in range(n_branches)]
    return problem, steps


# ---------------------------------------------------------------- variants
#
# Each variant is a generator that does one round (round k: step k of every branch scored) per next() and
# yields (wall seconds, CPU seconds, PRM tokens, scores of the round); both times cover the same region
# (e2h (a): its engine's setup counts in round 1; torch: model loading is outside). main() runs round k of
# every variant before round k + 1 of any (rotating which goes first), so load changes on a shared machine
# hit all variants alike.


def gen_e2h_incremental(e2h, prm, policy, problem, steps, threads, stagger=False, kernels=None):
    B, S = len(steps), len(steps[0])
    t0, c0 = time.perf_counter(), time.process_time()
    eng = e2h.Engine(policy, n_threads=threads, kernels=kernels)  # the PRM mirrors use the same kernels
    eng.attach_prm(prm)
    root = eng.create(policy.chat(problem), problem=problem)
    root.sync()
    branches = root.fork(B)
    root.release()
    setup, setup_cpu = time.perf_counter() - t0, time.process_time() - c0
    try:
        for k in range(S):
            t0, c0 = time.perf_counter(), time.process_time()
            before = eng.prm_tokens
            for b, s in enumerate(branches):
                s.append(steps[b][k] + "\n\n")
            if stagger and k == 0:
                # score one branch first: its mirror's problem prefix is then in the prefix cache when the
                # other mirrors are created (no longer needed: new sibling mirrors share the problem)
                sc = np.concatenate([eng.score_new_steps(branches[:1]), eng.score_new_steps(branches[1:])])
            else:
                sc = eng.score_new_steps(branches)
            yield (time.perf_counter() - t0 + setup, time.process_time() - c0 + setup_cpu,
                   eng.prm_tokens - before, sc)
            setup = setup_cpu = 0.0
    finally:
        for s in branches:
            s.release()
        eng.close()


def gen_e2h_full(e2h, prm, policy, problem, steps, threads, kernels=None):
    B, S = len(steps), len(steps[0])
    for k in range(S):
        t0, c0 = time.perf_counter(), time.process_time()
        tokens, sc = 0, np.zeros(B)
        for b in range(B):
            with e2h.Engine(policy, n_threads=threads, kernels=kernels) as eng:  # fresh PRM pool: nothing reused
                eng.attach_prm(prm)
                sc[b] = eng.score_texts(problem, steps[b][:k + 1])[-1]
                tokens += eng.prm_tokens
        yield time.perf_counter() - t0, time.process_time() - c0, tokens, sc


def prm_ids(tok, problem, steps, step_id, bos_text):
    """value-head layout (Skywork prepare_input): encode(bos + problem + '\\n') + per step encode(step) + [step_id]."""
    ids = list(tok.encode(bos_text + problem + "\n"))
    for s in steps:
        ids += list(tok.encode(s)) + [step_id]
    return ids


def gen_torch(model_dir, dtype, tok, problem, steps, threads):
    import torch
    from safetensors.torch import load_file
    from transformers import Qwen2Config, Qwen2Model
    torch.set_num_threads(threads)
    cfg = Qwen2Config.from_pretrained(model_dir)
    cfg._attn_implementation = "sdpa"
    tdt = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype]
    model = Qwen2Model.from_pretrained(model_dir, torch_dtype=tdt, config=cfg).eval()
    st = load_file(os.path.join(model_dir, "model.safetensors"))
    vw = st["v_head.summary.weight"].to(torch.float32)
    vb = st["v_head.summary.bias"].to(torch.float32)
    del st
    step_id = tok.encode("\n")[-1]
    bos = "<|endoftext|>"
    B, S = len(steps), len(steps[0])
    for k in range(S):
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            seqs = [prm_ids(tok, problem, steps[b][:k + 1], step_id, bos) for b in range(B)]
            L = max(len(s) for s in seqs)
            ids = torch.zeros((B, L), dtype=torch.long)
            mask = torch.zeros((B, L), dtype=torch.long)
            for b, s in enumerate(seqs):
                ids[b, :len(s)] = torch.tensor(s)
                mask[b, :len(s)] = 1
            h = model(input_ids=ids, attention_mask=mask).last_hidden_state
            sc = np.zeros(B)
            for b, s in enumerate(seqs):
                v = h[b, len(s) - 1].to(torch.float32) @ vw[0] + vb[0]
                sc[b] = float(torch.sigmoid(v))
        yield time.perf_counter() - t0, time.process_time() - c0, (sum(len(s) for s in seqs), B * L), sc


def report_goals(rows):
    """Prints the issue's goals with the measured ratios (wall time, and CPU time beside it); returns them."""
    def find(prefix, dt):
        return next((r for r in rows if r["variant"].startswith(f"{prefix} ") and
                     r["variant"].split(" ")[2].rstrip(",") == dt), None)
    e2h_dts = [r["variant"].split(" ")[2].rstrip(",") for r in rows if r["variant"].startswith("(a)")]
    torch_dts = [r["variant"].split(" ")[2].rstrip(",") for r in rows if r["variant"].startswith("(c)")]
    goals = []
    for dt in e2h_dts:
        ra, rb = find("(a) e2h", dt), find("(b) e2h", dt)
        if rb:
            goals.append((f"(b) e2h {dt} / (a) e2h {dt}, PRM tokens", rb["tokens"] / ra["tokens"], None, 10))
            goals.append((f"(b) e2h {dt} / (a) e2h {dt}, wall time", rb["seconds"] / ra["seconds"],
                          rb["cpu"] / ra["cpu"], 10))
        for tdt in torch_dts:
            rc = find("(c) transformers", tdt)
            goals.append((f"(c) torch {tdt} / (a) e2h {dt}, wall time", rc["seconds"] / ra["seconds"],
                          rc["cpu"] / ra["cpu"], 20))
    if goals:
        print()
        print("| goal | ratio (wall) | ratio (CPU s) | target | met |")
        print("|---|---:|---:|---:|---|")
        for name, v, c, target in goals:
            print(f"| {name} | {v:.1f}x | " + (f"{c:.1f}x" if c is not None else "-") +
                  f" | >= {target}x | {'yes' if v >= target else 'NO'} |")
    return [dict(goal=g, ratio=v, cpu_ratio=c, target=t, met=v >= t) for g, v, c, t in goals]


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--branches", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=None,
                    help="run only the first N rounds of the workload (e.g. torch f32 as a score reference "
                         "at 28 layers, where all 20 rounds take over an hour)")
    ap.add_argument("--step-tokens", type=int, default=40)
    ap.add_argument("--problem-tokens", type=int, default=200)
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--variants", default="a,b,c", help="a, s (= a with the first round staggered), b, c")
    ap.add_argument("--dtypes", default="q8_0,bf16", help="e2h weight types: bf16 (as stored), q8_0 (on load)")
    ap.add_argument("--torch-dtypes", default="f32,bf16")
    ap.add_argument("--full-dtypes", default=None, help="e2h weight types for (b) (default: --dtypes)")
    ap.add_argument("--model-dir", default=os.path.join(tempfile.gettempdir(), "e2h_prm_bench_qwen2_1.5b"))
    ap.add_argument("--kv-mem", type=float, default=2.0)
    ap.add_argument("--kernels", default="auto",
                    help="e2h kernel sets, comma-separated (auto, avx512, avx512bf16, ...): each e2h variant "
                         "runs once per set, e.g. auto,avx512 for bf16 with and without vdpbf16ps")
    ap.add_argument("-o", "--out", default=None, help="write the results as JSON")
    a = ap.parse_args(argv)
    variants = set(a.variants.split(","))
    if a.rounds is not None and not 1 <= a.rounds <= a.steps:
        ap.error(f"--rounds must be in 1..{a.steps}")
    n_rounds = a.steps if a.rounds is None else a.rounds

    import e2h
    mdir = make_model(f"{a.model_dir}_L{a.layers}", a.layers)
    policy = e2h.Model(os.path.join(FIX, "policy"))
    tok = e2h.Tokenizer.load(mdir)
    problem, steps = make_texts(tok, a.branches, a.steps, a.step_tokens, a.problem_tokens)
    n_prob = len(tok.encode("<|endoftext|>" + problem + "\n"))
    n_step = np.mean([len(tok.encode(s)) + 1 for br in steps for s in br])
    print(f"prm_bench: Qwen2-1.5B shape, {a.layers} layers, value head; {a.branches} branches x {a.steps} steps "
          f"of {n_step:.1f} PRM tokens over a {n_prob}-token problem; {a.threads} threads; CPU {cpu_model()}; "
          f"libe2h {e2h.library_path()}")
    print(f"command: python3 bench/prm_bench.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    # the variants, each a generator of rounds
    gens, prms = [], []
    if "c" in variants:
        for dt in a.torch_dtypes.split(","):
            gens.append((f"(c) transformers {dt}, full re-scoring", gen_torch(mdir, dt, tok, problem, steps, a.threads)))
    kern_list = a.kernels.split(",")
    for dt in a.dtypes.split(","):
      for kn in kern_list:
        quant = None if dt == "bf16" else dt
        kernels = None if kn == "auto" else kn
        tag = dt if len(kern_list) == 1 else f"{dt} [{e2h.kernels_resolve(kernels)}]"
        prm = e2h.PRM(mdir, protocol="value-head", quant=quant, n_threads=a.threads, kv_mem_gib=a.kv_mem)
        prms.append(prm)
        if "a" in variants:
            gens.append((f"(a) e2h {tag}, incremental",
                         gen_e2h_incremental(e2h, prm, policy, problem, steps, a.threads, kernels=kernels)))
        if "s" in variants:
            gens.append((f"(a') e2h {tag}, incremental, first round staggered",
                         gen_e2h_incremental(e2h, prm, policy, problem, steps, a.threads, stagger=True,
                                             kernels=kernels)))
        if "b" in variants and dt in (a.full_dtypes or a.dtypes).split(","):
            gens.append((f"(b) e2h {tag}, full re-scoring",
                         gen_e2h_full(e2h, prm, policy, problem, steps, a.threads, kernels=kernels)))
    rows = [dict(variant=name, tokens=0, padded=0, seconds=0.0, scores=np.zeros((a.branches, a.steps)), load=[])
            for name, _ in gens]
    for r in rows:
        r["cpu"] = 0.0
    t_start = time.time()
    for k in range(n_rounds):
        n = len(gens)
        for j in [(k + i) % n for i in range(n)]:  # rotate which variant goes first
            secs, cpu, toks, sc = next(gens[j][1])
            r = rows[j]
            r["cpu"] += cpu
            r["seconds"] += secs
            if isinstance(toks, tuple):
                r["tokens"] += toks[0]
                r["padded"] += toks[1]
            else:
                r["tokens"] += toks
            r["scores"][:, k] = sc
            r["load"].append(os.getloadavg()[0])
        print(f"  round {k + 1}/{n_rounds} done ({time.time() - t_start:.0f} s, load {os.getloadavg()[0]:.1f}): "
              + ", ".join(f"{r['variant'].split(',')[0]} {r['seconds']:.1f} s" for r in rows), flush=True)
    for _, g in gens:
        g.close()
    for prm in prms:
        prm.close()
    # scores are checked against torch f32 (or torch bf16 when f32 was not run, or e2h (b) without torch)
    ref_row = next((r for r in rows if r["variant"].startswith("(c) transformers f32")),
                   next((r for r in rows if r["variant"].startswith("(c)")),
                        next((r for r in rows if r["variant"].startswith("(b)")), None)))
    ref = ref_row["scores"] if ref_row else None
    ref_name = ref_row["variant"].split(",")[0] if ref_row else "-"
    # tokens a full re-scoring processes (every round, every branch's whole prefix), whether or not run
    step_id = tok.encode("\n")[-1]
    full_tokens = sum(len(prm_ids(tok, problem, steps[b][:k + 1], step_id, "<|endoftext|>"))
                      for k in range(n_rounds) for b in range(a.branches))
    inc = {r["variant"].split(" ")[2].rstrip(","): r for r in rows if r["variant"].startswith("(a)")}
    print()
    print(f"full re-scoring processes {full_tokens} PRM tokens in this workload (sum of all prefixes)")
    print()
    cols = [f"time vs (a) {d}" for d in inc]
    print("| variant | PRM tokens | wall s | CPU s | tokens/s | tokens vs (a) | " + " | ".join(cols) +
          f" | max abs diff vs {ref_name} | load avg (min-max) |")
    print("|---|---:|---:|---:|---:|---:|" + "---:|" * len(cols) + "---:|---|")
    for r in rows:
        tok_s = f"{r['tokens']}" + (f" ({r['padded']} padded)" if r.get("padded") else "")
        a_tok = min((x["tokens"] for x in inc.values()), default=0)
        rt = f"{r['tokens'] / a_tok:.1f}x" if a_tok else "-"
        rs = " | ".join(f"{r['seconds'] / x['seconds']:.1f}x" for x in inc.values())
        diff = f"{np.abs(r['scores'] - ref).max():.2g}" if ref is not None else "-"
        ld = f"{np.mean(r['load']):.1f} ({min(r['load']):.1f}-{max(r['load']):.1f})"
        print(f"| {r['variant']} | {tok_s} | {r['seconds']:.1f} | {r['cpu']:.1f} | {r['tokens'] / r['seconds']:.0f} | {rt} | "
              + (rs + " | " if rs else "") + f"{diff} | {ld} |")
    if n_rounds == a.steps:
        goals = report_goals(rows)
    else:  # the goals are about the whole workload; a prefix of it has other ratios
        print(f"\n(goals not evaluated: {n_rounds} of {a.steps} rounds run)")
        goals = []
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"args": vars(a), "cpu": cpu_model(), "problem_tokens": n_prob, "mean_step_tokens": n_step,
                       "full_rescoring_tokens": full_tokens, "goals": goals,
                       "rows": [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
                                for r in rows]}, f)
    tok.close()
    policy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
