"""e2h vs llama.cpp on the default model (SmolLM2-135M-Instruct Q4_1 GGUF).

Fixtures (tools/make_llamacpp_fixtures.py, llama-cpp-python 0.3.36, 2 threads, f32 KV cache, no
flash attention; settings recorded in the JSON): 4 chat-formatted MATH500 problems tokenized by
llama.cpp; 64 greedy tokens; the argmax, top-1/top-2 margin and top-8 logits at every position of
prompt + continuation (prompt evaluated as one batch, continuation one token at a time).

  smollm2_f32.json   llama.cpp on the f32 dequantization of the file (tools/gguf_convert.py
                     dequant). Both engines then do the same math up to float rounding, so e2h
                     must give the same 64 greedy tokens and the same top-1 at every position.
  smollm2_q4_1.json  llama.cpp on the Q4_1 file itself. e2h quantizes activations exactly as
                     llama.cpp does (q8_0 / q8_1 integers, f16 block scales and sums: checked
                     bit for bit against llama.cpp's own quantize_row_q8_0/_1 and vec_dot on
                     q8_act.bin by tests/test_kernels_quant.c and below). Logits still differ:
                     the float summation order differs (e2h's batch-invariant 16 lanes vs
                     ggml's 8 lanes, llamafile sgemm for attention and the Q8_0 head), and a
                     1-ulp difference in a block's amax or in x*127/amax near k+0.5 flips an f16
                     scale (2^-11 of the block) or an int8 value; over 30 layers (residual
                     values up to ~25000) that grows to ~0.1-0.2 in the logits. llama.cpp shows
                     the same noise against itself: the fixture also holds its run with the
                     prompt fed one token at a time (seq_*), whose greedy continuation differs
                     from the batched one in 3 of the 4 prompts. Identical greedy output and
                     top-1 everywhere would need ggml's exact float order in every op (and
                     llama.cpp's batch-size-dependent sgemm tiling), so the test allows a top-1
                     flip only at a near-tie: llama.cpp's margin below Q_TIE and e2h ranking
                     llama.cpp's token within Q_TIE of its own; greedy continuations must agree
                     up to the first such near-tie. It prints the minimum margin seen and
                     llama.cpp's own token-by-token noise next to e2h's.
  smollm2_q4_1_plain.json  llama.cpp on the Q4_1 file for 5 raw-text prompts the model
                     continues confidently (number and letter sequences; llama.cpp's top-1
                     margin >= 0.19 at every position, and its token-by-token run agrees with
                     its batched run). There e2h must give exactly llama.cpp's 64 greedy tokens
                     and its top-1 at every position, no tolerance.
Needs `make model` (weights/) and the e2h binary; skips with a message otherwise.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIXDIR = os.path.join(ROOT, "tests", "fixtures", "llamacpp")
MODEL = os.path.join(ROOT, "weights", "SmolLM2-135M-Instruct.Q4_1.gguf")
E2H = os.environ.get("E2H_BIN", os.path.join(ROOT, os.environ.get("BUILD", "build"), "e2h"))

F32_TIE, F32_ATOL = 0.01, 0.1  # f32: only true ties may flip; top-8 logits within 0.1
Q_TIE, Q_MEAN_ATOL = 0.4, 0.3  # q4_1: float-order noise through int8/f16 rounding (mean ~0.18)
N_PROMPTS = 4


def _fixture(name):
    if not os.path.exists(MODEL):
        pytest.skip(f"{MODEL} absent: run `make model`")
    path = os.path.join(FIXDIR, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} absent: run tools/make_llamacpp_fixtures.py")
    if not os.access(E2H, os.X_OK):
        pytest.skip(f"{E2H} not built (make)")
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def f32_model(tmp_path_factory):
    """The f32 dequantization of the default model, made the way the fixture's was."""
    if not os.path.exists(MODEL):
        pytest.skip(f"{MODEL} absent: run `make model`")
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import gguf_convert
    out = str(tmp_path_factory.mktemp("f32") / "smollm2_f32.gguf")
    gguf_convert.dequant_gguf(MODEL, out)
    return out


def _run(args):
    r = subprocess.run([E2H] + args + ["-t", "2"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _greedy(model, p):
    out = _run(["generate", "-m", model, "--ids", ",".join(map(str, p["prompt_ids"])), "-n",
                str(len(p["greedy"])), "--temp", "0", "--ignore-eos", "--json"])
    return json.loads(out.strip().splitlines()[-1])["samples"][0]["ids"]


def _logits(model, p, tmp_path):
    ids = p["prompt_ids"] + p["greedy"]
    out = str(tmp_path / "logits.npy")
    _run(["logits", "-m", model, "--ids", ",".join(map(str, ids)), "-o", out])
    lg = np.load(out)
    assert lg.shape[0] == len(ids) == len(p["argmax"])
    return lg


def _top8_err(lg, p):
    """(positions, 8) |e2h - llama.cpp| on llama.cpp's top-8 tokens."""
    return np.array([[abs(float(lg[i, t]) - v) for t, v in top] for i, top in enumerate(p["top"])])


# ---------------------------------------------------------------- f32: exact agreement

@pytest.mark.parametrize("k", range(N_PROMPTS))
def test_f32_greedy_identical(k, f32_model):
    p = _fixture("smollm2_f32.json")["prompts"][k]
    got, n0 = _greedy(f32_model, p), len(p["prompt_ids"])
    for i, (g, w) in enumerate(zip(got, p["greedy"])):
        if g != w:
            m = p["margin"][n0 - 1 + i]
            assert m < F32_TIE, f"token {i}: e2h {g}, llama.cpp {w} (llama.cpp margin {m:.4f})"
            return  # a true tie: the rest of the sequences are not comparable
    assert len(got) == len(p["greedy"])


@pytest.mark.parametrize("k", range(N_PROMPTS))
def test_f32_top1_every_position(k, f32_model, tmp_path):
    p = _fixture("smollm2_f32.json")["prompts"][k]
    lg = _logits(f32_model, p, tmp_path)
    for i, (g, w) in enumerate(zip(lg.argmax(-1).tolist(), p["argmax"])):
        assert g == w or p["margin"][i] < F32_TIE, f"position {i}: e2h {g}, llama.cpp {w}"
    err = _top8_err(lg, p)
    assert err.max() < F32_ATOL, f"max |dlogit| {err.max():.4f}"


# ---------------------------------------------------------------- llama.cpp's activation quantizers

def _q8_act():
    path = os.path.join(FIXDIR, "q8_act.bin")
    if not os.path.exists(path):
        pytest.skip(f"{path} absent: run tools/make_llamacpp_fixtures.py --act-only")
    buf = open(path, "rb").read()
    assert buf[:8] == b"E2HQ8ACT"
    rows, n_in, _ = np.frombuffer(buf, "<u4", 3, 8)
    nb = n_in // 32
    x = np.frombuffer(buf, "<f4", rows * n_in, 20).reshape(rows, nb, 32)
    o = 20 + x.nbytes
    q80 = np.frombuffer(buf, np.uint8, rows * nb * 34, o).reshape(rows, nb, 34)
    q81 = np.frombuffer(buf, np.uint8, rows * nb * 36, o + q80.nbytes).reshape(rows, nb, 36)
    return x, q80, q81


def test_q8_act_fixture_is_the_documented_rule():
    """llama.cpp's q8_0/q8_1 (as recorded from libggml-cpu) = the rule in kernels/quant.h, in
    numpy: d = amax/127, q = rint(x * (127/amax)) in f32, half(d), half(d * sum q)."""
    x, q80, q81 = _q8_act()
    amax = np.abs(x).max(-1, keepdims=True)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(amax != 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    q = np.rint((x * idv).astype(np.float32)).astype(np.int32)
    dh = d[..., 0].astype(np.float16)
    s = (d[..., 0] * q.sum(-1).astype(np.float32)).astype(np.float32).astype(np.float16)
    for blk, off in ((q80, 2), (q81, 4)):
        assert (blk[..., off:].view(np.int8) == q).all()
        assert (blk[..., 0:2].copy().view(np.float16)[..., 0].view(np.uint16) == dh.view(np.uint16)).all()
    assert (q81[..., 2:4].copy().view(np.float16)[..., 0].view(np.uint16) == s.view(np.uint16)).all()
    # and the old e2h rule (q = rint(x / d), f32 d) would get some of these wrong
    with np.errstate(divide="ignore"):
        old = np.rint(x * np.where(d > 0, np.float32(1) / d, 0).astype(np.float32))
    assert (old != q).sum() > 0


# ---------------------------------------------------------------- q4_1: agreement up to near-ties

def _near_tie(lg, p, i, g, w):
    return p["margin"][i] < Q_TIE and float(lg[i, g] - lg[i, w]) < Q_TIE


@pytest.mark.parametrize("k", range(N_PROMPTS))
def test_q4_1_top1_every_position(k, tmp_path):
    p = _fixture("smollm2_q4_1.json")["prompts"][k]
    lg = _logits(MODEL, p, tmp_path)
    flips = 0
    for i, (g, w) in enumerate(zip(lg.argmax(-1).tolist(), p["argmax"])):
        if g != w:
            assert _near_tie(lg, p, i, g, w), \
                f"position {i}: e2h {g}, llama.cpp {w} (margins {p['margin'][i]:.3f}, " \
                f"{float(lg[i, g] - lg[i, w]):.3f})"
            flips += 1
    err = _top8_err(lg, p)
    self_flips = sum(a != b for a, b in zip(p["seq_argmax"], p["argmax"]))
    print(f"prompt {k}: {lg.shape[0]} positions, min llama.cpp margin {min(p['margin']):.4f}; "
          f"e2h: {flips} near-tie flips, top-8 |dlogit| mean {err.mean():.3f} max {err.max():.3f}; "
          f"llama.cpp token by token: {self_flips} flips, mean {np.mean(p['seq_top_err']):.3f}")
    assert flips <= 0.05 * lg.shape[0]
    assert err.mean() < Q_MEAN_ATOL


def _first_diff(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


@pytest.mark.parametrize("k", range(N_PROMPTS))
def test_q4_1_greedy_until_near_tie(k, tmp_path):
    p = _fixture("smollm2_q4_1.json")["prompts"][k]
    got, n0 = _greedy(MODEL, p), len(p["prompt_ids"])
    for i, (g, w) in enumerate(zip(got, p["greedy"])):
        if g != w:
            lg = _logits(MODEL, p, tmp_path)  # e2h's view of llama.cpp's sequence at that step
            assert _near_tie(lg, p, n0 - 1 + i, g, w), f"token {i}: e2h {g}, llama.cpp {w}"
            print(f"prompt {k}: identical for {i} tokens, then a near-tie "
                  f"(llama.cpp margin {p['margin'][n0 - 1 + i]:.4f}; llama.cpp token by token: "
                  f"identical for {_first_diff(p['seq_greedy'], p['greedy'])})")
            return
    assert len(got) == len(p["greedy"])


# ---------------------------------------------------------------- q4_1, confident prompts: exact

N_PLAIN = 5


@pytest.mark.parametrize("k", range(N_PLAIN))
def test_q4_1_plain_prompts_exact(k, tmp_path):
    """Raw-text prompts the model continues confidently (llama.cpp's top-1 margin >= 0.19 at
    every position, recorded): e2h on the Q4_1 file as stored gives llama.cpp's exact 64 greedy
    tokens and its top-1 at every position of prompt + continuation."""
    p = _fixture("smollm2_q4_1_plain.json")["prompts"][k]
    assert min(p["margin"]) >= 0.15, "fixture prompt is not confident"
    assert _greedy(MODEL, p) == p["greedy"]
    lg = _logits(MODEL, p, tmp_path)
    bad = [i for i, (g, w) in enumerate(zip(lg.argmax(-1).tolist(), p["argmax"])) if g != w]
    assert not bad, f"top-1 differs at positions {bad}"
