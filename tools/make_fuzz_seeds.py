#!/usr/bin/env python3
"""tools/make_fuzz_seeds.py — writes the small seed corpora of the libFuzzer targets
(tests/fuzz/corpus/<target>/). Seeds are tiny valid inputs of each format, so the fuzzer starts
inside the parsers instead of at their first check. Deterministic; committed.

    python3 tools/make_fuzz_seeds.py
"""
import json
import struct
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "fuzz" / "corpus"
rng = np.random.default_rng(0)

VOCAB = ["<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc", "abc", " ", "\u0120a", "1", "2", "+", "=", "."]
MERGES = ["a b", "b c", "ab c"]


def tiny_gguf(path, arch="llama", dim=8, layers=1, heads=2, kv_heads=1, hidden=16, with_tok=True):
    import gguf
    w = gguf.GGUFWriter(str(path), arch)
    w.add_context_length(64)
    w.add_embedding_length(dim)
    w.add_block_count(layers)
    w.add_feed_forward_length(hidden)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    if with_tok:
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("default")
        w.add_token_list(VOCAB)
        w.add_token_types([3, 3, 3] + [1] * (len(VOCAB) - 3))
        w.add_token_merges(MERGES)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
    nv, hd = len(VOCAB), dim // heads
    f = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.1
    w.add_tensor("token_embd.weight", f(nv, dim))
    w.add_tensor("output_norm.weight", np.ones(dim, np.float32))
    w.add_tensor("output.weight", f(nv, dim))
    for i in range(layers):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(dim, np.float32))
        w.add_tensor(p + "ffn_norm.weight", np.ones(dim, np.float32))
        w.add_tensor(p + "attn_q.weight", f(heads * hd, dim))
        w.add_tensor(p + "attn_k.weight", f(kv_heads * hd, dim))
        w.add_tensor(p + "attn_v.weight", f(kv_heads * hd, dim))
        w.add_tensor(p + "attn_output.weight", f(dim, heads * hd))
        w.add_tensor(p + "ffn_gate.weight", f(hidden, dim))
        w.add_tensor(p + "ffn_up.weight", f(hidden, dim))
        w.add_tensor(p + "ffn_down.weight", f(dim, hidden))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def safetensors_bytes(tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        b = a.astype(np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def tiny_hf(arch="LlamaForCausalLM", dim=8, hidden=16, nv=16):
    cfg = {"architectures": [arch], "hidden_size": dim, "intermediate_size": hidden,
           "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
           "vocab_size": nv, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "tie_word_embeddings": False, "eos_token_id": 2, "bos_token_id": 1}
    f = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.1
    t = {"model.embed_tokens.weight": f(nv, dim), "model.norm.weight": np.ones(dim), "lm_head.weight": f(nv, dim)}
    p = "model.layers.0."
    t.update({p + "input_layernorm.weight": np.ones(dim), p + "post_attention_layernorm.weight": np.ones(dim),
              p + "self_attn.q_proj.weight": f(dim, dim), p + "self_attn.k_proj.weight": f(dim // 2, dim),
              p + "self_attn.v_proj.weight": f(dim // 2, dim), p + "self_attn.o_proj.weight": f(dim, dim),
              p + "mlp.gate_proj.weight": f(hidden, dim), p + "mlp.up_proj.weight": f(hidden, dim),
              p + "mlp.down_proj.weight": f(dim, hidden)})
    if arch == "Qwen2ForCausalLM":
        t.update({p + "self_attn.q_proj.bias": f(dim), p + "self_attn.k_proj.bias": f(dim // 2),
                  p + "self_attn.v_proj.bias": f(dim // 2)})
    return json.dumps(cfg, indent=1).encode() + b"\n--\n" + safetensors_bytes(t)


def tokenizer_json(byte_level=True, split=None):
    tj = {"version": "1.0", "added_tokens": [{"id": 1, "content": "<s>", "special": True, "lstrip": False, "rstrip": False},
                                             {"id": 2, "content": "</s>", "special": True, "rstrip": True}],
          "normalizer": None,
          "model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(VOCAB)}, "merges": MERGES,
                    "byte_fallback": not byte_level}}
    if byte_level:
        pre = [{"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}]
        if split:
            pre.insert(0, {"type": "Split", "pattern": {"Regex": split}, "behavior": "Isolated"})
        tj["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": pre}
        tj["decoder"] = {"type": "ByteLevel"}
    else:
        tj["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581"}
        tj["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFC"}]}
    return json.dumps(tj, ensure_ascii=False).encode()


def jsonl_seeds():
    """fuzz_jsonl: first byte (mod 4) picks the reader: 0 score -i, 1 search --problems,
    2 report, 3 generate -i; then one JSONL line of that schema."""
    d = OUT / "jsonl"
    d.mkdir(parents=True, exist_ok=True)
    dump = lambda o: json.dumps(o, ensure_ascii=False)
    rows = [
        (0, {"problem": "1+1?", "steps": ["1+1=2.", "# Answer\n\n2"], "id": 3}),
        (0, {"problem": "x?", "solution": "Step one.\n\nStep two.\n\n# Answer\n\n\\frac{1}{2}"}),
        (0, {"problem": "p", "steps": []}),
        (1, {"problem": "What is $2+2$?", "answer": "4", "level": 3, "unique_id": "test/x/1.json",
             "subject": "Algebra"}),
        (1, {"question": "Tom has 3 apples...", "answer": "He has 3+2=5\n#### 5"}),
        (1, {"problem": "p", "answer": 12.5, "level": "Level 5", "unique_id": None}),
        (2, {"config": {"method": "bon", "n": 16, "m": 0, "seed": 1, "policy": "p", "prm": "h"}}),
        (2, {"unique_id": "u1", "level": "Level 4", "answer": "\\frac{1}{2}",
             "samples": [{"answer": "0.5", "key": "1/2", "correct": True,
                          "agg": {"min": 0.5, "prod": 0.25, "mean": 0.6, "last": 0.7}},
                         {"answer": "3", "agg": {"min": None}}],
             "selected": {"answer": "0.5"}}),
        (3, {"prompt": "Hello", "seed": 5}),
        (3, {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}),
        (3, {"ids": [1, 2, 3], "id": "x"}),
        (3, {"problem": "2+2?", "question": "dup"}),
    ]
    for i, (kind, row) in enumerate(rows):
        (d / f"j{i}").write_bytes(bytes([kind]) + dump(row).encode() + b"\n")
    (d / "malformed").write_bytes(b"\x01{\"problem\": \"unterminated")


def serve_api_seeds():
    """fuzz_serve_api: byte 0 picks the endpoint (mod 5: 0 completions, 1 chat, 2 prm/score,
    3 search, 4 reward) and, with (byte 0 // 5) % 2, whether a PRM is loaded; then the body."""
    d = OUT / "serve_api"
    d.mkdir(parents=True, exist_ok=True)
    dump = lambda o: json.dumps(o, ensure_ascii=False)
    bodies = [
        (0, {"model": "m", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0.7,
             "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": 3, "n": 2, "best_of": 2,
             "stop": ["\n\n", "END"], "logprobs": 2, "stream": True,
             "stream_options": {"include_usage": True}}),
        (0, {"prompt": ["one string"], "max_tokens": 1, "stop": "x", "presence_penalty": 0,
             "logit_bias": {}, "echo": False, "suffix": None}),
        (1, {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "Hi \u00e9\U0001f600"},
                                        {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
                                        {"role": "user", "content": "2+2?"}],
             "max_completion_tokens": 16, "logprobs": True, "top_logprobs": 3, "temperature": 0,
             "response_format": {"type": "text"}, "tools": []}),
        (1, {"messages": [{"role": "user", "content": "x"}], "n": 64, "max_tokens": 1024}),
        (2, {"problem": "1+1?", "steps": ["1+1=2.", "# Answer\n\n2"]}),
        (7, {"problem": "1+1?", "steps": ["1+1=2.", "# Answer\n\n2"]}),
        (7, {"problem": "x?", "solution": "Step one.\n\nStep two."}),
        (7, {"items": [{"problem": "a", "steps": ["b"]}, {"problem": "c", "solution": "d\n\ne"}]}),
        (3, {"problem": "What is $2+2$?", "method": "maj", "n": 4, "max_tokens": 64, "seed": 1,
             "temperature": 0.8, "top_p": 1.0, "max_rounds": 5}),
        (8, {"problem": "What is $2+2$?", "method": "beam", "n": 8, "m": 4}),
        (9, {"query": ["prompt and response", "another"], "prompts": ["prompt", "an"], "labels": [1, 0]}),
        (4, {"query": ["q"]}),
        # more tokens than bytes + 8 with the fuzz target's stand-in tokenizer (a fixed bug)
        (3, {"problem": "\U0001f600" * 30, "method": "greedy"}),
    ]
    for i, (b0, body) in enumerate(bodies):
        (d / f"s{i}").write_bytes(bytes([b0]) + dump(body).encode())
    (d / "malformed").write_bytes(b"\x00{\"prompt\": \"unterminated")
    (d / "not_object").write_bytes(b"\x01[1, 2, 3]")
    (d / "big_numbers").write_bytes(b'\x00{"prompt": "p", "max_tokens": 1e300, "n": -0.0, "seed": 9007199254740993}')


def main():
    jsonl_seeds()
    serve_api_seeds()
    for d in ["gguf", "safetensors", "tokenizer_json", "encode", "answer"]:
        (OUT / d).mkdir(parents=True, exist_ok=True)
    tiny_gguf(OUT / "gguf" / "llama.gguf")
    tiny_gguf(OUT / "gguf" / "qwen2.gguf", arch="qwen2", with_tok=False)
    tiny_gguf(OUT / "gguf" / "two_layers.gguf", layers=2)
    (OUT / "safetensors" / "llama").write_bytes(tiny_hf())
    (OUT / "safetensors" / "qwen2").write_bytes(tiny_hf("Qwen2ForCausalLM"))
    (OUT / "tokenizer_json" / "bpe.json").write_bytes(tokenizer_json())
    (OUT / "tokenizer_json" / "bpe_split.json").write_bytes(tokenizer_json(split="\\s+|\\d"))
    (OUT / "tokenizer_json" / "spm.json").write_bytes(tokenizer_json(byte_level=False))
    texts = ["Hello world", "  leading spaces and\ttabs\n\nnew paragraph", "caf\u00e9 \u4e2d\u6587 \U0001f600",
             "x = 3.14159; y = -2e10", "<s>special</s> tokens <|im_start|>", "\u0301\u0316 combining",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]
    for i, t in enumerate(texts):
        (OUT / "encode" / f"t{i}").write_bytes(bytes([i]) + t.encode())
    (OUT / "encode" / "invalid_utf8").write_bytes(b"\x01\xff\xfe\xc3(\xe2\x82 ok")
    answers = ["The answer is \\boxed{\\frac{1}{2}}\n--\n0.5", "# Answer\n\n3\\sqrt{2}\n--\n\\sqrt{18}",
               "\\boxed{(1, 2]}\n--\n(1,2]", "#### 1,234\n--\n1234", "\\boxed{x = 10^\\circ}\n--\n10",
               "\\fbox{\\dfrac{3}{4}}\n--\n\\tfrac34", "\\boxed{\\{1, 2, 3\\}}\n--\n3, 2, 1",
               "\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}\n--\n(3,\\pi/2)", "\\boxed{", "\\boxed 7"]
    for i, a in enumerate(answers):
        (OUT / "answer" / f"a{i}").write_bytes(a.encode())
    print("seeds written under", OUT)


if __name__ == "__main__":
    main()
