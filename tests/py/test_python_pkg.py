"""Tests of the Python package in python/ (ctypes over libe2h.so) on the committed fixture models.

The library comes from $E2H_LIB, else $BUILD/libe2h.so (tests/run_tests.sh sets BUILD), else build/.
Parts of the API that the loaded library does not have yet (scheduler, PRM) are skipped with a reason.
The PRM tests compare e2h's step scores, through the package, with the torch references of
tests/fixtures/prm (1e-4), so they check the engine's protocols end to end.
"""
import json
import math
import os

import numpy as np
import pytest

from e2h_testlib import REPO  # skips this module when libe2h.so is not built

import e2h  # noqa: E402
from e2h._lib import lib  # noqa: E402

PRM_DIR = os.path.join(REPO, "tests", "fixtures", "prm")
POLICY = os.path.join(PRM_DIR, "policy")
QWEN = os.path.join(REPO, "tests", "fixtures", "models", "qwen2_f32")


def expected(name):
    with open(os.path.join(PRM_DIR, name, "expected.json"), encoding="utf-8") as f:
        return json.load(f)


def need(*symbols):
    missing = [s for s in symbols if not lib().has(s)]
    if missing:
        pytest.skip("libe2h lacks " + ", ".join(missing))


@pytest.fixture(scope="module")
def policy():
    with e2h.Model(POLICY) as m:
        yield m


def test_library_found():
    assert e2h.library_path().endswith("libe2h.so")


def test_chat_template(policy):
    """e2h_model_chat_template: the fixture's tokenizer_config.json chat_template, verbatim."""
    need("e2h_model_chat_template")
    with open(os.path.join(POLICY, "tokenizer_config.json"), encoding="utf-8") as f:
        want = json.load(f)["chat_template"]
    assert policy.chat_template == want and "<|im_start|>" in want
    with e2h.Model(QWEN) as m:  # no tokenizer_config.json: no template
        assert m.chat_template is None


def test_model_info_and_errors(policy):
    info = policy.info
    assert info.arch == "Qwen2ForCausalLM" and info.dim == 48 and info.vocab_size == 600 and info.n_layers == 2
    with pytest.raises(e2h.E2HError) as ex:
        e2h.Model(os.path.join(REPO, "does", "not", "exist"))
    assert ex.value.name == "E2H_ERR_IO" and "does/not/exist" in ex.value.message
    bad = os.path.join(REPO, "tests", "fixtures", "prm", "README.md")
    with pytest.raises(e2h.E2HError):
        e2h.Model(bad)


def test_tokenizer_matches_fixture_ids():
    for name in ("qwen_prm", "rlhflow", "math_shepherd", "implicit"):
        exp = expected(name)
        with e2h.Tokenizer.load(os.path.join(PRM_DIR, name)) as tok:
            for c in exp["cases"]:
                ids = tok.encode(c["text"], add_special=exp["add_bos"])
                assert ids.dtype == np.int32 and list(ids) == c["ids"], (name, c["name"])
                assert tok.decode(ids[1:] if exp["add_bos"] else ids).endswith(c["steps"][-1] + " ки"
                                                                                if name == "math_shepherd" else "")
    with e2h.Tokenizer.load(POLICY) as tok:
        assert tok.find("<|im_start|>") >= 0 and tok.find("no such token") == -1
        assert tok.decode(tok.encode("x − 2 = 0")) == "x − 2 = 0"


def test_closed_handles_raise(policy):
    tok = e2h.Tokenizer.load(POLICY)
    tok.close()
    with pytest.raises(e2h.E2HError):
        tok.encode("a")


def build_policy_seq(eng, case):
    s = eng.create(case["ids"][:case["n_prompt"]])
    for a, b in case["step_ranges"]:
        s.append(case["ids"][a:b])
    return s


def test_seq_tree_ops(policy):
    case = expected("policy")["cases"][1]
    with e2h.Engine(policy) as eng:
        s = build_policy_seq(eng, case)
        assert list(s.tokens) == case["ids"] and s.n_prompt == case["n_prompt"]
        s.sync()
        kids = s.fork(3)
        eng.extend(kids, max_tokens=6)
        assert all(len(k) == len(s) + 6 and k.stop_reason == "length" for k in kids)
        assert len({tuple(k.new_tokens) for k in kids}) == 1  # greedy: identical branches
        lp = kids[0].logprobs
        assert np.isfinite(lp[len(s):]).all() and (lp[len(s):] <= 0).all()
        kids[0].truncate(len(s))
        assert list(kids[0].tokens) == case["ids"]
        # logits of the last token equal a from-scratch evaluation
        kids[0].sync()
        ref = eng.eval_logits(case["ids"])[-1]
        np.testing.assert_allclose(kids[0].logits, ref, atol=1e-4, rtol=1e-4)
        st = eng.kv_stats()
        assert st["blocks_used"] > 0 and st["block_size"] > 0
        kids[1].release()
        with pytest.raises(e2h.E2HError):
            len(kids[1])
    # the engine released everything it owned
    assert s._ptr is None and kids[2]._ptr is None


def test_sampling_is_seeded(policy):
    with e2h.Engine(policy) as eng:
        outs = []
        for _ in range(2):
            s = eng.create(policy.encode("What is 1+1?", add_special=False), temperature=1.0, seed=7)
            s.extend(max_tokens=12)
            outs.append(list(s.new_tokens))
            s.release()
        assert outs[0] == outs[1]


def test_append_logprobs_and_hidden_match_torch(policy):
    need("e2h_engine_sync", "e2h_seq_append_ex", "e2h_seq_hidden_at")
    exp = expected("policy")
    for case in exp["cases"]:
        with e2h.Engine(policy) as eng:
            s = eng.create(case["ids"][:case["n_prompt"]])
            for (a, b), p in zip(case["step_ranges"], case["positions"]):
                s.append(case["ids"][a:b], capture=[p - a])
            eng.sync([s])
            lp = s.logprobs
            n0 = case["n_prompt"]
            np.testing.assert_allclose(lp[n0:], np.array(case["token_logprobs"])[n0 - 1:], atol=1e-4)
            for p, h in zip(case["positions"], case["hidden"]):
                np.testing.assert_allclose(s.hidden_at(p), h, atol=1e-4)
            np.testing.assert_allclose(s.hidden, case["hidden"][-1], atol=1e-4)


def test_feature_layer_matches_transformers():
    """Engine(feature_layer=1): the residual stream after block 1 (transformers' hidden_states[1],
    tests/fixtures/models/qwen2_f32/hidden_layer1.npy) at captured rows and the last token, 1e-4."""
    need("e2h_seq_hidden_layer_at")
    ids = json.load(open(os.path.join(QWEN, "tokens.json")))["ids"]
    ref = np.load(os.path.join(QWEN, "hidden_layer1.npy"))
    with e2h.Model(QWEN) as m, e2h.Engine(m, feature_layer=1, max_batch_tokens=40) as eng:
        s = eng.create(ids[:1])
        s.append(ids[1:], capture=[9, 30, 50])
        eng.sync([s])
        for p in (10, 31, 51):
            np.testing.assert_allclose(s.hidden_layer_at(p), ref[p], atol=1e-4)
        np.testing.assert_allclose(s.hidden_layer, ref[-1], atol=1e-4)
        assert s.hidden_layer_at(12) is None
    with e2h.Model(QWEN) as m, e2h.Engine(m) as eng:
        s = eng.create(ids)
        eng.sync([s])
        assert s.hidden_layer is None
        with pytest.raises(e2h.E2HError, match="feature_layer"):
            e2h.Engine(m, feature_layer=3)


# ---------------------------------------------------------------- PRM

FAMILIES = {"e2h_paper": "e2h-paper", "math_shepherd": "math-shepherd", "qwen_prm": "qwen-prm",
            "rlhflow": "rlhflow", "value_head": "value-head", "implicit": "implicit"}


def open_prm(name, **kw):
    d = os.path.join(PRM_DIR, name)
    if name == "implicit":
        kw.setdefault("ref_model", os.path.join(PRM_DIR, "implicit_ref"))
        kw.setdefault("beta", 1.0)
    return e2h.PRM(d, protocol=FAMILIES[name], **kw)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_prm_scores_match_torch(name):
    need("e2h_prm_load", "e2h_prm_score_texts", "e2h_prm_model")
    exp = expected(name)
    with open_prm(name) as prm:
        assert prm.protocol == FAMILIES[name]
        for c in exp["cases"]:
            if name == "e2h_paper":
                # e2h's e2h-paper steps carry the answer as a final "# Answer\n\n{answer}" step, read at its
                # last token (the token before EOS in the paper's layout)
                got = prm.score(c["problem"], c["steps"] + ["# Answer\n\n" + c["answer"]])
                want = c["step_scores"] + [c["answer_score"]]
            else:
                got = prm.score(c["problem"], c["steps"])
                want = c.get("step_logratio_sums") or c["step_scores"]
            np.testing.assert_allclose(got, want, atol=1e-4, err_msg=f"{name}/{c['name']}")


def test_prm_head_scores_match_torch(policy):
    need("e2h_prm_load", "e2h_prm_score_texts")
    exp = expected("policy")
    for head in ("head_linear", "head_mlp"):
        with e2h.PRM(os.path.join(POLICY, head + ".safetensors"), protocol="head", policy=policy) as prm:
            for c in exp["cases"]:
                np.testing.assert_allclose(prm.score(c["problem"], c["steps"]), c["step_scores"][head], atol=1e-4,
                                           err_msg=f"{head}/{c['name']}")


def test_prm_bad_input():
    need("e2h_prm_load")
    with pytest.raises(e2h.E2HError) as ex:
        e2h.PRM(os.path.join(PRM_DIR, "math_shepherd"), protocol="no-such-protocol")
    assert ex.value.status != 0 and ex.value.message
    with pytest.raises(e2h.E2HError):
        e2h.PRM(os.path.join(PRM_DIR, "nope"), protocol="math-shepherd")


def test_incremental_scoring_matches_texts(policy):
    """Branches scored step by step while they grow = the whole-text scores of the fixture."""
    need("e2h_prm_load", "e2h_prm_score_new_steps", "e2h_seq_set_problem", "e2h_engine_attach_prm")
    exp = expected("policy")
    by = {c["name"]: c for c in exp["cases"]}
    a, b = by["quadratic"], by["quadratic_branch"]
    with e2h.PRM(os.path.join(POLICY, "head_linear.safetensors"), protocol="head", policy=policy) as prm, \
            e2h.Engine(policy) as eng:
        eng.attach_prm(prm)
        root = eng.create(a["ids"][:a["n_prompt"]], problem=a["problem"])
        for k in range(3):
            x, y = a["step_ranges"][k]
            root.append(a["ids"][x:y])
            root.score()
        left, right = root.fork(2)
        for k in range(3, 5):
            for s, c in ((left, a), (right, b)):
                x, y = c["step_ranges"][k]
                s.append(c["ids"][x:y])
            eng.score_new_steps([left, right])
        np.testing.assert_allclose(left.step_scores, a["step_scores"]["head_linear"], atol=1e-4)
        np.testing.assert_allclose(right.step_scores, b["step_scores"]["head_linear"], atol=1e-4)


def test_reward_function_trl_shape():
    need("e2h_prm_load", "e2h_prm_score_texts", "e2h_prm_model")
    exp = expected("math_shepherd")
    cases = exp["cases"]
    with open_prm("math_shepherd") as prm:
        delim = prm.step_delimiter
        r = e2h.PRMReward(prm, aggregate="min")
        prompts = [[{"role": "user", "content": c["problem"]}] for c in cases] + [cases[0]["problem"]]
        completions = [[{"role": "assistant", "content": delim.join(c["steps"])}] for c in cases] + [""]
        out = r(prompts, completions, answer=["x"] * len(prompts))
        assert isinstance(out, list) and len(out) == len(prompts) and all(isinstance(v, float) for v in out)
        for v, c in zip(out, cases):
            assert math.isclose(v, min(prm.score(c["problem"], c["steps"])), abs_tol=1e-6)
        assert out[-1] == 0.0
        assert r.__name__ == "e2h_prm_min"


def test_aggregate():
    assert e2h.aggregate([0.5, 0.2, 0.9], "min") == 0.2
    assert math.isclose(e2h.aggregate([0.5, 0.2], "prod"), 0.1)
    assert e2h.aggregate([0.5, 0.2, 0.9], "last") == 0.9
    assert math.isnan(e2h.aggregate([], "mean"))
    with pytest.raises(ValueError):
        e2h.aggregate([1.0], "max")


def test_answers():
    need("e2h_answer_extract", "e2h_answer_equal")
    assert e2h.answer_extract("so $\\boxed{\\frac{1}{2}}$.") in ("\\frac{1}{2}", "\\frac12", "1/2")
    assert e2h.answer_equal("0.5", "\\frac{1}{2}")
    assert e2h.answer_extract("no answer here") is None
