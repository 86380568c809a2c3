#!/usr/bin/env bash
# tlsfuzzer's short set against `herald serve`'s direct-TLS port (XEP-0368), as CI runs
# it. Starts a private server from the binary given (default target/debug/herald) on a
# free loopback port with a temporary data directory, runs interop/tlsfuzzer/run.sh
# --short against it, checks the server never panicked, and stops it by PID.
#   bash .ci/tlsfuzzer.sh [HERALD_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
herald=${1:-target/debug/herald}
dir=$(mktemp -d -t herald-tlsfuzzer-ci.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

read -r tls admin < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
')
cat >"$dir/herald.toml" <<TOML
[server]
domains = ["localhost"]
data_dir = "$dir/data"
# SIP off: its default ports are fixed (5060/5061) and would collide.
[sip]
listen_udp = []
listen_tcp = []
listen_tls = []

[c2s]
listen = []
listen_tls = ["127.0.0.1:$tls"]
# tlsfuzzer opens hundreds of connections a second from one address: the per-address
# connection rate (100/s, burst 200 by default) would close some before any TLS byte,
# which tlsfuzzer reports as an unexpected closure. The limit is tested elsewhere.
connections_per_ip_per_sec = 100000
connections_per_ip_burst = 100000
[admin]
listen = "127.0.0.1:$admin"
[log]
level = "warn"
TOML
"$herald" serve --config "$dir/herald.toml" >"$dir/herald.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$tls") 2>/dev/null; then
    break
  fi
  kill -0 "$pid" 2>/dev/null || { cat "$dir/herald.log"; echo "herald exited" >&2; exit 1; }
  sleep 0.1
done
status=0
TLSFUZZER_LOGS=$dir/logs bash interop/tlsfuzzer/run.sh 127.0.0.1 "$tls" --short || status=$?
if grep -q "panicked" "$dir/herald.log"; then
  echo "herald panicked during tlsfuzzer:" >&2
  grep -A5 "panicked" "$dir/herald.log" >&2
  status=1
fi
kill -0 "$pid" 2>/dev/null || { echo "herald died during tlsfuzzer" >&2; status=1; }
exit "$status"
