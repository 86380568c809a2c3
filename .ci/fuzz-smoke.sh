#!/usr/bin/env bash
# Build the cargo-fuzz targets and run each briefly. cargo-fuzz needs nightly flags;
# RUSTC_BOOTSTRAP lets the stable toolchain accept them. The seed is fixed so a CI run is
# repeatable; longer campaigns (`cargo fuzz run TARGET` without limits) are run by hand
# and every crash they find becomes a unit test.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install --quiet --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
cd fuzz
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  cargo fuzz run "$target" "corpus/$target" -- -seed=1 -runs=300000 -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536
done
