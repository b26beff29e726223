#!/usr/bin/env python3
"""Step labels by a checker: the role PRM800K's human labelers play, on the leveled task.

PRM800K's step labels come from people who read each step of a sampled solution and mark it
correct or not. On the e2h job's generated task (tools/gen_leveled_task.py) every reference step
is one equation "a op b = c", so a checker can do that labeler's work exactly: a sampled step is

  correct (1)   every equation in it is one of the reference solution's equations (a + b and
                a * b also with the operands swapped; the arithmetic is then right and the
                numbers are the problem's) and a final "The answer is N" names the answer;
  wrong (0)     some equation is not (wrong arithmetic, a misread number, an operation the story
                does not have) or the stated answer is not the reference answer;
  unlabeled     no equation and no answer (a restated fact, a comment): dropped, as PRM800K
                labelers skip nothing but such steps carry no check here.

Input: an `e2h label` output (PREFIX.jsonl + PREFIX.npy [+ PREFIX.layer.npy]), usually sampled
with `--rollouts 0` (the rollouts of Math-Shepherd labels are then not needed), and the problems
file it was made from. Output: OUT.jsonl / OUT.npy [/ OUT.layer.npy] with the labeled steps only,
soft = hard = the checker's label, the same format train_head.py reads. Problems whose reference
solution has no equation (MATH, GSM8K) are refused: the checker knows the leveled task only; use
rollout labels (e2h label --rollouts R) there.

usage: python3 tools/step_check.py LABELS_PREFIX --problems FILE -o OUT_PREFIX
"""
import argparse
import json
import re
import sys

import numpy as np

NUM = r"(-?\d+(?:\.\d+)?)"
EQUATION = re.compile(NUM + r"\s*([-+*/x×÷])\s*" + NUM + r"\s*=\s*" + NUM)
ANSWER = re.compile(r"answer is\s*\$?\s*(-?[\d,]*\d(?:\.\d+)?)", re.I)
OPS = {"x": "*", "×": "*", "÷": "/"}


def _num(s):
    v = float(s.replace(",", ""))
    return int(v) if v == int(v) else v


def equations(text):
    """The equations "a op b = c" of a text as (a, op, b, c) tuples, op one of + - * /."""
    return [(_num(m.group(1)), OPS.get(m.group(2), m.group(2)), _num(m.group(3)), _num(m.group(4)))
            for m in EQUATION.finditer(text)]


def reference_set(solution):
    """The reference solution's equations, + and * also with swapped operands."""
    ref = set()
    for a, op, b, c in equations(solution):
        ref.add((a, op, b, c))
        if op in "+*":
            ref.add((b, op, a, c))
    return ref


def step_label(text, ref, answer):
    """1 correct, 0 wrong, None nothing to check (see the module docstring)."""
    eqs = equations(text)
    m = ANSWER.search(text)
    if not eqs and not m:
        return None
    if any(e not in ref for e in eqs):
        return 0
    if m and _num(m.group(1)) != _num(answer):
        return 0
    return 1


def load_problems(path):
    out = {}
    for i, line in enumerate(open(path), 1):
        if not line.strip():
            continue
        try:
            p = json.loads(line)
            uid, sol = p["unique_id"], p["solution"]
        except (ValueError, KeyError, TypeError) as ex:
            raise SystemExit(f"{path}:{i}: not a problem line with unique_id and solution ({ex})")
        if not isinstance(p.get("answer"), (str, int, float)):
            raise SystemExit(f"{path}:{i}: problem {uid}: no field \"answer\" (the checker compares "
                             "stated answers with it)")
        ans = str(p["answer"])
        ref = reference_set(sol)
        if not ref:
            raise SystemExit(f"{path}:{i}: problem {uid}: its reference solution has no equation "
                             "'a op b = c': the checker knows the leveled task only (use rollout labels)")
        try:
            _num(ans)
        except ValueError:
            raise SystemExit(f"{path}:{i}: problem {uid}: answer {ans!r} is not a number")
        out[uid] = (ref, ans)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("labels", help="e2h label output prefix (PREFIX.jsonl, PREFIX.npy)")
    ap.add_argument("--problems", required=True, help="the problems JSONL it was made from")
    ap.add_argument("-o", "--output", required=True, help="output prefix")
    a = ap.parse_args(argv)
    lines = [l for l in open(a.labels + ".jsonl") if l.strip()]
    if not lines or "config" not in json.loads(lines[0]):
        raise SystemExit(f"{a.labels}.jsonl: first line must be the {{\"config\": ...}} of e2h label")
    cfg = json.loads(lines[0])["config"]
    rows = [json.loads(l) for l in lines[1:]]
    x = np.load(a.labels + ".npy")
    if x.shape[0] != len(rows):
        raise SystemExit(f"{a.labels}.npy: {x.shape[0]} rows for {len(rows)} steps")
    layer = None
    try:
        layer = np.load(a.labels + ".layer.npy")
    except FileNotFoundError:
        pass
    probs = load_problems(a.problems)
    keep, out = [], []
    counts = {0: 0, 1: 0, None: 0}
    for i, r in enumerate(rows):
        if r["unique_id"] not in probs:
            raise SystemExit(f"{a.labels}.jsonl: line {i + 2}: problem {r['unique_id']} is not in {a.problems}")
        ref, ans = probs[r["unique_id"]]
        y = step_label(r["text"], ref, ans)
        counts[y] += 1
        if y is None:
            continue
        r = dict(r, soft=float(y), hard=y, label_source="checker", row=len(out))
        keep.append(i)
        out.append(r)
    cfg = dict(cfg, labels="checker", checker_unlabeled=counts[None])
    with open(a.output + ".jsonl", "w") as fo:
        fo.write(json.dumps({"config": cfg}) + "\n")
        for r in out:
            fo.write(json.dumps(r) + "\n")
    np.save(a.output + ".npy", x[keep])
    if layer is not None:
        np.save(a.output + ".layer.npy", layer[keep])
    print(f"step_check: {len(rows)} steps: {counts[1]} correct, {counts[0]} wrong, "
          f"{counts[None]} without an equation or answer (dropped) -> {a.output}.jsonl", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
