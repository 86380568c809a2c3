#!/usr/bin/env bash
# Build the cargo-fuzz targets and run each briefly. cargo-fuzz needs nightly flags;
# RUSTC_BOOTSTRAP lets the stable toolchain accept them. The seed is fixed so a CI run is
# repeatable; longer campaigns (`cargo fuzz run TARGET` without limits) are run by hand
# and every crash they find becomes a unit test.
#   bash .ci/fuzz-smoke.sh [SECONDS] [LOG_DIR]
# Prints one `PASS target` or `FAIL target` line per target; a target's full output goes
# to LOG_DIR/fuzz-TARGET.log (the tail is printed when it fails).
set -uo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
logs="${2:-$PWD/target/ci-logs}"
mkdir -p "$logs"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install --quiet --locked cargo-fuzz || { echo "FAIL cargo-fuzz install"; exit 1; }
fi
export RUSTC_BOOTSTRAP=1
cd fuzz
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  log="$logs/fuzz-$target.log"
  if cargo fuzz run "$target" "corpus/$target" -- -seed=1 -runs=300000 \
      -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 >"$log" 2>&1; then
    echo "PASS $target ($(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -n 1))"
  else
    echo "FAIL $target"
    tail -n 40 "$log"
  fi
done
