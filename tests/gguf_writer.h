// tests/gguf_writer.h — a tiny in-memory GGUF writer for the tests that craft GGUF files byte by
// byte (test_gguf.c, test_gguf_cves.c, test_gguf_model.c). It writes exactly what it is told,
// malformed or not (the tests decide what is wrong with a file), little-endian as on the hosts
// we run on. Header-only (static inline): each test program is one .c file.
#ifndef E2H_TESTS_GGUF_WRITER_H
#define E2H_TESTS_GGUF_WRITER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *p;
    size_t n, cap;
} gguf_buf;

static inline void gb_put(gguf_buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort(); // a test's own buffer: nothing to recover
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static inline void gb_u32(gguf_buf *b, uint32_t v) { gb_put(b, &v, 4); }
static inline void gb_u64(gguf_buf *b, uint64_t v) { gb_put(b, &v, 8); }
// A GGUF string: u64 length, then the bytes (no NUL).
static inline void gb_str(gguf_buf *b, const char *s) {
    gb_u64(b, strlen(s));
    gb_put(b, s, strlen(s));
}
// Zero bytes up to a multiple of align.
static inline void gb_pad(gguf_buf *b, size_t align) {
    while (b->n % align) gb_put(b, "\0", 1);
}
// Magic, version 3, tensor and key-value counts.
static inline void gb_header(gguf_buf *b, uint64_t n_tensors, uint64_t n_kv) {
    gb_put(b, "GGUF", 4);
    gb_u32(b, 3);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}
// One tensor info: name, dims, type, offset.
static inline void gb_tensor(gguf_buf *b, const char *name, int nd, const uint64_t *ne,
                             uint32_t type, uint64_t off) {
    gb_str(b, name);
    gb_u32(b, (uint32_t)nd);
    for (int i = 0; i < nd; i++) gb_u64(b, ne[i]);
    gb_u32(b, type);
    gb_u64(b, off);
}
// Writes the buffer to path. Returns 0, or -1 (with errno) if the file cannot be written.
static inline int gb_write_file(const gguf_buf *b, const char *path) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    int bad = b->n && fwrite(b->p, 1, b->n, fp) != b->n;
    return fclose(fp) || bad ? -1 : 0;
}

#endif
