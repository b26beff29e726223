"""libe2h as other programs embed it: only the public API exported, version, SONAME, and
`make install` + pkg-config building and running examples/greedy.c (shared and static) against
the installed tree, its greedy tokens checked against the Hugging Face fixture."""
import json
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
HEADER = os.path.join(ROOT, "include", "e2h.h")
SO = os.path.join(BUILD, "libe2h.so")
FIX = os.path.join(ROOT, "tests", "fixtures", "models", "llama2_f32")


def header_version():
    text = open(HEADER).read()
    return tuple(int(re.search(r"#define E2H_VERSION_%s (\d+)" % k, text).group(1))
                 for k in ("MAJOR", "MINOR", "PATCH"))


def header_functions():
    text = re.sub(r"//[^\n]*", "", open(HEADER).read())
    return set(re.findall(r"\b(e2h_\w+)\s*\(", text))


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.split()[1:2] != ["A"]}


@pytest.fixture(scope="module")
def so():
    if not os.path.exists(SO) or shutil.which("nm") is None:
        pytest.skip("build/libe2h.so or nm missing")
    return SO


def test_only_public_api_exported(so):
    syms = exported(so)
    public = header_functions()
    assert syms, "no symbols exported"
    assert syms <= public, "exported but not in e2h.h: %s" % sorted(syms - public)[:20]


def test_soname_and_links(so):
    major, minor, patch = header_version()
    dyn = subprocess.run(["readelf", "-d", so], capture_output=True, text=True).stdout
    assert "[libe2h.so.%d]" % major in dyn
    real = os.path.realpath(so)
    assert os.path.basename(real) == "libe2h.so.%d.%d.%d" % (major, minor, patch)
    assert os.path.realpath(os.path.join(BUILD, "libe2h.so.%d" % major)) == real


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if shutil.which("pkg-config") is None or shutil.which("make") is None:
        pytest.skip("pkg-config or make missing")
    prefix = str(tmp_path_factory.mktemp("prefix"))
    p = subprocess.run(["make", "-s", "install", "PREFIX=" + prefix,
                        "BUILD=" + os.path.relpath(BUILD, ROOT)],
                       cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stdout + p.stderr
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    env.pop("LD_LIBRARY_PATH", None)
    return prefix, env


def pkg(env, *args):
    return subprocess.run(["pkg-config", *args, "e2h"], env=env, capture_output=True, text=True,
                          check=True).stdout.split()


def build_example(prefix, env, static):
    out = os.path.join(prefix, "greedy_static" if static else "greedy_shared")
    src = os.path.join(ROOT, "examples", "greedy.c")
    cc = os.environ.get("CC", "cc")
    if static:
        libdir = pkg(env, "--variable=libdir")[0]
        libs = [os.path.join(libdir, "libe2h.a") if a == "-le2h" else a
                for a in pkg(env, "--static", "--libs")]
    else:
        libs = pkg(env, "--libs")
    cmd = [cc, "-std=c11", "-Wall", "-Werror", src, "-o", out, *pkg(env, "--cflags"), *libs]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert p.returncode == 0, " ".join(cmd) + "\n" + p.stderr
    return out


def test_installed_tree(installed):
    prefix, env = installed
    major, minor, patch = header_version()
    for rel in ("include/e2h.h", "lib/libe2h.a", "lib/libe2h.so", "lib/libe2h.so.%d" % major,
                "lib/libe2h.so.%d.%d.%d" % (major, minor, patch), "bin/e2h",
                "lib/pkgconfig/e2h.pc"):
        assert os.path.exists(os.path.join(prefix, rel)), rel
    assert pkg(env, "--modversion") == ["%d.%d.%d" % (major, minor, patch)]
    assert "-lopenblas" in pkg(env, "--static", "--libs")  # Libs.private
    v = subprocess.run([os.path.join(prefix, "bin", "e2h"), "--version"], env=env,
                       capture_output=True, text=True)
    assert v.returncode == 0 and "%d.%d.%d" % (major, minor, patch) in v.stdout


@pytest.mark.parametrize("static", [False, True], ids=["shared", "static"])
def test_example_against_installed_tree(installed, static):
    prefix, env = installed
    exe = build_example(prefix, env, static)
    needed = subprocess.run(["readelf", "-d", exe], capture_output=True, text=True).stdout
    assert ("libe2h.so" in needed) == (not static), needed
    ref = json.load(open(os.path.join(FIX, "greedy.json")))
    n = 16
    p = subprocess.run([exe, FIX, "--ids", ",".join(map(str, ref["prompt"])), "-n", str(n),
                        "--no-eos"], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    major, minor, patch = header_version()
    assert p.stdout.startswith("e2h %d.%d.%d" % (major, minor, patch)), p.stdout
    ids = [int(x) for x in re.search(r"^ids:(.*)$", p.stdout, re.M).group(1).split()]
    assert ids == ref["continuation"][:n]  # HF transformers' greedy tokens
