// kernels/x86/quant_amx_emu_avx512.c — kernels/x86/quant_amx.c built against the scalar tile
// emulator (kernels/amx_emu.h): the same kernel source, every tile instruction a call into
// kernels/ref/amx_emu.c. Needs AVX-512 (its f32 epilogue), not AMX. Functions end in _emu.
#define E2H_AMX_EMU 1
#include "quant_amx.c"
