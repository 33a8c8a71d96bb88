#!/usr/bin/env bash
# Builds the libFuzzer targets (preset "fuzz": clang-16 with ASan + UBSan) and runs each for SECONDS, starting
# from the checked-in seeds (fuzz/corpus/<target>/) plus what earlier runs found (var/fuzz/<target>/corpus/,
# not committed). A crash, leak or UBSan report fails the run and leaves the input in var/fuzz/<target>/.
# Usage: ./scripts/fuzz.sh [SECONDS=60] [TARGET...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib/deps.sh
certctrl_install_deps "$root"

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(fuzz_http_request fuzz_json_bodies fuzz_scope fuzz_x509 fuzz_acme_responses fuzz_dns_response)
fi

echo "== build (fuzz)"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

symbolizer=$(command -v llvm-symbolizer-16 || command -v llvm-symbolizer || true)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
[ -n "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH=$symbolizer

failed=0
printf '%-22s %12s %10s %8s\n' target executions exec/s corpus
for t in "${targets[@]}"; do
    out=var/fuzz/$t
    mkdir -p "$out/corpus"
    log=$out/last.log
    rc=0
    "build/fuzz/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/" "$out/corpus" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    printf '%-22s %12s %10s %8s\n' "$t" "${execs:-?}" "${speed:-?}" "$(ls "$out/corpus" | wc -l)"
    if [ "$rc" != 0 ]; then
        failed=1
        echo "fuzz.sh: $t failed (exit $rc); the input is in $out/, the report:" >&2
        grep -E -A30 'ERROR|runtime error|SUMMARY' "$log" | head -60 >&2 || tail -40 "$log" >&2
    fi
done
exit $failed
