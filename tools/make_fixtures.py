#!/usr/bin/env python3
"""Build tiny random-weight reference models with Hugging Face transformers.

Each fixture lands in tests/fixtures/models/<name>/ with:
  config.json, generation_config.json   as written by save_pretrained
  model.safetensors                     (or model-0000k-of-0000n.safetensors + model.safetensors.index.json)
  tokens.json    {"ids": [...]}         >= 64 ids, fixed seed, contains 0 and vocab-1
  logits.npy     '<f4' C-order npy v1.0, (n_tokens, vocab), one forward pass of model(ids), no BOS added
  greedy.json    {"prompt": ids[:8], "continuation": 32 greedy ids, "eos_token_id": null, "margins": [...]}
  (margins = top1 - top2 logit gap at each greedy step, f32 math, so a consumer can judge tie risk)

Reference math is always float32 with attn_implementation="eager". For bf16 fixtures the weights are
rounded to bf16 (or f16), saved, re-loaded and upcast to f32 before the forward pass.
bf16 fixtures also get
  logits_bf16act.npy  as logits.npy, with the input of every nn.Linear rounded to bf16 (round to
                      nearest even, torch's .to(bfloat16)) first: the arithmetic of e2h's avx512bf16
                      kernels (vdpbf16ps: bf16 x bf16 products, f32 sums), which torch also uses for
                      bf16 matmuls on CPUs with AVX512_BF16. `--bf16act-only` adds just this file to
                      existing fixtures (the rest unchanged).

Usage: python3 tools/make_fixtures.py [--out tests/fixtures/models] [--only name,name]
Versions used: see tools/requirements.txt (torch 2.6.0, transformers 4.51.3).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
import transformers
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

# Awkward shared sizes: nothing is a multiple of 16/32 except by accident.
HIDDEN = 72
N_HEADS = 6
N_KV_HEADS = 2           # GQA group of 3
HEAD_DIM = HIDDEN // N_HEADS  # 12 -> 6 rotary frequencies
INTERMEDIATE = 200
N_PROMPT = 8
N_NEW = 32
MIN_MARGIN = 0.02        # reject seeds whose greedy run has a near-tie (engine rounding could flip it)

ARCH = {
    "llama": (LlamaConfig, LlamaForCausalLM),
    "mistral": (MistralConfig, MistralForCausalLM),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM),
}

# name -> spec. n_tokens: length of tokens.json; shards: force that many safetensors shards.
FIXTURES = {
    "llama2_f32": dict(arch="llama", vocab=310, layers=2, n_tokens=67, dtype="float32",
                       cfg=dict(rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False)),
    "llama2_bf16": dict(arch="llama", vocab=310, layers=2, n_tokens=67, dtype="bfloat16",
                        cfg=dict(rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False)),
    # head_dim 12, theta 5e5: wavelengths ~6.3 (kept), ~56 (smoothed band, between 16 and 64),
    # ~500+ (divided by factor 8) -> all three llama3 bands are exercised.
    "llama3_f32": dict(arch="llama", vocab=300, layers=2, n_tokens=104, dtype="float32",
                       cfg=dict(rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                                rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                              "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                              "original_max_position_embeddings": 64})),
    "mistral_f32": dict(arch="mistral", vocab=305, layers=2, n_tokens=70, dtype="float32",
                        cfg=dict(rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                                 sliding_window=None)),
    "qwen2_f32": dict(arch="qwen2", vocab=323, layers=2, n_tokens=73, dtype="float32",
                      cfg=dict(rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                               use_sliding_window=False)),
    "qwen2_bf16": dict(arch="qwen2", vocab=323, layers=2, n_tokens=73, dtype="bfloat16",
                       cfg=dict(rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                                use_sliding_window=False)),
    "llama_sharded_f32": dict(arch="llama", vocab=300, layers=2, n_tokens=64, dtype="float32", shards=2,
                              cfg=dict(rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False)),
    # Llemma is plain Llama-2 with vocab 32016; we keep the odd-vocab trait at a fixture-friendly size.
    "llemma_like_f32": dict(arch="llama", vocab=1001, layers=2, n_tokens=64, dtype="float32",
                            cfg=dict(rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False)),
    # f16 weights (appended last so the other fixtures keep their seeds)
    "mistral_f16": dict(arch="mistral", vocab=305, layers=2, n_tokens=70, dtype="float16",
                        cfg=dict(rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                                 sliding_window=None)),
}


def fixture_config(spec):
    """Config object for one fixture; EOS disabled so greedy never stops early."""
    cfg_cls, _ = ARCH[spec["arch"]]
    kw = dict(vocab_size=spec["vocab"], hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
              num_hidden_layers=spec["layers"], num_attention_heads=N_HEADS,
              num_key_value_heads=N_KV_HEADS, max_position_embeddings=256, hidden_act="silu",
              bos_token_id=1, eos_token_id=None, pad_token_id=None, torch_dtype=spec["dtype"])
    if spec["arch"] == "llama":
        kw.update(head_dim=HEAD_DIM, attention_bias=False, mlp_bias=False)
    elif spec["arch"] == "mistral":
        kw.update(head_dim=HEAD_DIM)
    kw.update(spec["cfg"])
    cfg = cfg_cls(**kw)
    cfg._attn_implementation = "eager"
    return cfg


def init_weights(model, gen):
    """Larger-than-default init so logits are spread and greedy tokens vary.

    matrices ~ N(0, 0.15); norm weights ~ 1 + N(0, 0.1); biases (Qwen2 q/k/v) ~ N(0, 0.3).
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))


def make_tokens(vocab, n, seed):
    """n ids in [0, vocab), with 0 and vocab-1 placed inside the prompt and later on."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, size=n).tolist()
    ids[3] = 0
    ids[n // 2] = vocab - 1
    return [int(i) for i in ids]


def greedy_run(model, prompt):
    """HF generate (KV cache) greedy; returns continuation and per-step top1-top2 margins.

    Also re-derives each token from a cache-free full forward so we never ship a fixture where
    the cached and uncached paths disagree.
    """
    ids = torch.tensor([prompt])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                         max_new_tokens=N_NEW, min_new_tokens=N_NEW, eos_token_id=None,
                         pad_token_id=0, output_scores=True, return_dict_in_generate=True)
    cont = out.sequences[0, len(prompt):].tolist()
    assert len(cont) == N_NEW, len(cont)
    full = torch.tensor([prompt + cont])
    with torch.no_grad():
        logits = model(full).logits[0].float()  # (n_prompt + n_new, vocab)
    margins = []
    for step in range(N_NEW):
        row = logits[len(prompt) - 1 + step]
        top2 = torch.topk(row, 2).values
        margins.append(float(top2[0] - top2[1]))
        if int(row.argmax()) != cont[step]:
            return cont, margins, False
    return cont, margins, True


def save_npy_f32(path, arr):
    """'<f4' C-order .npy version 1.0 (the C test parses exactly this)."""
    arr = np.ascontiguousarray(arr, dtype="<f4")
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=(1, 0), allow_pickle=False)


def build_one(name, spec, out_root, seed):
    _, model_cls = ARCH[spec["arch"]]
    out = os.path.join(out_root, name)
    for attempt in range(50):
        s = seed * 1000 + attempt
        torch.manual_seed(s)
        cfg = fixture_config(spec)
        model = model_cls(cfg).float().eval()
        init_weights(model, torch.Generator().manual_seed(s))
        if cfg.tie_word_embeddings:
            model.tie_weights()
        tmp = tempfile.mkdtemp(prefix=f"fx_{name}_")
        try:
            save_model(model, spec, tmp)
            # Reload what was written so the reference is computed from exactly the stored weights
            # (bf16-rounded for bf16 fixtures), upcast to f32.
            ref = model_cls.from_pretrained(tmp, torch_dtype=torch.float32,
                                            attn_implementation="eager").eval()
            tokens = make_tokens(spec["vocab"], spec["n_tokens"], s)
            with torch.no_grad():
                logits = ref(torch.tensor([tokens])).logits[0].float().numpy()
            cont, margins, consistent = greedy_run(ref, tokens[:N_PROMPT])
            if not consistent or min(margins) < MIN_MARGIN or not np.isfinite(logits).all():
                print(f"  {name}: seed {s} rejected (min margin {min(margins):.4f}, "
                      f"consistent={consistent})")
                continue
            if len(set(cont)) < 4:
                print(f"  {name}: seed {s} rejected (degenerate continuation {cont})")
                continue
            if os.path.exists(out):
                shutil.rmtree(out)
            shutil.copytree(tmp, out)
            os.chmod(out, 0o755)  # mkdtemp made it 0700
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        with open(os.path.join(out, "tokens.json"), "w") as f:
            json.dump({"ids": tokens, "seed": s}, f)
            f.write("\n")
        save_npy_f32(os.path.join(out, "logits.npy"), logits)
        with open(os.path.join(out, "greedy.json"), "w") as f:
            json.dump({"prompt": tokens[:N_PROMPT], "continuation": cont,
                       "eos_token_id": None,
                       "eos_note": "EOS stopping disabled: eos_token_id=None in config and generate()",
                       "margins": [round(m, 5) for m in margins]}, f)
            f.write("\n")
        size = sum(os.path.getsize(os.path.join(out, x)) for x in os.listdir(out))
        print(f"{name}: seed {s}, {spec['n_tokens']} tokens, vocab {spec['vocab']}, "
              f"min greedy margin {min(margins):.3f}, logit std {logits.std():.2f}, {size/1024:.0f} KiB")
        return
    raise RuntimeError(f"{name}: no acceptable seed in 50 attempts")


def bf16act_logits(model_cls, fixture_dir):
    """logits of tokens.json with every Linear's input rounded to bf16 (f32 math otherwise)."""
    ref = model_cls.from_pretrained(fixture_dir, torch_dtype=torch.float32,
                                    attn_implementation="eager").eval()
    for mod in ref.modules():
        if isinstance(mod, torch.nn.Linear):
            mod.register_forward_pre_hook(lambda _m, args: (args[0].to(torch.bfloat16).float(),))
    with open(os.path.join(fixture_dir, "tokens.json")) as f:
        tokens = json.load(f)["ids"]
    with torch.no_grad():
        return ref(torch.tensor([tokens])).logits[0].float().numpy()


def add_bf16act(name, spec, out_root):
    out = os.path.join(out_root, name)
    logits = bf16act_logits(ARCH[spec["arch"]][1], out)
    save_npy_f32(os.path.join(out, "logits_bf16act.npy"), logits)
    base = np.load(os.path.join(out, "logits.npy"))
    print(f"{name}: logits_bf16act.npy, max |diff| vs logits.npy {np.abs(logits - base).max():.3g}")


def save_model(model, spec, path):
    """save_pretrained in the fixture dtype; sharded fixtures get a max_shard_size that splits them."""
    if spec["dtype"] in ("bfloat16", "float16"):
        model = model.to(getattr(torch, spec["dtype"]))
    kw = {"safe_serialization": True}
    shards = spec.get("shards", 1)
    if shards > 1:
        n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        # HF packs whole tensors greedily, so total/shards would spill into an extra shard; 1.2x
        # headroom gives exactly `shards` files for these layouts (checked below).
        kw["max_shard_size"] = int(n_bytes * 1.2) // shards
    model.save_pretrained(path, **kw)
    if shards > 1:
        files = [f for f in os.listdir(path) if f.endswith(".safetensors")]
        assert len(files) == shards and os.path.exists(os.path.join(path, "model.safetensors.index.json")), files


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "models"))
    ap.add_argument("--only", default="", help="comma-separated fixture names")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bf16act-only", action="store_true",
                    help="only (re)write logits_bf16act.npy of existing bf16 fixtures")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = [n for n in args.only.split(",") if n] or list(FIXTURES)
    for n in names:
        if n not in FIXTURES:
            sys.exit(f"unknown fixture {n}; known: {', '.join(FIXTURES)}")
    os.makedirs(args.out, exist_ok=True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__}")
    for i, n in enumerate(FIXTURES):
        if n in names:
            if not args.bf16act_only:
                build_one(n, FIXTURES[n], args.out, seed=i + 1)
            if FIXTURES[n]["dtype"] == "bfloat16":
                add_bf16act(n, FIXTURES[n], args.out)


if __name__ == "__main__":
    main()
