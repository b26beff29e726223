// engine/prm/st_read.c — reads the few small tensors of a PRM head (Qwen2.5-Math-PRM's score
// MLP, a value head, an e2h head file) from safetensors files (or a .gguf, e2h's GGUF head
// names below) into f32 copies. The model
// loader maps the backbone; the heads are not part of a causal LM, so they are read here through
// formats/safetensors (ranges checked against the files) and converted to f32. A head file's
// __metadata__ (PLAN §4) is read from its header.
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../formats/gguf.h"
#include "../../formats/safetensors.h"
#include "../../kernels/ops.h"
#include "../util.h"
#include "prm_internal.h"

// Reads the JSON header of a safetensors file. *data_off: offset of the data section.
static cJSON *st_header(FILE *f, const char *file, uint64_t *data_off, uint64_t *file_size,
                        char *err, size_t err_len) {
    struct stat sb;
    if (fstat(fileno(f), &sb) || sb.st_size < 8) {
        fmt_errf(err, err_len, "%s: too short for a safetensors header", file);
        return NULL;
    }
    uint8_t h8[8];
    if (fread(h8, 1, 8, f) != 8) {
        fmt_errf(err, err_len, "%s: cannot read the header length", file);
        return NULL;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | h8[i];
    if (hlen > (uint64_t)sb.st_size - 8 || hlen > (100u << 20)) {
        fmt_errf(err, err_len, "%s: header length %llu is larger than the file", file,
                 (unsigned long long)hlen);
        return NULL;
    }
    char *js = malloc(hlen + 1);
    if (!js || fread(js, 1, hlen, f) != hlen) {
        free(js);
        fmt_errf(err, err_len, "%s: cannot read the header", file);
        return NULL;
    }
    js[hlen] = 0;
    cJSON *root = cJSON_Parse(js);
    free(js);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        fmt_errf(err, err_len, "%s: header is not a JSON object", file);
        return NULL;
    }
    *data_off = 8 + hlen;
    *file_size = (uint64_t)sb.st_size;
    return root;
}

// Opens the safetensors of path (a model directory, sharded or not, or one file) through
// formats/safetensors (every tensor's range checked against its file).
static e2h_status st_open(const char *path, st_index *ix, char *err, size_t err_len) {
    memset(ix, 0, sizeof *ix);
    struct stat sb;
    if (stat(path, &sb)) {
        fmt_errf(err, err_len, "%s: no such file or directory", path);
        return E2H_ERR_IO;
    }
    if (!S_ISDIR(sb.st_mode)) return st_index_add_file(ix, path, err, err_len);
    char p[2048];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", path);
    if (stat(p, &sb) == 0) return st_index_add_shards(ix, path, p, err, err_len);
    snprintf(p, sizeof p, "%s/model.safetensors", path);
    return st_index_add_file(ix, p, err, err_len);
}

// ---------------------------------------------------------------- GGUF heads
//
// llama.cpp's convert_hf_to_gguf.py converts neither Qwen2ForProcessRewardModel nor a value
// head (it registers Qwen2Model / Qwen2ForCausalLM only; gguf-py maps no "score.*" or "v_head.*"
// tensor), so there is no standard layout. e2h's reuses gguf-py's classifier names
// (MODEL_TENSOR.CLS "cls", CLS_OUT "cls.output": llama.cpp's reranker heads), see
// engine/prm/README.md; tools/make_prm_fixtures.py write_prm_gguf writes it.
static const char *gguf_head_name(const char *hf) {
    static const char *const map[][2] = {
        {"score.0.weight", "cls.weight"},          {"score.0.bias", "cls.bias"},
        {"score.2.weight", "cls.output.weight"},   {"score.2.bias", "cls.output.bias"},
        {"v_head.summary.weight", "cls.output.weight"}, {"v_head.summary.bias", "cls.output.bias"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i][0], hf)) return map[i][1];
    return hf;
}

static int is_gguf(const char *path) {
    size_t n = strlen(path);
    struct stat sb;
    return n > 5 && !strcmp(path + n - 5, ".gguf") && stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode);
}

// A head tensor of a GGUF as (rows, cols) = (ne[1], ne[0]) or (ne[0]) for 1-D; NULL if absent
// or of more than 2 dims.
static const gguf_tensor *gguf_head(gguf_file *f, const char *name, int64_t shape[2], int *nd) {
    const gguf_tensor *t = f ? gguf_find_tensor(f, gguf_head_name(name)) : NULL;
    if (!t || t->n_dims < 1 || t->n_dims > 2) return NULL;
    *nd = t->n_dims;
    shape[0] = t->n_dims == 2 ? t->ne[1] : t->ne[0];
    shape[1] = t->n_dims == 2 ? t->ne[0] : 0;
    return t;
}

static e2h_status gguf_read(const char *path, const char *name, int64_t rows, int64_t cols,
                            float **out, char *err, size_t err_len) {
    gguf_file *f = gguf_open(path, err, err_len);
    if (!f) return E2H_ERR_FORMAT;
    int64_t sh[2];
    int nd = 0, want = cols > 0 ? 2 : 1;
    const gguf_tensor *t = gguf_head(f, name, sh, &nd);
    const e2h_type_traits *tr = t ? kern_type_traits_get(t->type) : NULL;
    int64_t row_len = want == 2 ? cols : rows, n_rows = want == 2 ? rows : 1;
    e2h_status st = E2H_OK;
    if (!t) {
        fmt_errf(err, err_len, "%s: tensor '%s' (%s) is missing", path, gguf_head_name(name), name);
        st = E2H_ERR_SHAPE;
    } else if (nd != want || sh[0] != rows || (want == 2 && sh[1] != cols)) {
        fmt_errf(err, err_len, "%s: tensor '%s' has shape [%lld%s%lld] (%d dims), expected [%lld%s%lld]",
                 path, gguf_head_name(name), (long long)sh[0], nd > 1 ? ", " : "",
                 nd > 1 ? (long long)sh[1] : 0LL, nd, (long long)rows, want > 1 ? ", " : "",
                 want > 1 ? (long long)cols : 0LL);
        st = E2H_ERR_SHAPE;
    } else if (!tr || !tr->supported || kern_type_row_size(t->type, row_len) == 0 ||
               t->nbytes < kern_type_row_size(t->type, row_len) * (uint64_t)n_rows) {
        fmt_errf(err, err_len, "%s: tensor '%s': type %d is not supported for a PRM head", path,
                 gguf_head_name(name), t->type);
        st = E2H_ERR_UNSUPPORTED;
    }
    float *v = st ? NULL : malloc((size_t)(row_len * n_rows) * sizeof *v);
    if (!st && !v) st = E2H_ERR_NOMEM;
    for (int64_t r = 0; !st && r < n_rows; r++) // (dims checked by gguf_open: sizes cannot overflow)
        ops_ref()->dequantize_row(t->type, (const uint8_t *)t->data + (size_t)r * kern_type_row_size(t->type, row_len),
                                  v + r * row_len, row_len);
    if (!st) *out = v;
    gguf_close(f);
    return st;
}

int prm_gguf_protocol(const char *path, char *proto, size_t cap, char *name, size_t name_cap) {
    char err[256];
    gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f) return 0;
    gguf_str v;
    int found = 0;
    if (name_cap && gguf_get_str(f, "general.name", &v) == 0)
        snprintf(name, name_cap, "%.*s", (int)(v.len < 200 ? v.len : 200), v.ptr);
    if (gguf_get_str(f, "e2h.prm.protocol", &v) == 0 && v.len > 0 && v.len < cap) {
        snprintf(proto, cap, "%.*s", (int)v.len, v.ptr);
        found = 1;
    } else if (gguf_get_str(f, "general.architecture", &v) == 0 && v.len == 5 && !memcmp(v.ptr, "qwen2", 5)) {
        // the head tensors alone are unambiguous on a Qwen2 backbone: an MLP to 2 classes is
        // Qwen2.5-Math-PRM's score head, a single row a value head
        int64_t so[2] = {0, 0}, sc[2] = {0, 0};
        int no = 0, nc = 0;
        int has_out = gguf_head(f, "cls.output.weight", so, &no) != NULL && no == 2;
        int has_cls = gguf_head(f, "cls.weight", sc, &nc) != NULL && nc == 2;
        const char *g = has_out && has_cls && so[0] == 2 ? "qwen-prm" : has_out && !has_cls && so[0] == 1 ? "value-head" : NULL;
        if (g) snprintf(proto, cap, "%s", g), found = 1;
    }
    gguf_close(f);
    return found;
}

int prm_st_has(const char *path, const char *name) {
    char err[256];
    if (is_gguf(path)) {
        gguf_file *f = gguf_open(path, err, sizeof err);
        int64_t sh[2];
        int nd, has = gguf_head(f, name, sh, &nd) != NULL;
        if (f) gguf_close(f);
        return has;
    }
    st_index ix;
    int has = st_open(path, &ix, err, sizeof err) == E2H_OK && st_find(&ix, name) != NULL;
    st_index_free(&ix);
    return has;
}

int prm_st_shape(const char *path, const char *name, int64_t shape[2], int *nd) {
    char err[256];
    if (is_gguf(path)) {
        gguf_file *f = gguf_open(path, err, sizeof err);
        int ok = gguf_head(f, name, shape, nd) != NULL;
        if (f) gguf_close(f);
        return ok ? 0 : -1;
    }
    st_index ix;
    const st_tensor *t = st_open(path, &ix, err, sizeof err) == E2H_OK ? st_find(&ix, name) : NULL;
    int ok = t && t->n_dims <= 2;
    if (ok) {
        *nd = t->n_dims;
        for (int i = 0; i < t->n_dims; i++) shape[i] = t->shape[i];
    }
    st_index_free(&ix);
    return ok ? 0 : -1;
}

char *prm_st_metadata(const char *file, char *err, size_t err_len) {
    FILE *f = fopen(file, "rb");
    if (!f) {
        fmt_errf(err, err_len, "%s: cannot open", file);
        return NULL;
    }
    uint64_t off, size;
    cJSON *root = st_header(f, file, &off, &size, err, err_len);
    fclose(f);
    if (!root) return NULL;
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    char *s = cJSON_IsObject(md) ? cJSON_PrintUnformatted(md) : NULL;
    if (!s) fmt_errf(err, err_len, "%s: no __metadata__ object in the header", file);
    cJSON_Delete(root);
    return s;
}

e2h_status prm_st_read(const char *path, const char *name, int64_t rows, int64_t cols,
                       float **out, char *err, size_t err_len) {
    *out = NULL;
    if (is_gguf(path)) return gguf_read(path, name, rows, cols, out, err, err_len);
    st_index ix;
    e2h_status st = st_open(path, &ix, err, err_len);
    const st_tensor *t = st ? NULL : st_find(&ix, name);
    if (!st && !t) {
        fmt_errf(err, err_len, "%s: tensor '%s' is missing", path, name);
        st = E2H_ERR_SHAPE;
    }
    int want = cols > 0 ? 2 : 1;
    if (!st && (t->n_dims != want || t->shape[0] != rows || (want == 2 && t->shape[1] != cols))) {
        fmt_errf(err, err_len, "%s: tensor '%s' has shape [%lld%s%lld] (%d dims), expected [%lld%s%lld]",
                 t->file, name, (long long)t->shape[0], t->n_dims > 1 ? ", " : "",
                 t->n_dims > 1 ? (long long)t->shape[1] : 0LL, t->n_dims, (long long)rows,
                 want > 1 ? ", " : "", want > 1 ? (long long)cols : 0LL);
        st = E2H_ERR_SHAPE;
    }
    if (!st) {
        int64_t n = rows * (cols > 0 ? cols : 1);
        float *v = malloc((size_t)n * sizeof *v);
        if (!v) st = E2H_ERR_NOMEM;
        else util_convert_to_f32(t->type, t->data, v, n), *out = v;
    }
    st_index_free(&ix);
    return st;
}
