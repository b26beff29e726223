// kernels/amx.h — Intel AMX (Advanced Matrix Extensions): run-time detection, and int8 tile
// matmuls over the r16 weights (kernels/quant_r16.h).
//
// Detection (kernels/amx.c) needs all of: CPUID.(EAX=7,ECX=0):EDX bits 24 (AMX-TILE), 25
// (AMX-INT8) and 22 (AMX-BF16); CPUID.1:ECX.OSXSAVE; XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA)
// set by the OS (xgetbv); and on Linux the permission for the dynamically enabled tile data
// state, arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA = 18) (Documentation/arch/x86/
// xstate.rst). That permission is process-wide (the kernel keeps it on the thread group leader)
// and covers threads that already exist, so pool workers need no request of their own; what
// IS per thread is the tile configuration (LDTILECFG), which every kernel call loads on every
// thread that runs tiles and releases (TILERELEASE) before returning.
//
// Kernels (kernels/x86/quant_amx.c): the SAME source compiles twice, through the thin tile
// layer of kernels/x86/amx_tile.h:
//   kern_amx_r16_matmul_ex      real tile instructions (only call where kern_amx_detect said 1)
//   kern_amx_r16_matmul_ex_emu  the scalar tile emulator of kernels/amx_emu.h (any AVX-512 CPU;
//                               slow; for tests and the "amx-emu" kernel set)
// Both need AVX-512 F/BW/VL/DQ (+VNNI): the f32 scaling and the batches of fewer than
// E2H_AMX_MIN_TOK tokens run the AVX-512 r16 code.
//
// Semantics: exactly kern_r16_matmul_ex_ref's (quant_r16.h). Per 32-element block the integer
// dot of 16 tokens × 16 rows is one TDPBSUD (A: the tokens' int8 activations, signed; B: the
// rows' unsigned weight levels, which IS the r16 layout for q8_0 and the r16 nibbles split
// low/high for q4_0/q4_1), exact in int32; the block's scales are then applied in f32 in the
// ref's order. So outputs are bit-identical to the ref and the AVX-512 r16 kernel, for any
// batch size (a row alone == in a batch) and thread count.
#ifndef E2H_KERNELS_AMX_H
#define E2H_KERNELS_AMX_H

#include <stddef.h>
#include <stdint.h>

#include "quant_r16.h"

// Batches with fewer tokens than this go to the AVX-512 r16 kernel (same results).
#define E2H_AMX_MIN_TOK 16

// 1 if this CPU, OS and process can execute AMX-TILE/INT8/BF16 instructions (requesting the
// Linux permission if needed, a process-wide side effect). 0 otherwise, with the first missing
// piece written to why (NUL-terminated; why may be NULL). Thread-safe.
int kern_amx_detect(char *why, size_t why_len);

// The CPUID/XCR0 facts behind kern_amx_detect, for reports (bench/amx_peak).
typedef struct {
    int cpuid_tile, cpuid_int8, cpuid_bf16; // CPUID.7.0:EDX bits 24, 25, 22
    int osxsave;                            // CPUID.1:ECX bit 27
    int xcr0_tilecfg, xcr0_tiledata;        // XCR0 bits 17, 18 (only read when osxsave)
} kern_amx_cpu;
void kern_amx_cpu_get(kern_amx_cpu *out);

// As kern_r16_matmul_ex_avx512 (same arguments, scratch and results), on tiles.
void kern_amx_r16_matmul_ex(e2h_pool *pool, const e2h_mm_out *out, const float *x, const void *wp,
                            int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
void kern_amx_r16_matmul_ex_emu(e2h_pool *pool, const e2h_mm_out *out, const float *x, const void *wp,
                                int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
// The same without the small-batch fallback (every batch on tiles): for tests.
void kern_amx_r16_matmul_ex_tiles(e2h_pool *pool, const e2h_mm_out *out, const float *x, const void *wp,
                                  int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
void kern_amx_r16_matmul_ex_tiles_emu(e2h_pool *pool, const e2h_mm_out *out, const float *x,
                                      const void *wp, int wtype, int64_t n_tok, int64_t n_in,
                                      int64_t n_out, void *scratch);

#endif
