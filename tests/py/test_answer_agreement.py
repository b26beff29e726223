"""e2h's answer check (libe2h.so: e2h_answer_extract + e2h_answer_equal) against math-verify, the
independent checker, on a fixed subset of real samples from ../shared: MATH500 reference solutions,
ProcessBench model solutions (MATH and GSM8K, 10 generators) and PRM800K's GPT-4 final answers.
The full sets are measured by `python3 tools/eval/agree.py --set ...` (figures in the README)."""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools", "eval"))

math_verify = pytest.importorskip("math_verify", reason="math-verify not installed (pip install -r tools/requirements.txt)")
import agree  # noqa: E402
from e2h_answers import E2HAnswers  # noqa: E402

SHARED = agree.SHARED
LIB = os.environ.get("E2H_LIB") or os.path.join(REPO, os.environ.get("BUILD", "build"), "libe2h.so")
need_shared = pytest.mark.skipif(not os.path.exists(os.path.join(SHARED, "data", "math", "math500.jsonl")),
                                 reason=f"{SHARED}/data absent: the agreement test needs ../shared")
need_lib = pytest.mark.skipif(not os.path.exists(LIB), reason=f"{LIB} not built (make lib)")


@need_shared
@need_lib
def test_agreement_with_math_verify_on_real_samples():
    e2h = E2HAnswers(LIB)
    pairs = (agree.set_math500()[:100] + agree.set_processbench("math")[:200] +
             agree.set_processbench("gsm8k")[:100] + agree.set_prm800k())
    assert len(pairs) > 450
    r = agree.agreement(pairs, e2h, show=20, label="fixed subset")
    # measured on this subset: 99%+; the floor leaves room for math-verify's own timeouts
    assert r["rate"] >= 0.97, r["disagreements"][:20]
    # both checkers must see real positives and negatives (a test that can fail)
    assert 0.2 * len(pairs) < r["e2h_equal"] < 0.9 * len(pairs)


@need_lib
def test_ctypes_binding_and_cli_agree():
    import subprocess
    e2h = E2HAnswers(LIB)
    cli = os.path.join(os.path.dirname(LIB), "e2h")
    cases = [("so \\boxed{\\frac{1}{2}}", "0.5", True), ("# Answer\n\n(1,2)", "[1,2]", False),
             ("#### 1,000", "1000", True), ("The answer is 3.", "\\sqrt{9}", True),
             # a bare answer is graded as it is (not through the free-form fallback's last number)
             ("\\frac{1}{2}", "0.5", True), ("\\frac{1}{2}", "2", False), ("(1,2)", "(1, 2)", True),
             ("x^2+1", "1+x^2", True)]
    for pred, ref, want in cases:
        assert e2h.check(pred, ref) == want
        if os.path.exists(cli):
            out = subprocess.run([cli, "answer", "--pred", pred, "--ref", ref], capture_output=True, text=True)
            assert out.returncode == 0 and out.stdout.strip() == ("equal" if want else "different")
    if os.path.exists(cli):
        bad = subprocess.run([cli, "answer", "--pred", "1"], capture_output=True, text=True)
        assert bad.returncode == 2 and "e2h: answer:" in bad.stderr
        ex = subprocess.run([cli, "answer", "--extract", "no answer"], capture_output=True, text=True)
        assert ex.returncode == 1 and ex.stdout == ""


@need_lib
def test_agree_regrades_a_results_file(tmp_path, capsys):
    import json
    f = tmp_path / "r.jsonl"
    lines = [{"config": {"method": "maj", "n": 3}},
             {"unique_id": "a", "level": 1, "answer": "\\frac{1}{2}", "method": "maj", "n": 3, "samples": [
                 {"text": "so \\boxed{0.5}", "answer": "0.5", "correct": True},
                 {"text": "# Answer\n\n$3$", "answer": "3", "correct": False},
                 {"text": "The answer is $\\frac{2}{4}$.", "answer": "\\frac{2}{4}", "correct": False}]}]
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "o.json"
    assert agree.main([str(f), "--json", str(out)]) == 0
    r = json.load(open(out))["inputs"][0]
    assert r["n"] == 3 and r["agree"] == 3 and r["e2h_equal"] == 2
    # the stored flags disagree once (the third sample was recorded wrong): 2/3
    assert r["recorded_n"] == 3 and r["recorded_agree"] == 2
    assert "stored 'correct' flags" in capsys.readouterr().out
