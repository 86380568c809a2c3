#!/usr/bin/env bash
# Run tlsfuzzer conformance scripts against a direct-TLS (XEP-0368) XMPP port.
#
#   interop/tlsfuzzer/run.sh HOST PORT [--short] [SCRIPT...]
#
# HOST must be a loopback address. --short runs the CI set; without it the
# broad set (every TLS 1.3 script that fits an ECDSA server without client
# certificates, and the main TLS 1.2 ones). Naming scripts runs only those.
# Prints one line per script and exits non-zero if any script failed.
#
# tlsfuzzer is not part of this repository: it is called from
# ../shared/tools relative to the repository root (override with
# TLSFUZZER_TOOLS). It needs `pip install tlslite-ng==0.9.0b2 ecdsa`.
# Each script is bounded by TLSFUZZER_TIMEOUT seconds (default 300); full
# logs go to TLSFUZZER_LOGS (default: a new temporary directory).
#
# Probes that fail on Herald's layer and on plain rustls alike (rustls'
# choices, or probes this harness cannot serve) are excluded with -e, as
# listed in excluded.tsv next to this script (TLSFUZZER_NO_EXCLUSIONS=1 runs
# them all); docs/TLS.md gives the reasons. A test server:
# cargo run -p herald-certs --example tls_xmpp_probe [-- --reference] [PORT].

set -u

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

[ $# -ge 2 ] || usage
HOST=$1
PORT=$2
shift 2
case "$HOST" in
    127.0.0.1 | ::1 | localhost) ;;
    *) echo "refusing $HOST: tlsfuzzer runs against loopback only" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS=${TLSFUZZER_TOOLS:-$ROOT/../shared/tools}
TIMEOUT=${TLSFUZZER_TIMEOUT:-300}
LOGS=${TLSFUZZER_LOGS:-$(mktemp -d -t herald-tlsfuzzer.XXXXXX)}
RUNNER=$TOOLS/tlsfuzzer-xmpp.py
[ -f "$RUNNER" ] || { echo "tlsfuzzer not found at $TOOLS" >&2; exit 2; }
mkdir -p "$LOGS"

# TLS 1.2 scripts negotiate ECDHE with the ECDSA certificate.
TLS12=(-d -C TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)

SHORT=(
    test-tls13-conversation.py
    test-tls13-finished.py
    test-tls13-keyupdate.py
    test-invalid-cipher-suites.py
    test-tls13-ecdhe-curves.py
    test-tls13-version-negotiation.py
    test-tls13-symetric-ciphers.py
    test-tls13-invalid-ciphers.py
    test-conversation.py
)

BROAD=(
    "${SHORT[@]}"
    test-tls13-0rtt-garbage.py
    test-tls13-ccs.py
    test-tls13-certificate-compression.py
    test-tls13-connection-abort.py
    test-tls13-count-tickets.py
    test-tls13-crfg-curves.py
    test-tls13-dhe-shared-secret-padding.py
    test-tls13-ecdsa-support.py
    test-tls13-empty-alert.py
    test-tls13-finished-plaintext.py
    test-tls13-hrr.py
    test-tls13-keyshare-omitted.py
    test-tls13-keyupdate-from-server.py
    test-tls13-large-number-of-extensions.py
    test-tls13-legacy-version.py
    test-tls13-multiple-ccs-messages.py
    test-tls13-no-unknown-groups.py
    test-tls13-nociphers.py
    test-tls13-obsolete-curves.py
    test-tls13-pkcs-signature.py
    test-tls13-record-layer-limits.py
    test-tls13-record-padding.py
    test-tls13-serverhello-random.py
    test-tls13-session-resumption.py
    test-tls13-shuffled-extentions.py
    test-tls13-signature-algorithms.py
    test-tls13-unencrypted-alert.py
    test-tls13-unrecognised-groups.py
    test-tls13-zero-content-type.py
    test-tls13-zero-length-data.py
    test-alpn-negotiation.py
    test-ccs.py
    test-connection-abort.py
    test-downgrade-protection.py
    test-ecdsa-sig-flexibility.py
    test-extended-master-secret-extension.py
    test-extensions.py
    test-fuzzed-ciphertext.py
    test-hello-request-by-client.py
    test-interleaved-application-data-in-renegotiation.py
    test-invalid-client-hello-w-record-overflow.py
    test-invalid-compression-methods.py
    test-invalid-content-type.py
    test-invalid-server-name-extension.py
    test-invalid-version.py
    test-legacy-renegotiation.py
    test-message-skipping.py
    test-point-extension.py
    test-record-layer-fragmentation.py
    test-renegotiation-disabled.py
    test-sslv2hello-protocol.py
    test-truncating-of-client-hello.py
    test-version-numbers.py
    test-x25519.py
    test-zero-length-data.py
)

# The options of one script: -n 0 (every probe) where the script takes it,
# ECDHE with the ECDSA certificate for TLS 1.2 connections (-d, and -C where
# it names the TLS 1.2 cipher; in most TLS 1.3 scripts -C is a TLS 1.3 cipher
# or unknown), and the exclusions.
options() {
    local script=$1 spec
    spec=$(grep -o 'getopt.getopt(argv, "[^"]*"' \
        "$TOOLS/tlsfuzzer/tlsfuzzer/_apps/$(echo "${script%.py}" | tr - _).py" 2>/dev/null)
    OPTS=()
    case "$spec" in *n:*) OPTS+=(-n 0) ;; esac
    case "$script" in
        test-tls13-version-negotiation.py) OPTS+=("${TLS12[@]}") ;;
        test-tls13-*)
            case "$spec" in *d*) OPTS+=(-d) ;; esac
            ;;
        test-point-extension.py)
            # Takes -d in its option string but refuses it.
            OPTS+=("${TLS12[@]:1}")
            ;;
        *)
            case "$spec" in *d*) OPTS+=(-d) ;; esac
            case "$spec" in *C:*) OPTS+=("${TLS12[@]:1}") ;; esac
            ;;
    esac
    exclusions "$script"
}

# Probes excluded per script, from excluded.tsv (script, probe, reason
# category, what tlsfuzzer saw); docs/TLS.md explains each category.
EXCLUDED=$(dirname "$0")/excluded.tsv
exclusions() {
    local script probe rest
    [ "${TLSFUZZER_NO_EXCLUSIONS:-}" = 1 ] && return
    while IFS=$'\t' read -r script probe rest; do
        [ "$script" = "$1" ] && OPTS+=(-e "$probe")
    done <"$EXCLUDED"
}

if [ $# -gt 0 ] && [ "$1" = --short ]; then
    shift
    SCRIPTS=("${SHORT[@]}")
else
    SCRIPTS=("${BROAD[@]}")
fi
[ $# -gt 0 ] && SCRIPTS=("$@")

failed=0
printf '%-58s %-6s %s\n' SCRIPT RESULT "COUNTS (log: $LOGS)"
for script in "${SCRIPTS[@]}"; do
    options "$script"
    log=$LOGS/${script%.py}.log
    (cd "$TOOLS" && timeout "$TIMEOUT" python3 "$RUNNER" "$script" -h "$HOST" -p "$PORT" \
        "${OPTS[@]}") >"$log" 2>&1
    rc=$?
    count() { grep -E "^$1: [0-9]+" "$log" | tail -1 | awk '{print $2}'; }
    pass=$(count PASS) fail=$(count FAIL) skip=$(count SKIP) xfail=$(count XFAIL) xpass=$(count XPASS)
    if [ $rc -eq 0 ] && [ -n "$pass" ] && [ "${fail:-0}" = 0 ] && [ "${xpass:-0}" = 0 ]; then
        result=pass
    else
        result=FAIL
        failed=$((failed + 1))
    fi
    [ $rc -eq 124 ] && result=TIMEOUT
    printf '%-58s %-6s pass=%s fail=%s skip=%s xfail=%s xpass=%s rc=%s\n' "$script" "$result" \
        "${pass:--}" "${fail:--}" "${skip:--}" "${xfail:--}" "${xpass:--}" "$rc"
done
echo "scripts: ${#SCRIPTS[@]}, failed: $failed"
[ $failed -eq 0 ]
