"""The two builds of kernels/x86/quant_amx.c (kernels/amx.h): the real object holds the AMX tile
instructions the kernel is written with, the emulated one none (every tile operation a call into
the emulator). Guards the Makefile's per-file flags: a real build silently compiled as the
emulator (or the reverse) would pass test_kernels_amx on a CPU without AMX."""
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD", "build")
OBJ = os.path.join(ROOT if not os.path.isabs(BUILD) else "", BUILD, "obj", "kernels", "x86")


def mnemonics(obj):
    path = os.path.join(OBJ, obj)
    if not os.path.exists(path):
        pytest.skip(f"{path} not built (make)")
    if not shutil.which("objdump"):
        pytest.skip("objdump absent")
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True, text=True,
                         check=True).stdout
    return set(re.findall(r"^\s+[0-9a-f]+:\s+([a-z0-9]+)", out, re.M))


def test_real_object_has_tiles_emulated_has_none():
    amx = {"ldtilecfg", "tileloadd", "tdpbsud", "tilestored", "tilezero", "tilerelease"}
    real = mnemonics("quant_amx.o")
    assert amx <= real, amx - real
    emu = mnemonics("quant_amx_emu_avx512.o")
    assert not (emu & (amx | {"tdpbssd", "tdpbusd", "tdpbuud", "tdpbf16ps", "tileloaddt1"})), emu & amx
    assert "vcvtph2ps" in emu and "vcvtph2ps" in real  # the same f32 epilogue in both
