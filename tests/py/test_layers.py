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


def plant(root, files):
    """A tree at root with the public header and files {path: text}."""
    for path, text in {"include/e2h.h": None, **files}.items():
        os.makedirs(os.path.dirname(root / path), exist_ok=True)
        if text is None:
            shutil.copy(os.path.join(ROOT, path), root / path)
        else:
            (root / path).write_text(text)


def test_violations_are_caught(tmp_path):
    plant(tmp_path, {
        "engine/util.h": "int f(void);\n",
        "formats/io.c": '#include "e2h.h"\n#include "../engine/util.h"\n',
        "kernels/ops.h": "int g(void);\n",
        "kernels/x86/a.c": '#include "../ops.h"\n',
    })
    p = run(str(tmp_path))
    assert p.returncode == 1
    assert "formats/io.c (formats) includes engine/util.h (engine)" in p.stdout
    assert "kernels/x86/a.c: kernel files include types.h, not ops.h" in p.stdout
    assert "include/e2h.h" not in p.stdout  # every layer may include the public header


def test_engine_internal_stays_in_the_core(tmp_path):
    plant(tmp_path, {
        "engine/engine_internal.h": "struct e2h_seq { int n; };\n",
        "engine/sched.h": "int h(void);\n",
        "engine/engine.c": '#include "engine_internal.h"\n',
        "engine/prm/mirror.c": '#include "../engine_internal.h"\n',
        "engine/search/search.c": '#include "../sched.h"\n#include "../engine_internal.h"\n',
        "engine/search/beam.c": '#include "../sched.h"\n',
        "engine/cli/main.c": '#include "../engine_internal.h"\n',
    })
    p = run(str(tmp_path))
    assert p.returncode == 1
    for f in ("engine/prm/mirror.c", "engine/search/search.c", "engine/cli/main.c"):
        assert f + ": engine modules use the public API" in p.stdout, p.stdout
    assert "engine/engine.c" not in p.stdout  # the core itself may
    assert "beam.c" not in p.stdout  # the narrow headers are allowed
