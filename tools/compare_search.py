#!/usr/bin/env python3
"""Accuracy of BoN vs beam vs DVTS vs REBASE at (about) equal generated tokens on the hard
levels of the e2h job's task (issue #14), every method guided by the same PRM (by default the
shipped easy-trained head, weights/e2h_head_smollm2_easy.safetensors, on SmolLM2's hidden states).

Generated tokens = policy_tokens - prompt_tokens of `e2h search` (every token the policy
generated on every branch, pruned ones included; the prompt is computed once per problem). The
methods spend them differently at the same N (beam and DVTS extend N branches a round, REBASE's
width shrinks as solutions finish), so N is chosen per method:

  1 pilot   every method at --base-n on the first --pilot problems (`e2h search --limit`)
  2 match   N_m = base_n * T_bon / T_m (T = mean generated tokens per problem in the pilot),
            rounded to what the method allows (a multiple of -M for beam and DVTS)
  3 run     every method at its N_m on all problems, --chunk problems per method in turn
            (resumable: the pilot's file is reused when N_m = base_n), then the table: N, actual generated tokens per problem, accuracy of
            the selected answer per level and over all (95% bootstrap CI over problems, as
            `e2h report`), its paired difference to BoN, and the share of problems with any
            correct sample (coverage)

The defaults are the demo's (`make demo` / tools/e2h_job.py): the generated leveled task
(tools/gen_leveled_task.py --seed 0 --start 100000, levels 4,5), the job's system prompt and
few-shot examples, temperature 0.7, 160 tokens, seed 1.

    nice -n 10 python3 tools/compare_search.py --per-level 20 --base-n 8 -o runs/compare_search

--n-for bon=8,beam=8,... skips the pilot and uses these N. --markdown prints the table as
Markdown (bench/README.md); --json FILE writes the numbers.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2h_job import bootstrap  # noqa: E402  (mean and percentile 95% CI, as e2h report)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(REPO, "tools")
METHODS = ("bon", "beam", "dvts", "rebase")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)




def read_results(path):
    with open(path) as f:
        rows = [json.loads(x) for x in f if x.strip()]
    return rows[0]["config"], rows[1:]


def generated(row):
    if "prompt_tokens" not in row:
        raise SystemExit("results without prompt_tokens: rebuild e2h (e2h search records it)")
    return row["policy_tokens"] - row["prompt_tokens"]


def allowed_n(method, x, m):
    """The N nearest to x that the method takes (beam, DVTS: a multiple of M, at least M)."""
    if method in ("beam", "dvts"):
        return max(m, int(round(x / m)) * m)
    return max(1, int(round(x)))


def run_search(a, method, n, problems, limit=None):
    out = os.path.join(a.out, f"results_{method}{n}.jsonl")
    cmd = [a.e2h, "search", "--policy", a.policy, "--problems", problems, "--method", method,
           "-n", str(n), "--seed", str(a.seed), "--temp", str(a.temp), "--max-tokens", str(a.max_tokens),
           "--max-rounds", str(a.max_rounds), "-t", str(a.threads), "--kv-mem", str(a.kv_mem),
           "-o", out, "--quiet"]
    cmd += ["--prm", a.prm] + (["--prm-protocol", a.prm_protocol] if a.prm_protocol else []) if a.prm \
        else ["--prm-head", a.head]
    if a.system is not None:
        cmd += ["--system", open(a.system[1:]).read().strip() if a.system.startswith("@") else a.system]
    if a.fewshot:
        cmd += ["--fewshot", a.fewshot]
    if method in ("beam", "dvts"):
        cmd += ["-M", str(a.m)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    log(f"{method} N={n}" + (f" (up to {limit} new problems)" if limit is not None else ""))
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"compare-search: e2h search failed ({p.returncode}): {p.stderr.strip()}")
    log(f"  {time.time() - t0:.0f} s")
    return out


def choose_n(a, problems):
    n = {}
    if a.n_for:
        for kv in a.n_for.split(","):
            k, v = kv.split("=")
            if k not in a.methods:
                raise SystemExit(f"--n-for: {k} is not one of --methods")
            n[k] = int(v)
        missing = [m for m in a.methods if m not in n]
        if missing:
            raise SystemExit(f"--n-for: no N for {', '.join(missing)}")
        return n, None
    pilot = {}
    first = []  # unique ids of the pilot's problems (e2h search's default for a line without one)
    with open(problems) as f:
        for i, x in enumerate(f):
            if len(first) == a.pilot:
                break
            if x.strip():
                first.append(json.loads(x).get("unique_id") or f"line:{i + 1}")
    for m in a.methods:
        out = os.path.join(a.out, f"results_{m}{a.base_n}.jsonl")
        done = {r["unique_id"] for r in read_results(out)[1]} if os.path.exists(out) else set()
        todo = sum(1 for u in first if u not in done)  # --limit counts new problems, in file order
        if todo:
            run_search(a, m, a.base_n, problems, limit=todo)
        rows = [r for r in read_results(out)[1] if r["unique_id"] in set(first)]
        pilot[m] = sum(generated(r) for r in rows) / max(1, len(rows))
    ref = pilot.get("bon", pilot[a.methods[0]])
    for m in a.methods:
        n[m] = allowed_n(m, a.base_n * ref / pilot[m], a.m) if pilot[m] > 0 else a.base_n
        log(f"pilot: {m} N={a.base_n}: {pilot[m]:.0f} generated tokens/problem -> N={n[m]}")
    return n, pilot


def summarize(a, n, pilot, files):
    out = {"config": {k: getattr(a, k) for k in ("policy", "head", "prm", "max_tokens", "temp", "seed", "m",
                                                 "base_n", "pilot")},
           "pilot_tokens": pilot, "methods": {}}
    ids = None
    for m in a.methods:
        _, rows = read_results(files[m])
        got = {r["unique_id"] for r in rows}
        ids = got if ids is None else ids & got
    ids = sorted(ids or [])
    levels = sorted({r.get("level") for m in a.methods for r in read_results(files[m])[1]
                     if r["unique_id"] in ids and r.get("level") is not None})
    for m in a.methods:
        _, rows = read_results(files[m])
        rows = {r["unique_id"]: r for r in rows if r["unique_id"] in ids}
        res = {"n": n[m], "problems": len(rows),
               "generated_tokens_per_problem": sum(generated(r) for r in rows.values()) / max(1, len(rows)),
               "accuracy": {}, "coverage": {}}
        for lv in levels + ["all"]:
            sel = [r for r in rows.values() if lv == "all" or r.get("level") == lv]
            res["accuracy"][str(lv)] = bootstrap([float(bool(r["selected"]["correct"])) for r in sel])
            res["coverage"][str(lv)] = bootstrap([float(any(s["correct"] for s in r["samples"])) for r in sel])
        res["correct"] = {u: bool(r["selected"]["correct"]) for u, r in rows.items()}
        out["methods"][m] = res
    # paired: accuracy minus the reference method's (BoN) on the same problems
    ref = out["methods"].get("bon")
    for m, res in out["methods"].items():
        if ref is not None and res is not ref:
            res["minus_bon"] = bootstrap([float(res["correct"][u]) - float(ref["correct"][u]) for u in ids], seed=1)
    for res in out["methods"].values():
        del res["correct"]
    out["levels"] = levels
    out["problems"] = len(ids)
    return out


def print_table(s, markdown):
    levels = [str(x) for x in s["levels"]] + ["all"]
    ref = s["methods"].get("bon", next(iter(s["methods"].values())))["generated_tokens_per_problem"]

    def cell(t):
        return f"{t[0]:.3f} [{t[1]:.2f}, {t[2]:.2f}]"
    head = ["method", "N", "gen. tokens/problem", "vs BoN"] + \
        [f"accuracy L{lv}" if lv != "all" else "accuracy (all)" for lv in levels] + ["minus BoN (paired)", "coverage (all)"]
    lines = []
    for m, r in s["methods"].items():
        t = r["generated_tokens_per_problem"]
        lines.append([m, str(r["n"]), f"{t:.0f}", f"{t / ref:.2f}"] +
                     [cell(r["accuracy"][lv]) for lv in levels] +
                     [f"{r['minus_bon'][0]:+.3f} [{r['minus_bon'][1]:+.2f}, {r['minus_bon'][2]:+.2f}]"
                      if "minus_bon" in r else "-", cell(r["coverage"]["all"])])
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for x in lines:
            print("| " + " | ".join(x) + " |")
    else:
        w = [max(len(h), *(len(x[i]) for x in lines)) for i, h in enumerate(head)]
        print("  ".join(h.ljust(w[i]) for i, h in enumerate(head)))
        for x in lines:
            print("  ".join(c.ljust(w[i]) for i, c in enumerate(x)))
    print(f"{s['problems']} problems (levels {', '.join(map(str, s['levels']))}); accuracy of the selected "
          f"answer, its paired difference to BoN on the same problems, and coverage (any sample "
          f"correct); 95% bootstrap CIs over problems")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--e2h", default=os.path.join(REPO, "build", "e2h"))
    ap.add_argument("--policy", default=os.path.join(REPO, "weights", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--head", default=os.path.join(REPO, "weights", "e2h_head_smollm2_easy.safetensors"))
    ap.add_argument("--prm", help="a PRM model instead of the head")
    ap.add_argument("--prm-protocol")
    ap.add_argument("--problems", help="problems JSONL (default: the job's hard levels, generated)")
    ap.add_argument("--per-level", type=int, default=20, help="generated problems per level (default 20)")
    ap.add_argument("--levels", default="4,5")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--base-n", type=int, default=8, help="BoN's N, the token budget (default 8)")
    ap.add_argument("-M", dest="m", type=int, default=4, help="beam / DVTS width (default 4)")
    ap.add_argument("--n-for", help="method=N,... instead of the pilot")
    ap.add_argument("--pilot", type=int, default=4, help="problems of the pilot (default 4)")
    ap.add_argument("--chunk", type=int, default=10, help="problems per method in turn (default 10)")
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--max-rounds", type=int, default=40)
    ap.add_argument("--temp", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--system", default="@" + os.path.join(TOOLS, "job", "system.txt"))
    ap.add_argument("--fewshot", default=os.path.join(TOOLS, "job", "fewshot.jsonl"))
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--kv-mem", type=float, default=2.0)
    ap.add_argument("-o", "--out", default=os.path.join(REPO, "runs", "compare_search"))
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--summarize-only", action="store_true", help="no new runs: the table of what is in --out")
    a = ap.parse_args(argv)
    a.methods = [m for m in a.methods.split(",") if m]
    bad = [m for m in a.methods if m not in METHODS]
    if bad or not a.methods:
        ap.error(f"--methods: one or more of {', '.join(METHODS)}")
    if a.base_n < 1 or a.m < 1 or a.pilot < 1 or a.chunk < 1:
        ap.error("--base-n, -M, --pilot and --chunk must be >= 1")
    for p in (a.e2h, a.policy) + (() if a.prm else (a.head,)):
        if not os.path.exists(p):
            raise SystemExit(f"compare-search: {p} not found")
    os.makedirs(a.out, exist_ok=True)
    problems = a.problems
    if not problems:
        problems = os.path.join(a.out, "hard.jsonl")
        subprocess.run([sys.executable, os.path.join(TOOLS, "gen_leveled_task.py"), "--seed", "0",
                        "--levels", a.levels, "--start", "100000", "--per-level", str(a.per_level),
                        "-o", problems], check=True)
    state = os.path.join(a.out, "chosen_n.json")
    if a.summarize_only:
        if not os.path.exists(state):
            raise SystemExit(f"compare-search: {state} not found (nothing run yet)")
        st = json.load(open(state))
        n, pilot = st["n"], st["pilot"]
    else:
        n, pilot = choose_n(a, problems)
        json.dump({"n": n, "pilot": pilot}, open(state, "w"))
        # in chunks of problems, every method per chunk: an interrupted run still compares
        # the methods on the same problems (the table takes the problems all methods have)
        total = sum(1 for x in open(problems) if x.strip())
        for _ in range(0, total, a.chunk):
            for m in a.methods:
                run_search(a, m, n[m], problems, limit=a.chunk)
    files = {m: os.path.join(a.out, f"results_{m}{n[m]}.jsonl") for m in a.methods}
    s = summarize(a, n, pilot, files)
    print_table(s, a.markdown)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(s, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
