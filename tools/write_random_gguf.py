#!/usr/bin/env python3
"""tools/write_random_gguf.py — write a random-weight Llama-architecture GGUF for benchmarks.

Speed benchmarks only need a file with the right shapes and types, not trained weights, so this
writes random quantization blocks directly (random int8 / nibbles with an f16 scale chosen so
the weights are about N(0, 0.02)) instead of quantizing float matrices, which would take hours
for 7B in numpy. Tensors are generated and written one at a time: memory stays at the size of
the largest tensor, whatever the model size.

The tokenizer (every tokenizer.* key) is copied from a real GGUF so llama.cpp accepts the file
and both engines tokenize the same way.

    python3 tools/write_random_gguf.py --preset llama2-7b --type q4_0      # -> /work/models/
    python3 tools/write_random_gguf.py --preset llama2-7b --type q8_0
    python3 tools/write_random_gguf.py --preset smollm2-135m --type q4_1
    python3 tools/write_random_gguf.py --preset llama2-7b --type q4_0 --layers 2 -o /tmp/x.gguf

Every 2-D weight (token_embd and output included) uses --type, so bytes read per decoded token
are easy to account for (bench/vs_llamacpp.py does this from the file itself); norms are f32
ones.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as QT
    from gguf import GGUFValueType as VT
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("write_random_gguf: needs the `gguf` Python package (pip install gguf)")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
WEIGHT_STD = 0.02


@dataclass(frozen=True)
class Shape:
    """Hyper-parameters of a Llama-architecture model."""
    name: str
    dim: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    ctx: int
    tied: bool
    rope_base: float
    rms_eps: float
    vocab_from: Path  # GGUF whose tokenizer.* keys are copied (must have `vocab` tokens)


PRESETS = {
    "llama2-7b": Shape("random-llama2-7b", 4096, 32, 32, 32, 11008, 32000, 4096, False,
                       10000.0, 1e-5,
                       SHARED / "assets/tokenizers/ggml-vocab-llama-spm.gguf"),
    "smollm2-135m": Shape("random-smollm2-135m", 576, 30, 9, 3, 1536, 49152, 8192, True,
                          100000.0, 1e-5,
                          REPO / "weights/SmolLM2-135M-Instruct.Q4_1.gguf"),
}

# type name -> (ggml type, general.file_type (llama_ftype), block elements, block bytes)
TYPES = {
    "q4_0": (QT.Q4_0, 2, 32, 18),
    "q4_1": (QT.Q4_1, 3, 32, 20),
    "q8_0": (QT.Q8_0, 7, 32, 34),
}


def random_blocks(rng: np.random.Generator, qtype: str, n_blocks: int) -> np.ndarray:
    """Random quant blocks, (n_blocks, block_bytes) uint8, with values ~ N(0, WEIGHT_STD)-sized.

    The quants are uniform random bytes; only the scale fields are overwritten. Uniform int8
    has std ~73.9 and uniform nibbles minus 8 std ~4.61, which fixes d. Each block's d gets a
    random factor in [0.5, 1.5) so blocks are not identical.
    """
    _, _, _, bb = TYPES[qtype]
    blocks = np.frombuffer(rng.bytes(n_blocks * bb), dtype=np.uint8).reshape(n_blocks, bb).copy()
    q_std = 73.9 if qtype == "q8_0" else 4.61
    d = (WEIGHT_STD / q_std) * rng.uniform(0.5, 1.5, n_blocks).astype(np.float32)
    blocks[:, 0:2] = d.astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
    if qtype == "q4_1":
        # value = q * d + m with q in 0..15 (mean 7.5): m = -7.5 d centres the weights on zero
        blocks[:, 2:4] = (-7.5 * d).astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
    return blocks


def tensor_plan(s: Shape, qtype: str) -> list[tuple[str, tuple[int, int] | tuple[int], str]]:
    """(name, (rows, cols) in numpy order = (ne1, ne0), kind) for every tensor, in file order."""
    hd = s.dim // s.heads
    kv = s.kv_heads * hd
    plan: list = [("token_embd.weight", (s.vocab, s.dim), qtype)]
    for i in range(s.layers):
        b = f"blk.{i}."
        plan += [
            (b + "attn_norm.weight", (s.dim,), "f32"),
            (b + "attn_q.weight", (s.dim, s.dim), qtype),
            (b + "attn_k.weight", (kv, s.dim), qtype),
            (b + "attn_v.weight", (kv, s.dim), qtype),
            (b + "attn_output.weight", (s.dim, s.dim), qtype),
            (b + "ffn_norm.weight", (s.dim,), "f32"),
            (b + "ffn_gate.weight", (s.ffn, s.dim), qtype),
            (b + "ffn_up.weight", (s.ffn, s.dim), qtype),
            (b + "ffn_down.weight", (s.dim, s.ffn), qtype),
        ]
    plan.append(("output_norm.weight", (s.dim,), "f32"))
    if not s.tied:
        plan.append(("output.weight", (s.vocab, s.dim), qtype))
    return plan


def check_shape(s: Shape, qtype: str) -> None:
    _, _, be, _ = TYPES[qtype]
    problems = []
    if s.dim % s.heads:
        problems.append(f"dim {s.dim} is not a multiple of heads {s.heads}")
    if s.heads % s.kv_heads:
        problems.append(f"heads {s.heads} is not a multiple of kv_heads {s.kv_heads}")
    for what, n in (("dim", s.dim), ("ffn", s.ffn)):
        if n % be:
            problems.append(f"{what} {n} is not a multiple of the {qtype} block size {be}")
    if problems:
        sys.exit("write_random_gguf: impossible shape: " + "; ".join(problems))


def copy_tokenizer(w: gguf.GGUFWriter, src: Path, vocab: int) -> None:
    """Copies every tokenizer.* key of src, byte for byte (strings stay raw bytes)."""
    if not src.is_file():
        sys.exit(f"write_random_gguf: {src}: tokenizer source not found (use --vocab-from)")
    r = gguf.GGUFReader(src)
    tokens = r.fields.get("tokenizer.ggml.tokens")
    if tokens is None:
        sys.exit(f"write_random_gguf: {src}: field tokenizer.ggml.tokens missing")
    if len(tokens.data) != vocab:
        sys.exit(f"write_random_gguf: {src}: field tokenizer.ggml.tokens has {len(tokens.data)} "
                 f"tokens but the model vocab is {vocab} (pass --vocab {len(tokens.data)})")
    for key, f in r.fields.items():
        if not key.startswith("tokenizer."):
            continue
        main = f.types[0]
        if main == VT.ARRAY:
            sub = f.types[-1]
            if sub == VT.STRING:
                val = [bytes(f.parts[i]) for i in f.data]
            else:
                val = [f.parts[i][0].item() for i in f.data]
            w.add_key_value(key, val, VT.ARRAY, sub_type=sub)
        elif main == VT.STRING:
            w.add_key_value(key, bytes(f.parts[f.data[0]]), VT.STRING)
        else:
            w.add_key_value(key, f.parts[f.data[0]][0].item(), main)


def write_model(s: Shape, qtype: str, out: Path, seed: int) -> None:
    check_shape(s, qtype)
    ggml_type, ftype, be, bb = TYPES[qtype]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")  # a crash never leaves a truncated file at `out`
    w = gguf.GGUFWriter(tmp, "llama")
    w.add_name(f"{s.name}-{qtype}")
    w.add_context_length(s.ctx)
    w.add_embedding_length(s.dim)
    w.add_block_count(s.layers)
    w.add_feed_forward_length(s.ffn)
    w.add_head_count(s.heads)
    w.add_head_count_kv(s.kv_heads)
    w.add_rope_dimension_count(s.dim // s.heads)
    w.add_rope_freq_base(s.rope_base)
    w.add_layer_norm_rms_eps(s.rms_eps)
    w.add_vocab_size(s.vocab)
    w.add_file_type(ftype)
    w.add_quantization_version(2)
    copy_tokenizer(w, s.vocab_from, s.vocab)

    plan = tensor_plan(s, qtype)
    for name, shape, kind in plan:
        if kind == "f32":
            w.add_tensor_info(name, shape, np.dtype(np.float32), shape[0] * 4)
        else:
            rows, cols = shape
            nbytes = rows * (cols // be) * bb
            w.add_tensor_info(name, (rows, cols // be * bb), np.dtype(np.uint8), nbytes,
                              raw_dtype=ggml_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()

    rng = np.random.default_rng(seed)
    t0, written = time.time(), 0
    for name, shape, kind in plan:
        if kind == "f32":
            data = np.ones(shape, dtype=np.float32)
        else:
            rows, cols = shape
            data = random_blocks(rng, qtype, rows * (cols // be)).reshape(rows, cols // be * bb)
        w.write_tensor_data(data)
        written += data.nbytes
    w.close()
    os.replace(tmp, out)
    print(f"wrote {out}: {len(plan)} tensors, {written / 1e9:.2f} GB of weights, "
          f"{time.time() - t0:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), required=True)
    ap.add_argument("--type", choices=sorted(TYPES), required=True)
    ap.add_argument("-o", "--out", type=Path,
                    help="output file (default /work/models/random-<preset>-<type>.gguf)")
    ap.add_argument("--seed", type=int, default=1234)
    for k in ("dim", "layers", "heads", "kv_heads", "ffn", "vocab", "ctx"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, help=f"override the preset's {k}")
    ap.add_argument("--vocab-from", type=Path, help="GGUF to copy tokenizer.* keys from")
    a = ap.parse_args(argv)

    s = PRESETS[a.preset]
    over = {k: getattr(a, k) for k in ("dim", "layers", "heads", "kv_heads", "ffn", "vocab",
                                        "ctx", "vocab_from") if getattr(a, k) is not None}
    for k, v in over.items():
        if k != "vocab_from" and v <= 0:
            ap.error(f"--{k.replace('_', '-')} must be positive")
    s = replace(s, **over)
    out = a.out or Path("/work/models") / f"random-{a.preset}-{a.type}.gguf"
    write_model(s, a.type, out, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
