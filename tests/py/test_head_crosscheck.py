"""The easy-to-hard job scores steps two ways: tools/e2h_job.py scores recorded features with the numpy
forward of tools/train_head.py (head_scores), and e2h search / score / the Python package score with the C
head protocol (engine/prm/head.c through e2h_prm_score_texts). Both must give the same step scores for a
head that train_head.py wrote.

Here train_head.py trains a linear head (features hidden+mean_logprob) and an MLP head (features hidden)
on the tiny fixture policy's own hidden states (tests/fixtures/prm/policy), so the heads' weights and
standardization are those of real training at the real feature scale. Then for each fixture case the
engine teacher-forces the case (prompt, then each step + "\\n\\n", the layout of the head protocol, ids in
expected.json), the numpy forward scores its captured features, and the C head PRM scores the case's text.
Tolerance: 1e-5 absolute on the sigmoid scores (float32 C against float64 numpy; measured ~1e-7).
"""
import json
import os
import sys

import numpy as np
import pytest

from e2h_testlib import REPO  # skips this module when libe2h.so is not built

sys.path.insert(0, os.path.join(REPO, "tools"))
import e2h  # noqa: E402
import train_head as th  # noqa: E402
from e2h._lib import lib  # noqa: E402

POLICY = os.path.join(REPO, "tests", "fixtures", "prm", "policy")
TOL = 1e-5


def case_features(eng, c):
    """(n_steps, dim + 1): hidden state at each step's last token + the step's mean token log-prob,
    teacher-forced through the engine in the head protocol's layout."""
    s = eng.create(c["ids"][:c["n_prompt"]])
    for (a, b), p in zip(c["step_ranges"], c["positions"]):
        s.append(c["ids"][a:b], capture=[p - a])
    eng.sync([s])
    lp = s.logprobs
    rows = [np.concatenate([s.hidden_at(p), [np.mean(lp[a:b])]]) for (a, b), p in zip(c["step_ranges"], c["positions"])]
    s.release()
    return np.array(rows, np.float64)


def write_training_labels(eng, cases, prefix, model_id, dim):
    """`e2h label`-format features (every position of every case) with a rule label that a head can learn
    only partly, so the trained scores spread over (0, 1)."""
    xs = []
    for c in cases:
        s = eng.create(c["ids"][:c["n_prompt"]])
        n = len(c["ids"]) - c["n_prompt"]
        s.append(c["ids"][c["n_prompt"]:], capture=list(range(n)))
        eng.sync([s])
        lp = s.logprobs
        for p in range(c["n_prompt"], len(c["ids"])):
            xs.append(np.concatenate([s.hidden_at(p), [lp[p]]]))
        s.release()
    x = np.array(xs, np.float32)
    rng = np.random.default_rng(0)
    z = (x[:, :dim] - x[:, :dim].mean(0)) @ rng.normal(size=dim)
    soft = 1 / (1 + np.exp(-z / z.std() * 2))
    with open(prefix + ".jsonl", "w") as f:
        f.write(json.dumps({"config": {"model_id": model_id, "dim": dim, "feature_layer": 0}}) + "\n")
        for i in range(len(x)):
            f.write(json.dumps({"row": i, "unique_id": f"p{i // 4}", "level": 1 + i % 3, "solution": 0, "step": 0,
                                "soft": float(soft[i]), "hard": int(soft[i] > 0.5)}) + "\n")
    np.save(prefix + ".npy", x)


@pytest.mark.skipif(not os.path.exists(os.path.join(POLICY, "expected.json")), reason="PRM fixtures absent")
def test_numpy_head_equals_c_head(tmp_path):
    if not lib().has("e2h_prm_score_texts"):
        pytest.skip("libe2h lacks the PRM API")
    cases = json.load(open(os.path.join(POLICY, "expected.json")))["cases"]
    with e2h.Model(POLICY) as policy:
        dim, mid = policy.info.dim, policy.info.model_id
        with e2h.Engine(policy) as eng:
            write_training_labels(eng, cases, str(tmp_path / "lab"), mid, dim)
            feats = [case_features(eng, c) for c in cases]
        worst = 0.0
        spread = []
        for kind, features in (("linear", "hidden+mean_logprob"), ("mlp", "hidden")):
            head = str(tmp_path / f"{kind}.safetensors")
            assert th.main([str(tmp_path / "lab"), "-o", head, "--kind", kind, "--features", features,
                            "--hidden", "16", "--epochs", "300", "--heldout", "0.3", "--seed", "0"]) == 0
            from safetensors import safe_open
            with safe_open(head, "np") as f:
                meta = f.metadata()
                params = {k: f.get_tensor(k).astype(np.float64) for k in f.keys()}
            assert meta["features"] == features and meta["model_id"] == mid
            with e2h.PRM(head, protocol="head", policy=policy) as prm:
                for c, x in zip(cases, feats):
                    want = th.head_scores(params, meta["kind"], th.features(x, meta["features"], dim))
                    got = np.array(prm.score(c["problem"], c["steps"]), np.float64)
                    assert got.shape == want.shape
                    d = float(np.abs(got - want).max())
                    worst = max(worst, d)
                    spread += list(want)
                    assert d <= TOL, f"{kind}/{c['name']}: C head {got} vs numpy {want} (max diff {d:.2e} > {TOL})"
        # scores away from 0 and 1, so that the comparison can fail
        assert sum(0.02 < v < 0.98 for v in spread) >= len(spread) // 2, spread
        print(f"numpy vs C head: max |score diff| {worst:.2e} over {len(spread)} steps")
