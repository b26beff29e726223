#!/usr/bin/env python3
"""Writes the committed reference fixtures of tests/test_tokenizer.c.

For each test vocabulary it builds the reference Hugging Face `tokenizers` tokenizer from the
vocabulary's GGUF metadata plus the pipeline of the model's real tokenizer.json (normalizer,
pre-tokenizer steps: the GGUF only names it), checks that reference against llama.cpp's
.inp/.out vectors (which were produced by the models' real tokenizer.json files), and then
writes under tests/fixtures/tokenizer/:

  <vocab>.corpus.bin   expected ids of every MATH train+test problem and solution and every
                       GSM8K train+test question and answer: "E2HTOKC2", u32 number of texts,
                       then per text u32 (count << 1 | round-trips flag) and u32 (low half of
                       the FNV-1a-64 of the ids as int32 LE). The texts are read from ../shared
                       at test time, in the order of corpus_texts() below.
  <vocab>.edge.json    edge cases (input as hex, so invalid UTF-8 fits) with their full ids
                       and the reference's decoding of those ids ("decoded_hex", left out when
                       it equals the input)
  <vocab>/tokenizer.json, tokenizer_config.json (smollm, llama-spm)
                       the reference saved in Hugging Face format: the C loader must give the
                       same ids from it as from the GGUF
  smollm.gguf          vocabulary-only GGUF of the default model (SmolLM2-135M-Instruct)

Vocabularies: smollm (default model), and every ../shared/assets/tokenizers vocabulary whose
reference can be built faithfully: llama-spm, phi-3, gpt-2, starcoder, refact, falcon,
deepseek-llm, deepseek-coder, mpt, gpt-neox. gpt-neox has no .inp/.out; its GGUF holds the same
tokens and merges as mpt's (MPT-7B uses the GPT-NeoX-20B tokenizer), so it is checked against
mpt's vectors. baichuan is left out: its GGUF (no .inp/.out either) does not record the
SentencePiece normalizer options that decide the tokenization (add_dummy_prefix,
split_digits, remove_extra_whitespaces; no tokenizer.ggml.add_space_prefix key), so a
reference built from it would be a guess.

Usage: python3 tools/make_tokenizer_expected.py [--shared ../shared] [--smollm PATH.gguf]
       [--only NAME,NAME]
"""
import argparse
import json
import os
import struct
import sys
import unicodedata

import gguf
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "tokenizer")

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
        "name": scalar("general.name", ""),
    }


def rstrip_tokens(v):
    """Added tokens whose tokenizer.json sets rstrip (the white space after them is dropped).
    A GGUF does not record it; Phi-3's tokenizer.json sets it on every special token but
    <unk>, <s> and <|endoftext|>, and llama.cpp (llama-vocab.cpp) applies that by general.name."""
    name = (v.get("name") or "").lower()
    if "phi-3" not in name and "phi3" not in name:
        return set()
    return {t for t, ty in zip(v["tokens"], v["types"]) if ty in (2, 3, 4)} - {"<unk>", "<s>", "<|endoftext|>"}


def added_tokens(v):
    # control (3), user-defined (4) and unknown (2) tokens are matched before the model
    out = []
    rs = rstrip_tokens(v)
    for i, (t, ty) in enumerate(zip(v["tokens"], v["types"])):
        if ty in (2, 3, 4):
            out.append(AddedToken(t, special=ty != 4, normalized=False, rstrip=t in rs))
    return out


# Letters of DeepSeek LLM's second Split pattern (cased letters), as in its tokenizer.json but
# with \x{...} escapes so that no editor normalizes them.
DEEPSEEK_LETTERS = (
    r"[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}"
    r"\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}"
    r"\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}"
    r"\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}"
    r"\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}"
    r"\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}"
    r"\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}"
    r"\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}"
    r"\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}"
    r"\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}"
    r"\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}"
    r"\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}"
    r"\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}"
    r"\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}"
    r"\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}"
    r"\x{1E900}-\x{1E943}]")
CJK = r"[\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+"


def split(pattern):
    return pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False)


def byte_level(use_regex):
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=use_regex)


def digits(individual):
    return pre_tokenizers.Digits(individual_digits=individual)


# Vocabularies whose tokenizer.json normalizes to NFC (llama.cpp does not; e2h does, see
# tokenizer/unicode_nfc.c). Only the edge case with decomposed text exercises it: every
# MATH/GSM8K text is already NFC.
NFC_VOCABS = ("mpt", "gpt-neox")


# The pre-tokenizer (and normalizer) of each model's tokenizer.json, by GGUF pre name.
def pipeline(name):
    if name in ("gpt-2", "default"):
        return [byte_level(True)], None
    if name in NFC_VOCABS:  # EleutherAI/gpt-neox-20b tokenizer.json
        return [byte_level(True)], normalizers.NFC()
    if name in ("starcoder", "refact", "smollm"):
        return [digits(True), byte_level(True)], None
    if name == "falcon":
        return [pre_tokenizers.Punctuation("contiguous"), byte_level(True), digits(False),
                split("[0-9][0-9][0-9]")], None
    if name == "deepseek-llm":
        return [split("[\r\n]"), split(r"\s?" + DEEPSEEK_LETTERS + "+"),
                split(r"\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}"
                      r"\x{3000}-\x{3002}]+"),
                split(r"\s+$"), split(CJK), digits(True), byte_level(False)], None
    if name == "deepseek-coder":
        return [split("[\r\n]"), split(r"\s?\p{L}+"), split(r"\s?\p{P}+"), split(CJK),
                digits(True), byte_level(False)], None
    raise ValueError(f"no reference pipeline for pre-tokenizer '{name}'")


def build_bpe(v, pre=None):
    vocab = {t: i for i, t in enumerate(v["tokens"])}
    merges = [tuple(m.split(" ", 1)) for m in v["merges"]]
    tok = Tokenizer(models.BPE(vocab, merges, fuse_unk=False))
    steps, norm = pipeline(pre or v["pre"])
    if norm is not None:
        tok.normalizer = norm
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
        # not NFC (decomposed e-acute, A-ring, Hangul jamo): matters where the model normalizes
        "cafe\u0301 A\u030a \u1112\u1161\u11ab \u212b \u0065\u0327\u0306",
        "x² + y³ = ¼, 10³·5½ ①②", "a...b!!?? (x)=[y]; ~`|^$+<=>", "ö õ ÷ ÿ þ naïve",
        "中文测试，汉字。한국어 テスト", "12345678 3.14159 1,000,000 2024-01-01",
        "<|user|>\nhi<|end|>\n<|assistant|>\n", "[PAD32011] <|endoftext|> <s>",
        "   leading and trailing   ", "line\r\nwith\rcarriage\n\n\n\n",
        # white space after special tokens (Phi-3's rstrip drops it, Unicode spaces included)
        "</s> hello</s>  world </s>\n\nnext", "<s> a <unk> b <|endoftext|> c</s>",
        "<|user|>  spaced\u00a0<|end|>\u3000\u2009x<|assistant|>\t\n y<|end|>",
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
    n_rt = 0
    with open(os.path.join(OUT, name + ".corpus.bin"), "wb") as f:
        f.write(b"E2HTOKC2" + struct.pack("<I", len(texts)))
        for t, e in zip(texts, enc):
            rt = tok.decode(e.ids, skip_special_tokens=False) == t
            n_rt += rt
            f.write(struct.pack("<II", len(e.ids) << 1 | rt, fnv1a64(e.ids) & 0xFFFFFFFF))
    edge = []
    n_not_nfc = 0  # edge cases that the NFC normalizer changes
    for raw in edge_cases():
        text = raw.decode("utf-8", errors="replace")
        ids = tok.encode(text, add_special_tokens=False).ids
        dec = tok.decode(ids, skip_special_tokens=False).encode("utf-8")
        e = {"hex": raw.hex(), "ids": ids, "roundtrip": dec == text.encode("utf-8")}
        n_not_nfc += unicodedata.normalize("NFC", text) != text
        if dec != raw:
            e["decoded_hex"] = dec.hex()
        edge.append(e)
    assert n_not_nfc > 0  # the NFC normalizer of mpt/gpt-neox gets exercised
    with open(os.path.join(OUT, name + ".edge.json"), "w") as f:
        json.dump(edge, f, separators=(",", ":"))
    print(f"{name}: {len(texts)} corpus texts ({n_rt} round-trip), "
          f"{sum(len(e.ids) for e in enc)} tokens, {len(edge)} edge cases")


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


# name -> (builder, vectors to check the reference against)
REFERENCES = {
    "llama-spm": (build_spm, "llama-spm"),
    "phi-3": (build_spm, "phi-3"),
    "gpt-2": (build_bpe, "gpt-2"),
    "starcoder": (build_bpe, "starcoder"),
    "refact": (build_bpe, "refact"),
    "falcon": (build_bpe, "falcon"),
    "deepseek-llm": (build_bpe, "deepseek-llm"),
    "deepseek-coder": (build_bpe, "deepseek-coder"),
    "mpt": (build_bpe, "mpt"),
    # no pre name in this (older) GGUF; same tokens and merges as mpt's, checked on mpt's vectors
    "gpt-neox": (lambda v: build_bpe(v, "gpt-neox"), "mpt"),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared"))
    ap.add_argument("--smollm", default="/tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf",
                    help="the default model's GGUF (else the committed smollm.gguf is reused)")
    ap.add_argument("--only", default="", help="comma-separated vocabulary names")
    args = ap.parse_args()
    tdir = os.path.join(args.shared, "assets", "tokenizers")
    os.makedirs(OUT, exist_ok=True)
    only = set(filter(None, args.only.split(",")))

    # 1. the references must reproduce the real tokenizers' vectors
    built = {}
    for name, (fn, vec) in REFERENCES.items():
        if only and name not in only:
            continue
        p = os.path.join(tdir, f"ggml-vocab-{name}.gguf")
        v = read_vocab(p)
        tok = fn(v)
        vp = os.path.join(tdir, f"ggml-vocab-{vec}.gguf")
        if vec != name:
            w = read_vocab(vp)
            assert all(v[k] == w[k] for k in ("tokens", "types", "merges")), name
        bad, n = check_vectors(tok, vp + ".inp", vp + ".out")
        print(f"reference {name}: {n - bad}/{n} llama.cpp vectors of {vec} match")
        if bad or n == 0:
            sys.exit(f"reference tokenizer for {name} is wrong")
        built[name] = (v, tok)

    # 2. the default model's vocabulary: same construction as starcoder (smollm pre-tokenizer)
    if not only or "smollm" in only:
        committed = os.path.join(OUT, "smollm.gguf")
        if os.path.exists(args.smollm):
            sv = read_vocab(args.smollm)
            write_vocab_gguf(sv, committed)
        else:
            sv = read_vocab(committed)
        assert sv["pre"] == "smollm", sv["pre"]
        built["smollm"] = (sv, build_bpe(sv))

    texts = corpus_texts(args.shared)
    for name, (v, tok) in built.items():
        spm = v["model"] == "llama"
        cfg = {"add_bos_token": bool(v["add_bos"]) if v["add_bos"] is not None else spm,
               "add_eos_token": False,
               "bos_token": v["tokens"][v["bos"]] if v["bos"] is not None else None,
               "eos_token": v["tokens"][v["eos"]] if v["eos"] is not None else None}
        write_fixtures(name, tok, texts, cfg, name in ("smollm", "llama-spm"))


if __name__ == "__main__":
    main()
