#!/usr/bin/env python3
"""Writes a random-weight Hugging Face Llama model directory (config.json + model.safetensors)
with 1B-class shapes (TinyLlama-1.1B: dim 2048, 22 layers, 32 heads, 4 KV heads, ffn 5632,
vocab 32000) for benchmarks. Not committed: written to the given output directory.

    python3 tools/make_random_hf.py OUT_DIR [--dtype f32|bf16] [--layers 22]
"""
import argparse
import json
import os

import numpy as np
from safetensors.numpy import save_file


def to_bf16_bits(a):
    u = a.astype(np.float32).view(np.uint32)
    u = u + 0x7FFF + ((u >> 16) & 1)  # round to nearest even
    return (u >> 16).astype(np.uint16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--layers", type=int, default=22)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--ffn", type=int, default=5632)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=32000)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(0)
    hd = a.dim // a.heads
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": a.dim,
        "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads, "intermediate_size": a.ffn, "vocab_size": a.vocab,
        "max_position_embeddings": 2048, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": "float32" if a.dtype == "f32" else "bfloat16",
    }
    json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=2)

    def mat(r, c):
        w = rng.standard_normal((r, c), dtype=np.float32) * 0.02
        return w if a.dtype == "f32" else to_bf16_bits(w)

    def vec(n):
        v = np.ones(n, dtype=np.float32)
        return v if a.dtype == "f32" else to_bf16_bits(v)

    t = {"model.embed_tokens.weight": mat(a.vocab, a.dim), "model.norm.weight": vec(a.dim),
         "lm_head.weight": mat(a.vocab, a.dim)}
    for l in range(a.layers):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = vec(a.dim)
        t[p + "post_attention_layernorm.weight"] = vec(a.dim)
        t[p + "self_attn.q_proj.weight"] = mat(a.heads * hd, a.dim)
        t[p + "self_attn.k_proj.weight"] = mat(a.kv_heads * hd, a.dim)
        t[p + "self_attn.v_proj.weight"] = mat(a.kv_heads * hd, a.dim)
        t[p + "self_attn.o_proj.weight"] = mat(a.dim, a.heads * hd)
        t[p + "mlp.gate_proj.weight"] = mat(a.ffn, a.dim)
        t[p + "mlp.up_proj.weight"] = mat(a.ffn, a.dim)
        t[p + "mlp.down_proj.weight"] = mat(a.dim, a.ffn)
    if a.dtype == "bf16":
        # safetensors.numpy has no bf16 dtype: write the header ourselves
        write_bf16(os.path.join(a.out, "model.safetensors"), t)
    else:
        save_file(t, os.path.join(a.out, "model.safetensors"))
    print("wrote", a.out)


def write_bf16(path, tensors):
    header, off = {}, 0
    for k, v in tensors.items():
        header[k] = {"dtype": "BF16", "shape": list(v.shape), "data_offsets": [off, off + v.nbytes]}
        off += v.nbytes
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for v in tensors.values():
            f.write(np.ascontiguousarray(v).tobytes())


if __name__ == "__main__":
    main()
