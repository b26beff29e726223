// kernels/ref/quant_r16.c — r16 repacking and the scalar reference matmul over it (the
// definition the AVX-512 kernel reproduces bit for bit; see kernels/quant_r16.h).
#include <math.h>
#include <string.h>

#include "kernels/float_kernels.h"
#include "kernels/quant_r16.h"

int kern_r16_supported(int wtype) {
    return wtype == E2H_TYPE_Q4_0 || wtype == E2H_TYPE_Q4_1 || wtype == E2H_TYPE_Q8_0;
}

size_t kern_r16_size(int wtype, int64_t n_in, int64_t n_out) {
    if (!kern_r16_supported(wtype) || n_in <= 0 || n_in % 32 || n_out <= 0) return 0;
    const int64_t groups = (n_out + E2H_R16_ROWS - 1) / E2H_R16_ROWS;
    return (size_t)(groups * kern_r16_group_stride(wtype, n_in));
}

// One group: rows [16g, 16g + 16) of W, missing rows as zeros (d = m = 0, levels 0).
static void r16_repack_group(int wtype, const uint8_t *w, int64_t n_in, int64_t n_out, int64_t g,
                             uint8_t *dst) {
    const int64_t nb = n_in / 32, qb = kern_r16_qbytes(wtype), sb = kern_r16_sbytes(wtype);
    const size_t bsz = kern_type_row_size(wtype, 32), rs = kern_type_row_size(wtype, n_in);
    const int qoff = wtype == E2H_TYPE_Q4_1 ? 4 : 2; // qs after d (and m)
    uint8_t *q = dst, *s = dst + nb * qb;
    memset(dst, 0, (size_t)kern_r16_group_stride(wtype, n_in));
    for (int r = 0; r < E2H_R16_ROWS; r++) {
        const int64_t row = g * E2H_R16_ROWS + r;
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *qd = q + b * qb, *sd = s + b * sb;
            if (row >= n_out) { // padding row: q8_0 level 128 is the value 0
                if (wtype == E2H_TYPE_Q8_0)
                    for (int v = 0; v < 8; v++) memset(qd + 64 * v + 4 * r, 0x80, 4);
                continue;
            }
            const uint8_t *blk = w + row * rs + b * bsz;
            memcpy(sd + 2 * r, blk, 2); // d
            if (wtype == E2H_TYPE_Q4_1) memcpy(sd + 32 + 2 * r, blk + 2, 2); // m
            const int nv = wtype == E2H_TYPE_Q8_0 ? 8 : 4;
            for (int v = 0; v < nv; v++)
                for (int j = 0; j < 4; j++) {
                    const uint8_t byte = blk[qoff + 4 * v + j];
                    qd[64 * v + 4 * r + j] = wtype == E2H_TYPE_Q8_0 ? (uint8_t)(byte ^ 0x80) : byte;
                }
        }
    }
}

typedef struct {
    int wtype;
    const uint8_t *w;
    int64_t n_in, n_out;
    uint8_t *dst;
    int64_t dst_gs;
} r16_repack_args;

static void r16_repack_fn(void *p, int ith, int nth) {
    const r16_repack_args *a = p;
    const int64_t groups = (a->n_out + E2H_R16_ROWS - 1) / E2H_R16_ROWS;
    int64_t g0, g1;
    pool_slice(groups, ith, nth, 1, &g0, &g1);
    for (int64_t g = g0; g < g1; g++) r16_repack_group(a->wtype, a->w, a->n_in, a->n_out, g, a->dst + g * a->dst_gs);
}

void kern_r16_repack_to(e2h_pool *pool, int wtype, const void *w, int64_t n_in, int64_t n_out,
                       void *dst, int64_t dst_group_stride) {
    if (!kern_r16_size(wtype, n_in, n_out)) return;
    r16_repack_args a = {wtype, w, n_in, n_out, dst, dst_group_stride};
    pool_run(pool, r16_repack_fn, &a);
}

void kern_r16_repack(e2h_pool *pool, int wtype, const void *w, int64_t n_in, int64_t n_out,
                    void *dst) {
    kern_r16_repack_to(pool, wtype, w, n_in, n_out, dst, kern_r16_group_stride(wtype, n_in));
}

int64_t kern_r16_scratch_size(int wtype, int64_t n_tok, int64_t n_in) {
    if (!kern_r16_supported(wtype) || n_tok < 0 || n_in <= 0 || n_in % 32) return -1;
    return n_tok * kern_r16_token_stride(n_in) + n_tok * (n_in / 32) * 4 + 64;
}

const e2h_r16_act_ops kern_r16_act_ref = {kern_rmsnorm_ref, kern_qx_quantize};

void kern_r16_quantize(int wtype, const float *x, int64_t t0, int64_t t1, int64_t n_tok,
                      int64_t n_in, void *scratch, const e2h_r16_act_ops *act,
                      const float *norm_w, float eps) {
    const int64_t nb = n_in / 32, ts = kern_r16_token_stride(n_in);
    if (norm_w && n_in <= E2H_R16_NORM_MAX) { // row by row through a stack row: it stays in L1
        float row[E2H_R16_NORM_MAX] __attribute__((aligned(64)));
        for (int64_t t = t0; t < t1; t++) {
            act->rmsnorm(row, x + t * n_in, norm_w, 1, n_in, eps);
            uint8_t *tok = (uint8_t *)scratch + t * ts;
            act->quantize(E2H_TYPE_Q8_0, row, 0, 1, n_in, tok);
        }
    } else {
        act->quantize(E2H_TYPE_Q8_0, x, t0, t1, n_in, scratch);
    }
    const int off = kern_r16_offset(wtype);
    int32_t *init = kern_r16_inits(scratch, n_tok, n_in);
    for (int64_t t = t0; t < t1; t++) {
        const int8_t *q = (const int8_t *)scratch + t * ts;
        for (int64_t b = 0; b < nb; b++) {
            int32_t s = 0;
            for (int e = 0; e < 32; e++) s += q[32 * b + e];
            init[t * nb + b] = -off * s;
        }
    }
}

// ---------------------------------------------------------------- reference matmul

// Output (row, token t) in the order of the semantics in quant_r16.h.
static float r16_dot_ref(int wtype, const uint8_t *grp, int lane, const uint8_t *tok,
                         const int32_t *init, int64_t n_in) {
    const int64_t nb = n_in / 32, nb2 = kern_qx32_nb2(n_in), qb = kern_r16_qbytes(wtype);
    const uint8_t *sc = grp + nb * qb;
    const int8_t *q = (const int8_t *)tok;
    const float *dx = (const float *)(tok + nb2 * 32), *sx = dx + nb2;
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *qd = grp + b * qb, *sd = sc + b * kern_r16_sbytes(wtype);
        int32_t isum = init[b];
        for (int e = 0; e < 32; e++) {
            int u;
            if (wtype == E2H_TYPE_Q8_0) {
                u = qd[64 * (e / 4) + 4 * lane + e % 4];
            } else {
                const int i = e % 16; // byte of qs; high nibble for elements 16..31
                const uint8_t byte = qd[64 * (i / 4) + 4 * lane + i % 4];
                u = e < 16 ? byte & 0x0F : byte >> 4;
            }
            isum += u * q[32 * b + e];
        }
        uint16_t h;
        memcpy(&h, sd + 2 * lane, 2);
        acc = fmaf((float)isum, kern_q_h2f(h) * dx[b], acc);
        if (wtype == E2H_TYPE_Q4_1) {
            memcpy(&h, sd + 32 + 2 * lane, 2);
            acc = fmaf(kern_q_h2f(h), sx[b], acc);
        }
    }
    return acc;
}

typedef e2h_r16_args r16_args;

void kern_r16_quantize_fn(void *p, int ith, int nth) {
    const e2h_r16_args *a = p;
    int64_t t0, t1;
    pool_slice(a->n_tok, ith, nth, 1, &t0, &t1);
    kern_r16_quantize(a->wtype, a->x, t0, t1, a->n_tok, a->n_in, a->scratch, a->act, a->out->norm_w,
                     a->out->norm_eps);
}

static float r16_out_ref(const r16_args *a, int64_t t, int64_t r) {
    const int64_t gs = kern_r16_group_stride(a->wtype, a->n_in), ts = kern_r16_token_stride(a->n_in);
    const int32_t *init = kern_r16_inits(a->scratch, a->n_tok, a->n_in);
    return r16_dot_ref(a->wtype, a->w + (r / E2H_R16_ROWS) * gs, (int)(r % E2H_R16_ROWS), a->scratch + t * ts,
                       init + t * (a->n_in / 32), a->n_in);
}

static void r16_ref_matmul_fn(void *p, int ith, int nth) {
    const r16_args *a = p;
    int64_t r0, r1;
    pool_slice(a->n_out, ith, nth, a->out->swiglu ? 2 * E2H_R16_ROWS : E2H_R16_ROWS, &r0, &r1);
    for (int64_t t = 0; t < a->n_tok; t++) {
        if (a->out->swiglu) { // pairs of groups: gate rows r..r+15, up rows r+16..r+31
            const e2h_mm_seg *s = &a->out->segs[0];
            for (int64_t r = r0; r < r1; r += 2 * E2H_R16_ROWS) {
                float g[E2H_R16_ROWS], u[E2H_R16_ROWS];
                for (int i = 0; i < E2H_R16_ROWS; i++) {
                    g[i] = r16_out_ref(a, t, r + i);
                    u[i] = r16_out_ref(a, t, r + E2H_R16_ROWS + i);
                }
                kern_swiglu_ref(s->y + t * s->ldy + r / 2, g, u, 1, E2H_R16_ROWS);
            }
            continue;
        }
        for (int64_t r = r0; r < r1; r++) {
            int64_t ldy;
            float *y = kern_mm_out_at(a->out, r, &ldy);
            y[t * ldy] = r16_out_ref(a, t, r);
        }
    }
}

void kern_r16_matmul_ex_ref(e2h_pool *pool, const e2h_mm_out *out, const float *x, const void *wp,
                           int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch) {
    if (kern_r16_scratch_size(wtype, n_tok, n_in) < 0 || n_tok <= 0 || n_out <= 0) return;
    if ((out->swiglu && n_out % (2 * E2H_R16_ROWS)) || (out->norm_w && n_in > E2H_R16_NORM_MAX)) return;
    r16_args a = {out, x, wp, wtype, n_tok, n_in, n_out, scratch, &kern_r16_act_ref};
    pool_run(pool, kern_r16_quantize_fn, &a);
    pool_run(pool, r16_ref_matmul_fn, &a);
}

void kern_r16_matmul_ref(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *wp,
                        int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch) {
    kern_r16_matmul_plain(kern_r16_matmul_ex_ref, pool, y, ldy, x, wp, wtype, n_tok, n_in, n_out, scratch);
}
