"""Checks the Hugging Face reference fixtures in tests/fixtures/models/ without torch.

Two layers of checks:
  * well-formedness: files present, safetensors headers parse, tensor shapes/dtypes match config.json,
    tokens in range, logits.npy is '<f4' C-order npy v1.0 of shape (n_tokens, vocab) and finite,
    greedy.json has an 8-id prompt equal to tokens[:8] and 32 in-range ids.
  * an independent float64 numpy forward pass (own safetensors parser, own RoPE incl. llama3 scaling,
    GQA, q/k/v bias) that must reproduce logits.npy and the greedy continuation. This is the oracle the
    C engine is compared with indirectly, and it catches a fixture that was generated wrongly.
Runs in CI with numpy + safetensors only.
"""
import json
import math
import os
import struct

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "models")
FIXTURES = sorted(d for d in os.listdir(ROOT) if os.path.isdir(os.path.join(ROOT, d))) if os.path.isdir(ROOT) else []
ST_DTYPES = {"F32": (np.dtype("<f4"), 4), "F16": (np.dtype("<f2"), 2), "BF16": (np.dtype("<u2"), 2)}
CONFIG_DTYPE = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}
# f64 oracle vs torch f32 math: differences come from f32 rounding in torch only.
LOGIT_ABS, LOGIT_REL = 2e-4, 2e-4


def read_safetensors(path):
    """Own minimal parser: name -> (dtype string, shape, float64 array). Independent of the library."""
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen])
    base = 8 + hlen
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dt, size = ST_DTYPES[meta["dtype"]]
        a, b = meta["data_offsets"]
        n = int(np.prod(meta["shape"])) if meta["shape"] else 1
        assert b - a == n * size, f"{path}: {name} data_offsets span {b - a} != {n}*{size}"
        raw = np.frombuffer(blob, dtype=dt, count=n, offset=base + a)
        if meta["dtype"] == "BF16":  # bf16 = top half of an f32
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = (meta["dtype"], tuple(meta["shape"]), raw.astype(np.float64).reshape(meta["shape"]))
    return out


def load_fixture(name):
    d = os.path.join(ROOT, name)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        files = sorted(set(weight_map.values()))
    else:
        weight_map, files = None, ["model.safetensors"]
    tensors = {}
    for fn in files:
        part = read_safetensors(os.path.join(d, fn))
        if weight_map is not None:
            for t in part:
                assert weight_map.get(t) == fn, f"{name}: index says {t} is in {weight_map.get(t)}, found in {fn}"
        tensors.update(part)
    if weight_map is not None:
        assert set(weight_map) == set(tensors), f"{name}: index and shards disagree"
    with open(os.path.join(d, "tokens.json")) as f:
        ids = json.load(f)["ids"]
    with open(os.path.join(d, "greedy.json")) as f:
        greedy = json.load(f)
    return cfg, tensors, files, ids, greedy


def expected_shapes(cfg):
    """HF tensor name -> shape for a Llama-family decoder."""
    dim, hd = cfg["hidden_size"], cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    nh, nkv, ff, V = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["intermediate_size"], cfg["vocab_size"]
    s = {"model.embed_tokens.weight": (V, dim), "model.norm.weight": (dim,)}
    if not cfg.get("tie_word_embeddings", False):
        s["lm_head.weight"] = (V, dim)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        s.update({p + "input_layernorm.weight": (dim,), p + "post_attention_layernorm.weight": (dim,),
                  p + "self_attn.q_proj.weight": (nh * hd, dim), p + "self_attn.k_proj.weight": (nkv * hd, dim),
                  p + "self_attn.v_proj.weight": (nkv * hd, dim), p + "self_attn.o_proj.weight": (dim, nh * hd),
                  p + "mlp.gate_proj.weight": (ff, dim), p + "mlp.up_proj.weight": (ff, dim),
                  p + "mlp.down_proj.weight": (dim, ff)})
        if cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False):
            s.update({p + "self_attn.q_proj.bias": (nh * hd,), p + "self_attn.k_proj.bias": (nkv * hd,),
                      p + "self_attn.v_proj.bias": (nkv * hd,)})
    return s


def rope_inv_freq(cfg, hd):
    """Per-pair inverse frequencies (hd/2,), with HF's llama3 rope_scaling when configured."""
    inv = 1.0 / (cfg["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv
    assert rs.get("rope_type", rs.get("type")) == "llama3", f"unsupported rope_scaling {rs}"
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    out = np.where(wavelen > old / lo, inv / factor, inv)
    smooth = (old / wavelen - lo) / (hi - lo)
    medium = (wavelen >= old / hi) & (wavelen <= old / lo)
    return np.where(medium, (1 - smooth) * out / factor + smooth * out, out)


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def forward_hidden(cfg, W, ids):
    """float64 reference forward: ids (T,) -> final-normed hidden states (T, dim)."""
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // nh
    eps = cfg["rms_norm_eps"]
    T = len(ids)
    ang = np.outer(np.arange(T, dtype=np.float64), rope_inv_freq(cfg, hd))  # (T, hd/2)
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(x):  # (T, heads, hd), HF "rotate_half" layout: pairs are (i, i + hd/2)
        a, b = x[..., : hd // 2], x[..., hd // 2:]
        c, s = cos[:, None, :], sin[:, None, :]
        return np.concatenate([a * c - b * s, b * c + a * s], axis=-1)

    def lin(x, name):
        y = x @ W[name + ".weight"].T
        return y + W[name + ".bias"] if name + ".bias" in W else y

    x = W["model.embed_tokens.weight"][ids]  # (T, dim)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = rope(lin(h, p + "self_attn.q_proj").reshape(T, nh, hd))
        k = rope(lin(h, p + "self_attn.k_proj").reshape(T, nkv, hd))
        v = lin(h, p + "self_attn.v_proj").reshape(T, nkv, hd)
        att = np.empty((T, nh, hd))
        for hq in range(nh):
            kv = hq // (nh // nkv)
            s = q[:, hq] @ k[:, kv].T / math.sqrt(hd) + mask  # (T, T)
            s = np.exp(s - s.max(axis=1, keepdims=True))
            att[:, hq] = (s / s.sum(axis=1, keepdims=True)) @ v[:, kv]
        x = x + lin(att.reshape(T, nh * hd), p + "self_attn.o_proj")
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = lin(h, p + "mlp.gate_proj")
        x = x + lin(g / (1 + np.exp(-g)) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    return rms_norm(x, W["model.norm.weight"], eps)


def out_matrix(cfg, W):
    """The output projection (vocab, dim): lm_head, or the embeddings when they are tied."""
    return W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]


def forward(cfg, W, ids):
    """float64 reference forward: ids (T,) -> logits (T, vocab)."""
    return forward_hidden(cfg, W, ids) @ out_matrix(cfg, W).T


def read_npy_v1_f4(path):
    """Strict reader for the exact format the C test parses."""
    with open(path, "rb") as f:
        blob = f.read()
    assert blob[:6] == b"\x93NUMPY" and blob[6:8] == b"\x01\x00", f"{path}: not npy v1.0"
    (hlen,) = struct.unpack("<H", blob[8:10])
    assert (10 + hlen) % 64 == 0, f"{path}: header not 64-aligned"
    header = blob[10:10 + hlen].decode("latin1")
    assert "'descr': '<f4'" in header and "'fortran_order': False" in header, f"{path}: {header}"
    arr = np.load(path, allow_pickle=False)
    assert len(blob) == 10 + hlen + arr.size * 4, f"{path}: trailing bytes"
    return arr


def test_fixture_set_complete():
    want = {"llama2_f32", "llama2_bf16", "llama3_f32", "mistral_f32", "qwen2_f32", "qwen2_bf16",
            "llama_sharded_f32", "llemma_like_f32"}
    assert want <= set(FIXTURES), f"missing fixtures: {want - set(FIXTURES)}"


@pytest.mark.parametrize("name", FIXTURES)
def test_well_formed(name):
    cfg, tensors, files, ids, greedy = load_fixture(name)
    V = cfg["vocab_size"]
    want_dt = CONFIG_DTYPE[cfg["torch_dtype"]]
    shapes = expected_shapes(cfg)
    assert set(tensors) == set(shapes), f"{name}: tensor names differ: {set(tensors) ^ set(shapes)}"
    for t, (dt, shape, _) in tensors.items():
        assert shape == shapes[t], f"{name}: {t} shape {shape} != {shapes[t]}"
        assert dt == want_dt, f"{name}: {t} dtype {dt} != config torch_dtype {cfg['torch_dtype']}"
    if name.endswith("sharded_f32"):
        assert len(files) >= 2, f"{name}: expected >= 2 shards, got {files}"
    assert cfg["max_position_embeddings"] >= 256
    assert len(ids) >= 64 and 0 in ids and V - 1 in ids and all(0 <= i < V for i in ids)
    logits = read_npy_v1_f4(os.path.join(ROOT, name, "logits.npy"))
    assert logits.shape == (len(ids), V) and np.isfinite(logits).all()
    assert logits.std() > 0.5, f"{name}: logits nearly constant (std {logits.std()})"
    assert greedy["prompt"] == ids[:8]
    assert len(greedy["continuation"]) == 32 and all(0 <= i < V for i in greedy["continuation"])
    assert greedy["eos_token_id"] is None and cfg.get("eos_token_id") is None
    if cfg["model_type"] == "qwen2":
        bias = tensors["model.layers.0.self_attn.q_proj.bias"][2]
        assert np.abs(bias).max() > 0.1, f"{name}: q bias is ~zero"


@pytest.mark.parametrize("name", FIXTURES)
def test_logits_match_numpy_oracle(name):
    cfg, tensors, _, ids, _ = load_fixture(name)
    W = {t: a for t, (_, _, a) in tensors.items()}
    ref = forward(cfg, W, np.array(ids))
    got = read_npy_v1_f4(os.path.join(ROOT, name, "logits.npy")).astype(np.float64)
    err = np.abs(got - ref) - (LOGIT_ABS + LOGIT_REL * np.abs(ref))
    worst = np.unravel_index(np.argmax(err), err.shape)
    assert err.max() <= 0, (f"{name}: logits[{worst}] = {got[worst]} vs oracle {ref[worst]} "
                            f"(tol {LOGIT_ABS} + {LOGIT_REL}*|ref|)")


@pytest.mark.parametrize("name", FIXTURES)
def test_greedy_matches_numpy_oracle(name):
    cfg, tensors, _, _, greedy = load_fixture(name)
    W = {t: a for t, (_, _, a) in tensors.items()}
    seq = list(greedy["prompt"]) + list(greedy["continuation"])
    logits = forward(cfg, W, np.array(seq[:-1]))  # row t predicts token t+1
    n_p = len(greedy["prompt"])
    pred = logits[n_p - 1:].argmax(axis=1).tolist()
    assert pred == greedy["continuation"], f"{name}: oracle greedy {pred} != {greedy['continuation']}"


def test_llama3_fixture_exercises_all_bands():
    """The llama3 fixture must have frequencies in the kept, smoothed and divided bands."""
    cfg = json.load(open(os.path.join(ROOT, "llama3_f32", "config.json")))
    rs = cfg["rope_scaling"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    inv = 1.0 / (cfg["rope_theta"] ** (np.arange(0, hd, 2) / hd))
    wl = 2 * math.pi / inv
    old = rs["original_max_position_embeddings"]
    lo_wl, hi_wl = old / rs["low_freq_factor"], old / rs["high_freq_factor"]
    assert (wl < hi_wl).any() and (wl > lo_wl).any() and ((wl >= hi_wl) & (wl <= lo_wl)).any(), wl
    n = len(json.load(open(os.path.join(ROOT, "llama3_f32", "tokens.json")))["ids"])
    assert n >= 100 and n > old


def test_oracle_can_fail():
    """Sanity: a perturbed weight must change the oracle logits beyond tolerance."""
    name = "llama2_f32"
    cfg, tensors, _, ids, _ = load_fixture(name)
    W = {t: a.copy() for t, (_, _, a) in tensors.items()}
    W["model.layers.1.self_attn.k_proj.weight"][0, 0] += 0.05
    ref = forward(cfg, W, np.array(ids))
    got = read_npy_v1_f4(os.path.join(ROOT, name, "logits.npy")).astype(np.float64)
    assert (np.abs(got - ref) > LOGIT_ABS + LOGIT_REL * np.abs(ref)).any()
