#!/usr/bin/env python3
"""Writes the committed reference fixtures of tests/test_tokenizer.c.

For each test vocabulary it builds the reference Hugging Face `tokenizers` tokenizer from the
vocabulary's GGUF metadata, checks that reference against llama.cpp's .inp/.out vectors (which
were produced by the models' real tokenizer.json files), and then writes under
tests/fixtures/tokenizer/:

  <vocab>.corpus.bin   expected ids of every MATH train+test problem and solution and every
                       GSM8K train+test question and answer, as (count, FNV-1a-64 of the ids as
                       int32 LE, round-trips flag) per text. The texts are read from ../shared at
                       test time, in the order of corpus_texts() below.
  <vocab>.edge.json    edge cases (input as hex, so invalid UTF-8 fits) with their full ids
                       and the reference's decoding of those ids
  <vocab>/tokenizer.json, tokenizer_config.json (smollm, llama-spm)
                       the reference saved in Hugging Face format: the C loader must give the
                       same ids from it as from the GGUF
  smollm.gguf          vocabulary-only GGUF of the default model (SmolLM2-135M-Instruct)

Usage: python3 tools/make_tokenizer_expected.py [--shared ../shared] [--smollm PATH.gguf]
"""
import argparse
import json
import os
import struct
import sys

import gguf
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "tokenizer")

GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def read_vocab(path):
    r = gguf.GGUFReader(path)
    f = r.fields

    def scalar(k, default=None):
        if k not in f:
            return default
        v = f[k]
        part = v.parts[v.data[0]]
        if v.types[0] == gguf.GGUFValueType.STRING:
            return bytes(part).decode("utf-8")
        return part.tolist()[0]

    def strings(k):
        if k not in f:
            return None
        v = f[k]
        return [bytes(v.parts[i]).decode("utf-8") for i in v.data]

    def numbers(k):
        if k not in f:
            return None
        v = f[k]
        return [v.parts[i].tolist()[0] for i in v.data]

    return {
        "model": scalar("tokenizer.ggml.model"),
        "pre": scalar("tokenizer.ggml.pre", "default"),
        "tokens": strings("tokenizer.ggml.tokens"),
        "types": numbers("tokenizer.ggml.token_type"),
        "scores": numbers("tokenizer.ggml.scores"),
        "merges": strings("tokenizer.ggml.merges"),
        "bos": scalar("tokenizer.ggml.bos_token_id"),
        "eos": scalar("tokenizer.ggml.eos_token_id"),
        "unk": scalar("tokenizer.ggml.unknown_token_id"),
        "add_bos": scalar("tokenizer.ggml.add_bos_token"),
    }


def added_tokens(v):
    # control (3), user-defined (4) and unknown (2) tokens are matched before the model
    out = []
    for i, (t, ty) in enumerate(zip(v["tokens"], v["types"])):
        if ty in (2, 3, 4):
            out.append(AddedToken(t, special=ty != 4, normalized=False))
    return out


def build_bpe(v, digits):
    vocab = {t: i for i, t in enumerate(v["tokens"])}
    merges = [tuple(m.split(" ", 1)) for m in v["merges"]]
    tok = Tokenizer(models.BPE(vocab, merges, fuse_unk=False))
    steps = [pre_tokenizers.Digits(individual_digits=True)] if digits else []
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(steps)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(added_tokens(v))
    return tok


def spm_merges(v):
    # the SentencePiece -> BPE conversion of transformers: every split of a piece into two
    # pieces is a merge, ordered by the piece's score (highest first), then by the ids
    vocab = {t: i for i, t in enumerate(v["tokens"])}
    local = []
    for piece, score in zip(v["tokens"], v["scores"]):
        pl = []
        for k in range(1, len(piece)):
            a, b = piece[:k], piece[k:]
            if a in vocab and b in vocab:
                pl.append((a, b, score))
        pl.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        local.extend(pl)
    local.sort(key=lambda x: x[2], reverse=True)
    return [(a, b) for a, b, _ in local]


def build_spm(v):
    vocab = {t: i for i, t in enumerate(v["tokens"])}
    unk = v["tokens"][v["unk"]] if v["unk"] is not None else None
    tok = Tokenizer(models.BPE(vocab, spm_merges(v), unk_token=unk, fuse_unk=True,
                               byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                           normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens(added_tokens(v))
    return tok


def check_vectors(tok, inp, out):
    with open(inp, encoding="utf-8") as f:
        texts = f.read().split("\n__ggml_vocab_test__\n")[:-1]
    with open(out, encoding="utf-8") as f:
        want = [[int(x) for x in line.split()] for line in f.read().split("\n")[: len(texts)]]
    bad = sum(1 for t, w in zip(texts, want) if tok.encode(t, add_special_tokens=False).ids != w)
    return bad, len(texts)


def corpus_texts(shared):
    texts = []
    for name in ("math_train.jsonl", "math_test.jsonl"):
        with open(os.path.join(shared, "data", "math", name), encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                texts += [r["problem"], r["solution"]]
    for name in ("train.jsonl", "test.jsonl"):
        with open(os.path.join(shared, "data", "gsm8k", name), encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                texts += [r["question"], r["answer"]]
    return texts


def edge_cases():
    s = [
        "", " ", "  ", "   ", "\t", "\n", "\n\n", "\t\t\n \n", " \t \n\r\n  x", "\r\n",
        "Hello world", " Hello world", "Hello  world  ", "a" * 10000, " " * 10000,
        "ки", "Шаг 1: решаем ки\nШаг 2: ответ ки", "step 1 ки step 2 ки",
        "混合 scripts: Ελληνικά, русский, العربية, हिन्दी, 日本語, 한국어",
        "emoji 🦙🤖👩‍👩‍👧‍👦 🇺🇸 ✅", "\\frac{1}{2} + \\sqrt{x^2+y^2} = $\\boxed{42}$",
        "\\begin{align*} x &= 3 \\\\ y &= 4 \\end{align*}", "1234567890 12 345 6789",
        "don't I'll we're they've he'd SHE'LL", "tabs\tand\tspaces    and\n\n\nnewlines",
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
        "</s><s>text<unk>", "\u00a0nbsp\u2009thin\u3000ideographic", "\u0085nel\u2028ls",
        "x" * 3 + "\u0301\u0301", "🦙" * 500,
    ]
    cases = [c.encode("utf-8") for c in s]
    cases += [b"\xff", b"abc\xffdef", b"\xc3", b"\xe2\x82", b"\xe2\x82x", b"\xf0\x9f\xa6",
              b"\xed\xa0\x80", b"\xc0\xaf", b"ok\x80\x80ok", b"\xf4\x90\x80\x80"]
    return cases


def fnv1a64(ids):
    h = 0xCBF29CE484222325
    for b in struct.pack("<%di" % len(ids), *ids):
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def write_fixtures(name, tok, texts, config, save_json):
    if save_json:  # only where the GGUF is not committed in ../shared alone (size budget)
        os.makedirs(os.path.join(OUT, name), exist_ok=True)
        tok.save(os.path.join(OUT, name, "tokenizer.json"), pretty=False)
        with open(os.path.join(OUT, name, "tokenizer_config.json"), "w") as f:
            json.dump(config, f, indent=1)
    enc = tok.encode_batch(texts, add_special_tokens=False)
    with open(os.path.join(OUT, name + ".corpus.bin"), "wb") as f:
        f.write(b"E2HTOKC1" + struct.pack("<I", len(texts)))
        for t, e in zip(texts, enc):
            rt = tok.decode(e.ids, skip_special_tokens=False) == t
            f.write(struct.pack("<IQB", len(e.ids), fnv1a64(e.ids), rt))
    edge = []
    for raw in edge_cases():
        text = raw.decode("utf-8", errors="replace")
        ids = tok.encode(text, add_special_tokens=False).ids
        dec = tok.decode(ids, skip_special_tokens=False)
        edge.append({"hex": raw.hex(), "ids": ids, "decoded_hex": dec.encode("utf-8").hex(),
                     "roundtrip": dec == text})
    with open(os.path.join(OUT, name + ".edge.json"), "w") as f:
        json.dump(edge, f)
    print(f"{name}: {len(texts)} corpus texts, {sum(len(e.ids) for e in enc)} tokens, "
          f"{len(edge)} edge cases")


def write_vocab_gguf(v, path):
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model(v["model"])
    w.add_tokenizer_pre(v["pre"])
    w.add_token_list(v["tokens"])
    w.add_token_types(v["types"])
    w.add_token_merges(v["merges"])
    for k, fn in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id),
                  ("unk", w.add_unk_token_id)):
        if v[k] is not None:
            fn(v[k])
    w.add_add_bos_token(bool(v["add_bos"]))
    w.add_add_space_prefix(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared"))
    ap.add_argument("--smollm", default="/tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf")
    args = ap.parse_args()
    tdir = os.path.join(args.shared, "assets", "tokenizers")
    os.makedirs(OUT, exist_ok=True)

    # 1. the references must reproduce the real tokenizers' vectors
    refs = {"llama-spm": build_spm, "gpt-2": lambda v: build_bpe(v, False),
            "starcoder": lambda v: build_bpe(v, True)}
    built = {}
    for name, fn in refs.items():
        p = os.path.join(tdir, f"ggml-vocab-{name}.gguf")
        v = read_vocab(p)
        tok = fn(v)
        bad, n = check_vectors(tok, p + ".inp", p + ".out")
        print(f"reference {name}: {n - bad}/{n} llama.cpp vectors match")
        if bad:
            sys.exit(f"reference tokenizer for {name} is wrong")
        built[name] = (v, tok)

    # 2. the default model's vocabulary: same construction as starcoder (smollm pre-tokenizer)
    sv = read_vocab(args.smollm)
    assert sv["pre"] == "smollm", sv["pre"]
    write_vocab_gguf(sv, os.path.join(OUT, "smollm.gguf"))
    built["smollm"] = (sv, build_bpe(sv, True))

    texts = corpus_texts(args.shared)
    for name in ("smollm", "llama-spm", "gpt-2"):
        v, tok = built[name]
        spm = v["model"] == "llama"
        cfg = {"add_bos_token": bool(v["add_bos"]) if v["add_bos"] is not None else spm,
               "add_eos_token": False,
               "bos_token": v["tokens"][v["bos"]] if v["bos"] is not None else None,
               "eos_token": v["tokens"][v["eos"]] if v["eos"] is not None else None}
        write_fixtures(name, tok, texts, cfg, name != "gpt-2")


if __name__ == "__main__":
    main()
