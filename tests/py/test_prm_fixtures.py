"""Checks the committed PRM fixtures (tests/fixtures/prm/, made by tools/make_prm_fixtures.py) without torch.

* well-formed: config.json / expected.json parse, tensor names and shapes (incl. each family's head tensors),
  ids in range, positions inside the sequence, one score per step, scores finite (and in [0, 1] where
  they are probabilities), the shared-prefix branch case agrees with its sibling on the common steps.
* tokenizer: the `tokenizers` library re-encodes each case's text to the stored ids (skipped if absent).
* an independent float64 numpy forward pass (test_fixtures_consistency's oracle, forward_hidden: the
  final-normed hidden states) recomputes every family's step scores from the weights and the protocol's
  rule and must match expected.json within 1e-4: this catches a fixture made from the wrong position,
  head or formula, and is what the C engine's 1e-4 comparison stands on.
"""
import json
import os

import numpy as np
import pytest

from test_fixtures_consistency import forward_hidden, out_matrix, read_safetensors

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "prm")
FAMILIES = ["e2h_paper", "math_shepherd", "qwen_prm", "rlhflow", "value_head", "implicit", "policy"]
TOL = 1e-4


def load(name):
    d = os.path.join(ROOT, name)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(d, "expected.json"), encoding="utf-8") as f:
        exp = json.load(f)
    W = {k: v[2] for k, v in read_safetensors(os.path.join(d, "model.safetensors")).items()}
    return cfg, W, exp


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def p_first(pair_logits):
    """softmax over two logits, probability of the first."""
    a = np.asarray(pair_logits)
    return 1.0 / (1.0 + np.exp(a[..., 1] - a[..., 0]))


def close(got, want, what):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    err = np.abs(got - want).max() if got.size else 0.0
    assert err <= TOL, f"{what}: max |err| {err:.3g} > {TOL}"


def oracle_scores(name, cfg, W, exp, case, W_ref=None, cfg_ref=None):
    """The protocol's step scores from the numpy forward pass."""
    ids = case["ids"]
    h = forward_hidden(cfg, W, ids)
    if name == "e2h_paper":
        reward = h @ out_matrix(cfg, W).T  # (T, V)
        reward = reward.mean(axis=1)
        return sigmoid(reward[case["positions"]])
    if name in ("math_shepherd", "rlhflow"):
        logits = h[case["positions"]] @ out_matrix(cfg, W)[exp["candidate_ids"]].T  # (n, 2)
        return p_first(logits)
    if name == "qwen_prm":
        x = h[case["positions"]]
        z = np.maximum(x @ W["score.0.weight"].T + W["score.0.bias"], 0) @ W["score.2.weight"].T + W["score.2.bias"]
        return 1.0 - p_first(z)  # class 1
    if name == "value_head":
        x = h[case["positions"]]
        return sigmoid(x @ W["v_head.summary.weight"][0] + W["v_head.summary.bias"][0])
    if name == "implicit":
        h_ref = forward_hidden(cfg_ref, W_ref, ids)
        sums = []
        lps = []
        for hh, c, w in ((h, cfg, W), (h_ref, cfg_ref, W_ref)):
            lp = log_softmax(hh[:-1] @ out_matrix(c, w).T)
            lps.append(lp[np.arange(len(ids) - 1), ids[1:]])  # log p(ids[t] | ids[:t]) at t-1
        diff = lps[0] - lps[1]
        for a, b in case["step_ranges"]:
            sums.append(diff[a - 1:b - 1].sum())
        return np.array(sums)
    raise AssertionError(name)


def test_fixture_set_complete():
    have = set(os.listdir(ROOT))
    assert set(FAMILIES) | {"implicit_ref"} <= have, f"missing: {set(FAMILIES) - have}"


@pytest.mark.parametrize("name", FAMILIES)
def test_well_formed(name):
    cfg, W, exp = load(name)
    V, H = cfg["vocab_size"], cfg["hidden_size"]
    assert exp["protocol"] == {"e2h_paper": "e2h-paper", "math_shepherd": "math-shepherd", "qwen_prm": "qwen-prm",
                               "rlhflow": "rlhflow", "value_head": "value-head", "implicit": "implicit",
                               "policy": "head"}[name]
    assert W["model.embed_tokens.weight"].shape == (V, H)
    if name == "qwen_prm":
        assert cfg["architectures"] == ["Qwen2ForProcessRewardModel"] and "lm_head.weight" not in W
        assert W["score.0.weight"].shape == (H, H) and W["score.0.bias"].shape == (H,)
        assert W["score.2.weight"].shape == (2, H) and W["score.2.bias"].shape == (2,)
    if name == "value_head":
        assert W["v_head.summary.weight"].shape == (1, H) and W["v_head.summary.bias"].shape == (1,)
    assert len(exp["cases"]) >= 3
    for c in exp["cases"]:
        n = len(c["steps"])
        assert all(0 <= i < V for i in c["ids"])
        assert len(c["ids"]) <= cfg["max_position_embeddings"]
        if "positions" in c:
            assert len(c["positions"]) == n and c["positions"] == sorted(set(c["positions"]))
            assert all(0 <= p < len(c["ids"]) for p in c["positions"])
        scores = c.get("step_scores", c.get("step_logratio_sums"))
        for s in (scores.values() if isinstance(scores, dict) else [scores]):
            assert len(s) == n and np.isfinite(s).all()
            if name != "implicit":
                assert all(0.0 <= v <= 1.0 for v in s)
    # the branch case shares the problem and the first three steps with "quadratic": same scores there
    by = {c["name"]: c for c in exp["cases"]}
    a, b = by["quadratic"], by["quadratic_branch"]
    sa = a.get("step_scores", a.get("step_logratio_sums"))
    sb = b.get("step_scores", b.get("step_logratio_sums"))
    if isinstance(sa, dict):
        sa, sb = sa["head_linear"], sb["head_linear"]
    assert np.abs(np.array(sa[:3]) - np.array(sb[:3])).max() < 1e-5
    assert np.abs(np.array(sa[3:]) - np.array(sb[3:])).max() > 1e-3


@pytest.mark.parametrize("name", FAMILIES)
def test_tokenizer_reencodes(name):
    tokenizers = pytest.importorskip("tokenizers")
    d = os.path.join(ROOT, name)
    tok = tokenizers.Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    _, _, exp = load(name)
    for c in exp["cases"]:
        if "text" not in c:
            continue
        add = exp.get("add_bos", False) and name != "e2h_paper"
        ids = tok.encode(c["text"], add_special_tokens=add).ids
        want = c["ids"][:-1] if name == "e2h_paper" else c["ids"]  # e2h-paper appends EOS itself
        if name == "e2h_paper":
            ids = tok.encode(c["text"], add_special_tokens=True).ids
        assert ids == want, f"{name}/{c['name']}: re-encoded ids differ"


@pytest.mark.parametrize("name", FAMILIES)
def test_scores_match_numpy_oracle(name):
    cfg, W, exp = load(name)
    extra = {}
    if name == "implicit":
        cfg_ref, W_ref, _ = load_ref()
        extra = dict(W_ref=W_ref, cfg_ref=cfg_ref)
    for c in exp["cases"]:
        if name == "policy":
            h = forward_hidden(cfg, W, c["ids"])
            close(h[c["positions"]], c["hidden"], f"{name}/{c['name']} hidden")
            check_heads(cfg, W, c, h)
            continue
        got = oracle_scores(name, cfg, W, exp, c, **extra)
        if name == "implicit":
            close(got, c["step_logratio_sums"], f"{name}/{c['name']}")
        else:
            close(got, c["step_scores"], f"{name}/{c['name']}")
            if "hidden" in c:
                close(forward_hidden(cfg, W, c["ids"])[c["positions"]], c["hidden"], f"{name}/{c['name']} hidden")


def load_ref():
    d = os.path.join(ROOT, "implicit_ref")
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    W = {k: v[2] for k, v in read_safetensors(os.path.join(d, "model.safetensors")).items()}
    return cfg, W, None


def read_head(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    return header["__metadata__"], {k: v[2] for k, v in read_safetensors(path).items()}


def check_heads(cfg, W, c, h):
    d = os.path.join(ROOT, "policy")
    ids = c["ids"]
    lp = log_softmax(h[:-1] @ out_matrix(cfg, W).T)
    tok_lp = lp[np.arange(len(ids) - 1), ids[1:]]  # index t-1 -> log p(ids[t])
    mean_lp = np.array([tok_lp[a - 1:b - 1].mean() for a, b in c["step_ranges"]])
    close(mean_lp, c["mean_logprobs"], f"policy/{c['name']} mean_logprobs")
    x = h[c["positions"]]
    for head in ("head_linear", "head_mlp"):
        meta, t = read_head(os.path.join(d, head + ".safetensors"))
        assert meta["format"] == "e2h-head" and meta["version"] == "1" and int(meta["dim"]) == cfg["hidden_size"]
        assert meta["layer"] == "final" and meta["pooling"] == "last" and meta["step_delimiter"] == "\n\n"
        assert len(meta["model_id"]) == 32
        if meta["kind"] == "linear":
            assert meta["features"] == "hidden" and t["w"].shape == (1, cfg["hidden_size"])
            s = sigmoid(x @ t["w"][0] + t["b"][0])
        else:
            assert meta["features"] == "hidden+mean_logprob" and t["w1"].shape[1] == cfg["hidden_size"] + 1
            xx = np.concatenate([x, mean_lp[:, None]], axis=1)
            s = sigmoid(np.maximum(xx @ t["w1"].T + t["b1"], 0) @ t["w2"][0] + t["b2"][0])
        close(s, c["step_scores"][head], f"policy/{c['name']} {head}")


def test_oracle_can_fail():
    """Reading one token off (the classic PRM bug) must break the 1e-4 agreement."""
    cfg, W, exp = load("math_shepherd")
    c = dict(exp["cases"][1])
    c["positions"] = [p - 1 for p in c["positions"]]
    with pytest.raises(AssertionError):
        close(oracle_scores("math_shepherd", cfg, W, exp, c), exp["cases"][1]["step_scores"], "shifted")


GGUF_HEADS = {"qwen_prm": ("qwen-prm", {"score.0.weight": "cls.weight", "score.0.bias": "cls.bias",
                                        "score.2.weight": "cls.output.weight", "score.2.bias": "cls.output.bias"}),
              "value_head": ("value-head", {"v_head.summary.weight": "cls.output.weight",
                                            "v_head.summary.bias": "cls.output.bias"})}


@pytest.mark.parametrize("name", list(GGUF_HEADS))
def test_gguf_copy(name):
    """model.gguf (write_prm_gguf): the protocol key, the tokenizer pieces, and every weight equal to the
    safetensors' (the head under e2h's GGUF names)."""
    gguf = pytest.importorskip("gguf")
    d = os.path.join(ROOT, name)
    r = gguf.GGUFReader(os.path.join(d, "model.gguf"))
    proto, heads = GGUF_HEADS[name]
    assert r.fields["e2h.prm.protocol"].contents() == proto
    assert r.fields["general.architecture"].contents() == "qwen2"
    with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    toks = r.fields["tokenizer.ggml.tokens"].contents()
    for t, i in list(tj["model"]["vocab"].items()) + [(a["content"], a["id"]) for a in tj["added_tokens"]]:
        assert toks[i] == t
    W = {k: v[2] for k, v in read_safetensors(os.path.join(d, "model.safetensors")).items()}
    T = {t.name: np.asarray(t.data, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)]) for t in r.tensors}
    for hf, gg in heads.items():
        np.testing.assert_array_equal(T[gg], W[hf].astype(np.float32).reshape(T[gg].shape))
    np.testing.assert_array_equal(T["token_embd.weight"], W["model.embed_tokens.weight"])
    np.testing.assert_array_equal(T["blk.1.ffn_down.weight"], W["model.layers.1.mlp.down_proj.weight"])
