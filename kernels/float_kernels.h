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

#include "pool.h"
#include "types.h"

#define E2H_DOT_LANES 16

// ---- float weight rows (f32 / f16 / bf16) ----
void kern_float_dequantize_row(int type, const void *src, float *dst, int64_t n);
void kern_float_quantize_row(int type, const float *src, void *dst, int64_t n);

// ---- matmul for float weight types (see e2h_ops.matmul) ----
void kern_matmul_float_ref(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                          int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
void kern_matmul_float_avx2(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                           int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
void kern_matmul_float_avx512(e2h_pool *pool, float *y, int64_t ldy, const float *x,
                             const void *w, int wtype, int64_t n_tok, int64_t n_in,
                             int64_t n_out, void *scratch);

// ---- bf16 x bf16 dot-product matmul (bf16 weights; AVX512_BF16 vdpbf16ps and its ref) ----
// Not the canonical float order above: a different arithmetic, used for bf16 weights by the
// "avx512bf16" table only (as PyTorch does on CPUs with AVX512_BF16). Definition:
//  * every activation is rounded to bf16, round-to-nearest-even (kern_f32_to_bf16, the
//    rounding of _mm512_cvtne2ps_pbh), once per matmul, into scratch rows of
//    E2H_BF16DOT_PAD-padded length (zeros past n_in);
//  * 16 f32 lane accumulators, starting at +0; for k0 = 0, 32, 64, ... lane l does
//        acc[l] += w[k0+2l+1] * x[k0+2l+1];  acc[l] += w[k0+2l] * x[k0+2l]
//    (each product of two bf16 is exact in f32; each addition rounds to nearest even;
//    elements past n_in are 0 * 0), as vdpbf16ps documents it;
//  * then the canonical halving fold of the 16 lanes (s8[i] = a[i] + a[i+8], s4, s2, s1).
// The order depends only on n_in, so results are bit-identical for any n_tok, tiling or thread
// count. The ref does not model vdpbf16ps' denormal flushing (inputs and outputs are treated
// as zero there), so the two may differ where products or partial sums are subnormal, and
// the SIMD kernel is tested against the ref with a tolerance, not bit for bit.
#define E2H_BF16DOT_PAD 32
// Bytes of scratch for n_tok activation rows of n_in (plus 64 for alignment).
int64_t kern_bf16dot_scratch_size(int64_t n_tok, int64_t n_in);
void kern_matmul_bf16dot_ref(e2h_pool *pool, float *y, int64_t ldy, const float *x,
                             const void *w, int64_t n_tok, int64_t n_in, int64_t n_out,
                             void *scratch);
void kern_matmul_bf16dot_avx512(e2h_pool *pool, float *y, int64_t ldy, const float *x,
                                const void *w, int64_t n_tok, int64_t n_in, int64_t n_out,
                                void *scratch);

// ---- elementwise ----
void kern_rmsnorm_ref(float *out, const float *x, const float *w, int64_t n, int64_t dim, float eps);
void kern_rmsnorm_avx2(float *out, const float *x, const float *w, int64_t n, int64_t dim, float eps);
void kern_rmsnorm_avx512(float *out, const float *x, const float *w, int64_t n, int64_t dim,
                        float eps);
void kern_rope_ref(float *x, const int32_t *pos, int64_t n, int n_heads, int head_dim,
                  const float *inv_freq, int interleaved);
void kern_rope_avx2(float *x, const int32_t *pos, int64_t n, int n_heads, int head_dim,
                   const float *inv_freq, int interleaved);
void kern_rope_avx512(float *x, const int32_t *pos, int64_t n, int n_heads, int head_dim,
                     const float *inv_freq, int interleaved);
void kern_swiglu_ref(float *out, const float *gate, const float *up, int64_t n, int64_t dim);
void kern_swiglu_avx2(float *out, const float *gate, const float *up, int64_t n, int64_t dim);
void kern_swiglu_avx512(float *out, const float *gate, const float *up, int64_t n, int64_t dim);

// ---- attention ----
// The driver (kernels/ref/attn.c) forms work items: one KV head, some query rows
// (row = (query token, head of the group)), laid out one after another. It runs an ISA's
// phase function over the blocks each row set sees (sequences sorted into prefix-tree order:
// the blocks a run of them shares once for all its rows, then the blocks each sub-run shares,
// down to each sequence's own blocks), then writes out = acc / l.
//
// Running state of a row: m (max score so far, -inf before any visible slot), l (sum of
// exp(score - m)), acc (head_dim, sum of exp(score - m) * v); starts at (-inf, 0, 0). A phase
// processes the visible slots of blocks [blk0, blk1) in order, in chunks of slots; each chunk's
// partial state (its own max, sum, acc) is computed from q and that chunk only, then merged
// into the running state. A row's arithmetic depends only on its q, its causal limit and the
// blocks it sees — never on the other rows of the phase — which is what makes results
// independent of batching, cascades and threads.
typedef struct e2h_attn_phase {
    const float *q;               // (n_tok, n_heads * head_dim) queries of the batch
    const e2h_kv_layer_view *kv;
    int kh;                       // KV head of every row
    float scale;
    const int32_t *table;         // block ids
    int64_t blk0, blk1;           // blocks to process (fewer if no row sees them)
    int n_rows;
    const int64_t *r_off;         // (n_rows) q offset of each row
    const int32_t *limit;         // (n_rows) last position each row sees
    float *m, *l, *acc;           // (n_rows), (n_rows), (n_rows, head_dim): state, updated
    float *work;                  // kern_attn_work_floats(n_rows, head_dim) floats, 64-B aligned
} e2h_attn_phase;
typedef void (*e2h_attn_phase_fn)(const e2h_attn_phase *ph);
int64_t kern_attn_work_floats(int64_t n_rows, int head_dim);

// ---- ref / AVX2: row-by-row chunk kernel ----
// Slots of one block are processed in sub-chunks of at most this many (a block's partial
// softmax state is the in-order merge of its sub-chunks' states; blocks of <= 64 slots are
// one chunk). Merging uses libm expf; a row's first visible chunk is taken as is.
#define E2H_ATTN_SCHUNK 64

// Partial softmax state of `n_rows` query rows over one chunk of K/V slots.
// q row r is q + r_off[r] (head_dim floats); the row sees the first n_valid[r] slots
// (0 = none: m = -inf, l = 0, acc untouched). k, v point at the chunk's first slot (a
// E2H_KV_KCHUNK boundary): v as rows of head_dim elements of kv_type, k as a K piece of
// k_slots slots (those left in the block; element (j, d) at kern_kv_k_index(k_slots,
// head_dim, j, d)). Outputs per row:
// m[r] = max score, l[r] = sum exp(score - m), acc (n_rows, head_dim) = sum exp(..) * v.
// `scores` is scratch of E2H_ATTN_SCHUNK floats.
typedef void (*e2h_attn_chunk_fn)(const float *q, const int64_t *r_off, const int *n_valid,
                                  int n_rows, const void *k, int k_slots, const void *v,
                                  int kv_type, int head_dim, float scale, float *m, float *l,
                                  float *acc, float *scores);
void kern_attn_chunk_ref(const float *q, const int64_t *r_off, const int *n_valid, int n_rows,
                        const void *k, int k_slots, const void *v, int kv_type, int head_dim,
                        float scale, float *m, float *l, float *acc, float *scores);
void kern_attn_chunk_avx2(const float *q, const int64_t *r_off, const int *n_valid, int n_rows,
                         const void *k, int k_slots, const void *v, int kv_type, int head_dim,
                         float scale, float *m, float *l, float *acc, float *scores);
// A phase made of chunk kernel calls (what the ref and AVX2 phases are).
void kern_attn_phase_chunked(const e2h_attn_phase *ph, e2h_attn_chunk_fn chunk);
void kern_attn_phase_ref(const e2h_attn_phase *ph);
void kern_attn_phase_avx2(const e2h_attn_phase *ph);

// ---- AVX-512: tiled phase (kernels/x86/float_avx512.c) ----
// Chunks of 16 slots (a block of more slots is several chunks, merged in order). Per (row,
// chunk), with E = exp512 (Cephes-style range reduction + degree-5 polynomial; max relative
// error 1.2e-7 over [-87.3, 0] against double exp, measured; 0 below -87.3):
//   score_j = (fma chain over d = 0..hd-1 of q[d] * k_j[d], starting at 0) * scale
//   mb = max over visible slots; p_j = E(score_j - mb), 0 for slots the row does not see
//   lb = canonical fold of the 16 p lanes (s8[i] = p[i] + p[i+8], s4, s2, s1)
//   accb[d] = fma chain over slots j of p_j * v_j[d], starting at +0; the two implementations
//             may run a row over extra slots with p = 0, exact no-ops on finite V data (the
//             one exception: a sum that is exactly -0 from underflowed products may turn +0)
//   merge: mn = max(m, mb), fa = E(m - mn), fb = E(mb - mn), l = fma(lb, fb, l * fa),
//          acc = fma(accb, fb, acc * fa), m = mn  (m = -inf gives fa = 0: first chunk)
// Two implementations of exactly this arithmetic, so a row gets the same bits in either:
// groups of 16 rows as vector lanes (S^T = K Q^T and acc^T = V^T P^T as register tiles, K
// as stored and V converted to f32 once per chunk for all groups) when a group has >= 13
// rows; rows by themselves (slots as lanes, up to 4 rows x 3 chunks of score chains
// interleaved) for the rest — decode, and the private blocks of a cascade.
// Differs from the ref (libm expf, other summation orders) within the test tolerances.
void kern_attn_phase_avx512(const e2h_attn_phase *ph);

// Queries of one sequence are split into work items of this many tokens.
#define E2H_ATTN_QCHUNK 16

// The attention driver: block tables, causal limits, cascades, threading, with the phase
// function of one ISA. cascade = 1: sequences whose block tables start with the same block ids
// have those blocks processed once for all of them, at every level of their prefix tree (a
// beam search's prompt once for all beams, a parent's steps once for its children; same bits
// as cascade = 0, which exists for benchmarks and tests).
void kern_attention_run(e2h_attn_phase_fn phase, int cascade, e2h_pool *pool, float *out,
                       const float *q, const e2h_attn_seq *seqs, int n_seqs, int n_heads,
                       const e2h_kv_layer_view *kv, float scale, void *scratch);
void kern_attention_ref(e2h_pool *pool, float *out, const float *q, const e2h_attn_seq *seqs,
                       int n_seqs, int n_heads, const e2h_kv_layer_view *kv, float scale,
                       void *scratch);
void kern_attention_avx2(e2h_pool *pool, float *out, const float *q, const e2h_attn_seq *seqs,
                        int n_seqs, int n_heads, const e2h_kv_layer_view *kv, float scale,
                        void *scratch);
void kern_attention_avx512(e2h_pool *pool, float *out, const float *q, const e2h_attn_seq *seqs,
                          int n_seqs, int n_heads, const e2h_kv_layer_view *kv, float scale,
                          void *scratch);

#endif
