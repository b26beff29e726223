"""tools/processbench.py: the F1 arithmetic on hand-made samples (always), and a run on a fixture PRM through
the Python package when the library has the PRM API and ../shared has ProcessBench."""
import json
import os
import sys

import pytest

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tools"))
import processbench as pb  # noqa: E402


def test_first_below_and_f1():
    assert pb.first_below([0.9, 0.4, 0.1], 0.5) == 1 and pb.first_below([0.9, 0.8], 0.5) == -1
    samples = [  # level 4: one error found at the right step, one found late; one correct kept, one flagged
        dict(level=4, label=1, step_scores=[0.9, 0.2]), dict(level=4, label=0, step_scores=[0.8, 0.1]),
        dict(level=4, label=-1, step_scores=[0.9, 0.9]), dict(level=4, label=-1, step_scores=[0.3]),
        dict(level=1, label=-1, step_scores=[0.7]),
    ]
    t = pb.f1_table(samples, 0.5)
    assert t[4]["err_acc"] == 0.5 and t[4]["cor_acc"] == 0.5 and abs(t[4]["f1"] - 0.5) < 1e-12
    assert t[1]["err_acc"] is None and t[1]["f1"] is None
    assert t["all"]["n"] == 5 and abs(t["all"]["cor_acc"] - 2 / 3) < 1e-12
    assert pb.parse_level("Level 3") == 3 and pb.parse_level(5) == 5 and pb.parse_level("Level ?") is None


def test_levels_join_all_problems():
    data = os.path.join(pb.SHARED, "processbench", "math.json")
    if not os.path.exists(data):
        pytest.skip("../shared/data/processbench absent")
    levels = pb.load_levels(os.path.join(pb.SHARED, "math"))
    rows = pb.load_bench(data, levels, per_level=3)
    assert len(rows) == 15 and {r["level"] for r in rows} == {1, 2, 3, 4, 5}
    assert all(r["level"] is not None for r in pb.load_bench(data, levels))


def test_runs_on_fixture_prm(tmp_path):
    data = os.path.join(pb.SHARED, "processbench", "math.json")
    if not os.path.exists(data):
        pytest.skip("../shared/data/processbench absent")
    sys.path.insert(0, os.path.join(REPO, "python"))
    if "E2H_LIB" not in os.environ:
        b = os.environ.get("BUILD", "build")
        os.environ["E2H_LIB"] = os.path.join(b if os.path.isabs(b) else os.path.join(REPO, b), "libe2h.so")
    if not os.path.exists(os.environ["E2H_LIB"]):
        pytest.skip("libe2h.so not built")
    from e2h._lib import lib
    if not lib().has("e2h_prm_score_texts"):
        pytest.skip("libe2h lacks the PRM API")
    out = tmp_path / "pb.json"
    rc = pb.main(["--prm", os.path.join(REPO, "tests", "fixtures", "prm", "math_shepherd"), "--protocol",
                  "math-shepherd", "--per-level", "2", "-o", str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    assert len(r["samples"]) == 10 and r["prm_tokens"] > 0
    assert all(len(s["step_scores"]) > 0 and all(0 <= x <= 1 for x in s["step_scores"]) for s in r["samples"])
    assert set(r["table"]) >= {"1", "2", "3", "4", "5", "all"}
