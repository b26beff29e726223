#!/usr/bin/env python3
"""Step-level beam search (N beams, width M) over MATH500 problems: e2h (`e2h search --method
beam`, the search inside the engine over one paged KV cache, PRM scoring incremental) side by
side with the same search written as a Python loop over llama-cpp-python, as users run it on
a CPU today (search-and-learn's structure: the policy samples one step per beam, the PRM
re-scores each beam's full prefix from scratch).

Same method parameters on both sides: N, M, temperature 0.8, top_p 1, step delimiter
"\\n\\n", up to --max-rounds rounds (the last writes to the end), --max-tokens per solution,
ranking by the newest step's score, the same prompt (ChatML system instruction + problem),
the same PRM model and layout ("e2h-paper": "# Question\\n\\n{problem}\\n\\n# Solution\\n\\n"
+ steps, the step read at the first "\\n" after it, sigmoid of the mean logit). The PRM is a
random-weight Q4_0 model of SmolLM2-135M's shape and tokenizer (tools/write_random_gguf.py): its scores are
noise, its cost is real. The samples differ (different RNGs), so tokens are reported per
side: policy tokens = tokens the policy computed (prompt + every branch's tokens; llama.cpp
reuses the longest cached prefix of its one sequence), PRM tokens = tokens the PRM computed.

    python3 bench/search_bench.py --n-problems 20 -n 16 -M 4 -t 2 --interleave --log runs.jsonl

Prints one JSON line per engine and a comparison; see bench/README.md for figures. Without
--interleave, e2h solves all the problems in one `e2h search` process with --search-batch P
(default 4: P problems at once, their beams decoded in shared batches, as search-and-learn
batches problems into one vLLM call), then the loop solves them one after the other.

--interleave (for a shared machine whose load varies): problem by problem, e2h solves problem
i (one `e2h search` process per problem, its model load included in its time), then the loop
solves it (the loop's models are loaded once, before the clock), the order alternating per
problem; the load average is recorded before each run, each problem's result is appended to
--log, and the comparison is the ratio of the summed wall times. `--summarize LOG` prints the
table from such a log (e.g. of an interrupted run). On a shared machine the CPU seconds each side
consumed (user + sys, recorded too) are the steadier comparison: wall time there is mostly
waiting for a core.
"""
import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SYSTEM = ("Solve the following math problem step by step. Separate the steps with a blank line. "
          "Put the final answer in \\boxed{}.")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def load_problems(path, k):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
            if len(rows) == k:
                break
    return rows


# ------------------------------------------------------------------ e2h

def run_e2h(a, probs_path, prm, out=None):
    out = out or os.path.join(a.work, "e2h_results.jsonl")
    if os.path.exists(out):
        os.remove(out)
    cmd = [a.e2h, "search", "--policy", a.policy, "--prm", prm, "--prm-protocol", "e2h-paper",
           "--problems", probs_path, "--method", "beam", "-n", str(a.n), "-M", str(a.m),
           "--seed", "42", "--max-tokens", str(a.max_tokens), "--max-rounds", str(a.max_rounds),
           "-t", str(a.threads), "-o", out, "--quiet", "--search-batch", str(a.search_batch)]
    if a.e2h_kv_f16:
        cmd.append("--kv-f16")
    t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)  # set for llama.cpp's OpenMP only (see --llama-omp-wait)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall, c1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        raise SystemExit(f"e2h search failed ({p.returncode}): {p.stderr}")
    with open(out) as f:
        rows = [json.loads(x) for x in f][1:]
    return {"engine": "e2h", "command": " ".join(cmd), "problems": len(rows), "wall_s": wall,
            "policy_tokens": sum(r["policy_tokens"] for r in rows),
            "prm_tokens": sum(r["prm_tokens"] for r in rows),
            # with --search-batch > 1 the problems overlap: their seconds are latencies
            "search_s": sum(r["seconds"] for r in rows) if a.search_batch == 1 else None,
            "search_batch": a.search_batch, "generated_tokens": None,
            "cpu_s": (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)}


# ------------------------------------------------------------------ llama-cpp-python loop

class LlamaBeam:
    """Beam search as a Python loop over llama-cpp-python (search-and-learn's structure)."""

    def __init__(self, a, prm_path):
        import llama_cpp
        self.np = __import__("numpy")
        self.a = a
        kw = dict(n_ctx=a.n_ctx, n_threads=a.threads, n_threads_batch=a.threads, n_batch=512,
                  verbose=False, seed=42)
        self.pol = llama_cpp.Llama(model_path=a.policy, **kw)
        # logits of the last evaluated token only: the loop scores only the newest step, whose
        # read position is the prefix's last token, so computing (and copying) every position's
        # 49152 logits, as logits_all=True does, would handicap the baseline
        self.prm = llama_cpp.Llama(model_path=prm_path, logits_all=False, **kw)
        self.eos = self.pol.token_eos()
        self.policy_tokens = 0
        self.prm_tokens = 0
        self.rng_calls = 0

    def sample_step(self, prompt, toks, budget, final):
        """One step for one beam: sample until "\\n\\n" in the new text, EOS or the budget."""
        pol = self.pol
        ids = prompt + toks
        # tokens llama.cpp must compute: those past the longest prefix it still holds
        held = list(pol._input_ids)
        common = 0
        for x, y in zip(held, ids):
            if x != y:
                break
            common += 1
        self.policy_tokens += len(ids) - min(common, len(ids) - 1)
        self.rng_calls += 1
        pol.set_seed(42 + self.rng_calls)
        new, text, done = [], b"", False
        for t in pol.generate(ids, temp=0.8, top_p=1.0, top_k=0, min_p=0.0, repeat_penalty=1.0,
                              reset=True):
            if t == self.eos:
                done = True
                break
            new.append(t)
            self.policy_tokens += 1
            text += pol.detokenize([t])
            if len(toks) + len(new) >= budget:
                done = True
                break
            if not final and b"\n\n" in text:
                break
        if final:
            done = True
        return new, done

    def prm_score(self, problem, steps_text):
        """Scores a beam's full prefix from scratch (as search-and-learn's PRM call); returns
        the newest step's score."""
        prm = self.prm
        head = f"# Question\n\n{problem}\n\n# Solution\n\n"
        ids = prm.tokenize(head.encode(), add_bos=True, special=False)
        read = []
        for s in steps_text:
            ids += prm.tokenize(s.encode(), add_bos=False, special=False)
            read.append(len(ids) - 1)
        prm.reset()
        prm.eval(ids)
        self.prm_tokens += len(ids)
        # the newest step is read at the prefix's last token (read[-1] == len(ids) - 1): the
        # logits llama.cpp kept for the last token of the last batch
        assert read[-1] == len(ids) - 1
        row = self.np.ctypeslib.as_array(prm._ctx.get_logits(), shape=(prm.n_vocab(),))
        return 1.0 / (1.0 + math.exp(-float(self.np.mean(row))))

    def solve(self, problem):
        a = self.a
        chat = (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{problem}<|im_end|>\n"
                f"<|im_start|>assistant\n")
        prompt = self.pol.tokenize(chat.encode(), add_bos=False, special=True)
        beams = [{"toks": [], "steps": [], "score": 0.0} for _ in range(a.n)]
        completed = []
        keep = a.n // a.m
        for r in range(a.max_rounds):
            final = r == a.max_rounds - 1
            for b in beams:
                new, done = self.sample_step(prompt, b["toks"], a.max_tokens, final)
                b["toks"] += new
                b["steps"].append(self.pol.detokenize(new).decode("utf-8", "replace"))
                b["done"] = done
                b["score"] = self.prm_score(problem, b["steps"])
            active = []
            for b in beams:
                (completed if b["done"] else active).append(b)
            if len(completed) >= a.n or not active:
                break
            order = sorted(range(len(active)), key=lambda i: -active[i]["score"])[:keep]
            active = [active[i] for i in sorted(order)]
            beams = [{"toks": list(active[i % len(active)]["toks"]),
                      "steps": list(active[i % len(active)]["steps"]), "score": 0.0}
                     for i in range(a.n)]
        return completed[:a.n]


def run_interleaved(a, problems, prm):
    """Per problem: e2h then the loop (even problems) or the loop then e2h (odd ones)."""
    import llama_cpp
    lb = LlamaBeam(a, prm)
    log = open(a.log, "a") if a.log else None
    for i, p in enumerate(problems):
        if i < a.first:
            continue
        pp = os.path.join(a.work, f"problem{i}.jsonl")
        with open(pp, "w") as f:
            f.write(json.dumps(p) + "\n")
        rows = {}
        for side in (("e2h", "loop") if i % 2 == 0 else ("loop", "e2h")):
            load = os.getloadavg()[0]
            if side == "e2h":
                r = run_e2h(a, pp, prm, os.path.join(a.work, f"e2h_results{i}.jsonl"))
                r = {k: r[k] for k in ("wall_s", "search_s", "cpu_s", "policy_tokens", "prm_tokens")}
            else:
                pol0, prm0 = lb.policy_tokens, lb.prm_tokens
                t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
                lb.solve(p["problem"])
                c1 = resource.getrusage(resource.RUSAGE_SELF)  # this process: llama.cpp's threads too
                r = {"wall_s": time.perf_counter() - t0, "policy_tokens": lb.policy_tokens - pol0,
                     "prm_tokens": lb.prm_tokens - prm0,
                     "cpu_s": (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)}
            r["load1_before"] = load
            r["load1_after"] = os.getloadavg()[0]
            rows[side] = r
        row = {"i": i, "unique_id": p.get("unique_id"), "first": "e2h" if i % 2 == 0 else "loop",
               "n": a.n, "m": a.m, "max_tokens": a.max_tokens, "max_rounds": a.max_rounds,
               "threads": a.threads, "llama_cpp": llama_cpp.__version__,
               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), **rows}
        print(json.dumps(row), flush=True)
        if log:
            log.write(json.dumps(row) + "\n")
            log.flush()
    if log:
        log.close()


def summarize(path):
    rows = [json.loads(x) for x in open(path) if x.strip()]
    if not rows:
        raise SystemExit(f"{path}: no rows")
    r0 = rows[0]
    print(f"cpu: {cpu_model()}; threads {r0['threads']}; beam N={r0['n']} M={r0['m']}, "
          f"max_tokens {r0['max_tokens']}, max_rounds {r0['max_rounds']}; {len(rows)} problems, "
          f"interleaved per problem (order alternating); llama.cpp OMP_WAIT_POLICY="
          f"{r0.get('omp_wait_policy')}")
    loads = [r[s][k] for r in rows for s in ("e2h", "loop") for k in ("load1_before", "load1_after")]
    print(f"load average (1 min) around the runs: min {min(loads):.1f}, mean {sum(loads) / len(loads):.1f}, "
          f"max {max(loads):.1f}")
    print(f"{'engine':44s} {'wall s':>9s} {'problems/min':>12s} {'policy tok':>11s} {'PRM tok':>10s}")
    tot = {}
    for side, name in (("e2h", "e2h search --method beam"),
                       ("loop", f"llama-cpp-python {r0['llama_cpp']} (Python loop)")):
        w = sum(r[side]["wall_s"] for r in rows)
        tot[side] = w
        print(f"{name:44s} {w:9.1f} {60 * len(rows) / w:12.2f} {sum(r[side]['policy_tokens'] for r in rows):11d} "
              f"{sum(r[side]['prm_tokens'] for r in rows):10d}")
    es = sum(r["e2h"].get("search_s", r["e2h"]["wall_s"]) for r in rows)
    print(f"e2h wall s includes starting a process and loading both models per problem; its in-engine "
          f"search time: {es:.1f} s -> speed-up {tot['loop'] / es:.1f}x over the loop's solve time "
          f"(its models loaded once, before the clock)")
    if all("cpu_s" in r[side] for r in rows for side in ("e2h", "loop")):
        ce, cl = (sum(r[side]["cpu_s"] for r in rows) for side in ("e2h", "loop"))
        print(f"CPU seconds (user + sys; spin-waits count): e2h {ce:.1f}, loop {cl:.1f} -> ratio {cl / ce:.1f}x")
    ratios = sorted(r["loop"]["wall_s"] / r["e2h"]["wall_s"] for r in rows)
    print(f"e2h speed-up (ratio of summed wall times): {tot['loop'] / tot['e2h']:.1f}x; per problem: "
          f"min {ratios[0]:.1f}x, median {ratios[len(ratios) // 2]:.1f}x, max {ratios[-1]:.1f}x")


def run_llama(a, problems, prm):
    lb = LlamaBeam(a, prm)
    t0 = time.perf_counter()
    for i, p in enumerate(problems):
        lb.solve(p["problem"])
        # progress (stderr): the loop takes over an hour for 20 problems on one core
        print(json.dumps({"i": i, "t": time.perf_counter() - t0, "policy_tokens": lb.policy_tokens,
                          "prm_tokens": lb.prm_tokens, "load1": os.getloadavg()[0]}), file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0
    import llama_cpp
    return {"engine": f"llama-cpp-python {llama_cpp.__version__} (Python loop)",
            "problems": len(problems), "wall_s": wall, "policy_tokens": lb.policy_tokens,
            "prm_tokens": lb.prm_tokens}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", default=os.path.join(ROOT, "..", "shared", "data", "math", "math500.jsonl"))
    ap.add_argument("--n-problems", type=int, default=20)
    ap.add_argument("-n", type=int, default=16)
    ap.add_argument("-M", dest="m", type=int, default=4)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=512, help="per solution (default 512)")
    ap.add_argument("--max-rounds", type=int, default=40)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--policy", default=os.path.join(ROOT, "weights", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--prm", help="PRM GGUF (default: a random-weight SmolLM2-shaped model made now)")
    ap.add_argument("--prm-type", default="q4_0", choices=["q4_0", "q4_1", "q8_0"],
                    help="weight type of the random PRM made when --prm is not given (default q4_0: "
                         "llama.cpp's fastest CPU path, repacked at load; its Q4_1 prefill is 2.3x slower "
                         "here, so q4_0 is the stronger baseline)")
    ap.add_argument("--e2h", default=os.path.join(ROOT, "build", "e2h"))
    ap.add_argument("--search-batch", type=int, default=4,
                    help="e2h search --search-batch: problems searched at once, their beams decoded in "
                         "shared batches (default 4; search-and-learn batches problems the same way). "
                         "With --interleave each problem runs alone, so this has no effect there")
    ap.add_argument("--e2h-kv-f16", action="store_true",
                    help="e2h keeps K/V in f16, as llama.cpp's default (type_k/type_v f16) does in the loop; "
                         "e2h's default is f32")
    ap.add_argument("--work", default=None)
    ap.add_argument("--skip-llama", action="store_true")
    ap.add_argument("--skip-e2h", action="store_true")
    ap.add_argument("--interleave", action="store_true",
                    help="alternate the sides problem by problem (a machine whose load varies)")
    ap.add_argument("--first", type=int, default=0,
                    help="with --interleave: start at this problem index (continue a stopped run's --log)")
    ap.add_argument("--log", help="with --interleave: append each problem's result (JSONL) here")
    ap.add_argument("--summarize", metavar="LOG", help="print the comparison of an --interleave log and exit")
    ap.add_argument("--llama-omp-wait", default="passive", choices=["passive", "active", "default"],
                    help="OMP_WAIT_POLICY for llama.cpp's OpenMP threads (default passive: on a loaded "
                         "machine its spin-waiting 2 threads fall to ~1/10 of their speed; passive keeps "
                         "the baseline at its 1-thread speed or better)")
    a = ap.parse_args()
    if a.llama_omp_wait != "default":
        os.environ["OMP_WAIT_POLICY"] = a.llama_omp_wait.upper()  # read when libgomp loads
    if a.summarize:
        summarize(a.summarize)
        return
    a.work = a.work or tempfile.mkdtemp(prefix="search_bench_")
    problems = load_problems(a.problems, a.n_problems)
    probs_path = os.path.join(a.work, "problems.jsonl")
    with open(probs_path, "w") as f:
        for p in problems:
            f.write(json.dumps(p) + "\n")
    prm = a.prm
    if not prm:
        prm = os.path.join(a.work, "prm-random.gguf")
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "write_random_gguf.py"), "--preset",
                        "smollm2-135m", "--type", a.prm_type, "-o", prm], check=True)
    if a.interleave:
        if not a.log:
            a.log = os.path.join(a.work, "interleaved.jsonl")
        run_interleaved(a, problems, prm)
        summarize(a.log)
        return
    res = []
    if not a.skip_e2h:
        res.append(run_e2h(a, probs_path, prm))
        print(json.dumps(res[-1]), flush=True)
    if not a.skip_llama:
        res.append(run_llama(a, problems, prm))
        print(json.dumps(res[-1]), flush=True)
    print(f"cpu: {cpu_model()}, threads {a.threads}; beam N={a.n} M={a.m}, {len(problems)} problems, "
          f"max_tokens {a.max_tokens}, max_rounds {a.max_rounds}")
    print(f"{'engine':44s} {'wall s':>9s} {'problems/min':>12s} {'policy tok':>11s} {'PRM tok':>10s}")
    for r in res:
        print(f"{r['engine']:44s} {r['wall_s']:9.1f} {60 * r['problems'] / r['wall_s']:12.2f} "
              f"{r['policy_tokens']:11d} {r['prm_tokens']:10d}")
    if len(res) == 2:
        print(f"e2h speed-up (wall): {res[1]['wall_s'] / res[0]['wall_s']:.1f}x")


if __name__ == "__main__":
    main()
