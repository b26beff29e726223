// engine/load_hf.c — the Hugging Face architecture adapter: maps a model directory
// (config.json + safetensors, read by formats/) onto struct e2h_model.
//
// Weights are mmapped and kept in their stored dtype; only 1-D tensors (norms, biases) are
// converted to f32 copies, which are tiny.
#include "model.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../formats/hf_config.h"
#include "../formats/safetensors.h"
#include "util.h"

static_assert((int)ST_TYPE_F32 == (int)E2H_TYPE_F32 && (int)ST_TYPE_F16 == (int)E2H_TYPE_F16 &&
                  (int)ST_TYPE_BF16 == (int)E2H_TYPE_BF16,
              "safetensors type ids are e2h_type ids");

// A 2-D weight (rows, cols) -> e2h_tensor with n_out = rows, n_in = cols.
static e2h_status hf_get_matrix(const st_index *ix, const char *dir, const char *name, int64_t rows,
                                int64_t cols, e2h_tensor *out, char *err, size_t err_len) {
    const st_tensor *t = st_find(ix, name);
    if (!t) {
        fmt_errf(err, err_len, "%s: tensor '%s' is missing", dir, name);
        return E2H_ERR_SHAPE;
    }
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols) {
        fmt_errf(err, err_len, "%s: tensor '%s' has shape [%lld, %lld] (%d dims), expected [%lld, %lld]",
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
static e2h_status hf_get_vector(struct e2h_model *m, const st_index *ix, const char *dir,
                                const char *name, int64_t n, float **out, char *err,
                                size_t err_len) {
    const st_tensor *t = st_find(ix, name);
    if (!t) {
        fmt_errf(err, err_len, "%s: tensor '%s' is missing", dir, name);
        return E2H_ERR_SHAPE;
    }
    if (t->n_dims != 1 || t->shape[0] != n) {
        fmt_errf(err, err_len, "%s: tensor '%s' has shape [%lld] (%d dims), expected [%lld]", t->file,
                 name, (long long)t->shape[0], t->n_dims, (long long)n);
        return E2H_ERR_SHAPE;
    }
    float *v = model_alloc(m, (size_t)n * sizeof(float));
    if (!v) return E2H_ERR_NOMEM;
    util_convert_to_f32(t->type, t->data, v, n);
    *out = v;
    return E2H_OK;
}

static e2h_status hf_bind_layers(struct e2h_model *m, const st_index *ix, const char *dir,
                                 char *err, size_t err_len) {
    const e2h_config *c = &m->cfg;
    int64_t qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    e2h_status st;
    char n[256];
#define MAT(field, suffix, rows, cols)                                                      \
    do {                                                                                    \
        snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix);                            \
        if ((st = hf_get_matrix(ix, dir, n, rows, cols, &L->field, err, err_len))) return st; \
    } while (0)
#define VEC(field, suffix, len)                                                             \
    do {                                                                                    \
        snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix);                            \
        if ((st = hf_get_vector(m, ix, dir, n, len, &L->field, err, err_len))) return st;   \
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

e2h_status model_load_hf(struct e2h_model *m, const char *dir, char *err, size_t err_len) {
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = NULL;
    e2h_status st = fmt_read_file(path, &text, NULL, err, err_len);
    if (st) return st;
    st = hf_config_parse(path, text, &m->cfg, err, err_len);
    free(text);
    if (st) return st;

    st_index ix = {0};
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (access(path, F_OK) == 0) {
        st = st_index_add_shards(&ix, dir, path, err, err_len);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        st = st_index_add_file(&ix, path, err, err_len);
    }
    if (st) goto done;
    const e2h_config *c = &m->cfg;
    m->layers = model_alloc(m, (size_t)c->n_layers * sizeof *m->layers);
    if (!m->layers) { st = E2H_ERR_NOMEM; goto done; }
    if ((st = hf_get_matrix(&ix, dir, "model.embed_tokens.weight", c->vocab_size, c->dim,
                            &m->tok_embd, err, err_len)))
        goto done;
    if ((st = hf_get_vector(m, &ix, dir, "model.norm.weight", c->dim, &m->output_norm, err,
                            err_len)))
        goto done;
    // PRM classes have no lm_head (their head is read by engine/prm): the embeddings stand in
    // so the forward pass runs; their logits mean nothing (no_lm_head tells the PRM code).
    int prm_arch = !strcmp(c->arch, "Qwen2ForProcessRewardModel") || !strcmp(c->arch, "Qwen2ForPrmModel");
    if ((c->tie_embeddings || prm_arch) && !st_find(&ix, "lm_head.weight")) {
        m->output = m->tok_embd;
        m->no_lm_head = prm_arch && !c->tie_embeddings;
    } else if ((st = hf_get_matrix(&ix, dir, "lm_head.weight", c->vocab_size, c->dim, &m->output,
                                   err, err_len))) {
        goto done;
    }
    if ((st = hf_bind_layers(m, &ix, dir, err, err_len))) goto done;
    snprintf(m->source, sizeof m->source, "safetensors");
    m->weight_type = m->layers[0].wq.type;
    for (int i = 0; i < ix.n; i++) {
        m->weight_bytes += ix.t[i].nbytes;
        int64_t ne = 1;
        for (int d = 0; d < ix.t[i].n_dims; d++) ne *= ix.t[i].shape[d];
        m->n_params += ne;
    }
done:
    // the tensors point into the mappings: the model keeps them (and unmaps them at free),
    // also after a failure, as it does every other buffer of a half-loaded model
    for (int i = 0; i < ix.n_maps && m->n_maps < (int)(sizeof m->maps / sizeof m->maps[0]); i++)
        m->maps[m->n_maps++] = (e2h_mapping){ix.maps[i].addr, ix.maps[i].len};
    ix.n_maps = 0;
    st_index_free(&ix);
    return st;
}
