"""The C `head` PRM protocol on heads that also read an intermediate policy layer (tools/train_head.py
features "layer", "layer+mean_logprob", "hidden+mean_logprob+layer"; metadata feature_layer = L), against
the numpy forward of tools/train_head.py (head_scores on features() columns: x = [hidden (dim), mean
log-prob (1), layer L residual stream (dim)]).

On the tiny fixture policy (tests/fixtures/prm/policy: 2 layers, dim 48) the engine teacher-forces each
fixture case in the head protocol's layout (ids and read positions in expected.json) with feature_layer L,
capturing the final-normed hidden state and the layer-L residual stream at each step's read position; those
features, scored by numpy, are the reference. Heads of every feature kind (linear and MLP) with random
weights are then scored by the C protocol through every path that reads a head:
  - e2h_prm_score_texts (PRM.score; `e2h score`; `e2h serve` /v1/prm/score),
  - e2h_prm_score_new_steps on live policy sequences (a step at a time: the last token's state; all steps
    at once: the fork-and-sync recompute of positions that were not captured),
and `e2h search --prm-head` must set the engine's feature layer itself. Bad metadata (feature_layer
missing, out of range, not an integer, set on a head that reads no layer) and an engine that keeps
another layer are refused with messages naming the file / field / layer.
Tolerance 1e-4 on the sigmoid scores (float32 features into a double dot product; measured ~1e-7)."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from e2h_testlib import REPO  # skips this module when libe2h.so is not built

sys.path.insert(0, os.path.join(REPO, "tools"))
import e2h  # noqa: E402
import train_head as th  # noqa: E402
from e2h._lib import lib  # noqa: E402

POLICY = os.path.join(REPO, "tests", "fixtures", "prm", "policy")
E2H = os.environ.get("E2H_BIN", os.path.join(REPO, os.environ.get("BUILD", "build"), "e2h"))
LAYER = 1  # of the fixture's 2: an intermediate layer, not the last block's output
TOL = 1e-4
KINDS = [(k, f) for f in th.FEATURES for k in ("linear", "mlp")]

pytestmark = [
    pytest.mark.skipif(not os.path.exists(os.path.join(POLICY, "expected.json")), reason="PRM fixtures absent"),
    pytest.mark.skipif(not lib().has("e2h_prm_feature_layer"), reason="libe2h lacks e2h_prm_feature_layer"),
]


def cases():
    return json.load(open(os.path.join(POLICY, "expected.json")))["cases"]


def case_features(eng, c):
    """(n_steps, 2 dim + 1) = [hidden, mean log-prob, layer] at each step's read position, teacher-forced in
    the head protocol's layout (one capture per step)."""
    s = eng.create(c["ids"][:c["n_prompt"]])
    for (a, b), p in zip(c["step_ranges"], c["positions"]):
        s.append(c["ids"][a:b], capture=[p - a])
    eng.sync([s])
    lp = s.logprobs
    rows = [np.concatenate([s.hidden_at(p), [np.mean(lp[a:b])], s.hidden_layer_at(p)])
            for (a, b), p in zip(c["step_ranges"], c["positions"])]
    s.release()
    return np.array(rows, np.float64)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The policy, per-case reference features, and heads of every kind (random weights whose logits
    spread around 0 on these features, so that sigmoid scores can tell a wrong column apart)."""
    d = tmp_path_factory.mktemp("heads")
    pol = e2h.Model(POLICY)
    dim, mid = pol.info.dim, pol.info.model_id
    with e2h.Engine(pol, feature_layer=LAYER) as eng:
        feats = [case_features(eng, c) for c in cases()]
    allx = np.concatenate(feats)
    assert np.abs(allx[:, dim + 1:] - allx[:, :dim]).max() > 1e-2  # the layer is not the final state
    rng = np.random.default_rng(7)
    heads = {}
    for kind, feat in KINDS:
        p = random_head(th.features(allx, feat, dim), kind, rng)
        path = str(d / f"{kind}_{feat.replace('+', '_')}.safetensors")
        write_head(path, p, kind, feat, dim, mid, LAYER if th.needs_layer(feat) else 0)
        heads[(kind, feat)] = (path, p)
    yield dict(pol=pol, dim=dim, mid=mid, feats=feats, heads=heads, dir=d)
    pol.close()


def random_head(f, kind, rng):
    """Random head parameters (float32 values, as float64) whose logits on the feature rows f (n, n_in)
    spread around 0 with std ~2, every column weighted (by 1 / its std), so that sigmoid scores tell a
    wrong column apart."""
    n_in = f.shape[1]
    if kind == "linear":
        w = rng.normal(size=(1, n_in)) / f.std(0).clip(1e-3)
        w /= (f @ w[0]).std() / 2
        p = {"w": w, "b": np.array([-np.mean(f @ w[0])])}
    else:
        w1 = rng.normal(size=(8, n_in)) / f.std(0).clip(1e-3) / np.sqrt(n_in)
        b1 = -np.median(f @ w1.T, axis=0)  # about half the units active
        w2 = rng.normal(size=(1, 8))
        h = np.maximum(f @ w1.T + b1, 0)
        w2 /= (h @ w2[0]).std() / 2
        p = {"w1": w1, "b1": b1, "w2": w2, "b2": np.array([-np.mean(h @ w2[0])])}
    return {k: v.astype(np.float32).astype(np.float64) for k, v in p.items()}


def write_head(path, params, kind, feat, dim, mid, layer, drop=(), **override):
    """A head file with the metadata tools/train_head.py writes (minus drop, plus override)."""
    from safetensors.numpy import save_file
    meta = {"format": "e2h-head", "version": "1", "kind": kind, "dim": str(dim), "model_id": mid,
            "layer": "final", "pooling": "last", "step_delimiter": "\n\n", "features": feat,
            "activation": "relu", "trained_levels": "1,2,3", "target": "soft", "seed": "0",
            "feature_layer": str(layer), "command": "tests/py/test_head_layer.py"}
    meta.update(override)
    for k in drop:
        meta.pop(k)
    save_file({k: np.ascontiguousarray(v.astype(np.float32)) for k, v in params.items()}, path, metadata=meta)


def want_scores(setup, kind, feat):
    path, params = setup["heads"][(kind, feat)]
    return [th.head_scores(params, kind, th.features(x, feat, setup["dim"])) for x in setup["feats"]]


def check(got, want, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: {got.shape} vs {want.shape}"
    d = float(np.abs(got - want).max())
    assert d <= TOL, f"{what}: C head {got} vs numpy {want} (max diff {d:.2e} > {TOL})"
    return d


@pytest.mark.parametrize("kind,feat", KINDS)
def test_score_texts_match_numpy(setup, kind, feat):
    """e2h_prm_score_texts (the PRM's own engine, created with the head's feature layer)."""
    path, _ = setup["heads"][(kind, feat)]
    with e2h.PRM(path, protocol="head", policy=setup["pol"]) as prm:
        assert prm.feature_layer == (LAYER if th.needs_layer(feat) else 0)
        spread = []
        for c, want in zip(cases(), want_scores(setup, kind, feat)):
            check(prm.score(c["problem"], c["steps"]), want, f"{kind}/{feat}/{c['name']}")
            spread += list(want)
    assert sum(0.05 < v < 0.95 for v in spread) >= len(spread) // 2, spread  # the comparison can fail


@pytest.mark.parametrize("kind,feat", KINDS)
def test_live_sequences_match_numpy(setup, kind, feat):
    """e2h_prm_score_new_steps on policy sequences: a step at a time (the state at the last token), and
    all steps at once (earlier read positions recomputed through a temporary fork)."""
    path, _ = setup["heads"][(kind, feat)]
    with e2h.PRM(path, protocol="head", policy=setup["pol"]) as prm, \
            e2h.Engine(setup["pol"], feature_layer=LAYER) as eng:
        eng.attach_prm(prm)
        for c, want in zip(cases(), want_scores(setup, kind, feat)):
            s = eng.create(c["ids"][:c["n_prompt"]], problem=c["problem"])
            for a, b in c["step_ranges"]:
                s.append(c["ids"][a:b])
                eng.score_new_steps([s])
            check(s.step_scores, want, f"step by step {kind}/{feat}/{c['name']}")
            t = eng.create(c["ids"][:c["n_prompt"]], problem=c["problem"])
            t.append(c["ids"][c["n_prompt"]:])
            eng.score_new_steps([t])
            check(t.step_scores, want, f"all at once {kind}/{feat}/{c['name']}")
            s.release()
            t.release()


def score_cli(tmp_path, head, *extra):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("".join(json.dumps({"problem": c["problem"], "steps": c["steps"]}) + "\n" for c in cases()))
    p = subprocess.run([E2H, "score", "--prm", head, "--prm-protocol", "head", "--policy", POLICY,
                        "-i", str(inp), "-o", str(out), *extra], capture_output=True, text=True, timeout=300)
    rows = [json.loads(l) for l in out.read_text().splitlines()] if out.exists() else []
    return p, rows


@pytest.mark.parametrize("feat", th.FEATURES)
def test_score_cli_matches_numpy(setup, tmp_path, feat):
    """`e2h score --prm HEAD --policy P` creates the engine with the head's feature layer."""
    path, _ = setup["heads"][("mlp", feat)]
    p, rows = score_cli(tmp_path, path)
    assert p.returncode == 0, p.stderr
    assert len(rows) == len(cases())
    for r, c, want in zip(rows, cases(), want_scores(setup, "mlp", feat)):
        check(r["step_scores"], want, f"e2h score {feat}/{c['name']}")


def test_search_sets_the_feature_layer(setup, tmp_path):
    """`e2h search --prm-head H` with a layer head just works (the engine keeps the head's layer)."""
    path, _ = setup["heads"][("linear", "hidden+mean_logprob+layer")]
    probs, out = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    probs.write_text(json.dumps({"problem": "What is 2+3?", "answer": "5", "level": 1, "unique_id": "t/1"}) + "\n")
    for method in ("bon", "beam"):
        p = subprocess.run([E2H, "search", "--policy", POLICY, "--prm-head", path, "--problems", str(probs),
                            "--method", method, "-n", "4", "-M", "2", "--max-tokens", "24", "-o", str(out), "--quiet"],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"{method}: {p.stderr}"
        rows = [json.loads(l) for l in out.read_text().splitlines()]
        assert rows[0]["config"]["protocol"] == "head"
        samples = rows[1]["samples"]
        assert samples and all(s["step_scores"] and all(0 < x < 1 for x in s["step_scores"]) for s in samples)
        out.unlink()


def test_serve_prm_score_matches_numpy(setup, tmp_path):
    """`e2h serve -m P --prm-head H`: /v1/prm/score through the server's engine (feature layer set)."""
    import http.client
    path, _ = setup["heads"][("mlp", "hidden+mean_logprob+layer")]
    log = open(tmp_path / "serve.log", "w+")
    proc = subprocess.Popen([E2H, "serve", "-m", POLICY, "--prm-head", path, "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        port, deadline = None, time.time() + 60
        while port is None and time.time() < deadline and proc.poll() is None:
            log.flush()
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", open(log.name).read())
            port = int(m.group(1)) if m else None
            time.sleep(0.1)
        assert port, "server did not start: " + open(log.name).read()
        for c, want in zip(cases(), want_scores(setup, "mlp", "hidden+mean_logprob+layer")):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", "/v1/prm/score", body=json.dumps({"problem": c["problem"], "steps": c["steps"]}),
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            body = json.loads(r.read())
            conn.close()
            assert r.status == 200, body
            check(body["step_scores"], want, f"serve {c['name']}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
    assert proc.returncode == 0


def load_err(path, pol):
    with pytest.raises(e2h.E2HError) as ei:
        e2h.PRM(path, protocol="head", policy=pol)
    return str(ei.value)


def test_bad_feature_layer_metadata(setup, tmp_path):
    pol, dim, mid = setup["pol"], setup["dim"], setup["mid"]
    _, params = setup["heads"][("linear", "hidden+mean_logprob+layer")]
    bad = str(tmp_path / "bad.safetensors")
    write_head(bad, params, "linear", "hidden+mean_logprob+layer", dim, mid, LAYER, drop=("feature_layer",))
    msg = load_err(bad, pol)
    assert "bad.safetensors" in msg and "feature_layer" in msg and "missing" in msg, msg
    for v in ("3", "0", "-1", "x1", "1.5", "99999999999999999999"):  # the policy has 2 layers
        write_head(bad, params, "linear", "hidden+mean_logprob+layer", dim, mid, v)
        msg = load_err(bad, pol)
        assert "bad.safetensors" in msg and "feature_layer" in msg and "1..2" in msg, (v, msg)
    _, hp = setup["heads"][("linear", "hidden")]
    write_head(bad, hp, "linear", "hidden", dim, mid, 1)  # a head that reads no layer, yet names one
    msg = load_err(bad, pol)
    assert "feature_layer" in msg and "hidden" in msg, msg
    write_head(bad, params, "linear", "layer+hidden", dim, mid, 1)
    msg = load_err(bad, pol)
    assert "features" in msg and "hidden+mean_logprob+layer" in msg, msg
    # the layer of the metadata must match the tensor's width: a layer-free width is a shape error
    write_head(bad, hp, "linear", "layer+mean_logprob", dim, mid, 1)
    msg = load_err(bad, pol)
    assert "tensor 'w'" in msg and "expected [1, 49]" in msg, msg
    # the CLI names the file and exits 2
    write_head(bad, params, "linear", "hidden+mean_logprob+layer", dim, mid, 5)
    p, _ = score_cli(tmp_path, bad)
    assert p.returncode == 2 and "bad.safetensors" in p.stderr and "feature_layer" in p.stderr, p.stderr
    probs = tmp_path / "p.jsonl"
    probs.write_text(json.dumps({"problem": "1+1?", "answer": "2", "level": 1, "unique_id": "a"}) + "\n")
    p = subprocess.run([E2H, "search", "--policy", POLICY, "--prm-head", bad, "--problems", str(probs),
                        "--method", "bon", "-n", "2", "-o", str(tmp_path / "r.jsonl")], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2 and "feature_layer" in p.stderr, p.stderr


def test_engine_with_another_layer_is_refused(setup):
    path, _ = setup["heads"][("mlp", "layer")]
    with e2h.PRM(path, protocol="head", policy=setup["pol"]) as prm:
        assert prm.feature_layer == LAYER
        for fl in (0, 2):
            with e2h.Engine(setup["pol"], feature_layer=fl) as eng:
                with pytest.raises(e2h.E2HError) as ei:
                    eng.attach_prm(prm)
                msg = str(ei.value)
                assert f"layer {LAYER}" in msg and ("no layer" in msg if fl == 0 else f"layer {fl}" in msg), msg
    # a head that reads no layer works on any engine
    path, _ = setup["heads"][("mlp", "hidden")]
    with e2h.PRM(path, protocol="head", policy=setup["pol"]) as prm, \
            e2h.Engine(setup["pol"], feature_layer=2) as eng:
        assert prm.feature_layer == 0
        eng.attach_prm(prm)
        c = cases()[0]
        check(eng.score_texts(c["problem"], c["steps"]), want_scores(setup, "mlp", "hidden")[0], "hidden head, layer engine")


# ------------------------------------------------------------------ the default policy: e2h label's features

DEFAULT = os.path.join(REPO, "weights", "SmolLM2-135M-Instruct.Q4_1.gguf")
SYSTEM = "Solve the problem step by step. Separate the steps with a blank line."
PROBLEMS = [{"problem": "What is $12+30$?", "answer": "42", "level": 1, "unique_id": "d/1"},
            {"problem": "Compute $7 \\cdot 6$.", "answer": "42", "level": 2, "unique_id": "d/2"}]
STEP_TOKENS, MAX_TOKENS, MAX_STEPS = 48, 128, 5


def label_like_steps(eng, model, prob):
    """A greedy solution sampled as e2h label samples it (a step per extend to "\\n\\n"), scored by the C
    head on the live sequence after each step as e2h search scores; its step scores."""
    s = eng.create(model.chat(prob["problem"], system=SYSTEM), temperature=0.0, problem=prob["problem"])
    for k in range(MAX_STEPS):
        eng.extend([s], max_tokens=STEP_TOKENS, stop=["\n\n"])
        n_gen = len(s.tokens) - s.n_prompt
        last = s.stop_reason != "stop_string" or k + 1 >= MAX_STEPS or n_gen >= MAX_TOKENS
        eng.score_new_steps([s], is_final=last)
        if last:
            break
    out = s.step_scores
    s.release()
    return out


@pytest.mark.skipif(not os.path.exists(DEFAULT), reason="default model absent (make model)")
def test_label_features_match_c_head_on_default_policy(tmp_path):
    """SmolLM2-135M with feature layer 20 (the job's head): `e2h label --feature-layer 20 --rollouts 0`
    records [hidden, mean log-prob] (PREFIX.npy) and layer 20 (PREFIX.layer.npy) at each greedy step end;
    the C head, reading the same greedy solution's live sequence (the engine made with the head's layer
    by e2h.PRM / attach), must give numpy's scores of label's rows."""
    probs = tmp_path / "p.jsonl"
    probs.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    pre = tmp_path / "lab"
    p = subprocess.run([E2H, "label", "-m", DEFAULT, "--problems", str(probs), "-o", str(pre), "--solutions", "1",
                        "--rollouts", "0", "--temp", "0", "--feature-layer", "20", "--system", SYSTEM, "--group", "1",
                        "--step-tokens", str(STEP_TOKENS), "--max-tokens", str(MAX_TOKENS), "--max-steps", str(MAX_STEPS)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(l) for l in open(str(pre) + ".jsonl")]
    cfg, rows = lines[0]["config"], lines[1:]
    x = th.with_layer(np.load(str(pre) + ".npy").astype(np.float64), str(pre), "hidden+mean_logprob+layer")
    dim = cfg["dim"]
    assert cfg["feature_layer"] == 20 and x.shape == (len(rows), 2 * dim + 1)
    rng = np.random.default_rng(3)
    spread = []
    with e2h.Model(DEFAULT) as model:
        for kind in ("linear", "mlp"):
            for feat in ("hidden+mean_logprob+layer", "layer+mean_logprob"):
                f = th.features(x, feat, dim)
                params = random_head(f, kind, rng)
                head = str(tmp_path / f"{kind}.safetensors")
                write_head(head, params, kind, feat, dim, cfg["model_id"], 20)
                want = th.head_scores(params, kind, f)
                with e2h.PRM(head, protocol="head", policy=model) as prm, \
                        e2h.Engine(model, feature_layer=20) as eng:  # (closed before its PRM)
                    assert prm.feature_layer == 20
                    eng.attach_prm(prm)
                    for prob in PROBLEMS:
                        sel = [i for i, r in enumerate(rows) if r["unique_id"] == prob["unique_id"]]
                        got = label_like_steps(eng, model, prob)
                        assert len(got) == len(sel), (prob, [rows[i]["text"] for i in sel])
                        check(got, want[sel], f"label vs C head {kind}/{feat}/{prob['unique_id']}")
                spread += list(want)
    assert len(rows) >= 4 and sum(r["final"] for r in rows) == len(PROBLEMS), rows
    assert sum(0.05 < v < 0.95 for v in spread) >= len(spread) // 2, spread
