#!/usr/bin/env bash
# Runs every C test binary under $BUILD/tests, then the Python oracle tests (unless
# E2H_SKIP_PY=1). Prints a total "N passed, N failed" line; fails if any test failed or none ran.
set -u
BUILD=${BUILD:-build}
total_p=0; total_f=0; total_s=0; bad=0
# TESTS="path ..." runs only those binaries (make tsan uses it).
for t in ${TESTS:-"$BUILD"/tests/test_*}; do
    [ -x "$t" ] || continue
    case "$t" in *.d) continue;; esac
    echo "== $t"
    out=$("$t" 2>&1); rc=$?
    echo "$out"
    line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then echo "!! $t printed no summary (rc=$rc)"; bad=1; continue; fi
    p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}')
    total_p=$((total_p + p)); total_f=$((total_f + f))
    s=$(echo "$out" | grep -E '^[0-9]+ skipped$' | tail -n 1 | awk '{print $1}'); total_s=$((total_s + ${s:-0}))
    [ $rc -ne 0 ] && bad=1
done
if [ "${E2H_SKIP_PY:-0}" != 1 ] && ls tests/py/test_*.py >/dev/null 2>&1; then
    echo "== python oracle tests"
    out=$(python3 -m pytest -q tests/py 2>&1); rc=$?
    echo "$out"
    line=$(echo "$out" | grep -E '[0-9]+ passed' | tail -n 1)
    p=$(echo "$line" | grep -oE '[0-9]+ passed' | awk '{print $1}'); p=${p:-0}
    f=$(echo "$line" | grep -oE '[0-9]+ failed' | awk '{print $1}'); f=${f:-0}
    total_p=$((total_p + p)); total_f=$((total_f + f))
    [ $rc -ne 0 ] && bad=1
fi
[ $total_s -gt 0 ] && echo "TOTAL: $total_s skipped (C tests that cannot run here; see their reasons)"
echo "TOTAL: $total_p passed, $total_f failed"
[ $total_p -gt 0 ] || { echo "no test ran"; exit 1; }
[ $bad -eq 0 ] && [ $total_f -eq 0 ]
