// engine/model_quantize.c — quantize-on-load: converts the linear weights of a loaded model to
// one quant type (e2h_load_opts.quant) into model-owned buffers.
#include "model.h"

#include <stdio.h>
#include <stdlib.h>

#include "util.h"

static int model_quantize_tensor(struct e2h_model *m, e2h_tensor *t, int type, const e2h_ops *ops,
                                 const char *what, char *err, size_t err_len) {
    if (t->type == type) return 0;
    const e2h_type_traits *tr = kern_type_traits_get(type);
    // K-quant super-blocks span 256 values; rows of another length fall back to a 32-block
    // type of similar size, as llama.cpp's quantizer does (q4_k -> q5_0).
    if (tr->block_size == E2H_QK_K && t->n_in % E2H_QK_K != 0 && t->n_in % 32 == 0) {
        type = E2H_TYPE_Q5_0;
        tr = kern_type_traits_get(type);
        m->n_quant_fallback++;
    }
    if (t->n_in % tr->block_size) {
        fmt_errf(err, err_len, "cannot quantize %s to %s: row length %lld is not a multiple of %d",
                 what, tr->name, (long long)t->n_in, tr->block_size);
        return -1;
    }
    size_t src_row = kern_type_row_size(t->type, t->n_in), dst_row = kern_type_row_size(type, t->n_in);
    uint8_t *dst = model_alloc(m, dst_row * (size_t)t->n_out);
    float *row = malloc((size_t)t->n_in * sizeof(float));
    if (!dst || !row) {
        free(row);
        fmt_errf(err, err_len, "out of memory quantizing %s", what);
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
    const e2h_ops *ops = ops_ref();
    m->weight_bytes = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        e2h_layer *L = &m->layers[l];
        e2h_tensor *ts[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        char what[64];
        for (int i = 0; i < 7; i++) {
            snprintf(what, sizeof what, "layer %d weight %d", l, i);
            if (model_quantize_tensor(m, ts[i], type, ops, what, err, err_len)) return -1;
            m->weight_bytes += kern_type_row_size(ts[i]->type, ts[i]->n_in) * (size_t)ts[i]->n_out;
        }
    }
    // the output projection is as large as several layers: quantize it too (a tied
    // embedding keeps its stored copy for row lookups)
    if (model_quantize_tensor(m, &m->output, type, ops, "output", err, err_len)) return -1;
    m->weight_bytes += kern_type_row_size(m->output.type, m->output.n_in) * (size_t)m->output.n_out;
    m->weight_type = type;
    return 0;
}
