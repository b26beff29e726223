#!/usr/bin/env python3
"""tools/gguf_convert.py — convert between llama.cpp GGUF files and Hugging Face f32 directories.

    python3 tools/gguf_convert.py to-hf  MODEL.gguf OUT_DIR      # dequantize to f32 safetensors
    python3 tools/gguf_convert.py to-gguf HF_DIR OUT.gguf          # f32 GGUF, llama.cpp layout
    python3 tools/gguf_convert.py dequant MODEL.gguf OUT.gguf      # same GGUF, f32 tensors

to-hf: every tensor is dequantized to f32 with gguf.quants (the `gguf` package's numpy
reference), the Q/K rows of "llama" files are un-permuted back to the Hugging Face layout
(llama.cpp's converter permutes them for GGML's interleaved rope), and config.json is written.
The result is the "unquantized" base model of tools/kl_quant.py: e2h on it (HF layout,
rotate_half rope) must give the same logits as e2h on the GGUF (interleaved rope), up to f32
rounding — tests/py/test_gguf_hf_parity.py checks both directions on the HF fixtures.

to-gguf: the reverse, like llama.cpp's convert_hf_to_gguf.py for Llama/Mistral ("llama", with
the Q/K permutation) and Qwen2 ("qwen2", no permutation, Q/K/V biases). Weights are written as
f32; the tokenizer is copied from another GGUF with --tokenizer-from (llama.cpp needs one,
e2h's `logits` does not).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as QT
    from safetensors.numpy import load_file, save_file
except ImportError:  # pragma: no cover
    sys.exit("gguf_convert: needs the `gguf` and `safetensors` Python packages (tools/requirements.txt)")


# ---------------------------------------------------------------- the Q/K permutation

# Per-layer tensors: GGUF name (after "blk.N.") -> Hugging Face name (after "model.layers.N."),
# both directions of the conversion.
LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight", "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.bias": "self_attn.k_proj.bias", "attn_v.bias": "self_attn.v_proj.bias"}


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF rows -> llama.cpp rows (convert_hf_to_gguf.py LlamaModel.permute)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp rows -> HF rows (inverse of permute)."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# ---------------------------------------------------------------- GGUF -> HF

def _field(r: gguf.GGUFReader, key: str, default=None):
    f = r.fields.get(key)
    if f is None:
        return default
    v = f.contents()
    return v


def _dequant(t) -> np.ndarray:
    """(n_out, n_in) f32 for a 2-D tensor, (n,) for a vector."""
    a = gguf.quants.dequantize(t.data, t.tensor_type)
    n_in = int(t.shape[0])
    a = np.asarray(a, dtype=np.float32)
    return a.reshape(-1, n_in) if len(t.shape) > 1 else a.reshape(n_in)


def gguf_to_hf(path: str, out_dir: str) -> dict:
    r = gguf.GGUFReader(path)
    arch = _field(r, "general.architecture")
    if arch not in ("llama", "qwen2"):
        raise SystemExit(f"{path}: general.architecture '{arch}' not supported (llama, qwen2)")
    a = lambda k, d=None: _field(r, f"{arch}.{k}", d)  # noqa: E731
    dim, n_layers = int(a("embedding_length")), int(a("block_count"))
    n_head = int(a("attention.head_count"))
    n_kv = int(a("attention.head_count_kv", n_head))
    tensors = {t.name: t for t in r.tensors}
    vocab = int(tensors["token_embd.weight"].shape[1])
    tied = "output.weight" not in tensors
    if a("rope.scaling.type", "none") not in ("none", None) or "rope_freqs.weight" in tensors:
        raise SystemExit(f"{path}: rope scaling is not converted by this tool")
    cfg = {
        "architectures": ["LlamaForCausalLM" if arch == "llama" else "Qwen2ForCausalLM"],
        "model_type": arch,
        "hidden_size": dim,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "intermediate_size": int(a("feed_forward_length")),
        "vocab_size": vocab,
        "max_position_embeddings": int(a("context_length", 4096)),
        "rope_theta": float(a("rope.freq_base", 10000.0)),
        "rms_norm_eps": float(a("attention.layer_norm_rms_epsilon", 1e-5 if arch == "llama" else 1e-6)),
        "tie_word_embeddings": tied,
        "hidden_act": "silu",
        "torch_dtype": "float32",
        "bos_token_id": _field(r, "tokenizer.ggml.bos_token_id"),
        "eos_token_id": _field(r, "tokenizer.ggml.eos_token_id"),
    }
    if arch == "llama":
        cfg["attention_bias"] = False
    out = {"model.embed_tokens.weight": _dequant(tensors["token_embd.weight"]),
           "model.norm.weight": _dequant(tensors["output_norm.weight"])}
    if not tied:
        out["lm_head.weight"] = _dequant(tensors["output.weight"])
    for il in range(n_layers):
        for g, h in LAYER_NAMES.items():
            t = tensors.get(f"blk.{il}.{g}")
            if t is None:
                continue
            w = _dequant(t)
            if arch == "llama" and g.startswith("attn_q."):
                w = unpermute(w, n_head)
            elif arch == "llama" and g.startswith("attn_k."):
                w = unpermute(w, n_kv)
            out[f"model.layers.{il}.{h}"] = np.ascontiguousarray(w, dtype=np.float32)
    os.makedirs(out_dir, exist_ok=True)
    save_file(out, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return cfg


# ---------------------------------------------------------------- GGUF -> f32 GGUF

def _copy_field(gw, key, f) -> None:
    VT = gguf.GGUFValueType
    main = f.types[0]
    if main == VT.ARRAY:
        sub = f.types[-1]
        val = [bytes(f.parts[i]) if sub == VT.STRING else f.parts[i][0].item() for i in f.data]
        gw.add_key_value(key, val, VT.ARRAY, sub_type=sub)
    elif main == VT.STRING:
        gw.add_key_value(key, bytes(f.parts[f.data[0]]), VT.STRING)
    else:
        gw.add_key_value(key, f.parts[f.data[0]][0].item(), main)


def dequant_gguf(path: str, out_path: str) -> None:
    """The same GGUF with every tensor dequantized to f32 (same names, layout and metadata):
    what llama.cpp and e2h compute on it is the quantized model's math without the rounding of
    quantized activations."""
    r = gguf.GGUFReader(path)
    arch = _field(r, "general.architecture")
    gw = gguf.GGUFWriter(out_path, arch)
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type",
                                                "general.alignment", "general.quantization_version"):
            continue
        _copy_field(gw, key, f)
    gw.add_file_type(0)  # all f32
    for t in r.tensors:
        a = _dequant(t)
        gw.add_tensor(t.name, np.ascontiguousarray(a, dtype=np.float32))
    gw.write_header_to_file()
    gw.write_kv_data_to_file()
    gw.write_tensors_to_file()
    gw.close()


# ---------------------------------------------------------------- HF -> GGUF

def copy_tokenizer(gw: "gguf.GGUFWriter", src: str) -> None:
    """Copies every tokenizer.* key of the GGUF src, byte for byte (so llama.cpp accepts the file)."""
    for key, f in gguf.GGUFReader(src).fields.items():
        if key.startswith("tokenizer."):
            _copy_field(gw, key, f)


def add_hf_tensors(gw, w: dict, cfg: dict, permute_qk: bool) -> None:
    """Adds an HF model's tensors (dict name -> array) to a GGUFWriter under llama.cpp's names, as f32:
    embeddings, final norm, an untied lm_head, every layer's tensors that w has (biases are optional).
    permute_qk: q/k rows reordered for llama-arch files (not for qwen2, which keeps HF's order)."""
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_head)

    def f32(name):
        return np.ascontiguousarray(w[name].astype(np.float32))

    gw.add_tensor("token_embd.weight", f32("model.embed_tokens.weight"))
    gw.add_tensor("output_norm.weight", f32("model.norm.weight"))
    if "lm_head.weight" in w and not cfg.get("tie_word_embeddings", False):
        gw.add_tensor("output.weight", f32("lm_head.weight"))
    for il in range(cfg["num_hidden_layers"]):
        for g, h in LAYER_NAMES.items():
            name = f"model.layers.{il}.{h}"
            if name not in w:
                continue
            t = f32(name)
            if permute_qk and h.startswith("self_attn.q_proj"):
                t = permute(t, n_head)
            elif permute_qk and h.startswith("self_attn.k_proj"):
                t = permute(t, n_kv)
            gw.add_tensor(f"blk.{il}.{g}", np.ascontiguousarray(t))


def hf_to_gguf(hf_dir: str, out_path: str, tokenizer_from: str | None = None) -> None:
    with open(os.path.join(hf_dir, "config.json")) as f:
        cfg = json.load(f)
    archs = cfg.get("architectures", ["LlamaForCausalLM"])
    qwen = archs[0].startswith("Qwen2")
    arch = "qwen2" if qwen else "llama"
    w = {}
    for fn in sorted(os.listdir(hf_dir)):
        if fn.endswith(".safetensors"):
            w.update(load_file(os.path.join(hf_dir, fn)))
    n_head, dim = cfg["num_attention_heads"], cfg["hidden_size"]
    n_kv = cfg.get("num_key_value_heads", n_head)
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) not in (None, "default"):
        raise SystemExit(f"{hf_dir}: rope_scaling {rs} not converted by this tool")
    gw = gguf.GGUFWriter(out_path, arch)
    gw.add_block_count(cfg["num_hidden_layers"])
    gw.add_context_length(cfg.get("max_position_embeddings", 4096))
    gw.add_embedding_length(dim)
    gw.add_feed_forward_length(cfg["intermediate_size"])
    gw.add_head_count(n_head)
    gw.add_head_count_kv(n_kv)
    gw.add_rope_freq_base(float(cfg.get("rope_theta", 10000.0)))
    gw.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    gw.add_rope_dimension_count(cfg.get("head_dim", dim // n_head))
    if tokenizer_from:
        copy_tokenizer(gw, tokenizer_from)
    if cfg.get("head_dim", dim // n_head) != dim // n_head:
        gw.add_key_length(cfg["head_dim"])
        gw.add_value_length(cfg["head_dim"])

    add_hf_tensors(gw, w, cfg, permute_qk=not qwen)
    gw.write_header_to_file()
    gw.write_kv_data_to_file()
    gw.write_tensors_to_file()
    gw.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("to-hf", help="GGUF -> HF f32 directory")
    p.add_argument("gguf")
    p.add_argument("out_dir")
    p = sub.add_parser("to-gguf", help="HF directory -> f32 GGUF")
    p.add_argument("hf_dir")
    p.add_argument("out")
    p.add_argument("--tokenizer-from", metavar="GGUF", help="copy tokenizer.* keys from this GGUF")
    p = sub.add_parser("dequant", help="GGUF -> the same GGUF with f32 tensors")
    p.add_argument("gguf")
    p.add_argument("out")
    a = ap.parse_args(argv)
    if a.cmd == "dequant":
        dequant_gguf(a.gguf, a.out)
        print(f"wrote {a.out}")
    elif a.cmd == "to-hf":
        cfg = gguf_to_hf(a.gguf, a.out_dir)
        print(f"wrote {a.out_dir} ({cfg['architectures'][0]}, {cfg['num_hidden_layers']} layers)")
    else:
        hf_to_gguf(a.hf_dir, a.out, a.tokenizer_from)
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
