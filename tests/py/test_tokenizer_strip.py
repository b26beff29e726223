"""lstrip / rstrip of added tokens read from tokenizer.json, against the Hugging Face `tokenizers`
reference on the same file (the GGUF side, Phi-3's rstrip, is in tests/test_tokenizer.c through
tests/fixtures/tokenizer/phi-3.edge.json)."""
import json
import os
import subprocess

import pytest

tokenizers = pytest.importorskip("tokenizers")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
E2H = os.environ.get("E2H_BIN", os.path.join(ROOT, os.environ.get("BUILD", "build"), "e2h"))
FIX = os.path.join(ROOT, "tests", "fixtures", "tokenizer")

TEXTS = [
    "a </s> b",
    "a  </s>\n\n b </s>",
    "x\u00a0\u3000<s>\u2009 y <s>",
    "<s></s>  </s> <s> z",
    "  <s>  ",
    "</s>",
    "end </s>\t",
    "<|im_start|> user\n hi <|im_end|> \n<|im_start|>assistant\n",
    "q <|im_end|>\u2028\u0085 r",
]


def _with_flags(src, dst, flags):
    """Copies tokenizer.json with {content: (lstrip, rstrip)} set on its added tokens."""
    j = json.load(open(src, encoding="utf-8"))
    seen = set()
    for t in j["added_tokens"]:
        if t["content"] in flags:
            t["lstrip"], t["rstrip"] = flags[t["content"]]
            seen.add(t["content"])
    assert seen == set(flags), seen
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)


def _e2h_ids(path, text):
    p = subprocess.run([E2H, "tokenize", "-m", path, "--no-bos", "--", text], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("vocab,flags", [
    ("llama-spm", {"</s>": (False, True), "<s>": (True, False)}),           # SentencePiece
    ("llama-spm", {"</s>": (True, True), "<s>": (True, True)}),
    ("smollm", {"<|im_end|>": (False, True), "<|im_start|>": (True, False)}),  # byte-level BPE
    ("smollm", {"<|im_end|>": (True, True)}),
])
def test_added_token_strip_flags_match_reference(tmp_path, vocab, flags):
    src = os.path.join(FIX, vocab, "tokenizer.json")
    dst = str(tmp_path / "tokenizer.json")
    _with_flags(src, dst, flags)
    ref = tokenizers.Tokenizer.from_file(dst)
    plain = tokenizers.Tokenizer.from_file(src)
    changed = 0
    for text in TEXTS:
        want = ref.encode(text, add_special_tokens=False).ids
        assert _e2h_ids(dst, text) == want, text
        changed += want != plain.encode(text, add_special_tokens=False).ids
    assert changed >= 2  # the flags matter for these texts: the test can fail
