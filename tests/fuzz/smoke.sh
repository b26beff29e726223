#!/usr/bin/env bash
# tests/fuzz/smoke.sh DIR SECONDS — runs every fuzz target in DIR for SECONDS on a scratch copy
# of its committed seeds (tests/fuzz/corpus/<name>); a crash, leak, UB report or an input that
# takes over 10 s fails it. Prints executions per target and "N passed, N failed" last.
set -u
dir=$1; secs=${2:-60}
pass=0; fail=0; total_runs=0
for bin in "$dir"/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin"); name=${name#fuzz_}
    work=$(mktemp -d)
    cp -r "tests/fuzz/corpus/$name/." "$work/" 2>/dev/null || true
    log=$(mktemp)
    UBSAN_OPTIONS=print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
        "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
        -artifact_prefix="$work/" -print_final_stats=1 "$work" >"$log" 2>&1
    rc=$?
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    runs=${runs:-0}; total_runs=$((total_runs + runs))
    if [ $rc -eq 0 ]; then
        echo "ok   fuzz_$name: $runs executions in ${secs}s"
        pass=$((pass + 1))
    else
        echo "FAIL fuzz_$name (rc=$rc): crash input kept in $work"; tail -n 40 "$log"
        fail=$((fail + 1))
    fi
    rm -f "$log"
    [ $rc -eq 0 ] && rm -rf "$work"
done
echo "fuzz-smoke: $total_runs executions"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
