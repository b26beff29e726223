// kernels/ref/attn.c — attention over the paged KV cache: the driver shared by every ISA
// (work items, block tables, causal limits, cascades, threading), the chunked phase used by
// the ref and AVX2 tables (chunk kernel + per-chunk merge) and the scalar reference chunk
// kernel. The AVX-512 phase (its own tiles and merge) lives in kernels/x86/float_avx512.c.
//
// For one (query, head) the result is: for each KV block in block-table order, the partial
// state (m, l, acc) of the block's visible slots (computed from q and that block only),
// merged into a running state in block order; out = acc / l. Nothing depends on which other
// queries, heads or sequences are processed together, so a sequence gets the same bits alone,
// batched, or sharing prefix blocks with others.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../float_kernels.h"

// ---- scratch layout (per thread, 64-byte aligned) ----
typedef struct {
    float *m, *l;           // (rows) running states
    float *acc;             // (rows, head_dim)
    int64_t *r_off;         // (rows) q/out offset of each row
    int32_t *limit;         // (rows) last position each row sees
    float *work;            // kern_attn_work_floats(rows, head_dim): the phase kernel's
} attn_thread_buf;

// Rows of one work item: up to E2H_ATTN_MAX_TOKENS query tokens x every head of a group
// (bounded by n_heads).
#define E2H_ATTN_MAX_TOKENS 64
static int64_t attn_max_rows(int n_heads) { return (int64_t)E2H_ATTN_MAX_TOKENS * n_heads; }

static int64_t attn_round16(int64_t n) { return (n + 15) / 16 * 16; }

// Enough for both phase kinds: the chunked one (mb, lb, n_valid, accb, scores) and the
// AVX-512 one (transposed q and state per 16-row group, f32 K/V tiles, K^T, p tile, n_valid).
int64_t kern_attn_work_floats(int64_t n_rows, int head_dim) {
    const int64_t rp = attn_round16(n_rows), hp = attn_round16(head_dim);
    return rp * (2 * hp + 8) + 112 * hp + 1024;
}

static int64_t attn_per_thread_bytes(int n_heads, int head_dim) {
    const int64_t rp = attn_round16(attn_max_rows(n_heads));
    const int64_t floats = rp * (head_dim + 2) + kern_attn_work_floats(rp, head_dim);
    return (floats * 4 + rp * (8 + 4) + 63) / 64 * 64 + 64;
}

int64_t kern_attn_scratch_size(int n_threads, int n_heads, int head_dim, int max_ctx) {
    (void)max_ctx; // slots are processed in fixed-size chunks: context length does not matter
    if (n_threads < 1) n_threads = 1;
    return n_threads * attn_per_thread_bytes(n_heads, head_dim) + 64;
}

static attn_thread_buf attn_buf(void *scratch, int ith, int n_heads, int head_dim) {
    uintptr_t base = ((uintptr_t)scratch + 63) & ~(uintptr_t)63;
    char *p = (char *)base + ith * attn_per_thread_bytes(n_heads, head_dim);
    const int64_t rp = attn_round16(attn_max_rows(n_heads));
    attn_thread_buf b;
    b.work = (float *)p; // first: keeps the 64-byte alignment the AVX-512 phase wants
    b.acc = b.work + kern_attn_work_floats(rp, head_dim);
    b.m = b.acc + rp * head_dim;
    b.l = b.m + rp;
    b.r_off = (int64_t *)(void *)(b.l + rp); // 8-byte aligned: rp is a multiple of 16
    b.limit = (int32_t *)(b.r_off + rp);
    return b;
}

// ---- driver ----
// A work item: KV heads [kh0, kh1) and a list of segments (sequence, query range); its rows
// are laid out [kv head][segment][token][query head of the group]. Segments come in
// prefix-tree order (see attn_order): seg_lcp[i] is
// the number of leading blocks segments i and i + 1 share (same ids in both block tables,
// and every row of both sees those blocks completely). attn_item walks that tree: the blocks
// a run of segments shares are processed once for all of its rows, then each sub-run goes on
// alone. Every row still meets its blocks in block-table order, so its arithmetic is the same
// however items are formed.
#define ATTN_MAX_SEGS 64
typedef struct {
    int kh0, kh1;
    int n_segs;
    int32_t seg_seq[ATTN_MAX_SEGS], seg_i0[ATTN_MAX_SEGS], seg_i1[ATTN_MAX_SEGS];
    int32_t seg_lcp[ATTN_MAX_SEGS];
} attn_item_desc;

typedef struct {
    e2h_attn_phase_fn phase;
    float *out;
    const float *q;
    const e2h_attn_seq *seqs;
    int n_seqs, n_heads;
    const e2h_kv_layer_view *kv;
    float scale;
    void *scratch;
    const int32_t *order; // (n_seqs) sequences in prefix-tree order, or NULL: batch order
    const int32_t *lcp;   // (n_seqs) blocks order[i] and order[i + 1] share (0 for the last)
} attn_ctx;

// ---- the chunked phase (ref, AVX2) ----
typedef struct {
    float *mb, *lb, *accb, *scores; // chunk states (rows), (rows, head_dim), (SCHUNK)
    int *n_valid;                   // (rows)
} attn_chunk_buf;

// Merges a chunk's partial state into the running state of the rows (in chunk order).
static void attn_merge(const e2h_attn_phase *ph, const attn_chunk_buf *b, int head_dim) {
    for (int r = 0; r < ph->n_rows; r++) {
        if (b->n_valid[r] == 0) continue;
        float *acc = ph->acc + (int64_t)r * head_dim;
        const float *accb = b->accb + (int64_t)r * head_dim;
        if (ph->m[r] == -INFINITY) { // first visible chunk: take it as is
            ph->m[r] = b->mb[r];
            ph->l[r] = b->lb[r];
            memcpy(acc, accb, sizeof(float) * head_dim);
            continue;
        }
        float mn = fmaxf(ph->m[r], b->mb[r]);
        float fa = expf(ph->m[r] - mn), fb = expf(b->mb[r] - mn);
        ph->l[r] = ph->l[r] * fa + b->lb[r] * fb;
        for (int d = 0; d < head_dim; d++) acc[d] = acc[d] * fa + accb[d] * fb;
        ph->m[r] = mn;
    }
}

// Chunks start at K chunk boundaries, where kern_kv_k_index's pieces may start.
_Static_assert(E2H_ATTN_SCHUNK % E2H_KV_KCHUNK == 0, "E2H_ATTN_SCHUNK: a multiple of E2H_KV_KCHUNK");

// Blocks [blk0, blk1) of the table, chunk by chunk, merged in order.
void kern_attn_phase_chunked(const e2h_attn_phase *ph, e2h_attn_chunk_fn chunk) {
    const e2h_kv_layer_view *kv = ph->kv;
    const int hd = kv->head_dim, bs = kv->block_size, n = ph->n_rows;
    const size_t esize = kv->kv_type == E2H_TYPE_F16 ? 2 : 4;
    attn_chunk_buf b;
    b.mb = ph->work;
    b.lb = b.mb + n;
    b.scores = b.lb + n;
    b.accb = b.scores + E2H_ATTN_SCHUNK;
    b.n_valid = (int *)(b.accb + (int64_t)n * hd);
    int32_t last = -1;
    for (int r = 0; r < n; r++) last = ph->limit[r] > last ? ph->limit[r] : last;
    for (int64_t blk = ph->blk0; blk < ph->blk1 && blk * bs <= last; blk++) {
        const size_t off =
            (size_t)(((int64_t)ph->table[blk] * kv->n_kv_heads + ph->kh) * bs) * hd * esize;
        for (int c0 = 0; c0 < bs && blk * bs + c0 <= last; c0 += E2H_ATTN_SCHUNK) {
            const int clen = bs - c0 < E2H_ATTN_SCHUNK ? bs - c0 : E2H_ATTN_SCHUNK;
            const int64_t p0 = blk * bs + c0; // position of the chunk's first slot
            for (int r = 0; r < n; r++) {
                int64_t nv = ph->limit[r] + 1 - p0;
                b.n_valid[r] = nv < 0 ? 0 : nv > clen ? clen : (int)nv;
            }
            const size_t coff = off + (size_t)c0 * hd * esize;
            chunk(ph->q, ph->r_off, b.n_valid, n, (const char *)kv->k + coff, bs - c0,
                  (const char *)kv->v + coff, kv->kv_type, hd, ph->scale, b.mb, b.lb, b.accb,
                  b.scores);
            attn_merge(ph, &b, hd);
        }
    }
}

void kern_attn_phase_ref(const e2h_attn_phase *ph) { kern_attn_phase_chunked(ph, kern_attn_chunk_ref); }

// Runs the phase over blocks [blk0, blk1) of `table` for rows [r0, r1) of the item.
static void attn_blocks(const attn_ctx *c, attn_thread_buf *b, int kh, const int32_t *table,
                        int64_t blk0, int64_t blk1, int r0, int r1) {
    if (r1 <= r0 || blk1 <= blk0) return;
    const int hd = c->kv->head_dim;
    e2h_attn_phase ph = {c->q, c->kv, kh, c->scale, table, blk0, blk1, r1 - r0,
                         b->r_off + r0, b->limit + r0, b->m + r0, b->l + r0,
                         b->acc + (int64_t)r0 * hd, b->work};
    c->phase(&ph);
}

// Blocks the whole table of segment sg's sequence needs for its queries.
static int64_t attn_seg_blocks(const attn_ctx *c, const attn_item_desc *it, int sg) {
    const e2h_attn_seq *sq = &c->seqs[it->seg_seq[sg]];
    return ((int64_t)sq->n_past + it->seg_i1[sg] - 1) / c->kv->block_size + 1;
}

// Blocks [blk0, blk1) for rows [r0, r1) of each KV head's rows (per_kh rows per head), head
// after head: the heads of a block lie next to each other in the cache, so a sequence's own
// blocks are read from DRAM as whole blocks rather than as one head's piece, then the next
// head's much later.
static void attn_blocks_heads(const attn_ctx *c, attn_thread_buf *b, const attn_item_desc *it,
                              const int32_t *table, int64_t blk0, int64_t blk1, int r0, int r1,
                              int per_kh) {
    for (int kh = it->kh0; kh < it->kh1; kh++) {
        const int o = (kh - it->kh0) * per_kh;
        attn_blocks(c, b, kh, table, blk0, blk1, o + r0, o + r1);
    }
}

// Segments [a, z) of the item, whose rows have processed blocks [0, d): the blocks all of them
// share next, once for all their rows, then each run that shares more, down to each segment's
// private blocks. Depth <= the number of segments (every level splits the range).
static void attn_walk(const attn_ctx *c, attn_thread_buf *b, const attn_item_desc *it,
                      const int *seg_r0, int per_kh, int a, int z, int64_t d) {
    const int32_t *table = c->seqs[it->seg_seq[a]].block_table;
    if (z - a == 1) {
        attn_blocks_heads(c, b, it, table, d, attn_seg_blocks(c, it, a), seg_r0[a], seg_r0[a + 1],
                          per_kh);
        return;
    }
    int64_t common = it->seg_lcp[a];
    for (int i = a + 1; i < z - 1; i++) common = it->seg_lcp[i] < common ? it->seg_lcp[i] : common;
    if (common > d) {
        attn_blocks_heads(c, b, it, table, d, common, seg_r0[a], seg_r0[z], per_kh);
        d = common;
    }
    int from = a;
    for (int i = a; i < z - 1; i++)
        if (it->seg_lcp[i] <= d) { // the run [from, i] shares nothing beyond d with i + 1
            attn_walk(c, b, it, seg_r0, per_kh, from, i + 1, d);
            from = i + 1;
        }
    attn_walk(c, b, it, seg_r0, per_kh, from, z, d);
}

static void attn_item(const attn_ctx *c, attn_thread_buf *b, const attn_item_desc *it) {
    const int hd = c->kv->head_dim;
    const int group = c->n_heads / c->kv->n_kv_heads;
    const int64_t ld = (int64_t)c->n_heads * hd;
    int seg_r0[ATTN_MAX_SEGS + 1], per_kh = 0, n_rows = 0;
    for (int sg = 0; sg < it->n_segs; sg++) {
        seg_r0[sg] = per_kh;
        per_kh += (it->seg_i1[sg] - it->seg_i0[sg]) * group;
    }
    seg_r0[it->n_segs] = per_kh;
    for (int kh = it->kh0; kh < it->kh1; kh++)
        for (int sg = 0; sg < it->n_segs; sg++) {
            const e2h_attn_seq *sq = &c->seqs[it->seg_seq[sg]];
            for (int i = it->seg_i0[sg]; i < it->seg_i1[sg]; i++)
                for (int g = 0; g < group; g++, n_rows++) {
                    b->r_off[n_rows] = (sq->q_offset + i) * ld + (int64_t)(kh * group + g) * hd;
                    b->limit[n_rows] = sq->n_past + i;
                    b->m[n_rows] = -INFINITY;
                    b->l[n_rows] = 0.0f;
                    memset(b->acc + (int64_t)n_rows * hd, 0, sizeof(float) * hd);
                }
        }
    attn_walk(c, b, it, seg_r0, per_kh, 0, it->n_segs, 0);
    for (int r = 0; r < n_rows; r++) {
        const float inv = 1.0f / b->l[r];
        float *o = c->out + b->r_off[r];
        for (int d = 0; d < hd; d++) o[d] = b->acc[(int64_t)r * hd + d] * inv;
    }
}

// Calls fn(item) for every work item, in a fixed order. A sequence that shares no leading
// block with its neighbours in prefix-tree order gives items (seq, kv_head, E2H_ATTN_QCHUNK
// queries); a run of sequences that do (a cascade group) gives items of every kv head and up
// to E2H_ATTN_MAX_TOKENS queries drawn from its sequences in tree order.
typedef void (*attn_item_visit)(const attn_ctx *c, const attn_item_desc *it, void *arg);

static int attn_seq_at(const attn_ctx *c, int i) { return c->order ? c->order[i] : i; }
static int32_t attn_lcp_at(const attn_ctx *c, int i) { return c->order ? c->lcp[i] : 0; }

// Items of the cascade group at tree positions [g0, g1).
static void attn_group_items(const attn_ctx *c, int g0, int g1, int nth, attn_item_visit fn,
                             void *arg) {
    const int n_kv = c->kv->n_kv_heads, bs = c->kv->block_size;
    int64_t total = 0;
    for (int i = g0; i < g1; i++) total += c->seqs[attn_seq_at(c, i)].n_q;
    // an item per thread at least (each item walks the shared blocks once per kv head)
    int64_t n_items = (total + E2H_ATTN_MAX_TOKENS - 1) / E2H_ATTN_MAX_TOKENS;
    if (n_items < nth) n_items = nth < total ? nth : total;
    const int64_t per = (total + n_items - 1) / n_items;
    {
        attn_item_desc it = {0, n_kv, 0, {0}, {0}, {0}, {0}};
        int64_t used = 0;
        for (int i = g0; i < g1; i++) {
            const int t = attn_seq_at(c, i);
            for (int i0 = 0; i0 < c->seqs[t].n_q;) {
                int take = (int)(per - used);
                if (take > c->seqs[t].n_q - i0) take = c->seqs[t].n_q - i0;
                const int sg = it.n_segs++;
                it.seg_seq[sg] = t, it.seg_i0[sg] = i0, it.seg_i1[sg] = i0 + take;
                used += take, i0 += take;
                // shared with the next segment: the rest of this sequence, or the next one
                it.seg_lcp[sg] = i0 < c->seqs[t].n_q ? c->seqs[t].n_past / bs : attn_lcp_at(c, i);
                if (used == per || it.n_segs == ATTN_MAX_SEGS) {
                    fn(c, &it, arg);
                    it.n_segs = 0, used = 0;
                }
            }
        }
        if (it.n_segs) fn(c, &it, arg);
    }
}

static void attn_for_items(const attn_ctx *c, int nth, attn_item_visit fn, void *arg) {
    const int n_kv = c->kv->n_kv_heads;
    for (int i = 0; i < c->n_seqs;) {
        int j = i + 1;
        while (j < c->n_seqs && attn_lcp_at(c, j - 1) > 0) j++;
        if (j - i > 1) { // a cascade group
            attn_group_items(c, i, j, nth, fn, arg);
            i = j;
            continue;
        }
        const int s = attn_seq_at(c, i++), nq = c->seqs[s].n_q;
        for (int kh = 0; kh < n_kv; kh++)
            for (int i0 = 0; i0 < nq; i0 += E2H_ATTN_QCHUNK) {
                attn_item_desc it = {kh, kh + 1, 1, {s}, {i0}, {0}, {0}};
                it.seg_i1[0] = i0 + E2H_ATTN_QCHUNK < nq ? i0 + E2H_ATTN_QCHUNK : nq;
                fn(c, &it, arg);
            }
    }
}

typedef struct {
    attn_thread_buf buf;
    int ith, nth;
    int64_t next;
} attn_worker_state;

static void attn_visit_run(const attn_ctx *c, const attn_item_desc *it, void *arg) {
    attn_worker_state *w = arg;
    if (w->next++ % w->nth == w->ith) attn_item(c, &w->buf, it);
}

// Items are dealt round-robin to threads; an item's result does not depend on its thread.
static void attn_worker(void *p, int ith, int nth) {
    const attn_ctx *c = p;
    attn_worker_state w = {attn_buf(c->scratch, ith, c->n_heads, c->kv->head_dim), ith, nth, 0};
    attn_for_items(c, nth, attn_visit_run, &w);
}

// Leading blocks of a sequence every query of this batch sees whole: those in the cache
// before the batch.
static int32_t attn_full_blocks(const e2h_attn_seq *a, int bs) { return a->n_past / bs; }

// Leading block ids two sequences share, among the blocks both have whole.
static int32_t attn_common_blocks(const e2h_attn_seq *a, const e2h_attn_seq *b, int bs) {
    const int32_t fa = attn_full_blocks(a, bs), fb = attn_full_blocks(b, bs);
    const int32_t lim = fa < fb ? fa : fb;
    int32_t n = 0;
    while (n < lim && a->block_table[n] == b->block_table[n]) n++;
    return n;
}

typedef struct {
    const e2h_attn_seq *seqs;
    int bs;
} attn_order_ctx;

// Prefix-tree order: lexicographic over the whole leading blocks' ids, a prefix before its
// extensions, then batch order (a total order: the result does not depend on the sort).
static int attn_order_cmp(const void *pa, const void *pb, void *pc) {
    const attn_order_ctx *oc = pc;
    const int32_t ia = *(const int32_t *)pa, ib = *(const int32_t *)pb;
    const e2h_attn_seq *a = &oc->seqs[ia], *b = &oc->seqs[ib];
    const int32_t fa = attn_full_blocks(a, oc->bs), fb = attn_full_blocks(b, oc->bs);
    const int32_t n = attn_common_blocks(a, b, oc->bs);
    if (n < fa && n < fb) return a->block_table[n] < b->block_table[n] ? -1 : 1;
    if (fa != fb) return fa < fb ? -1 : 1;
    return ia < ib ? -1 : ia > ib;
}

// Sorts the sequences into prefix-tree order (sequences that share leading blocks become
// neighbours, the ones sharing more nearer) and fills lcp. Returns how many neighbour pairs
// share a block (0: no cascade).
static int attn_order(const e2h_attn_seq *seqs, int n_seqs, int bs, int32_t *order, int32_t *lcp) {
    for (int i = 0; i < n_seqs; i++) order[i] = i;
    attn_order_ctx oc = {seqs, bs};
    qsort_r(order, (size_t)n_seqs, sizeof *order, attn_order_cmp, &oc);
    int pairs = 0;
    for (int i = 0; i < n_seqs; i++) {
        lcp[i] = i + 1 < n_seqs ? attn_common_blocks(&seqs[order[i]], &seqs[order[i + 1]], bs) : 0;
        pairs += lcp[i] > 0;
    }
    return pairs;
}

#define ATTN_MAX_CASCADE_SEQS 1024

void kern_attention_run(e2h_attn_phase_fn phase, int cascade, e2h_pool *pool, float *out,
                       const float *q, const e2h_attn_seq *seqs, int n_seqs, int n_heads,
                       const e2h_kv_layer_view *kv, float scale, void *scratch) {
    if (!kv || kv->n_kv_heads <= 0 || n_heads % kv->n_kv_heads || kv->block_size <= 0 ||
        kv->head_dim <= 0)
        return; // impossible shapes: the model loader rejects these before any call
    int32_t order[ATTN_MAX_CASCADE_SEQS], lcp[ATTN_MAX_CASCADE_SEQS];
    attn_ctx c = {phase, out, q, seqs, n_seqs, n_heads, kv, scale, scratch, NULL, NULL};
    if (cascade && n_seqs > 1 && n_seqs <= ATTN_MAX_CASCADE_SEQS &&
        attn_order(seqs, n_seqs, kv->block_size, order, lcp) > 0)
        c.order = order, c.lcp = lcp;
    pool_run(pool, attn_worker, &c);
}

// ---- reference chunk kernel ----
static inline float kv_elem(const void *base, int kv_type, int64_t i) {
    return kv_type == E2H_TYPE_F16 ? kern_f16_to_f32(((const e2h_f16 *)base)[i])
                                   : ((const float *)base)[i];
}

void kern_attn_chunk_ref(const float *q, const int64_t *r_off, const int *n_valid, int n_rows,
                        const void *k, int k_slots, const void *v, int kv_type, int head_dim,
                        float scale, float *m, float *l, float *acc, float *scores) {
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
                s += qr[d] * kv_elem(k, kv_type, kern_kv_k_index(k_slots, head_dim, j, d));
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

void kern_attention_ref(e2h_pool *pool, float *out, const float *q, const e2h_attn_seq *seqs,
                       int n_seqs, int n_heads, const e2h_kv_layer_view *kv, float scale,
                       void *scratch) {
    kern_attention_run(kern_attn_phase_ref, 1, pool, out, q, seqs, n_seqs, n_heads, kv, scale,
                      scratch);
}
