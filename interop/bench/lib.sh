# Shared settings and helpers of the benchmark scripts (sourced, not run).
# Every server listens on 127.0.0.1 only; every wait below is bounded.

BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_SRC/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/herald-bench}
DOMAIN=localhost

HERALD_PORT=${HERALD_PORT:-5222}
HERALD_ADMIN_PORT=${HERALD_ADMIN_PORT:-5290}
PROSODY_PORT=${PROSODY_PORT:-15222}
EJABBERD_PORT=${EJABBERD_PORT:-25222}
EJABBERD_HTTP_PORT=${EJABBERD_HTTP_PORT:-25280}
EJABBERD_DIST_PORT=${EJABBERD_DIST_PORT:-25299}
EJABBERD_NODE=${EJABBERD_NODE:-heraldbench@localhost}
# The private epmd the tsung step starts (and stops) for tsung's Erlang node, so it
# never starts, shares or stops the machine's own epmd on 4369.
TSUNG_EPMD_PORT=${TSUNG_EPMD_PORT:-24369}

HERALD_BIN=${HERALD_BIN:-$REPO/target/release/herald}
LOADGEN_BIN=${LOADGEN_BIN:-$REPO/target/release/herald-loadgen}

TLS_DIR=$BENCH_DIR/herald/data/tls
CA=$TLS_DIR/dev-ca.pem
CERT=$TLS_DIR/server.pem
KEY=$TLS_DIR/server.key

# Open files per process (the hard limit here is 20,000).
FD_LIMIT=${FD_LIMIT:-20000}
# Most users per generator process; more users means more processes. The roster ring
# wraps within each chunk, so setup and runs must use the same value.
CHUNK=${CHUNK:-5000}
# Contacts per user made by the roster setup.
ROSTER_K=${ROSTER_K:-30}
# Which servers to provision and measure (a subset speeds up large single-server runs).
export SERVERS=${SERVERS:-herald prosody ejabberd}

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# True when something listens on 127.0.0.1:PORT (no connection is made).
listening() {
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# wait_listen PORT SECS [PID]: until the port listens; fails on timeout or if PID died.
wait_listen() {
    local port=$1 secs=$2 pid=${3:-} i
    for ((i = 0; i < secs * 10; i++)); do
        listening "$port" && return 0
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# wait_gone PID SECS: until the process has exited.
wait_gone() {
    local pid=$1 secs=$2 i
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# Descendant of PID whose command name is NAME (first found, breadth first).
descendant_named() {
    local root=$1 name=$2 queue=("$1") p c
    while ((${#queue[@]})); do
        p=${queue[0]}
        queue=("${queue[@]:1}")
        for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do
            if [[ $(ps -o comm= -p "$c" 2>/dev/null) == "$name" ]]; then
                echo "$c"
                return 0
            fi
            queue+=("$c")
        done
    done
    [[ $(ps -o comm= -p "$root" 2>/dev/null) == "$name" ]] && echo "$root"
}

rss_kib() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null
}

need_port_free() {
    if listening "$1"; then
        die "port $1 is already in use (another server running?); set ${2}_PORT to another port"
    fi
}

# start_server NAME: starts it in the background with a raised open-files limit and
# sets SERVER_PID (the process whose memory is measured) and WRAPPER_PID.
start_server() {
    local name=$1
    SERVER_PID='' WRAPPER_PID=''
    case $name in
    herald)
        need_port_free "$HERALD_PORT" HERALD
        (ulimit -n "$FD_LIMIT" && exec "$HERALD_BIN" serve --config "$BENCH_DIR/herald/herald.toml") \
            >>"$BENCH_DIR/herald/herald.log" 2>&1 &
        WRAPPER_PID=$!
        SERVER_PID=$WRAPPER_PID
        wait_listen "$HERALD_PORT" 30 "$WRAPPER_PID" || die "herald did not start (see $BENCH_DIR/herald/herald.log)"
        ;;
    prosody)
        need_port_free "$PROSODY_PORT" PROSODY
        (ulimit -n "$FD_LIMIT" && exec prosody -F --config "$BENCH_DIR/prosody/prosody.cfg.lua") \
            >>"$BENCH_DIR/prosody/console.log" 2>&1 &
        WRAPPER_PID=$!
        SERVER_PID=$WRAPPER_PID
        wait_listen "$PROSODY_PORT" 30 "$WRAPPER_PID" || die "prosody did not start (see $BENCH_DIR/prosody/)"
        ;;
    ejabberd)
        need_port_free "$EJABBERD_PORT" EJABBERD
        # setpriv, not su (which ejabberdctl uses as root): su resets the open-files
        # limit through PAM, and ejabberd then fails near 1,000 sessions.
        (ulimit -n "$FD_LIMIT" && exec setpriv --reuid=ejabberd --regid=ejabberd --init-groups \
            env HOME=/var/lib/ejabberd "$BENCH_SRC/ejctl.sh" foreground) \
            >>"$BENCH_DIR/ejabberd/console.log" 2>&1 &
        WRAPPER_PID=$!
        wait_listen "$EJABBERD_PORT" 90 "$WRAPPER_PID" || die "ejabberd did not start (see $BENCH_DIR/ejabberd/)"
        SERVER_PID=$(descendant_named "$WRAPPER_PID" beam.smp)
        [[ -n $SERVER_PID ]] || die "no beam.smp under pid $WRAPPER_PID"
        ;;
    *) die "unknown server $name" ;;
    esac
    log "$name started (pid $SERVER_PID, open files $(awk '/Max open files/ {print $4}' "/proc/$SERVER_PID/limits"))"
}

# stop_server NAME: graceful stop, then TERM and KILL of the processes started above.
stop_server() {
    local name=$1
    [[ -n ${WRAPPER_PID:-} ]] || return 0
    case $name in
    ejabberd)
        timeout 30 "$BENCH_SRC/ejctl.sh" stop >/dev/null 2>&1 || true
        wait_gone "$SERVER_PID" 20 || kill -TERM "$SERVER_PID" 2>/dev/null || true
        ;;
    *)
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        ;;
    esac
    if ! wait_gone "$SERVER_PID" 20; then
        log "$name did not stop in 20 s: killing pid $SERVER_PID"
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait_gone "$SERVER_PID" 5 || true
    fi
    wait "$WRAPPER_PID" 2>/dev/null || true
    SERVER_PID='' WRAPPER_PID=''
}

# purge_offline NAME: drops the offline messages an earlier run left behind (messages
# still queued when its sessions closed), so they are not delivered at the next logins.
# Herald and Prosody are stopped at this point; ejabberd must be running.
purge_offline() {
    case $1 in
    herald)
        python3 - "$BENCH_DIR/herald/data/herald.db" <<'PY' || log "herald: offline messages not purged"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
n = c.execute("DELETE FROM offline_messages").rowcount
c.commit()
if n:
    print(f"[bench] herald: purged {n} offline message(s)", file=sys.stderr)
PY
        ;;
    prosody)
        rm -rf "$BENCH_DIR/prosody/data/$DOMAIN/offline"
        ;;
    ejabberd)
        timeout 60 "$BENCH_SRC/ejctl.sh" delete_old_messages 0 >/dev/null 2>&1 ||
            log "ejabberd: offline messages not purged"
        ;;
    esac
}

server_port() {
    case $1 in
    herald) echo "$HERALD_PORT" ;;
    prosody) echo "$PROSODY_PORT" ;;
    ejabberd) echo "$EJABBERD_PORT" ;;
    esac
}

# Generator processes needed for N users.
procs_for() {
    echo $((($1 + CHUNK - 1) / CHUNK))
}

# Source addresses for generator process P (0-based): 127.0.0.<P+1> and one more per
# 10,000 sessions, so no address runs short of ephemeral ports.
source_ips_for() {
    local p=$1 a=$((10 + $1 * 4))
    echo "127.0.0.1,127.0.$p.$((a + 1)),127.0.$p.$((a + 2)),127.0.$p.$((a + 3))"
}

build_binaries() {
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        log "building release binaries"
        (cd "$REPO" && cargo build --release -p herald-interop -p herald-edge) >&2 || die "build failed"
    fi
    [[ -x $HERALD_BIN && -x $LOADGEN_BIN ]] || die "missing $HERALD_BIN or $LOADGEN_BIN"
}

# Seconds since a `date +%s.%N` stamp, one decimal.
since() {
    awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}
