"""GGUF loading path vs the Hugging Face reference, without llama.cpp.

Each HF fixture (tests/fixtures/models/, logits from transformers) is converted to an f32 GGUF the
way llama.cpp's converter does it (tools/gguf_convert.py: Q/K rows permuted for "llama", not for
"qwen2"). `e2h logits` on that GGUF runs engine/load_gguf.c and the interleaved rope; its logits
must match the HF logits, and e2h on the HF directory. A wrong permutation, rope variant, bias or
tied head shows up as a large logit difference.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MODELS = os.path.join(ROOT, "tests", "fixtures", "models")
E2H = os.environ.get("E2H_BIN", os.path.join(ROOT, os.environ.get("BUILD", "build"), "e2h"))

sys.path.insert(0, os.path.join(ROOT, "tools"))
gguf_convert = pytest.importorskip("gguf_convert")

# f32 everywhere; the engine's reduction order differs from torch's
ATOL, RTOL = 2e-4, 2e-3


def _e2h_logits(model, ids, out):
    if not os.access(E2H, os.X_OK):
        pytest.skip(f"{E2H} not built (make)")
    r = subprocess.run([E2H, "logits", "-m", model, "--ids", ",".join(map(str, ids)), "-o", out],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return np.load(out)


@pytest.mark.parametrize("name", ["llama2_f32", "mistral_f32", "qwen2_f32", "llemma_like_f32"])
def test_gguf_logits_match_hf(name, tmp_path):
    d = os.path.join(MODELS, name)
    if not os.path.isdir(d):
        pytest.skip(f"fixture {d} absent")
    with open(os.path.join(d, "tokens.json")) as f:
        ids = json.load(f)["ids"]
    want = np.load(os.path.join(d, "logits.npy"))
    g = str(tmp_path / f"{name}.gguf")
    gguf_convert.hf_to_gguf(d, g)
    got = _e2h_logits(g, ids, str(tmp_path / "gguf.npy"))
    assert got.shape == want.shape
    err = np.abs(got - want)
    assert np.all(err <= ATOL + RTOL * np.abs(want)), f"max abs err {err.max():.3g}"
    assert np.array_equal(got.argmax(-1), want.argmax(-1))
    # same engine, safetensors path: only rope layout and load path differ
    st = _e2h_logits(d, ids, str(tmp_path / "st.npy"))
    assert np.max(np.abs(st - got)) <= 1e-4 + 1e-4 * np.max(np.abs(st))


def test_permute_roundtrip():
    rng = np.random.default_rng(0)
    for n_head, hd in [(6, 12), (2, 12), (9, 64)]:
        w = rng.standard_normal((n_head * hd, 5)).astype(np.float32)
        p = gguf_convert.permute(w, n_head)
        assert not np.array_equal(p, w)
        assert np.array_equal(gguf_convert.unpermute(p, n_head), w)
        # llama.cpp layout: head h, pair i = rows (2i, 2i+1) come from HF rows (i, i + hd/2)
        assert np.array_equal(p[1], w[hd // 2]) and np.array_equal(p[hd + 2], w[hd + 1])
