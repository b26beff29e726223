// tests/test_gguf.c — the GGUF reader on hand-built files: a valid file round-trips every
// value type and tensor; every truncation, impossible count, huge length, unknown type,
// misaligned offset and overflowing shape is rejected with a message naming the field.
#include <stdint.h>
#include <unistd.h>

#include "../formats/gguf.h"
#include "gguf_writer.h"
#include "harness.h"

static char tmp_path[256];

static gguf_file *open_buf(const gguf_buf *b, char *err, size_t err_len) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/e2h_test_gguf_%d.gguf", (int)getpid());
    if (gb_write_file(b, tmp_path)) return NULL;
    gguf_file *f = gguf_open(tmp_path, err, err_len);
    unlink(tmp_path);
    return f;
}

// A valid file: 6 kvs (u32, i8, f32, bool, string, string array, f32 array) and two tensors.
static void make_valid(gguf_buf *b) {
    gb_header(b, 2, 7);
    gb_str(b, "general.alignment"); gb_u32(b, GGUF_T_UINT32); gb_u32(b, 64);
    gb_str(b, "a.i8"); gb_u32(b, GGUF_T_INT8); gb_put(b, "\xfe", 1);
    gb_str(b, "a.f32"); gb_u32(b, GGUF_T_FLOAT32); { float v = 1.5f; gb_put(b, &v, 4); }
    gb_str(b, "a.bool"); gb_u32(b, GGUF_T_BOOL); gb_put(b, "\x01", 1);
    gb_str(b, "a.str"); gb_u32(b, GGUF_T_STRING); gb_str(b, "hello");
    gb_str(b, "a.strs"); gb_u32(b, GGUF_T_ARRAY); gb_u32(b, GGUF_T_STRING); gb_u64(b, 3);
    gb_str(b, "x"); gb_str(b, ""); gb_str(b, "zz");
    gb_str(b, "a.f32s"); gb_u32(b, GGUF_T_ARRAY); gb_u32(b, GGUF_T_FLOAT32); gb_u64(b, 2);
    { float v[2] = {2.0f, -3.0f}; gb_put(b, v, 8); }
    // tensor t0: f32 (3, 2) at 0; t1: q8_0 (64) at 64
    gb_str(b, "t0"); gb_u32(b, 2); gb_u64(b, 3); gb_u64(b, 2); gb_u32(b, 0); gb_u64(b, 0);
    gb_str(b, "t1"); gb_u32(b, 1); gb_u64(b, 64); gb_u32(b, 8); gb_u64(b, 64);
    gb_pad(b, 64);
    float t0[6] = {1, 2, 3, 4, 5, 6};
    gb_put(b, t0, sizeof t0);
    gb_pad(b, 64);
    uint8_t t1[68];
    for (int i = 0; i < 68; i++) t1[i] = (uint8_t)i;
    gb_put(b, t1, sizeof t1);
}

TEST(valid_file_roundtrip) {
    gguf_buf b = {0};
    make_valid(&b);
    char err[512];
    gguf_file *f = open_buf(&b, err, sizeof err);
    CHECKF(f != NULL, "%s", err);
    if (!f) { free(b.p); return; }
    CHECK(gguf_version(f) == 3);
    CHECK(gguf_n_kv(f) == 7);
    CHECK(gguf_n_tensors(f) == 2);
    uint32_t u;
    CHECK(gguf_get_u32(f, "general.alignment", &u) == 0 && u == 64);
    int64_t i64;
    CHECK(gguf_get_i64(f, "a.i8", &i64) == 0 && i64 == -2);
    CHECK(gguf_get_u32(f, "a.i8", &u) == -1); // negative does not fit
    float fl;
    CHECK(gguf_get_f32(f, "a.f32", &fl) == 0 && fl == 1.5f);
    CHECK(gguf_get_f32(f, "a.str", &fl) == -1);
    int bo;
    CHECK(gguf_get_bool(f, "a.bool", &bo) == 0 && bo == 1);
    gguf_str s;
    CHECK(gguf_get_str(f, "a.str", &s) == 0 && s.len == 5 && memcmp(s.ptr, "hello", 5) == 0);
    CHECK(gguf_get_str(f, "missing", &s) == -1);
    const gguf_kv *kv = gguf_find_kv(f, "a.strs");
    CHECK(kv && kv->type == GGUF_T_ARRAY && kv->arr_type == GGUF_T_STRING && kv->arr_n == 3);
    CHECK(gguf_arr_str(f, kv, 2, &s) == 0 && s.len == 2 && memcmp(s.ptr, "zz", 2) == 0);
    CHECK(gguf_arr_str(f, kv, 1, &s) == 0 && s.len == 0);
    CHECK(gguf_arr_str(f, kv, 0, &s) == 0 && s.len == 1 && s.ptr[0] == 'x');
    CHECK(gguf_arr_str(f, kv, 3, &s) == -1);
    const gguf_kv *kf = gguf_find_kv(f, "a.f32s");
    CHECK(kf && kf->arr_n == 2 && kf->arr_type == GGUF_T_FLOAT32);
    if (kf) {
        float v[2];
        memcpy(v, kf->data, 8);
        CHECK(v[0] == 2.0f && v[1] == -3.0f);
    }
    CHECK(gguf_arr_str(f, kf, 0, &s) == -1); // not a string array
    const gguf_tensor *t0 = gguf_find_tensor(f, "t0");
    const gguf_tensor *t1 = gguf_find_tensor(f, "t1");
    CHECK(t0 && t0->n_dims == 2 && t0->ne[0] == 3 && t0->ne[1] == 2 && t0->nbytes == 24);
    CHECK(t1 && t1->type == 8 && t1->nbytes == 68);
    if (t0) {
        float v[6];
        memcpy(v, t0->data, 24);
        CHECK(v[0] == 1 && v[5] == 6);
        CHECK(((uintptr_t)t0->data % 64) == 0);
    }
    if (t1) CHECK(((const uint8_t *)t1->data)[67] == 67);
    CHECK(gguf_find_tensor(f, "nope") == NULL);
    CHECK(gguf_kv_at(f, 7) == NULL && gguf_kv_at(f, -1) == NULL);
    CHECK(gguf_tensor_at(f, 2) == NULL);
    gguf_close(f);
    free(b.p);
}

// Every proper prefix of the valid file must fail cleanly (never crash, message set).
TEST(every_truncation_fails) {
    gguf_buf b = {0};
    make_valid(&b);
    // the last tensor ends exactly at b.n; any shorter file cuts something
    int bad = 0;
    for (size_t n = 0; n < b.n; n++) {
        gguf_buf t = {b.p, n, n};
        char err[512] = "";
        gguf_file *f = open_buf(&t, err, sizeof err);
        if (f || err[0] == 0 || !strstr(err, tmp_path)) {
            bad++;
            if (bad < 3) printf("  prefix %zu: f=%p err='%s'\n", n, (void *)f, err);
        }
        gguf_close(f);
    }
    CHECK(bad == 0);
    free(b.p);
}

static void expect_fail(gguf_buf *b, const char *needle) {
    char err[512] = "";
    gguf_file *f = open_buf(b, err, sizeof err);
    CHECKF(f == NULL && strstr(err, needle) != NULL, "want error containing '%s', got '%s'",
           needle, err);
    gguf_close(f);
    free(b->p);
}

TEST(bad_magic_and_version) {
    gguf_buf b = {0};
    gb_put(&b, "GGUX", 4); gb_u32(&b, 3); gb_u64(&b, 0); gb_u64(&b, 0);
    expect_fail(&b, "magic");
    gguf_buf c = {0};
    gb_put(&c, "GGUF", 4); gb_u32(&c, 1); gb_u64(&c, 0); gb_u64(&c, 0);
    expect_fail(&c, "version");
    gguf_buf d = {0};
    gb_put(&d, "GGUF", 4); gb_u32(&d, 0x03000000); gb_u64(&d, 0); gb_u64(&d, 0);
    expect_fail(&d, "byte-swapped");
    char err[256] = "";
    CHECK(gguf_open("/nonexistent/x.gguf", err, sizeof err) == NULL && strstr(err, "x.gguf"));
}

TEST(empty_header_only_ok) {
    gguf_buf b = {0};
    gb_header(&b, 0, 0);
    char err[256];
    gguf_file *f = open_buf(&b, err, sizeof err);
    CHECKF(f != NULL, "%s", err);
    if (f) CHECK(gguf_n_kv(f) == 0 && gguf_n_tensors(f) == 0 && !gguf_find_kv(f, "x"));
    gguf_close(f);
    free(b.p);
}

TEST(huge_counts) {
    gguf_buf b = {0};
    gb_header(&b, 0, UINT64_MAX / 2);
    expect_fail(&b, "n_kv");
    gguf_buf c = {0};
    gb_header(&c, 1000000000ull, 0);
    expect_fail(&c, "n_tensors");
    gguf_buf d = {0};
    gb_header(&d, 0, 1);
    gb_str(&d, "arr"); gb_u32(&d, GGUF_T_ARRAY); gb_u32(&d, GGUF_T_UINT64); gb_u64(&d, UINT64_MAX / 4);
    expect_fail(&d, "arr");
    gguf_buf e = {0};
    gb_header(&e, 0, 1);
    gb_str(&e, "strs"); gb_u32(&e, GGUF_T_ARRAY); gb_u32(&e, GGUF_T_STRING); gb_u64(&e, 1ull << 40);
    gb_str(&e, "a");
    expect_fail(&e, "strs");
}

TEST(huge_string_length) {
    gguf_buf b = {0};
    gb_header(&b, 0, 1);
    gb_u64(&b, UINT64_MAX - 3); // key length
    gb_put(&b, "abcdefgh", 8);
    expect_fail(&b, "string length");
    gguf_buf c = {0};
    gb_header(&c, 0, 1);
    gb_str(&c, "k"); gb_u32(&c, GGUF_T_STRING); gb_u64(&c, 1ull << 62); gb_put(&c, "xy", 2);
    expect_fail(&c, "'k'");
}

TEST(unknown_value_types) {
    gguf_buf b = {0};
    gb_header(&b, 0, 1);
    gb_str(&b, "weird"); gb_u32(&b, 13); gb_u64(&b, 0);
    expect_fail(&b, "unknown value type");
    gguf_buf c = {0};
    gb_header(&c, 0, 1);
    gb_str(&c, "nested"); gb_u32(&c, GGUF_T_ARRAY); gb_u32(&c, GGUF_T_ARRAY); gb_u64(&c, 1);
    gb_u64(&c, 0);
    expect_fail(&c, "nested");
    gguf_buf d = {0};
    gb_header(&d, 1, 0);
    gb_str(&d, "t"); gb_u32(&d, 1); gb_u64(&d, 4); gb_u32(&d, 99); gb_u64(&d, 0);
    gb_pad(&d, 32); gb_put(&d, "0123456789abcdef", 16);
    expect_fail(&d, "unknown tensor type");
}

TEST(duplicate_key_and_tensor) {
    gguf_buf b = {0};
    gb_header(&b, 0, 2);
    gb_str(&b, "k"); gb_u32(&b, GGUF_T_UINT8); gb_put(&b, "\1", 1);
    gb_str(&b, "k"); gb_u32(&b, GGUF_T_UINT8); gb_put(&b, "\2", 1);
    expect_fail(&b, "duplicate key");
    gguf_buf c = {0};
    gb_header(&c, 2, 0);
    for (int i = 0; i < 2; i++) {
        gb_str(&c, "t"); gb_u32(&c, 1); gb_u64(&c, 1); gb_u32(&c, 0); gb_u64(&c, 0);
    }
    gb_pad(&c, 32); gb_put(&c, "abcd", 4);
    expect_fail(&c, "duplicate tensor");
}

TEST(misaligned_and_bad_alignment) {
    gguf_buf b = {0};
    gb_header(&b, 1, 0);
    gb_str(&b, "t"); gb_u32(&b, 1); gb_u64(&b, 1); gb_u32(&b, 0); gb_u64(&b, 4);
    gb_pad(&b, 32); gb_put(&b, "abcdefgh", 8);
    expect_fail(&b, "not a multiple of the alignment");
    gguf_buf c = {0};
    gb_header(&c, 0, 1);
    gb_str(&c, "general.alignment"); gb_u32(&c, GGUF_T_UINT32); gb_u32(&c, 48);
    expect_fail(&c, "general.alignment");
    gguf_buf d = {0};
    gb_header(&d, 0, 1);
    gb_str(&d, "general.alignment"); gb_u32(&d, GGUF_T_UINT32); gb_u32(&d, 0);
    expect_fail(&d, "general.alignment");
}

TEST(shape_overflow_and_past_eof) {
    gguf_buf b = {0};
    gb_header(&b, 1, 0);
    gb_str(&b, "big"); gb_u32(&b, 4);
    for (int i = 0; i < 4; i++) gb_u64(&b, 1ull << 20); // 2^80 elements
    gb_u32(&b, 0); gb_u64(&b, 0);
    gb_pad(&b, 32);
    expect_fail(&b, "overflow");
    gguf_buf c = {0};
    gb_header(&c, 1, 0);
    gb_str(&c, "neg"); gb_u32(&c, 1); gb_u64(&c, UINT64_MAX); gb_u32(&c, 0); gb_u64(&c, 0);
    expect_fail(&c, "out of range");
    gguf_buf d = {0};
    gb_header(&d, 1, 0);
    gb_str(&d, "t"); gb_u32(&d, 1); gb_u64(&d, 1024); gb_u32(&d, 0); gb_u64(&d, 0);
    gb_pad(&d, 32); gb_put(&d, "abcd", 4);
    expect_fail(&d, "past the end");
    gguf_buf e = {0};
    gb_header(&e, 1, 0);
    gb_str(&e, "t"); gb_u32(&e, 1); gb_u64(&e, 1); gb_u32(&e, 0); gb_u64(&e, 1ull << 60);
    gb_pad(&e, 32); gb_put(&e, "abcd", 4);
    expect_fail(&e, "past the end");
    gguf_buf g = {0};
    gb_header(&g, 1, 0);
    gb_str(&g, "q"); gb_u32(&g, 1); gb_u64(&g, 33); gb_u32(&g, 8); gb_u64(&g, 0);
    gb_pad(&g, 32); gb_put(&g, "abcd", 4);
    expect_fail(&g, "block size");
    gguf_buf h = {0};
    gb_header(&h, 1, 0);
    gb_str(&h, "d"); gb_u32(&h, 5); gb_u64(&h, 1);
    for (int i = 0; i < 8; i++) gb_u64(&h, 1);
    expect_fail(&h, "n_dims");
}

TEST(shared_vocab_files_open) {
    const char *sh = th_shared_dir();
    if (!sh) { printf("  skipped: ../shared absent\n"); return; }
    char p[1024], err[512];
    snprintf(p, sizeof p, "%s/assets/tokenizers/ggml-vocab-llama-spm.gguf", sh);
    gguf_file *f = gguf_open(p, err, sizeof err);
    CHECKF(f != NULL, "%s", err);
    if (!f) return;
    const gguf_kv *kv = gguf_find_kv(f, "tokenizer.ggml.tokens");
    CHECK(kv && kv->arr_n == 32000);
    gguf_str s;
    CHECK(kv && gguf_arr_str(f, kv, 3, &s) == 0 && s.len == 6 && memcmp(s.ptr, "<0x00>", 6) == 0);
    gguf_close(f);
}

int main(void) {
    RUN(valid_file_roundtrip);
    RUN(every_truncation_fails);
    RUN(bad_magic_and_version);
    RUN(empty_header_only_ok);
    RUN(huge_counts);
    RUN(huge_string_length);
    RUN(unknown_value_types);
    RUN(duplicate_key_and_tensor);
    RUN(misaligned_and_bad_alignment);
    RUN(shape_overflow_and_past_eof);
    RUN(shared_vocab_files_open);
    return TEST_SUMMARY();
}
