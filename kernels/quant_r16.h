// kernels/quant_r16.h — "r16": quantized weights repacked at load time so that a SIMD lane
// is an output row.
//
// Why: in GGUF's layout a 64-byte vector holds 64 elements of ONE row, so every vpdpbusd
// (16 lanes × 4 products) must be followed by a float convert + scale + fma per lane to
// apply the 32-element block scales, and a 16-way horizontal sum per output at the end —
// the kernel is bound by instruction count, not by memory. Interleaving 16 rows puts the 16
// rows of a group in the 16 int32 lanes: a block (32 elements) of 16 rows is 8 vpdpbusd
// with the activations broadcast, then ONE convert + fma for all 16 rows, and no horizontal
// sums (llama.cpp repacks Q4_0 into interleaved blocks at load for the same reason).
//
// Supported: Q4_0, Q4_1, Q8_0 (the types of the default model and the benchmark models).
// Rows are grouped by 16 (the last group zero-padded). Per group, nb = n_in / 32 blocks:
//   quants:  nb × QB bytes; block b, vector v (64 bytes), lane r (4 bytes), byte j:
//            q4_*: GGUF qs[4v + j] of row r (low nibble: element 4v+j, high: 16+4v+j), v < 4
//            q8_0: GGUF qs[4v + j] of row r plus 128 (unsigned), v < 8
//   scales:  nb × SB bytes; block b: d of rows 0..15 (f16), then (q4_1) m of rows 0..15.
// Weight levels are unsigned (q4: 0..15, q8_0: q+128); the offset (8, 128) is applied
// through the activations' block sums.
//
// Matmul semantics (the ref in kernels/ref/quant_r16.c defines it; SIMD reproduces it bit for
// bit): activations are quantized exactly as for GGUF's Q8_0/Q8_1 (kern_qx_quantize with
// wtype Q8_0: q, dx = half(d), sx = half(d·Σq)). Per output (row r, token t):
//   acc = 0; for each block b in order:
//       isum = Σ_e u[r][e]·q[t][e] - off·Σ_e q[t][e]            (exact int32)
//       acc  = fma((float)isum, dw[r][b] * dx[t][b], acc)
//       acc  = fma(mw[r][b], sx[t][b], acc)                      (q4_1 only)
//   y = acc
// Each output depends only on its row, its token and n_in (batch- and thread-invariant).
#ifndef E2H_KERNELS_QUANT_R16_H
#define E2H_KERNELS_QUANT_R16_H

#include <stddef.h>
#include <stdint.h>

#include "quant.h"

#define E2H_R16_ROWS 16

// 1 if `wtype` has an r16 layout.
int kern_r16_supported(int wtype);
// Bytes of the repacked copy of a (n_out, n_in) matrix; 0 if unsupported or n_in is not a
// multiple of 32.
size_t kern_r16_size(int wtype, int64_t n_in, int64_t n_out);
// Repacks W (n_out rows of GGUF blocks, row stride kern_type_row_size) into dst
// (kern_r16_size bytes, 64-byte aligned). Multithreaded over groups through pool (may be NULL).
void kern_r16_repack(e2h_pool *pool, int wtype, const void *w, int64_t n_in, int64_t n_out,
                    void *dst);
// The same with group g written at dst + g * dst_group_stride (to concatenate matrices, or to
// interleave gate and up groups for a fused SwiGLU: stride 2 * kern_r16_group_stride).
void kern_r16_repack_to(e2h_pool *pool, int wtype, const void *w, int64_t n_in, int64_t n_out,
                       void *dst, int64_t dst_group_stride);
// Bytes of the scratch a call needs (64-byte aligned); -1 if unsupported.
int64_t kern_r16_scratch_size(int wtype, int64_t n_tok, int64_t n_in);

// y (n_tok, ldy)[:, 0:n_out] = x (n_tok, n_in) · W^T with W in r16 layout `wp`.
// Multithreaded over row groups through pool (may be NULL). Allocates nothing.
void kern_r16_matmul_ref(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *wp,
                        int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
// AVX-512 VNNI; only call where the CPU has AVX-512 F/BW/VL/DQ + VNNI.
void kern_r16_matmul_avx512(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *wp,
                           int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
// Segmented / SwiGLU outputs (e2h_mm_out in kernels/ops.h); the swiglu of the ref is
// kern_swiglu_ref, that of the AVX-512 kernel kern_swiglu_avx512 (each equals its ISA's
// matmul + swiglu). In swiglu mode n_out counts gate and up rows (2 × the output width, a
// multiple of 32). Segment row counts other than the last must be multiples of 16.
void kern_r16_matmul_ex_ref(e2h_pool *pool, const e2h_mm_out *out, const float *x, const void *wp,
                           int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
void kern_r16_matmul_ex_avx512(e2h_pool *pool, const e2h_mm_out *out, const float *x, const void *wp,
                              int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
// One plain output: y (n_tok, ldy) gets all n_out columns.
typedef void (*e2h_r16_ex_fn)(e2h_pool *, const e2h_mm_out *, const float *, const void *, int, int64_t,
                              int64_t, int64_t, void *);
static inline void kern_r16_matmul_plain(e2h_r16_ex_fn ex, e2h_pool *pool, float *y, int64_t ldy,
                                        const float *x, const void *wp, int wtype, int64_t n_tok,
                                        int64_t n_in, int64_t n_out, void *scratch) {
    const e2h_mm_seg seg = {y, ldy, n_out};
    const e2h_mm_out out = {&seg, 1, 0, NULL, 0.0f};
    ex(pool, &out, x, wp, wtype, n_tok, n_in, n_out, scratch);
}
// Where output row r of a plain e2h_mm_out goes: *y points at token 0's element.
static inline float *kern_mm_out_at(const e2h_mm_out *o, int64_t r, int64_t *ldy) {
    int i = 0;
    while (i < o->n_segs - 1 && r >= o->segs[i].rows) r -= o->segs[i++].rows;
    *ldy = o->segs[i].ldy;
    return o->segs[i].y + r;
}

// ---- shared by ref and SIMD ----
static inline int64_t kern_r16_qbytes(int wtype) { return wtype == E2H_TYPE_Q8_0 ? 512 : 256; }
static inline int64_t kern_r16_sbytes(int wtype) { return wtype == E2H_TYPE_Q4_1 ? 64 : 32; }
static inline int64_t kern_r16_group_stride(int wtype, int64_t n_in) {
    return (n_in / 32) * (kern_r16_qbytes(wtype) + kern_r16_sbytes(wtype));
}
static inline int kern_r16_offset(int wtype) { return wtype == E2H_TYPE_Q4_0 ? 8 : wtype == E2H_TYPE_Q8_0 ? 128 : 0; }

// Scratch: per token the Q8_0 activation layout of kernels/quant.h (natural element order;
// dx, sx arrays), then for all tokens int32 init[t][b] = -off·Σq over block b.
// How a kernel quantizes its activations: the ref passes kern_rmsnorm_ref + kern_qx_quantize,
// the AVX-512 kernel its byte-identical twins (so this shared driver, in kernels/ref, names
// no SIMD function).
typedef struct {
    void (*rmsnorm)(float *out, const float *x, const float *w, int64_t n, int64_t dim, float eps);
    void (*quantize)(int wtype, const float *x, int64_t t0, int64_t t1, int64_t n_in,
                     void *scratch);
} e2h_r16_act_ops;
extern const e2h_r16_act_ops kern_r16_act_ref;
// Quantizes tokens [t0, t1) with act, each row first through act->rmsnorm(row, norm_w, eps)
// when norm_w is not NULL (rows of up to E2H_R16_NORM_MAX elements).
#define E2H_R16_NORM_MAX 16384
void kern_r16_quantize(int wtype, const float *x, int64_t t0, int64_t t1, int64_t n_tok,
                      int64_t n_in, void *scratch, const e2h_r16_act_ops *act,
                      const float *norm_w, float eps);
// The arguments of one r16 matmul call, shared by the ref and AVX-512 drivers.
typedef struct {
    const e2h_mm_out *out;
    const float *x;
    const uint8_t *w; // r16 layout
    int wtype;
    int64_t n_tok, n_in, n_out;
    uint8_t *scratch;
    const e2h_r16_act_ops *act; // how activations are quantized
} e2h_r16_args;
// Pool body (args: e2h_r16_args *): quantizes this thread's slice of tokens, through the
// fused RMSNorm when args->out->norm_w is set.
void kern_r16_quantize_fn(void *args, int ith, int nth);
static inline int64_t kern_r16_token_stride(int64_t n_in) {
    return kern_qx_token_stride(E2H_TYPE_Q8_0, n_in);
}
static inline int32_t *kern_r16_inits(void *scratch, int64_t n_tok, int64_t n_in) {
    return (int32_t *)((uint8_t *)scratch + n_tok * kern_r16_token_stride(n_in));
}

#endif
