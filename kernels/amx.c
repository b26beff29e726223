// kernels/amx.c — can this process run AMX tile instructions? (see kernels/amx.h)
//
// Compiled without ISA flags: it runs on every CPU, and only reads CPUID, XCR0 (xgetbv, after
// checking OSXSAVE, as xgetbv itself faults without it) and asks Linux for the permission.
#include "amx.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

// arch_prctl codes and the tile data xstate component (linux/arch/x86/include/uapi/asm/prctl.h)
#define AMX_ARCH_GET_XCOMP_PERM 0x1022
#define AMX_ARCH_REQ_XCOMP_PERM 0x1023
#define AMX_XFEATURE_XTILECFG 17
#define AMX_XFEATURE_XTILEDATA 18

static void amx_why(char *why, size_t len, const char *fmt, const char *arg) {
    if (why && len) snprintf(why, len, fmt, arg);
}

void kern_amx_cpu_get(kern_amx_cpu *o) {
    memset(o, 0, sizeof *o);
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        o->cpuid_bf16 = (d >> 22) & 1;
        o->cpuid_tile = (d >> 24) & 1;
        o->cpuid_int8 = (d >> 25) & 1;
    }
    if (__get_cpuid(1, &a, &b, &c, &d)) o->osxsave = (c >> 27) & 1;
    if (o->osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0)); // XCR0
        o->xcr0_tilecfg = (lo >> AMX_XFEATURE_XTILECFG) & 1;
        o->xcr0_tiledata = (lo >> AMX_XFEATURE_XTILEDATA) & 1;
    }
#endif
}

int kern_amx_detect(char *why, size_t why_len) {
    amx_why(why, why_len, "%s", "");
#if !defined(__x86_64__)
    amx_why(why, why_len, "%s", "not an x86-64 build");
    return 0;
#else
    kern_amx_cpu c;
    kern_amx_cpu_get(&c);
    if (!c.cpuid_tile || !c.cpuid_int8 || !c.cpuid_bf16) {
        char miss[64] = "";
        if (!c.cpuid_tile) strcat(miss, " AMX-TILE");
        if (!c.cpuid_int8) strcat(miss, " AMX-INT8");
        if (!c.cpuid_bf16) strcat(miss, " AMX-BF16");
        amx_why(why, why_len, "no AMX on this CPU (CPUID leaf 7 lacks%s)", miss);
        return 0;
    }
    if (!c.osxsave) {
        amx_why(why, why_len, "%s", "the OS has not enabled XSAVE (CPUID.1:ECX.OSXSAVE = 0)");
        return 0;
    }
    if (!c.xcr0_tilecfg || !c.xcr0_tiledata) {
        amx_why(why, why_len, "%s", "the OS has not enabled the tile state (XCR0 bits 17-18 clear)");
        return 0;
    }
#if defined(__linux__)
    // Idempotent; process-wide (see kernels/amx.h). Fails with EINVAL on kernels without
    // dynamic xstate (< 5.16) and ENOSPC/EPERM if an altstack is too small or it is refused.
    if (syscall(SYS_arch_prctl, AMX_ARCH_REQ_XCOMP_PERM, AMX_XFEATURE_XTILEDATA) != 0) {
        amx_why(why, why_len, "arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) failed: %s",
                strerror(errno));
        return 0;
    }
    unsigned long long perm = 0;
    if (syscall(SYS_arch_prctl, AMX_ARCH_GET_XCOMP_PERM, &perm) != 0 ||
        !((perm >> AMX_XFEATURE_XTILEDATA) & 1)) {
        amx_why(why, why_len, "%s", "arch_prctl(ARCH_GET_XCOMP_PERM) does not grant XTILEDATA");
        return 0;
    }
    return 1;
#else
    amx_why(why, why_len, "%s", "not Linux (no arch_prctl tile permission request implemented)");
    return 0;
#endif
#endif
}
