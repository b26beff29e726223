// engine/prm/st_read.c — reads the few small tensors of a PRM head (Qwen2.5-Math-PRM's score
// MLP, a value head, an e2h head file) from safetensors files into f32 copies. The model
// loader maps the backbone; the heads are not part of a causal LM, so they are read here through
// formats/safetensors (ranges checked against the files) and converted to f32. A head file's
// __metadata__ (PLAN §4) is read from its header.
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

int prm_st_has(const char *path, const char *name) {
    char err[256];
    st_index ix;
    int has = st_open(path, &ix, err, sizeof err) == E2H_OK && st_find(&ix, name) != NULL;
    st_index_free(&ix);
    return has;
}

int prm_st_shape(const char *path, const char *name, int64_t shape[2], int *nd) {
    char err[256];
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
