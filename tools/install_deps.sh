#!/usr/bin/env bash
# tools/install_deps.sh — installs what building and testing e2h needs on a fresh Debian/Ubuntu
# machine (run as root, or with sudo available). Does nothing when everything is present.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
need_apt=0
for h in /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h /usr/include/xxhash.h \
         /usr/include/cjson/cJSON.h /usr/include/pcre2.h /usr/include/microhttpd.h; do
    [ -e "$h" ] || need_apt=1
done
command -v cc >/dev/null && command -v make >/dev/null && command -v python3 >/dev/null \
    && command -v unzip >/dev/null && command -v clang >/dev/null || need_apt=1
# clang + its runtime libraries: libFuzzer and float-cast-overflow for `make fuzz` / `make asan`
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need_apt=1
if [ $need_apt = 1 ]; then
    # libmicrohttpd: the HTTP server of `e2h serve` (packaged in Debian, C, mature)
    echo "deps: apt-get install build-essential libopenblas-dev libxxhash-dev libcjson-dev libpcre2-dev libmicrohttpd-dev clang"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends build-essential libopenblas-dev \
        libxxhash-dev libcjson-dev libpcre2-dev libmicrohttpd-dev python3 python3-pip unzip clang >/dev/null
    # Debian 12 ships libFuzzer in libclang-rt-<version>-dev, not in clang itself
    v=$(clang --version 2>/dev/null | grep -oE 'version [0-9]+' | grep -oE '[0-9]+' | head -n 1)
    [ -n "$v" ] && $SUDO apt-get install -y -qq --no-install-recommends "libclang-rt-$v-dev" >/dev/null 2>&1 || true
fi
# Python is for the oracle tests and tools only; torch is not needed (fixtures are committed).
# tokenizers: the reference tokenizer of tests/py/test_prm_fixtures.py and test_tokenizer_strip.py
# (without it both files skip, 29 tests, as they did in a clean CI until session 13).
if ! python3 -c "import numpy, safetensors, gguf, pytest, tokenizers" 2>/dev/null; then
    echo "deps: pip install numpy safetensors gguf pytest tokenizers (pinned)"
    python3 -m pip install -q --disable-pip-version-check numpy==2.2.6 safetensors==0.5.3 \
        gguf==0.17.1 pytest==8.3.5 tokenizers==0.21.1 2>&1 | grep -v "as the 'root' user" || true
fi
# The answer checker's independent oracle (tools/eval, tests/py/test_answer_agreement.py) and the
# report plot (tools/plot_report.py), pinned as in tools/requirements.txt.
if ! python3 -c "import math_verify, matplotlib" 2>/dev/null; then
    echo "deps: pip install math-verify matplotlib (pinned)"
    python3 -m pip install -q --disable-pip-version-check math-verify==0.9.0 \
        latex2sympy2_extended==1.11.0 antlr4-python3-runtime==4.13.2 matplotlib==3.10.3 2>&1 \
        | grep -v "as the 'root' user" || true
fi
# Ray runs tools/ray_search.py's shards; optional: its test skips with a message without it.
if ! python3 -c "import ray" 2>/dev/null; then
    echo "deps: pip install ray==2.40.0 (optional; for tools/ray_search.py)"
    python3 -m pip install -q --disable-pip-version-check ray==2.40.0 >/dev/null 2>&1 \
        || echo "deps: ray not installed; tests/py/test_ray_search.py will skip"
fi
# The official OpenAI client: tests/py/test_serve.py and examples/openai_client.py talk to
# `e2h serve` through it (pinned as in tools/requirements.txt).
if ! python3 -c "import openai" 2>/dev/null; then
    echo "deps: pip install openai==3.51.0 (pinned)"
    python3 -m pip install -q --disable-pip-version-check openai==3.51.0 2>&1 \
        | grep -v "as the 'root' user" || true
fi
