#!/usr/bin/env bash
# Two Herald builds back to back on the same machine: runs run.sh against BEFORE, then
# AFTER, alternating, for each message rate given, and prints the figures that compare
# (RSS per session, CPU per 1k messages, latency). Each build gets its own BENCH_DIR
# (provisioned by that build, since a newer database schema is refused by an older
# Herald). Only Herald runs; tsung is skipped.
#
# Usage: ab.sh BEFORE_BIN AFTER_BIN [RATE...]   (default rates: 9000 9000 9000 5000 5000 500 500)
#   N (2000), LOADGEN_BIN, BENCH_DIR_BEFORE (/tmp/herald-bench-before),
#   BENCH_DIR_AFTER (/tmp/herald-bench-after); rates above 500 run with 50 presence
#   changes/s for 15 s, like the rate tables of docs/BENCHMARKS.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($# >= 2)) || die "usage: ab.sh BEFORE_BIN AFTER_BIN [RATE...]"
before=$1 after=$2
shift 2
rates=("$@")
((${#rates[@]})) || rates=(9000 9000 9000 5000 5000 500 500)
n=${N:-2000}

one() {
    local tag=$1 bin=$2 dir=$3 rate=$4
    local extra=(MSG_RATE="$rate")
    ((rate > 500)) && extra+=(PRESENCE_RATE=50 DURATION=15)
    echo "=== $tag rate $rate $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
    env "${extra[@]}" HERALD_BIN="$bin" BENCH_DIR="$dir" SERVERS=herald SKIP_BUILD=1 SKIP_TSUNG=1 \
        "$BENCH_SRC/run.sh" "$n" 2>/dev/null |
        grep -E "RSS/session|CPU per 1k|CPU in traffic|latency p50|latency p99|msgs/s received|not received|login p50|load average"
}

for rate in "${rates[@]}"; do
    one before "$before" "${BENCH_DIR_BEFORE:-/tmp/herald-bench-before}" "$rate"
    one after "$after" "${BENCH_DIR_AFTER:-/tmp/herald-bench-after}" "$rate"
done
