// formats/gguf.c — GGUF v2/v3 reader. The file is mmapped read-only; every count, length,
// offset and size is checked against the bytes that remain before it is used, so a
// truncated or hostile file yields an error naming the file and field, never a wild read.
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

struct gguf_file {
    const uint8_t *map;
    size_t size;
    uint32_t version;
    int64_t n_kv;
    gguf_kv *kvs;          // (n_kv)
    uint64_t **str_offs;   // (n_kv) per string-array kv: offset of each element's length
    int64_t n_tensors;
    gguf_tensor *tensors;  // (n_tensors)
    uint64_t alignment;
    uint64_t data_off;     // start of the tensor data section
};

// A bounds-checked reader over the mapping. Every read reports the field it was reading.
typedef struct {
    const uint8_t *base;
    size_t size;
    size_t pos;
    const char *path;
    char *err;
    size_t err_len;
    int failed;
} gguf_cursor;

static void cur_fail(gguf_cursor *c, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = 1;
    if (!c->err || !c->err_len) return;
    int n = snprintf(c->err, c->err_len, "%s: ", c->path);
    if (n < 0 || (size_t)n >= c->err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->err_len - (size_t)n, fmt, ap);
    va_end(ap);
}

static size_t cur_left(const gguf_cursor *c) { return c->size - c->pos; }

static int cur_read(gguf_cursor *c, void *dst, size_t n, const char *field) {
    if (c->failed) return -1;
    if (n > cur_left(c)) {
        cur_fail(c, "truncated file: %s needs %zu bytes at offset %zu, only %zu left", field, n,
                  c->pos, cur_left(c));
        return -1;
    }
    memcpy(dst, c->base + c->pos, n); // memcpy: fields are not aligned in the file
    c->pos += n;
    return 0;
}

static int cur_u32(gguf_cursor *c, uint32_t *v, const char *field) {
    return cur_read(c, v, 4, field);
}
static int cur_u64(gguf_cursor *c, uint64_t *v, const char *field) {
    return cur_read(c, v, 8, field);
}

static int cur_str(gguf_cursor *c, gguf_str *s, const char *field) {
    uint64_t len;
    if (cur_u64(c, &len, field) != 0) return -1;
    if (len > cur_left(c)) {
        cur_fail(c, "%s: string length %llu at offset %zu exceeds the %zu bytes left", field,
                 (unsigned long long)len, c->pos - 8, cur_left(c));
        return -1;
    }
    s->ptr = (const char *)(c->base + c->pos);
    s->len = len;
    c->pos += len;
    return 0;
}

// Size of one scalar value of a GGUF type; 0 for string/array/unknown.
static size_t gguf_scalar_size(int type) {
    switch (type) {
    case GGUF_T_UINT8: case GGUF_T_INT8: case GGUF_T_BOOL: return 1;
    case GGUF_T_UINT16: case GGUF_T_INT16: return 2;
    case GGUF_T_UINT32: case GGUF_T_INT32: case GGUF_T_FLOAT32: return 4;
    case GGUF_T_UINT64: case GGUF_T_INT64: case GGUF_T_FLOAT64: return 8;
    default: return 0;
    }
}

// ggml tensor type sizes: (elements per block, bytes per block). Kept here so the reader
// validates sizes without depending on which kernels exist.
typedef struct { int blck; int size; } gguf_type_size;
static gguf_type_size gguf_tensor_type_size(int type) {
    static const gguf_type_size t[] = {
        [0] = {1, 4},      [1] = {1, 2},      [2] = {32, 18},    [3] = {32, 20},
        [6] = {32, 22},    [7] = {32, 24},    [8] = {32, 34},    [9] = {32, 36},
        [10] = {256, 84},  [11] = {256, 110}, [12] = {256, 144}, [13] = {256, 176},
        [14] = {256, 210}, [15] = {256, 292}, [16] = {256, 66},  [17] = {256, 74},
        [18] = {256, 98},  [19] = {256, 50},  [20] = {32, 18},   [21] = {256, 110},
        [22] = {256, 82},  [23] = {256, 136}, [24] = {1, 1},     [25] = {1, 2},
        [26] = {1, 4},     [27] = {1, 8},     [28] = {1, 8},     [29] = {256, 56},
        [30] = {1, 2},     [34] = {256, 54},  [35] = {256, 66},
    };
    gguf_type_size none = {0, 0};
    if (type < 0 || (size_t)type >= sizeof t / sizeof t[0]) return none;
    return t[type];
}

// Parses one value of `type` at the cursor into kv (arrays: element type, count, data).
// For string arrays it also records each element's offset so gguf_arr_str is O(1).
static int parse_value(gguf_cursor *c, gguf_kv *kv, uint64_t **str_offs) {
    char field[160];
    snprintf(field, sizeof field, "value of key '%.*s'", (int)(kv->key.len > 100 ? 100 : kv->key.len),
             kv->key.ptr);
    kv->data = c->base + c->pos;
    if (kv->type == GGUF_T_STRING) {
        gguf_str s;
        return cur_str(c, &s, field);
    }
    if (kv->type != GGUF_T_ARRAY) {
        size_t sz = gguf_scalar_size(kv->type);
        if (!sz) {
            cur_fail(c, "%s: unknown value type %d", field, kv->type);
            return -1;
        }
        uint8_t tmp[8];
        return cur_read(c, tmp, sz, field);
    }
    uint32_t at;
    uint64_t n;
    if (cur_u32(c, &at, field) || cur_u64(c, &n, field)) return -1;
    kv->arr_type = (int)at;
    kv->arr_n = n;
    kv->data = c->base + c->pos;
    if (at == GGUF_T_STRING) {
        // each element needs at least its 8-byte length
        if (n > cur_left(c) / 8) {
            cur_fail(c, "%s: array count %llu exceeds the %zu bytes left", field,
                     (unsigned long long)n, cur_left(c));
            return -1;
        }
        uint64_t *offs = malloc((n ? n : 1) * sizeof *offs);
        if (!offs) {
            cur_fail(c, "%s: out of memory for %llu strings", field, (unsigned long long)n);
            return -1;
        }
        for (uint64_t i = 0; i < n; i++) {
            gguf_str s;
            offs[i] = c->pos;
            if (cur_str(c, &s, field)) { free(offs); return -1; }
        }
        *str_offs = offs;
        return 0;
    }
    size_t sz = gguf_scalar_size((int)at);
    if (!sz) {
        cur_fail(c, "%s: unsupported array element type %u", field, at);
        return -1;
    }
    if (n > cur_left(c) / sz) {
        cur_fail(c, "%s: array of %llu elements of %zu bytes exceeds the %zu bytes left", field,
                 (unsigned long long)n, sz, cur_left(c));
        return -1;
    }
    c->pos += (size_t)(n * sz);
    return 0;
}

static int parse_kvs(gguf_cursor *c, gguf_file *f) {
    // every kv needs at least key length (8) + type (4) + 1 value byte
    if ((uint64_t)f->n_kv > cur_left(c) / 13) {
        cur_fail(c, "header: n_kv %lld is more than the file can hold", (long long)f->n_kv);
        return -1;
    }
    f->kvs = calloc((size_t)f->n_kv + 1, sizeof *f->kvs);
    f->str_offs = calloc((size_t)f->n_kv + 1, sizeof *f->str_offs);
    if (!f->kvs || !f->str_offs) {
        cur_fail(c, "out of memory for %lld keys", (long long)f->n_kv);
        return -1;
    }
    for (int64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kvs[i];
        char field[64];
        snprintf(field, sizeof field, "key #%lld", (long long)i);
        uint32_t type;
        if (cur_str(c, &kv->key, field) || cur_u32(c, &type, field)) return -1;
        kv->type = (int)type;
        for (int64_t j = 0; j < i; j++) {
            if (f->kvs[j].key.len == kv->key.len &&
                memcmp(f->kvs[j].key.ptr, kv->key.ptr, kv->key.len) == 0) {
                cur_fail(c, "duplicate key '%.*s'", (int)(kv->key.len > 100 ? 100 : kv->key.len),
                         kv->key.ptr);
                return -1;
            }
        }
        if (parse_value(c, kv, &f->str_offs[i])) return -1;
    }
    return 0;
}

// Product of dims times the type's bytes per element, with overflow checks.
static int tensor_nbytes(gguf_cursor *c, gguf_tensor *t, const char *field) {
    gguf_type_size ts = gguf_tensor_type_size(t->type);
    if (!ts.blck) {
        cur_fail(c, "%s: unknown tensor type %d", field, t->type);
        return -1;
    }
    uint64_t ne = 1;
    for (int d = 0; d < t->n_dims; d++) {
        uint64_t v = (uint64_t)t->ne[d];
        if (v && ne > UINT64_MAX / 2 / v) {
            cur_fail(c, "%s: element count overflows (dims product too large)", field);
            return -1;
        }
        ne *= v;
    }
    if (t->ne[0] % ts.blck) {
        cur_fail(c, "%s: row length %lld is not a multiple of the type's block size %d", field,
                 (long long)t->ne[0], ts.blck);
        return -1;
    }
    uint64_t blocks = ne / (uint64_t)ts.blck;
    if (blocks > UINT64_MAX / (uint64_t)ts.size) {
        cur_fail(c, "%s: byte size overflows", field);
        return -1;
    }
    t->nbytes = blocks * (uint64_t)ts.size;
    return 0;
}

static int parse_tensor_infos(gguf_cursor *c, gguf_file *f) {
    // name len (8) + n_dims (4) + type (4) + offset (8) at least
    if ((uint64_t)f->n_tensors > cur_left(c) / 24) {
        cur_fail(c, "header: n_tensors %lld is more than the file can hold",
                 (long long)f->n_tensors);
        return -1;
    }
    f->tensors = calloc((size_t)f->n_tensors + 1, sizeof *f->tensors);
    if (!f->tensors) {
        cur_fail(c, "out of memory for %lld tensors", (long long)f->n_tensors);
        return -1;
    }
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        char field[200];
        snprintf(field, sizeof field, "tensor #%lld", (long long)i);
        uint32_t nd, type;
        if (cur_str(c, &t->name, field)) return -1;
        snprintf(field, sizeof field, "tensor '%.*s'", (int)(t->name.len > 120 ? 120 : t->name.len),
                 t->name.ptr);
        if (cur_u32(c, &nd, field)) return -1;
        if (nd < 1 || nd > GGUF_MAX_DIMS) {
            cur_fail(c, "%s: n_dims %u out of range 1..%d", field, nd, GGUF_MAX_DIMS);
            return -1;
        }
        t->n_dims = (int)nd;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t v;
            if (cur_u64(c, &v, field)) return -1;
            if (v > (uint64_t)INT64_MAX) {
                cur_fail(c, "%s: dim %u = %llu is out of range", field, d, (unsigned long long)v);
                return -1;
            }
            t->ne[d] = (int64_t)v;
        }
        if (cur_u32(c, &type, field) || cur_u64(c, &t->offset, field)) return -1;
        t->type = (int)type;
        if (tensor_nbytes(c, t, field)) return -1;
        for (int64_t j = 0; j < i; j++) {
            if (f->tensors[j].name.len == t->name.len &&
                memcmp(f->tensors[j].name.ptr, t->name.ptr, t->name.len) == 0) {
                cur_fail(c, "%s: duplicate tensor name", field);
                return -1;
            }
        }
    }
    return 0;
}

static int read_alignment(gguf_cursor *c, gguf_file *f) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find_kv(f, "general.alignment");
    if (!kv) return 0;
    uint32_t a;
    if (gguf_get_u32(f, "general.alignment", &a) != 0 || a == 0 || (a & (a - 1)) != 0) {
        cur_fail(c, "general.alignment: must be a power-of-two uint32");
        return -1;
    }
    f->alignment = a;
    return 0;
}

// Places the data section after the tensor infos and checks that every tensor is aligned
// and lies inside the file.
static int place_tensors(gguf_cursor *c, gguf_file *f) {
    uint64_t off = ((uint64_t)c->pos + f->alignment - 1) / f->alignment * f->alignment;
    f->data_off = off;
    uint64_t data_len = f->n_tensors ? (off <= c->size ? c->size - off : 0) : 0;
    if (f->n_tensors && off > c->size) {
        cur_fail(c, "data section: starts at %llu, past the end of the file (%zu bytes)",
                 (unsigned long long)off, c->size);
        return -1;
    }
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        int nl = (int)(t->name.len > 120 ? 120 : t->name.len);
        if (t->offset % f->alignment) {
            cur_fail(c, "tensor '%.*s': offset %llu is not a multiple of the alignment %llu", nl,
                     t->name.ptr, (unsigned long long)t->offset,
                     (unsigned long long)f->alignment);
            return -1;
        }
        if (t->offset > data_len || t->nbytes > data_len - t->offset) {
            cur_fail(c,
                     "tensor '%.*s': data [%llu, +%llu) runs past the end of the file "
                     "(data section is %llu bytes)",
                     nl, t->name.ptr, (unsigned long long)t->offset,
                     (unsigned long long)t->nbytes, (unsigned long long)data_len);
            return -1;
        }
        t->data = f->map + off + t->offset;
    }
    return 0;
}

static int parse_all(gguf_cursor *c, gguf_file *f) {
    uint8_t magic[4];
    if (cur_read(c, magic, 4, "magic")) return -1;
    if (memcmp(magic, "GGUF", 4) != 0) {
        cur_fail(c, "magic: not a GGUF file");
        return -1;
    }
    if (cur_u32(c, &f->version, "version")) return -1;
    if (f->version != 2 && f->version != 3) {
        if ((f->version & 0xFFFF) == 0 && f->version)
            cur_fail(c, "version: %u looks byte-swapped (big-endian GGUF is unsupported)",
                     f->version);
        else
            cur_fail(c, "version: %u unsupported (need 2 or 3)", f->version);
        return -1;
    }
    uint64_t nt, nkv;
    if (cur_u64(c, &nt, "n_tensors") || cur_u64(c, &nkv, "n_kv")) return -1;
    // name the field: a count at or above 2^63 would turn negative as int64_t
    if (nt > (uint64_t)INT64_MAX) {
        cur_fail(c, "header: n_tensors %llu out of range", (unsigned long long)nt);
        return -1;
    }
    if (nkv > (uint64_t)INT64_MAX) {
        cur_fail(c, "header: n_kv %llu out of range", (unsigned long long)nkv);
        return -1;
    }
    f->n_tensors = (int64_t)nt;
    f->n_kv = (int64_t)nkv;
    if (parse_kvs(c, f) || read_alignment(c, f) || parse_tensor_infos(c, f) ||
        place_tensors(c, f))
        return -1;
    return 0;
}

gguf_file *gguf_open(const char *path, char *err, size_t err_len) {
    if (err && err_len) err[0] = 0;
    if (!path) {
        if (err && err_len) snprintf(err, err_len, "gguf_open: path is NULL");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (err && err_len) snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (err && err_len) snprintf(err, err_len, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        if (err && err_len) snprintf(err, err_len, "%s: out of memory", path);
        return NULL;
    }
    f->size = (size_t)st.st_size;
    if (f->size) {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            if (err && err_len) snprintf(err, err_len, "%s: mmap failed: %s", path, strerror(errno));
            close(fd);
            free(f);
            return NULL;
        }
        f->map = m;
    }
    close(fd); // the mapping stays valid
    gguf_cursor c = {f->map, f->size, 0, path, err, err_len, 0};
    if (parse_all(&c, f) != 0) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->str_offs)
        for (int64_t i = 0; i < f->n_kv; i++) free(f->str_offs[i]);
    free(f->str_offs);
    free(f->kvs);
    free(f->tensors);
    if (f->map) munmap((void *)f->map, f->size);
    free(f);
}

uint32_t gguf_version(const gguf_file *f) { return f->version; }
int64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }
int64_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }

const gguf_kv *gguf_kv_at(const gguf_file *f, int64_t i) {
    return (i >= 0 && i < f->n_kv) ? &f->kvs[i] : NULL;
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i) {
    return (i >= 0 && i < f->n_tensors) ? &f->tensors[i] : NULL;
}

static int str_eq(gguf_str s, const char *z) {
    size_t n = strlen(z);
    return s.len == n && memcmp(s.ptr, z, n) == 0;
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    if (!f || !key || !f->kvs) return NULL;
    for (int64_t i = 0; i < f->n_kv; i++)
        if (str_eq(f->kvs[i].key, key)) return &f->kvs[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!f || !name) return NULL;
    for (int64_t i = 0; i < f->n_tensors; i++)
        if (str_eq(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

// Reads an integer kv of any width as signed/unsigned 64-bit. is_neg tells which one holds.
static int kv_int(const gguf_kv *kv, uint64_t *u, int64_t *s, int *is_signed) {
    const void *p = kv->data;
    *is_signed = 0;
    switch (kv->type) {
    case GGUF_T_UINT8: { uint8_t v; memcpy(&v, p, 1); *u = v; return 0; }
    case GGUF_T_UINT16: { uint16_t v; memcpy(&v, p, 2); *u = v; return 0; }
    case GGUF_T_UINT32: { uint32_t v; memcpy(&v, p, 4); *u = v; return 0; }
    case GGUF_T_UINT64: { uint64_t v; memcpy(&v, p, 8); *u = v; return 0; }
    case GGUF_T_INT8: { int8_t v; memcpy(&v, p, 1); *s = v; break; }
    case GGUF_T_INT16: { int16_t v; memcpy(&v, p, 2); *s = v; break; }
    case GGUF_T_INT32: { int32_t v; memcpy(&v, p, 4); *s = v; break; }
    case GGUF_T_INT64: { int64_t v; memcpy(&v, p, 8); *s = v; break; }
    default: return -1;
    }
    *is_signed = 1;
    return 0;
}

int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    uint64_t u = 0;
    int64_t s = 0;
    int sg;
    if (!kv || kv_int(kv, &u, &s, &sg)) return -1;
    if (sg) {
        *out = s;
    } else {
        if (u > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)u;
    }
    return 0;
}

// [0, UINT32_MAX] lies inside the int64 range, so the i64 read and one range check cover every
// stored width and signedness.
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    int64_t v;
    if (gguf_get_i64(f, key, &v) || v < 0 || v > (int64_t)UINT32_MAX) return -1;
    *out = (uint32_t)v;
    return 0;
}

int gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return -1;
    if (kv->type == GGUF_T_FLOAT32) {
        memcpy(out, kv->data, 4);
        return 0;
    }
    if (kv->type == GGUF_T_FLOAT64) {
        double d;
        memcpy(&d, kv->data, 8);
        *out = (float)d;
        return 0;
    }
    return -1;
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv || kv->type != GGUF_T_BOOL) return -1;
    uint8_t v;
    memcpy(&v, kv->data, 1);
    *out = v != 0;
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv || kv->type != GGUF_T_STRING) return -1;
    uint64_t len;
    memcpy(&len, kv->data, 8); // validated at open
    out->ptr = (const char *)kv->data + 8;
    out->len = len;
    return 0;
}

int gguf_arr_str(const gguf_file *f, const gguf_kv *kv, uint64_t i, gguf_str *out) {
    if (!f || !kv || kv->type != GGUF_T_ARRAY || kv->arr_type != GGUF_T_STRING || i >= kv->arr_n)
        return -1;
    int64_t k = kv - f->kvs;
    if (k < 0 || k >= f->n_kv || !f->str_offs[k]) return -1;
    uint64_t off = f->str_offs[k][i];
    uint64_t len;
    memcpy(&len, f->map + off, 8); // validated at open
    out->ptr = (const char *)f->map + off + 8;
    out->len = len;
    return 0;
}
