#!/usr/bin/env bash
# The whole test suite, with its own set-up: the command the README names.
#   bash .ci/test.sh            unit, property and integration tests, interop with real
#                               clients (slixmpp), fuzz smoke pass
#   HERALD_SKIP_FUZZ=1 ...      skip the fuzz smoke pass (it needs cargo-fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

log() { printf '\n=== %s\n' "$*"; }

log "python dependencies for the interop suite"
python3 -m pip install --quiet --disable-pip-version-check -r interop/scenarios/requirements.txt

log "lint"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

log "build"
cargo build --workspace --all-targets --quiet

if [ "${HERALD_SKIP_FUZZ:-0}" != 1 ]; then
  log "fuzz smoke pass (every target, 300k runs or 60 s, fixed seed)"
  bash .ci/fuzz-smoke.sh 60
fi

log "interop: real slixmpp clients against herald serve"
python3 interop/scenarios/run.py --herald target/debug/herald

log "unit, property and integration tests"
cargo test --workspace --quiet 2>&1 | tee /tmp/herald-cargo-test.log
