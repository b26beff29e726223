#!/usr/bin/env python3
"""Write quant fixtures for tests/test_kernels_quant.c from the Python `gguf` package (an
independent implementation of the GGUF block layouts).

tests/fixtures/quant/deq_<type>.bin  random blocks (including extremes: max/min/subnormal
    half scales, negative scales, all-0 / all-15 nibbles) and gguf.quants.dequantize output.
    Layout: b"E2HD", u32 ggml type, u32 n_blocks, u32 block_bytes, u32 block_elems,
            blocks (n_blocks*block_bytes bytes), f32 values (n_blocks*block_elems).
tests/fixtures/quant/q_<type>.bin    random f32 rows and gguf.quants.quantize output (the
    types the package can quantize: q4_0 q4_1 q5_0 q5_1 q8_0).
    Layout: b"E2HQ", u32 ggml type, u32 n (elements), u32 n_bytes, f32 input[n], bytes.

Usage: python3 tools/make_quant_fixtures.py [--out tests/fixtures/quant]   (gguf==0.17.1)
"""
import argparse
import os
import struct

import numpy as np
from gguf import quants
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T

DEQ_TYPES = {"q4_0": T.Q4_0, "q4_1": T.Q4_1, "q5_0": T.Q5_0, "q5_1": T.Q5_1, "q8_0": T.Q8_0,
             "q4_k": T.Q4_K, "q5_k": T.Q5_K, "q6_k": T.Q6_K}
QUANT_TYPES = {"q4_0": T.Q4_0, "q4_1": T.Q4_1, "q5_0": T.Q5_0, "q5_1": T.Q5_1, "q8_0": T.Q8_0}

# byte offsets of the f16 fields of each block type
HALF_FIELDS = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
               T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}
EXTREME_HALVES = [0x7BFF, 0xFBFF, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0000, 0x8000, 0x3C00, 0x0400]


def random_blocks(rng, qtype, n_blocks):
    _, bsize = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, bsize), dtype=np.uint8)
    for row in range(n_blocks):
        for off in HALF_FIELDS[qtype]:
            if row < len(EXTREME_HALVES):
                h = EXTREME_HALVES[(row + off) % len(EXTREME_HALVES)]
            else:  # a random finite half of moderate size, either sign
                h = int(np.float16(rng.normal() * 0.05).view(np.uint16))
            raw[row, off:off + 2] = np.frombuffer(struct.pack("<H", h), dtype=np.uint8)
    # structural extremes: every quant byte 0x00, then 0xFF (all nibbles 0 / 15, all high bits)
    hf = set()
    for off in HALF_FIELDS[qtype]:
        hf.update((off, off + 1))
    data_cols = [c for c in range(bsize) if c not in hf]
    raw[len(EXTREME_HALVES), data_cols] = 0x00
    raw[len(EXTREME_HALVES) + 1, data_cols] = 0xFF
    return raw


def write_deq(path, qtype, raw):
    bel, bsize = GGML_QUANT_SIZES[qtype]
    vals = quants.dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
    assert vals.size == raw.shape[0] * bel
    with open(path, "wb") as f:
        f.write(b"E2HD" + struct.pack("<4I", int(qtype), raw.shape[0], bsize, bel))
        f.write(raw.tobytes())
        f.write(vals.astype("<f4").tobytes())


def quant_input(rng, n):
    x = (rng.normal(size=n) * np.repeat(rng.uniform(0.01, 3.0, size=n // 32), 32)).astype(np.float32)
    x[0:32] = 0.0                      # all-zero block
    x[32:64] = 0.75                    # constant block
    x[64:96] = rng.normal(size=32).astype(np.float32) * 1e-3
    x[70] = 1000.0                     # one outlier
    x[96:128] = -np.abs(x[96:128])     # all negative
    return x


def write_quant(path, qtype, x):
    q = quants.quantize(x.reshape(1, -1), qtype).reshape(-1)
    with open(path, "wb") as f:
        f.write(b"E2HQ" + struct.pack("<3I", int(qtype), x.size, q.size))
        f.write(x.astype("<f4").tobytes())
        f.write(q.tobytes())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/quant")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(20240604)
    for name, qt in DEQ_TYPES.items():
        n_blocks = 16 if GGML_QUANT_SIZES[qt][0] == 256 else 64
        write_deq(os.path.join(args.out, f"deq_{name}.bin"), qt, random_blocks(rng, qt, n_blocks))
    for name, qt in QUANT_TYPES.items():
        write_quant(os.path.join(args.out, f"q_{name}.bin"), qt, quant_input(rng, 32 * 96))
    print("wrote fixtures to", args.out)


if __name__ == "__main__":
    main()
