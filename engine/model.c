// engine/model.c — the model's life: e2h_model_load picks the loader by path (load_hf.c for a
// directory, load_gguf.c for a .gguf), then validates, quantizes, repacks, builds the rope
// table, loads the tokenizer and reads the chat template (one file per step); info and free.
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "../formats/gguf.h"
#include "util.h"

// Records p (may be NULL) as owned by the model; frees it and returns NULL if the list
// cannot grow.
void *model_own(struct e2h_model *m, void *p) {
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

static void model_compute_id(struct e2h_model *m) {
    XXH3_state_t *s = XXH3_createState();
    if (!s) return;
    XXH3_128bits_reset(s);
    XXH3_128bits_update(s, &m->cfg, sizeof m->cfg);
    XXH3_128bits_update(s, &m->weight_type, sizeof m->weight_type);
    // a sample of the first layer's weights distinguishes fine-tunes of one architecture
    // (not the path: the same weights at two paths are the same model, and a PRM head file
    // names its policy by this id). The sample also takes the last layer and an output row.
    size_t n = kern_type_row_size(m->layers[0].wq.type, m->layers[0].wq.n_in);
    XXH3_128bits_update(s, m->layers[0].wq.data, n);
    const e2h_tensor *wl = &m->layers[m->cfg.n_layers - 1].w_down;
    if (wl->data) XXH3_128bits_update(s, wl->data, kern_type_row_size(wl->type, wl->n_in));
    if (m->output.data)
        XXH3_128bits_update(s, m->output.data, kern_type_row_size(m->output.type, m->output.n_in));
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
    fmt_errf(err, err_len, "quant: unknown type '%s' (use q8_0, q4_0 or q4_k)", q);
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
        st = model_load_hf(m, path, err, err_len);
    } else if (path_has_suffix(path, ".gguf")) {
        st = model_load_gguf(m, path, err, err_len);
        snprintf(m->source, sizeof m->source, "gguf");
    } else if (access(path, F_OK) != 0) {
        // errno tells a missing file from a symlink loop or a permission problem
        fmt_errf(err, err_len, "%s: %s", path, strerror(errno));
        st = E2H_ERR_IO;
    } else {
        fmt_errf(err, err_len, "%s: not a model directory (config.json + safetensors) or a .gguf file",
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
                fmt_errf(err, err_len, "%s", terr);
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
    free(m->chat_template);
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
    const e2h_type_traits *tr = kern_type_traits_get(m->weight_type);
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
    snprintf(info->model_id, sizeof info->model_id, "%016llx%016llx",
             (unsigned long long)m->model_id[0], (unsigned long long)m->model_id[1]);
}

const e2h_tokenizer *e2h_model_tokenizer(const e2h_model *m) { return m ? m->tok : NULL; }
