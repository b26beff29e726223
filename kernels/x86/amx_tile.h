// kernels/x86/amx_tile.h — the thin tile layer the AMX kernels are written against, so that
// one kernel source compiles two ways:
//   default          real instructions (_tile_* intrinsics; the file needs -mamx-tile
//                    -mamx-int8 -mamx-bf16, see the Makefile's %_amx.c rule)
//   E2H_AMX_EMU = 1  the scalar emulator of kernels/amx_emu.h (any CPU; tests)
// Every operation takes the tile state T (an amx_emu * when emulated; unused otherwise) and
// tile numbers that are integer literals or #defines of them (the intrinsics paste them into
// the instruction text). AMX_FN(name) names a function per build (name / name_emu).
#ifndef E2H_KERNELS_X86_AMX_TILE_H
#define E2H_KERNELS_X86_AMX_TILE_H

#include "kernels/amx_emu.h" // amx_tilecfg (the LDTILECFG operand) in both builds

#if E2H_AMX_EMU
typedef amx_emu amx_tiles;
#define AMX_FN(name) name##_emu
#define AMX_TILES_INIT(T) amx_emu_init(T)
#define TILE_CONFIG(T, cfg) amx_emu_ldtilecfg((T), (cfg))
#define TILE_RELEASE(T) amx_emu_tilerelease(T)
#define TILE_ZERO(T, t) amx_emu_tilezero((T), (t))
#define TILE_LOAD(T, t, base, stride) amx_emu_tileloadd((T), (t), (base), (stride))
#define TILE_STORE(T, t, base, stride) amx_emu_tilestored((T), (t), (base), (stride))
#define TILE_DPBSUD(T, c, a, b) amx_emu_tdpbsud((T), (c), (a), (b))
#define TILE_DPBSSD(T, c, a, b) amx_emu_tdpbssd((T), (c), (a), (b))
#define TILE_DPBF16PS(T, c, a, b) amx_emu_tdpbf16ps((T), (c), (a), (b))
// A fault the hardware would raise (#GP/#UD) is a bug in the kernel: stop loudly.
#define AMX_TILES_CHECK(T) amx_emu_check(T)
#include <stdio.h>
#include <stdlib.h>
static inline void amx_emu_check(const amx_emu *T) {
    if (T->fault) {
        fprintf(stderr, "e2h: AMX emulator: %s\n", T->fault);
        abort();
    }
}
#else
#include <immintrin.h>
typedef struct { char unused; } amx_tiles;
#define AMX_FN(name) name
#define AMX_TILES_INIT(T) ((void)(T))
// gcc's tile intrinsics are asm statements that do not tell the compiler which memory they
// read (ldtilecfg declares 8 bytes, tileloadd none): a compiler barrier first, so that the
// stores that filled the config / the buffer are not sunk past them or dropped.
#define AMX_BARRIER() __asm__ volatile("" ::: "memory")
// (Statements, not expressions: gcc's intrinsics are asm statements.)
#define TILE_CONFIG(T, cfg) do { (void)(T); AMX_BARRIER(); _tile_loadconfig(cfg); } while (0)
#define TILE_RELEASE(T) do { (void)(T); _tile_release(); } while (0)
#define TILE_ZERO(T, t) do { (void)(T); _tile_zero(t); } while (0)
#define TILE_LOAD(T, t, base, stride) do { (void)(T); AMX_BARRIER(); _tile_loadd(t, base, stride); } while (0)
#define TILE_STORE(T, t, base, stride) do { (void)(T); _tile_stored(t, base, stride); AMX_BARRIER(); } while (0)
#define TILE_DPBSUD(T, c, a, b) do { (void)(T); _tile_dpbsud(c, a, b); } while (0)
#define TILE_DPBSSD(T, c, a, b) do { (void)(T); _tile_dpbssd(c, a, b); } while (0)
#define TILE_DPBF16PS(T, c, a, b) do { (void)(T); _tile_dpbf16ps(c, a, b); } while (0)
#define AMX_TILES_CHECK(T) ((void)(T))
#endif

#endif
