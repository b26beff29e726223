"""tools/check_layers.sh: the tree's includes point one way (README "Architecture"), and the
check fails on a planted violation."""
import os
import shutil
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "tools", "check_layers.sh")


def run(root):
    return subprocess.run(["bash", SCRIPT, root], capture_output=True, text=True, timeout=300)


def test_tree_is_layered():
    p = run(ROOT)
    assert p.returncode == 0, p.stdout + p.stderr


def test_violations_are_caught(tmp_path):
    for d in ("formats", "engine", "kernels/ref", "kernels/x86", "include"):
        os.makedirs(tmp_path / d)
    shutil.copy(os.path.join(ROOT, "include", "e2h.h"), tmp_path / "include" / "e2h.h")
    (tmp_path / "engine" / "util.h").write_text("int f(void);\n")
    (tmp_path / "formats" / "io.c").write_text('#include "e2h.h"\n#include "../engine/util.h"\n')
    (tmp_path / "kernels" / "ops.h").write_text("int g(void);\n")
    (tmp_path / "kernels" / "x86" / "a.c").write_text('#include "../ops.h"\n')
    p = run(str(tmp_path))
    assert p.returncode == 1
    assert "formats/io.c (formats) includes engine/util.h (engine)" in p.stdout
    assert "kernels/x86/a.c: kernel files include types.h, not ops.h" in p.stdout
    assert "include/e2h.h" not in p.stdout  # every layer may include the public header
