// kernels/ref/attn.c — attention over the paged KV cache: the driver shared by every ISA
// (block tables, causal limits, per-block merging of partial softmax states, threading) and
// the scalar reference chunk kernel.
//
// For one (query, head) the result is: for each KV block in block-table order, the partial
// state (m, l, acc) of the block's visible slots (computed from q and that block only),
// merged into a running state in block order; out = acc / l. Nothing depends on which other
// queries, heads or sequences are processed together, so a sequence gets the same bits alone,
// batched, or sharing prefix blocks with others.
#include <math.h>
#include <string.h>

#include "../float_kernels.h"

// ---- scratch layout (per thread, 64-byte aligned) ----
typedef struct {
    float *m, *l, *mb, *lb; // (rows) running and chunk states
    float *acc, *accb;      // (rows, head_dim)
    float *scores;          // (E2H_ATTN_SCHUNK)
    int64_t *r_off;         // (rows) q/out offset of each row
    int *n_valid;           // (rows)
} attn_thread_buf;

static int64_t attn_max_rows(int n_heads) { return (int64_t)E2H_ATTN_QCHUNK * n_heads; }

static int64_t attn_per_thread_bytes(int n_heads, int head_dim) {
    int64_t rows = attn_max_rows(n_heads);
    int64_t floats = rows * (2 * (int64_t)head_dim + 4) + E2H_ATTN_SCHUNK;
    return (floats * 4 + rows * (8 + 4) + 63) / 64 * 64;
}

int64_t e2h_attn_scratch_size(int n_threads, int n_heads, int head_dim, int max_ctx) {
    (void)max_ctx; // slots are processed in fixed-size chunks: context length does not matter
    if (n_threads < 1) n_threads = 1;
    return n_threads * attn_per_thread_bytes(n_heads, head_dim) + 64;
}

static attn_thread_buf attn_buf(void *scratch, int ith, int n_heads, int head_dim) {
    uintptr_t base = ((uintptr_t)scratch + 63) & ~(uintptr_t)63;
    char *p = (char *)base + ith * attn_per_thread_bytes(n_heads, head_dim);
    int64_t rows = attn_max_rows(n_heads);
    attn_thread_buf b;
    b.acc = (float *)p;
    b.accb = b.acc + rows * head_dim;
    b.m = b.accb + rows * head_dim;
    b.l = b.m + rows;
    b.mb = b.l + rows;
    b.lb = b.mb + rows;
    b.scores = b.lb + rows;
    b.r_off = (int64_t *)(void *)(b.scores + E2H_ATTN_SCHUNK + (E2H_ATTN_SCHUNK & 1));
    b.n_valid = (int *)(b.r_off + rows);
    return b;
}

// ---- driver ----
typedef struct {
    e2h_attn_chunk_fn chunk;
    float *out;
    const float *q;
    const e2h_attn_seq *seqs;
    int n_seqs, n_heads;
    const e2h_kv_layer_view *kv;
    float scale;
    void *scratch;
} attn_ctx;

// Merges a chunk's partial state into the running state of each row (in chunk order).
static void attn_merge(const attn_thread_buf *b, int n_rows, int head_dim) {
    for (int r = 0; r < n_rows; r++) {
        if (b->n_valid[r] == 0) continue;
        float *acc = b->acc + (int64_t)r * head_dim;
        const float *accb = b->accb + (int64_t)r * head_dim;
        if (b->m[r] == -INFINITY) { // first visible chunk: take it as is
            b->m[r] = b->mb[r];
            b->l[r] = b->lb[r];
            memcpy(acc, accb, sizeof(float) * head_dim);
            continue;
        }
        float mn = fmaxf(b->m[r], b->mb[r]);
        float fa = expf(b->m[r] - mn), fb = expf(b->mb[r] - mn);
        b->l[r] = b->l[r] * fa + b->lb[r] * fb;
        for (int d = 0; d < head_dim; d++) acc[d] = acc[d] * fa + accb[d] * fb;
        b->m[r] = mn;
    }
}

// One work item: sequence s, KV head kh, its queries [i0, i1).
static void attn_item(const attn_ctx *c, attn_thread_buf *b, int s, int kh, int i0, int i1) {
    const e2h_kv_layer_view *kv = c->kv;
    const e2h_attn_seq *sq = &c->seqs[s];
    const int hd = kv->head_dim, bs = kv->block_size, group = c->n_heads / kv->n_kv_heads;
    const size_t esize = kv->kv_type == E2H_TYPE_F16 ? 2 : 4;
    const int n_rows = (i1 - i0) * group;
    const int64_t ld = (int64_t)c->n_heads * hd;
    for (int i = i0; i < i1; i++)
        for (int g = 0; g < group; g++) {
            int r = (i - i0) * group + g;
            b->r_off[r] = (sq->q_offset + i) * ld + (int64_t)(kh * group + g) * hd;
            b->m[r] = -INFINITY;
            b->l[r] = 0.0f;
        }
    const int64_t last = (int64_t)sq->n_past + i1 - 1; // highest position any row sees
    for (int64_t blk = 0; blk <= last / bs; blk++) {
        const int64_t id = sq->block_table[blk];
        const size_t off = (size_t)((id * kv->n_kv_heads + kh) * bs) * hd * esize;
        for (int c0 = 0; c0 < bs && blk * bs + c0 <= last; c0 += E2H_ATTN_SCHUNK) {
            const int clen = bs - c0 < E2H_ATTN_SCHUNK ? bs - c0 : E2H_ATTN_SCHUNK;
            const int64_t p0 = blk * bs + c0; // position of the chunk's first slot
            for (int r = 0; r < n_rows; r++) {
                int64_t nv = (int64_t)sq->n_past + i0 + r / group + 1 - p0;
                b->n_valid[r] = nv < 0 ? 0 : nv > clen ? clen : (int)nv;
            }
            const size_t coff = off + (size_t)c0 * hd * esize;
            c->chunk(c->q, b->r_off, b->n_valid, n_rows, (const char *)kv->k + coff,
                     (const char *)kv->v + coff, kv->kv_type, hd, c->scale, b->mb, b->lb,
                     b->accb, b->scores);
            attn_merge(b, n_rows, hd);
        }
    }
    for (int r = 0; r < n_rows; r++) {
        const float inv = 1.0f / b->l[r];
        float *o = c->out + b->r_off[r];
        for (int d = 0; d < hd; d++) o[d] = b->acc[(int64_t)r * hd + d] * inv;
    }
}

// Work items (seq, kv_head, query chunk) are dealt round-robin to threads; each item's
// result does not depend on which thread runs it.
static void attn_worker(void *p, int ith, int nth) {
    const attn_ctx *c = p;
    attn_thread_buf b = attn_buf(c->scratch, ith, c->n_heads, c->kv->head_dim);
    int64_t item = 0;
    for (int s = 0; s < c->n_seqs; s++) {
        const int nq = c->seqs[s].n_q;
        for (int kh = 0; kh < c->kv->n_kv_heads; kh++)
            for (int i0 = 0; i0 < nq; i0 += E2H_ATTN_QCHUNK, item++) {
                if (item % nth != ith) continue;
                int i1 = i0 + E2H_ATTN_QCHUNK < nq ? i0 + E2H_ATTN_QCHUNK : nq;
                attn_item(c, &b, s, kh, i0, i1);
            }
    }
}

void e2h_attention_run(e2h_attn_chunk_fn chunk, e2h_pool *pool, float *out, const float *q,
                       const e2h_attn_seq *seqs, int n_seqs, int n_heads,
                       const e2h_kv_layer_view *kv, float scale, void *scratch) {
    if (!kv || kv->n_kv_heads <= 0 || n_heads % kv->n_kv_heads || kv->block_size <= 0 ||
        kv->head_dim <= 0)
        return; // impossible shapes: the model loader rejects these before any call
    attn_ctx c = {chunk, out, q, seqs, n_seqs, n_heads, kv, scale, scratch};
    e2h_pool_run(pool, attn_worker, &c);
}

// ---- reference chunk kernel ----
static inline float kv_elem(const void *base, int kv_type, int64_t i) {
    return kv_type == E2H_TYPE_F16 ? e2h_f16_to_f32(((const e2h_f16 *)base)[i])
                                   : ((const float *)base)[i];
}

void e2h_attn_chunk_ref(const float *q, const int64_t *r_off, const int *n_valid, int n_rows,
                        const void *k, const void *v, int kv_type, int head_dim, float scale,
                        float *m, float *l, float *acc, float *scores) {
    for (int r = 0; r < n_rows; r++) {
        const int nv = n_valid[r];
        m[r] = -INFINITY;
        l[r] = 0.0f;
        if (nv == 0) continue;
        const float *qr = q + r_off[r];
        float mx = -INFINITY;
        for (int j = 0; j < nv; j++) {
            float s = 0.0f;
            for (int d = 0; d < head_dim; d++)
                s += qr[d] * kv_elem(k, kv_type, (int64_t)j * head_dim + d);
            scores[j] = s * scale;
            mx = fmaxf(mx, scores[j]);
        }
        float sum = 0.0f;
        float *a = acc + (int64_t)r * head_dim;
        for (int d = 0; d < head_dim; d++) a[d] = 0.0f;
        for (int j = 0; j < nv; j++) {
            float pj = expf(scores[j] - mx);
            sum += pj;
            for (int d = 0; d < head_dim; d++)
                a[d] += pj * kv_elem(v, kv_type, (int64_t)j * head_dim + d);
        }
        m[r] = mx;
        l[r] = sum;
    }
}

void e2h_attention_ref(e2h_pool *pool, float *out, const float *q, const e2h_attn_seq *seqs,
                       int n_seqs, int n_heads, const e2h_kv_layer_view *kv, float scale,
                       void *scratch) {
    e2h_attention_run(e2h_attn_chunk_ref, pool, out, q, seqs, n_seqs, n_heads, kv, scale,
                      scratch);
}
