#!/usr/bin/env python3
"""tools/eval/agree.py — how often e2h's answer check agrees with math-verify, and how much faster.

math-verify (pinned in tools/requirements.txt) is the independent checker: for each (prediction,
reference) pair it parses the reference as LaTeX and the prediction with its own extraction, and
verifies equivalence symbolically. e2h's check is the library's e2h_answer_extract +
e2h_answer_equal (through ctypes on libe2h.so). Both see exactly the same strings.

Inputs (any number, combined):
  results JSONL files (PLAN.md "6. Results JSONL"): every sample's text against the problem's answer
  --pairs FILE     JSONL lines {"pred": ..., "ref": ...}
  --set NAME       built-in sets from ../shared (see SETS below): math500, processbench-math,
                   processbench-gsm8k, prm800k, math-test-crossed
  --limit N        at most N pairs per input (the first N, deterministic)
Prints the agreement rate, the disagreements (--show K), and the speed ratio (CPU time per pair of
math-verify / CPU time per pair of e2h incl. the ctypes call, measured in this one run, one thread).
"""
import argparse
import gzip
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2h_answers import E2HAnswers  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("E2H_SHARED", os.path.join(REPO, "..", "shared"))


def _last_boxed(s):
    """Reference answers of MATH test solutions: the contents of the last \\boxed{...}."""
    i = s.rfind("\\boxed")
    if i < 0:
        i = s.rfind("\\fbox")
        if i < 0:
            return None
    j = s.find("{", i)
    if j < 0:
        return None
    depth = 0
    for k in range(j, len(s)):
        if s[k] == "{":
            depth += 1
        elif s[k] == "}":
            depth -= 1
            if depth == 0:
                return s[j + 1:k]
    return None


def _math_refs():
    """problem text -> reference answer, from MATH500 (answer) and the MATH test set (last box)."""
    refs = {}
    p = os.path.join(SHARED, "data", "math", "math_test.jsonl")
    if os.path.exists(p):
        for line in open(p):
            d = json.loads(line)
            a = _last_boxed(d["solution"])
            if a is not None:
                refs[d["problem"].strip()] = a
    for line in open(os.path.join(SHARED, "data", "math", "math500.jsonl")):
        d = json.loads(line)
        refs[d["problem"].strip()] = d["answer"]
    return refs


def set_math500():
    """MATH500 reference solutions against their answers (should all be equal)."""
    out = []
    for line in open(os.path.join(SHARED, "data", "math", "math500.jsonl")):
        d = json.loads(line)
        out.append((d["solution"], d["answer"]))
    return out


def set_math_test_crossed():
    """Negatives and near-misses: each MATH test reference solution (5000, all levels) against the
    reference answer of the next problem of the same subject and level (mostly different answers,
    sometimes equal ones written differently)."""
    rows = [json.loads(line) for line in open(os.path.join(SHARED, "data", "math", "math_test.jsonl"))]
    by = {}
    for d in rows:
        a = _last_boxed(d["solution"])
        if a is not None:
            by.setdefault((d.get("type"), d.get("level")), []).append((d["solution"], a))
    out = []
    for group in by.values():
        for i, (sol, _) in enumerate(group):
            out.append((sol, group[(i + 1) % len(group)][1]))
    return out


def set_processbench(name):
    """ProcessBench model solutions (10 generators) against the reference answer of the problem."""
    data = json.load(open(os.path.join(SHARED, "data", "processbench", name + ".json")))
    if name == "math":
        refs = _math_refs()
    else:
        refs = {}
        for line in open(os.path.join(SHARED, "data", "gsm8k", "test.jsonl")):
            d = json.loads(line)
            refs[d["question"].strip()] = d["answer"].split("####")[-1].strip()
    out = []
    for d in data:
        ref = refs.get(d["problem"].strip())
        if ref is not None:
            out.append(("\n\n".join(d["steps"]), ref))
    return out


def set_prm800k():
    """PRM800K phase-1 test: GPT-4's final answers (the rows that carry one) against the reference."""
    refs = _math_refs()
    out, seen = [], set()
    with gzip.open(os.path.join(SHARED, "data", "prm800k", "phase1_test.stepwise.jsonl.gz"), "rt") as f:
        for line in f:
            d = json.loads(line)
            a = d.get("answer")
            ref = refs.get(d["instruction"].strip())
            if a in (None, "None") or ref is None or (a, ref) in seen:
                continue
            seen.add((a, ref))
            out.append(("# Answer\n\n$" + a + "$", ref))  # math-verify reads LaTeX only in math mode
    return out


SETS = {"math500": set_math500, "math-test-crossed": set_math_test_crossed, "processbench-math": lambda: set_processbench("math"),
        "processbench-gsm8k": lambda: set_processbench("gsm8k"), "prm800k": set_prm800k}


def pairs_from_results(path, recorded=None):
    """(solution text, reference) of every sample; recorded (a list) gets each sample's stored
    `correct` (None when absent): the verdict e2h's search wrote at run time."""
    out = []
    with open(path) as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{ln}: malformed JSON ({e})")
            if "config" in d:
                continue
            ref = d.get("answer")
            if ref is None:
                raise SystemExit(f"{path}:{ln}: no reference 'answer'")
            for s in d.get("samples") or []:
                out.append((s.get("text") or s.get("answer") or "", str(ref)))
                if recorded is not None:
                    recorded.append(s.get("correct"))
    return out


def pairs_from_file(path):
    out = []
    with open(path) as f:
        for ln, line in enumerate(f, 1):
            if line.strip():
                d = json.loads(line)
                if "pred" not in d or "ref" not in d:
                    raise SystemExit(f"{path}:{ln}: needs 'pred' and 'ref'")
                out.append((d["pred"], d["ref"]))
    return out


def math_verify_check(pred, ref):
    """math-verify's verdict: the gold parsed as LaTeX (wrapped in $...$), the prediction with its
    default extraction (LaTeX boxed/answer and plain expressions)."""
    from math_verify import parse, verify
    try:
        gold = parse("$" + ref + "$")
        ans = parse(pred)
        return bool(verify(gold, ans))
    except Exception:  # math-verify raises on some inputs; a failed check counts as "different"
        return False


def agreement(pairs, e2h=None, show=0, out=sys.stdout, label=""):
    """Runs both checkers over pairs; returns a dict of counts and timings."""
    e2h = e2h or E2HAnswers()
    # CPU time of this process (time.process_time), not wall time: on a shared, loaded machine the
    # wall clock mostly measures waiting for a core. e2h's pass is repeated (it is short) and
    # averaged; math-verify runs once.
    reps = 5
    t0 = time.process_time()
    for _ in range(reps):
        mine = [e2h.check(p, r) for p, r in pairs]
    t_e2h = (time.process_time() - t0) / reps
    t0 = time.process_time()
    theirs = [math_verify_check(p, r) for p, r in pairs]
    t_mv = time.process_time() - t0
    n = len(pairs)
    agree = sum(a == b for a, b in zip(mine, theirs))
    res = {"set": label, "n": n, "agree": agree, "rate": agree / n if n else float("nan"),
           "e2h_equal": sum(mine), "mv_equal": sum(theirs), "e2h_s": t_e2h, "mv_s": t_mv,
           "speedup": t_mv / t_e2h if t_e2h > 0 else float("inf"), "disagreements": [], "mv": theirs}
    for (p, r), a, b in zip(pairs, mine, theirs):
        if a != b:
            res["disagreements"].append({"e2h": a, "math_verify": b, "ref": r,
                                         "e2h_extracted": e2h.extract(p), "pred_tail": p[-160:]})
    if out:
        print(f"{label or 'pairs'}: {n} pairs, agreement {agree}/{n} = {100 * res['rate']:.2f}%  "
              f"(equal: e2h {res['e2h_equal']}, math-verify {res['mv_equal']});  "
              f"CPU time e2h {1e6 * t_e2h / max(n, 1):.1f} us/pair, math-verify "
              f"{1e3 * t_mv / max(n, 1):.2f} ms/pair: {res['speedup']:.0f}x", file=out)
        for d in res["disagreements"][:show]:
            print("   ", json.dumps(d, ensure_ascii=False), file=out)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="*", help="results JSONL files (PLAN.md schema 6)")
    ap.add_argument("--pairs", action="append", default=[], help="JSONL of {pred, ref}")
    ap.add_argument("--set", action="append", default=[], choices=sorted(SETS), help="built-in set")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--show", type=int, default=0, help="print up to K disagreements per input")
    ap.add_argument("--json", help="write the numbers (and all disagreements) to this file")
    a = ap.parse_args(argv)
    recorded = {}
    inputs = []
    for p in a.results:
        recorded[p] = []
        inputs.append((p, pairs_from_results(p, recorded[p])))
    inputs += [(p, pairs_from_file(p)) for p in a.pairs] + [(s, SETS[s]()) for s in a.set]
    if not inputs:
        ap.error("nothing to grade: give results files, --pairs or --set")
    e2h = E2HAnswers()
    allres, tot = [], {"n": 0, "agree": 0, "e2h_s": 0.0, "mv_s": 0.0}
    for name, pairs in inputs:
        if a.limit:
            pairs = pairs[:a.limit]
        r = agreement(pairs, e2h, a.show, label=name)
        rec = recorded.get(name)
        if rec:  # the `correct` flags stored in the results file, against math-verify
            rec = rec[:len(pairs)]
            have = [(x, y) for x, y in zip(rec, r["mv"]) if x is not None]
            if have:
                ok = sum(bool(x) == y for x, y in have)
                r["recorded_agree"], r["recorded_n"] = ok, len(have)
                print(f"{name}: stored 'correct' flags vs math-verify: {ok}/{len(have)} = "
                      f"{100 * ok / len(have):.2f}%")
        del r["mv"]
        allres.append(r)
        for k in tot:
            tot[k] += r[k]
    if len(inputs) > 1 and tot["n"]:
        print(f"total: {tot['n']} pairs, agreement {100 * tot['agree'] / tot['n']:.2f}%, "
              f"math-verify/e2h time {tot['mv_s'] / tot['e2h_s']:.0f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"inputs": allres, "total": tot}, f, indent=1, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
