#!/usr/bin/env bash
# ejabberdctl against the benchmark's own ejabberd (config, spool and logs under
# $BENCH_DIR/ejabberd; Erlang distribution on a fixed port, so no epmd is started).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
exec ejabberdctl --config-dir "$BENCH_DIR/ejabberd" \
    --config "$BENCH_DIR/ejabberd/ejabberd.yml" \
    --ctl-config "$BENCH_DIR/ejabberd/ejabberdctl.cfg" \
    --logs "$BENCH_DIR/ejabberd/log" \
    --spool "$BENCH_DIR/ejabberd/spool" \
    --node "$EJABBERD_NODE" "$@"
