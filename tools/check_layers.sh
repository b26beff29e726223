#!/usr/bin/env bash
# tools/check_layers.sh — fails when a file includes from a layer above its own.
#
# Layers, top to bottom (README "Architecture"):
#   tools/ bench/ tests/ python/ examples/   (clients; may include anything below)
#   engine/cli/                               (a client of include/e2h.h only)
#   include/e2h.h                             (the public API; every layer may include it for
#                                              e2h_status and the public types)
#   engine/ (search/, prm/, sched, forward, kv, sample, model loading)
#   kernels/   tokenizer/                     (peers: neither includes the other)
#   formats/                                  (GGUF, safetensors, config.json readers)
# Inside kernels/: kernel files include types.h/pool.h, never ops.h (the dispatch table above
# them); kernels/ref/ (the oracle) never includes kernels/x86/ nor names a SIMD function.
# Inside tokenizer/: utf8.c and unicode_nfc.c (the bottom) never include tokenizer.h.
# Inside engine/: engine_internal.h (the layout of e2h_engine and e2h_seq) is the core's own;
# the modules built on the core (prm/, search/) and cli/ never include it: they use the public
# API and the narrow headers (sched.h, kv.h, prm_hooks.h).
# usage: tools/check_layers.sh [ROOT]   (prints each violation; exit 1 if any)
set -u
ROOT=$(cd "${1:-$(dirname "$0")/..}" && pwd)
cd "$ROOT" || exit 2
bad=0

layer_of() { # path relative to ROOT -> layer name
    case "$1" in
    include/e2h.h) echo api ;;
    engine/cli/*) echo cli ;;
    engine/*) echo engine ;;
    kernels/*) echo kernels ;;
    tokenizer/*) echo tokenizer ;;
    formats/*) echo formats ;;
    *) echo client ;;
    esac
}

allowed() { # from-layer to-layer -> 0 if allowed
    [ "$2" = api ] && return 0
    [ "$1" = "$2" ] && return 0
    case "$1" in
    client) return 0 ;;
    cli) return 1 ;;
    engine) case "$2" in kernels|tokenizer|formats) return 0 ;; esac ;;
    kernels|tokenizer) [ "$2" = formats ] && return 0 ;;
    esac
    return 1
}

fail() { echo "layer violation: $*"; bad=1; }

files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.c' -o -name '*.h' | sed 's|^\./||')
for f in $files; do
    from=$(layer_of "$f")
    dir=$(dirname "$f")
    while IFS= read -r inc; do
        [ -n "$inc" ] || continue
        target=""
        for cand in "$dir/$inc" "$inc" "include/$inc"; do
            if [ -f "$cand" ]; then target=$(realpath -m --relative-to=. "$cand"); break; fi
        done
        [ -n "$target" ] || continue # system or generated header
        to=$(layer_of "$target")
        allowed "$from" "$to" || fail "$f ($from) includes $target ($to)"
        if [ "$target" = kernels/ops.h ]; then
            case "$f" in kernels/ops.c|kernels/ops.h) ;; kernels/*) fail "$f: kernel files include types.h, not ops.h" ;; esac
        fi
        case "$f:$target" in engine/prm/*:engine/engine_internal.h|engine/search/*:engine/engine_internal.h|engine/cli/*:engine/engine_internal.h)
            fail "$f: engine modules use the public API and sched.h / kv.h / prm_hooks.h, not engine_internal.h" ;; esac
        case "$f:$target" in kernels/ref/*:kernels/x86/*) fail "$f: the oracle includes SIMD code $target" ;; esac
        case "$f:$target" in tokenizer/utf8.*:tokenizer/tokenizer.h|tokenizer/unicode_nfc.*:tokenizer/tokenizer.h)
            fail "$f: the bottom of tokenizer/ includes tokenizer.h" ;; esac
    done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done

# the oracle names no SIMD function (comments aside)
for f in $(git ls-files 'kernels/ref/*.c' 'kernels/ref/*.h' 2>/dev/null); do
    if sed 's://.*$::' "$f" | grep -nE '\b\w*_(avx2|avx512)\b|\b_mm(256|512)?_' >/dev/null; then
        fail "$f: kernels/ref calls SIMD code: $(sed 's://.*$::' "$f" | grep -nE '\b\w*_(avx2|avx512)\b|\b_mm(256|512)?_' | head -1)"
    fi
done

if [ $bad -eq 0 ]; then echo "layers: ok ($(echo "$files" | wc -w) files)"; fi
exit $bad
