#!/usr/bin/env bash
# The whole test suite, with its own set-up: the command the README names.
#   bash .ci/test.sh            lint, build, fuzz smoke pass, interop with real clients
#                               (slixmpp), SIP interop with real SIP tools (SIPp, sipsak,
#                               pjsua2; against Herald, and against Kamailio as the
#                               control), federation interop (Herald with Prosody, with
#                               ejabberd and with Herald, and the control pair), tlsfuzzer's short set, unit, property and
#                               integration tests
#   HERALD_SKIP_FUZZ=1 ...      skip the fuzz smoke pass (it needs cargo-fuzz)
# Every suite runs even when an earlier one failed; the last line sums them all:
# `N passed, N failed`. Long outputs (fuzzer runs, tlsfuzzer logs) go to files under
# target/ci-logs; a failing step prints its tail.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
LOGS=target/ci-logs
# The binary the interop suites run: where cargo builds it (CARGO_TARGET_DIR or target/).
HERALD_BIN="${CARGO_TARGET_DIR:-target}/debug/herald"
mkdir -p "$LOGS"

passed=0
failed=0
failures=()
log() { printf '\n=== %s\n' "$*"; }
count() { # count PASSED FAILED WHAT
  passed=$((passed + $1))
  failed=$((failed + $2))
  if [ "$2" -gt 0 ]; then failures+=("$3"); fi
}
check() { # check WHAT COMMAND...: one pass or one failure
  local what=$1
  shift
  if "$@"; then count 1 0 "$what"; else count 0 1 "$what"; fi
}

log "python dependencies (slixmpp for the interop suite, pjsua2 for the SIP suite, tlslite-ng and ecdsa for tlsfuzzer)"
python3 -m pip install --quiet --disable-pip-version-check \
  -r interop/scenarios/requirements.txt -r interop/sip/requirements.txt tlslite-ng==0.9.0b2 ecdsa || exit 1

log "lint"
check "rustfmt" cargo fmt --all --check
check "clippy" cargo clippy --workspace --all-targets --quiet -- -D warnings

log "build"
cargo build --workspace --all-targets --quiet || exit 1

if [ "${HERALD_SKIP_FUZZ:-0}" != 1 ]; then
  log "fuzz smoke pass (every target, 300k runs or 60 s, fixed seed)"
  out=$(bash .ci/fuzz-smoke.sh 60 "$PWD/$LOGS")
  echo "$out"
  count "$(grep -c '^PASS' <<<"$out")" "$(grep -c '^FAIL' <<<"$out")" "fuzz"
fi

log "interop: real slixmpp clients against herald serve"
out=$(python3 interop/scenarios/run.py --herald "$HERALD_BIN" 2>&1)
echo "$out"
summary=$(tail -n 1 <<<"$out")
if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  count "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "interop"
else
  count 0 1 "interop (no summary)"
fi

# The SIP suite: SIPp scenarios (UDP and TCP), sipsak probes and two pjsua2 user agents
# against Herald's registrar and presence server, plus the Herald-only probes (bad input,
# TLS, RFC 4475, SIP <-> XMPP). Kamailio runs the same tool scenarios as the control
# that shows the scenarios themselves are sound (about 10 s).
for server in herald kamailio; do
  log "SIP interop: real SIP tools against $server"
  out=$(python3 interop/sip/run.py --server "$server" --herald "$HERALD_BIN" 2>&1)
  echo "$out"
  summary=$(tail -n 1 <<<"$out")
  if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    count "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "sip interop ($server)"
  else
    count 0 1 "sip interop ($server, no summary)"
  fi
done

# The federation suite: Herald federating with real Prosody and ejabberd on loopback,
# and with a second Herald (two `herald serve` processes), through the suite's own
# dnsmasq and test CA, with certificates (PKIX, SASL EXTERNAL) and with dialback (the
# peers do not trust each other's CA); and Prosody <-> ejabberd, the control pair that
# shows the harness itself is sound.
for pair in herald,prosody herald,ejabberd herald,herald prosody,ejabberd; do
  for auth in pkix dialback; do
    log "federation interop: $pair, s2s auth $auth"
    out=$(HERALD_BIN="$HERALD_BIN" python3 interop/federation/run.py --pair "$pair" --auth "$auth" 2>&1)
    echo "$out"
    summary=$(tail -n 1 <<<"$out")
    if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
      count "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "federation ($pair, $auth)"
    else
      count 0 1 "federation ($pair, $auth, no summary)"
    fi
  done
done

log "tlsfuzzer: short set against the direct-TLS port"
out=$(bash .ci/tlsfuzzer.sh "$HERALD_BIN" 2>&1)
status=$?
echo "$out"
if [[ $(tail -n 1 <<<"$out") =~ ^scripts:\ ([0-9]+),\ failed:\ ([0-9]+)$ ]]; then
  bad=${BASH_REMATCH[2]}
  ok=$((BASH_REMATCH[1] - bad))
else
  ok=0 bad=0
fi
if [ "$status" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
count "$ok" "$bad" "tlsfuzzer"

log "unit, property and integration tests"
cargo test --workspace --quiet 2>&1 | tee "$LOGS/cargo-test.log"
tests_passed=$(grep -o '[0-9]* passed' "$LOGS/cargo-test.log" | awk '{s += $1} END {print s + 0}')
tests_failed=$(grep -o '[0-9]* failed' "$LOGS/cargo-test.log" | awk '{s += $1} END {print s + 0}')
if ! grep -q 'test result' "$LOGS/cargo-test.log"; then tests_failed=$((tests_failed + 1)); fi
count "$tests_passed" "$tests_failed" "cargo test"

log "summary"
if [ "${#failures[@]}" -gt 0 ]; then
  echo "failed in: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
