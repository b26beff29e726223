// kernels/ops.h — every numeric operation the forward pass uses, behind one table.
//
// The table is filled once at start-up from CPU features (ref, AVX2, AVX-512/VNNI); a CUDA
// backend can fill the same table later. kernels/ref/ is plain scalar C and the oracle for
// every optimized version (tests/test_kernels.c compares them on random, awkward shapes).
//
// Numerical contract (what makes sampling reproducible):
//  * Every output element of a matmul is computed with a reduction order that depends only on
//    n_in and the weight type — never on the number of tokens in the batch, on which rows or
//    tokens share a tile, or on the thread count. So a sequence gets bit-identical logits
//    whether it runs alone or batched with others, with 1 or N threads.
//  * Work is split across threads by output rows, never by the reduction dimension.
//  * Attention for one (query, head) merges per-block partial softmax states in block order,
//    so its result does not depend on which other sequences share those blocks.
#ifndef E2H_KERNELS_OPS_H
#define E2H_KERNELS_OPS_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"

// Tensor element types. Numbering is GGML's, so GGUF type ids map 1:1.
typedef enum {
    E2H_TYPE_F32 = 0,
    E2H_TYPE_F16 = 1,
    E2H_TYPE_Q4_0 = 2,
    E2H_TYPE_Q4_1 = 3,
    E2H_TYPE_Q5_0 = 6,
    E2H_TYPE_Q5_1 = 7,
    E2H_TYPE_Q8_0 = 8,
    E2H_TYPE_Q8_1 = 9,
    E2H_TYPE_Q2_K = 10,
    E2H_TYPE_Q3_K = 11,
    E2H_TYPE_Q4_K = 12,
    E2H_TYPE_Q5_K = 13,
    E2H_TYPE_Q6_K = 14,
    E2H_TYPE_Q8_K = 15,
    E2H_TYPE_BF16 = 30,
    E2H_TYPE_COUNT = 40
} e2h_type;

// ---- quant block layouts, byte-identical to GGUF's ----
typedef uint16_t e2h_f16;  // IEEE half bits
typedef uint16_t e2h_bf16; // bfloat16 bits

#define E2H_QK4_0 32
typedef struct { e2h_f16 d; uint8_t qs[E2H_QK4_0 / 2]; } e2h_block_q4_0;
static_assert(sizeof(e2h_block_q4_0) == 18, "q4_0 layout");

#define E2H_QK4_1 32
typedef struct { e2h_f16 d; e2h_f16 m; uint8_t qs[E2H_QK4_1 / 2]; } e2h_block_q4_1;
static_assert(sizeof(e2h_block_q4_1) == 20, "q4_1 layout");

#define E2H_QK5_0 32
typedef struct { e2h_f16 d; uint8_t qh[4]; uint8_t qs[E2H_QK5_0 / 2]; } e2h_block_q5_0;
static_assert(sizeof(e2h_block_q5_0) == 22, "q5_0 layout");

#define E2H_QK5_1 32
typedef struct { e2h_f16 d; e2h_f16 m; uint8_t qh[4]; uint8_t qs[E2H_QK5_1 / 2]; } e2h_block_q5_1;
static_assert(sizeof(e2h_block_q5_1) == 24, "q5_1 layout");

#define E2H_QK8_0 32
typedef struct { e2h_f16 d; int8_t qs[E2H_QK8_0]; } e2h_block_q8_0;
static_assert(sizeof(e2h_block_q8_0) == 34, "q8_0 layout");

#define E2H_QK_K 256
#define E2H_K_SCALE_SIZE 12
typedef struct {
    e2h_f16 d;    // super-block scale for quantized scales
    e2h_f16 dmin; // super-block scale for quantized mins
    uint8_t scales[E2H_K_SCALE_SIZE]; // 8 scales + 8 mins, 6 bits each
    uint8_t qs[E2H_QK_K / 2];
} e2h_block_q4_K;
static_assert(sizeof(e2h_block_q4_K) == 144, "q4_K layout");

typedef struct {
    e2h_f16 d;
    e2h_f16 dmin;
    uint8_t scales[E2H_K_SCALE_SIZE];
    uint8_t qh[E2H_QK_K / 8];
    uint8_t qs[E2H_QK_K / 2];
} e2h_block_q5_K;
static_assert(sizeof(e2h_block_q5_K) == 176, "q5_K layout");

typedef struct {
    uint8_t ql[E2H_QK_K / 2];
    uint8_t qh[E2H_QK_K / 4];
    int8_t scales[E2H_QK_K / 16];
    e2h_f16 d;
} e2h_block_q6_K;
static_assert(sizeof(e2h_block_q6_K) == 210, "q6_K layout");

typedef struct {
    float d;
    int8_t qs[E2H_QK_K];
    int16_t bsums[E2H_QK_K / 16];
} e2h_block_q8_K;
static_assert(sizeof(e2h_block_q8_K) == 292, "q8_K layout");

// ---- type traits ----
typedef struct {
    const char *name;  // "q4_0"
    int block_size;    // elements per block (1 for f32/f16/bf16)
    size_t type_size;  // bytes per block
    int supported;     // 1 if matmul/dequantize are implemented for this type
} e2h_type_traits;

const e2h_type_traits *e2h_type_traits_get(int type); // NULL for unknown ids
// Bytes of a row of n elements; 0 if n is not a multiple of the block size or type unknown.
size_t e2h_type_row_size(int type, int64_t n);

// ---- scalar conversions (exact, round-to-nearest-even) ----
float e2h_f16_to_f32(e2h_f16 h);
e2h_f16 e2h_f32_to_f16(float f);
float e2h_bf16_to_f32(e2h_bf16 h);
e2h_bf16 e2h_f32_to_bf16(float f);

// ---- attention over a paged KV cache ----
// K/V storage of one layer: blocks of `block_size` token slots,
// layout [block][kv_head][slot][head_dim], element type f32 or f16 (kv_type).
typedef struct {
    const void *k;       // this layer's K base
    const void *v;       // this layer's V base
    int kv_type;         // E2H_TYPE_F32 or E2H_TYPE_F16
    int block_size;      // token slots per block
    int n_kv_heads;
    int head_dim;
} e2h_kv_layer_view;

// One sequence's part of a batch for attention.
typedef struct {
    const int32_t *block_table; // block ids covering positions [0, n_past + n_q)
    int32_t n_past;             // tokens already in the cache before this batch's tokens
    int32_t n_q;                // new tokens of this sequence (already written to the cache)
    int32_t q_offset;           // row of its first token in the batch's q/out arrays
} e2h_attn_seq;

// Causal attention: token i of seq s (position n_past + i) attends to positions
// [0, n_past + i]. q and out are (n_tok, n_heads * head_dim); grouped-query by
// n_heads / n_kv_heads. scale is 1/sqrt(head_dim). Multithreaded over (seq, head) pairs
// through `pool`; scratch must hold e2h_attn_scratch_size(...) bytes.
typedef void (*e2h_attn_fn)(e2h_pool *pool, float *out, const float *q,
                            const e2h_attn_seq *seqs, int n_seqs, int n_heads,
                            const e2h_kv_layer_view *kv, float scale, void *scratch);
int64_t e2h_attn_scratch_size(int n_threads, int n_heads, int head_dim, int max_ctx);

// ---- outputs of a fused matmul over row-interleaved weights (matmul_packed) ----
// Plain: W's rows are split into consecutive segments, each written to its own array
// (q, k, v from one call: one activation quantization, one parallel region).
// swiglu: W holds gate and up row groups interleaved (16 rows each: gate 0..15, up 0..15,
// gate 16..31, ...); segs[0] receives swiglu(gate, up) (the ops' swiglu, so results equal
// matmul + swiglu), n_out / 2 columns.
typedef struct {
    float *y;     // (n_tok, ldy)
    int64_t ldy;
    int64_t rows; // rows of W (output columns) in this segment; a multiple of 16 but the last
} e2h_mm_seg;
typedef struct {
    const e2h_mm_seg *segs;
    int n_segs;   // 1..4
    int swiglu;
    // RMSNorm fused into the activation quantization: when norm_w (n_in) is set, each row of x
    // is replaced by the ops' rmsnorm(x_row, norm_w, norm_eps) before it is quantized (equal to
    // rmsnorm then matmul, without writing the normalized rows out).
    const float *norm_w;
    float norm_eps;
} e2h_mm_out;

// ---- the ops table ----
// Shapes are in comments as (rows, cols), row-major.
typedef struct e2h_ops {
    const char *name; // "ref", "avx2", "avx512"

    // Dequantize n elements (n a multiple of the block size) of `type` to f32.
    void (*dequantize_row)(int type, const void *src, float *dst, int64_t n);
    // Quantize n f32 values to `type` (for quantize-on-load). Same rounding as GGUF's
    // reference quantizers.
    void (*quantize_row)(int type, const float *src, void *dst, int64_t n);

    // y (n_tok, ldy) cols [0, n_out) = x (n_tok, n_in) · W(n_out, n_in)^T.
    // W rows are stored in `wtype` with row stride e2h_type_row_size(wtype, n_in).
    // Multithreaded over output rows through `pool`. `scratch` must hold
    // e2h_matmul_scratch_size(wtype, n_tok, n_in) bytes (activations quantized once).
    // Allocates nothing. Bit-identical per output element for any n_tok and thread count.
    void (*matmul)(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                   int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);

    // out (n, dim) = x / rms(x) * w, row by row. w is f32 (dim). In place allowed.
    void (*rmsnorm)(float *out, const float *x, const float *w, int64_t n, int64_t dim, float eps);

    // Rotary embedding in place on x (n, n_heads * head_dim) for positions pos[n].
    // interleaved = 0: NeoX/HF "rotate_half" layout, pairs (i, i + head_dim/2).
    // interleaved = 1: GGML "norm" layout, pairs (2i, 2i+1) — used for Llama-family GGUF
    // files, whose converter permuted the Q/K rows (so no un-permuting copy is needed).
    // inv_freq (head_dim/2) is precomputed by the model (covers rope_theta and llama3 scaling).
    void (*rope)(float *x, const int32_t *pos, int64_t n, int n_heads, int head_dim,
                 const float *inv_freq, int interleaved);

    // out (n, dim) = silu(gate) * up
    void (*swiglu)(float *out, const float *gate, const float *up, int64_t n, int64_t dim);

    e2h_attn_fn attention;

    // As matmul, with W (n_out rows) in the r16 row-interleaved layout (kernels/quant_r16.h)
    // for q4_0, q4_1 and q8_0, outputs as described by `out`. NULL where the implementation
    // has none (then the stored layout is used). Scratch: e2h_matmul_scratch_size.
    void (*matmul_packed)(e2h_pool *pool, const e2h_mm_out *out, const float *x, const void *wp,
                          int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
} e2h_ops;

int64_t e2h_matmul_scratch_size(int wtype, int64_t n_tok, int64_t n_in);

// Fills the table. which: "auto" (best the CPU supports), "ref", "avx2", "avx512".
// Returns NULL if `which` names an implementation this CPU cannot run.
const e2h_ops *e2h_ops_get(const char *which);
const e2h_ops *e2h_ops_ref(void);

#endif
