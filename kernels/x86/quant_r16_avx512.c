// kernels/x86/quant_r16_avx512.c — matmul over r16-repacked weights with AVX-512 VNNI.
//
// Lane r of every vector is row 16g + r of a group. Per 32-element block and token: 8
// vpdpbusd (unsigned weight levels × the token's 4 activation bytes broadcast), then one
// convert and one fma with the 16 rows' scales — bit-identical to kern_r16_matmul_ref.
// Tiles: G groups × NT tokens share each unpacked weight vector and each broadcast.
// Decode (1 token) streams the weights with its own tiles (r16_dec_q4, r16_dec_q8: 4 groups,
// the activation broadcasts shared, two integer chains per output; q8_0 with n_in > 1920 keeps
// r16_tile's 2 groups); prefill runs 2 groups ×
// 4 tokens over token blocks that stay in L2. Every tile does each output's exact integer sums
// and then the same float ops in the same order, so a token's result does not depend on the
// tile, the batch or the thread count.
#include <immintrin.h>

#include "kernels/float_kernels.h"
#include "kernels/quant_r16.h"

#define AI static inline __attribute__((always_inline))

#define G_PRE 2      // groups per prefill tile
#define NT_PRE 4     // tokens per prefill tile
#define G_MAX 2
#define G_ALL 4      // the most groups of any tile (q4 decode)
#define TOK_BLOCK 64 // tokens whose activations stay in L2 while a thread's rows stream
#ifndef R16_PF_TILE
#define R16_PF_TILE 32768 // tiles up to this size prefetch the next tile instead (SmolLM2 1 thread: 24 -> 30 GB/s)
#endif
#ifndef R16_PF_TILE_L2
#define R16_PF_TILE_L2 65536 // the same for the q4_1 / q8_0 decode tiles, which prefetch into L2 (see r16_run)
#endif
#ifndef R16_PF_HINT
#define R16_PF_HINT _MM_HINT_T0
#endif
#ifndef R16_PF_PRE_MAX
#define R16_PF_PRE_MAX 262144 // multi-token tiles fetch the next tile up to this far ahead (see r16_run)
#endif
// Decode prefetch distance in each long group's quant stream (bytes): measured over a whole
// 7B step (bench/kernels_quant -m7b, 1 thread, weights on huge pages): q4_0 1024 -> 30 GB/s,
// 4096 -> 34, 8192 -> 30; q8_0 (twice the bytes per instruction) streams best with the
// hardware prefetchers alone (0: 35 GB/s, 4096: 34).
#ifndef R16_PF_DIST_Q4
#define R16_PF_DIST_Q4 4096
#endif
#ifndef R16_PF_DIST_Q8
#define R16_PF_DIST_Q8 0
#endif
#define QUANT_INLINE_TOK 16

static inline int32_t ld32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

// Token-side pointers of one tile.
typedef struct {
    const int8_t *q;    // (n_in) activations, natural order
    const float *dx;    // (nb)
    const float *sx;    // (nb)
    const int32_t *init; // (nb)
} r16_tok;

// out[g][t] (16 rows each) = rows of groups gq[g] × tokens tk[t], whole reduction.
// Per block: the G groups' weight vectors are unpacked first, then each activation broadcast
// feeds the G groups at once and dies: hoisting the broadcasts over a group loop (as the
// compiler did when the groups came one after another) ran out of registers and spilled 28
// of the 32 broadcasts of a q4 block to the stack, to be reloaded for the second group.
// pf: prefetch offset (0: none; < 0: -pf ahead within the group), l2: prefetch into L2 (the
// multi-token tiles, see r16_run) instead of R16_PF_HINT.
AI void r16_tile(int wt, int G, int NT, int split, const uint8_t *const gq[], const r16_tok tk[],
                 int64_t nb, __m512 out[][NT_PRE], int64_t pf, int l2) {
    const int64_t qb = kern_r16_qbytes(wt), sb = kern_r16_sbytes(wt);
    const int off = kern_r16_offset(wt), has_min = wt == E2H_TYPE_Q4_1;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[G_MAX][NT_PRE];
#pragma GCC unroll 2
    for (int g = 0; g < G; g++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[g][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *qd[G_MAX], *sd[G_MAX];
#pragma GCC unroll 2
        for (int g = 0; g < G; g++) {
            qd[g] = gq[g] + b * qb, sd[g] = gq[g] + nb * qb + b * sb;
            if (pf) { // every line of the block |pf| bytes ahead, and its scales (pf < 0: in the group)
                const int64_t pq = pf < 0 ? -pf : pf, ps = pf < 0 ? -pf * sb / qb : pf;
#pragma GCC unroll 8
                for (int64_t o = 0; o < qb; o += 64) {
                    if (l2) _mm_prefetch((const char *)(qd[g] + pq + o), _MM_HINT_T1);
                    else _mm_prefetch((const char *)(qd[g] + pq + o), R16_PF_HINT);
                }
                if (l2) _mm_prefetch((const char *)(sd[g] + ps), _MM_HINT_T1);
                else _mm_prefetch((const char *)(sd[g] + ps), R16_PF_HINT);
            }
        }
        __m512i i0[G_MAX][NT_PRE], i1[G_MAX][NT_PRE];
#pragma GCC unroll 2
        for (int g = 0; g < G; g++)
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                i0[g][t] = off ? _mm512_set1_epi32(tk[t].init[b]) : _mm512_setzero_si512();
                i1[g][t] = _mm512_setzero_si512();
            }
        if (wt == E2H_TYPE_Q8_0) {
#pragma GCC unroll 8
            for (int v = 0; v < 8; v++) {
                __m512i w[G_MAX];
#pragma GCC unroll 2
                for (int g = 0; g < G; g++) w[g] = _mm512_loadu_si512((const void *)(qd[g] + 64 * v));
#pragma GCC unroll 4
                for (int t = 0; t < NT; t++) {
                    const __m512i xv = _mm512_set1_epi32(ld32(tk[t].q + 32 * b + 4 * v));
#pragma GCC unroll 2
                    for (int g = 0; g < G; g++) {
                        if (split && (v & 1)) i1[g][t] = _mm512_dpbusd_epi32(i1[g][t], w[g], xv);
                        else i0[g][t] = _mm512_dpbusd_epi32(i0[g][t], w[g], xv);
                    }
                }
            }
        } else {
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                __m512i lo[G_MAX], hi[G_MAX];
#pragma GCC unroll 2
                for (int g = 0; g < G; g++) {
                    const __m512i raw = _mm512_loadu_si512((const void *)(qd[g] + 64 * v));
                    lo[g] = _mm512_and_si512(raw, m4);
                    hi[g] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
                }
#pragma GCC unroll 4
                for (int t = 0; t < NT; t++) {
                    const __m512i xl = _mm512_set1_epi32(ld32(tk[t].q + 32 * b + 4 * v));
                    const __m512i xh = _mm512_set1_epi32(ld32(tk[t].q + 32 * b + 16 + 4 * v));
#pragma GCC unroll 2
                    for (int g = 0; g < G; g++) {
                        i0[g][t] = _mm512_dpbusd_epi32(i0[g][t], lo[g], xl);
                        if (split) i1[g][t] = _mm512_dpbusd_epi32(i1[g][t], hi[g], xh);
                        else i0[g][t] = _mm512_dpbusd_epi32(i0[g][t], hi[g], xh);
                    }
                }
            }
        }
#pragma GCC unroll 2
        for (int g = 0; g < G; g++) {
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)sd[g]));
            __m512 mw = _mm512_setzero_ps();
            if (has_min) mw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sd[g] + 32)));
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                const __m512i is = split ? _mm512_add_epi32(i0[g][t], i1[g][t]) : i0[g][t];
                acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(dw, _mm512_set1_ps(tk[t].dx[b])),
                                            acc[g][t]);
                if (has_min) acc[g][t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(tk[t].sx[b]), acc[g][t]);
            }
        }
    }
#pragma GCC unroll 2
    for (int g = 0; g < G; g++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) out[g][t] = acc[g][t];
}

typedef void (*r16_tile_fn)(const uint8_t *const gq[], const r16_tok tk[], int64_t nb, __m512 out[][NT_PRE],
                            int64_t pf);

#ifndef G_DEC4
#define G_DEC4 4 // groups per q4_0 decode tile (8 streams in flight: see r16_dec_q4)
#endif
#ifndef G_DEC41
#define G_DEC41 4 // groups per q4_1 decode tile (see r16_dec_q8 for the measurements)
#endif
#ifndef G_DEC8
#define G_DEC8 4 // groups per q8_0 decode tile
#endif
#ifndef R16_DEC8_MAX_GS
#define R16_DEC8_MAX_GS 32768 // longer q8_0 groups (n_in > 1920) decode with r16_tile (see r16_dec_q8)
#endif
#define G_DEC 2 // groups per r16_tile decode tile
#ifndef R16_PF_DEC_SHORT_GS
#define R16_PF_DEC_SHORT_GS 16384 // q4_1 / q8_0 decode groups up to this size prefetch (see r16_run)
#endif
#ifndef R16_PF_DEC41_8
#define R16_PF_DEC41_8 0 // 1: q4_1 / q8_0 decode tiles prefetch as q4_0's (slower: see r16_dec_q8)
#endif
// Decode (one token) over q4_0 / q4_1 groups, the tile that streams the model in tg. A 64-byte
// vector holds 128 nibbles; the high ones are used in place: raw & 0xF0 is 16 x the level, so
// vpdpbusd on it gives 16 x the high half's products, and the high chain's sum is divided by
// 16 once per block (an exact arithmetic shift: every product is a multiple of 16, the sums
// stay far inside int32: 16 x 240 x 128). Per vector: two ANDs and two vpdpbusd instead of
// an AND, a shift and an AND; the activation broadcasts are shared by the G groups.
// Same integer sums, then the same float ops in the same order as r16_tile and the ref:
// bit-identical. pf: the prefetch offset of r16_tile (< 0: -pf ahead within the group); l2:
// into L2 instead of R16_PF_HINT (q4_0 only; q4_1 always prefetches into L2, see r16_run).
// Measured on the 2-core Zen 4 (1 thread, CPU clock, core shared, DRAM shared with a decode
// on the other core; bench/decode_roofline.py's conditions): 100 distinct 4096 x 4096 q4_0
// matrices streamed from DRAM, G = 4 read 5-12% faster than r16_tile's 2 groups (4 rounds,
// membw 20-21 GB/s), G = 1 20% slower: with DRAM this contended the tile is bound by streams in
// flight. Forcing one load per vector (the compiler folds the load into both ANDs) was slower
// at G = 4 in that test, faster from L1/L2. In L1 (18 KB) the tile runs 67 GB/s vs r16_tile's
// 65; from L2/L3 (4096 x 1024) 54 vs 59: at idle, with ~40 GB/s of DRAM per core, the two
// may trade places (bench/decode_roofline.py --e2h OLD --e2h NEW shows it). q4_1 uses this
// tile too, with 4 groups and no software prefetch (see r16_dec_q8).
AI void r16_dec_q4(int wt, int G, const uint8_t *const gq[], const r16_tok *tk, int64_t nb, __m512 out[],
                   int64_t pf, int l2) {
    const int64_t qb = 256, sb = kern_r16_sbytes(wt);
    const int q40 = wt == E2H_TYPE_Q4_0;
    const __m512i mlo = _mm512_set1_epi8(0x0F), mhi = _mm512_set1_epi8((char)0xF0);
    const int64_t pq = pf < 0 ? -pf : pf, ps = pf < 0 ? -pf * sb / qb : pf;
    __m512 acc[G_ALL];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) acc[g] = _mm512_setzero_ps();
    const uint8_t *sd0[G_ALL];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) sd0[g] = gq[g] + nb * qb;
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *xq = tk->q + 32 * b;
        __m512i xl[4], xh[4];
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            xl[v] = _mm512_set1_epi32(ld32(xq + 4 * v));
            xh[v] = _mm512_set1_epi32(ld32(xq + 16 + 4 * v));
        }
        const __m512 dx = _mm512_set1_ps(tk->dx[b]);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const uint8_t *qd = gq[g] + b * qb, *sd = sd0[g] + b * sb;
            if (pf) {
#pragma GCC unroll 4
                for (int64_t o = 0; o < qb; o += 64) {
                    if (l2) _mm_prefetch((const char *)(qd + pq + o), _MM_HINT_T1); // see r16_run
                    else _mm_prefetch((const char *)(qd + pq + o), R16_PF_HINT);
                }
                if (l2) _mm_prefetch((const char *)(sd + ps), _MM_HINT_T1);
                else _mm_prefetch((const char *)(sd + ps), R16_PF_HINT);
            }
            __m512i il = q40 ? _mm512_set1_epi32(tk->init[b]) : _mm512_setzero_si512();
            __m512i ih = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                __m512i raw = _mm512_loadu_si512((const void *)(qd + 64 * v));
                il = _mm512_dpbusd_epi32(il, _mm512_and_si512(raw, mlo), xl[v]);
                ih = _mm512_dpbusd_epi32(ih, _mm512_and_si512(raw, mhi), xh[v]);
            }
            const __m512i is = _mm512_add_epi32(il, _mm512_srai_epi32(ih, 4));
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)sd));
            acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(dw, dx), acc[g]);
            if (!q40) {
                const __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sd + 32)));
                acc[g] = _mm512_fmadd_ps(mw, _mm512_set1_ps(tk->sx[b]), acc[g]);
            }
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) out[g] = acc[g];
}

// Decode (one token) over q8_0 groups: per block the 8 activation broadcasts are shared by the
// G groups; per group two integer chains (even and odd vectors, as r16_tile's split), then the
// same float ops in the same order as r16_tile and the ref: bit-identical. pf as r16_dec_q4.
// q4_1 and q8_0 decode: 4 groups per tile and, for long groups, no software prefetch (short
// ones prefetch into L2 since session 13: see r16_run). Against
// r16_tile's 2 groups with R16_PF_TILE / R16_PF_DIST_*: measured on the 2-core Zen 4, 1 thread
// on a core shared with other jobs, DRAM shared with a decode on the other core (membw 20 GB/s,
// CPU clock), the matmuls of one decode step with every matrix distinct (they stream from
// DRAM), old and new kernels alternating step by step in one process, median over 16 steps of
// the time ratio: SmolLM2-135M Q4_1 layers (fused shapes 960|576|3072 x 576, 576 x 1536)
// x1.12, its Q8_0 49152 x 576 head x1.17; the same model all Q8_0: layers x1.16, head x1.15;
// 3 Llama-2-7B layers + head in Q4_1 x1.13 / x1.15, in Q8_0 x0.97 / x1.01 (noise: +-3%).
// With R16_PF_TILE's next-tile prefetch the q4_1 SmolLM2 layers were x1.06 and the 7B q4_1
// layers x0.93 (G = 4) or x0.99 (G = 2); with q4_0's 4096-byte in-group prefetch x0.89.
// Long q8_0 groups did not resolve: 4 TinyLlama-1.1B layers + head (n_in 2048, 5632) x0.95 to
// x1.05 over 4 runs, 3 7B layers x0.91 to x1.01, e2h tg of a random 1.1B Q8_0 x0.95 (6 rounds,
// 0.90-1.06): they keep r16_tile (R16_DEC8_MAX_GS), which streams them with the hardware
// prefetchers alone (R16_PF_DIST_Q8) as before.
AI void r16_dec_q8(int G, const uint8_t *const gq[], const r16_tok *tk, int64_t nb, __m512 out[], int64_t pf) {
    const int64_t qb = 512, sb = 32;
    const int64_t pq = pf < 0 ? -pf : pf, ps = pf < 0 ? -pf * sb / qb : pf;
    __m512 acc[G_ALL];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) acc[g] = _mm512_setzero_ps();
    const uint8_t *sd0[G_ALL];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) sd0[g] = gq[g] + nb * qb;
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *xq = tk->q + 32 * b;
        __m512i xv[8];
#pragma GCC unroll 8
        for (int v = 0; v < 8; v++) xv[v] = _mm512_set1_epi32(ld32(xq + 4 * v));
        const __m512 dx = _mm512_set1_ps(tk->dx[b]);
        const __m512i init = _mm512_set1_epi32(tk->init[b]);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const uint8_t *qd = gq[g] + b * qb, *sd = sd0[g] + b * sb;
            if (pf) {
#pragma GCC unroll 8
                for (int64_t o = 0; o < qb; o += 64) _mm_prefetch((const char *)(qd + pq + o), _MM_HINT_T1);
                _mm_prefetch((const char *)(sd + ps), _MM_HINT_T1); // see r16_run
            }
            __m512i i0 = init, i1 = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int v = 0; v < 8; v += 2) {
                i0 = _mm512_dpbusd_epi32(i0, _mm512_loadu_si512((const void *)(qd + 64 * v)), xv[v]);
                i1 = _mm512_dpbusd_epi32(i1, _mm512_loadu_si512((const void *)(qd + 64 * v + 64)), xv[v + 1]);
            }
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)sd));
            acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(i0, i1)), _mm512_mul_ps(dw, dx), acc[g]);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) out[g] = acc[g];
}

typedef void (*r16_dec_fn)(const uint8_t *const gq[], const r16_tok *tk, int64_t nb, __m512 out[], int64_t pf,
                           int l2);
#define R16_DEC(TYPE, G)                                                                             \
    static void r16_dec_##TYPE##_##G(const uint8_t *const gq[], const r16_tok *tk, int64_t nb, __m512 out[], \
                                     int64_t pf, int l2) {                                           \
        if (E2H_TYPE_##TYPE == E2H_TYPE_Q8_0)                                                        \
            r16_dec_q8(G, gq, tk, nb, out, pf);                                                      \
        else                                                                                         \
            r16_dec_q4(E2H_TYPE_##TYPE, G, gq, tk, nb, out, pf, l2);                                 \
    }
#define R16_DECS(TYPE) R16_DEC(TYPE, 1) R16_DEC(TYPE, 2) R16_DEC(TYPE, 3) R16_DEC(TYPE, 4)
R16_DECS(Q4_0)
R16_DECS(Q4_1)
R16_DECS(Q8_0)

#define R16_FN(TYPE, G, NT, SPLIT, PF)                                                               \
    static void r16_##TYPE##_##G##_##NT(const uint8_t *const gq[], const r16_tok tk[], int64_t nb,  \
                                        __m512 out[][NT_PRE], int64_t pf) {                          \
        r16_tile(E2H_TYPE_##TYPE, G, NT, SPLIT, gq, tk, nb, out, PF ? pf : 0, PF == 2);              \
    }
#define R16_FNS(TYPE)                                                                                \
    R16_FN(TYPE, 2, 1, 1, 1) R16_FN(TYPE, 1, 1, 1, 1) R16_FN(TYPE, 2, 2, 1, 2) R16_FN(TYPE, 2, 3, 0, 2) \
    R16_FN(TYPE, 2, 4, 0, 2) R16_FN(TYPE, 1, 2, 1, 2) R16_FN(TYPE, 1, 3, 0, 2) R16_FN(TYPE, 1, 4, 0, 2)
R16_FNS(Q4_0)
R16_FNS(Q4_1)
R16_FNS(Q8_0)

typedef struct {
    r16_tile_fn f[G_MAX][NT_PRE]; // [groups - 1][tokens - 1]
} r16_tiles;

static int r16_tiles_get(int wtype, r16_tiles *t) {
#define R16_SET(TYPE)                                                                                \
    do {                                                                                             \
        r16_tile_fn f[G_MAX][NT_PRE] = {{r16_##TYPE##_1_1, r16_##TYPE##_1_2, r16_##TYPE##_1_3, r16_##TYPE##_1_4}, \
                                        {r16_##TYPE##_2_1, r16_##TYPE##_2_2, r16_##TYPE##_2_3, r16_##TYPE##_2_4}}; \
        memcpy(t->f, f, sizeof f);                                                                   \
    } while (0)
    switch (wtype) {
    case E2H_TYPE_Q4_0: R16_SET(Q4_0); return 0;
    case E2H_TYPE_Q4_1: R16_SET(Q4_1); return 0;
    case E2H_TYPE_Q8_0: R16_SET(Q8_0); return 0;
    default: return -1;
    }
#undef R16_SET
}

typedef struct {
    e2h_r16_args a; // first: the shared quantize body takes a pointer to the context
    r16_tiles tiles;
    r16_dec_fn dec[G_ALL]; // decode tiles of 1..G_ALL groups (NULL: r16_tile's)
    int gdec;              // groups per decode tile
} r16_ctx;

static void r16_dec_get(int wtype, int64_t n_in, r16_ctx *c) {
#define R16_DSET(TYPE, G)                                                                            \
    do {                                                                                             \
        const r16_dec_fn d[G_ALL] = {r16_dec_##TYPE##_1, r16_dec_##TYPE##_2, r16_dec_##TYPE##_3, r16_dec_##TYPE##_4}; \
        memcpy(c->dec, d, sizeof d);                                                                 \
        c->gdec = G;                                                                                 \
    } while (0)
    c->gdec = G_DEC;
    if (wtype == E2H_TYPE_Q4_0) R16_DSET(Q4_0, G_DEC4);
    else if (wtype == E2H_TYPE_Q4_1) R16_DSET(Q4_1, G_DEC41);
    else if (wtype == E2H_TYPE_Q8_0 && kern_r16_group_stride(wtype, n_in) <= R16_DEC8_MAX_GS) R16_DSET(Q8_0, G_DEC8);
#undef R16_DSET
}

// Stores a tile: each group's 16 rows (fewer at the matrix end) for tokens [t, t + nt), into
// its segment; in swiglu mode the tile is a (gate, up) pair and gets swiglu'd.
static void r16_store(const r16_ctx *c, int64_t row0, int G, int nt, int64_t t, __m512 out[][NT_PRE]) {
    if (c->a.out->swiglu) { // G even: (gate, up) pairs of groups
        const e2h_mm_seg *s = &c->a.out->segs[0];
        float g[16], u[16];
        for (int p = 0; p + 1 < G; p += 2)
            for (int j = 0; j < nt; j++) {
                _mm512_storeu_ps(g, out[p][j]);
                _mm512_storeu_ps(u, out[p + 1][j]);
                kern_swiglu_avx512(s->y + (t + j) * s->ldy + (row0 + p * E2H_R16_ROWS) / 2, g, u, 1, 16);
            }
        return;
    }
    for (int g = 0; g < G; g++) {
        const int64_t r = row0 + (int64_t)g * E2H_R16_ROWS;
        const int64_t left = c->a.n_out - r;
        const __mmask16 m = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
        int64_t ldy;
        float *y = kern_mm_out_at(c->a.out, r, &ldy);
        for (int j = 0; j < nt; j++) _mm512_mask_storeu_ps(y + (t + j) * ldy, m, out[g][j]);
    }
}

// Groups [g0, g1) × tokens [t0, t1), tiles of up to gmax groups × ntmax tokens.
static void r16_run(const r16_ctx *c, int64_t g0, int64_t g1, int64_t t0, int64_t t1, int gmax, int ntmax) {
    const int64_t nb = c->a.n_in / 32, gs = kern_r16_group_stride(c->a.wtype, c->a.n_in);
    const int64_t ts = kern_r16_token_stride(c->a.n_in);
    const int32_t *init = kern_r16_inits(c->a.scratch, c->a.n_tok, c->a.n_in);
    // Decode prefetch: short groups (small n_in) are short streams that the hardware
    // prefetcher keeps losing, so fetch the next tile (the same offset gmax groups on);
    // long groups stream well, so only R16_PF_DIST_* ahead in the group (coded negative).
    const int64_t dist = c->a.wtype == E2H_TYPE_Q8_0 ? R16_PF_DIST_Q8 : R16_PF_DIST_Q4;
    // q4_1 / q8_0 decode tiles: short groups (SmolLM2's n_in 576, 1536) prefetch into L2 (q4_0's
    // into L1), the next tile while it is at most R16_PF_TILE_L2; long ones (7B) stream best
    // with the hardware prefetchers alone (see r16_dec_q8). Measured on the 2-core Zen 4 (1 thread
    // pinned, alternating): SmolLM2 Q4_1 tg128 (`e2h bench -p 0 -n 128 -r 3`) 117-144 -> 173-206
    // tok/s, bench/decode_roofline.py 69% -> 102% of membw at 1 thread, 54% -> 77% at 2; the
    // step's matmuls (kernels_quant -i r16 -m) 12.6-16.3 -> 18.9-20.6 GB/s with R16_PF_TILE's
    // limit, 13.5-13.8 GB/s prefetching into L1 (T0) instead.
    const int dec41_8 = ntmax == 1 && c->dec[0] && c->a.wtype != E2H_TYPE_Q4_0;
    int64_t pf = gmax * gs <= (dec41_8 ? R16_PF_TILE_L2 : R16_PF_TILE) ? gmax * gs : -dist;
    if (dec41_8 && !R16_PF_DEC41_8 && gs > R16_PF_DEC_SHORT_GS) pf = 0;
    // q4_0 decode tiles prefetch short groups into L2 too (long ones: R16_PF_HINT, tuned on the
    // 7B): SmolLM2 quantized to q4_0 on load, tg128 1 thread 143-170 -> 230-240 tok/s.
    const int dec_l2 = dec41_8 || gs <= R16_PF_DEC_SHORT_GS;
    // Multi-token tiles (K samples' step, PRM steps, prefill): the first token tile over a tile
    // of groups fetches the next tile's weights into L2 while the other token tiles reuse these
    // from L1. Without it a step of few tokens waited for every group's weights from DRAM: the
    // matmuls of a SmolLM2 step with every matrix streamed from DRAM (bench/kernels_quant -m -k
    // K, 1 thread) took 10.6-11.4 -> 4.8-5.1 ms at K = 4, 20.9-22.4 -> 15.9-16.0 at K = 16,
    // 67-74 -> 63 at K = 64; one 32000 x 4096 matrix (DRAM) at 512 tokens q4_0 310-323 -> 330-338
    // GFLOP/s, q8_0 unchanged; L2-resident shapes unchanged. Prefetching into L1 (T0) gained
    // little and non-temporal (NTA) nothing (presumably they compete with the demand loads).
    const int64_t pf_pre = gmax * gs <= R16_PF_PRE_MAX ? gmax * gs : -R16_PF_DIST_Q4;
    for (int64_t g = g0; g < g1; g += gmax) {
        const int G = (int)(g1 - g < gmax ? g1 - g : gmax);
        const uint8_t *gq[G_ALL];
        for (int i = 0; i < G; i++) gq[i] = c->a.w + (g + i) * gs;
        for (int64_t t = t0; t < t1; t += ntmax) {
            const int nt = (int)(t1 - t < ntmax ? t1 - t : ntmax);
            r16_tok tk[NT_PRE];
            for (int j = 0; j < nt; j++) {
                const uint8_t *tok = c->a.scratch + (t + j) * ts;
                const int64_t nb2 = kern_qx32_nb2(c->a.n_in);
                tk[j].q = (const int8_t *)tok;
                tk[j].dx = (const float *)(tok + nb2 * 32);
                tk[j].sx = tk[j].dx + nb2;
                tk[j].init = init + (t + j) * nb;
            }
            __m512 out[G_ALL][NT_PRE];
            if (ntmax == 1 && c->dec[0]) {
                __m512 o[G_ALL];
                c->dec[G - 1](gq, tk, nb, o, pf, dec_l2);
                for (int i = 0; i < G; i++) out[i][0] = o[i];
            } else
                c->tiles.f[G - 1][nt - 1](gq, tk, nb, out, t == t0 ? pf_pre : 0);
            r16_store(c, g * E2H_R16_ROWS, G, nt, t, out);
        }
    }
}

static void r16_matmul_fn(void *p, int ith, int nth) {
    const r16_ctx *c = p;
    const int64_t groups = (c->a.n_out + E2H_R16_ROWS - 1) / E2H_R16_ROWS;
    const int gmax = c->a.n_tok > 1 ? G_PRE : c->gdec;
    int64_t g0, g1;
    pool_slice(groups, ith, nth, gmax, &g0, &g1);
    if (g0 >= g1) return;
    if (c->a.n_tok == 1) {
        r16_run(c, g0, g1, 0, 1, gmax, 1);
        return;
    }
    for (int64_t tb = 0; tb < c->a.n_tok; tb += TOK_BLOCK) {
        const int64_t te = tb + TOK_BLOCK < c->a.n_tok ? tb + TOK_BLOCK : c->a.n_tok;
        r16_run(c, g0, g1, tb, te, gmax, NT_PRE);
    }
}

// Activations quantized by the AVX-512 twins of the ref's rmsnorm and quantizer (same bytes).
static const e2h_r16_act_ops k_act_avx512 = {kern_rmsnorm_avx512, kern_qx_quantize_avx512};

void kern_r16_matmul_ex_avx512(e2h_pool *pool, const e2h_mm_out *out, const float *x, const void *wp,
                              int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch) {
    if (kern_r16_scratch_size(wtype, n_tok, n_in) < 0 || n_tok <= 0 || n_out <= 0) return;
    if ((out->swiglu && n_out % (2 * E2H_R16_ROWS)) || (out->norm_w && n_in > E2H_R16_NORM_MAX)) return;
    r16_ctx c = {{out, x, wp, wtype, n_tok, n_in, n_out, scratch, &k_act_avx512}, {{{0}}}, {0}, 0};
    if (r16_tiles_get(wtype, &c.tiles)) return;
    r16_dec_get(wtype, n_in, &c);
    if (n_tok < QUANT_INLINE_TOK || pool_size(pool) == 1)
        kern_r16_quantize(wtype, x, 0, n_tok, n_tok, n_in, scratch, &k_act_avx512, out->norm_w,
                         out->norm_eps);
    else
        pool_run(pool, kern_r16_quantize_fn, &c.a);
    pool_run(pool, r16_matmul_fn, &c);
}

void kern_r16_matmul_avx512(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *wp,
                           int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch) {
    kern_r16_matmul_plain(kern_r16_matmul_ex_avx512, pool, y, ldy, x, wp, wtype, n_tok, n_in, n_out, scratch);
}
