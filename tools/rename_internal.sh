#!/usr/bin/env bash
# tools/rename_internal.sh — gives the library's internal functions module prefixes that are not
# the public `e2h_` (issue #12 §3): libe2h.so exports only e2h.h, but an internal e2h_* name still
# reads as public API and can collide with an embedder's names in a static link.
#
# Run ONCE from the repository root on a clean tree, when no other branch has work in flight
# (every in-flight branch that uses an old name would break):
#     bash tools/rename_internal.sh            # rewrites tracked *.c *.h *.py *.md *.sh *.cu
#     bash tools/rename_internal.sh --dry-run  # prints the table and the files it would touch
# then `make -j2 && make test`. It refuses to run when a new name is already used in the tree.
# After renaming, with a build present, it lists internal e2h_* functions the table does not
# cover (added since it was written).
#
# Module prefixes: pool_ (kernels/pool), ops_ (kernels/ops: the dispatch table), kern_ (kernel
# files and kernels/types), fmt_ (formats/), util_ (engine/util). Types (e2h_tensor, e2h_pool,
# E2H_TYPE_*, ...) are not symbols and keep their names.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
DRY=0; [ "${1:-}" = --dry-run ] && DRY=1

RENAMES='
e2h_pool_free pool_free
e2h_pool_init pool_init
e2h_pool_run pool_run
e2h_pool_size pool_size
e2h_pool_slice pool_slice
e2h_ops_get ops_get
e2h_ops_ref ops_ref
e2h_matmul_scratch_size ops_matmul_scratch_size
e2h_errf fmt_errf
e2h_read_file fmt_read_file
e2h_alloc_large util_alloc_large
e2h_convert_to_f32 util_convert_to_f32
e2h_time_s util_time_s
E2H_ALLOC_LARGE_MAX UTIL_ALLOC_LARGE_MAX
'
# kernels: every other internal function keeps its name after the prefix
for f in attention_avx2 attention_avx512 attention_ref attention_run attn_chunk_avx2 attn_chunk_ref \
    attn_phase_avx2 attn_phase_avx512 attn_phase_chunked attn_phase_ref attn_scratch_size \
    attn_work_floats bf16_to_f32 dequantize_row_ref f16_to_f32 f32_to_bf16 f32_to_f16 \
    float_dequantize_row float_quantize_row is_float_type matmul_blocked matmul_float_avx2 \
    matmul_float_avx512 matmul_float_ref mm_out_at q_f2h q_h2f q_reduce16 qmatmul_avx2 \
    qmatmul_avx512 qmatmul_ref qmatmul_scratch_size qmm_quantize_fn quant_is_k \
    quant_type_supported quantize_row_ref qx32_nb2 qx_quantize qx_quantize_avx512 \
    qx_token_stride r16_act_ref r16_group_stride r16_inits r16_matmul_avx512 \
    r16_matmul_ex_avx512 r16_matmul_ex_ref r16_matmul_plain r16_matmul_ref r16_offset \
    r16_qbytes r16_quantize r16_quantize_fn r16_repack r16_repack_to r16_sbytes \
    r16_scratch_size r16_size r16_supported r16_token_stride rmsnorm_avx2 rmsnorm_avx512 \
    rmsnorm_ref rope_avx2 rope_avx512 rope_ref swiglu_avx2 swiglu_avx512 swiglu_ref \
    type_row_size type_traits_get; do
    RENAMES+="e2h_$f kern_$f"$'\n'
done

files=$(git ls-files '*.c' '*.h' '*.py' '*.md' '*.sh' '*.cu' '*.cuh' | grep -v '^tools/rename_internal.sh$')
conflict=0
while read -r old new; do
    [ -n "$old" ] || continue
    if grep -qw -- "$new" $files; then echo "rename_internal: '$new' is already used in the tree"; conflict=1; fi
done <<< "$RENAMES"
[ $conflict -eq 0 ] || { echo "rename_internal: nothing changed"; exit 1; }

if [ $DRY -eq 1 ]; then
    echo "$RENAMES" | sed '/^$/d'
    pattern=$(echo "$RENAMES" | awk 'NF{print $1}' | paste -sd'|')
    grep -lwE "$pattern" $files || true
    exit 0
fi

script=$(echo "$RENAMES" | awk 'NF{printf "s/\\b%s\\b/%s/g;", $1, $2}')
# names built by token pasting (kernels/ops.c: e2h_qmatmul_##isa, e2h_matmul_float_##isa)
script+='s/\be2h_(qmatmul|matmul_float|rmsnorm|rope|swiglu|attention)_##/kern_$1_##/g;'

changed=$( (grep -lwE "$(echo "$RENAMES" | awk 'NF{print $1}' | paste -sd'|')" $files;
          grep -lE 'e2h_\w+_##' $files) | sort -u || true)
[ -z "$changed" ] || perl -pi -e "$script" $changed
echo "rename_internal: rewrote $(echo "$changed" | wc -w) files"

# internal e2h_* functions the table does not cover (needs a build of libe2h.a)
lib=${BUILD:-build}/libe2h.a
if [ -f "$lib" ]; then
    public=$(sed 's://.*$::' include/e2h.h | grep -oE '\be2h_\w+\s*\(' | tr -d '( ' | sort -u)
    left=$(nm --defined-only -g "$lib" 2>/dev/null | awk '$2 ~ /[TDBR]/ && $3 ~ /^e2h_/ {print $3}' | sort -u |
           comm -23 - <(echo "$public"))
    [ -z "$left" ] || { echo "rename_internal: internal e2h_* functions not in the table (rename by hand):"; echo "$left"; }
fi
