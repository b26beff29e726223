// tests/test_gguf_cves.c — regression tests for the GGUF vulnerability classes found in other
// engines, each as a small crafted file: integer overflow in header/metadata size arithmetic
// (llama.cpp CVE-2025-53630 and its bypass CVE-2026-27940: counts near 2^63/2^64, array length x
// element size wrapping to a small number), tensors whose dimensions describe more bytes than the
// file holds or whose element count overflows 64 bits (CVE-2026-33298, Ollama CVE-2026-7482),
// string/array lengths past the end of the file (incl. pos + len wrapping), and tensor data
// offsets past the end or misaligned. Each must fail with a message naming the file and the
// field; through e2h_model_load it must return E2H_ERR_FORMAT. Never a crash (run under ASan).
#include <stdint.h>
#include <unistd.h>

#include "../formats/gguf.h"
#include "../include/e2h.h"
#include "gguf_writer.h"
#include "harness.h"

static char tmp_path[256];

static void write_buf(const gguf_buf *b) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/e2h_test_gguf_cves_%d.gguf", (int)getpid());
    if (gb_write_file(b, tmp_path)) perror(tmp_path); // (the checks below then fail)
}

// The crafted file must be rejected by gguf_open with a message naming the file and containing
// every needle (the field), and by e2h_model_load with E2H_ERR_FORMAT and the file named.
static void expect_reject(gguf_buf *b, const char *what, const char *needle1, const char *needle2) {
    write_buf(b);
    char err[512] = "";
    gguf_file *f = gguf_open(tmp_path, err, sizeof err);
    int ok = f == NULL && strstr(err, tmp_path) && strstr(err, needle1) &&
             (!needle2 || strstr(err, needle2));
    CHECKF(ok, "%s: want '%s'%s%s, got f=%p '%s'", what, needle1, needle2 ? " + " : "",
           needle2 ? needle2 : "", (void *)f, err);
    gguf_close(f);
    e2h_model *m = NULL;
    char merr[512] = "";
    e2h_status st = e2h_model_load(tmp_path, NULL, &m, merr, sizeof merr);
    CHECKF(st == E2H_ERR_FORMAT && m == NULL && strstr(merr, tmp_path) && strstr(merr, needle1),
           "%s: model_load status %s '%s'", what, e2h_status_name(st), merr);
    if (m) e2h_model_free(m);
    unlink(tmp_path);
    free(b->p);
    *b = (gguf_buf){0};
}

// A file that must open (positive controls: each attack is one field away from a valid file,
// so the checks are not simply rejecting everything).
static gguf_file *expect_open(gguf_buf *b) {
    write_buf(b);
    char err[512] = "";
    gguf_file *f = gguf_open(tmp_path, err, sizeof err);
    CHECKF(f != NULL, "valid control rejected: %s", err);
    unlink(tmp_path);
    free(b->p);
    *b = (gguf_buf){0};
    return f;
}

// CVE-2025-53630 class: header counts near 2^63 / 2^64 (signed conversion, count x struct size).
TEST(cve_2025_53630_header_counts) {
    const uint64_t big[] = {(1ull << 63) - 1, 1ull << 63, (1ull << 63) + 1, UINT64_MAX,
                            UINT64_MAX / 24 + 1, UINT64_MAX / sizeof(gguf_kv) + 1};
    gguf_buf b = {0};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "n_tensors=%llu", (unsigned long long)big[i]);
        gb_header(&b, big[i], 0);
        gb_pad(&b, 64);
        expect_reject(&b, what, "n_tensors", NULL);
        snprintf(what, sizeof what, "n_kv=%llu", (unsigned long long)big[i]);
        gb_header(&b, 0, big[i]);
        gb_str(&b, "k"); gb_u32(&b, GGUF_T_UINT8); gb_put(&b, "\1", 1);
        expect_reject(&b, what, "n_kv", NULL);
    }
    // one more kv than present: the reader runs out of bytes, naming the missing key
    gb_header(&b, 0, 2);
    gb_str(&b, "k"); gb_u32(&b, GGUF_T_UINT8); gb_put(&b, "\1", 1);
    expect_reject(&b, "n_kv one too many", "n_kv", NULL);
    gb_header(&b, 0, 1);
    gb_str(&b, "k"); gb_u32(&b, GGUF_T_UINT8); gb_put(&b, "\1", 1);
    gguf_file *f = expect_open(&b);
    CHECK(f && gguf_n_kv(f) == 1);
    gguf_close(f);
}

// CVE-2025-53630 / CVE-2026-27940 class: array count x element size chosen so the product wraps
// to 0 or a few bytes modulo 2^64 and would pass a naive "fits in the file" check.
TEST(cve_2026_27940_array_size_wraps) {
    struct { uint32_t type; uint64_t n; } cases[] = {
        {GGUF_T_UINT32, 1ull << 62},          // 4 * 2^62 == 2^64 -> 0
        {GGUF_T_FLOAT32, (1ull << 62) + 1},   // -> 4
        {GGUF_T_UINT64, 1ull << 61},          // 8 * 2^61 -> 0
        {GGUF_T_FLOAT64, (1ull << 61) + 1},   // -> 8
        {GGUF_T_INT16, 1ull << 63},           // 2 * 2^63 -> 0
        {GGUF_T_UINT8, UINT64_MAX},
        {GGUF_T_BOOL, 1ull << 63},
        {GGUF_T_STRING, 1ull << 61},          // 8-byte length prefixes: 8 * 2^61 -> 0
        {GGUF_T_STRING, UINT64_MAX},
    };
    gguf_buf b = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "array type %u n=%llu", cases[i].type,
                 (unsigned long long)cases[i].n);
        gb_header(&b, 0, 1);
        gb_str(&b, "tokenizer.ggml.scores");
        gb_u32(&b, GGUF_T_ARRAY); gb_u32(&b, cases[i].type); gb_u64(&b, cases[i].n);
        gb_put(&b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
        expect_reject(&b, what, "tokenizer.ggml.scores", "array");
    }
    // a string array whose count fits but whose element lengths sum past the end
    gb_header(&b, 0, 1);
    gb_str(&b, "tokenizer.ggml.tokens");
    gb_u32(&b, GGUF_T_ARRAY); gb_u32(&b, GGUF_T_STRING); gb_u64(&b, 2);
    gb_str(&b, "ab"); gb_u64(&b, 1000); gb_put(&b, "xyz", 3);
    expect_reject(&b, "string element past EOF", "tokenizer.ggml.tokens", NULL);
    // array of arrays (llama.cpp recursed on these)
    gb_header(&b, 0, 1);
    gb_str(&b, "nest");
    gb_u32(&b, GGUF_T_ARRAY); gb_u32(&b, GGUF_T_ARRAY); gb_u64(&b, 1);
    gb_u32(&b, GGUF_T_UINT8); gb_u64(&b, 1); gb_put(&b, "\1", 1);
    expect_reject(&b, "nested array", "nest", NULL);
    // control: an exact-size u32 array opens
    gb_header(&b, 0, 1);
    gb_str(&b, "tokenizer.ggml.scores");
    gb_u32(&b, GGUF_T_ARRAY); gb_u32(&b, GGUF_T_UINT32); gb_u64(&b, 4);
    gb_put(&b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    gguf_file *f = expect_open(&b);
    CHECK(f && gguf_find_kv(f, "tokenizer.ggml.scores")->arr_n == 4);
    gguf_close(f);
}

// CVE-2026-33298 / Ollama CVE-2026-7482 class: dims whose element count overflows 64 bits (to 0 or
// to a small number), or whose byte size overflows after the type size, or that simply describe
// more bytes than the file holds.
TEST(cve_2026_33298_tensor_dims) {
    gguf_buf b = {0};
    struct { int nd; uint64_t ne[4]; uint32_t type; const char *needle; } cases[] = {
        {2, {1ull << 32, 1ull << 32}, 0, "overflow"},               // product 2^64 -> 0
        {4, {1ull << 16, 1ull << 16, 1ull << 16, 1ull << 16}, 0, "overflow"},
        {3, {(1ull << 32) + 1, 1ull << 32, 2}, 0, "overflow"},      // wraps to 2^33 + ...
        {2, {3, 0x5555555555555556ull}, 0, "overflow"},             // 3 * that == 2 mod 2^64
        {1, {1ull << 62}, 0, "overflow"},                            // f32: 4 * 2^62 bytes -> 0
        {1, {1ull << 62}, 8, "past the end"},                        // q8_0: 2^57 blocks * 34 fits
        {1, {1ull << 63}, 0, "dim 0"},                               // negative as int64
        {2, {32, UINT64_MAX}, 0, "dim 1"},
        {1, {5}, 0, "past the end"},                                 // 20 bytes, file has 16
        {2, {4, 2}, 0, "past the end"},                              // 32 bytes
        {1, {64}, 8, "past the end"},                                // q8_0: 68 bytes
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "dims case %zu", i);
        gb_header(&b, 1, 0);
        gb_tensor(&b, "blk.0.attn_q.weight", cases[i].nd, cases[i].ne, cases[i].type, 0);
        gb_pad(&b, 32);
        gb_put(&b, "0123456789abcdef", 16);
        expect_reject(&b, what, "blk.0.attn_q.weight", cases[i].needle);
    }
    // a second tensor that starts inside the data and runs 1 byte past the end
    gb_header(&b, 2, 0);
    uint64_t ne4[1] = {4};
    gb_tensor(&b, "a", 1, ne4, 0, 0);
    gb_tensor(&b, "b", 1, ne4, 0, 32);
    gb_pad(&b, 32);
    { uint8_t d[32 + 15] = {0}; gb_put(&b, d, sizeof d); }
    expect_reject(&b, "second tensor 1 byte short", "'b'", "past the end");
    // control: same file with the last byte present opens, data pointers inside the mapping
    gb_header(&b, 2, 0);
    gb_tensor(&b, "a", 1, ne4, 0, 0);
    gb_tensor(&b, "b", 1, ne4, 0, 32);
    gb_pad(&b, 32);
    { uint8_t d[32 + 16] = {0}; gb_put(&b, d, sizeof d); }
    gguf_file *f = expect_open(&b);
    if (f) {
        const gguf_tensor *t = gguf_find_tensor(f, "b");
        CHECK(t && t->nbytes == 16 && ((const uint8_t *)t->data)[15] == 0);
    }
    gguf_close(f);
}

// Data offsets: past the end, wrapping (offset + nbytes == small modulo 2^64), misaligned for the
// default and a custom alignment, and a huge general.alignment.
TEST(tensor_offsets) {
    gguf_buf b = {0};
    uint64_t ne8[1] = {8}; // 32 bytes of f32
    const uint64_t offs[] = {64, 1ull << 40, UINT64_MAX - 31, UINT64_MAX - 15 - 16,
                             (1ull << 63)};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "offset %llu", (unsigned long long)offs[i]);
        gb_header(&b, 1, 0);
        gb_tensor(&b, "token_embd.weight", 1, ne8, 0, offs[i]);
        gb_pad(&b, 32);
        { uint8_t d[64] = {0}; gb_put(&b, d, sizeof d); }
        // UINT64_MAX - 47 is not 32-aligned: either message names the tensor
        expect_reject(&b, what, "token_embd.weight", NULL);
    }
    gb_header(&b, 1, 1);
    gb_str(&b, "general.alignment"); gb_u32(&b, GGUF_T_UINT32); gb_u32(&b, 64);
    gb_tensor(&b, "t", 1, ne8, 0, 32);
    gb_pad(&b, 64);
    { uint8_t d[128] = {0}; gb_put(&b, d, sizeof d); }
    expect_reject(&b, "misaligned for 64", "'t'", "alignment");
    gb_header(&b, 1, 1);
    gb_str(&b, "general.alignment"); gb_u32(&b, GGUF_T_UINT32); gb_u32(&b, 1u << 31);
    gb_tensor(&b, "t", 1, ne8, 0, 0);
    { uint8_t d[64] = {0}; gb_put(&b, d, sizeof d); }
    expect_reject(&b, "alignment 2^31 puts the data past EOF", "data section", NULL);
    gb_header(&b, 1, 1);
    gb_str(&b, "general.alignment"); gb_u32(&b, GGUF_T_UINT64); gb_u64(&b, 1ull << 40);
    gb_tensor(&b, "t", 1, ne8, 0, 0);
    { uint8_t d[64] = {0}; gb_put(&b, d, sizeof d); }
    expect_reject(&b, "64-bit alignment", "general.alignment", NULL);
    // control
    gb_header(&b, 1, 1);
    gb_str(&b, "general.alignment"); gb_u32(&b, GGUF_T_UINT32); gb_u32(&b, 64);
    gb_tensor(&b, "t", 1, ne8, 0, 64);
    gb_pad(&b, 64);
    { uint8_t d[96] = {0}; gb_put(&b, d, sizeof d); }
    gguf_file *f = expect_open(&b);
    CHECK(f && gguf_find_tensor(f, "t")->offset == 64);
    gguf_close(f);
}

// String lengths past the end of the file, including lengths where pos + len wraps to exactly 0
// or to a position inside the file.
TEST(string_lengths_past_eof) {
    gguf_buf b = {0};
    // header is 24 bytes, the key length 8 more: the key starts at 32
    const uint64_t lens[] = {9 + 40, UINT64_MAX - 31, UINT64_MAX - 31 + 8, UINT64_MAX, 1ull << 63};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "key length %llu", (unsigned long long)lens[i]);
        gb_header(&b, 0, 1);
        gb_u64(&b, lens[i]);
        gb_put(&b, "general.", 8);
        expect_reject(&b, what, "key #0", "string length");
    }
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "value length %llu", (unsigned long long)lens[i]);
        gb_header(&b, 0, 1);
        gb_str(&b, "general.architecture"); gb_u32(&b, GGUF_T_STRING);
        gb_u64(&b, lens[i] > 9 ? lens[i] : 1000);
        gb_put(&b, "llama", 5);
        expect_reject(&b, what, "general.architecture", NULL);
    }
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "tensor name length %llu", (unsigned long long)lens[i]);
        gb_header(&b, 1, 0);
        gb_u64(&b, lens[i]);
        gb_put(&b, "output.w", 8);
        { uint8_t d[40] = {0}; gb_put(&b, d, sizeof d); } // room for the rest of a tensor info
        expect_reject(&b, what, "tensor #0", NULL);
    }
    // control: exact lengths open
    gb_header(&b, 0, 1);
    gb_str(&b, "general.architecture"); gb_u32(&b, GGUF_T_STRING); gb_str(&b, "llama");
    gguf_file *f = expect_open(&b);
    gguf_str s;
    CHECK(f && gguf_get_str(f, "general.architecture", &s) == 0 && s.len == 5);
    gguf_close(f);
}

// Random byte flips over a valid file with tensors and every kv kind: nothing crashes and every
// failure names the file (a cheap in-suite cousin of tests/fuzz).
TEST(random_mutations_never_crash) {
    gguf_buf v = {0};
    gb_header(&v, 2, 4);
    gb_str(&v, "general.alignment"); gb_u32(&v, GGUF_T_UINT32); gb_u32(&v, 32);
    gb_str(&v, "a.str"); gb_u32(&v, GGUF_T_STRING); gb_str(&v, "hello");
    gb_str(&v, "a.strs"); gb_u32(&v, GGUF_T_ARRAY); gb_u32(&v, GGUF_T_STRING); gb_u64(&v, 2);
    gb_str(&v, "x"); gb_str(&v, "yz");
    gb_str(&v, "a.u32s"); gb_u32(&v, GGUF_T_ARRAY); gb_u32(&v, GGUF_T_UINT32); gb_u64(&v, 2);
    gb_u32(&v, 7); gb_u32(&v, 9);
    uint64_t ne[2] = {4, 2};
    gb_tensor(&v, "t0", 2, ne, 0, 0);
    uint64_t nq[1] = {32};
    gb_tensor(&v, "t1", 1, nq, 8, 32);
    gb_pad(&v, 32);
    { uint8_t d[32 + 34]; for (int i = 0; i < (int)sizeof d; i++) d[i] = (uint8_t)i; gb_put(&v, d, sizeof d); }
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int bad = 0, opened = 0;
    for (int it = 0; it < 3000; it++) {
        gguf_buf m = {0};
        gb_put(&m, v.p, v.n);
        int flips = 1 + (int)(rng % 4);
        for (int k = 0; k < flips; k++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            size_t at = (size_t)(rng % m.n);
            // bias toward the bytes that hold counts/lengths: set high bytes too
            m.p[at] = (uint8_t)(rng >> 32);
        }
        write_buf(&m);
        char err[512] = "";
        gguf_file *f = gguf_open(tmp_path, err, sizeof err);
        if (f) {
            opened++;
            // every accepted tensor lies in the mapping: touch its last byte
            for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
                const gguf_tensor *t = gguf_tensor_at(f, i);
                volatile uint8_t x = t->nbytes ? ((const uint8_t *)t->data)[t->nbytes - 1] : 0;
                (void)x;
            }
            const gguf_kv *kv = gguf_find_kv(f, "a.strs");
            gguf_str s;
            if (kv && kv->type == GGUF_T_ARRAY && kv->arr_type == GGUF_T_STRING)
                for (uint64_t i = 0; i < kv->arr_n && i < 4; i++)
                    if (gguf_arr_str(f, kv, i, &s) == 0 && s.len) {
                        volatile char c = s.ptr[s.len - 1];
                        (void)c;
                    }
        } else if (!strstr(err, tmp_path)) {
            if (bad++ < 3) printf("  mutation %d: '%s'\n", it, err);
        }
        gguf_close(f);
        unlink(tmp_path);
        free(m.p);
    }
    printf("  %d of 3000 mutants opened\n", opened);
    CHECK(bad == 0);
    free(v.p);
}

int main(void) {
    RUN(cve_2025_53630_header_counts);
    RUN(cve_2026_27940_array_size_wraps);
    RUN(cve_2026_33298_tensor_dims);
    RUN(tensor_offsets);
    RUN(string_lengths_past_eof);
    RUN(random_mutations_never_crash);
    return TEST_SUMMARY();
}
