#!/usr/bin/env python3
"""Generates tokenizer/unicode_nfc_tables.h: the Unicode data of the NFC normalizer in
tokenizer/unicode_nfc.c (canonical combining class, full canonical decomposition, NFC
quick-check value and the canonical composition pairs), from Python's `unicodedata`.

Unicode version. The reference of the tokenizer is Hugging Face `tokenizers` (0.21.1), whose NFC
normalizer is the Rust crate unicode-normalization-alignments 0.1.12, built from Unicode 9.0.0
tables. Python 3.11's `unicodedata` is Unicode 14.0.0. Normalization data of a character never
changes once it is assigned (Unicode stability policy), so Unicode 9.0.0 NFC is Unicode 14.0.0
NFC with every character assigned after 9.0.0 treated as unassigned (combining class 0, no
decomposition, composes with nothing). The ages come from Perl's Unicode database
(`\\p{Present_In: 9.0}`), which must be the same Unicode version as Python's; the tables are
thus exactly Unicode 9.0.0, like the reference. Caveat: this differs from Python's
unicodedata.normalize("NFC", ...) (14.0.0) only on text holding one of the ~60 characters of
Unicode 10.0-14.0 with normalization data (for instance U+1DF6..U+1DF8, U+0898..U+089F,
U+11938): there e2h follows the reference. `--unicode 14` generates the Python version instead.

Layout (two-stage lookup): stage1[cp >> SHIFT] is a block number (0, all zero, past the end), stage2[block << SHIFT | (cp &
MASK)] a record number, records[r] packs ccc (bits 0-7), quick check (bits 8-9: 0 yes, 1 no,
2 maybe), decomposition length (bits 10-12) and offset into decomp[] (bits 13-31). Hangul
syllables are left to the algorithm (unicodedata has no mapping for them either).

It also writes tests/fixtures/tokenizer/nfc.json, the unit-test cases of the normalizer:
{"hex": input bytes, "nfc": expected output bytes} with the expected output from Python's
unicodedata.normalize("NFC", ...), invalid UTF-8 bytes passed through as
errors="surrogateescape" does (each invalid byte a blocking character). Every case is also
checked against Hugging Face `tokenizers`' NFC normalizer; the few cases about characters newer
than Unicode 9.0.0 expect the reference's result and carry "python" (Python's differing one).

Usage: python3 tools/gen_unicode_nfc.py [--unicode 9|14] [--out tokenizer/unicode_nfc_tables.h]
       [--fixture tests/fixtures/tokenizer/nfc.json]
"""
import json
import random
import argparse
import os
import subprocess
import sys
import unicodedata as ud

HERE = os.path.dirname(os.path.abspath(__file__))
SHIFT = 7
MAX_CP = 0x110000
S_BASE, S_COUNT = 0xAC00, 11172


def is_hangul_syllable(cp):
    return S_BASE <= cp < S_BASE + S_COUNT


def canonical_mapping(cp):
    """One-level canonical decomposition, or None (none or compatibility)."""
    d = ud.decomposition(chr(cp))
    if not d or d.startswith("<"):
        return None
    return [int(x, 16) for x in d.split()]


def candidates():
    """Code points with any normalization data in Python's Unicode version."""
    out = []
    for cp in range(MAX_CP):
        if 0xD800 <= cp < 0xE000 or is_hangul_syllable(cp):
            continue
        if ud.combining(chr(cp)) or canonical_mapping(cp):
            out.append(cp)
    return out


def absent_in(cps, version):
    """The code points of cps that were not assigned in Unicode `version` (via Perl)."""
    script = (r'use Unicode::UCD; print Unicode::UCD::UnicodeVersion(), "\n";'
              r'while (<STDIN>) { chomp; my $c = hex $_; '
              r'print "$_\n" unless chr($c) =~ /\p{Present_In: ' + version + r'}/ }')
    res = subprocess.run(["perl", "-e", script], input="\n".join("%X" % c for c in cps),
                         capture_output=True, text=True, check=True)
    lines = res.stdout.split()
    if lines[0] != ud.unidata_version:
        sys.exit(f"Perl's Unicode {lines[0]} != Python's {ud.unidata_version}")
    return {int(x, 16) for x in lines[1:]}


def build(older):
    """older: "9.0" to drop the characters assigned after it, None to keep Python's version."""
    cands = candidates()
    absent = absent_in(cands, older) if older else set()
    # a character absent from the target version has no data, and neither can anything
    # mapping to it (stability: an older character never maps to a newer one)
    ccc = {}
    mapping = {}
    for cp in cands:
        if cp in absent:
            continue
        if ud.combining(chr(cp)):
            ccc[cp] = ud.combining(chr(cp))
        m = canonical_mapping(cp)
        if m:
            assert not any(x in absent for x in m), hex(cp)
            mapping[cp] = m

    def full(cp):
        m = mapping.get(cp)
        if not m:
            return [cp]
        return [y for x in m for y in full(x)]

    decomp = {cp: full(cp) for cp in mapping}
    # primary composites: two-character mapping and not fully excluded from composition
    # (NFC of the character alone is itself exactly when it is not excluded)
    pairs = {}
    for cp, m in mapping.items():
        if len(m) == 2 and ud.normalize("NFC", chr(cp)) == chr(cp):
            pairs[(m[0], m[1])] = cp
    qc = {}
    for cp in mapping:
        if ud.normalize("NFC", chr(cp)) != chr(cp):
            qc[cp] = 1  # NO: never in NFC text
    for (_, b) in pairs:
        qc.setdefault(b, 2)  # MAYBE: may compose with what precedes it
    for cp in list(range(0x1161, 0x1176)) + list(range(0x11A8, 0x11C3)):
        qc.setdefault(cp, 2)  # Hangul V and T jamo compose algorithmically
    return ccc, decomp, pairs, qc


def emit(ccc, decomp, pairs, qc, version, path):
    flat = []
    rec_index = {0: 0}
    records = [0]
    per_cp = [0] * MAX_CP
    max_len = 0
    for cp in range(MAX_CP):
        c, q, d = ccc.get(cp, 0), qc.get(cp, 0), decomp.get(cp)
        if not (c or q or d):
            continue
        off, n = 0, 0
        if d:
            n = len(d)
            enc = len(chr(cp).encode("utf-8"))
            assert n <= 2 * enc, hex(cp)  # the C side sizes its buffer on this
            max_len = max(max_len, n)
            off = len(flat)
            flat += d
        assert n < 8 and off < (1 << 19)
        r = c | q << 8 | n << 10 | off << 13
        if r not in rec_index:
            rec_index[r] = len(records)
            records.append(r)
        per_cp[cp] = rec_index[r]
    assert len(records) < 65536
    blocks, stage1, bidx = [], [], {}
    size = 1 << SHIFT
    for b in range(MAX_CP >> SHIFT):
        blk = tuple(per_cp[b * size:(b + 1) * size])
        if blk not in bidx:
            bidx[blk] = len(blocks)
            blocks.append(blk)
        stage1.append(bidx[blk])
    while stage1 and stage1[-1] == 0:  # past the last block with data: block 0 (no data)
        stage1.pop()
    comp = sorted((a << 21 | b, c) for (a, b), c in pairs.items())

    def rows(vals, per_line, fmt):
        return "\n".join("    " + ", ".join(fmt % v for v in vals[i:i + per_line]) + ","
                         for i in range(0, len(vals), per_line))

    s2 = [v for blk in blocks for v in blk]
    with open(path, "w") as f:
        f.write(f"""// tokenizer/unicode_nfc_tables.h — GENERATED by tools/gen_unicode_nfc.py, do not edit.
// Unicode {version} normalization data (from Python {sys.version.split()[0]} unicodedata
// {ud.unidata_version}{', characters assigned after ' + version + ' removed' if version != ud.unidata_version else ''}).
// Included by tokenizer/unicode_nfc.c only. See the generator for the layout.
#define NFC_UNICODE_VERSION "{version}"
#define NFC_SHIFT {SHIFT}
#define NFC_MAX_DECOMP {max_len}
#define NFC_N_PAIRS {len(comp)}

static const uint16_t nfc_stage1[{len(stage1)}] = {{
{rows(stage1, 24, "%d")}
}};

static const uint16_t nfc_stage2[{len(s2)}] = {{
{rows(s2, 24, "%d")}
}};

static const uint32_t nfc_records[{len(records)}] = {{
{rows(records, 8, "0x%x")}
}};

static const uint32_t nfc_decomp[{len(flat)}] = {{
{rows(flat, 12, "0x%x")}
}};

// (first << 21 | second) -> primary composite, sorted by key
static const uint64_t nfc_pair_keys[{len(comp)}] = {{
{rows([k for k, _ in comp], 6, "0x%xull")}
}};
static const uint32_t nfc_pair_vals[{len(comp)}] = {{
{rows([v for _, v in comp], 12, "0x%x")}
}};
""")
    print(f"{path}: Unicode {version}: {len(stage1)} stage1, {len(blocks)} blocks, "
          f"{len(records)} records, {len(flat)} decomposition code points, {len(comp)} pairs, "
          f"{os.path.getsize(path)} bytes")


def fixture_cases():
    c = []
    # Hangul: precomposed syllables stay; L+V, L+V+T and LV+T compose; old jamo do not
    c += ["\uD55C\uAD6D\uC5B4", "\u1112\u1161\u11AB", "\u1100\u1161", "\uAC00\u11A8",
          "\u1100\u1161\u11A7", "\u115F\u1161", "\u1100\u1176", "\u11AB\u1161\u1100",
          "\uD55C\u11AB", "\u1100\u0301\u1161", "x\u1161\u11A8"]
    # combining sequences that need reordering, blocked and unblocked composition
    c += ["a\u0301\u0316", "a\u0316\u0301", "q\u0307\u0323", "e\u0327\u0306",
          "\u1E0B\u0323", "\u1E0D\u0307", "A\u030A\u0301", "o\u0308\u0304\u0301",
          "a\u0334\u0301", "a\u0301\u0301", "a\u0305\u0301", "\u0301a", "\u0301\u0316",
          "a\u05B0\u05B1\u0591", "\u0B47\u0B3E", "\u0B47\u0301\u0B3E", "\u0DD9\u0DCF\u0DCA",
          "\u00E9\u0316", "\u01D5\u0323", "i\u0307\u0328", "\u03B1\u0313\u0300\u0345",
          "\u1F82", "\u0345\u0313\u03B1", "cafe\u0301 A\u030A \u1112\u1161\u11AB \u212B e\u0327\u0306"]
    # composition exclusions, singletons, non-starter decompositions
    c += ["\u0958", "\u0915\u093C", "\uFB2C", "\u05E9\u05BC\u05C1", "\u2ADC", "\u2ADD\u0338",
          "\u0F73", "\u0F71\u0F72", "\u212B", "\u2126", "\u212A", "\u0340", "\u0341",
          "\u0343", "\u0374", "\u037E", "\u0387", "\u0344", "a\u0344", "\u1FEE", "\u2000",
          "\uF900", "\u2F800", "\U0001D15E", "\U0001D160", "\U0001D15F\U0001D16E",
          "\u0CCA", "\u0CC6\u0CC2\u0CD5", "\U000110AB", "\U00011099\U000110BA"]
    # already NFC, ASCII, compatibility characters NFC leaves alone
    c += ["", "plain ascii", "caf\u00E9 na\u00EFve \u00C5ngstr\u00F6m", "\uFB01 \u2460 x\u00B2 \uFF21",
          "\u65E5\u672C\u8A9E \U0001F999 \u0639\u0631\u0628\u064A",
          "\u0915\u094D\u0937", "\u00C0" * 40]
    # long runs of non-starters in reverse class order (the counting-sort path)
    c += ["a" + "\u0301\u0316\u0334" * 40 + "b", "\u0345" * 33 + "\u0334" * 33,
          "e" + "".join(chr(0x0300 + k % 0x30) for k in range(120))]
    # characters with normalization data newer than Unicode 9.0.0 (HF keeps Unicode 9)
    c += ["a\u1DF8\u0316", "\U00011935\U00011930", "x\u0898\u0301\u0316"]
    rng = random.Random(15)
    pool = ([0x41, 0x61, 0x65, 0x20, 0x1100, 0x1161, 0x11A8, 0xAC00, 0x0B47, 0x0B3E, 0x03B1,
             0x212B, 0x0958, 0x0344, 0x00E9, 0x1E0B]
            + [cp for cp in range(0x0300, 0x0370)] + [0x0591, 0x05B0, 0x0323, 0x0345])
    for _ in range(300):
        c.append("".join(chr(rng.choice(pool)) for _ in range(rng.randint(1, 12))))
    cases = [x.encode("utf-8") for x in c]
    # invalid UTF-8: bytes pass through, each blocking reordering and composition
    cases += [b"\xff", b"a\xff\xcc\x81", b"e\xcc", b"e\xcc\x81\xcc", b"a\xcc\x96\x80\xcc\x81",
              b"\xe1\x84\x92\xe1\x85", b"\xe1\x84\x92\xff\xe1\x85\xa1", b"\xed\xa0\x80\xcc\x81",
              b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xf0\x9f\xa6", b"A\xcc\x8a\xe2\x84"]
    return cases


def write_fixture(path):
    from tokenizers import normalizers
    hf = normalizers.NFC()
    out, n_version = [], 0
    for raw in fixture_cases():
        text = raw.decode("utf-8", errors="surrogateescape")
        py = ud.normalize("NFC", text)
        e = {"hex": raw.hex(), "nfc": py.encode("utf-8", errors="surrogateescape").hex()}
        if text.isascii() or text == raw.decode("utf-8", errors="replace"):  # valid UTF-8
            ref = hf.normalize_str(text)
            if ref != py:
                e["nfc"] = ref.encode("utf-8").hex()
                e["python"] = py.encode("utf-8").hex()
                n_version += 1
        out.append(e)
    assert n_version == 3, n_version  # only the three newer-than-9.0 cases differ
    with open(path, "w") as f:  # one case a line
        f.write("[\n" + ",\n".join(json.dumps(e, separators=(",", ":")) for e in out) + "\n]\n")
    print(f"{path}: {len(out)} cases ({n_version} where Unicode {ud.unidata_version} differs)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unicode", choices=("9", "14"), default="9",
                    help="9: the version of the Hugging Face reference (default); 14: Python's")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tokenizer", "unicode_nfc_tables.h"))
    ap.add_argument("--fixture", default=os.path.join(HERE, "..", "tests", "fixtures", "tokenizer",
                                                      "nfc.json"))
    args = ap.parse_args()
    version = "9.0.0" if args.unicode == "9" else ud.unidata_version
    if args.unicode == "14" and ud.unidata_version != "14.0.0":
        sys.exit(f"Python's unicodedata is {ud.unidata_version}, not 14.0.0")
    emit(*build("9.0" if args.unicode == "9" else None), version, args.out)
    if args.unicode == "9":
        write_fixture(args.fixture)


if __name__ == "__main__":
    main()
