"""tools/compare_search.py: the N matching rule, the bootstrap, and a tiny end-to-end run (every
method guided by the shipped easy head on 2 generated hard problems, 12 tokens)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import compare_search as cs  # noqa: E402

E2H = os.environ.get("E2H_BIN", os.path.join(ROOT, os.environ.get("BUILD", "build"), "e2h"))
DEFAULT = os.path.join(ROOT, "weights", "SmolLM2-135M-Instruct.Q4_1.gguf")


def test_allowed_n_and_bootstrap():
    assert cs.allowed_n("beam", 13.9, 4) == 12 and cs.allowed_n("beam", 14.1, 4) == 16
    assert cs.allowed_n("dvts", 1.0, 4) == 4  # at least one subtree of width M
    assert cs.allowed_n("rebase", 10.6, 4) == 11 and cs.allowed_n("bon", 0.2, 4) == 1
    m, lo, hi = cs.bootstrap([1.0] * 3 + [0.0] * 7)
    assert m == pytest.approx(0.3) and 0.0 <= lo < 0.3 < hi <= 0.7
    assert cs.bootstrap([1.0, 1.0]) == (1.0, 1.0, 1.0)


@pytest.mark.skipif(not os.path.exists(DEFAULT), reason="default model missing (run `make model`)")
def test_tiny_run(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, os.path.join(ROOT, "tools", "compare_search.py"), "--e2h", E2H, "--per-level", "1",
           "--base-n", "2", "-M", "2", "--pilot", "1", "--chunk", "1", "--max-tokens", "12", "--max-rounds", "3",
           "-t", "1", "-o", str(out), "--json", str(tmp_path / "s.json"), "--markdown"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr
    s = json.load(open(tmp_path / "s.json"))
    assert s["problems"] == 2 and s["levels"] == [4, 5]
    assert set(s["methods"]) == {"bon", "beam", "dvts", "rebase"}
    chosen = json.load(open(out / "chosen_n.json"))
    for m, r in s["methods"].items():
        assert r["n"] == chosen["n"][m] >= 1 and r["problems"] == 2
        assert 0 < r["generated_tokens_per_problem"] <= r["n"] * 12 + 1
        for key in ("accuracy", "coverage"):
            mean, lo, hi = r[key]["all"]
            assert 0 <= lo <= mean <= hi <= 1
        rows = [json.loads(x) for x in open(out / f"results_{m}{r['n']}.jsonl")]
        assert rows[0]["config"]["protocol"] == "head" and len(rows) == 3
        if m != "bon":
            d, lo, hi = r["minus_bon"]
            assert -1 <= lo <= d <= hi <= 1
        # coverage >= accuracy: the selected answer is one of the samples
        assert r["coverage"]["all"][0] >= r["accuracy"]["all"][0]
    assert p.stdout.startswith("| method | N |")
    # the table again from the files, no new runs
    p2 = subprocess.run(cmd + ["--summarize-only"], capture_output=True, text=True, timeout=300)
    assert p2.returncode == 0 and p2.stdout == p.stdout, p2.stderr
    # rerunning resumes: the pilot is not run again and no problem is added or redone
    files = {f: open(f).read() for f in out.glob("results_*.jsonl")}
    p3 = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert p3.returncode == 0 and p3.stdout == p.stdout, p3.stderr
    # first run: 4 pilot calls + 4 methods x 2 chunks; the rerun: the chunks only
    assert p.stderr.count("(up to") == 12 and p3.stderr.count("(up to") == 8, p3.stderr
    assert {f: open(f).read() for f in out.glob("results_*.jsonl")} == files
    bad = subprocess.run(cmd[:2] + ["--methods", "bon,nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--methods" in bad.stderr
