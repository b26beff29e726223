// engine/model.c — loading a Hugging Face model directory (config.json + safetensors) into
// the e2h_model struct, plus the format-independent parts shared with the GGUF loader:
// rope tables, shape validation, quantize-on-load, info.
//
// Weights are mmapped and kept in their stored dtype; only 1-D tensors (norms, biases) are
// converted to f32 copies, which are tiny.
#include "model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "gguf.h"
#include "kernels/pool.h"
#include "kernels/quant_r16.h"
#include "util.h"

const char *e2h_status_name(e2h_status s) {
    switch (s) {
    case E2H_OK: return "E2H_OK";
    case E2H_ERR_INVALID_ARG: return "E2H_ERR_INVALID_ARG";
    case E2H_ERR_IO: return "E2H_ERR_IO";
    case E2H_ERR_FORMAT: return "E2H_ERR_FORMAT";
    case E2H_ERR_UNSUPPORTED: return "E2H_ERR_UNSUPPORTED";
    case E2H_ERR_SHAPE: return "E2H_ERR_SHAPE";
    case E2H_ERR_NOMEM: return "E2H_ERR_NOMEM";
    case E2H_ERR_CONTEXT: return "E2H_ERR_CONTEXT";
    case E2H_ERR_KV_FULL: return "E2H_ERR_KV_FULL";
    case E2H_ERR_TOKENIZER: return "E2H_ERR_TOKENIZER";
    }
    return "E2H_ERR_UNKNOWN";
}

// Records p (may be NULL) as owned by the model; frees it and returns NULL if the list
// cannot grow.
static void *model_own(struct e2h_model *m, void *p) {
    if (!p) return NULL;
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **o = realloc(m->owned, (size_t)cap * sizeof *o);
        if (!o) {
            free(p);
            return NULL;
        }
        m->owned = o;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return p;
}

void *model_alloc(struct e2h_model *m, size_t bytes) { return model_own(m, calloc(1, bytes ? bytes : 1)); }

// 64-byte aligned, not zeroed (for buffers that are filled completely at once).
void *model_alloc_aligned(struct e2h_model *m, size_t bytes) {
    return model_own(m, aligned_alloc(64, (bytes + 63) / 64 * 64));
}

// ------------------------------------------------------------------ config.json

typedef struct {
    const char *file;
    char *err;
    size_t err_len;
    int failed;
} cfg_ctx;

static int cfg_int(cfg_ctx *c, const cJSON *root, const char *key, int required, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) {
            e2h_errf(c->err, c->err_len, "%s: missing required field '%s'", c->file, key);
            c->failed = 1;
            return -1;
        }
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > 1e9) {
        e2h_errf(c->err, c->err_len, "%s: field '%s' must be a non-negative integer", c->file, key);
        c->failed = 1;
        return -1;
    }
    *out = (int)v->valuedouble;
    return 0;
}

static int cfg_float(cfg_ctx *c, const cJSON *root, const char *key, float def, float *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) { *out = def; return 0; }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        e2h_errf(c->err, c->err_len, "%s: field '%s' must be a number", c->file, key);
        c->failed = 1;
        return -1;
    }
    *out = (float)v->valuedouble;
    return 0;
}

static int cfg_bool(cfg_ctx *c, const cJSON *root, const char *key, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) { *out = def; return 0; }
    if (!cJSON_IsBool(v)) {
        e2h_errf(c->err, c->err_len, "%s: field '%s' must be true or false", c->file, key);
        c->failed = 1;
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

static e2h_status cfg_parse_rope_scaling(cfg_ctx *c, const cJSON *root, e2h_config *cfg) {
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    cfg->rope_scaling = E2H_ROPE_NONE;
    if (!rs || cJSON_IsNull(rs)) return E2H_OK;
    if (!cJSON_IsObject(rs)) {
        e2h_errf(c->err, c->err_len, "%s: field 'rope_scaling' must be an object or null", c->file);
        return E2H_ERR_FORMAT;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!t) t = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (!cJSON_IsString(t)) {
        e2h_errf(c->err, c->err_len, "%s: field 'rope_scaling.rope_type' must be a string", c->file);
        return E2H_ERR_FORMAT;
    }
    const char *type = t->valuestring;
    if (cfg_float(c, rs, "factor", 1.0f, &cfg->rope_factor)) return E2H_ERR_FORMAT;
    if (!(cfg->rope_factor > 0)) {
        e2h_errf(c->err, c->err_len, "%s: field 'rope_scaling.factor' must be > 0", c->file);
        return E2H_ERR_FORMAT;
    }
    if (strcmp(type, "default") == 0) return E2H_OK;
    if (strcmp(type, "linear") == 0) {
        cfg->rope_scaling = E2H_ROPE_LINEAR;
        return E2H_OK;
    }
    if (strcmp(type, "llama3") == 0) {
        cfg->rope_scaling = E2H_ROPE_LLAMA3;
        if (cfg_float(c, rs, "low_freq_factor", 1.0f, &cfg->rope_low_freq_factor) ||
            cfg_float(c, rs, "high_freq_factor", 4.0f, &cfg->rope_high_freq_factor) ||
            cfg_int(c, rs, "original_max_position_embeddings", 1, 0, &cfg->rope_orig_max_pos))
            return E2H_ERR_FORMAT;
        if (!(cfg->rope_high_freq_factor > cfg->rope_low_freq_factor) || cfg->rope_orig_max_pos <= 0) {
            e2h_errf(c->err, c->err_len,
                     "%s: rope_scaling: need high_freq_factor > low_freq_factor and "
                     "original_max_position_embeddings > 0", c->file);
            return E2H_ERR_FORMAT;
        }
        return E2H_OK;
    }
    e2h_errf(c->err, c->err_len, "%s: unsupported rope_scaling type '%s' (supported: llama3, linear)",
             c->file, type);
    return E2H_ERR_UNSUPPORTED;
}

static e2h_status cfg_parse_eos(cfg_ctx *c, const cJSON *root, e2h_config *cfg) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    cfg->n_eos = 0;
    if (!v || cJSON_IsNull(v)) return E2H_OK;
    if (cJSON_IsNumber(v)) {
        cfg->eos_ids[cfg->n_eos++] = (int)v->valuedouble;
        return E2H_OK;
    }
    if (cJSON_IsArray(v)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            if (!cJSON_IsNumber(it)) break;
            if (cfg->n_eos < 8) cfg->eos_ids[cfg->n_eos++] = (int)it->valuedouble;
        }
        if (!it) return E2H_OK;
    }
    e2h_errf(c->err, c->err_len, "%s: field 'eos_token_id' must be an integer or a list of integers",
             c->file);
    return E2H_ERR_FORMAT;
}

// Parses and checks config.json. Values that would make shapes impossible are errors here,
// before any tensor is looked at.
static e2h_status cfg_parse(const char *file, const char *text, e2h_config *cfg, char *err,
                            size_t err_len) {
    cJSON *root = cJSON_Parse(text);
    if (!root || !cJSON_IsObject(root)) {
        e2h_errf(err, err_len, "%s: not a JSON object (parse error near byte %ld)", file,
                 root ? 0L : (long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - text : 0));
        cJSON_Delete(root);
        return E2H_ERR_FORMAT;
    }
    cfg_ctx c = {file, err, err_len, 0};
    e2h_status st = E2H_OK;
    memset(cfg, 0, sizeof *cfg);
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!cJSON_IsString(a0)) {
        e2h_errf(err, err_len, "%s: field 'architectures' must be a list with one string", file);
        st = E2H_ERR_FORMAT;
        goto done;
    }
    snprintf(cfg->arch, sizeof cfg->arch, "%s", a0->valuestring);
    if (strcmp(cfg->arch, "LlamaForCausalLM") && strcmp(cfg->arch, "MistralForCausalLM") &&
        strcmp(cfg->arch, "Qwen2ForCausalLM")) {
        e2h_errf(err, err_len,
                 "%s: unsupported architecture '%s' in field 'architectures' (supported: "
                 "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)", file, cfg->arch);
        st = E2H_ERR_UNSUPPORTED;
        goto done;
    }
    int is_qwen2 = strcmp(cfg->arch, "Qwen2ForCausalLM") == 0;
    cfg_int(&c, root, "hidden_size", 1, 0, &cfg->dim);
    if (!c.failed) cfg_int(&c, root, "num_hidden_layers", 1, 0, &cfg->n_layers);
    if (!c.failed) cfg_int(&c, root, "num_attention_heads", 1, 0, &cfg->n_heads);
    if (!c.failed) cfg_int(&c, root, "num_key_value_heads", 0, cfg->n_heads, &cfg->n_kv_heads);
    if (!c.failed) cfg_int(&c, root, "intermediate_size", 1, 0, &cfg->hidden_dim);
    if (!c.failed) cfg_int(&c, root, "vocab_size", 1, 0, &cfg->vocab_size);
    if (!c.failed) cfg_int(&c, root, "max_position_embeddings", 0, 2048, &cfg->max_ctx);
    if (!c.failed) cfg_float(&c, root, "rope_theta", 10000.0f, &cfg->rope_theta);
    if (!c.failed) cfg_float(&c, root, "rms_norm_eps", 1e-6f, &cfg->norm_eps);
    if (!c.failed) cfg_bool(&c, root, "tie_word_embeddings", 0, &cfg->tie_embeddings);
    if (!c.failed) cfg_int(&c, root, "bos_token_id", 0, -1, &cfg->bos_id);
    if (!c.failed && cfg->n_heads > 0)
        cfg_int(&c, root, "head_dim", 0, cfg->dim / cfg->n_heads, &cfg->head_dim);
    if (c.failed) { st = E2H_ERR_FORMAT; goto done; }
    {
        int attention_bias = 0, mlp_bias = 0;
        if (cfg_bool(&c, root, "attention_bias", 0, &attention_bias) ||
            cfg_bool(&c, root, "mlp_bias", 0, &mlp_bias)) { st = E2H_ERR_FORMAT; goto done; }
        if (attention_bias || mlp_bias) {
            e2h_errf(err, err_len, "%s: unsupported config value: '%s' = true", file,
                     attention_bias ? "attention_bias" : "mlp_bias");
            st = E2H_ERR_UNSUPPORTED;
            goto done;
        }
    }
    {
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
        if (act && !(cJSON_IsString(act) && strcmp(act->valuestring, "silu") == 0)) {
            e2h_errf(err, err_len, "%s: unsupported config value 'hidden_act' (only \"silu\")", file);
            st = E2H_ERR_UNSUPPORTED;
            goto done;
        }
    }
    {
        const cJSON *sw = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
        int use_sw = 1;
        cfg_bool(&c, root, "use_sliding_window", !is_qwen2, &use_sw);
        if (cJSON_IsNumber(sw) && use_sw) cfg->sliding_window = (int)sw->valuedouble;
    }
    cfg->has_qkv_bias = is_qwen2;
    if ((st = cfg_parse_rope_scaling(&c, root, cfg)) != E2H_OK) goto done;
    if ((st = cfg_parse_eos(&c, root, cfg)) != E2H_OK) goto done;
    if (cfg->dim <= 0 || cfg->n_layers <= 0 || cfg->n_heads <= 0 || cfg->n_kv_heads <= 0 ||
        cfg->hidden_dim <= 0 || cfg->vocab_size <= 0 || cfg->head_dim <= 0 || cfg->max_ctx <= 0) {
        e2h_errf(err, err_len, "%s: sizes must be positive (hidden_size, num_hidden_layers, "
                 "num_attention_heads, num_key_value_heads, intermediate_size, vocab_size, head_dim)",
                 file);
        st = E2H_ERR_FORMAT;
        goto done;
    }
    if (cfg->n_heads % cfg->n_kv_heads != 0) {
        e2h_errf(err, err_len, "%s: num_attention_heads (%d) is not a multiple of "
                 "num_key_value_heads (%d)", file, cfg->n_heads, cfg->n_kv_heads);
        st = E2H_ERR_SHAPE;
        goto done;
    }
    if (cfg->head_dim % 2 != 0 || cfg->head_dim > 1024) {
        e2h_errf(err, err_len, "%s: head_dim %d must be even and <= 1024", file, cfg->head_dim);
        st = E2H_ERR_UNSUPPORTED;
        goto done;
    }
    if (!(cfg->rope_theta > 0) || !(cfg->norm_eps >= 0)) {
        e2h_errf(err, err_len, "%s: rope_theta must be > 0 and rms_norm_eps >= 0", file);
        st = E2H_ERR_FORMAT;
        goto done;
    }
done:
    cJSON_Delete(root);
    return st;
}

// ------------------------------------------------------------------ safetensors

typedef struct {
    char name[160];
    int type;
    int n_dims;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
    char file[1024];
} st_tensor;

typedef struct {
    st_tensor *t;
    int n, cap;
} st_index;

static int st_dtype(const char *s, int *type, size_t *elsize) {
    if (!strcmp(s, "F32")) { *type = E2H_TYPE_F32; *elsize = 4; return 0; }
    if (!strcmp(s, "F16")) { *type = E2H_TYPE_F16; *elsize = 2; return 0; }
    if (!strcmp(s, "BF16")) { *type = E2H_TYPE_BF16; *elsize = 2; return 0; }
    return -1;
}

static e2h_status st_map_file(struct e2h_model *m, const char *path, const uint8_t **base,
                              size_t *size, char *err, size_t err_len) {
    if (m->n_maps >= (int)(sizeof m->maps / sizeof m->maps[0])) {
        e2h_errf(err, err_len, "%s: too many weight files (max %d)", path,
                 (int)(sizeof m->maps / sizeof m->maps[0]));
        return E2H_ERR_UNSUPPORTED;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        e2h_errf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return E2H_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        e2h_errf(err, err_len, "%s: not a regular file", path);
        return E2H_ERR_IO;
    }
    if (sb.st_size < 8) {
        close(fd);
        e2h_errf(err, err_len, "%s: file is %lld bytes, too short for a safetensors header", path,
                 (long long)sb.st_size);
        return E2H_ERR_FORMAT;
    }
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        e2h_errf(err, err_len, "%s: mmap failed: %s", path, strerror(errno));
        return E2H_ERR_IO;
    }
    m->maps[m->n_maps].addr = p;
    m->maps[m->n_maps].len = (size_t)sb.st_size;
    m->n_maps++;
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
        e2h_errf(err, err_len, "%s: tensor '%s': header entry needs dtype, shape, data_offsets[2]",
                 path, name);
        return E2H_ERR_FORMAT;
    }
    st_tensor t;
    memset(&t, 0, sizeof t);
    if (strlen(name) >= sizeof t.name) {
        e2h_errf(err, err_len, "%s: tensor name too long: '%.60s...'", path, name);
        return E2H_ERR_FORMAT;
    }
    snprintf(t.name, sizeof t.name, "%s", name);
    snprintf(t.file, sizeof t.file, "%s", path);
    size_t elsize;
    if (st_dtype(dt->valuestring, &t.type, &elsize)) {
        e2h_errf(err, err_len, "%s: tensor '%s': unsupported dtype '%s' (supported: F32, F16, BF16)",
                 path, name, dt->valuestring);
        return E2H_ERR_UNSUPPORTED;
    }
    t.n_dims = cJSON_GetArraySize(sh);
    if (t.n_dims > 4) {
        e2h_errf(err, err_len, "%s: tensor '%s': %d dimensions (max 4)", path, name, t.n_dims);
        return E2H_ERR_SHAPE;
    }
    uint64_t numel = 1;
    for (int i = 0; i < t.n_dims; i++) {
        const cJSON *d = cJSON_GetArrayItem(sh, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 4e12 ||
            d->valuedouble != floor(d->valuedouble)) {
            e2h_errf(err, err_len, "%s: tensor '%s': bad shape entry %d", path, name, i);
            return E2H_ERR_FORMAT;
        }
        t.shape[i] = (int64_t)d->valuedouble;
        if (t.shape[i] && numel > UINT64_MAX / 8 / (uint64_t)t.shape[i]) {
            e2h_errf(err, err_len, "%s: tensor '%s': shape overflows", path, name);
            return E2H_ERR_FORMAT;
        }
        numel *= (uint64_t)t.shape[i];
    }
    const cJSON *b = cJSON_GetArrayItem(off, 0), *e = cJSON_GetArrayItem(off, 1);
    if (!cJSON_IsNumber(b) || !cJSON_IsNumber(e) || b->valuedouble < 0 ||
        e->valuedouble < b->valuedouble) {
        e2h_errf(err, err_len, "%s: tensor '%s': bad data_offsets", path, name);
        return E2H_ERR_FORMAT;
    }
    uint64_t ob = (uint64_t)b->valuedouble, oe = (uint64_t)e->valuedouble;
    if (oe > data_len) {
        e2h_errf(err, err_len, "%s: tensor '%s': data_offsets [%llu, %llu) run past the end of the "
                 "data section (%llu bytes): file truncated?", path, name, (unsigned long long)ob,
                 (unsigned long long)oe, (unsigned long long)data_len);
        return E2H_ERR_FORMAT;
    }
    if (oe - ob != numel * elsize) {
        e2h_errf(err, err_len, "%s: tensor '%s': data_offsets span %llu bytes but shape x dtype needs "
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

// Parses one safetensors file's header and adds its tensors to the index.
static e2h_status st_load_file(struct e2h_model *m, st_index *ix, const char *path, char *err,
                               size_t err_len) {
    const uint8_t *base;
    size_t size;
    e2h_status st = st_map_file(m, path, &base, &size, err, err_len);
    if (st) return st;
    uint64_t hlen;
    memcpy(&hlen, base, 8); // little-endian host assumed (x86-64, aarch64)
    if (hlen > size - 8) {
        e2h_errf(err, err_len, "%s: header length %llu runs past the end of the file (%zu bytes)",
                 path, (unsigned long long)hlen, size);
        return E2H_ERR_FORMAT;
    }
    if (hlen > (100u << 20)) {
        e2h_errf(err, err_len, "%s: header length %llu is implausibly large", path,
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
        e2h_errf(err, err_len, "%s: header is not a JSON object", path);
        return E2H_ERR_FORMAT;
    }
    const uint8_t *data = base + 8 + hlen;
    uint64_t data_len = size - 8 - hlen;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (!strcmp(item->string, "__metadata__")) continue;
        if (!cJSON_IsObject(item)) {
            e2h_errf(err, err_len, "%s: tensor '%s': header entry is not an object", path,
                     item->string);
            st = E2H_ERR_FORMAT;
            break;
        }
        if ((st = st_add_tensor(ix, path, item, data, data_len, err, err_len))) break;
    }
    cJSON_Delete(root);
    return st;
}

static e2h_status st_load_index(struct e2h_model *m, st_index *ix, const char *dir,
                                const char *index_path, char *err, size_t err_len) {
    char *text = NULL;
    e2h_status st = e2h_read_file(index_path, &text, NULL, err, err_len);
    if (st) return st;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        e2h_errf(err, err_len, "%s: missing object field 'weight_map'", index_path);
        return E2H_ERR_FORMAT;
    }
    // load each distinct shard once, in order of first appearance
    char loaded[64][256];
    int n_loaded = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, wm) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/') || strlen(it->valuestring) >= 256) {
            e2h_errf(err, err_len, "%s: weight_map['%s'] must be a file name in the same directory",
                     index_path, it->string);
            st = E2H_ERR_FORMAT;
            break;
        }
        int seen = 0;
        for (int i = 0; i < n_loaded; i++) seen |= !strcmp(loaded[i], it->valuestring);
        if (seen) continue;
        if (n_loaded == 64) {
            e2h_errf(err, err_len, "%s: more than 64 shards", index_path);
            st = E2H_ERR_UNSUPPORTED;
            break;
        }
        snprintf(loaded[n_loaded++], 256, "%s", it->valuestring);
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, it->valuestring);
        if ((st = st_load_file(m, ix, path, err, err_len))) break;
    }
    cJSON_Delete(root);
    return st;
}

static const st_tensor *st_find(const st_index *ix, const char *name) {
    for (int i = 0; i < ix->n; i++)
        if (!strcmp(ix->t[i].name, name)) return &ix->t[i];
    return NULL;
}

// A 2-D weight (rows, cols) -> e2h_tensor with n_out = rows, n_in = cols.
static e2h_status st_get_matrix(const st_index *ix, const char *dir, const char *name, int64_t rows,
                                int64_t cols, e2h_tensor *out, char *err, size_t err_len) {
    const st_tensor *t = st_find(ix, name);
    if (!t) {
        e2h_errf(err, err_len, "%s: tensor '%s' is missing", dir, name);
        return E2H_ERR_SHAPE;
    }
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols) {
        e2h_errf(err, err_len, "%s: tensor '%s' has shape [%lld, %lld] (%d dims), expected [%lld, %lld]",
                 t->file, name, (long long)t->shape[0], (long long)(t->n_dims > 1 ? t->shape[1] : 0),
                 t->n_dims, (long long)rows, (long long)cols);
        return E2H_ERR_SHAPE;
    }
    out->data = t->data;
    out->type = t->type;
    out->n_in = cols;
    out->n_out = rows;
    return E2H_OK;
}

// A 1-D tensor converted to an owned f32 array.
static e2h_status st_get_vector(struct e2h_model *m, const st_index *ix, const char *dir,
                                const char *name, int64_t n, float **out, char *err,
                                size_t err_len) {
    const st_tensor *t = st_find(ix, name);
    if (!t) {
        e2h_errf(err, err_len, "%s: tensor '%s' is missing", dir, name);
        return E2H_ERR_SHAPE;
    }
    if (t->n_dims != 1 || t->shape[0] != n) {
        e2h_errf(err, err_len, "%s: tensor '%s' has shape [%lld] (%d dims), expected [%lld]", t->file,
                 name, (long long)t->shape[0], t->n_dims, (long long)n);
        return E2H_ERR_SHAPE;
    }
    float *v = model_alloc(m, (size_t)n * sizeof(float));
    if (!v) return E2H_ERR_NOMEM;
    e2h_convert_to_f32(t->type, t->data, v, n);
    *out = v;
    return E2H_OK;
}

static e2h_status st_bind_layers(struct e2h_model *m, const st_index *ix, const char *dir,
                                 char *err, size_t err_len) {
    const e2h_config *c = &m->cfg;
    int64_t qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    e2h_status st;
    char n[256];
#define MAT(field, suffix, rows, cols)                                                      \
    do {                                                                                    \
        snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix);                            \
        if ((st = st_get_matrix(ix, dir, n, rows, cols, &L->field, err, err_len))) return st; \
    } while (0)
#define VEC(field, suffix, len)                                                             \
    do {                                                                                    \
        snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix);                            \
        if ((st = st_get_vector(m, ix, dir, n, len, &L->field, err, err_len))) return st;   \
    } while (0)
    for (int l = 0; l < c->n_layers; l++) {
        e2h_layer *L = &m->layers[l];
        VEC(attn_norm, "input_layernorm.weight", c->dim);
        VEC(ffn_norm, "post_attention_layernorm.weight", c->dim);
        MAT(wq, "self_attn.q_proj.weight", qd, c->dim);
        MAT(wk, "self_attn.k_proj.weight", kvd, c->dim);
        MAT(wv, "self_attn.v_proj.weight", kvd, c->dim);
        MAT(wo, "self_attn.o_proj.weight", c->dim, qd);
        MAT(w_gate, "mlp.gate_proj.weight", c->hidden_dim, c->dim);
        MAT(w_up, "mlp.up_proj.weight", c->hidden_dim, c->dim);
        MAT(w_down, "mlp.down_proj.weight", c->dim, c->hidden_dim);
        if (c->has_qkv_bias) {
            VEC(bq, "self_attn.q_proj.bias", qd);
            VEC(bk, "self_attn.k_proj.bias", kvd);
            VEC(bv, "self_attn.v_proj.bias", kvd);
        }
    }
#undef MAT
#undef VEC
    return E2H_OK;
}

static e2h_status model_load_safetensors(struct e2h_model *m, const char *dir, char *err,
                                         size_t err_len) {
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = NULL;
    e2h_status st = e2h_read_file(path, &text, NULL, err, err_len);
    if (st) return st;
    st = cfg_parse(path, text, &m->cfg, err, err_len);
    free(text);
    if (st) return st;

    st_index ix = {0};
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (access(path, F_OK) == 0) {
        st = st_load_index(m, &ix, dir, path, err, err_len);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        st = st_load_file(m, &ix, path, err, err_len);
    }
    if (st) goto done;
    const e2h_config *c = &m->cfg;
    m->layers = model_alloc(m, (size_t)c->n_layers * sizeof *m->layers);
    if (!m->layers) { st = E2H_ERR_NOMEM; goto done; }
    if ((st = st_get_matrix(&ix, dir, "model.embed_tokens.weight", c->vocab_size, c->dim,
                            &m->tok_embd, err, err_len)))
        goto done;
    if ((st = st_get_vector(m, &ix, dir, "model.norm.weight", c->dim, &m->output_norm, err,
                            err_len)))
        goto done;
    if (c->tie_embeddings && !st_find(&ix, "lm_head.weight")) {
        m->output = m->tok_embd;
    } else if ((st = st_get_matrix(&ix, dir, "lm_head.weight", c->vocab_size, c->dim, &m->output,
                                   err, err_len))) {
        goto done;
    }
    if ((st = st_bind_layers(m, &ix, dir, err, err_len))) goto done;
    snprintf(m->source, sizeof m->source, "safetensors");
    m->weight_type = m->layers[0].wq.type;
    for (int i = 0; i < ix.n; i++) {
        m->weight_bytes += ix.t[i].nbytes;
        int64_t ne = 1;
        for (int d = 0; d < ix.t[i].n_dims; d++) ne *= ix.t[i].shape[d];
        m->n_params += ne;
    }
done:
    free(ix.t);
    return st;
}

// ------------------------------------------------------------------ shared parts

// HF computes inv_freq in float32 (base ** (2i/d)); we do the same so rope angles match.
int model_init_rope(struct e2h_model *m) {
    const e2h_config *c = &m->cfg;
    int half = c->head_dim / 2;
    m->inv_freq = model_alloc(m, (size_t)half * sizeof(float));
    if (!m->inv_freq) return -1;
    for (int i = 0; i < half; i++) {
        float expo = (float)(2 * i) / (float)c->head_dim;
        float f = 1.0f / powf(c->rope_theta, expo);
        if (c->rope_scaling == E2H_ROPE_LINEAR) f /= c->rope_factor;
        if (c->rope_scaling == E2H_ROPE_LLAMA3) {
            float old = (float)c->rope_orig_max_pos;
            float low_wl = old / c->rope_low_freq_factor, high_wl = old / c->rope_high_freq_factor;
            float wl = 2.0f * (float)M_PI / f;
            float scaled = wl > low_wl ? f / c->rope_factor : f;
            if (!(wl < high_wl) && !(wl > low_wl)) {
                float smooth = (old / wl - c->rope_low_freq_factor) /
                               (c->rope_high_freq_factor - c->rope_low_freq_factor);
                scaled = (1.0f - smooth) * scaled / c->rope_factor + smooth * scaled;
            }
            f = scaled;
        }
        m->inv_freq[i] = f;
    }
    return 0;
}

static int model_check_matrix(const e2h_tensor *t, const char *what, int l, char *err,
                              size_t err_len) {
    const e2h_type_traits *tr = e2h_type_traits_get(t->type);
    if (!tr || !tr->supported) {
        e2h_errf(err, err_len, "layer %d %s: unsupported tensor type %d", l, what, t->type);
        return -1;
    }
    if (t->n_in % tr->block_size != 0) {
        e2h_errf(err, err_len, "layer %d %s: row length %lld is not a multiple of the %s block size %d",
                 l, what, (long long)t->n_in, tr->name, tr->block_size);
        return -1;
    }
    return 0;
}

int model_validate(const struct e2h_model *m, char *err, size_t err_len) {
    const e2h_config *c = &m->cfg;
    if (model_check_matrix(&m->tok_embd, "token embedding", -1, err, err_len) ||
        model_check_matrix(&m->output, "output", -1, err, err_len))
        return -1;
    for (int l = 0; l < c->n_layers; l++) {
        const e2h_layer *L = &m->layers[l];
        const e2h_tensor *ts[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        const char *names[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                                "ffn_down"};
        for (int i = 0; i < 7; i++)
            if (model_check_matrix(ts[i], names[i], l, err, err_len)) return -1;
    }
    return 0;
}

static int model_quantize_tensor(struct e2h_model *m, e2h_tensor *t, int type, const e2h_ops *ops,
                                 const char *what, char *err, size_t err_len) {
    if (t->type == type) return 0;
    const e2h_type_traits *tr = e2h_type_traits_get(type);
    // K-quant super-blocks span 256 values; rows of another length fall back to a 32-block
    // type of similar size, as llama.cpp's quantizer does (q4_k -> q5_0).
    if (tr->block_size == E2H_QK_K && t->n_in % E2H_QK_K != 0 && t->n_in % 32 == 0) {
        type = E2H_TYPE_Q5_0;
        tr = e2h_type_traits_get(type);
        m->n_quant_fallback++;
    }
    if (t->n_in % tr->block_size) {
        e2h_errf(err, err_len, "cannot quantize %s to %s: row length %lld is not a multiple of %d",
                 what, tr->name, (long long)t->n_in, tr->block_size);
        return -1;
    }
    size_t src_row = e2h_type_row_size(t->type, t->n_in), dst_row = e2h_type_row_size(type, t->n_in);
    uint8_t *dst = model_alloc(m, dst_row * (size_t)t->n_out);
    float *row = malloc((size_t)t->n_in * sizeof(float));
    if (!dst || !row) {
        free(row);
        e2h_errf(err, err_len, "out of memory quantizing %s", what);
        return -1;
    }
    for (int64_t r = 0; r < t->n_out; r++) {
        ops->dequantize_row(t->type, (const uint8_t *)t->data + r * src_row, row, t->n_in);
        ops->quantize_row(type, row, dst + r * dst_row, t->n_in);
    }
    free(row);
    t->data = dst;
    t->type = type;
    return 0;
}

int model_quantize(struct e2h_model *m, int type, char *err, size_t err_len) {
    const e2h_ops *ops = e2h_ops_ref();
    m->weight_bytes = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        e2h_layer *L = &m->layers[l];
        e2h_tensor *ts[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        char what[64];
        for (int i = 0; i < 7; i++) {
            snprintf(what, sizeof what, "layer %d weight %d", l, i);
            if (model_quantize_tensor(m, ts[i], type, ops, what, err, err_len)) return -1;
            m->weight_bytes += e2h_type_row_size(ts[i]->type, ts[i]->n_in) * (size_t)ts[i]->n_out;
        }
    }
    // the output projection is as large as several layers: quantize it too (a tied
    // embedding keeps its stored copy for row lookups)
    if (model_quantize_tensor(m, &m->output, type, ops, "output", err, err_len)) return -1;
    m->weight_bytes += e2h_type_row_size(m->output.type, m->output.n_in) * (size_t)m->output.n_out;
    m->weight_type = type;
    return 0;
}

// Gives every q4_0/q4_1/q8_0 matrix a row-interleaved copy (kernels/quant_r16.h) when the
// CPU's best kernels can use it: one convert+fma per 16 rows instead of per vector, which
// makes the int8 kernels memory-bound in decode and ~3x faster in prefill. The stored
// weights stay mapped (embedding lookups, other kernel choices read them).
// Can parts[0..n) share one fused r16 copy? Same supported type and n_in, every part's rows a
// multiple of 16 (so no group straddles two parts).
static int model_can_fuse(e2h_tensor *const parts[], int n) {
    if (parts[0]->n_in > E2H_R16_NORM_MAX) return 0; // the fused RMSNorm's row buffer
    for (int i = 0; i < n; i++)
        if (!e2h_r16_supported(parts[i]->type) || parts[i]->type != parts[0]->type ||
            parts[i]->n_in != parts[0]->n_in || parts[i]->n_out % E2H_R16_ROWS)
            return 0;
    return 1;
}

// All repacked copies live in one arena (huge pages, see e2h_alloc_large), carved in two
// passes: the first (base NULL) only sums the sizes, the second repacks.
typedef struct {
    uint8_t *base; // NULL while sizing
    size_t used;
    e2h_pool *pool;
} repack_arena;

// The next `bytes` of the arena (64-byte aligned), or NULL while sizing.
static uint8_t *arena_take(repack_arena *a, size_t bytes) {
    uint8_t *p = a->base ? a->base + a->used : NULL;
    a->used += (bytes + 63) / 64 * 64;
    return p;
}

// Whether a layer gets the fused q|k|v copy, and the fused gate|up copy.
static int model_fuses_qkv(e2h_layer *L) {
    e2h_tensor *qkv[3] = {&L->wq, &L->wk, &L->wv};
    return model_can_fuse(qkv, 3);
}
static int model_fuses_gate_up(e2h_layer *L) {
    e2h_tensor *gu[2] = {&L->w_gate, &L->w_up};
    return model_can_fuse(gu, 2) && L->w_gate.n_out == L->w_up.n_out;
}

// The fused copies of a layer: q|k|v concatenated, gate/up interleaved by group.
static void model_repack_fused(struct e2h_model *m, e2h_layer *L, repack_arena *a) {
    e2h_tensor *qkv[3] = {&L->wq, &L->wk, &L->wv};
    if (model_fuses_qkv(L)) {
        const int t = L->wq.type;
        const int64_t n_in = L->wq.n_in, rows = L->wq.n_out + L->wk.n_out + L->wv.n_out;
        const int64_t gs = e2h_r16_group_stride(t, n_in);
        uint8_t *p = arena_take(a, e2h_r16_size(t, n_in, rows));
        if (p) {
            for (int i = 0, g = 0; i < 3; g += (int)(qkv[i]->n_out / E2H_R16_ROWS), i++)
                e2h_r16_repack_to(a->pool, t, qkv[i]->data, n_in, qkv[i]->n_out, p + g * gs, gs);
            L->wqkv = (e2h_tensor){NULL, t, n_in, rows, p};
            m->packed_bytes += e2h_r16_size(t, n_in, rows);
        }
    }
    if (model_fuses_gate_up(L)) {
        const int t = L->w_gate.type;
        const int64_t n_in = L->w_gate.n_in, rows = 2 * L->w_gate.n_out;
        const int64_t gs = e2h_r16_group_stride(t, n_in);
        uint8_t *p = arena_take(a, e2h_r16_size(t, n_in, rows));
        if (p) {
            e2h_r16_repack_to(a->pool, t, L->w_gate.data, n_in, L->w_gate.n_out, p, 2 * gs);
            e2h_r16_repack_to(a->pool, t, L->w_up.data, n_in, L->w_up.n_out, p + gs, 2 * gs);
            L->w_gate_up = (e2h_tensor){NULL, t, n_in, rows, p};
            m->packed_bytes += e2h_r16_size(t, n_in, rows);
        }
    }
}

// The unfused copies: every supported matrix not covered by a fused copy.
static void model_repack_layer(struct e2h_model *m, e2h_layer *L, repack_arena *a) {
    e2h_tensor *ts[7] = {&m->output};
    int skip[7] = {0};
    if (L) {
        e2h_tensor *lt[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        memcpy(ts, lt, sizeof lt);
        skip[0] = skip[1] = skip[2] = model_fuses_qkv(L);
        skip[4] = skip[5] = model_fuses_gate_up(L);
    }
    for (int i = 0; i < (L ? 7 : 1); i++) {
        const size_t bytes = skip[i] ? 0 : e2h_r16_size(ts[i]->type, ts[i]->n_in, ts[i]->n_out);
        if (!bytes) continue;
        uint8_t *p = arena_take(a, bytes);
        if (!p) continue;
        e2h_r16_repack(a->pool, ts[i]->type, ts[i]->data, ts[i]->n_in, ts[i]->n_out, p);
        ts[i]->packed = p;
        m->packed_bytes += bytes;
    }
}

// One pass over every matrix (sizing when a->base is NULL, repacking otherwise).
static void model_repack_pass(struct e2h_model *m, repack_arena *a) {
    for (int l = 0; l < m->cfg.n_layers; l++) model_repack_fused(m, &m->layers[l], a);
    for (int l = -1; l < m->cfg.n_layers; l++) model_repack_layer(m, l >= 0 ? &m->layers[l] : NULL, a);
}

static int model_repack(struct e2h_model *m, char *err, size_t err_len) {
    const e2h_ops *best = e2h_ops_get("auto");
    if (!best || !best->matmul_packed) return 0;
    repack_arena a = {NULL, 0, NULL};
    model_repack_pass(m, &a); // sizes
    if (!a.used) return 0;
    a.base = model_own(m, e2h_alloc_large(a.used));
    if (!a.base) {
        e2h_errf(err, err_len, "out of memory repacking the weights (%zu bytes); "
                 "load with no_repack (--no-repack)", a.used);
        return -1;
    }
    a.used = 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    a.pool = e2h_pool_init(ncpu > 1 ? (int)(ncpu < 16 ? ncpu : 16) : 1); // NULL: single-threaded
    model_repack_pass(m, &a);
    e2h_pool_free(a.pool);
    return 0;
}

// A ChatML template that inserts a fixed system turn when the conversation has none holds it
// as a literal: '<|im_start|>system\n<text><|im_end|>' (SmolLM2, Qwen2). Returns a copy of
// <text>, or NULL when the template has no such literal (a text with template syntax in it
// is not a literal).
static char *model_template_system(const char *t, size_t len) {
    static const char *open = "<|im_start|>system", *close = "<|im_end|>";
    const char *end = t + len;
    for (const char *p = t; p && p < end; p = memchr(p + 1, '<', (size_t)(end - p - 1))) {
        if ((size_t)(end - p) < strlen(open) || strncmp(p, open, strlen(open))) continue;
        const char *s = p + strlen(open);
        if (end - s >= 2 && s[0] == '\\' && s[1] == 'n') s += 2; // escaped in a Jinja string
        else if (s < end && s[0] == '\n') s += 1;
        else continue;
        const char *e = s;
        while (e < end && (size_t)(end - e) >= strlen(close) && strncmp(e, close, strlen(close))) e++;
        if ((size_t)(end - e) < strlen(close) || e == s) continue;
        int literal = 1;
        for (const char *q = s; q < e; q++) literal &= *q != '{' && *q != '}' && *q != '\'' && *q != '+';
        if (!literal) continue;
        char *r = malloc((size_t)(e - s) + 1);
        if (r) memcpy(r, s, (size_t)(e - s)), r[e - s] = 0;
        return r;
    }
    return NULL;
}

// Reads the chat template (GGUF metadata or tokenizer_config.json) for its default system turn.
static void model_load_chat_system(struct e2h_model *m, const char *path) {
    if (m->gguf) {
        gguf_str s;
        if (gguf_get_str((const gguf_file *)m->gguf, "tokenizer.chat_template", &s) == 0)
            m->chat_system = model_template_system(s.ptr, (size_t)s.len);
        return;
    }
    char p[2048], err[256], *txt = NULL;
    size_t n = 0;
    snprintf(p, sizeof p, "%s/tokenizer_config.json", path);
    if (access(p, F_OK) || e2h_read_file(p, &txt, &n, err, sizeof err)) return;
    cJSON *j = cJSON_ParseWithLength(txt, n);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
    if (cJSON_IsString(t)) m->chat_system = model_template_system(t->valuestring, strlen(t->valuestring));
    cJSON_Delete(j);
    free(txt);
}

const char *e2h_model_chat_system(const e2h_model *m) { return m ? m->chat_system : NULL; }

static void model_compute_id(struct e2h_model *m) {
    XXH3_state_t *s = XXH3_createState();
    if (!s) return;
    XXH3_128bits_reset(s);
    XXH3_128bits_update(s, &m->cfg, sizeof m->cfg);
    XXH3_128bits_update(s, m->path, strlen(m->path));
    XXH3_128bits_update(s, &m->weight_type, sizeof m->weight_type);
    // a sample of the first layer's weights distinguishes fine-tunes of one architecture
    size_t n = e2h_type_row_size(m->layers[0].wq.type, m->layers[0].wq.n_in);
    XXH3_128bits_update(s, m->layers[0].wq.data, n);
    XXH128_hash_t h = XXH3_128bits_digest(s);
    XXH3_freeState(s);
    m->model_id[0] = h.low64;
    m->model_id[1] = h.high64;
}

static int path_is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int path_has_suffix(const char *p, const char *suf) {
    size_t a = strlen(p), b = strlen(suf);
    return a >= b && !strcmp(p + a - b, suf);
}

static e2h_status model_parse_quant(const char *q, int *type, char *err, size_t err_len) {
    if (!q || !*q || !strcmp(q, "none")) { *type = -1; return E2H_OK; }
    if (!strcmp(q, "q8_0")) { *type = E2H_TYPE_Q8_0; return E2H_OK; }
    if (!strcmp(q, "q4_0")) { *type = E2H_TYPE_Q4_0; return E2H_OK; }
    if (!strcmp(q, "q4_k")) { *type = E2H_TYPE_Q4_K; return E2H_OK; }
    e2h_errf(err, err_len, "--quant: unknown type '%s' (use q8_0, q4_0 or q4_k)", q);
    return E2H_ERR_INVALID_ARG;
}

e2h_status e2h_model_load(const char *path, const e2h_load_opts *opts, e2h_model **out, char *err,
                          size_t err_len) {
    if (!out || !path) return E2H_ERR_INVALID_ARG;
    *out = NULL;
    int qtype;
    e2h_status st = model_parse_quant(opts ? opts->quant : NULL, &qtype, err, err_len);
    if (st) return st;
    struct e2h_model *m = calloc(1, sizeof *m);
    if (!m) return E2H_ERR_NOMEM;
    snprintf(m->path, sizeof m->path, "%s", path);
    if (path_is_dir(path)) {
        st = model_load_safetensors(m, path, err, err_len);
    } else if (path_has_suffix(path, ".gguf")) {
        st = model_load_gguf(m, path, err, err_len);
        snprintf(m->source, sizeof m->source, "gguf");
    } else if (access(path, F_OK) != 0) {
        e2h_errf(err, err_len, "%s: no such file or directory", path);
        st = E2H_ERR_IO;
    } else {
        e2h_errf(err, err_len, "%s: not a model directory (config.json + safetensors) or a .gguf file",
                 path);
        st = E2H_ERR_INVALID_ARG;
    }
    if (!st && model_validate(m, err, err_len)) st = E2H_ERR_UNSUPPORTED;
    if (!st && qtype >= 0 && model_quantize(m, qtype, err, err_len)) st = E2H_ERR_UNSUPPORTED;
    if (!st && !(opts && opts->no_repack) && model_repack(m, err, err_len)) st = E2H_ERR_NOMEM;
    if (!st && model_init_rope(m)) st = E2H_ERR_NOMEM;
    if (!st && !m->tok) {
        // a tokenizer is optional for a directory (fixtures have none), required if present
        char tp[2048];
        snprintf(tp, sizeof tp, "%s/tokenizer.json", path);
        int want = path_has_suffix(path, ".gguf") || access(tp, F_OK) == 0;
        if (want) {
            char terr[512];
            e2h_tokenizer *t = NULL;
            if (e2h_tokenizer_load(path, &t, terr, sizeof terr) == E2H_OK) {
                m->tok = t;
            } else if (!path_has_suffix(path, ".gguf")) {
                e2h_errf(err, err_len, "%s", terr);
                st = E2H_ERR_TOKENIZER;
            }
        }
    }
    if (st) {
        e2h_model_free(m);
        return st;
    }
    model_compute_id(m);
    model_load_chat_system(m, path);
    *out = m;
    return E2H_OK;
}

void e2h_model_free(e2h_model *m) {
    if (!m) return;
    if (m->tok) e2h_tokenizer_free(m->tok);
    free(m->chat_system);
    for (int i = 0; i < m->n_maps; i++) munmap(m->maps[i].addr, m->maps[i].len);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    if (m->gguf) gguf_close(m->gguf);
    free(m);
}

void e2h_model_get_info(const e2h_model *m, e2h_model_info *info) {
    const e2h_config *c = &m->cfg;
    memset(info, 0, sizeof *info);
    info->arch = c->arch;
    info->source = m->source;
    const e2h_type_traits *tr = e2h_type_traits_get(m->weight_type);
    info->weight_type = tr ? tr->name : "?";
    info->dim = c->dim;
    info->n_layers = c->n_layers;
    info->n_heads = c->n_heads;
    info->n_kv_heads = c->n_kv_heads;
    info->head_dim = c->head_dim;
    info->hidden_dim = c->hidden_dim;
    info->vocab_size = c->vocab_size;
    info->max_ctx = c->max_ctx;
    info->rope_theta = c->rope_theta;
    info->norm_eps = c->norm_eps;
    info->tie_embeddings = c->tie_embeddings;
    info->has_qkv_bias = c->has_qkv_bias;
    info->bos_id = c->bos_id;
    info->eos_id = c->n_eos ? c->eos_ids[0] : -1;
    info->n_params = m->n_params;
    info->weight_bytes = m->weight_bytes;
    info->n_quant_fallback = m->n_quant_fallback;
    info->packed_bytes = m->packed_bytes;
}

const e2h_tokenizer *e2h_model_tokenizer(const e2h_model *m) { return m ? m->tok : NULL; }
