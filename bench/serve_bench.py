#!/usr/bin/env python3
"""bench/serve_bench.py — `e2h serve` against llama.cpp's server under concurrent load.

Both servers run the same GGUF with the same thread count, side by side in one run; a load
client in this (second) process sends /v1/completions requests that share one problem prompt
from C concurrent clients (each sends --requests requests one after the other, seeds
differing) and measures generated tokens per second over the level's wall time and the
p50/p99 request latency. Levels are measured alternately on the two servers (the order flips
each level) and the 1-minute load average is printed with each, since the machine is shared.

llama.cpp's server is llama-cpp-python's `python3 -m llama_cpp.server` (extra pip packages:
uvicorn, fastapi, sse-starlette, starlette-context, pydantic-settings; pinned in
tools/requirements.txt).

    python3 bench/serve_bench.py --e2h build/e2h -m weights/SmolLM2-135M-Instruct.Q4_1.gguf \\
        -t 2 --clients 1,8,32 --max-tokens 64
"""
import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PROBLEM = ("<|im_start|>system\nSolve the following math problem step by step. Separate the steps with a "
           "blank line. Put the final answer in \\boxed{}.<|im_end|>\n<|im_start|>user\nA rectangle has a "
           "perimeter of 30 units and its length is twice its width. What is the area of the rectangle, "
           "in square units?<|im_end|>\n<|im_start|>assistant\n")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def request(port, method, path, body=None, timeout=1800):
    """One HTTP request on a fresh connection (stdlib only); returns (status, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body) if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def wait_ready(port, proc, what, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with status {proc.returncode}")
        try:
            if request(port, "GET", "/v1/models", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    sys.exit(f"{what} did not become ready")


def start_e2h(a, log):
    port = free_port()
    cmd = [a.e2h, "serve", "-m", a.model, "-t", str(a.threads), "--port", str(port), "--max-queue", "256"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    wait_ready(port, p, "e2h serve")
    return p, port, " ".join(cmd)


def start_llama(a, log):
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", a.model, "--n_threads", str(a.threads),
           "--n_threads_batch", str(a.threads), "--n_ctx", "2048", "--host", "127.0.0.1", "--port", str(port)]
    # llama-cpp-python's ggml is built with OpenMP, whose threads spin while they wait: on a
    # shared, oversubscribed machine that made one request 5-15x slower here (measured: 32
    # tokens in 17-47 s spinning vs 2.7-4.8 s passive). Passive waiting is llama.cpp's best
    # setting on such a machine, so the baseline gets it unless --llama-omp-active.
    env = dict(os.environ)
    if not a.llama_omp_active:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
    wait_ready(port, p, "llama_cpp.server")
    return p, port, " ".join(cmd[1:])


def one_level(port, clients, requests, max_tokens, seed0):
    """C client threads, each sending `requests` requests one after the other (seeds differ)."""
    lat, toks, errors = [], [], []
    lock = threading.Lock()

    def client(c):
        for r in range(requests):
            body = {"prompt": PROBLEM, "max_tokens": max_tokens, "temperature": 0.8, "seed": seed0 + c * requests + r}
            t0 = time.perf_counter()
            try:
                st, data = request(port, "POST", "/v1/completions", body)
                n = json.loads(data)["usage"]["completion_tokens"] if st == 200 else None
            except (OSError, ValueError, KeyError) as e:
                st, n = str(e), None
            with lock:
                if n is None:
                    errors.append(st)
                else:
                    lat.append(time.perf_counter() - t0)
                    toks.append(n)
    ts = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        sys.exit(f"{len(errors)} requests failed: {errors[:3]}")
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
    return {"clients": clients, "requests": len(lat), "tokens": sum(toks), "wall_s": wall,
            "tok_s": sum(toks) / wall, "p50_s": statistics.median(lat), "p99_s": p99}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--e2h", default="build/e2h")
    ap.add_argument("-m", "--model", default="weights/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--requests", type=int, default=1, help="requests per client per level")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--llama-omp-active", action="store_true",
                    help="leave llama.cpp's OpenMP threads spinning (default: OMP_WAIT_POLICY=PASSIVE)")
    a = ap.parse_args()
    levels = [int(x) for x in a.clients.split(",")]
    logdir = tempfile.mkdtemp(prefix="serve_bench_")
    elog, llog = open(os.path.join(logdir, "e2h.log"), "w"), open(os.path.join(logdir, "llama.log"), "w")
    servers = {}
    try:
        servers["e2h"] = start_e2h(a, elog)
        servers["llama.cpp"] = start_llama(a, llog)
        for name, (_, url, cmd) in servers.items():  # warm-up: page in weights, fill caches
            one_level(url, 1, 1, 8, 999)
            print(f"# {name}: {cmd}" + (" (OMP_WAIT_POLICY=PASSIVE)" if name != "e2h" and not a.llama_omp_active else ""),
                  flush=True)
        rows = []
        for i, c in enumerate(levels):
            order = ["e2h", "llama.cpp"] if i % 2 == 0 else ["llama.cpp", "e2h"]
            for name in order:
                load = os.getloadavg()[0]
                r = one_level(servers[name][1], c, a.requests, a.max_tokens, 1000 * (i + 1))
                r.update(server=name, load1=load)
                rows.append(r)
                print(f"{name:9s} clients {c:3d}: {r['tokens']:6d} tokens in {r['wall_s']:7.2f} s = "
                      f"{r['tok_s']:7.1f} tok/s, p50 {r['p50_s']:6.2f} s, p99 {r['p99_s']:6.2f} s (load {load:.1f})",
                      flush=True)
    finally:
        for p, _, _ in servers.values():
            p.terminate()
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
    print("\n| clients | e2h tok/s | llama.cpp tok/s | ratio | e2h p50 / p99 s | llama.cpp p50 / p99 s | load |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for c in levels:
        e = next(r for r in rows if r["server"] == "e2h" and r["clients"] == c)
        l = next(r for r in rows if r["server"] == "llama.cpp" and r["clients"] == c)
        print(f"| {c} | {e['tok_s']:.1f} | {l['tok_s']:.1f} | {e['tok_s'] / l['tok_s']:.2f}x | "
              f"{e['p50_s']:.2f} / {e['p99_s']:.2f} | {l['p50_s']:.2f} / {l['p99_s']:.2f} | "
              f"{e['load1']:.1f} / {l['load1']:.1f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "rows": rows}, f, indent=1)
    m = re.search(r"KV blocks used (\d+)", open(elog.name).read())
    print(f"\n(e2h serve shut down with KV blocks used: {m.group(1) if m else '?'}; logs in {logdir})")


if __name__ == "__main__":
    main()
