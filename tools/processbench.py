#!/usr/bin/env python3
"""ProcessBench (MATH split) F1 per MATH level for any PRM e2h loads.

ProcessBench (Zheng et al., 2024) gives solutions split into steps with the index of the first wrong step
(label, -1 = all correct). A PRM "predicts" the first step whose score is below --threshold (-1 if none).
Accuracy on erroneous samples (prediction == label) and on correct ones (prediction == -1); F1 is their
harmonic mean, as in the ProcessBench paper's PRM evaluation. Levels come from joining each problem's text
with MATH (../shared/data/math/{math_test,math_train,math500}.jsonl), so the table shows how a PRM trained on
easy problems (levels 1-3) judges hard ones (4-5).

Scoring goes through the Python package (python/, libe2h.so) or, with --cli, through `e2h score`.

    python3 tools/processbench.py --prm tests/fixtures/prm/math_shepherd --protocol math-shepherd --limit 40
    python3 tools/processbench.py --prm PRM_DIR --protocol qwen-prm --cli build/e2h -o pb.json
    python3 tools/processbench.py --prm head.safetensors --protocol head --policy POLICY_DIR

Prints one row per level and the total; -o writes the per-sample predictions and the table as JSON.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SHARED = os.path.normpath(os.path.join(REPO, "..", "shared", "data"))


def parse_level(v):
    if v is None:
        return None
    if isinstance(v, int):
        return v
    tail = str(v).split()[-1]
    return int(tail) if tail.isdigit() else None


def load_levels(math_dir):
    """problem text (stripped) -> MATH level 1..5, from every MATH file present."""
    levels = {}
    for fn in ("math_test.jsonl", "math_train.jsonl", "math500.jsonl"):
        p = os.path.join(math_dir, fn)
        if not os.path.exists(p):
            continue
        with open(p, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                levels.setdefault(r["problem"].strip(), parse_level(r.get("level")))
    return levels


def load_bench(path, levels, limit=None, per_level=None):
    """Samples with their MATH level. per_level: at most N per level, evenly spaced over the file (the file is
    grouped by label, so the first N would all be erroneous)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    rows = [dict(id=r["id"], problem=r["problem"], steps=r["steps"], label=int(r["label"]),
                 level=levels.get(r["problem"].strip())) for r in data]
    if per_level is not None:
        by = {}
        for r in rows:
            by.setdefault(r["level"], []).append(r)
        keep = set()
        for lv, rs in by.items():
            k = min(per_level, len(rs))
            keep |= {rs[(i * len(rs)) // k]["id"] for i in range(k)}
        rows = [r for r in rows if r["id"] in keep]
    return rows[:limit] if limit else rows


def first_below(scores, threshold):
    for i, s in enumerate(scores):
        if s < threshold:
            return i
    return -1


def f1_table(samples, threshold):
    """{level or 'all': dict(n, err_acc, cor_acc, f1)}."""
    groups = {}
    for s in samples:
        for key in (s["level"], "all"):
            groups.setdefault(key, []).append(s)
    table = {}
    for key, ss in groups.items():
        err = [s for s in ss if s["label"] != -1]
        cor = [s for s in ss if s["label"] == -1]
        ea = sum(first_below(s["step_scores"], threshold) == s["label"] for s in err) / len(err) if err else None
        ca = sum(first_below(s["step_scores"], threshold) == -1 for s in cor) / len(cor) if cor else None
        f1 = 2 * ea * ca / (ea + ca) if ea is not None and ca is not None and ea + ca > 0 else (
            0.0 if ea is not None and ca is not None else None)
        table[key] = dict(n=len(ss), n_error=len(err), n_correct=len(cor), err_acc=ea, cor_acc=ca, f1=f1)
    return table


def score_with_package(args, samples):
    sys.path.insert(0, os.path.join(REPO, "python"))
    import e2h  # noqa: E402
    kw = dict(protocol=args.protocol, n_threads=args.threads, kv_mem_gib=args.kv_mem)
    if args.policy:
        kw["policy"] = args.policy
    if args.ref_model:
        kw["ref_model"] = args.ref_model
    if args.beta:
        kw["beta"] = args.beta
    if args.quant:
        kw["quant"] = args.quant
    with e2h.PRM(args.prm, **kw) as prm:
        t0 = time.time()
        for i, s in enumerate(samples):
            s["step_scores"] = prm.score(s["problem"], s["steps"])
            if args.progress and (i + 1) % args.progress == 0:
                print(f"  {i + 1}/{len(samples)} ({time.time() - t0:.1f} s)", file=sys.stderr)
        return prm.tokens


def score_with_cli(args, samples):
    with tempfile.TemporaryDirectory(prefix="pb_") as tmp:
        inp, outp = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
        with open(inp, "w", encoding="utf-8") as f:
            for s in samples:
                f.write(json.dumps({"id": s["id"], "problem": s["problem"], "steps": s["steps"]}) + "\n")
        cmd = [args.cli, "score", "--prm", args.prm, "-i", inp, "-o", outp, "-t", str(args.threads)]
        if args.protocol:
            cmd += ["--prm-protocol", args.protocol]
        if args.policy:
            cmd += ["--policy", args.policy]
        if args.ref_model:
            cmd += ["--prm-ref", args.ref_model]
        if args.beta:
            cmd += ["--beta", str(args.beta)]
        if args.quant:
            cmd += ["--quant", args.quant]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"processbench: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
        with open(outp, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        if len(rows) != len(samples):
            sys.exit(f"processbench: e2h score wrote {len(rows)} lines for {len(samples)} inputs")
        for s, row in zip(samples, rows):
            s["step_scores"] = row["step_scores"]
        return None


def fmt(v):
    return "   -  " if v is None else f"{100 * v:6.1f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prm", required=True, help="PRM model dir / gguf, or a head .safetensors")
    ap.add_argument("--protocol", default=None, help="PRM protocol (default: detected)")
    ap.add_argument("--policy", default=None, help="policy model (protocol head)")
    ap.add_argument("--ref-model", default=None, help="implicit: reference model")
    ap.add_argument("--beta", type=float, default=0.0)
    ap.add_argument("--quant", default=None)
    ap.add_argument("--threshold", type=float, default=0.5, help="a step below this is predicted wrong")
    ap.add_argument("--data", default=os.path.join(SHARED, "processbench", "math.json"))
    ap.add_argument("--math", default=os.path.join(SHARED, "math"), help="MATH jsonl folder for levels")
    ap.add_argument("--limit", type=int, default=None, help="first N samples only")
    ap.add_argument("--per-level", type=int, default=None, help="at most N samples per level")
    ap.add_argument("--cli", default=None, help="score with this e2h binary (`e2h score`) instead of the package")
    ap.add_argument("-t", "--threads", type=int, default=1)
    ap.add_argument("--kv-mem", type=float, default=0.0)
    ap.add_argument("--progress", type=int, default=0, help="print progress every N samples")
    ap.add_argument("-o", "--out", default=None, help="write predictions and table as JSON")
    args = ap.parse_args(argv)

    if not os.path.exists(args.data):
        print(f"processbench: {args.data} not found (needs ../shared/data/processbench); skipping", file=sys.stderr)
        return 0
    levels = load_levels(args.math)
    samples = load_bench(args.data, levels, args.limit, args.per_level)
    t0 = time.time()
    prm_tokens = score_with_cli(args, samples) if args.cli else score_with_package(args, samples)
    secs = time.time() - t0
    table = f1_table(samples, args.threshold)
    keys = sorted(k for k in table if isinstance(k, int)) + [k for k in table if k is None] + ["all"]
    print(f"ProcessBench MATH, PRM {args.prm} ({args.protocol or 'detected'}), threshold {args.threshold}, "
          f"{len(samples)} samples, {secs:.1f} s" + (f", {prm_tokens} PRM tokens" if prm_tokens else ""))
    print("level      n  error  correct   err_acc  cor_acc     F1")
    for k in keys:
        r = table[k]
        name = "all" if k == "all" else ("?" if k is None else str(k))
        print(f"{name:>5} {r['n']:6d} {r['n_error']:6d} {r['n_correct']:8d}   {fmt(r['err_acc'])}   "
              f"{fmt(r['cor_acc'])} {fmt(r['f1'])}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"config": {k: v for k, v in vars(args).items()}, "seconds": secs, "prm_tokens": prm_tokens,
                       "table": {str(k): v for k, v in table.items()},
                       "samples": [{k: s[k] for k in ("id", "level", "label", "step_scores")} for s in samples]}, f)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
