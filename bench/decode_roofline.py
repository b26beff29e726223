#!/usr/bin/env python3
"""bench/decode_roofline.py — decode (tg) tokens/s as a percentage of the memory roofline, with
the bandwidth probe measured in the same run, round by round (issue #17).

Each round, for each thread count T: `membw --threads T` (1 GiB buffer, best of 3), then every
e2h binary given (`e2h bench -p 0 -n N -t T -r 1 --json`; the order of the binaries flips every
round), then membw again. Per binary and round:

    GB/s streamed = tg tok/s x weight bytes read per token (from the GGUF's tensor table)
    % of roofline = GB/s streamed / mean(membw before, membw after)

so a drift of the host's bandwidth moves both sides of the ratio. The table gives the median
over rounds and each round's value.

--clock cpu (1 thread only): e2h's tokens/s over the CPU time of its decode loop (the `cpu_s`
of `e2h bench --json`) against `membw --cpu-clock`: on a core shared with other processes the
time slices they take count for neither side (memory stalls count for both). On an idle
machine use the default (--clock wall), which is what a user gets.

    python3 bench/decode_roofline.py -m /work/models/random-llama2-7b-q4_0.gguf --threads 1,2 --rounds 3
    python3 bench/decode_roofline.py -m MODEL --e2h /old/e2h --e2h build/e2h --threads 1 --clock cpu
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from vs_llamacpp import MODELS_DIR, find_membw_bin, weight_bytes_per_token  # noqa: E402


def membw(binary: Path, t: int, cpu: bool, size_mib: int) -> float:
    cmd = [str(binary), "--threads", str(t), "--reps", "3", "--l3-mib", "0", "--size-mib",
           str(size_mib), "--json"] + (["--cpu-clock"] if cpu else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rec = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    if cpu and rec.get("clock") != "cpu":
        sys.exit(f"decode_roofline: {binary} has no --cpu-clock (rebuild: make bench)")
    return float(rec["dram_gbs"][str(t)])


def e2h_tg(exe: str, model: Path, t: int, n: int, cpu: bool, timeout: int) -> float:
    cmd = [exe, "bench", "-m", str(model), "-p", "0", "-n", str(n), "-t", str(t), "-r", "1",
           "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        sys.exit(f"decode_roofline: {' '.join(cmd)} failed (rc {p.returncode}): "
                 f"{p.stderr.strip()[-500:]}")
    rec = json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])["tg"]
    if not cpu:
        return float(rec["tps_mean"])
    if "cpu_s" not in rec:
        sys.exit(f"decode_roofline: {exe} prints no cpu_s (an e2h older than --clock cpu)")
    if float(rec["cpu_s"][0]) <= 0:
        sys.exit(f"decode_roofline: {exe} read 0 CPU seconds for {n} tokens (run longer: -n)")
    return n / float(rec["cpu_s"][0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", type=Path, default=MODELS_DIR / "random-llama2-7b-q4_0.gguf")
    ap.add_argument("--e2h", action="append", help="e2h binary (repeat for an A/B; default build/e2h)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--membw", type=Path, default=None, help="membw binary (default newest build*/bench/membw)")
    ap.add_argument("--membw-mib", type=int, default=1024)
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per e2h run")
    ap.add_argument("--json-out", type=Path)
    a = ap.parse_args()
    exes = a.e2h or [str(REPO / "build" / "e2h")]
    threads = [int(x) for x in a.threads.split(",")]
    cpu = a.clock == "cpu"
    if cpu and threads != [1]:
        ap.error("--clock cpu measures one thread only (--threads 1)")
    if a.rounds < 1 or a.n_gen < 1 or min(threads) < 1:
        ap.error("--rounds, -n and threads must be >= 1")
    mb = a.membw or find_membw_bin()
    if mb is None or not Path(mb).exists():
        ap.error("no membw binary: run `make bench` or pass --membw")
    if not a.model.exists():
        ap.error(f"{a.model} missing (python3 tools/write_random_gguf.py --preset llama2-7b --type q4_0)")
    for exe in exes:
        if not os.access(exe, os.X_OK):
            ap.error(f"{exe} is not an executable")
    bpt = weight_bytes_per_token(a.model)["bytes_per_token"]
    print(f"model {a.model}: {bpt / 1e9:.3f} GB of weights read per token; clock {a.clock}; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    res = {t: {exe: [] for exe in exes} for t in threads}  # per round: (tok/s, GB/s, % of membw)
    bws = {t: [] for t in threads}
    t_start = time.time()
    for r in range(a.rounds):
        order = exes if r % 2 == 0 else exes[::-1]
        for t in threads:
            bw0 = membw(mb, t, cpu, a.membw_mib)
            got = {exe: e2h_tg(exe, a.model, t, a.n_gen, cpu, a.timeout) for exe in order}
            bw1 = membw(mb, t, cpu, a.membw_mib)
            bw = (bw0 + bw1) / 2
            bws[t].append((bw0, bw1))
            line = []
            for exe in exes:
                gbs = got[exe] * bpt / 1e9
                res[t][exe].append((got[exe], gbs, 100 * gbs / bw))
                line.append(f"{Path(exe).parent.name or '.'}/{Path(exe).name} {got[exe]:.2f} tok/s "
                            f"= {gbs:.1f} GB/s = {100 * gbs / bw:.0f}%")
            print(f"round {r + 1} t={t}: membw {bw0:.1f} / {bw1:.1f} GB/s; " + "; ".join(line)
                  + f"; load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"\n{a.rounds} rounds in {time.time() - t_start:.0f} s; medians over rounds "
          f"(clock {a.clock}, tg{a.n_gen}):")
    print(f"{'threads':>7}  {'membw GB/s':>10}  {'e2h':<40} {'tok/s':>7} {'GB/s':>6} {'% roofline':>10}"
          f"  per round")
    for t in threads:
        mbw = statistics.median([(x + y) / 2 for x, y in bws[t]])
        for exe in exes:
            rr = res[t][exe]
            print(f"{t:>7}  {mbw:>10.1f}  {exe[-40:]:<40} {statistics.median(x[0] for x in rr):>7.2f} "
                  f"{statistics.median(x[1] for x in rr):>6.1f} {statistics.median(x[2] for x in rr):>9.0f}%"
                  f"  " + " ".join(f"{x[2]:.0f}" for x in rr))
        if len(exes) == 2:
            q = [b[0] / a_[0] for a_, b in zip(res[t][exes[0]], res[t][exes[1]])]
            print(f"{'':>7}  second/first tok/s per round: " + " ".join(f"{x:.3f}" for x in q)
                  + f" (median {statistics.median(q):.3f})")
    if a.json_out:
        a.json_out.write_text(json.dumps({"model": str(a.model), "bytes_per_token": bpt,
                                          "clock": a.clock, "n_gen": a.n_gen,
                                          "membw": {str(t): bws[t] for t in threads},
                                          "e2h": {str(t): res[t] for t in threads}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
