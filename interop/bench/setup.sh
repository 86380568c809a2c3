#!/usr/bin/env bash
# Prepares the three-server comparison on this machine, for N accounts:
#  - installs prosody, ejabberd and tsung (Debian packages) when missing;
#  - builds herald and herald-loadgen (release) unless SKIP_BUILD=1;
#  - makes ONE development CA and server certificate for "localhost" with Herald itself
#    ($BENCH_DIR/herald/data/tls/{dev-ca.pem,server.pem,server.key});
#  - writes each server's own configuration under $BENCH_DIR (nothing system-wide):
#    Herald on 127.0.0.1:$HERALD_PORT, Prosody on :$PROSODY_PORT, ejabberd on
#    :$EJABBERD_PORT, all serving "localhost" with that certificate, TLS required;
#  - provisions user0..user{N-1} (password pass{i}) in all three, and the roster ring
#    ($ROSTER_K mutual contacts per user, within chunks of $CHUNK users).
# Usage: setup.sh [N]   (default 200). A different N than last time re-provisions.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-200}
[[ $N =~ ^[0-9]+$ ]] && ((N >= 2 && N <= 100000)) || die "N must be between 2 and 100000"

install_packages() {
    local missing=()
    command -v prosody >/dev/null || missing+=(prosody)
    command -v ejabberdctl >/dev/null || missing+=(ejabberd)
    command -v tsung >/dev/null || missing+=(tsung)
    command -v ss >/dev/null || missing+=(iproute2)
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]}"
    # Keep the packages' own system services from starting (they would take 5222).
    local policy=/usr/sbin/policy-rc.d added=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        added=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    ((added)) && rm -f "$policy"
    return 0
}

write_herald_config() {
    mkdir -p "$BENCH_DIR/herald/data"
    # Every generator (and tsung) connects from a handful of loopback addresses, so the
    # per-address caps of the server are lifted like its per-address connection rate.
    # A Herald older than these keys (HERALD_BIN of an earlier build, for before/after
    # runs) refuses them: it gets the file without them.
    local per_address="max_unauthenticated = 50000
max_unauthenticated_per_ip = 50000"
    write_herald_toml "$per_address"
    if ! "$HERALD_BIN" check-config "$BENCH_DIR/herald/herald.toml" >/dev/null 2>&1; then
        write_herald_toml ""
    fi
    "$HERALD_BIN" check-config "$BENCH_DIR/herald/herald.toml" >/dev/null
}

write_herald_toml() {
    cat >"$BENCH_DIR/herald/herald.toml" <<EOF
# Herald benchmark configuration (written by interop/bench/setup.sh).
[server]
domains = ["$DOMAIN"]
data_dir = "$BENCH_DIR/herald/data"

# SIP off: its default ports are fixed (5060/5061) and would collide.
[sip]
listen_udp = []
listen_tcp = []
listen_tls = []

[c2s]
listen = ["127.0.0.1:$HERALD_PORT"]
listen_tls = []
allow_plain = true
max_connections = 50000
# Every generator session comes from a handful of loopback addresses.
connections_per_ip_per_sec = 100000
connections_per_ip_burst = 100000
$1
max_sessions_per_account = 10
idle_timeout_secs = 600
offline_quota = 1000

[admin]
listen = "127.0.0.1:$HERALD_ADMIN_PORT"

[log]
format = "human"
level = "warn"
EOF
}

make_pki() {
    if [[ -s $CA && -s $CERT && -s $KEY ]]; then
        return 0
    fi
    log "generating the development CA and the localhost certificate with herald"
    start_server herald
    stop_server herald
    [[ -s $CA && -s $CERT && -s $KEY ]] || die "herald did not write $TLS_DIR"
}

write_prosody_config() {
    local d=$BENCH_DIR/prosody
    mkdir -p "$d/data" "$d/certs"
    install -m 0644 "$CERT" "$d/server.pem"
    install -m 0600 "$KEY" "$d/server.key"
    cat >"$d/prosody.cfg.lua" <<EOF
-- Prosody benchmark configuration (written by interop/bench/setup.sh).
run_as_root = true
pidfile = "$d/prosody.pid"
data_path = "$d/data"
plugin_paths = {}
certificates = "$d/certs"
admins = {}
interfaces = { "127.0.0.1" }
c2s_interfaces = { "127.0.0.1" }
c2s_ports = { $PROSODY_PORT }
c2s_direct_tls_ports = {}
legacy_ssl_ports = {}
s2s_ports = {}
-- Same socket settings as Herald and ejabberd: no Nagle delay, a deep accept queue.
network_settings = { nagle = false; tcp_backlog = 1024 }
modules_enabled = {
	"roster"; "saslauth"; "tls"; "disco"; "carbons"; "blocklist";
	"ping"; "smacks"; "offline";
}
modules_disabled = { "s2s" }
c2s_require_encryption = true
allow_unencrypted_plain_auth = false
authentication = "internal_hashed"
storage = "internal"
log = { { levels = { min = "warn" }; to = "file"; filename = "$d/prosody.log" } }
ssl = { certificate = "$d/server.pem"; key = "$d/server.key" }
VirtualHost "$DOMAIN"
	ssl = { certificate = "$d/server.pem"; key = "$d/server.key" }
EOF
}

write_ejabberd_config() {
    local d=$BENCH_DIR/ejabberd
    mkdir -p "$d/log" "$d/spool"
    cat "$CERT" "$KEY" >"$d/server.pem"
    chmod 0600 "$d/server.pem"
    install -m 0644 "$CA" "$d/ca.pem"
    cat >"$d/ejabberdctl.cfg" <<EOF
# ejabberdctl settings of the benchmark (written by interop/bench/setup.sh).
ERLANG_NODE=$EJABBERD_NODE
# A fixed distribution port: no epmd is started by ejabberdctl.
ERL_DIST_PORT=$EJABBERD_DIST_PORT
INET_DIST_INTERFACE=127.0.0.1
ERL_MAX_PORTS=65536
ERL_PROCESSES=1000000
POLL=true
EJABBERD_BYPASS_WARNINGS=true
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_PID_PATH=$d/ejabberd.pid
EOF
    cat >"$d/ejabberd.yml" <<EOF
# ejabberd benchmark configuration (written by interop/bench/setup.sh).
hosts:
  - "$DOMAIN"
loglevel: warning
log_rotate_count: 0
certfiles:
  - "$d/server.pem"
ca_file: "$d/ca.pem"
# Caches sized for the session counts benchmarked (the default of 1,000 entries
# makes ejabberd shrink its roster cache continuously beyond 1,000 users).
cache_size: 50000
c2s_protocol_options:
  - "no_sslv3"
  - "no_tlsv1"
  - "no_tlsv1_1"
  - "cipher_server_preference"
  - "no_compression"
listen:
  -
    port: $EJABBERD_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 1024
    max_stanza_size: 262144
    shaper: none
    access: c2s
    starttls_required: true
  -
    port: $EJABBERD_HTTP_PORT
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /api: mod_http_api
disable_sasl_mechanisms:
  - "digest-md5"
  - "X-OAUTH2"
auth_method: internal
auth_password_format: scram
acl:
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  local:
    allow: all
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
  "bench provisioning":
    from:
      - mod_http_api
    who:
      ip: 127.0.0.1/8
    what:
      - register
      - registered_users
      - connected_users_number
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 1000
modules:
  mod_roster: {}
  mod_offline: {}
  mod_disco: {}
  mod_ping: {}
  mod_carboncopy: {}
  mod_blocking: {}
  mod_privacy: {}
  mod_stream_mgmt: {}
  mod_http_api: {}
EOF
    cat >"$d/inetrc" <<EOF
{lookup,["file","native"]}.
{host,{127,0,0,1}, ["localhost"]}.
{file, resolv, "/etc/resolv.conf"}.
EOF
    # ejabberd runs as user ejabberd when started by root.
    chown -R ejabberd:ejabberd "$d"
    chmod 755 "$BENCH_DIR"
}

provision() {
    local csv=$BENCH_DIR/accounts.csv t0
    python3 -c "
import sys
n = int(sys.argv[1])
with open(sys.argv[2], 'w') as f:
    for i in range(n):
        f.write(f'user{i},pass{i}\n')
" "$N" "$csv"

    if wanted herald; then
        t0=$(date +%s.%N)
        rm -f "$BENCH_DIR/herald/data/herald.db"*
        "$HERALD_BIN" user --config "$BENCH_DIR/herald/herald.toml" import "$csv" 2>/dev/null | tail -1
        log "herald: $N accounts in $(since "$t0") s (herald user import)"
        t0=$(date +%s.%N)
        python3 "$BENCH_SRC/provision_rosters.py" herald-csv "$N" "$ROSTER_K" "$CHUNK" "$BENCH_DIR/contacts.csv"
        "$HERALD_BIN" roster --config "$BENCH_DIR/herald/herald.toml" import "$BENCH_DIR/contacts.csv" 2>/dev/null | tail -1
        log "herald: roster ring in $(since "$t0") s (herald roster import)"
    fi
    wanted prosody && provision_prosody
    wanted ejabberd && provision_ejabberd
    return 0
}

provision_prosody() {
    local t0
    t0=$(date +%s.%N)
    rm -rf "$BENCH_DIR/prosody/data"
    mkdir -p "$BENCH_DIR/prosody/data"
    python3 "$BENCH_SRC/provision_prosody.py" "$BENCH_DIR/prosody/data" "$DOMAIN" 0 "$N"
    python3 "$BENCH_SRC/provision_rosters.py" prosody "$N" "$ROSTER_K" "$CHUNK" "$BENCH_DIR/prosody/data" "$DOMAIN"
    log "prosody: $N accounts and the roster ring in $(since "$t0") s (files written directly)"
}

provision_ejabberd() {
    local t0 part pie="$BENCH_DIR/ejabberd/piefxis"
    rm -rf "$BENCH_DIR/ejabberd/spool" "$pie"
    mkdir -p "$BENCH_DIR/ejabberd/spool"
    chown ejabberd:ejabberd "$BENCH_DIR/ejabberd/spool"
    # Accounts and rosters as XEP-0227 files, read by the ejabberd node itself.
    python3 "$BENCH_SRC/provision_rosters.py" piefxis "$N" "$ROSTER_K" "$CHUNK" "$pie" "$DOMAIN"
    chmod -R a+rX "$pie"
    start_server ejabberd
    t0=$(date +%s.%N)
    for part in "$pie"/part-*.xml; do
        "$BENCH_SRC/ejctl.sh" import_piefxis "$part" >/dev/null || {
            stop_server ejabberd
            die "ejabberd: import_piefxis $part failed (see $BENCH_DIR/ejabberd/log)"
        }
    done
    log "ejabberd: $N accounts and the roster ring in $(since "$t0") s (ejabberdctl import_piefxis)"
    stop_server ejabberd
}

# Roster ring: written directly above; here every user logs in and the generator
# checks its roster over XMPP, subscribing only where a contact is missing.
setup_rosters() {
    local server procs p users offset port pids
    for server in $SERVERS; do
        if [[ " ${SKIP_CHECK:-} " == *" $server "* ]]; then
            log "$server: roster check over XMPP skipped (SKIP_CHECK)"
            continue
        fi
        rm -f "$BENCH_DIR"/setup-"$server"-*
        start_server "$server"
        port=$(server_port "$server")
        procs=$(procs_for "$N")
        pids=()
        for ((p = 0; p < procs; p++)); do
            offset=$((p * CHUNK))
            users=$((N - offset < CHUNK ? N - offset : CHUNK))
            (ulimit -n "$FD_LIMIT" && exec "$LOADGEN_BIN" --server "127.0.0.1:$port" \
                --domain "$DOMAIN" --ca "$CA" --users "$users" --offset "$offset" \
                --connect-rate $((200 / procs + 1)) --setup-rosters "$ROSTER_K" \
                --setup-timeout $((N / 20 + 300 > 3600 ? 3600 : N / 20 + 300)) \
                --duration 0 --drain 0 --source-ips "$(source_ips_for "$p")" \
                --label "$server-setup" --json) >"$BENCH_DIR/setup-$server-$p.json" \
                2>"$BENCH_DIR/setup-$server-$p.err" &
            pids+=($!)
        done
        for p in "${pids[@]}"; do
            wait "$p" || true
        done
        local ok=0
        python3 - "$server" "$BENCH_DIR"/setup-"$server"-*.json <<'PY' || ok=1
import json, sys
done = total = est = 0
for path in sys.argv[2:]:
    for line in open(path):
        if line.startswith("{"):
            r = json.loads(line)
            est += r["established"]
            done += r.get("rosters_complete", 0)
            total += r.get("rosters_total", 0)
print(f"[bench] {sys.argv[1]}: rosters complete for {done}/{total} users ({est} sessions)", file=sys.stderr)
sys.exit(0 if total and done == total else 1)
PY
        stop_server "$server"
        ((ok == 0)) || die "$server: roster setup incomplete (see $BENCH_DIR/setup-$server-*)"
    done
}

# Whether a server is among $SERVERS (default: all three).
wanted() {
    [[ " $SERVERS " == *" $1 "* ]]
}

main() {
    install_packages
    build_binaries
    mkdir -p "$BENCH_DIR"
    chmod 755 "$BENCH_DIR"
    write_herald_config
    make_pki
    write_prosody_config
    write_ejabberd_config
    local want="N=$N K=$ROSTER_K CHUNK=$CHUNK SERVERS=$SERVERS"
    if [[ $(cat "$BENCH_DIR/provisioned" 2>/dev/null) == "$want" && ${FORCE:-0} != 1 ]]; then
        log "accounts and rosters already provisioned ($want)"
        return 0
    fi
    rm -f "$BENCH_DIR/provisioned"
    provision
    setup_rosters
    echo "$want" >"$BENCH_DIR/provisioned"
    log "setup done: $want in $BENCH_DIR"
}

main
