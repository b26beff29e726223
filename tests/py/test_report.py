"""`e2h report`: unbiased maj@k / BoN@k / weighted@k estimators checked against hand-computed small
cases, the exact DP against full enumeration, bootstrap intervals, levels, and bad input."""
import json
import os
import random
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
E2H = os.path.join(REPO, os.environ.get("BUILD", "build"), "e2h")
pytestmark = pytest.mark.skipif(not os.path.exists(E2H), reason=f"{E2H} not built (make)")

CFG = {"policy": "p.gguf", "prm": "r.gguf", "protocol": "head", "method": "weighted", "n": 4, "m": 0,
       "seed": 1, "temperature": 0.8, "max_tokens": 512, "problems": "math500.jsonl", "shard": "0/1"}


def smp(key, correct, mn, prod, answer=None):
    return {"text": "...", "steps": ["..."], "step_scores": [mn], "answer": answer if answer is not None else key,
            "key": key, "correct": correct, "agg": {"min": mn, "prod": prod, "mean": mn, "last": mn}, "tokens": 3}


# Problem A (level 2), written out by hand in the comments below:
#   s0 "A" correct min .6 prod .5 | s1 "B" wrong .9/.2 | s2 "B" wrong .3/.2 | s3 "C" wrong .6/.3
# maj@1 = 1/4; maj@2 = ({0,1},{0,2},{0,3} are ties worth 1/2 each)/6 = 1/4; maj@4: B wins = 0
# bon@1 = 1/4; bon@2: {0,1}->s1 0, {0,2}->s0 1, {0,3} tie .6 -> 1/2, others 0 => 1.5/6 = 1/4; bon@4 -> s1 = 0
# weighted@2: {0,1},{0,2},{0,3} -> A (.5 beats .2/.3); {1,3} -> C .3 > B .2; => 3/6 = 1/2; weighted@4:
#   A .5 > B .4 > C .3 => 1
PA = {"unique_id": "A", "level": 2, "problem": "?", "answer": "1", "method": "weighted", "n": 4,
      "samples": [smp("A", True, .6, .5), smp("B", False, .9, .2), smp("B", False, .3, .2), smp("C", False, .6, .3)],
      "selected": {"answer": "A", "correct": True}}
PB = {"unique_id": "B", "level": "Level 5", "answer": "x", "method": "weighted", "n": 4,
      "samples": [smp("X", True, .5, .5)] * 4, "selected": {"answer": "X", "correct": True}}
PC = {"unique_id": "C", "level": 4, "answer": "y", "method": "weighted", "n": 4,
      "samples": [{"text": "no answer", "answer": None, "key": None, "correct": False,
                   "agg": {"min": .7, "prod": .7, "mean": .7, "last": .7}}] * 4,
      "selected": {"answer": None, "correct": False}}


def write(tmp_path, name, cfg, problems, extra_lines=()):
    p = tmp_path / name
    with open(p, "w") as f:
        f.write(json.dumps({"config": cfg}) + "\n")
        for q in problems:
            f.write(json.dumps(q) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return str(p)


def report(*args):
    r = subprocess.run([E2H, "report", *args], capture_output=True, text=True)
    return r


def rows_of(out):
    d = json.loads(out)
    return d, {(r["method"], r["k"]): r for r in d["rows"]}


def test_hand_computed_n4(tmp_path):
    f = write(tmp_path, "r.jsonl", CFG, [PA, PB, PC])
    r = report(f, "--json")
    assert r.returncode == 0, r.stderr
    d, rows = rows_of(r.stdout)
    want = {("maj", 1): .25, ("maj", 2): .25, ("maj", 4): 0.0, ("bon", 1): .25, ("bon", 2): .25, ("bon", 4): 0.0,
            ("weighted", 1): .25, ("weighted", 2): .5, ("weighted", 4): 1.0}
    for key, a in want.items():
        b = rows[key]["buckets"]
        assert b["easy"]["acc"] == pytest.approx(a, abs=1e-6), key      # problem A only
        assert b["L2"]["acc"] == pytest.approx(a, abs=1e-6), key
        assert b["hard"]["acc"] == pytest.approx(0.5, abs=1e-6), key    # B always right, C never
        assert b["all"]["acc"] == pytest.approx((a + 1 + 0) / 3, abs=1e-6), key
        assert b["all"]["n"] == 3 and b["easy"]["n"] == 1 and b["hard"]["n"] == 2
        assert b["all"]["lo"] <= b["all"]["acc"] <= b["all"]["hi"]
    assert set(k for m, k in rows) == {1, 2, 4}
    assert rows[("maj", 2)]["estimator"] == "exact-enumeration"
    assert rows[("bon", 2)]["estimator"] == "closed-form"
    # the table names methods, N and the easy/hard columns
    t = report(f)
    assert t.returncode == 0 and "easy (1-3)" in t.stdout and "hard (4-5)" in t.stdout and "weighted" in t.stdout
    # the same seed gives the same intervals
    assert report(f, "--json").stdout == r.stdout


def test_keys_from_answers_and_selected_methods(tmp_path):
    # no "key" field: the report keys answers itself (\frac12 and 0.5 vote together)
    samples = [dict(smp(None, True, .5, .5, answer="\\frac12"), key=None),
               dict(smp(None, True, .5, .5, answer="0.5"), key=None),
               dict(smp(None, False, .5, .5, answer="3"), key=None)]
    p = {"unique_id": "q", "level": 1, "answer": "1/2", "method": "maj", "n": 3, "samples": samples}
    cfg = dict(CFG, method="maj", n=3)
    f = write(tmp_path, "maj.jsonl", cfg, [p])
    d, rows = rows_of(report(f, "--json", "--bootstrap", "0").stdout)
    assert rows[("maj", 3)]["buckets"]["all"]["acc"] == pytest.approx(1.0)
    assert rows[("maj", 1)]["buckets"]["all"]["acc"] == pytest.approx(2 / 3)
    # a beam run reports `selected` at its N next to the re-ranking rows
    beam = write(tmp_path, "beam.jsonl", dict(CFG, method="beam", n=4, m=2),
                 [dict(PA, method="beam"), dict(PB, method="beam"), dict(PC, method="beam")])
    d, rows = rows_of(report(f, beam, "--json").stdout)
    assert rows[("beam", 4)]["estimator"] == "selected"
    assert rows[("beam", 4)]["buckets"]["all"]["acc"] == pytest.approx(2 / 3)


def test_dp_equals_enumeration_and_sampling_is_close(tmp_path):
    rng = random.Random(7)
    probs = []
    for i in range(6):
        n = 12
        keys = [rng.choice(["1", "2", "3", "4", None]) for _ in range(n)]
        s = [smp(k, k == "1", rng.random(), rng.random()) if k else
             dict(smp(None, False, rng.random(), rng.random()), answer=None) for k in keys]
        probs.append({"unique_id": f"p{i}", "level": 1 + i % 5, "answer": "1", "method": "weighted", "n": n,
                      "samples": s})
    f = write(tmp_path, "r.jsonl", dict(CFG, n=12), probs)
    _, enum = rows_of(report(f, "--json", "--bootstrap", "0").stdout)
    _, dp = rows_of(report(f, "--json", "--bootstrap", "0", "--exact-limit", "0").stdout)
    for k in (1, 2, 4, 8, 12):
        assert dp[("maj", k)]["estimator"] == "exact-dp" or k == 12 or k == 1
        assert dp[("maj", k)]["buckets"]["all"]["acc"] == pytest.approx(enum[("maj", k)]["buckets"]["all"]["acc"], abs=1e-9)
        w_s, w_e = dp[("weighted", k)]["buckets"]["all"]["acc"], enum[("weighted", k)]["buckets"]["all"]["acc"]
        assert w_s == pytest.approx(w_e, abs=0.02)
    assert dp[("weighted", 4)]["estimator"] == "sampled"


def test_problem_without_samples_counts_as_wrong(tmp_path):
    empty = {"unique_id": "E", "level": 3, "answer": "1", "method": "weighted", "n": 4, "samples": []}
    f = write(tmp_path, "r.jsonl", CFG, [PA, empty])
    r = report(f, "--json")
    assert r.returncode == 0 and "no samples" in r.stderr
    d, rows = rows_of(r.stdout)
    assert rows[("weighted", 2)]["buckets"]["easy"]["acc"] == pytest.approx(0.25)   # (1/2 + 0) / 2
    assert rows[("weighted", 2)]["buckets"]["easy"]["n"] == 2
    only = write(tmp_path, "e.jsonl", CFG, [empty])
    assert report(only).returncode == 2


def test_no_levels(tmp_path):
    f = write(tmp_path, "r.jsonl", CFG, [dict(PA, level=None), dict(PB, level=None)])
    r = report(f, "--json")
    d, rows = rows_of(r.stdout)
    assert d["levels"] is False and "one level" in d["note"]
    assert list(rows[("maj", 1)]["buckets"]) == ["all"]
    assert "one level" in report(f).stdout


def test_shards_merge_and_bad_input(tmp_path):
    a = write(tmp_path, "s0.jsonl", dict(CFG, shard="0/2"), [PA])
    b = write(tmp_path, "s1.jsonl", dict(CFG, shard="1/2"), [PB, PC])
    whole = write(tmp_path, "all.jsonl", CFG, [PA, PB, PC])
    def rows(*files):
        out = json.loads(report(*files, "--json").stdout)["rows"]
        for r in out:
            del r["run_file"]
        return out
    # shards in any order give the numbers of the whole file (problems are sorted by unique_id)
    assert rows(a, b) == rows(whole) == rows(b, a)
    # a shard overlapping another: the problem twice
    r = report(a, whole)
    assert r.returncode == 2 and "appears twice" in r.stderr
    # a file of another configuration
    other = write(tmp_path, "other.jsonl", dict(CFG, policy="q.gguf"), [PA])
    r = report(a, other)
    assert r.returncode == 2 and "another configuration" in r.stderr and "policy" in r.stderr
    # malformed lines name the file and line
    bad = write(tmp_path, "bad.jsonl", CFG, [PA], ["{not json"])
    r = report(bad)
    assert r.returncode == 2 and "bad.jsonl:3" in r.stderr
    nocfg = tmp_path / "nocfg.jsonl"
    nocfg.write_text(json.dumps(PA) + "\n")
    r = report(str(nocfg))
    assert r.returncode == 2 and "nocfg.jsonl:1" in r.stderr and "config" in r.stderr
    lvl = write(tmp_path, "lvl.jsonl", CFG, [dict(PA, level=9)])
    r = report(lvl)
    assert r.returncode == 2 and "lvl.jsonl:2" in r.stderr and "level" in r.stderr
    cor = write(tmp_path, "cor.jsonl", CFG, [dict(PA, samples=[dict(smp("A", True, .5, .5), correct="yes")])])
    r = report(cor)
    assert r.returncode == 2 and "cor.jsonl:2" in r.stderr
    r = report(str(tmp_path / "missing.jsonl"))
    assert r.returncode == 2 and "missing.jsonl" in r.stderr
    assert report().returncode == 2
    assert report(a, "--bootstrap", "-1").returncode == 2
    assert report(a, "--bon-agg", "max").returncode == 2


def test_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed (pip install -r tools/requirements.txt)")
    f = write(tmp_path, "r.jsonl", CFG, [PA, PB, PC])
    png = tmp_path / "plot.png"
    r = report(f, "--png", str(png))
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
