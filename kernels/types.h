// kernels/types.h — what every kernel speaks: element types (GGML numbering), the quant block
// layouts, type traits, exact f16/bf16 conversions, and the argument structs of the attention
// and fused-matmul kernels. The bottom of kernels/: kernel files include this (and pool.h),
// never ops.h, which is the dispatch table above them.
#ifndef E2H_KERNELS_TYPES_H
#define E2H_KERNELS_TYPES_H

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

const e2h_type_traits *kern_type_traits_get(int type); // NULL for unknown ids
// Bytes of a row of n elements; 0 if n is not a multiple of the block size or type unknown.
size_t kern_type_row_size(int type, int64_t n);

// ---- scalar conversions (exact, round-to-nearest-even) ----
float kern_f16_to_f32(e2h_f16 h);
e2h_f16 kern_f32_to_f16(float f);
float kern_bf16_to_f32(e2h_bf16 h);
e2h_bf16 kern_f32_to_bf16(float f);

// ---- attention over a paged KV cache ----
// K/V storage of one layer: blocks of `block_size` token slots, element type f32 or f16
// (kv_type). V: [block][kv_head][slot][head_dim]. K: [block][kv_head] pieces of block_size *
// head_dim elements, each made of chunks of E2H_KV_KCHUNK slots stored transposed
// (kern_kv_k_index): the keys of a chunk are (head_dim, width) rows of consecutive slots,
// which is the operand the attention kernels multiply with (slots as vector lanes) without
// a transpose per chunk and query.
typedef struct {
    const void *k;       // this layer's K base
    const void *v;       // this layer's V base
    int kv_type;         // E2H_TYPE_F32 or E2H_TYPE_F16
    int block_size;      // token slots per block
    int n_kv_heads;
    int head_dim;
} e2h_kv_layer_view;

#define E2H_KV_KCHUNK 16
// Width of the chunk holding `slot` in a K piece of `slots` slots (the stride between the
// chunk's rows d and d + 1).
static inline int kern_kv_k_width(int slots, int slot) {
    const int c0 = slot / E2H_KV_KCHUNK * E2H_KV_KCHUNK;
    return slots - c0 < E2H_KV_KCHUNK ? slots - c0 : E2H_KV_KCHUNK;
}
// Element (slot, d) of a K piece that has `slots` slots from its first one (block_size for a
// whole (block, kv_head) piece; a piece may also start at any chunk boundary): chunk c0 =
// slot rounded down to E2H_KV_KCHUNK starts at c0 * head_dim and holds row d (width w =
// min(E2H_KV_KCHUNK, slots - c0) slots) at d * w.
static inline int64_t kern_kv_k_index(int slots, int head_dim, int slot, int d) {
    const int c0 = slot / E2H_KV_KCHUNK * E2H_KV_KCHUNK;
    return (int64_t)c0 * head_dim + (int64_t)d * kern_kv_k_width(slots, slot) + (slot - c0);
}

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
// through `pool`; scratch must hold kern_attn_scratch_size(...) bytes.
typedef void (*e2h_attn_fn)(e2h_pool *pool, float *out, const float *q,
                            const e2h_attn_seq *seqs, int n_seqs, int n_heads,
                            const e2h_kv_layer_view *kv, float scale, void *scratch);
int64_t kern_attn_scratch_size(int n_threads, int n_heads, int head_dim, int max_ctx);

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

// 1 for f32, f16, bf16 (the float kernels' types).
int kern_is_float_type(int type);

#endif
