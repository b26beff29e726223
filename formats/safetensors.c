// formats/safetensors.c — see safetensors.h.
#include "safetensors.h"
#include "json_util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

static int st_dtype(const char *s, int *type, size_t *elsize) {
    if (!strcmp(s, "F32")) { *type = ST_TYPE_F32; *elsize = 4; return 0; }
    if (!strcmp(s, "F16")) { *type = ST_TYPE_F16; *elsize = 2; return 0; }
    if (!strcmp(s, "BF16")) { *type = ST_TYPE_BF16; *elsize = 2; return 0; }
    return -1;
}

static e2h_status st_map_file(st_index *ix, const char *path, const uint8_t **base,
                              size_t *size, char *err, size_t err_len) {
    if (ix->n_maps >= ST_MAX_FILES) {
        fmt_errf(err, err_len, "%s: too many weight files (max %d)", path, ST_MAX_FILES);
        return E2H_ERR_UNSUPPORTED;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fmt_errf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return E2H_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        fmt_errf(err, err_len, "%s: not a regular file", path);
        return E2H_ERR_IO;
    }
    if (sb.st_size < 8) {
        close(fd);
        fmt_errf(err, err_len, "%s: file is %lld bytes, too short for a safetensors header", path,
                 (long long)sb.st_size);
        return E2H_ERR_FORMAT;
    }
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        fmt_errf(err, err_len, "%s: mmap failed: %s", path, strerror(errno));
        return E2H_ERR_IO;
    }
    ix->maps[ix->n_maps].addr = p;
    ix->maps[ix->n_maps].len = (size_t)sb.st_size;
    ix->n_maps++;
    *base = p;
    *size = (size_t)sb.st_size;
    return E2H_OK;
}

static e2h_status st_add_tensor(st_index *ix, const char *path, const cJSON *item,
                                const uint8_t *data, uint64_t data_len, char *err, size_t err_len) {
    const char *name = item->string;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) ||
        cJSON_GetArraySize(off) != 2) {
        fmt_errf(err, err_len, "%s: tensor '%s': header entry needs dtype, shape, data_offsets[2]",
                 path, name);
        return E2H_ERR_FORMAT;
    }
    st_tensor t;
    memset(&t, 0, sizeof t);
    if (strlen(name) >= sizeof t.name) {
        fmt_errf(err, err_len, "%s: tensor name too long: '%.60s...'", path, name);
        return E2H_ERR_FORMAT;
    }
    snprintf(t.name, sizeof t.name, "%s", name);
    snprintf(t.file, sizeof t.file, "%s", path);
    size_t elsize;
    if (st_dtype(dt->valuestring, &t.type, &elsize)) {
        fmt_errf(err, err_len, "%s: tensor '%s': unsupported dtype '%s' (supported: F32, F16, BF16)",
                 path, name, dt->valuestring);
        return E2H_ERR_UNSUPPORTED;
    }
    t.n_dims = cJSON_GetArraySize(sh);
    if (t.n_dims > 4) {
        fmt_errf(err, err_len, "%s: tensor '%s': %d dimensions (max 4)", path, name, t.n_dims);
        return E2H_ERR_SHAPE;
    }
    uint64_t numel = 1;
    for (int i = 0; i < t.n_dims; i++) {
        const cJSON *d = cJSON_GetArrayItem(sh, i);
        int64_t dim;
        if (!json_num_to_i64(d, 0, 4000000000000LL, &dim)) {
            fmt_errf(err, err_len, "%s: tensor '%s': bad shape entry %d", path, name, i);
            return E2H_ERR_FORMAT;
        }
        t.shape[i] = dim;
        if (t.shape[i] && numel > UINT64_MAX / 8 / (uint64_t)t.shape[i]) {
            fmt_errf(err, err_len, "%s: tensor '%s': shape overflows", path, name);
            return E2H_ERR_FORMAT;
        }
        numel *= (uint64_t)t.shape[i];
    }
    const cJSON *b = cJSON_GetArrayItem(off, 0), *e = cJSON_GetArrayItem(off, 1);
    int64_t ib, ie;
    if (!json_num_to_i64(b, 0, JSON_MAX_EXACT_INT, &ib) || !json_num_to_i64(e, 0, JSON_MAX_EXACT_INT, &ie) ||
        ie < ib) {
        fmt_errf(err, err_len, "%s: tensor '%s': data_offsets must be two integers 0 <= begin <= end "
                 "<= 2^53", path, name);
        return E2H_ERR_FORMAT;
    }
    uint64_t ob = (uint64_t)ib, oe = (uint64_t)ie;
    if (oe > data_len) {
        fmt_errf(err, err_len, "%s: tensor '%s': data_offsets [%llu, %llu) run past the end of the "
                 "data section (%llu bytes): file truncated?", path, name, (unsigned long long)ob,
                 (unsigned long long)oe, (unsigned long long)data_len);
        return E2H_ERR_FORMAT;
    }
    if (oe - ob != numel * elsize) {
        fmt_errf(err, err_len, "%s: tensor '%s': data_offsets span %llu bytes but shape x dtype needs "
                 "%llu", path, name, (unsigned long long)(oe - ob),
                 (unsigned long long)(numel * elsize));
        return E2H_ERR_FORMAT;
    }
    t.data = data + ob;
    t.nbytes = (size_t)(oe - ob);
    if (ix->n == ix->cap) {
        int cap = ix->cap ? ix->cap * 2 : 256;
        st_tensor *nt = realloc(ix->t, (size_t)cap * sizeof *nt);
        if (!nt) return E2H_ERR_NOMEM;
        ix->t = nt;
        ix->cap = cap;
    }
    ix->t[ix->n++] = t;
    return E2H_OK;
}

e2h_status st_index_add_file(st_index *ix, const char *path, char *err, size_t err_len) {
    const uint8_t *base;
    size_t size;
    e2h_status st = st_map_file(ix, path, &base, &size, err, err_len);
    if (st) return st;
    uint64_t hlen;
    memcpy(&hlen, base, 8); // little-endian host assumed (x86-64, aarch64)
    if (hlen > size - 8) {
        fmt_errf(err, err_len, "%s: header length %llu runs past the end of the file (%zu bytes)",
                 path, (unsigned long long)hlen, size);
        return E2H_ERR_FORMAT;
    }
    if (hlen > (100u << 20)) {
        fmt_errf(err, err_len, "%s: header length %llu is implausibly large", path,
                 (unsigned long long)hlen);
        return E2H_ERR_FORMAT;
    }
    char *json = malloc(hlen + 1);
    if (!json) return E2H_ERR_NOMEM;
    memcpy(json, base + 8, hlen);
    json[hlen] = 0;
    cJSON *root = cJSON_Parse(json);
    free(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        fmt_errf(err, err_len, "%s: header is not a JSON object", path);
        return E2H_ERR_FORMAT;
    }
    const uint8_t *data = base + 8 + hlen;
    uint64_t data_len = size - 8 - hlen;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (!strcmp(item->string, "__metadata__")) continue;
        if (!cJSON_IsObject(item)) {
            fmt_errf(err, err_len, "%s: tensor '%s': header entry is not an object", path,
                     item->string);
            st = E2H_ERR_FORMAT;
            break;
        }
        if ((st = st_add_tensor(ix, path, item, data, data_len, err, err_len))) break;
    }
    cJSON_Delete(root);
    return st;
}

e2h_status st_index_add_shards(st_index *ix, const char *dir, const char *index_path, char *err,
                               size_t err_len) {
    char *text = NULL;
    e2h_status st = fmt_read_file(index_path, &text, NULL, err, err_len);
    if (st) return st;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        fmt_errf(err, err_len, "%s: missing object field 'weight_map'", index_path);
        return E2H_ERR_FORMAT;
    }
    // load each distinct shard once, in order of first appearance
    char loaded[64][256];
    int n_loaded = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, wm) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/') || strlen(it->valuestring) >= 256) {
            fmt_errf(err, err_len, "%s: weight_map['%s'] must be a file name in the same directory",
                     index_path, it->string);
            st = E2H_ERR_FORMAT;
            break;
        }
        int seen = 0;
        for (int i = 0; i < n_loaded; i++) seen |= !strcmp(loaded[i], it->valuestring);
        if (seen) continue;
        if (n_loaded == 64) {
            fmt_errf(err, err_len, "%s: more than 64 shards", index_path);
            st = E2H_ERR_UNSUPPORTED;
            break;
        }
        snprintf(loaded[n_loaded++], 256, "%s", it->valuestring);
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, it->valuestring);
        if ((st = st_index_add_file(ix, path, err, err_len))) break;
    }
    cJSON_Delete(root);
    return st;
}

const st_tensor *st_find(const st_index *ix, const char *name) {
    for (int i = 0; i < ix->n; i++)
        if (!strcmp(ix->t[i].name, name)) return &ix->t[i];
    return NULL;
}

void st_index_free(st_index *ix) {
    for (int i = 0; i < ix->n_maps; i++) munmap(ix->maps[i].addr, ix->maps[i].len);
    free(ix->t);
    memset(ix, 0, sizeof *ix);
}
