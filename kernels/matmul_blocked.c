// kernels/matmul_blocked.c — see matmul_blocked.h.
#include "matmul_blocked.h"

typedef struct {
    float *y;
    int64_t ldy;
    const float *x;
    const char *w;
    int64_t n_tok, n_in, n_out;
    size_t wrow;
    int64_t ldx; // activation row stride in floats (4-byte units)
    e2h_mm_tiling tl;
} mm_ctx;

// Cache blocking: either (a) a block of tokens of x stays in L2 while every W row of the
// thread's slice streams past it (W re-read once per token block), or (b) a block of W rows
// stays in L2 while all tokens stream past (x re-read once per row block). Pick the lower
// traffic; operands larger than ~L3 count double (DRAM).
#define MM_L2_BUDGET (512 * 1024)
#define MM_L3_BYTES (16ll * 1024 * 1024)

static int64_t mm_block(int64_t row_bytes, int64_t unit) {
    int64_t b = MM_L2_BUDGET / (row_bytes + 1) / unit * unit;
    return b < unit ? unit : b;
}

// The micro-tile of rows [r, r1) x tokens [t, t1) at (r, t), clipped to mr x nr.
static inline void mm_tile_at(const mm_ctx *c, int64_t r, int64_t r1, int64_t t, int64_t t1) {
    const int R = r1 - r < c->tl.mr ? (int)(r1 - r) : c->tl.mr;
    const int T = t1 - t < c->tl.nr ? (int)(t1 - t) : c->tl.nr;
    c->tl.tile(R, T, c->w + r * c->wrow, c->wrow, c->x + t * c->ldx, c->ldx, c->n_in,
               c->y + t * c->ldy + r, c->ldy);
}

// Every micro-tile of rows [r0, r1) x tokens [t0, t1). Rows outer for scheme (a) (the token
// block stays in L2 while W streams); token tiles outer for scheme (b), where the rows stay in
// L2 and each token tile is read once from L3 for all of them (rows outer would re-read the
// whole token stream once per micro-tile of rows).
static void mm_tiles(const mm_ctx *c, int64_t r0, int64_t r1, int64_t t0, int64_t t1, int tok_outer) {
    const int mr = c->tl.mr, nr = c->tl.nr;
    if (tok_outer) {
        for (int64_t t = t0; t < t1; t += nr)
            for (int64_t r = r0; r < r1; r += mr) mm_tile_at(c, r, r1, t, t1);
    } else {
        for (int64_t r = r0; r < r1; r += mr)
            for (int64_t t = t0; t < t1; t += nr) mm_tile_at(c, r, r1, t, t1);
    }
}

static void mm_worker(void *p, int ith, int nth) {
    const mm_ctx *c = p;
    int64_t r0, r1;
    pool_slice(c->n_out, ith, nth, 16, &r0, &r1);
    const int64_t tb = mm_block(c->ldx * 4, c->tl.nr), rb = mm_block((int64_t)c->wrow, c->tl.mr);
    const int64_t w_bytes = (r1 - r0) * (int64_t)c->wrow, x_bytes = c->n_tok * c->ldx * 4;
    const int64_t cost_a = (c->n_tok + tb - 1) / tb * w_bytes * (w_bytes > MM_L3_BYTES ? 2 : 1);
    const int64_t cost_b = (r1 - r0 + rb - 1) / rb * x_bytes * (x_bytes > MM_L3_BYTES ? 2 : 1);
    if (cost_a <= cost_b) {
        for (int64_t t0 = 0; t0 < c->n_tok; t0 += tb)
            mm_tiles(c, r0, r1, t0, t0 + tb < c->n_tok ? t0 + tb : c->n_tok, 0);
    } else {
        for (int64_t rr = r0; rr < r1; rr += rb)
            mm_tiles(c, rr, rr + rb < r1 ? rr + rb : r1, 0, c->n_tok, 1);
    }
}

void kern_matmul_blocked(e2h_pool *pool, const e2h_mm_tiling *tiling, float *y, int64_t ldy,
                        const float *x, const void *w, size_t wrow, int64_t n_tok, int64_t n_in,
                        int64_t n_out) {
    kern_matmul_blocked_x(pool, tiling, y, ldy, x, (size_t)n_in * 4, w, wrow, n_tok, n_in, n_out);
}

void kern_matmul_blocked_x(e2h_pool *pool, const e2h_mm_tiling *tiling, float *y, int64_t ldy,
                          const void *x, size_t xrow, const void *w, size_t wrow, int64_t n_tok,
                          int64_t n_in, int64_t n_out) {
    mm_ctx c = {y, ldy, x, w, n_tok, n_in, n_out, wrow, (int64_t)(xrow / 4), *tiling};
    pool_run(pool, mm_worker, &c);
}
