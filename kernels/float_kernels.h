// kernels/float_kernels.h — internal declarations of the float kernels (ref, AVX2, AVX-512)
// that kernels/ops.c puts into the ops tables. Not part of the public interface.
//
// Canonical float dot product (the reduction order every float matmul implementation uses,
// so ref, AVX2 and AVX-512 give identical bits, for any n_tok, tiling or thread count):
//   16 lane accumulators, lane l sums k = l, l+16, l+32, ... with one fused multiply-add per
//   step (k beyond n_in contributes fma(0, 0, acc)); then the lanes are folded in halves:
//   s8[i] = a[i] + a[i+8], s4[i] = s8[i] + s8[i+4], s2[i] = s4[i] + s4[i+2], s = s2[0] + s2[1].
#ifndef E2H_KERNELS_FLOAT_KERNELS_H
#define E2H_KERNELS_FLOAT_KERNELS_H

#include "ops.h"

#define E2H_DOT_LANES 16

// ---- float weight rows (f32 / f16 / bf16) ----
int e2h_is_float_type(int type);
void e2h_float_dequantize_row(int type, const void *src, float *dst, int64_t n);
void e2h_float_quantize_row(int type, const float *src, void *dst, int64_t n);

// ---- matmul for float weight types (see e2h_ops.matmul) ----
void e2h_matmul_float_ref(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                          int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
void e2h_matmul_float_avx2(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                           int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
void e2h_matmul_float_avx512(e2h_pool *pool, float *y, int64_t ldy, const float *x,
                             const void *w, int wtype, int64_t n_tok, int64_t n_in,
                             int64_t n_out, void *scratch);

// ---- elementwise ----
void e2h_rmsnorm_ref(float *out, const float *x, const float *w, int64_t n, int64_t dim, float eps);
void e2h_rmsnorm_avx2(float *out, const float *x, const float *w, int64_t n, int64_t dim, float eps);
void e2h_rmsnorm_avx512(float *out, const float *x, const float *w, int64_t n, int64_t dim,
                        float eps);
void e2h_rope_ref(float *x, const int32_t *pos, int64_t n, int n_heads, int head_dim,
                  const float *inv_freq, int interleaved);
void e2h_rope_avx2(float *x, const int32_t *pos, int64_t n, int n_heads, int head_dim,
                   const float *inv_freq, int interleaved);
void e2h_rope_avx512(float *x, const int32_t *pos, int64_t n, int n_heads, int head_dim,
                     const float *inv_freq, int interleaved);
void e2h_swiglu_ref(float *out, const float *gate, const float *up, int64_t n, int64_t dim);
void e2h_swiglu_avx2(float *out, const float *gate, const float *up, int64_t n, int64_t dim);
void e2h_swiglu_avx512(float *out, const float *gate, const float *up, int64_t n, int64_t dim);

// ---- attention ----
// Slots of one block are processed in sub-chunks of at most this many (a block's partial
// softmax state is the in-order merge of its sub-chunks' states; blocks of <= 64 slots are
// one chunk). Queries of one sequence are split into work items of this many tokens.
#define E2H_ATTN_SCHUNK 64
#define E2H_ATTN_QCHUNK 16

// Partial softmax state of `n_rows` query rows over one chunk of K/V slots.
// q row r is q + r_off[r] (head_dim floats); the row sees the first n_valid[r] slots
// (0 = none: m = -inf, l = 0, acc untouched). k, v point at the chunk's first slot
// (slots contiguous, head_dim elements of kv_type each). Outputs per row:
// m[r] = max score, l[r] = sum exp(score - m), acc (n_rows, head_dim) = sum exp(..) * v.
// `scores` is scratch of E2H_ATTN_SCHUNK floats.
typedef void (*e2h_attn_chunk_fn)(const float *q, const int64_t *r_off, const int *n_valid,
                                  int n_rows, const void *k, const void *v, int kv_type,
                                  int head_dim, float scale, float *m, float *l, float *acc,
                                  float *scores);
void e2h_attn_chunk_ref(const float *q, const int64_t *r_off, const int *n_valid, int n_rows,
                        const void *k, const void *v, int kv_type, int head_dim, float scale,
                        float *m, float *l, float *acc, float *scores);
void e2h_attn_chunk_avx2(const float *q, const int64_t *r_off, const int *n_valid, int n_rows,
                         const void *k, const void *v, int kv_type, int head_dim, float scale,
                         float *m, float *l, float *acc, float *scores);
void e2h_attn_chunk_avx512(const float *q, const int64_t *r_off, const int *n_valid,
                           int n_rows, const void *k, const void *v, int kv_type, int head_dim,
                           float scale, float *m, float *l, float *acc, float *scores);

// The attention driver (kernels/ref/attn.c): block tables, causal limits, per-block merging
// and threading, with the chunk kernel of one ISA. cascade = 1: sequences whose block tables
// start with the same block ids have those blocks processed once for all of them (same bits
// as cascade = 0, which exists for benchmarks).
void e2h_attention_run(e2h_attn_chunk_fn chunk, int cascade, e2h_pool *pool, float *out,
                       const float *q, const e2h_attn_seq *seqs, int n_seqs, int n_heads,
                       const e2h_kv_layer_view *kv, float scale, void *scratch);
void e2h_attention_ref(e2h_pool *pool, float *out, const float *q, const e2h_attn_seq *seqs,
                       int n_seqs, int n_heads, const e2h_kv_layer_view *kv, float scale,
                       void *scratch);
void e2h_attention_avx2(e2h_pool *pool, float *out, const float *q, const e2h_attn_seq *seqs,
                        int n_seqs, int n_heads, const e2h_kv_layer_view *kv, float scale,
                        void *scratch);
void e2h_attention_avx512(e2h_pool *pool, float *out, const float *q, const e2h_attn_seq *seqs,
                          int n_seqs, int n_heads, const e2h_kv_layer_view *kv, float scale,
                          void *scratch);

#endif
