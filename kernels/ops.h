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
#include "quant_r16.h" // e2h_r16_ex_fn
#include "types.h" // element types, blocks, traits, conversions, kernel argument structs

struct e2h_attn_phase; // kernels/float_kernels.h

// ---- the ops table ----
// Shapes are in comments as (rows, cols), row-major.
typedef struct e2h_ops {
    const char *name; // "ref", "avx2", "avx512", "avx512bf16", "amx", "amx-emu"

    // Dequantize n elements (n a multiple of the block size) of `type` to f32.
    void (*dequantize_row)(int type, const void *src, float *dst, int64_t n);
    // Quantize n f32 values to `type` (for quantize-on-load). Same rounding as GGUF's
    // reference quantizers.
    void (*quantize_row)(int type, const float *src, void *dst, int64_t n);

    // y (n_tok, ldy) cols [0, n_out) = x (n_tok, n_in) · W(n_out, n_in)^T.
    // W rows are stored in `wtype` with row stride kern_type_row_size(wtype, n_in).
    // Multithreaded over output rows through `pool`. `scratch` must hold
    // ops_matmul_scratch_size(wtype, n_tok, n_in) bytes (activations quantized once).
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
    // The phase function `attention` runs (kernels/float_kernels.h): for benchmarks and tests
    // that call kern_attention_run themselves (e.g. with cascades off).
    void (*attention_phase)(const struct e2h_attn_phase *ph);

    // As matmul, with W (n_out rows) in the r16 row-interleaved layout (kernels/quant_r16.h)
    // for q4_0, q4_1 and q8_0, outputs as described by `out`. NULL where the implementation
    // has none (then the stored layout is used). Scratch: ops_matmul_scratch_size.
    void (*matmul_packed)(e2h_pool *pool, const e2h_mm_out *out, const float *x, const void *wp,
                          int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
} e2h_ops;

int64_t ops_matmul_scratch_size(int wtype, int64_t n_tok, int64_t n_in);

// Fills the table. which: "auto" (best the CPU supports), "ref", "avx2", "avx512",
// "avx512bf16" (avx512 + vdpbf16ps for bf16 weights: activations rounded to bf16, as PyTorch
// does on such CPUs; the other tables compute bf16 weights in f32).
// "amx" (avx512bf16 + the AMX int8 tile kernels of kernels/amx.h for r16 matmuls of 16+
// tokens; bit-identical results; auto's choice where kern_amx_detect and a self-test pass),
// "amx-emu" (the same kernels on the scalar tile emulator: slow, for tests; never auto).
// Returns NULL if `which` names an implementation this CPU cannot run.
const e2h_ops *ops_get(const char *which);
const e2h_ops *ops_ref(void);
// Why `which` cannot run here, into why (len bytes) and returned; "" when it can. For "auto"
// (or NULL): why auto does not choose "amx" ("" when it does).
const char *ops_why_not(const char *which, char *why, size_t len);
// Compares a tile kernel with the AVX-512 r16 kernel on a fixed small case: 1 if bit-identical.
// AVX-512 CPUs only.
int ops_amx_selftest(e2h_r16_ex_fn f);

#endif
