#!/usr/bin/env python3
"""bench/ab_e2h.py — two e2h builds side by side in one run (a refactoring's "speed unchanged").

For each round, both binaries run the same tests, alternating which goes first, so a shared or
loaded machine affects both sides alike; the table gives each side's median tokens/s and the
median and range of the per-round ratios B/A.

Tests (as bench/vs_llamacpp.py --quick and bench/batched_vs_llamacpp.py use them):
  pp512, tg128          `e2h bench -p 512 -n 128 -r 1 --json` at each thread count
  K=16 batched decode   `e2h generate --samples 16 -n 64 --ignore-eos --json` (aggregate tok/s)

    python3 bench/ab_e2h.py --a /path/old/build/e2h --b build/e2h --rounds 5
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROMPT = ("Solve step by step. A train leaves at 3 pm travelling 60 miles per hour; a second "
          "train leaves the same station at 4 pm at 80 miles per hour. When does it catch up?")


def run_bench(exe: str, model: str, t: int, p: int, n: int) -> dict:
    cmd = [exe, "bench", "-m", model, "-p", str(p), "-n", str(n), "-t", str(t), "-r", "1",
           "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rec = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    return {f"pp{p} t{t}": rec["pp"]["tps_mean"], f"tg{n} t{t}": rec["tg"]["tps_mean"]}


def run_batched(exe: str, model: str, t: int, k: int, n: int) -> dict:
    cmd = [exe, "generate", "-m", model, "-p", PROMPT, "--samples", str(k), "-n", str(n),
           "--temp", "0.8", "--seed", "1", "--ignore-eos", "--json", "-t", str(t)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    dt = time.perf_counter() - t0
    recs = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    # the current layout: one object with "samples"; builds before the generate rework
    # (e.g. aef03b3): one object per sample
    samples = recs[-1]["samples"] if "samples" in recs[-1] else recs
    toks = sum(s["tokens"] for s in samples)
    # wall time of the whole process (load included) as batched_vs_llamacpp.py does
    return {f"K={k} t{t}": toks / dt}


def one_side(exe: str, a: argparse.Namespace) -> dict:
    res = {}
    for t in a.threads:
        res.update(run_bench(exe, a.model, t, a.n_prompt, a.n_gen))
    res.update(run_batched(exe, a.model, a.batched_threads, 16, a.batched_n))
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="baseline e2h binary")
    ap.add_argument("--b", default=str(REPO / "build" / "e2h"), help="candidate e2h binary")
    ap.add_argument("-m", "--model", default=str(REPO / "weights" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("--batched-threads", type=int, default=2)
    ap.add_argument("--batched-n", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json-out")
    a = ap.parse_args()
    a.threads = [int(x) for x in a.threads.split(",")]
    for exe in (a.a, a.b):
        if not os.access(exe, os.X_OK):
            print(f"ab_e2h: {exe} is not an executable", file=sys.stderr)
            return 2
    rounds = []
    for r in range(a.rounds):
        order = ("a", "b") if r % 2 == 0 else ("b", "a")
        got = {}
        for side in order:
            got[side] = one_side(getattr(a, side), a)
        rounds.append(got)
        ratios = {k: got["b"][k] / got["a"][k] for k in got["a"]}
        print(f"round {r + 1} ({order[0]} first): " +
              ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()), flush=True)
    print(f"\nA = {a.a}\nB = {a.b}\nload average at end: {os.getloadavg()}")
    print(f"{'test':<14}{'A tok/s':>12}{'B tok/s':>12}{'B/A median':>12}{'B/A min':>10}{'B/A max':>10}")
    summary = {}
    for k in rounds[0]["a"]:
        ra = [x["a"][k] for x in rounds]
        rb = [x["b"][k] for x in rounds]
        q = [x["b"][k] / x["a"][k] for x in rounds]
        summary[k] = {"a": ra, "b": rb, "ratio": q}
        print(f"{k:<14}{statistics.median(ra):>12.1f}{statistics.median(rb):>12.1f}"
              f"{statistics.median(q):>12.3f}{min(q):>10.3f}{max(q):>10.3f}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({"a": a.a, "b": a.b, "tests": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
