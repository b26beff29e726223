// kernels/amx_emu.h — a scalar emulator of the AMX tile instructions e2h uses, so the tile
// kernels (kernels/x86/quant_amx.c, built a second time against this) are tested on CPUs
// without AMX. Semantics from the Intel SDM (Vol. 2, instruction set reference: LDTILECFG,
// TILELOADD, TILESTORED, TILEZERO, TILERELEASE, TDPBSSD/TDPBSUD/TDPBUSD/TDPBUUD, TDPBF16PS;
// Vol. 1 ch. 18 "Programming with Intel AMX" for palette 1: 8 tiles of up to 16 rows × 64
// bytes; the TMUL limits tmul_maxk = 16, tmul_maxn = 16 dwords, tmul_maxm = 16).
//
// Faults: where the SDM raises #GP (LDTILECFG of a bad configuration) or #UD (an instruction on
// an unconfigured tile, mismatched shapes, TILES_CONFIGURED = 0), the emulator records the first
// such fault in `fault` and ignores that instruction and all later ones (a kernel that faults
// here would crash on hardware). Where unsure whether hardware faults, the emulator faults
// (stricter): start_row must be 0; a tile has rows and colsb both zero or both non-zero.
//
// State is per emulated thread (like the real tile state): each pool body owns one amx_emu.
#ifndef E2H_KERNELS_AMX_EMU_H
#define E2H_KERNELS_AMX_EMU_H

#include <stdint.h>

#define AMX_EMU_TILES 8
#define AMX_EMU_ROWS 16  // palette 1: max_rows
#define AMX_EMU_COLSB 64 // palette 1: bytes_per_row

typedef struct {
    int configured;                 // TILES_CONFIGURED
    uint8_t palette;
    uint8_t rows[AMX_EMU_TILES];
    uint16_t colsb[AMX_EMU_TILES];
    uint8_t t[AMX_EMU_TILES][AMX_EMU_ROWS][AMX_EMU_COLSB];
    const char *fault;              // first #GP/#UD condition hit (static string), or NULL
} amx_emu;

// The 64-byte LDTILECFG memory operand (SDM Table "Memory Area Layout" of LDTILECFG).
typedef struct __attribute__((aligned(64))) {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved0[14];
    uint16_t colsb[16]; // tiles 0..7; 8..15 reserved (must be zero)
    uint8_t rows[16];   // tiles 0..7; 8..15 reserved (must be zero)
} amx_tilecfg;
_Static_assert(sizeof(amx_tilecfg) == 64, "LDTILECFG operand is 64 bytes");

void amx_emu_init(amx_emu *s); // the init state (as after TILERELEASE), no fault
void amx_emu_ldtilecfg(amx_emu *s, const amx_tilecfg *cfg);
void amx_emu_tilerelease(amx_emu *s);
void amx_emu_tilezero(amx_emu *s, int t);
void amx_emu_tileloadd(amx_emu *s, int t, const void *base, int64_t stride);
void amx_emu_tilestored(amx_emu *s, int t, void *base, int64_t stride);
// dst += A · B in int32 (wrap-around), A's and B's bytes signed (s) or unsigned (u):
// bssd: A s, B s; bsud: A s, B u; busd: A u, B s; buud: A u, B u.
void amx_emu_tdpbssd(amx_emu *s, int dst, int a, int b);
void amx_emu_tdpbsud(amx_emu *s, int dst, int a, int b);
void amx_emu_tdpbusd(amx_emu *s, int dst, int a, int b);
void amx_emu_tdpbuud(amx_emu *s, int dst, int a, int b);
// dst (fp32) += A (bf16 pairs) · B (bf16 pairs), per the SDM pseudocode: for each k, the even
// then the odd product added to the accumulator, each add rounded to nearest even; bf16 inputs
// that are denormal read as zero (DAZ), denormal sums are flushed to zero (FTZ).
void amx_emu_tdpbf16ps(amx_emu *s, int dst, int a, int b);

#endif
