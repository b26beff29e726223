// engine/model_repack.c — the row-interleaved (r16) copies of the weights that the SIMD
// kernels stream, made once at load time.
#include "model.h"

#include <string.h>
#include <unistd.h>

#include "kernels/pool.h"
#include "kernels/quant_r16.h"
#include "util.h"

// Gives every q4_0/q4_1/q8_0 matrix a row-interleaved copy (kernels/quant_r16.h) when the
// CPU's best kernels can use it: one convert+fma per 16 rows instead of per vector, which
// makes the int8 kernels memory-bound in decode and ~3x faster in prefill. The stored
// weights stay mapped (embedding lookups, other kernel choices read them).
// Can parts[0..n) share one fused r16 copy? Same supported type and n_in, every part's rows a
// multiple of 16 (so no group straddles two parts).
static int model_can_fuse(e2h_tensor *const parts[], int n) {
    if (parts[0]->n_in > E2H_R16_NORM_MAX) return 0; // the fused RMSNorm's row buffer
    for (int i = 0; i < n; i++)
        if (!kern_r16_supported(parts[i]->type) || parts[i]->type != parts[0]->type ||
            parts[i]->n_in != parts[0]->n_in || parts[i]->n_out % E2H_R16_ROWS)
            return 0;
    return 1;
}

// All repacked copies live in one arena (huge pages, see util_alloc_large), carved in two
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
        const int64_t gs = kern_r16_group_stride(t, n_in);
        uint8_t *p = arena_take(a, kern_r16_size(t, n_in, rows));
        if (p) {
            for (int i = 0, g = 0; i < 3; g += (int)(qkv[i]->n_out / E2H_R16_ROWS), i++)
                kern_r16_repack_to(a->pool, t, qkv[i]->data, n_in, qkv[i]->n_out, p + g * gs, gs);
            L->wqkv = (e2h_tensor){NULL, t, n_in, rows, p};
            m->packed_bytes += kern_r16_size(t, n_in, rows);
        }
    }
    if (model_fuses_gate_up(L)) {
        const int t = L->w_gate.type;
        const int64_t n_in = L->w_gate.n_in, rows = 2 * L->w_gate.n_out;
        const int64_t gs = kern_r16_group_stride(t, n_in);
        uint8_t *p = arena_take(a, kern_r16_size(t, n_in, rows));
        if (p) {
            kern_r16_repack_to(a->pool, t, L->w_gate.data, n_in, L->w_gate.n_out, p, 2 * gs);
            kern_r16_repack_to(a->pool, t, L->w_up.data, n_in, L->w_up.n_out, p + gs, 2 * gs);
            L->w_gate_up = (e2h_tensor){NULL, t, n_in, rows, p};
            m->packed_bytes += kern_r16_size(t, n_in, rows);
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
        const size_t bytes = skip[i] ? 0 : kern_r16_size(ts[i]->type, ts[i]->n_in, ts[i]->n_out);
        if (!bytes) continue;
        uint8_t *p = arena_take(a, bytes);
        if (!p) continue;
        kern_r16_repack(a->pool, ts[i]->type, ts[i]->data, ts[i]->n_in, ts[i]->n_out, p);
        ts[i]->packed = p;
        m->packed_bytes += bytes;
    }
}

// One pass over every matrix (sizing when a->base is NULL, repacking otherwise).
static void model_repack_pass(struct e2h_model *m, repack_arena *a) {
    for (int l = 0; l < m->cfg.n_layers; l++) model_repack_fused(m, &m->layers[l], a);
    for (int l = -1; l < m->cfg.n_layers; l++) model_repack_layer(m, l >= 0 ? &m->layers[l] : NULL, a);
}

int model_repack(struct e2h_model *m, char *err, size_t err_len) {
    const e2h_ops *best = ops_get("auto");
    if (!best || !best->matmul_packed) return 0;
    repack_arena a = {NULL, 0, NULL};
    model_repack_pass(m, &a); // sizes
    if (!a.used) return 0;
    a.base = model_own(m, util_alloc_large(a.used));
    if (!a.base) {
        fmt_errf(err, err_len, "out of memory repacking the weights (%zu bytes); "
                 "load with no_repack (--no-repack)", a.used);
        return -1;
    }
    a.used = 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    a.pool = pool_init(ncpu > 1 ? (int)(ncpu < 16 ? ncpu : 16) : 1); // NULL: single-threaded
    model_repack_pass(m, &a);
    pool_free(a.pool);
    return 0;
}
