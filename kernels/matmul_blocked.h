// kernels/matmul_blocked.h — the cache-blocked driver shared by the float matmuls (AVX2,
// AVX-512): splits output rows over the pool's threads, chooses a cache blocking per thread,
// and calls the ISA's micro-tile kernel for every (rows x tokens) tile. Plain C; the tile
// kernel is the only ISA-specific part.
//
// The blocking changes only the order in which tiles are visited, never how an output
// element is summed (that is the tile kernel's canonical order), so results are bit-identical
// for any n_tok, tile size or thread count.
#ifndef E2H_KERNELS_MATMUL_BLOCKED_H
#define E2H_KERNELS_MATMUL_BLOCKED_H

#include <stddef.h>
#include <stdint.h>

#include "pool.h"

// y[t * ldy + r] for r < R rows of w (row stride wrow bytes) and t < T tokens of x (row
// stride ldx floats), reducing over n_in. 1 <= R <= mr, 1 <= T <= nr. (Tiles whose activations
// are not f32 — the bf16 dot-product kernel — read x as bytes: ldx is then the row stride in
// units of 4 bytes, see kern_matmul_blocked_x.)
typedef void (*e2h_mm_tile_fn)(int R, int T, const char *w, size_t wrow, const float *x,
                               int64_t ldx, int64_t n_in, float *y, int64_t ldy);

// The micro-tile of one ISA: its largest tile (mr rows x nr tokens) and its kernel.
typedef struct {
    int mr, nr;
    e2h_mm_tile_fn tile;
} e2h_mm_tiling;

// y (n_tok, ldy) cols [0, n_out) = x (n_tok, n_in) · W(n_out, n_in)^T, W rows of wrow bytes.
// Threads get slices of 16 output rows.
void kern_matmul_blocked(e2h_pool *pool, const e2h_mm_tiling *tiling, float *y, int64_t ldy,
                        const float *x, const void *w, size_t wrow, int64_t n_tok, int64_t n_in,
                        int64_t n_out);
// As kern_matmul_blocked, with activation rows of xrow bytes (a multiple of 4) at x: the tile
// gets (const float *)row pointers and ldx = xrow / 4.
void kern_matmul_blocked_x(e2h_pool *pool, const e2h_mm_tiling *tiling, float *y, int64_t ldy,
                          const void *x, size_t xrow, const void *w, size_t wrow, int64_t n_tok,
                          int64_t n_in, int64_t n_out);

#endif
