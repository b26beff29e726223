// engine/prm/st_read.c — reads the few small tensors of a PRM head (Qwen2.5-Math-PRM's score
// MLP, a value head, an e2h head file) from safetensors files into f32 copies. The model
// loader maps the backbone; the heads are not part of a causal LM, so they are read here
// (header parsed, ranges checked against the file size, data converted to f32).
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../kernels/ops.h"
#include "../util.h"
#include "prm_internal.h"

// Reads the JSON header of a safetensors file. *data_off: offset of the data section.
static cJSON *st_header(FILE *f, const char *file, uint64_t *data_off, uint64_t *file_size,
                        char *err, size_t err_len) {
    struct stat sb;
    if (fstat(fileno(f), &sb) || sb.st_size < 8) {
        e2h_errf(err, err_len, "%s: too short for a safetensors header", file);
        return NULL;
    }
    uint8_t h8[8];
    if (fread(h8, 1, 8, f) != 8) {
        e2h_errf(err, err_len, "%s: cannot read the header length", file);
        return NULL;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | h8[i];
    if (hlen > (uint64_t)sb.st_size - 8 || hlen > (100u << 20)) {
        e2h_errf(err, err_len, "%s: header length %llu is larger than the file", file,
                 (unsigned long long)hlen);
        return NULL;
    }
    char *js = malloc(hlen + 1);
    if (!js || fread(js, 1, hlen, f) != hlen) {
        free(js);
        e2h_errf(err, err_len, "%s: cannot read the header", file);
        return NULL;
    }
    js[hlen] = 0;
    cJSON *root = cJSON_Parse(js);
    free(js);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        e2h_errf(err, err_len, "%s: header is not a JSON object", file);
        return NULL;
    }
    *data_off = 8 + hlen;
    *file_size = (uint64_t)sb.st_size;
    return root;
}

// The safetensors file of `path` (dir or file) that holds tensor `name`, into file.
static int st_locate(const char *path, const char *name, char *file, size_t cap) {
    struct stat sb;
    if (stat(path, &sb)) return -1;
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(file, cap, "%s", path);
        return 0;
    }
    char idx[2048], err[64];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", path);
    char *text = NULL;
    if (stat(idx, &sb) == 0 && e2h_read_file(idx, &text, NULL, err, sizeof err) == E2H_OK) {
        cJSON *root = cJSON_Parse(text);
        free(text);
        const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(wm, name);
        int ok = cJSON_IsString(fn) && !strchr(fn->valuestring, '/');
        if (ok) snprintf(file, cap, "%s/%s", path, fn->valuestring);
        cJSON_Delete(root);
        return ok ? 0 : -1;
    }
    snprintf(file, cap, "%s/model.safetensors", path);
    return 0;
}

int prm_st_has(const char *path, const char *name) {
    char file[2048], err[256];
    if (st_locate(path, name, file, sizeof file)) return 0;
    FILE *f = fopen(file, "rb");
    if (!f) return 0;
    uint64_t off, size;
    cJSON *root = st_header(f, file, &off, &size, err, sizeof err);
    fclose(f);
    int has = root && cJSON_GetObjectItemCaseSensitive(root, name) != NULL;
    cJSON_Delete(root);
    return has;
}

char *prm_st_metadata(const char *file, char *err, size_t err_len) {
    FILE *f = fopen(file, "rb");
    if (!f) {
        e2h_errf(err, err_len, "%s: cannot open", file);
        return NULL;
    }
    uint64_t off, size;
    cJSON *root = st_header(f, file, &off, &size, err, err_len);
    fclose(f);
    if (!root) return NULL;
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    char *s = cJSON_IsObject(md) ? cJSON_PrintUnformatted(md) : NULL;
    if (!s) e2h_errf(err, err_len, "%s: no __metadata__ object in the header", file);
    cJSON_Delete(root);
    return s;
}

e2h_status prm_st_read(const char *path, const char *name, int64_t rows, int64_t cols,
                       float **out, char *err, size_t err_len) {
    *out = NULL;
    char file[2048];
    if (st_locate(path, name, file, sizeof file)) {
        e2h_errf(err, err_len, "%s: tensor '%s' is missing", path, name);
        return E2H_ERR_SHAPE;
    }
    FILE *f = fopen(file, "rb");
    if (!f) {
        e2h_errf(err, err_len, "%s: cannot open", file);
        return E2H_ERR_IO;
    }
    uint64_t off, size;
    e2h_status st = E2H_OK;
    cJSON *root = st_header(f, file, &off, &size, err, err_len);
    if (!root) { fclose(f); return E2H_ERR_FORMAT; }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    int64_t want_dims = cols > 0 ? 2 : 1;
    int type = -1, es = 0;
    if (!t) {
        e2h_errf(err, err_len, "%s: tensor '%s' is missing", file, name);
        st = E2H_ERR_SHAPE;
        goto done;
    }
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2) {
        e2h_errf(err, err_len, "%s: tensor '%s': header entry needs dtype, shape, data_offsets", file, name);
        st = E2H_ERR_FORMAT;
        goto done;
    }
    if (!strcmp(dt->valuestring, "F32")) type = E2H_TYPE_F32, es = 4;
    else if (!strcmp(dt->valuestring, "F16")) type = E2H_TYPE_F16, es = 2;
    else if (!strcmp(dt->valuestring, "BF16")) type = E2H_TYPE_BF16, es = 2;
    else {
        e2h_errf(err, err_len, "%s: tensor '%s': dtype %s (supported: F32, F16, BF16)", file, name,
                 dt->valuestring);
        st = E2H_ERR_UNSUPPORTED;
        goto done;
    }
    {
        int nd = cJSON_GetArraySize(sh);
        double d0 = nd > 0 && cJSON_IsNumber(cJSON_GetArrayItem(sh, 0)) ? cJSON_GetArrayItem(sh, 0)->valuedouble : -1;
        double d1 = nd > 1 && cJSON_IsNumber(cJSON_GetArrayItem(sh, 1)) ? cJSON_GetArrayItem(sh, 1)->valuedouble : -1;
        int ok = nd == want_dims && d0 == (double)rows && (want_dims == 1 || d1 == (double)cols);
        if (!ok) {
            e2h_errf(err, err_len, "%s: tensor '%s' has shape [%g%s%g] (%d dims), expected [%lld%s%lld]",
                     file, name, d0, nd > 1 ? ", " : "", nd > 1 ? d1 : 0.0, nd, (long long)rows,
                     want_dims > 1 ? ", " : "", want_dims > 1 ? (long long)cols : 0LL);
            st = E2H_ERR_SHAPE;
            goto done;
        }
    }
    {
        double b = cJSON_IsNumber(cJSON_GetArrayItem(of, 0)) ? cJSON_GetArrayItem(of, 0)->valuedouble : -1;
        double e = cJSON_IsNumber(cJSON_GetArrayItem(of, 1)) ? cJSON_GetArrayItem(of, 1)->valuedouble : -1;
        uint64_t n = (uint64_t)rows * (uint64_t)(cols > 0 ? cols : 1);
        if (b < 0 || e < b || e - b != (double)(n * (uint64_t)es) || off + (uint64_t)e > size) {
            e2h_errf(err, err_len, "%s: tensor '%s': data_offsets do not match its shape or run "
                     "past the end of the file", file, name);
            st = E2H_ERR_FORMAT;
            goto done;
        }
        void *raw = malloc(n * (uint64_t)es);
        float *v = malloc(n * sizeof(float));
        if (!raw || !v || fseek(f, (long)(off + (uint64_t)b), SEEK_SET) ||
            fread(raw, (size_t)es, n, f) != n) {
            free(raw);
            free(v);
            e2h_errf(err, err_len, "%s: tensor '%s': cannot read its data", file, name);
            st = raw && v ? E2H_ERR_IO : E2H_ERR_NOMEM;
            goto done;
        }
        e2h_convert_to_f32(type, raw, v, (int64_t)n);
        free(raw);
        *out = v;
    }
done:
    cJSON_Delete(root);
    fclose(f);
    return st;
}
