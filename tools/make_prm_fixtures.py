#!/usr/bin/env python3
"""Tiny random-weight process reward models (PRMs) with reference step scores from torch/transformers.

One directory per PRM family under tests/fixtures/prm/ (layout, tensor names, JSON format and the
exact text each protocol feeds its model: /work/coord/prm_fixtures.md and tests/fixtures/prm/README.md):

  e2h_paper/        LlamaForCausalLM, SentencePiece tokenizer. Easy-to-hard reward model: the reward is
                    the mean over the vocabulary of the logits (its reward head is tiled over the output
                    rows), read at the first "\\n" of the "\\n\\n" after each step; score = sigmoid.
  math_shepherd/    MistralForCausalLM, SentencePiece. Steps end in " ки"; P(+) = softmax over the
                    logits of the "+"/"-" candidate tokens at each tag position.
  qwen_prm/         Qwen2ForProcessRewardModel: Qwen2Model + score = Linear(H,H), ReLU, Linear(H,2) at each
                    <extra_0>; P(class 1). ChatML template with system prompt. No lm_head.
  rlhflow/          LlamaForCausalLM (llama3 RoPE), byte-level tokenizer with Llama-3 specials and the
                    Llama-3.1 chat template: every step a user turn answered by assistant "+"; P(+) over
                    "+"/"-" at the position that predicts each assistant "+".
  value_head/       Qwen2ForCausalLM + v_head.summary (Linear(H,1)) on the final-normed hidden state at each
                    step's "\\n" token (Skywork-o1-Open-PRM), sigmoid.
  implicit/ + implicit_ref/   two Qwen2ForCausalLM: step reward = beta * sum over the step's tokens of
                    (log pi - log pi_ref) (PRIME / EurusPRM); JSON has the raw sums, beta is separate.
  policy/           a tiny Qwen2ForCausalLM policy (ChatML) + e2h head files (PLAN.md section 4):
                    head_linear.safetensors (features "hidden") and head_mlp.safetensors
                    (features "hidden+mean_logprob").

Each directory holds config.json, model.safetensors, tokenizer.json, tokenizer_config.json and
expected.json. Reference math: float32, attn_implementation="eager".

Tokenizers are real tokenizers cut down to a few hundred pieces: the first merges of Llama-2's
SentencePiece BPE (tests/fixtures/tokenizer/llama-spm) or of SmolLM's byte-level BPE
(tests/fixtures/tokenizer/smollm) with the Qwen2 / Llama-3 pre-tokenizer regex and special tokens.
Every piece that a kept merge produces is kept with its parts, so the result is a valid BPE.

Sources checked for each protocol (read, not copied):
  e2h-paper     github.com/Edward-Sun/easy-to-hard models/reward_model.py (rewards = logits.mean(-1)),
                inference_reward.py (post_process_newline_scores: score at the first 13 of "13, 13";
                OPRM: at the token before EOS; text encoded with bos=True, eos=True)
  math-shepherd huggingface.co/peiyi9979/math-shepherd-mistral-7b-prm model card (candidate_tokens =
                encode("+ -")[1:], step_tag_id = encode("ки")[-1], input f"{question} {output}")
  qwen-prm      huggingface.co/Qwen/Qwen2.5-Math-PRM-7B model card + modeling_qwen2_rm.py as mirrored
                in vLLM/sglang (score = Sequential(Linear(H,H), ReLU, Linear(H,2)); tensors score.0/score.2)
  rlhflow       github.com/RLHFlow/RLHF-Reward-Modeling math-rm/prm_evaluate.py via
                huggingface/search-and-learn src/sal/models/reward_models.py (RLHFFlow: question + " " +
                step 0 as first user turn, assistant "+", read the logits at position -3)
  value-head    SkyworkAI/skywork-o1-prm-inference via search-and-learn src/sal/models/skywork_o1_prm/
                (prm_model.py ValueHead: v_head.summary Linear(H,1) on hidden_states[-1];
                io_utils.py prepare_input: encode(bos + problem + "\\n") + per step encode(step) + [id("\\n")])
  implicit      PRIME-RL/EurusPRM model card (implicit reward beta * (log pi - log pi_ref) summed per step)

qwen_prm/ and value_head/ also hold model.gguf: the same weights and tokenizer as a GGUF with the head under
e2h's GGUF names (write_prm_gguf; `--gguf-only` rewrites just these from the committed files, without torch).

Usage: python3 tools/make_prm_fixtures.py [--out tests/fixtures/prm] [--only name,...] [--gguf-only]
Needs torch 2.6.0 + transformers 4.51.3 (tools/requirements.txt); CI never runs it.
"""
import argparse
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import transformers
from safetensors.torch import save_file
from torch import nn
from transformers import (AutoTokenizer, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM, Qwen2Model)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOK_SRC = os.path.join(ROOT, "tests", "fixtures", "tokenizer")

# Shared small shape: GQA group 2, head_dim 12 (6 rotary frequencies).
HIDDEN, N_HEADS, N_KV, HEAD_DIM, INTER, LAYERS = 48, 4, 2, 12, 96, 2

QWEN_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
              r"\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")

QWEN_MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
# ChatML as in Qwen2.5's template for plain messages (no tools): default system turn when the
# conversation has none.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if loop.first and message['role'] != 'system' %}"
    "{{- '<|im_start|>system\\n" + QWEN_MATH_SYSTEM.replace("\\", "\\\\") + "<|im_end|>\\n' }}"
    "{%- endif %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")
# Llama-3.1-Instruct's template for plain messages (no tools): a system header with the knowledge
# cut-off and the default date is always emitted; every content is trimmed.
LLAMA31_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}{{- 'Today Date: 26 Jul 2024\\n\\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
    " + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")

# ---------------------------------------------------------------- problems and steps

CASES = [
    dict(name="arith",
         problem="What is $2+3\\cdot 4$?",
         steps=["First multiply: $3\\cdot 4=12$.",
                "Then add: $2+12=14$.",
                "So the value is $\\boxed{14}$."],
         answer="14"),
    dict(name="quadratic",
         problem="Find the sum of all real numbers $x$ such that $x^2-5x+6=0$.",
         steps=["We factor the quadratic as $(x-2)(x-3)=0$.",
                "So either x − 2 = 0 or x − 3 = 0.",
                "The solutions are $x=2$ and $x=3$.",
                "Their sum is $2+3=5$.",
                "Therefore the answer is $\\boxed{5}$."],
         answer="5"),
    # shares its first three steps with "quadratic": a branch of the same tree
    dict(name="quadratic_branch",
         problem="Find the sum of all real numbers $x$ such that $x^2-5x+6=0$.",
         steps=["We factor the quadratic as $(x-2)(x-3)=0$.",
                "So either x − 2 = 0 or x − 3 = 0.",
                "The solutions are $x=2$ and $x=3$.",
                "By Vieta the sum is $-(-5)/1=5$, which agrees.",
                "The answer is $\\boxed{5}$."],
         answer="5"),
]

# ---------------------------------------------------------------- tokenizers


def load_json(p):
    with open(p, encoding="utf-8") as f:
        return json.load(f)


def closure_add(piece, keep, producers, base_ok):
    """Adds piece and, recursively, the parts of the first merge that produces it."""
    if piece in keep:
        return
    keep.add(piece)
    if base_ok(piece):
        return
    parts = producers.get(piece)
    if parts is None:
        return
    for p in parts:
        closure_add(p, keep, producers, base_ok)


def cut_bpe(src, n_merges, base, extra_pieces, drop):
    """A smaller BPE from a real one: base pieces + the pieces of the first n_merges merges + extra pieces
    (with the parts that build them). Returns (ordered piece list, merges) in the source's id order."""
    model = src["model"]
    vocab = model["vocab"]
    merges = [m if isinstance(m, list) else m.split(" ", 1) for m in model["merges"]]
    producers = {}
    for a, b in merges:
        producers.setdefault(a + b, (a, b))
    keep = set(p for p in base if p in vocab)
    base_set = set(keep)

    def base_ok(p):
        return p in base_set

    for a, b in merges[:n_merges]:
        for p in (a, b, a + b):
            closure_add(p, keep, producers, base_ok)
    for p in extra_pieces:
        assert p in vocab, f"piece {p!r} not in source vocabulary"
        closure_add(p, keep, producers, base_ok)
    keep -= set(drop)
    pieces = sorted(keep, key=lambda p: vocab[p])
    kept_merges = [[a, b] for a, b in merges if a in keep and b in keep and (a + b) in keep]
    return pieces, kept_merges


def build_spm_tokenizer(n_merges=320, extra=()):
    """Llama-2 SentencePiece BPE (byte fallback) cut down; ids 0..2 <unk> <s> </s>, 3..258 bytes."""
    src = load_json(os.path.join(TOK_SRC, "llama-spm", "tokenizer.json"))
    vocab = src["model"]["vocab"]
    base = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    chars = set(chr(c) for c in range(33, 127)) | {"▁"}
    for c in CASES:
        for t in [c["problem"], *c["steps"], c["answer"]]:
            chars |= set(t.replace(" ", "▁"))
    base += sorted(ch for ch in chars if ch in vocab)
    pieces, merges = cut_bpe(src, n_merges, base, extra, drop=())
    assert pieces[:3] == ["<unk>", "<s>", "</s>"] and pieces[3] == "<0x00>" and pieces[258] == "<0xFF>"
    tok = dict(src)
    tok["model"] = dict(src["model"], vocab={p: i for i, p in enumerate(pieces)}, merges=merges)
    tok["added_tokens"] = [dict(a) for a in src["added_tokens"] if a["id"] < 3]
    tok["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
           "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False,
           "model_max_length": 4096, "clean_up_tokenization_spaces": False}
    return tok, cfg


def bytes_to_unicode():
    """GPT-2's map of the 256 byte values to printable characters (the byte-level BPE alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def build_bytelevel_tokenizer(flavour, n_merges=360, extra=()):
    """SmolLM's byte-level BPE cut down, with Qwen2's or Llama-3's pre-tokenizer and special tokens
    appended after the BPE pieces (as those models number them)."""
    src = load_json(os.path.join(TOK_SRC, "smollm", "tokenizer.json"))
    vocab = src["model"]["vocab"]
    smol_specials = [a["content"] for a in src["added_tokens"]]
    # the GPT-2 byte-to-unicode alphabet; SmolLM lacks a few never-seen bytes (0xC0, 0xF5.., as GPT-2 does)
    byte_chars = [c for c in bytes_to_unicode() if c in vocab]
    assert len(byte_chars) >= 230
    pieces, merges = cut_bpe(src, n_merges, byte_chars, extra, drop=smol_specials)
    if flavour == "qwen2":
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<extra_0>"]
        regex, ignore_merges, normalizer = QWEN_REGEX, False, {"type": "NFC"}
    else:
        specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                    "<|eot_id|>"]
        regex, ignore_merges, normalizer = LLAMA3_REGEX, True, None
    n = len(pieces)
    tok = dict(src)
    tok["normalizer"] = normalizer
    tok["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    tok["decoder"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    tok["model"] = dict(src["model"], vocab={p: i for i, p in enumerate(pieces)}, merges=merges,
                        ignore_merges=ignore_merges)
    tok["added_tokens"] = [{"id": n + k, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                            "normalized": False, "special": True} for k, s in enumerate(specials)]
    if flavour == "qwen2":
        tok["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                                 "use_regex": False}
        cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": None, "eos_token": "<|im_end|>",
               "pad_token": "<|endoftext|>", "add_bos_token": False, "add_eos_token": False,
               "model_max_length": 4096, "clean_up_tokenization_spaces": False, "chat_template": CHATML_TEMPLATE}
    else:
        bos = n
        tok["post_processor"] = {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [bos],
                                                      "tokens": ["<|begin_of_text|>"]}}}]}
        cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
               "eos_token": "<|eot_id|>", "add_bos_token": True, "add_eos_token": False,
               "model_max_length": 4096, "clean_up_tokenization_spaces": False, "chat_template": LLAMA31_TEMPLATE}
    return tok, cfg


def write_tokenizer(out, tok, cfg):
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=None)
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=1)
        f.write("\n")
    return AutoTokenizer.from_pretrained(out)


# ---------------------------------------------------------------- models


def init_weights(module, gen, scale=0.15):
    """As tools/make_fixtures.py: matrices ~ N(0, scale), norms ~ 1 + N(0, 0.1), biases ~ N(0, 0.3)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(scale * torch.randn(p.shape, generator=gen))


def make_config(arch, vocab, **kw):
    common = dict(vocab_size=vocab, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                  num_attention_heads=N_HEADS, num_key_value_heads=N_KV, max_position_embeddings=4096,
                  hidden_act="silu", torch_dtype="float32")
    common.update(kw)
    if arch == "llama":
        cfg = LlamaConfig(head_dim=HEAD_DIM, attention_bias=False, mlp_bias=False, **common)
    elif arch == "mistral":
        cfg = MistralConfig(head_dim=HEAD_DIM, sliding_window=None, **common)
    else:
        cfg = Qwen2Config(use_sliding_window=False, **common)
    cfg._attn_implementation = "eager"
    return cfg


def save_hf(model, out):
    """save_pretrained, then the reference is recomputed from the re-loaded files."""
    model.save_pretrained(out, safe_serialization=True)
    gc = os.path.join(out, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)


def reload(cls, out):
    return cls.from_pretrained(out, torch_dtype=torch.float32, attn_implementation="eager").eval()


def f32(x):
    return [float(np.float32(v)) for v in x]


def sigmoid(x):
    return 1.0 / (1.0 + torch.exp(-x))


def enc(tok, text, special=False):
    return tok(text, add_special_tokens=special)["input_ids"]


def new_dir(out_root, name):
    out = os.path.join(out_root, name)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    return out


def write_expected(out, obj):
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def check_ids(tok, text, ids, special):
    again = enc(tok, text, special)
    assert again == ids, "tokenization of the full text differs from the ids used"


# ---------------------------------------------------------------- e2h-paper


def build_e2h_paper(out_root, seed):
    out = new_dir(out_root, "e2h_paper")
    tok_json, tok_cfg = build_spm_tokenizer()
    tok = write_tokenizer(out, tok_json, tok_cfg)
    V = len(tok_json["model"]["vocab"])
    torch.manual_seed(seed)
    cfg = make_config("llama", V, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
                      rope_theta=10000.0, rms_norm_eps=1e-5)
    model = LlamaForCausalLM(cfg)
    gen = torch.Generator().manual_seed(seed)
    init_weights(model, gen)
    # The released models tile the reward head over the vocabulary rows. Here every row is one shared
    # reward row plus noise, so the mean over the row is far from 0 and differs from any single logit.
    with torch.no_grad():
        model.lm_head.weight.add_(0.5 * torch.randn(1, HIDDEN, generator=gen))
    save_hf(model, out)
    ref = reload(LlamaForCausalLM, out)
    nl = tok.convert_tokens_to_ids("<0x0A>")
    cases = []
    for c in CASES:
        prompt = f"# Question\n\n{c['problem']}\n\n# Solution\n\n"
        solution = "\n\n".join(c["steps"]) + f"\n\n# Answer\n\n{c['answer']}"
        text = prompt + solution
        ids = enc(tok, text, special=True) + [tok.eos_token_id]  # bos=True, eos=True as in the paper's code
        with torch.no_grad():
            logits = ref(torch.tensor([ids])).logits[0]
        reward = logits.mean(dim=-1)  # (T,) the paper's RewardModel: rewards = logits.mean(-1)
        # The paper finds each "\n\n" as the id pair (13, 13); a step's score is read at the first of the
        # pair after it. Pairs inside the prompt are skipped by count.
        pairs = [i for i in range(len(ids) - 1) if ids[i] == nl and ids[i + 1] == nl
                 and (i == 0 or ids[i - 1] != nl)]
        n_prompt_pairs = prompt.count("\n\n")
        assert len(pairs) == n_prompt_pairs + len(c["steps"]) + 1, (len(pairs), c["name"])
        pos = pairs[n_prompt_pairs:n_prompt_pairs + len(c["steps"])]
        eos_pos = len(ids) - 1
        cases.append(dict(
            name=c["name"], problem=c["problem"], steps=c["steps"], answer=c["answer"], text=text, ids=ids,
            positions=pos, rewards_at_positions=f32(reward[pos]), step_scores=f32(sigmoid(reward[pos])),
            answer_position=eos_pos - 1, answer_score=float(np.float32(sigmoid(reward[eos_pos - 1]))),
            eos_position=eos_pos, eos_score=float(np.float32(sigmoid(reward[eos_pos]))),
            reward_all=f32(reward)))
    write_expected(out, dict(
        protocol="e2h-paper", model=".", add_bos=True, add_eos=True, newline_id=nl,
        format="text = '# Question\\n\\n' + problem + '\\n\\n# Solution\\n\\n' + '\\n\\n'.join(steps) + "
               "'\\n\\n# Answer\\n\\n' + answer; ids = [BOS] + encode(text) + [EOS]",
        score="sigmoid(mean over the vocabulary of the logits) at positions[k] = index of the first '\\n' "
              "token of the '\\n\\n' that follows step k. OPRM adds answer_score (token before EOS); "
              "eos_score is the value at EOS. reward_all = mean logits at every position (before sigmoid)",
        cases=cases))
    return out


# ---------------------------------------------------------------- math-shepherd


def build_math_shepherd(out_root, seed):
    out = new_dir(out_root, "math_shepherd")
    tok_json, tok_cfg = build_spm_tokenizer(extra=("▁ки", "▁+", "▁-"))
    tok = write_tokenizer(out, tok_json, tok_cfg)
    V = len(tok_json["model"]["vocab"])
    torch.manual_seed(seed)
    cfg = make_config("mistral", V, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
                      rope_theta=10000.0, rms_norm_eps=1e-5)
    model = MistralForCausalLM(cfg)
    init_weights(model, torch.Generator().manual_seed(seed))
    save_hf(model, out)
    ref = reload(MistralForCausalLM, out)
    candidates = enc(tok, "+ -", special=True)[1:]  # model card: encode(f"{good} {bad}")[1:]
    tag_id = enc(tok, "ки", special=True)[-1]       # model card: encode("ки")[-1]
    assert len(candidates) == 2 and tok.convert_ids_to_tokens(candidates) == ["▁+", "▁-"], candidates
    assert tok.convert_ids_to_tokens(tag_id) == "▁ки"
    cases = []
    for c in CASES:
        output = "\n".join(f"{s} ки" for s in c["steps"])
        text = f"{c['problem']} {output}"
        ids = enc(tok, text, special=True)
        with torch.no_grad():
            logits = ref(torch.tensor([ids])).logits[0]
        pm = logits[:, candidates]
        p_plus = pm.softmax(dim=-1)[:, 0]
        pos = [i for i, t in enumerate(ids) if t == tag_id]
        assert len(pos) == len(c["steps"]), c["name"]
        cases.append(dict(name=c["name"], problem=c["problem"], steps=c["steps"], text=text, ids=ids,
                          positions=pos, candidate_logits=[f32(pm[p]) for p in pos],
                          step_scores=f32(p_plus[pos])))
    write_expected(out, dict(
        protocol="math-shepherd", model=".", add_bos=True, candidate_ids=candidates, tag_id=tag_id,
        format="text = problem + ' ' + '\\n'.join(step + ' ки' for step in steps); ids = [BOS] + encode(text)",
        score="softmax over logits[candidate_ids] at each position whose id == tag_id; P(+) = first",
        cases=cases))
    return out


# ---------------------------------------------------------------- qwen-prm


class Qwen2ForProcessRewardModel(nn.Module):
    """Follows Qwen2.5-Math-PRM's modeling_qwen2_rm.py: a Qwen2Model and a two-layer score head."""

    def __init__(self, config):
        super().__init__()
        self.model = Qwen2Model(config)
        self.score = nn.Sequential(nn.Linear(config.hidden_size, config.hidden_size), nn.ReLU(),
                                   nn.Linear(config.hidden_size, 2))

    def forward(self, input_ids):
        h = self.model(input_ids=input_ids).last_hidden_state  # final-normed
        return self.score(h), h


def build_qwen_prm(out_root, seed):
    out = new_dir(out_root, "qwen_prm")
    tok_json, tok_cfg = build_bytelevel_tokenizer("qwen2")
    tok = write_tokenizer(out, tok_json, tok_cfg)
    V = len(tok_json["model"]["vocab"]) + len(tok_json["added_tokens"])
    torch.manual_seed(seed)
    cfg = make_config("qwen2", V, bos_token_id=None, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                      tie_word_embeddings=False, rope_theta=10000.0, rms_norm_eps=1e-6)
    cfg.architectures = ["Qwen2ForProcessRewardModel"]
    cfg.num_labels = 2
    model = Qwen2ForProcessRewardModel(cfg)
    init_weights(model, torch.Generator().manual_seed(seed))
    cfg.save_pretrained(out)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}  # model.*, score.0.*, score.2.*
    save_file(state, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    ref = model.eval()
    sep = enc(tok, "<extra_0>")[0]  # model card: tokenizer.encode("<extra_0>")[0]
    cases = []
    for c in CASES:
        messages = [{"role": "system", "content": QWEN_MATH_SYSTEM},
                    {"role": "user", "content": c["problem"]},
                    {"role": "assistant", "content": "<extra_0>".join(c["steps"]) + "<extra_0>"}]
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        ids = enc(tok, text)
        with torch.no_grad():
            logits, h = ref(torch.tensor([ids]))
        probs = logits[0].softmax(dim=-1)
        pos = [i for i, t in enumerate(ids) if t == sep]
        assert len(pos) == len(c["steps"])
        cases.append(dict(name=c["name"], problem=c["problem"], steps=c["steps"], system=QWEN_MATH_SYSTEM,
                          text=text, ids=ids, positions=pos, hidden=[f32(h[0, p]) for p in pos],
                          class_logits=[f32(logits[0, p]) for p in pos], step_scores=f32(probs[pos, 1])))
    write_expected(out, dict(
        protocol="qwen-prm", model=".", add_bos=False, sep_id=sep,
        format="text = apply_chat_template([system, user=problem, assistant='<extra_0>'.join(steps) + "
               "'<extra_0>']) = '<|im_start|>system\\n' + system + '<|im_end|>\\n<|im_start|>user\\n' + problem + "
               "'<|im_end|>\\n<|im_start|>assistant\\n' + '<extra_0>'.join(steps) + '<extra_0><|im_end|>\\n'; "
               "ids = encode(text) (no BOS)",
        score="h = final-normed hidden state at each <extra_0>; softmax(score.2(relu(score.0(h))))[1]",
        cases=cases))
    return out


# ---------------------------------------------------------------- rlhflow


def build_rlhflow(out_root, seed):
    out = new_dir(out_root, "rlhflow")
    tok_json, tok_cfg = build_bytelevel_tokenizer("llama3", extra=("ĊĊ",))
    tok = write_tokenizer(out, tok_json, tok_cfg)
    V = len(tok_json["model"]["vocab"]) + len(tok_json["added_tokens"])
    torch.manual_seed(seed)
    cfg = make_config("llama", V, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      tie_word_embeddings=False, rope_theta=500000.0, rms_norm_eps=1e-5,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
    model = LlamaForCausalLM(cfg)
    init_weights(model, torch.Generator().manual_seed(seed))
    save_hf(model, out)
    ref = reload(LlamaForCausalLM, out)
    plus, minus = enc(tok, "+", True)[-1], enc(tok, "-", True)[-1]  # reference: encode("+")[-1]
    cases = []
    for c in CASES:
        conv = []
        for k, s in enumerate(c["steps"]):
            conv.append({"role": "user", "content": c["problem"] + " " + s if k == 0 else s})
            conv.append({"role": "assistant", "content": "+"})
        text = tok.apply_chat_template(conv, tokenize=False)
        ids = tok.apply_chat_template(conv, tokenize=True)
        check_ids(tok, text, ids, special=False)
        with torch.no_grad():
            logits = ref(torch.tensor([ids])).logits[0]
        pm = logits[:, [plus, minus]]
        p_plus = pm.softmax(dim=-1)[:, 0]
        eh = tok.convert_tokens_to_ids("<|end_header_id|>")
        asst = tok.convert_tokens_to_ids("assistant") if "assistant" in tok_json["model"]["vocab"] else None
        # the token before each assistant "+" (the "\n\n" after <|end_header_id|>): position -3 of each
        # incremental conversation in the reference
        pos = [i - 1 for i in range(1, len(ids)) if ids[i] == plus and ids[i - 2] == eh]
        assert len(pos) == len(c["steps"]), (c["name"], pos)
        del asst
        cases.append(dict(name=c["name"], problem=c["problem"], steps=c["steps"], text=text, ids=ids,
                          positions=pos, candidate_logits=[f32(pm[p]) for p in pos],
                          step_scores=f32(p_plus[pos])))
    write_expected(out, dict(
        protocol="rlhflow", model=".", add_bos=False, candidate_ids=[plus, minus],
        format="conversation: for k, step: user = (problem + ' ' + step if k == 0 else step), assistant = '+'; "
               "text = Llama-3.1 chat template (tokenizer_config.json): '<|begin_of_text|><|start_header_id|>system"
               "<|end_header_id|>\\n\\nCutting Knowledge Date: December 2023\\nToday Date: 26 Jul 2024\\n\\n"
               "<|eot_id|>' then per turn '<|start_header_id|>' + role + '<|end_header_id|>\\n\\n' + content.strip() "
               "+ '<|eot_id|>'; ids = encode(text) without adding BOS again",
        score="softmax over logits[candidate_ids] at positions[k] = the token before the k-th assistant '+'; "
              "P(+) = first",
        cases=cases))
    return out


# ---------------------------------------------------------------- value-head (Skywork-o1-Open-PRM)


def build_value_head(out_root, seed):
    out = new_dir(out_root, "value_head")
    tok_json, tok_cfg = build_bytelevel_tokenizer("qwen2")
    tok_cfg = dict(tok_cfg, bos_token="<|endoftext|>")  # prepare_input prepends tokenizer.bos_token
    tok = write_tokenizer(out, tok_json, tok_cfg)
    V = len(tok_json["model"]["vocab"]) + len(tok_json["added_tokens"])
    torch.manual_seed(seed)
    cfg = make_config("qwen2", V, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      tie_word_embeddings=True, rope_theta=10000.0, rms_norm_eps=1e-6)
    model = Qwen2ForCausalLM(cfg)
    init_weights(model, torch.Generator().manual_seed(seed))
    model.tie_weights()
    v_head = nn.Linear(HIDDEN, 1)  # ValueHead.summary
    init_weights(v_head, torch.Generator().manual_seed(seed + 7), scale=0.3)
    model.save_pretrained(out, safe_serialization=True)
    os.remove(os.path.join(out, "generation_config.json"))
    # The wrapper's state_dict = backbone's + "v_head.summary.*" in the same file.
    from safetensors.torch import load_file
    st = load_file(os.path.join(out, "model.safetensors"))
    st["v_head.summary.weight"] = v_head.weight.detach().contiguous()
    st["v_head.summary.bias"] = v_head.bias.detach().contiguous()
    save_file(st, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    ref = reload(Qwen2ForCausalLM, out)
    step_token = "\n"
    step_id = enc(tok, step_token)[-1]
    cases = []
    for c in CASES:
        # io_utils.prepare_input: prompt_ids = encode(bos + problem + "\n"); per step encode(step) + [step_id]
        ids = enc(tok, tok.bos_token + c["problem"] + "\n")
        pos = []
        for s in c["steps"]:
            ids += enc(tok, s) + [step_id]
            pos.append(len(ids) - 1)
        with torch.no_grad():
            o = ref(torch.tensor([ids]), output_hidden_states=True)
            h = o.hidden_states[-1][0]  # final-normed
            value = v_head(h).squeeze(-1)
        cases.append(dict(name=c["name"], problem=c["problem"], steps=c["steps"], ids=ids, positions=pos,
                          hidden=[f32(h[p]) for p in pos], values=f32(value[pos]),
                          step_scores=f32(sigmoid(value[pos]))))
    write_expected(out, dict(
        protocol="value-head", model=".", add_bos=False, step_token=step_token, step_token_id=step_id,
        format="ids = encode('<|endoftext|>' + problem + '\\n') then for each step: encode(step) + [step_token_id] "
               "(each step tokenized on its own; steps must not contain '\\n'); no BOS added by encode",
        score="sigmoid(v_head.summary(h)) with h = final-normed hidden state at each step's last token "
              "(the appended '\\n')",
        cases=cases))
    return out


# ---------------------------------------------------------------- implicit PRM


def build_implicit(out_root, seed):
    out = new_dir(out_root, "implicit")
    out_ref = new_dir(out_root, "implicit_ref")
    tok_json, tok_cfg = build_bytelevel_tokenizer("qwen2", extra=("ĊĊ",))
    tok = write_tokenizer(out, tok_json, tok_cfg)
    write_tokenizer(out_ref, tok_json, tok_cfg)
    V = len(tok_json["model"]["vocab"]) + len(tok_json["added_tokens"])
    models = []
    for k, d in enumerate((out, out_ref)):
        torch.manual_seed(seed + k)
        cfg = make_config("qwen2", V, bos_token_id=None, eos_token_id=tok.eos_token_id, tie_word_embeddings=True,
                          rope_theta=10000.0, rms_norm_eps=1e-6)
        m = Qwen2ForCausalLM(cfg)
        init_weights(m, torch.Generator().manual_seed(seed + k))
        m.tie_weights()
        save_hf(m, d)
        models.append(reload(Qwen2ForCausalLM, d))
    cases = []
    for c in CASES:
        # ChatML (user = problem, assistant = steps joined by "\n\n"). Step k owns the tokens from its first
        # token through the "\n\n" after it (the last step: through <|im_end|>), as EurusPRM's
        # step_last_tokens do.
        prefix = tok.apply_chat_template([{"role": "user", "content": c["problem"]}], tokenize=False,
                                         add_generation_prompt=True)
        ids = enc(tok, prefix)
        ranges = []
        for k, s in enumerate(c["steps"]):
            piece = s + ("\n\n" if k + 1 < len(c["steps"]) else "<|im_end|>")
            start = len(ids)
            ids += enc(tok, piece)
            ranges.append([start, len(ids)])
        text = prefix + "\n\n".join(c["steps"]) + "<|im_end|>"
        check_ids(tok, text, ids, special=False)
        lp = []
        for m in models:
            with torch.no_grad():
                logits = m(torch.tensor([ids])).logits[0]
            logp = logits.log_softmax(dim=-1)
            # log p(ids[t] | ids[:t]) for t >= 1
            lp.append(torch.cat([torch.full((1,), float("nan")),
                                 logp[:-1].gather(1, torch.tensor(ids[1:])[:, None])[:, 0]]))
        diff = lp[0] - lp[1]
        sums = [float(diff[a:b].sum()) for a, b in ranges]
        cases.append(dict(name=c["name"], problem=c["problem"], steps=c["steps"], text=text, ids=ids,
                          step_ranges=ranges, logprobs=f32(lp[0][1:]), ref_logprobs=f32(lp[1][1:]),
                          step_logratio_sums=f32(sums)))
    write_expected(out, dict(
        protocol="implicit", model=".", ref_model="../implicit_ref", add_bos=False,
        format="text = '<|im_start|>system\\n' + default system + '<|im_end|>\\n<|im_start|>user\\n' + problem + "
               "'<|im_end|>\\n<|im_start|>assistant\\n' + '\\n\\n'.join(steps) + '<|im_end|>'; "
               "ids = encode(text) (equal to encoding the prompt, then each step + '\\n\\n' (last: + '<|im_end|>'))",
        score="step_score_k = beta * step_logratio_sums[k]; step_logratio_sums[k] = sum over t in "
              "[step_ranges[k][0], step_ranges[k][1]) of log pi(ids[t] | ids[:t]) - log pi_ref(ids[t] | ids[:t]). "
              "logprobs / ref_logprobs[t-1] = log p(ids[t] | ids[:t]) for t = 1..len(ids)-1",
        cases=cases))
    return out


# ---------------------------------------------------------------- policy + e2h head files


def build_policy_heads(out_root, seed, model_id):
    out = new_dir(out_root, "policy")
    tok_json, tok_cfg = build_bytelevel_tokenizer("qwen2", extra=("ĊĊ",))
    tok = write_tokenizer(out, tok_json, tok_cfg)
    V = len(tok_json["model"]["vocab"]) + len(tok_json["added_tokens"])
    torch.manual_seed(seed)
    cfg = make_config("qwen2", V, bos_token_id=None, eos_token_id=tok.eos_token_id, tie_word_embeddings=True,
                      rope_theta=10000.0, rms_norm_eps=1e-6)
    model = Qwen2ForCausalLM(cfg)
    init_weights(model, torch.Generator().manual_seed(seed))
    model.tie_weights()
    save_hf(model, out)
    ref = reload(Qwen2ForCausalLM, out)
    gen = torch.Generator().manual_seed(seed + 11)
    H = 16
    heads = {
        "head_linear": dict(kind="linear", features="hidden",
                            t={"w": 0.3 * torch.randn(1, HIDDEN, generator=gen), "b": 0.3 * torch.randn(1, generator=gen)}),
        "head_mlp": dict(kind="mlp", features="hidden+mean_logprob",
                         t={"w1": 0.3 * torch.randn(H, HIDDEN + 1, generator=gen),
                            "b1": 0.3 * torch.randn(H, generator=gen),
                            "w2": 0.5 * torch.randn(1, H, generator=gen), "b2": 0.3 * torch.randn(1, generator=gen)}),
    }
    for name, hd in heads.items():
        meta = {"format": "e2h-head", "version": "1", "kind": hd["kind"], "dim": str(HIDDEN),
                "model_id": model_id, "layer": "final", "pooling": "last", "step_delimiter": "\n\n",
                "features": hd["features"], "activation": "relu"}
        save_file({k: v.contiguous() for k, v in hd["t"].items()}, os.path.join(out, name + ".safetensors"),
                  metadata=meta)
    cases = []
    for c in CASES:
        prompt = tok.apply_chat_template([{"role": "user", "content": c["problem"]}], tokenize=False,
                                         add_generation_prompt=True)
        ids = enc(tok, prompt)
        n_prompt = len(ids)
        ranges = []
        for s in c["steps"]:
            start = len(ids)
            ids += enc(tok, s + "\n\n")
            ranges.append([start, len(ids)])
        check_ids(tok, prompt + "".join(s + "\n\n" for s in c["steps"]), ids, special=False)
        with torch.no_grad():
            o = ref(torch.tensor([ids]), output_hidden_states=True)
        h = o.hidden_states[-1][0]
        logp = o.logits[0].log_softmax(-1)
        tok_lp = torch.cat([torch.full((1,), float("nan")), logp[:-1].gather(1, torch.tensor(ids[1:])[:, None])[:, 0]])
        pos = [b - 1 for a, b in ranges]
        mean_lp = torch.stack([tok_lp[a:b].mean() for a, b in ranges])
        hs = h[pos]  # (n_steps, dim)
        t = heads["head_linear"]["t"]
        lin = sigmoid(hs @ t["w"][0] + t["b"][0])
        t = heads["head_mlp"]["t"]
        x = torch.cat([hs, mean_lp[:, None]], dim=1)
        mlp = sigmoid(torch.relu(x @ t["w1"].T + t["b1"]) @ t["w2"][0] + t["b2"][0])
        cases.append(dict(name=c["name"], problem=c["problem"], steps=c["steps"], ids=ids, n_prompt=n_prompt,
                          step_ranges=ranges, positions=pos, hidden=[f32(h[p]) for p in pos],
                          mean_logprobs=f32(mean_lp), token_logprobs=f32(tok_lp[1:]),
                          step_scores={"head_linear": f32(lin), "head_mlp": f32(mlp)}))
    write_expected(out, dict(
        protocol="head", model=".", heads=["head_linear.safetensors", "head_mlp.safetensors"], add_bos=False,
        model_id_note="model_id in the head files: " + ("from libe2h" if model_id != "0" * 32 else
                                                        "placeholder zeros (libe2h had no model_id at generation)"),
        format="ids = encode(chat(user=problem, add_generation_prompt=True)) then for each step encode(step + "
               "'\\n\\n') (steps are tokenized one at a time, as a policy samples them)",
        score="h = final-normed hidden state at positions[k] = last token of step k's chunk (completes '\\n\\n'); "
              "linear: sigmoid(w.h + b); mlp (features hidden+mean_logprob): x = [h, mean over the chunk's tokens "
              "of log p(token | prefix)], sigmoid(w2.relu(w1 x + b1) + b2)",
        cases=cases))
    return out


def libe2h_model_id(path):
    """The policy's model id through the Python binding, if the library exposes it."""
    try:
        sys.path.insert(0, os.path.join(ROOT, "python"))
        import e2h  # noqa
        with e2h.Model(path) as m:
            mid = getattr(m.info, "model_id", None)
            return mid if mid and len(mid) == 32 else None
    except Exception as ex:  # noqa: BLE001 - optional
        print(f"  (no model id from libe2h: {ex})")
        return None


# ---------------------------------------------------------------- GGUF copies (qwen-prm, value-head)

# llama.cpp's convert_hf_to_gguf.py converts neither Qwen2ForProcessRewardModel nor a Skywork value head
# (checked: it registers Qwen2Model / Qwen2ForCausalLM only, and gguf-py maps no "score.*" or "v_head.*"
# tensor), so there is no standard GGUF layout for these heads. e2h's layout reuses gguf-py's classifier
# tensor names (MODEL_TENSOR.CLS = "cls", CLS_OUT = "cls.output", the reranker heads of llama.cpp):
#   qwen-prm:   cls.weight (H, dim) + cls.bias = score.0, cls.output.weight (2, H) + cls.output.bias = score.2
#   value-head: cls.output.weight (1, dim) + cls.output.bias (1) = v_head.summary
# and the metadata key "e2h.prm.protocol" names the protocol (engine/prm/README.md).
GGUF_HEADS = {
    "qwen-prm": {"score.0.weight": "cls.weight", "score.0.bias": "cls.bias",
                 "score.2.weight": "cls.output.weight", "score.2.bias": "cls.output.bias"},
    "value-head": {"v_head.summary.weight": "cls.output.weight", "v_head.summary.bias": "cls.output.bias"},
}


def write_prm_gguf(src, protocol, out_name="model.gguf"):
    """src/model.gguf: the fixture's f32 weights, its byte-level BPE tokenizer (gpt2 model, qwen2 pre-tokenizer)
    and the head under e2h's GGUF names. Made from the committed files: needs gguf + safetensors, not torch."""
    import gguf
    from safetensors.numpy import load_file
    from gguf_convert import add_hf_tensors
    cfg = load_json(os.path.join(src, "config.json"))
    tj = load_json(os.path.join(src, "tokenizer.json"))
    tc = load_json(os.path.join(src, "tokenizer_config.json"))
    w = load_file(os.path.join(src, "model.safetensors"))
    path = os.path.join(src, out_name)
    gw = gguf.GGUFWriter(path, "qwen2")
    gw.add_name(f"e2h fixture {os.path.basename(os.path.normpath(src))}")
    gw.add_string("e2h.prm.protocol", protocol)
    dim, n_head = cfg["hidden_size"], cfg["num_attention_heads"]
    gw.add_block_count(cfg["num_hidden_layers"])
    gw.add_context_length(cfg["max_position_embeddings"])
    gw.add_embedding_length(dim)
    gw.add_feed_forward_length(cfg["intermediate_size"])
    gw.add_head_count(n_head)
    gw.add_head_count_kv(cfg["num_key_value_heads"])
    gw.add_rope_freq_base(float(cfg["rope_theta"]))
    gw.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    # tokenizer: pieces by id (byte-level strings as in tokenizer.json), added tokens as control tokens
    vocab = dict(tj["model"]["vocab"])
    added = {a["content"]: a["id"] for a in tj["added_tokens"]}
    n = max(list(vocab.values()) + list(added.values())) + 1
    pieces, types = [""] * n, [gguf.TokenType.NORMAL] * n
    for t, i in vocab.items():
        pieces[i] = t
    for t, i in added.items():
        pieces[i], types[i] = t, gguf.TokenType.CONTROL
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    gw.add_tokenizer_model("gpt2")
    gw.add_tokenizer_pre("qwen2")
    gw.add_token_list(pieces)
    gw.add_token_types(types)
    gw.add_token_merges(merges)
    if tc.get("bos_token"):
        gw.add_bos_token_id(added[tc["bos_token"]])
    gw.add_eos_token_id(cfg["eos_token_id"])
    gw.add_add_bos_token(False)

    add_hf_tensors(gw, w, cfg, permute_qk=False)  # qwen2 keeps HF's q/k row order
    for hf, gg in GGUF_HEADS[protocol].items():
        gw.add_tensor(gg, np.ascontiguousarray(w[hf].astype(np.float32)))
    gw.write_header_to_file()
    gw.write_kv_data_to_file()
    gw.write_tensors_to_file()
    gw.close()
    return path


GGUF_FIXTURES = {"qwen_prm": "qwen-prm", "value_head": "value-head"}


BUILDERS = {
    "e2h_paper": build_e2h_paper,
    "math_shepherd": build_math_shepherd,
    "qwen_prm": build_qwen_prm,
    "rlhflow": build_rlhflow,
    "value_head": build_value_head,
    "implicit": build_implicit,
    "policy": None,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "prm"))
    ap.add_argument("--only", default="")
    ap.add_argument("--gguf-only", action="store_true",
                    help="only (re)write the model.gguf copies of qwen_prm / value_head from the committed files")
    a = ap.parse_args()
    if a.gguf_only:
        for d, proto in GGUF_FIXTURES.items():
            if not a.only or d in a.only.split(","):
                path = write_prm_gguf(os.path.join(a.out, d), proto)
                print(f"{path}: {os.path.getsize(path) / 1024:.0f} KiB")
        return
    torch.set_num_threads(1)
    names = [n for n in a.only.split(",") if n] or list(BUILDERS)
    os.makedirs(a.out, exist_ok=True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__}")
    for i, n in enumerate(BUILDERS):
        if n not in names:
            continue
        seed = 100 + i
        if n == "policy":
            out = build_policy_heads(a.out, seed, "0" * 32)
            mid = libe2h_model_id(out)
            if mid:
                out = build_policy_heads(a.out, seed, mid)
        else:
            out = BUILDERS[n](a.out, seed)
            if n in GGUF_FIXTURES:
                write_prm_gguf(out, GGUF_FIXTURES[n])
        size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
        print(f"{n}: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
