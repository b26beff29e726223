// engine/forward.c — the transformer forward pass (Llama family: RMSNorm, RoPE, grouped-
// query attention, SwiGLU MLP; optional q/k/v bias for Qwen2) over a paged KV cache.
#include "forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct fwd_state {
    const e2h_ops *ops;
    int max_tokens, max_seqs, max_ctx;
    float *x;        // (T, dim) residual stream
    float *xb;       // (T, max(dim, qd)) normed input / projection output
    float *q;        // (T, qd)
    float *k;        // (T, kvd)
    float *v;        // (T, kvd)
    float *att;      // (T, qd) attention output
    float *hb;       // (T, hidden_dim)
    float *hb2;      // (T, hidden_dim)
    int32_t *pos;    // (T)
    e2h_attn_seq *aseq; // (max_seqs)
    e2h_attn_seq *aseq_out; // (max_tokens) the last layer's output rows (fwd_compact_outputs)
    void *mm_scratch;
    void *attn_scratch;
};

static void *fwd_alloc(size_t n) { return aligned_alloc(64, (n + 63) / 64 * 64); }

static int64_t fwd_mm_scratch(const struct e2h_model *m, int T) {
    const e2h_config *c = &m->cfg;
    int64_t best = ops_matmul_scratch_size(m->output.type, T, c->dim);
    for (int l = 0; l < c->n_layers; l++) {
        const e2h_layer *L = &m->layers[l];
        const e2h_tensor *ts[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) {
            int64_t s = ops_matmul_scratch_size(ts[i]->type, T, ts[i]->n_in);
            if (s > best) best = s;
        }
    }
    return best;
}

fwd_state *fwd_init(const struct e2h_model *m, const e2h_ops *ops, int max_tokens, int max_seqs,
                    int max_ctx, int n_threads) {
    const e2h_config *c = &m->cfg;
    fwd_state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    size_t T = (size_t)max_tokens;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t wide = qd > (size_t)c->dim ? qd : (size_t)c->dim;
    s->ops = ops;
    s->max_tokens = max_tokens;
    s->max_seqs = max_seqs;
    s->max_ctx = max_ctx;
    s->x = fwd_alloc(T * c->dim * sizeof(float));
    s->xb = fwd_alloc(T * wide * sizeof(float));
    s->q = fwd_alloc(T * qd * sizeof(float));
    s->k = fwd_alloc(T * kvd * sizeof(float));
    s->v = fwd_alloc(T * kvd * sizeof(float));
    s->att = fwd_alloc(T * qd * sizeof(float));
    s->hb = fwd_alloc(T * c->hidden_dim * sizeof(float));
    s->hb2 = fwd_alloc(T * c->hidden_dim * sizeof(float));
    s->pos = fwd_alloc(T * sizeof(int32_t));
    s->aseq = fwd_alloc((size_t)max_seqs * sizeof(e2h_attn_seq));
    s->aseq_out = fwd_alloc(T * sizeof(e2h_attn_seq));
    s->mm_scratch = fwd_alloc((size_t)fwd_mm_scratch(m, max_tokens));
    s->attn_scratch = fwd_alloc((size_t)kern_attn_scratch_size(n_threads, c->n_heads, c->head_dim,
                                                               max_ctx));
    if (!s->x || !s->xb || !s->q || !s->k || !s->v || !s->att || !s->hb || !s->hb2 || !s->pos ||
        !s->aseq || !s->aseq_out || !s->mm_scratch || !s->attn_scratch) {
        fwd_free(s);
        return NULL;
    }
    return s;
}

void fwd_free(fwd_state *s) {
    if (!s) return;
    free(s->x); free(s->xb); free(s->q); free(s->k); free(s->v); free(s->att);
    free(s->hb); free(s->hb2); free(s->pos); free(s->aseq); free(s->aseq_out);
    free(s->mm_scratch); free(s->attn_scratch);
    free(s);
}

int fwd_max_tokens(const fwd_state *s) { return s->max_tokens; }

static void fwd_matmul(fwd_state *s, e2h_pool *pool, float *y, int64_t ldy, const float *x,
                       const e2h_tensor *w, int64_t n_tok) {
    if (w->packed && s->ops->matmul_packed) {
        const e2h_mm_seg seg = {y, ldy, w->n_out};
        const e2h_mm_out out = {&seg, 1, 0, NULL, 0.0f};
        s->ops->matmul_packed(pool, &out, x, w->packed, w->type, n_tok, w->n_in, w->n_out, s->mm_scratch);
    } else
        s->ops->matmul(pool, y, ldy, x, w->data, w->type, n_tok, w->n_in, w->n_out, s->mm_scratch);
}

static void fwd_add_bias(float *y, const float *b, int64_t n, int64_t dim) {
    if (!b) return;
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < dim; i++) y[t * dim + i] += b[i];
}

static void fwd_add(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

// Stores this layer's new K/V rows (T, n_kv_heads*head_dim) into the paged cache.
static void fwd_store_kv(fwd_state *s, kv_pool *kv, int layer, const fwd_seq *seqs, int n_seqs,
                         int hd, int n_kv_heads) {
    const kv_config *kc = kv_pool_config(kv);
    int bs = kc->block_size, f16 = kc->kv_type == E2H_TYPE_F16;
    int64_t kvd = (int64_t)n_kv_heads * hd, row = 0;
    for (int si = 0; si < n_seqs; si++) {
        const fwd_seq *q = &seqs[si];
        for (int32_t i = 0; i < q->n; i++, row++) {
            int32_t p = q->kv->n_tokens + i;
            int32_t blk = q->kv->blocks[p / bs];
            int slot = p % bs;
            for (int h = 0; h < n_kv_heads; h++) {
                const float *ks = s->k + row * kvd + (int64_t)h * hd;
                const float *vs = s->v + row * kvd + (int64_t)h * hd;
                void *kp = kv_pool_k_piece(kv, layer, blk, h);
                void *vd = kv_pool_v_ptr(kv, layer, blk, h, slot);
                // K element d of this slot at k0 + d * w (the chunk is stored transposed)
                const int64_t k0 = kern_kv_k_index(bs, hd, slot, 0), w = kern_kv_k_width(bs, slot);
                if (f16) {
                    e2h_f16 *kh = kp, *vh = vd;
                    for (int d = 0; d < hd; d++) {
                        kh[k0 + d * w] = kern_f32_to_f16(ks[d]);
                        vh[d] = kern_f32_to_f16(vs[d]);
                    }
                } else {
                    float *kf = kp;
                    for (int d = 0; d < hd; d++) kf[k0 + d * w] = ks[d];
                    memcpy(vd, vs, (size_t)hd * sizeof(float));
                }
            }
        }
    }
}

// Norm, Q/K/V projections and RoPE of all T rows, and their K/V into the cache.
static void fwd_attn_in(fwd_state *s, const struct e2h_model *m, int l, kv_pool *kv,
                        e2h_pool *pool, const fwd_seq *seqs, int n_seqs, int64_t T) {
    const e2h_config *c = &m->cfg;
    const e2h_layer *L = &m->layers[l];
    const e2h_ops *ops = s->ops;
    int hd = c->head_dim;
    int64_t qd = (int64_t)c->n_heads * hd, kvd = (int64_t)c->n_kv_heads * hd;
    if (L->wqkv.packed && ops->matmul_packed) { // one call: RMSNorm + quantize once, one region
        const e2h_mm_seg segs[3] = {{s->q, qd, qd}, {s->k, kvd, kvd}, {s->v, kvd, kvd}};
        const e2h_mm_out out = {segs, 3, 0, L->attn_norm, c->norm_eps};
        ops->matmul_packed(pool, &out, s->x, L->wqkv.packed, L->wqkv.type, T, c->dim, L->wqkv.n_out,
                           s->mm_scratch);
    } else {
        ops->rmsnorm(s->xb, s->x, L->attn_norm, T, c->dim, c->norm_eps);
        fwd_matmul(s, pool, s->q, qd, s->xb, &L->wq, T);
        fwd_matmul(s, pool, s->k, kvd, s->xb, &L->wk, T);
        fwd_matmul(s, pool, s->v, kvd, s->xb, &L->wv, T);
    }
    fwd_add_bias(s->q, L->bq, T, qd);
    fwd_add_bias(s->k, L->bk, T, kvd);
    fwd_add_bias(s->v, L->bv, T, kvd);
    ops->rope(s->q, s->pos, T, c->n_heads, hd, m->inv_freq, c->rope_interleaved);
    ops->rope(s->k, s->pos, T, c->n_kv_heads, hd, m->inv_freq, c->rope_interleaved);
    fwd_store_kv(s, kv, l, seqs, n_seqs, hd, c->n_kv_heads);
}

// Attention of the T rows of q described by aseq, output projection and MLP, added to their
// residual rows x[0, T).
static void fwd_attn_out_mlp(fwd_state *s, const struct e2h_model *m, int l, kv_pool *kv,
                             e2h_pool *pool, const e2h_attn_seq *aseq, int n_aseq, int64_t T) {
    const e2h_config *c = &m->cfg;
    const e2h_layer *L = &m->layers[l];
    const e2h_ops *ops = s->ops;
    e2h_kv_layer_view view = kv_pool_layer_view(kv, l);
    ops->attention(pool, s->att, s->q, aseq, n_aseq, c->n_heads, &view,
                   1.0f / sqrtf((float)c->head_dim), s->attn_scratch);
    fwd_matmul(s, pool, s->xb, c->dim, s->att, &L->wo, T);
    fwd_add(s->x, s->xb, T * c->dim);

    // MLP block
    if (L->w_gate_up.packed && ops->matmul_packed) { // RMSNorm in the prologue, SwiGLU in the epilogue
        const e2h_mm_seg seg = {s->hb, c->hidden_dim, c->hidden_dim};
        const e2h_mm_out out = {&seg, 1, 1, L->ffn_norm, c->norm_eps};
        ops->matmul_packed(pool, &out, s->x, L->w_gate_up.packed, L->w_gate_up.type, T, c->dim,
                           L->w_gate_up.n_out, s->mm_scratch);
    } else {
        ops->rmsnorm(s->xb, s->x, L->ffn_norm, T, c->dim, c->norm_eps);
        fwd_matmul(s, pool, s->hb, c->hidden_dim, s->xb, &L->w_gate, T);
        fwd_matmul(s, pool, s->hb2, c->hidden_dim, s->xb, &L->w_up, T);
        ops->swiglu(s->hb, s->hb, s->hb2, T, c->hidden_dim);
    }
    fwd_matmul(s, pool, s->xb, c->dim, s->hb, &L->w_down, T);
    fwd_add(s->x, s->xb, T * c->dim);
}

// The row of the j-th output of a sequence.
static int32_t fwd_out_row(const fwd_seq *q, int32_t j) {
    return q->out_rows ? q->out_rows[j] : q->n - q->n_out + j;
}

// Moves the output rows' q and residual rows to the front (rows 0..n_out-1, in output-row
// order) and describes them for attention in s->aseq_out: one entry per run of consecutive
// output rows of a sequence, at its own position. Returns the number of entries.
static int fwd_compact_outputs(fwd_state *s, const struct e2h_model *m, const fwd_seq *seqs,
                               int n_seqs) {
    const int64_t dim = m->cfg.dim, qd = (int64_t)m->cfg.n_heads * m->cfg.head_dim;
    int64_t r = 0, o = 0;
    int n_a = 0;
    for (int i = 0; i < n_seqs; r += seqs[i].n, i++) {
        const fwd_seq *q = &seqs[i];
        for (int32_t j = 0; j < q->n_out; j++, o++) {
            const int32_t row = fwd_out_row(q, j);
            if (o != r + row) { // o <= r + row: rows only move forward
                memmove(s->q + o * qd, s->q + (r + row) * qd, (size_t)qd * sizeof(float));
                memmove(s->x + o * dim, s->x + (r + row) * dim, (size_t)dim * sizeof(float));
            }
            if (j && row == fwd_out_row(q, j - 1) + 1) {
                s->aseq_out[n_a - 1].n_q++;
                continue;
            }
            s->aseq_out[n_a++] = (e2h_attn_seq){q->kv->blocks, q->kv->n_tokens + row, 1, (int32_t)o};
        }
    }
    return n_a;
}

static e2h_status fwd_check(fwd_state *s, const struct e2h_model *m, kv_pool *kv,
                            const fwd_seq *seqs, int n_seqs, int64_t *T_out, char *err,
                            size_t err_len) {
    int64_t T = 0;
    int bs = kv_pool_config(kv)->block_size;
    if (n_seqs < 1 || n_seqs > s->max_seqs) {
        fmt_errf(err, err_len, "forward: %d sequences in one batch (max %d)", n_seqs, s->max_seqs);
        return E2H_ERR_INVALID_ARG;
    }
    for (int i = 0; i < n_seqs; i++) {
        const fwd_seq *q = &seqs[i];
        if (q->n < 1 || q->n_out < 0 || q->n_out > q->n) {
            fmt_errf(err, err_len, "forward: sequence %d: bad token count %d / output rows %d", i,
                     q->n, q->n_out);
            return E2H_ERR_INVALID_ARG;
        }
        for (int32_t j = 0; q->out_rows && j < q->n_out; j++) {
            if (q->out_rows[j] < 0 || q->out_rows[j] >= q->n || (j && q->out_rows[j] <= q->out_rows[j - 1])) {
                fmt_errf(err, err_len, "forward: sequence %d: output rows not ascending in [0, %d)",
                         i, q->n);
                return E2H_ERR_INVALID_ARG;
            }
        }
        int64_t end = (int64_t)q->kv->n_tokens + q->n;
        if (end > s->max_ctx) {
            fmt_errf(err, err_len, "sequence of %lld tokens exceeds the context of %d tokens",
                     (long long)end, s->max_ctx);
            return E2H_ERR_CONTEXT;
        }
        if ((int64_t)q->kv->n_blocks * bs < end) {
            fmt_errf(err, err_len, "forward: sequence %d has no KV blocks reserved for position %lld",
                     i, (long long)end - 1);
            return E2H_ERR_INVALID_ARG;
        }
        for (int32_t j = 0; j < q->n; j++) {
            if (q->tokens[j] < 0 || q->tokens[j] >= m->cfg.vocab_size) {
                fmt_errf(err, err_len, "token id %d is outside the vocabulary [0, %d)", q->tokens[j],
                         m->cfg.vocab_size);
                return E2H_ERR_INVALID_ARG;
            }
        }
        T += q->n;
    }
    if (T > s->max_tokens) {
        fmt_errf(err, err_len, "forward: %lld tokens in one batch (max %d)", (long long)T,
                 s->max_tokens);
        return E2H_ERR_INVALID_ARG;
    }
    *T_out = T;
    return E2H_OK;
}

// Token embeddings into x, positions into pos, attention descriptors into aseq.
static void fwd_embed(fwd_state *s, const struct e2h_model *m, const fwd_seq *seqs, int n_seqs) {
    const e2h_tensor *E = &m->tok_embd;
    size_t row = kern_type_row_size(E->type, E->n_in);
    int64_t r = 0;
    for (int i = 0; i < n_seqs; i++) {
        const fwd_seq *q = &seqs[i];
        s->aseq[i].block_table = q->kv->blocks;
        s->aseq[i].n_past = q->kv->n_tokens;
        s->aseq[i].n_q = q->n;
        s->aseq[i].q_offset = (int32_t)r;
        for (int32_t j = 0; j < q->n; j++, r++) {
            s->pos[r] = q->kv->n_tokens + j;
            s->ops->dequantize_row(E->type, (const uint8_t *)E->data + (size_t)q->tokens[j] * row,
                                   s->x + r * m->cfg.dim, E->n_in);
        }
    }
}

// Copies the residual stream (s->x) of every output row to dst, row i at dst + i * ld, in
// output-row order (compact: the output rows are already rows 0..n_out-1 of s->x). Returns
// the number of rows.
static int64_t fwd_gather(const fwd_state *s, int dim, const fwd_seq *seqs, int n_seqs, int compact,
                          float *dst, int64_t ld) {
    int64_t n_out = 0, r = 0;
    for (int i = 0; i < n_seqs; r += seqs[i].n, i++) {
        const fwd_seq *q = &seqs[i];
        for (int32_t j = 0; j < q->n_out; j++) {
            const int64_t src = compact ? n_out : r + fwd_out_row(q, j);
            if (dst + n_out * ld != s->x + src * dim)
                memmove(dst + n_out * ld, s->x + src * dim, (size_t)dim * sizeof(float));
            n_out++;
        }
    }
    return n_out;
}

e2h_status fwd_run(fwd_state *s, const struct e2h_model *m, kv_pool *kv, e2h_pool *pool,
                   const fwd_seq *seqs, int n_seqs, float *logits, float *hidden, int feat_layer,
                   char *err, size_t err_len) {
    int64_t T;
    e2h_status st = fwd_check(s, m, kv, seqs, n_seqs, &T, err, err_len);
    if (st) return st;
    const e2h_config *c = &m->cfg;
    if (feat_layer < 0 || feat_layer > c->n_layers) {
        fmt_errf(err, err_len, "forward: feature layer %d is outside 0..%d", feat_layer, c->n_layers);
        return E2H_ERR_INVALID_ARG;
    }
    // with a feature layer, hidden rows are (final-normed state, residual after feat_layer blocks)
    const int64_t ld = feat_layer && hidden ? 2 * (int64_t)c->dim : c->dim;
    int64_t n_rows = 0;
    for (int i = 0; i < n_seqs; i++) n_rows += seqs[i].n_out;
    fwd_embed(s, m, seqs, n_seqs);
    int compact = 0;
    for (int l = 0; l < c->n_layers; l++) {
        fwd_attn_in(s, m, l, kv, pool, seqs, n_seqs, T);
        if (l + 1 < c->n_layers || n_rows == T) {
            fwd_attn_out_mlp(s, m, l, kv, pool, s->aseq, n_seqs, T);
        } else if (n_rows > 0) {
            // Last layer: its K/V are stored; only the output rows' states are read after
            // it, so attention, projection and MLP run on those rows alone (each row's
            // attention sees the same blocks alone as in its chunk: same bits).
            const int n_a = fwd_compact_outputs(s, m, seqs, n_seqs);
            fwd_attn_out_mlp(s, m, l, kv, pool, s->aseq_out, n_a, n_rows);
            compact = 1;
        }
        // a read of the residual stream only: the pass itself is unchanged
        if (l + 1 == feat_layer && hidden)
            fwd_gather(s, c->dim, seqs, n_seqs, compact, hidden + c->dim, ld);
    }

    // gather the output rows, then the final norm on those only
    int64_t n_out = fwd_gather(s, c->dim, seqs, n_seqs, compact, s->xb, c->dim);
    if (n_out == 0) return E2H_OK;
    s->ops->rmsnorm(s->xb, s->xb, m->output_norm, n_out, c->dim, c->norm_eps);
    for (int64_t i = 0; hidden && i < n_out; i++)
        memcpy(hidden + i * ld, s->xb + i * c->dim, (size_t)c->dim * sizeof(float));
    if (!logits) return E2H_OK;
    // keep only the rows that need logits (moved forward in place: order is kept), then the
    // output projection on those
    int64_t n_lg = 0, o = 0;
    for (int i = 0; i < n_seqs; i++) {
        const fwd_seq *q = &seqs[i];
        for (int32_t j = 0; j < q->n_out; j++, o++) {
            if (q->out_logits && !q->out_logits[j]) continue;
            if (n_lg != o)
                memmove(s->xb + n_lg * c->dim, s->xb + o * c->dim, (size_t)c->dim * sizeof(float));
            n_lg++;
        }
    }
    if (n_lg) fwd_matmul(s, pool, logits, c->vocab_size, s->xb, &m->output, n_lg);
    return E2H_OK;
}
