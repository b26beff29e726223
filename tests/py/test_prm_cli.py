"""`e2h score`: PRM step scores of JSONL solutions against the torch fixtures of tests/fixtures/prm
(tools/make_prm_fixtures.py), aggregates, and bad input (line + field named, exit 2, --skip-bad)."""
import json
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
E2H = os.environ.get("E2H_BIN", os.path.join(ROOT, os.environ.get("BUILD", "build"), "e2h"))
FIX = os.path.join(ROOT, "tests", "fixtures", "prm")

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(FIX, "qwen_prm", "expected.json")),
                                reason="tests/fixtures/prm not present (tools/make_prm_fixtures.py)")


def score(tmp_path, lines, *args):
    i = tmp_path / "in.jsonl"
    o = tmp_path / "out.jsonl"
    i.write_text("".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines), encoding="utf-8")
    p = subprocess.run([E2H, "score", "-i", str(i), "-o", str(o), *args], capture_output=True, text=True,
                       timeout=600)
    out = [json.loads(l) for l in o.read_text(encoding="utf-8").splitlines()] if o.exists() else []
    return p, out


def expected(name):
    return json.load(open(os.path.join(FIX, name, "expected.json"), encoding="utf-8"))


@pytest.mark.parametrize("name,proto", [("qwen_prm", None), ("value_head", None),
                                        ("math_shepherd", "math-shepherd"), ("rlhflow", "rlhflow")])
def test_scores_match_reference(tmp_path, name, proto):
    x = expected(name)
    lines = [{"id": c["name"], "problem": c["problem"], "steps": c["steps"]} for c in x["cases"]]
    args = ["--prm", os.path.join(FIX, name)] + (["--prm-protocol", proto] if proto else [])
    p, out = score(tmp_path, lines, *args)
    assert p.returncode == 0, p.stderr
    assert "tok/s" in p.stderr
    assert [o["id"] for o in out] == [c["name"] for c in x["cases"]]
    for o, c in zip(out, x["cases"]):
        assert len(o["step_scores"]) == len(c["step_scores"])
        for a, b in zip(o["step_scores"], c["step_scores"]):
            assert abs(a - b) < 1e-4
        s = o["step_scores"]
        assert o["agg"]["min"] == pytest.approx(min(s), abs=1e-6)
        assert o["agg"]["last"] == pytest.approx(s[-1], abs=1e-6)
        assert o["agg"]["mean"] == pytest.approx(sum(s) / len(s), abs=1e-6)
        prod = 1.0
        for v in s:
            prod *= v
        assert o["agg"]["prod"] == pytest.approx(prod, rel=1e-5)


def test_solution_is_split_like_steps(tmp_path):
    c = expected("qwen_prm")["cases"][0]
    p, out = score(tmp_path, [{"problem": c["problem"], "steps": c["steps"]},
                              {"problem": c["problem"], "solution": "\n\n".join(c["steps"])}],
                   "--prm", os.path.join(FIX, "qwen_prm"))
    assert p.returncode == 0, p.stderr
    assert out[0]["step_scores"] == out[1]["step_scores"]


def test_head_with_policy(tmp_path):
    x = expected("policy")
    lines = [{"problem": c["problem"], "steps": c["steps"]} for c in x["cases"]]
    p, out = score(tmp_path, lines, "--prm", os.path.join(FIX, "policy", "head_mlp.safetensors"),
                   "--policy", os.path.join(FIX, "policy"))
    assert p.returncode == 0, p.stderr
    for o, c in zip(out, x["cases"]):
        for a, b in zip(o["step_scores"], c["step_scores"]["head_mlp"]):
            assert abs(a - b) < 1e-4
    p, _ = score(tmp_path, lines, "--prm", os.path.join(FIX, "policy", "head_mlp.safetensors"))
    assert p.returncode == 2 and "--policy" in p.stderr


def test_bad_input(tmp_path):
    ok = {"problem": "What is 1+1?", "steps": ["One plus one is 2."]}
    long_step = "word " * 2000  # longer than the fixture's 512-token context
    lines = [ok, "{not json", {"steps": ["a"]}, {"problem": "p", "steps": ["a", " "]},
             {"problem": "p", "steps": ["has the tag ки here"]}, {"problem": "p", "steps": [long_step]},
             {"problem": "p", "steps": []}, {"problem": "p"}, ok]
    prm = ["--prm", os.path.join(FIX, "math_shepherd"), "--prm-protocol", "math-shepherd"]
    p, out = score(tmp_path, lines, *prm)
    assert p.returncode == 2 and len(out) == 1 and ":2: malformed JSON" in p.stderr
    p, out = score(tmp_path, lines, *prm, "--skip-bad")
    assert p.returncode == 2 and len(out) == 2, p.stderr
    err = p.stderr
    assert ":3: field 'problem'" in err
    assert ":4: field 'steps[1]': empty step" in err
    assert ":5: field 'steps'" in err and "steps[0] contains the protocol's step tag" in err
    assert ":6: field 'steps'" in err and "context" in err
    assert ":7: field 'steps': no steps" in err
    assert ":8: field 'steps' (array) or 'solution'" in err


def test_unknown_protocol_and_mismatched_head(tmp_path):
    ok = {"problem": "p", "steps": ["a"]}
    p, _ = score(tmp_path, [ok], "--prm", os.path.join(FIX, "qwen_prm"), "--prm-protocol", "nope")
    assert p.returncode == 2 and "unknown protocol 'nope'" in p.stderr
    p, _ = score(tmp_path, [ok], "--prm", os.path.join(FIX, "e2h_paper"), "--prm-protocol", "value-head")
    assert p.returncode == 2 and "v_head.summary.weight" in p.stderr


def test_help_and_missing_flags(tmp_path):
    p = subprocess.run([E2H, "score", "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "usage" in p.stdout.lower() and "--prm-protocol" in p.stdout
    p = subprocess.run([E2H, "score", "-i", "x", "-o", "y"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--prm" in p.stderr
