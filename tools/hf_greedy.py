#!/usr/bin/env python3
"""Ad-hoc oracle: transformers' greedy continuation and per-position top-k for a model and prompt ids.

Examples
  python3 tools/hf_greedy.py tests/fixtures/models/llama2_f32 --ids 5,17,0,3 -n 16
  python3 tools/hf_greedy.py tests/fixtures/models/qwen2_f32 --ids-file tests/fixtures/models/qwen2_f32/tokens.json
  python3 tools/hf_greedy.py some_hf_dir --text "Hello" --topk 3 --json
  python3 tools/hf_greedy.py weights/ --gguf model.gguf --ids 1,2,3     # transformers' GGUF loader (dequantizes)

Prints, for every prompt position, the top-k next-token ids and logits from one forward pass of the whole
prompt (what an engine's prefill logits should show), then the greedy continuation from
model.generate(do_sample=False) with EOS stopping disabled unless --eos is given, with the top1-top2 margin
of each generated step (a small margin means a rounding difference may legitimately flip that token).
Math is float32 with eager attention unless --dtype says otherwise.
"""
import argparse
import json
import sys

import torch
from transformers import AutoModelForCausalLM


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", help="directory with config.json + safetensors (or the GGUF's directory)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--ids", help="comma-separated prompt token ids")
    src.add_argument("--ids-file", help='JSON file with {"ids": [...]} or {"prompt": [...]}, or a JSON list')
    src.add_argument("--text", help="prompt text, tokenized with the directory's tokenizer (no special tokens)")
    ap.add_argument("--prompt-len", type=int, default=0, help="use only the first N ids (0 = all)")
    ap.add_argument("-n", "--new", type=int, default=32, help="tokens to generate (default 32)")
    ap.add_argument("--topk", type=int, default=5, help="top-k shown per prompt position (default 5)")
    ap.add_argument("--eos", action="store_true", help="let generation stop at the config's EOS")
    ap.add_argument("--gguf", help="GGUF file name inside model_dir (transformers' GGUF loader)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return ap.parse_args()


def load_prompt(args):
    if args.ids is not None:
        ids = [int(x) for x in args.ids.replace(" ", "").split(",") if x]
    elif args.ids_file is not None:
        with open(args.ids_file) as f:
            obj = json.load(f)
        ids = obj if isinstance(obj, list) else obj.get("ids", obj.get("prompt"))
        if ids is None:
            sys.exit(f"{args.ids_file}: expected a list or an object with 'ids' or 'prompt'")
    else:
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(args.model_dir, gguf_file=args.gguf)
        ids = tok(args.text, add_special_tokens=False)["input_ids"]
    if args.prompt_len > 0:
        ids = ids[: args.prompt_len]
    if not ids:
        sys.exit("empty prompt")
    return [int(i) for i in ids]


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, gguf_file=args.gguf, torch_dtype=dtype,
                                                 attn_implementation="eager").eval()
    vocab = model.config.vocab_size
    ids = load_prompt(args)
    bad = [i for i in ids if not 0 <= i < vocab]
    if bad:
        sys.exit(f"prompt ids out of range [0, {vocab}): {bad[:10]}")

    x = torch.tensor([ids])
    with torch.no_grad():
        logits = model(x).logits[0].float()  # (n_prompt, vocab)
    k = min(args.topk, vocab)
    top = torch.topk(logits, k, dim=-1)
    prefill = [{"pos": p, "token": ids[p], "top_ids": top.indices[p].tolist(),
                "top_logits": [round(v, 5) for v in top.values[p].tolist()]} for p in range(len(ids))]

    eos = model.generation_config.eos_token_id if args.eos else None
    gen = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=args.new,
                         min_new_tokens=0 if args.eos else args.new, eos_token_id=eos,
                         pad_token_id=eos if eos is not None else 0,
                         output_scores=True, return_dict_in_generate=True)
    cont = gen.sequences[0, len(ids):].tolist()
    margins = []
    for s in gen.scores:  # processed scores; with greedy and no processors these are the logits
        t2 = torch.topk(s[0].float(), 2).values
        margins.append(round(float(t2[0] - t2[1]), 5))

    if args.json:
        print(json.dumps({"model_dir": args.model_dir, "prompt": ids, "continuation": cont,
                          "margins": margins, "eos_token_id": eos, "prefill_topk": prefill}))
        return
    print(f"model {args.model_dir} ({model.config.model_type}, vocab {vocab}, {args.dtype})")
    print(f"prompt ({len(ids)}): {ids}")
    print(f"prefill top-{k} next-token predictions:")
    for r in prefill:
        pairs = " ".join(f"{i}:{v:.3f}" for i, v in zip(r["top_ids"], r["top_logits"]))
        print(f"  pos {r['pos']:4d} tok {r['token']:6d} -> {pairs}")
    print(f"greedy continuation ({len(cont)}, eos {'on: ' + str(eos) if args.eos else 'disabled'}): {cont}")
    print(f"step margins (top1-top2): {margins}")
    if margins and min(margins) < 1e-3:
        print(f"warning: near-tie at step {margins.index(min(margins))} (margin {min(margins)})")


if __name__ == "__main__":
    main()
