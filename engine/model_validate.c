// engine/model_validate.c — does every weight matrix have a type and row length the kernels
// support? Checked once after either loader, before anything runs.
#include "model.h"

#include "util.h"

static int model_check_matrix(const e2h_tensor *t, const char *what, int l, char *err,
                              size_t err_len) {
    const e2h_type_traits *tr = kern_type_traits_get(t->type);
    if (!tr || !tr->supported) {
        fmt_errf(err, err_len, "layer %d %s: unsupported tensor type %d", l, what, t->type);
        return -1;
    }
    if (t->n_in % tr->block_size != 0) {
        fmt_errf(err, err_len, "layer %d %s: row length %lld is not a multiple of the %s block size %d",
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
