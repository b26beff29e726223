// kernels/ref/amx_emu.c — scalar AMX tile emulator (see kernels/amx_emu.h for the sources and
// the fault rules). Each function follows the SDM pseudocode of its instruction; the helpers
// write_row_and_zero / zero_upper_rows are the SDM's.
#include "kernels/amx_emu.h"

#include <math.h>
#include <string.h>

// palette 1 (CPUID leaf 0x1D/0x1E): 8 tiles, 16 rows, 64 bytes per row; TMUL: maxk 16 rows of
// B, maxn 16 dwords, maxm 16 rows.
#define EMU_MAX_PALETTE 1
#define EMU_TMUL_MAXK 16
#define EMU_TMUL_MAXN 16
#define EMU_TMUL_MAXM 16

static int emu_fault(amx_emu *s, const char *why) {
    if (!s->fault) s->fault = why;
    return 1;
}

void amx_emu_init(amx_emu *s) { memset(s, 0, sizeof *s); }

void amx_emu_tilerelease(amx_emu *s) {
    const char *f = s->fault;
    amx_emu_init(s); // TILES_CONFIGURED := 0, config and data zeroed
    s->fault = f;
}

void amx_emu_ldtilecfg(amx_emu *s, const amx_tilecfg *cfg) {
    if (s->fault) return;
    if (cfg->palette == 0) { // palette 0: the init state
        amx_emu_tilerelease(s);
        return;
    }
    if (cfg->palette > EMU_MAX_PALETTE) { emu_fault(s, "#GP LDTILECFG: palette > 1"); return; }
    for (int i = 0; i < 14; i++)
        if (cfg->reserved0[i]) { emu_fault(s, "#GP LDTILECFG: reserved bytes 2-15 not zero"); return; }
    for (int i = AMX_EMU_TILES; i < 16; i++)
        if (cfg->colsb[i] || cfg->rows[i]) { emu_fault(s, "#GP LDTILECFG: reserved bytes 32-47/56-63 not zero"); return; }
    if (cfg->start_row) { emu_fault(s, "#GP LDTILECFG: start_row not 0 (emulator: stricter)"); return; }
    for (int i = 0; i < AMX_EMU_TILES; i++) {
        if (cfg->rows[i] > AMX_EMU_ROWS) { emu_fault(s, "#GP LDTILECFG: rows > 16"); return; }
        if (cfg->colsb[i] > AMX_EMU_COLSB) { emu_fault(s, "#GP LDTILECFG: colsb > 64"); return; }
        if (!cfg->rows[i] != !cfg->colsb[i]) { emu_fault(s, "#GP LDTILECFG: rows/colsb one zero (emulator: stricter)"); return; }
    }
    s->palette = cfg->palette;
    for (int i = 0; i < AMX_EMU_TILES; i++) {
        s->rows[i] = cfg->rows[i];
        s->colsb[i] = cfg->colsb[i];
    }
    memset(s->t, 0, sizeof s->t); // LDTILECFG zeroes all tile data
    s->configured = 1;
}

// #UD unless tiles are configured and t names a configured tile.
static int emu_bad_tile(amx_emu *s, int t) {
    if (s->fault) return 1;
    if (!s->configured) return emu_fault(s, "#UD tile instruction with TILES_CONFIGURED = 0");
    if (t < 0 || t >= AMX_EMU_TILES) return emu_fault(s, "#UD tile index > 7");
    if (!s->rows[t] || !s->colsb[t]) return emu_fault(s, "#UD tile not configured (rows or colsb 0)");
    return 0;
}

static void write_row_and_zero(amx_emu *s, int t, int row, const uint8_t *data, int nbytes) {
    memcpy(s->t[t][row], data, (size_t)nbytes);
    memset(s->t[t][row] + nbytes, 0, (size_t)(AMX_EMU_COLSB - nbytes));
}

static void zero_upper_rows(amx_emu *s, int t, int from) {
    for (int r = from; r < AMX_EMU_ROWS; r++) memset(s->t[t][r], 0, AMX_EMU_COLSB);
}

void amx_emu_tilezero(amx_emu *s, int t) {
    if (emu_bad_tile(s, t)) return;
    memset(s->t[t], 0, sizeof s->t[t]);
}

void amx_emu_tileloadd(amx_emu *s, int t, const void *base, int64_t stride) {
    if (emu_bad_tile(s, t)) return;
    const uint8_t *p = base;
    for (int r = 0; r < s->rows[t]; r++) write_row_and_zero(s, t, r, p + r * stride, s->colsb[t]);
    zero_upper_rows(s, t, s->rows[t]);
}

void amx_emu_tilestored(amx_emu *s, int t, void *base, int64_t stride) {
    if (emu_bad_tile(s, t)) return;
    uint8_t *p = base;
    for (int r = 0; r < s->rows[t]; r++) memcpy(p + r * stride, s->t[t][r], s->colsb[t]);
}

// The AMX-E4 shape checks of the TMUL instructions.
static int emu_bad_dp(amx_emu *s, int d, int a, int b) {
    if (emu_bad_tile(s, d) || emu_bad_tile(s, a) || emu_bad_tile(s, b)) return 1;
    if (d == a || d == b || a == b) return emu_fault(s, "#UD TDP*: tile operands not all different");
    if (s->colsb[d] % 4 || s->colsb[a] % 4 || s->colsb[b] % 4) return emu_fault(s, "#UD TDP*: colsb % 4 != 0");
    if (s->colsb[d] > 4 * EMU_TMUL_MAXN) return emu_fault(s, "#UD TDP*: dst.colsb > 4 * tmul_maxn");
    if (s->colsb[b] != s->colsb[d]) return emu_fault(s, "#UD TDP*: src2.colsb != dst.colsb");
    if (s->rows[a] != s->rows[d]) return emu_fault(s, "#UD TDP*: src1.rows != dst.rows");
    if (s->colsb[a] / 4 != s->rows[b]) return emu_fault(s, "#UD TDP*: src1.colsb / 4 != src2.rows");
    if (s->colsb[a] > 4 * EMU_TMUL_MAXK) return emu_fault(s, "#UD TDP*: src1.colsb > 4 * tmul_maxk");
    if (s->rows[b] > EMU_TMUL_MAXK) return emu_fault(s, "#UD TDP*: src2.rows > tmul_maxk");
    if (s->rows[d] > EMU_TMUL_MAXM) return emu_fault(s, "#UD TDP*: dst.rows > tmul_maxm");
    return 0;
}

static inline uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

// DPBD(c, x, y): c + the 4 byte products, in uint32 (the SDM's 32-bit wrap-around, no UB).
static inline uint32_t dpbd(uint32_t c, const uint8_t *x, const uint8_t *y, int xs, int ys) {
    for (int i = 0; i < 4; i++) {
        const int32_t xv = xs ? (int8_t)x[i] : x[i], yv = ys ? (int8_t)y[i] : y[i];
        c += (uint32_t)(xv * yv); // |product| <= 2^16: exact in int32
    }
    return c;
}

static void emu_dp8(amx_emu *s, int d, int a, int b, int as, int bs) {
    if (emu_bad_dp(s, d, a, b)) return;
    for (int m = 0; m < s->rows[d]; m++) {
        uint8_t tmp[AMX_EMU_COLSB];
        memcpy(tmp, s->t[d][m], AMX_EMU_COLSB);
        for (int k = 0; k < s->colsb[a] / 4; k++)
            for (int n = 0; n < s->colsb[d] / 4; n++) {
                const uint32_t c = dpbd(rd32(tmp + 4 * n), s->t[a][m] + 4 * k, s->t[b][k] + 4 * n, as, bs);
                memcpy(tmp + 4 * n, &c, 4);
            }
        write_row_and_zero(s, d, m, tmp, s->colsb[d]);
    }
    zero_upper_rows(s, d, s->rows[d]);
}

void amx_emu_tdpbssd(amx_emu *s, int d, int a, int b) { emu_dp8(s, d, a, b, 1, 1); }
void amx_emu_tdpbsud(amx_emu *s, int d, int a, int b) { emu_dp8(s, d, a, b, 1, 0); }
void amx_emu_tdpbusd(amx_emu *s, int d, int a, int b) { emu_dp8(s, d, a, b, 0, 1); }
void amx_emu_tdpbuud(amx_emu *s, int d, int a, int b) { emu_dp8(s, d, a, b, 0, 0); }

// bf16 bits -> f32 with DAZ (a denormal reads as a signed zero).
static float emu_bf16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    uint32_t u = (uint32_t)h << 16;
    if (!(u & 0x7f800000u)) u &= 0x80000000u;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float emu_ftz(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if (!(u & 0x7f800000u)) u &= 0x80000000u;
    memcpy(&f, &u, 4);
    return f;
}

void amx_emu_tdpbf16ps(amx_emu *s, int d, int a, int b) {
    if (emu_bad_dp(s, d, a, b)) return;
    for (int m = 0; m < s->rows[d]; m++) {
        float acc[AMX_EMU_COLSB / 4];
        memcpy(acc, s->t[d][m], sizeof acc);
        for (int n = 0; n < s->colsb[d] / 4; n++) acc[n] = emu_ftz(acc[n]); // DAZ on the accumulator
        for (int k = 0; k < s->colsb[a] / 4; k++)
            for (int n = 0; n < s->colsb[d] / 4; n++)
                for (int j = 0; j < 2; j++) { // a bf16 product is exact in f32: one rounding, the add
                    const float x = emu_bf16(s->t[a][m] + 4 * k + 2 * j), y = emu_bf16(s->t[b][k] + 4 * n + 2 * j);
                    acc[n] = emu_ftz(fmaf(x, y, acc[n]));
                }
        write_row_and_zero(s, d, m, (const uint8_t *)acc, s->colsb[d]);
    }
    zero_upper_rows(s, d, s->rows[d]);
}
