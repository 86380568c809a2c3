#!/usr/bin/env bash
# Runs the same load against Herald, Prosody and ejabberd, one after the other on this
# machine, then a tsung cross-check against Herald, and prints a comparison table.
#
# Usage: run.sh [N]   (default 200; setup.sh N is run first when needed)
# Knobs (environment): CONNECT_RATE (sessions/s, default 200), HOLD (s idle with all
#   sessions up before the traffic, 5; server RSS is read SETTLE s into it),
#   MSG_RATE (messages/s across all sessions, 500), PRESENCE_RATE (changes/s, 20),
#   DURATION (traffic seconds, 20), DRAIN (5), SETTLE (s before reading RSS, 3),
#   SERVERS ("herald prosody ejabberd"), SKIP_TSUNG=1, SKIP_BUILD=1, CHUNK (5000 users
#   per generator process), BENCH_DIR (/tmp/herald-bench).
# Every wait is bounded; generator processes that outlive their budget are killed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-200}
[[ $N =~ ^[0-9]+$ ]] && ((N >= 2 && N <= 100000)) || die "N must be between 2 and 100000"
CONNECT_RATE=${CONNECT_RATE:-200}
HOLD=${HOLD:-5}
MSG_RATE=${MSG_RATE:-500}
PRESENCE_RATE=${PRESENCE_RATE:-20}
DURATION=${DURATION:-20}
DRAIN=${DRAIN:-5}
SETTLE=${SETTLE:-3}

build_binaries
if [[ $(cat "$BENCH_DIR/provisioned" 2>/dev/null) != "N=$N K=$ROSTER_K CHUNK=$CHUNK SERVERS=$SERVERS" ]]; then
    SKIP_BUILD=1 "$BENCH_SRC/setup.sh" "$N"
fi

RES=$BENCH_DIR/results/$(date +%Y%m%d-%H%M%S)-N$N
mkdir -p "$RES"
log "results in $RES"
cat >"$RES/params.json" <<EOF
{"n": $N, "connect_rate": $CONNECT_RATE, "hold": $HOLD, "msg_rate": $MSG_RATE,
 "presence_rate": $PRESENCE_RATE, "duration": $DURATION, "drain": $DRAIN,
 "roster_k": $ROSTER_K, "chunk": $CHUNK, "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "host": "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)",
 "herald_commit": "$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$REPO" && git diff --quiet 2>/dev/null || echo +dirty)"}
EOF

# Kills (by pid) generator processes still running.
kill_pids() {
    local p
    for p in "$@"; do
        kill -TERM "$p" 2>/dev/null || true
    done
}

bench_one() {
    local server=$1 port procs p users offset pids=() rss_before rss_up i budget ready loadavg
    [[ $server == ejabberd ]] || purge_offline "$server"
    start_server "$server"
    [[ $server != ejabberd ]] || purge_offline "$server"
    port=$(server_port "$server")
    sleep 1
    rss_before=$(rss_kib "$SERVER_PID")
    # Other work on the machine skews every figure: keep the load average with them.
    loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
    procs=$(procs_for "$N")
    rm -f "$RES/$server.go"
    for ((p = 0; p < procs; p++)); do
        offset=$((p * CHUNK))
        users=$((N - offset < CHUNK ? N - offset : CHUNK))
        (ulimit -n "$FD_LIMIT" && exec "$LOADGEN_BIN" --server "127.0.0.1:$port" \
            --domain "$DOMAIN" --ca "$CA" --users "$users" --offset "$offset" \
            --connect-rate "$(awk -v r="$CONNECT_RATE" -v p="$procs" 'BEGIN { print r / p }')" \
            --hold 0 --duration "$DURATION" --drain "$DRAIN" \
            --msg-rate "$(awk -v r="$MSG_RATE" -v p="$procs" 'BEGIN { print r / p }')" \
            --presence-rate "$(awk -v r="$PRESENCE_RATE" -v p="$procs" 'BEGIN { print r / p }')" \
            --source-ips "$(source_ips_for "$p")" --server-pid "$SERVER_PID" \
            --ready-file "$RES/$server.$p.ready" --go-file "$RES/$server.go" \
            --label "$server" --json) >"$RES/$server.$p.json" 2>"$RES/$server.$p.err" &
        pids+=($!)
    done
    # All generators logged in (or gave up): let the server settle, read its memory,
    # then start the traffic everywhere at once.
    # A slow server may log users in at a quarter of CONNECT_RATE (as the generator allows).
    budget=$(awk -v n="$N" -v r="$CONNECT_RATE" 'BEGIN { printf "%d", n / r * 4 + 130 }')
    for ((i = 0; i < budget * 10; i++)); do
        ready=0
        for ((p = 0; p < procs; p++)); do
            [[ -s $RES/$server.$p.ready ]] && ready=$((ready + 1))
        done
        ((ready == procs)) && break
        sleep 0.1
    done
    ((ready == procs)) || log "$server: only $ready/$procs generators ready after ${budget}s"
    sleep "$SETTLE"
    rss_up=$(rss_kib "$SERVER_PID")
    # The rest of the hold, then every generator starts its traffic at the same moment.
    sleep "$(awk -v h="$HOLD" -v s="$SETTLE" 'BEGIN { print (h > s ? h - s : 0) }')"
    touch "$RES/$server.go"
    budget=$(awk -v h="$HOLD" -v d="$DURATION" -v dr="$DRAIN" 'BEGIN { printf "%d", h + d + dr + 60 }')
    for ((i = 0; i < budget * 10; i++)); do
        local alive=0
        for p in "${pids[@]}"; do
            kill -0 "$p" 2>/dev/null && alive=1
        done
        ((alive)) || break
        sleep 0.1
    done
    kill_pids "${pids[@]}"
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    cat >"$RES/$server.meta.json" <<EOF
{"server": "$server", "pid": $SERVER_PID, "procs": $procs, "rss_before_kib": ${rss_before:-null}, "rss_up_kib": ${rss_up:-null}, "loadavg": "$loadavg"}
EOF
    stop_server "$server"
    log "$server: done"
}

# tsung cross-check against Herald: N sessions at CONNECT_RATE (STARTTLS, SASL PLAIN,
# bind, session, presence, roster), held HOLD+10 s; the sessions it reports and the
# peak of Herald's own session gauge are compared with herald-loadgen's figure.
tsung_check() {
    local dir=$RES/tsung xml epmd_pid peak=0 v tpid i secs
    mkdir -p "$dir/log"
    python3 -c "
import sys
n = int(sys.argv[1])
with open(sys.argv[2], 'w') as f:
    for i in range(n):
        f.write(f'user{i};pass{i}\n')
" "$N" "$dir/users.csv"
    # tsung's arrivals are random (Poisson): give the phase twice the time and let
    # maxnumber stop it at N users.
    secs=$(awk -v n="$N" -v r="$CONNECT_RATE" 'BEGIN { printf "%d", 2 * n / r + 2 }')
    sed -e "s|@PORT@|$HERALD_PORT|g" -e "s|@DOMAIN@|$DOMAIN|g" -e "s|@USERS@|$N|g" \
        -e "s|@RATE@|$CONNECT_RATE|g" -e "s|@PHASE_SECS@|$secs|g" \
        -e "s|@HOLD@|$((HOLD + 10))|g" -e "s|@CSV@|$dir/users.csv|g" \
        "$BENCH_SRC/tsung/connect.xml.in" >"$dir/connect.xml"
    start_server herald
    # tsung's Erlang node needs an epmd. Left alone, erl would use the machine's epmd on
    # 4369 or start one with `epmd -daemon`, which this script could then only stop by
    # name. Instead: our own epmd, in the foreground as a child whose pid we keep, on a
    # private port (ERL_EPMD_PORT, inherited by tsung's erl), stopped by that pid.
    if listening "$TSUNG_EPMD_PORT"; then
        log "tsung: port $TSUNG_EPMD_PORT (TSUNG_EPMD_PORT) is taken; not running tsung"
        stop_server herald
        return 1
    fi
    epmd -port "$TSUNG_EPMD_PORT" -address 127.0.0.1 >"$dir/epmd.out" 2>&1 &
    epmd_pid=$!
    # Until it listens (bounded), so that erl finds it instead of starting another.
    if ! wait_listen "$TSUNG_EPMD_PORT" 10 "$epmd_pid"; then
        log "tsung: the private epmd on port $TSUNG_EPMD_PORT did not start (see $dir/epmd.out)"
        kill -TERM "$epmd_pid" 2>/dev/null || true
        wait "$epmd_pid" 2>/dev/null || true
        stop_server herald
        return 1
    fi
    (ulimit -n "$FD_LIMIT" && cd "$dir" && export ERL_EPMD_PORT=$TSUNG_EPMD_PORT &&
        exec timeout $((secs + HOLD + 120)) \
        tsung -f "$dir/connect.xml" -l "$dir/log" start) >"$dir/tsung.out" 2>&1 &
    tpid=$!
    # Sample Herald's session gauge while tsung runs.
    for ((i = 0; i < (secs + HOLD + 130) * 2; i++)); do
        kill -0 "$tpid" 2>/dev/null || break
        v=$(curl -s --max-time 2 -H "Authorization: Bearer $(cat "$BENCH_DIR/herald/data/admin.token")" \
            "http://127.0.0.1:$HERALD_ADMIN_PORT/metrics" |
            awk '/^herald_c2s_sessions / {print $2; exit}' || true)
        [[ -n $v ]] && awk -v a="$v" -v b="$peak" 'BEGIN { exit !(a > b) }' && peak=${v%.*}
        sleep 0.5
    done
    wait "$tpid" 2>/dev/null || true
    stop_server herald
    # Our epmd, by the pid we started it with (nothing else is touched).
    kill -TERM "$epmd_pid" 2>/dev/null || true
    wait "$epmd_pid" 2>/dev/null || true
    echo "{\"herald_sessions_peak\": $peak, \"users\": $N, \"rate\": $CONNECT_RATE}" >"$dir/peak.json"
    log "tsung: done (herald session gauge peak $peak)"
}

for s in $SERVERS; do
    bench_one "$s"
done
if [[ ${SKIP_TSUNG:-0} != 1 ]]; then
    tsung_check || log "tsung cross-check failed (see $RES/tsung)"
fi
python3 "$BENCH_SRC/report.py" "$RES" | tee "$RES/summary.txt"
