// kernels/x86/quant_amx.c — q4_0 / q4_1 / q8_0 matmul over r16 weights on AMX int8 tiles.
//
// Built twice (see kernels/x86/amx_tile.h): as itself with -mamx-* (real tiles, only called
// where kern_amx_detect says 1), and through quant_amx_emu_avx512.c with E2H_AMX_EMU = 1 (the
// scalar tile emulator; the functions get an _emu suffix). Everything but the tile operations
// is the same code in both, so the emulated build tests this file's tiling, tile shapes and
// configurations, B-tile layout, tails and f32 epilogue; only the instructions themselves are
// emulated.
//
// Per thread: its row groups (16 rows each, pairs), tokens in blocks of AMX_TOKB. Tile use:
//   tmm4, tmm5  A: 16 (or the tail's) tokens × 32 int8 activations of one block (signed)
//   tmm6, tmm7  B: 8 rows × 64 bytes = one block of one group's 16 rows, VNNI order
//               (row k, dword n = elements 4k..4k+3 of weight row n; unsigned levels)
//   tmm0..3     C: (token tile i, group j) int32, zeroed per block
// After each block's TDPBSUDs the C tiles are stored and folded into f32 accumulators with the
// block scales, in kern_r16_matmul_ex_ref's order (quant_r16.h), so the output is bit-identical
// to the ref and the AVX-512 r16 kernel. K = 32 per TDPBSUD (half of the 64 a tile allows)
// because every 32-element block has its own scales.
#ifndef E2H_AMX_EMU
#define E2H_AMX_EMU 0
#endif

#include <immintrin.h>
#include <string.h>

#include "kernels/amx.h"
#include "kernels/float_kernels.h"
#include "kernels/quant_r16.h"
#include "kernels/x86/amx_tile.h"

#define TC00 0 // C: token tile 0 × group 0
#define TC01 1 // C: token tile 0 × group 1
#define TC10 2 // C: token tile 1 × group 0
#define TC11 3 // C: token tile 1 × group 1
#define TA0 4
#define TA1 5
#define TB0 6
#define TB1 7
#define AMX_TOKB 64 // tokens whose activations stay in L2 while a thread's groups stream

// The configuration of one pass: C and A tiles `rows` tokens high (16, or a tail of 1..15).
static void amx_config(amx_tilecfg *cfg, int rows) {
    memset(cfg, 0, sizeof *cfg);
    cfg->palette = 1;
    for (int i = TC00; i <= TC11; i++) {
        cfg->rows[i] = (uint8_t)rows;
        cfg->colsb[i] = 64; // 16 int32
    }
    for (int i = TA0; i <= TA1; i++) {
        cfg->rows[i] = (uint8_t)rows;
        cfg->colsb[i] = 32; // one 32-element block of int8
    }
    for (int i = TB0; i <= TB1; i++) {
        cfg->rows[i] = 8;   // 32 elements / 4 per dword
        cfg->colsb[i] = 64; // 16 weight rows × 4 bytes
    }
}

// One block of q4 r16 data (4 vectors × 64 bytes of nibbles) as a B tile: rows 0..3 the low
// nibbles (elements 4v+j), rows 4..7 the high ones (elements 16+4v+j).
static inline void amx_unpack_q4(uint8_t *dst, const uint8_t *src) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int v = 0; v < 4; v++) {
        const __m512i raw = _mm512_loadu_si512((const void *)(src + 64 * v));
        _mm512_store_si512((void *)(dst + 64 * v), _mm512_and_si512(raw, m4));
        _mm512_store_si512((void *)(dst + 256 + 64 * v), _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4));
    }
}

// acc (16 rows) of one token += this block: the ref's fma((float)isum, dw * dx, acc), then the
// q4_1 min term fma(mw, sx, acc).
static inline void amx_fold(float *acc, const int32_t *c, int32_t init, __m512 dw, __m512 mw, float dx, float sx,
                            int has_min) {
    const __m512i is = _mm512_add_epi32(_mm512_load_si512((const void *)c), _mm512_set1_epi32(init));
    __m512 a = _mm512_load_ps(acc);
    a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(dw, _mm512_set1_ps(dx)), a);
    if (has_min) a = _mm512_fmadd_ps(mw, _mm512_set1_ps(sx), a);
    _mm512_store_ps(acc, a);
}

// The finished rows of groups g, g+1 (G of them) for tokens [tb, te): plain segments, or in
// swiglu mode the pair (gate, up) through the AVX-512 swiglu (as the r16 kernel).
static void amx_store(const e2h_r16_args *a, int64_t g, int G, int64_t tb, int64_t te, float acc[][2][16]) {
    if (a->out->swiglu) {
        const e2h_mm_seg *s = &a->out->segs[0];
        for (int64_t t = tb; t < te; t++)
            kern_swiglu_avx512(s->y + t * s->ldy + g * (E2H_R16_ROWS / 2), acc[t - tb][0], acc[t - tb][1], 1, 16);
        return;
    }
    for (int j = 0; j < G; j++) {
        const int64_t r = (g + j) * E2H_R16_ROWS, left = a->n_out - r;
        const size_t n = (size_t)(left < E2H_R16_ROWS ? left : E2H_R16_ROWS);
        int64_t ldy;
        float *y = kern_mm_out_at(a->out, r, &ldy);
        for (int64_t t = tb; t < te; t++) memcpy(y + t * ldy, acc[t - tb][j], n * sizeof(float));
    }
}

// Groups [g0, g1) × tokens [t0, t1) with tiles `rows` tokens high; t1 - t0 is a multiple of rows.
static void amx_pass(const e2h_r16_args *a, amx_tiles *T, int64_t g0, int64_t g1, int64_t t0, int64_t t1,
                     int rows) {
    amx_tilecfg cfg;
    amx_config(&cfg, rows);
    TILE_CONFIG(T, &cfg);
    const int wt = a->wtype, has_min = wt == E2H_TYPE_Q4_1;
    const int64_t nb = a->n_in / 32, nb2 = kern_qx32_nb2(a->n_in), qb = kern_r16_qbytes(wt), sb = kern_r16_sbytes(wt);
    const int64_t gs = kern_r16_group_stride(wt, a->n_in), ts = kern_r16_token_stride(a->n_in);
    const int32_t *init = kern_r16_inits(a->scratch, a->n_tok, a->n_in);
    int32_t cbuf[4][16][16] __attribute__((aligned(64)));
    uint8_t bbuf[2][512] __attribute__((aligned(64)));
    float acc[AMX_TOKB][2][16] __attribute__((aligned(64)));
    for (int64_t tb = t0; tb < t1; tb += AMX_TOKB) {
        const int64_t te = tb + AMX_TOKB < t1 ? tb + AMX_TOKB : t1;
        const int ntt = (int)((te - tb) / rows); // token tiles in this block
        for (int64_t g = g0; g < g1; g += 2) {
            const int G = g1 - g < 2 ? (int)(g1 - g) : 2;
            memset(acc, 0, sizeof acc);
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *bsrc[2] = {NULL, NULL};
                __m512 dw[2], mw[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
                for (int j = 0; j < G; j++) {
                    const uint8_t *grp = a->w + (g + j) * gs, *sd = grp + nb * qb + b * sb;
                    if (wt == E2H_TYPE_Q8_0) {
                        bsrc[j] = grp + b * qb; // the r16 q8_0 block is the B tile
                    } else {
                        amx_unpack_q4(bbuf[j], grp + b * qb);
                        bsrc[j] = bbuf[j];
                    }
                    dw[j] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)sd));
                    if (has_min) mw[j] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sd + 32)));
                }
                TILE_LOAD(T, TB0, bsrc[0], 64);
                if (G == 2) TILE_LOAD(T, TB1, bsrc[1], 64);
                for (int s = 0; s < ntt; s += 2) {
                    const int two = s + 1 < ntt;
                    const uint8_t *xa = a->scratch + (tb + (int64_t)s * rows) * ts + 32 * b;
                    TILE_LOAD(T, TA0, xa, ts);
                    if (two) TILE_LOAD(T, TA1, xa + rows * ts, ts);
                    TILE_ZERO(T, TC00);
                    TILE_DPBSUD(T, TC00, TA0, TB0);
                    if (G == 2) {
                        TILE_ZERO(T, TC01);
                        TILE_DPBSUD(T, TC01, TA0, TB1);
                    }
                    if (two) {
                        TILE_ZERO(T, TC10);
                        TILE_DPBSUD(T, TC10, TA1, TB0);
                        if (G == 2) {
                            TILE_ZERO(T, TC11);
                            TILE_DPBSUD(T, TC11, TA1, TB1);
                        }
                    }
                    TILE_STORE(T, TC00, cbuf[0], 64);
                    if (G == 2) TILE_STORE(T, TC01, cbuf[1], 64);
                    if (two) {
                        TILE_STORE(T, TC10, cbuf[2], 64);
                        if (G == 2) TILE_STORE(T, TC11, cbuf[3], 64);
                    }
                    for (int i = 0; i < 1 + two; i++)
                        for (int m = 0; m < rows; m++) {
                            const int64_t t = tb + (int64_t)(s + i) * rows + m;
                            const float *dx = (const float *)(a->scratch + t * ts + nb2 * 32);
                            for (int j = 0; j < G; j++)
                                amx_fold(acc[t - tb][j], cbuf[2 * i + j][m], init[t * nb + b], dw[j], mw[j], dx[b],
                                         dx[nb2 + b], has_min);
                        }
                }
            }
            amx_store(a, g, G, tb, te, acc);
        }
    }
    TILE_RELEASE(T);
}

static void amx_matmul_fn(void *p, int ith, int nth) {
    const e2h_r16_args *a = p;
    const int64_t groups = (a->n_out + E2H_R16_ROWS - 1) / E2H_R16_ROWS;
    int64_t g0, g1;
    pool_slice(groups, ith, nth, 2, &g0, &g1); // pairs: swiglu's (gate, up) never split
    if (g0 >= g1) return;
    amx_tiles T; // this thread's tile state (configured per pass, released after it)
    AMX_TILES_INIT(&T);
    const int64_t full = a->n_tok / 16 * 16;
    if (full) amx_pass(a, &T, g0, g1, 0, full, 16);
    if (a->n_tok > full) amx_pass(a, &T, g0, g1, full, a->n_tok, (int)(a->n_tok - full));
    AMX_TILES_CHECK(&T);
}

// Activations quantized by the AVX-512 twins of the ref's rmsnorm and quantizer (same bytes).
static const e2h_r16_act_ops k_act_amx = {kern_rmsnorm_avx512, kern_qx_quantize_avx512};

void AMX_FN(kern_amx_r16_matmul_ex_tiles)(e2h_pool *pool, const e2h_mm_out *out, const float *x, const void *wp,
                                          int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch) {
    if (kern_r16_scratch_size(wtype, n_tok, n_in) < 0 || n_tok <= 0 || n_out <= 0) return;
    if ((out->swiglu && n_out % (2 * E2H_R16_ROWS)) || (out->norm_w && n_in > E2H_R16_NORM_MAX)) return;
    e2h_r16_args a = {out, x, wp, wtype, n_tok, n_in, n_out, scratch, &k_act_amx};
    if (n_tok < E2H_AMX_MIN_TOK || pool_size(pool) == 1)
        kern_r16_quantize(wtype, x, 0, n_tok, n_tok, n_in, scratch, &k_act_amx, out->norm_w, out->norm_eps);
    else
        pool_run(pool, kern_r16_quantize_fn, &a);
    pool_run(pool, amx_matmul_fn, &a);
}

void AMX_FN(kern_amx_r16_matmul_ex)(e2h_pool *pool, const e2h_mm_out *out, const float *x, const void *wp, int wtype,
                                    int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch) {
    if (n_tok < E2H_AMX_MIN_TOK) // decode-sized: the VNNI kernel (the same results)
        kern_r16_matmul_ex_avx512(pool, out, x, wp, wtype, n_tok, n_in, n_out, scratch);
    else
        AMX_FN(kern_amx_r16_matmul_ex_tiles)(pool, out, x, wp, wtype, n_tok, n_in, n_out, scratch);
}
