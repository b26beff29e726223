#!/usr/bin/env python3
"""Deterministic generator of leveled arithmetic word problems (the e2h job's default task).

Each problem is a short story about one quantity that changes through a chain of events; the
level is the number of arithmetic operations (1..5) and the numbers grow with it:

  level  operations  numbers (operands)
  1      1           2..9
  2      2           2..12
  3      3           2..15
  4      4           2..20
  5      5           2..25

Operations: add ("finds 7 more"), subtract ("gives 3 away", never below 0), multiply ("the
number doubles/triples", or "has 4 boxes with 6 each" as the start), divide ("splits them into
3 equal piles and keeps one", always exact). The reference solution writes one operation per
paragraph ("\\n\\n" is the step delimiter) and ends with "The answer is N." -- the same format
the job's prompt asks the policy for.

Output: MATH500-schema JSONL (problem, solution, answer, subject, level, unique_id), one line per
problem, levels 1..5 interleaved in order (level 1 problem 0, level 2 problem 0, ...). The same
--seed gives byte-identical output; problem i of level L depends only on (seed, L, i), so
--per-level 50 is a prefix (per level) of --per-level 500.

Calibration with the default policy (SmolLM2-135M-Instruct Q4_1, the job's few-shot prompt in
tools/job/, temperature 0.7, 16 samples, max 128 tokens, 20 problems per level = indices 1000-1019
of seed 0; `python3 tools/calibrate_leveled_task.py -m weights/SmolLM2-135M-Instruct.Q4_1.gguf
--problems <(python3 tools/gen_leveled_task.py --per-level 20 --start 1000) --per-level 20`):

  level  greedy  mean@1  pass@4  pass@16
  1      0.05    0.147   0.45    0.85
  2      0.15    0.025   0.10    0.30
  3      0.05    0.062   0.22    0.55
  4      0.05    0.028   0.11    0.35
  5      0.00    0.028   0.10    0.25

pass@16 is clearly above 0 on levels 4-5; per-sample accuracy falls from level 1 to levels 4-5,
greedy accuracy is near 0 everywhere (this policy's greedy decoding falls into wrong arithmetic
more often than its samples do), so at 20 problems per level the greedy ordering is noise.

usage: python3 tools/gen_leveled_task.py [--per-level N] [--seed S] [--levels 1,2,3] [-o FILE]
"""
import argparse
import json
import random
import sys

NAMES = ["Ann", "Ben", "Cara", "Dan", "Eva", "Finn", "Gia", "Hugo", "Ida", "Jon", "Kim", "Leo",
         "Mia", "Ned", "Olga", "Pat", "Rosa", "Sam", "Tia", "Uma", "Vic", "Wes", "Zoe"]
PRONOUN = {n: ("she" if n in {"Ann", "Cara", "Eva", "Gia", "Ida", "Kim", "Mia", "Olga", "Rosa",
                              "Tia", "Uma", "Zoe"} else "he") for n in NAMES}
ITEMS = ["apples", "stamps", "marbles", "cards", "coins", "shells", "stickers", "pencils",
         "books", "beads", "cookies", "toys"]

# level -> (operations, largest operand)
LEVELS = {1: (1, 6), 2: (2, 8), 3: (3, 9), 4: (4, 10), 5: (5, 12)}
MAX_VALUE = 100  # the running quantity stays in 0..MAX_VALUE


def _start(rng, hi, name, item, with_mul):
    """The opening sentence. with_mul: 'k boxes with m each' (one multiplication)."""
    if with_mul:
        k, m = rng.randint(2, min(hi, 9)), rng.randint(2, hi)
        text = f"{name} has {k} boxes with {m} {item} in each box."
        step = f"{name} has {k} * {m} = {k * m} {item}."
        return k * m, text, step
    a = rng.randint(2, hi)
    return a, f"{name} has {a} {item}.", None


def _op(rng, hi, cur, pron, item, kinds):
    """One event applied to cur. Returns (new, sentence, step) or None if it does not fit."""
    kind = rng.choice(kinds)
    cap = pron.capitalize()
    if kind == "add":
        b = rng.randint(2, hi)
        if cur + b > MAX_VALUE:
            return None
        verb = rng.choice(["finds", "buys", "gets", "wins"])
        return cur + b, f"{cap} {verb} {b} more {item}.", f"{cur} + {b} = {cur + b} {item}."
    if kind == "sub":
        if cur < 3:
            return None
        b = rng.randint(2, min(hi, cur - 1))
        verb = rng.choice(["gives away", "loses", "sells", "uses"])
        return cur - b, f"{cap} {verb} {b} {item}.", f"{cur} - {b} = {cur - b} {item}."
    if kind == "mul":
        k = rng.choice([2, 2, 3, 3, 4, 5])
        if cur * k > MAX_VALUE:
            return None
        word = {2: "doubles", 3: "triples"}.get(k)
        text = (f"Then the number of {item} {pron} has {word}." if word else
                f"Then {pron} ends up with {k} times as many {item}.")
        return cur * k, text, f"{cur} * {k} = {cur * k} {item}."
    if kind == "div":
        ks = [k for k in (2, 3, 4, 5) if cur % k == 0 and cur // k >= 1]
        if not ks:
            return None
        k = rng.choice(ks)
        return (cur // k, f"{cap} splits them into {k} equal piles and keeps one pile.",
                f"{cur} / {k} = {cur // k} {item}.")
    raise ValueError(kind)


def make_problem(seed, level, index):
    """Problem `index` of `level` under `seed` (independent of every other problem)."""
    n_ops, hi = LEVELS[level]
    rng = random.Random(f"e2h-leveled/{seed}/{level}/{index}")
    for _attempt in range(1000):
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        pron = PRONOUN[name]
        with_mul = n_ops >= 2 and rng.random() < 0.4
        cur, text, first = _start(rng, hi, name, item, with_mul)
        sentences, steps = [text], ([first] if first else [])
        kinds = ["add", "sub", "mul", "div"] if level >= 3 else ["add", "sub", "mul"]
        if level == 1:
            kinds = ["add", "sub"]
        ok = True
        while len(steps) < n_ops:
            r = None
            for _ in range(50):
                r = _op(rng, hi, cur, pron, item, kinds)
                if r is not None:
                    break
            if r is None:
                ok = False
                break
            cur, s, st = r
            sentences.append(s)
            steps.append(st)
        if not ok or cur < 0:
            continue
        sentences.append(f"How many {item} does {name} have now?")
        problem = " ".join(sentences)
        solution = "\n\n".join(steps + [f"The answer is {cur}."])
        return {"problem": problem, "solution": solution, "answer": str(cur),
                "subject": "Arithmetic", "level": level,
                "unique_id": f"leveled/s{seed}/L{level}/{index:05d}"}
    raise RuntimeError(f"no problem for level {level} index {index}")


def generate(per_level, seed, levels):
    rows = []
    for i in range(per_level):
        for lv in levels:
            rows.append(make_problem(seed, lv, i))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-level", type=int, default=100, help="problems per level (default 100)")
    ap.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    ap.add_argument("--levels", default="1,2,3,4,5", help="comma-separated levels (default 1..5)")
    ap.add_argument("--start", type=int, default=0, help="first problem index per level")
    ap.add_argument("-o", "--output", default="-", help="output JSONL (default stdout)")
    a = ap.parse_args(argv)
    try:
        levels = [int(x) for x in a.levels.split(",") if x]
    except ValueError:
        ap.error(f"--levels: not a comma-separated list of integers: {a.levels!r}")
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels:
        ap.error(f"--levels: each level must be 1..5 (got {a.levels!r})")
    if a.per_level < 0 or a.per_level > 1_000_000 or a.start < 0:
        ap.error("--per-level must be 0..1000000 and --start >= 0")
    out = sys.stdout if a.output == "-" else open(a.output, "w")
    for i in range(a.start, a.start + a.per_level):
        for lv in levels:
            out.write(json.dumps(make_problem(a.seed, lv, i)) + "\n")
    if out is not sys.stdout:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
