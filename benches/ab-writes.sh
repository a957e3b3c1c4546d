#!/usr/bin/env bash
# Two raftlog builds side by side under the write load of compare-etcd.sh: for each pass and
# each binary (the order swapped every pass), start a 3-process cluster on loopback with
# default settings, drive its leader with wrk (one 256-byte record per request) at each
# connection count, and stop it. One line per run:
#   pass P BINARY cC RESULT req/s p50_ms p99_ms errors requests
#
#   benches/ab-writes.sh OLD_BINARY NEW_BINARY
#
# Environment: PASSES (4), CONNS ("1 64 256"), DURATION seconds per run (10).
# Stops every process it started and deletes its work directory, however it ends (but keeps
# it, with the nodes' logs, when a cluster elects no leader).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 OLD_BINARY NEW_BINARY" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/raftlog-cluster.sh
source "$ROOT/benches/raftlog-cluster.sh"
PASSES=${PASSES:-4}
CONNS=${CONNS:-1 64 256}
DURATION=${DURATION:-10}
RAFTLOG_HTTP=(17201 17202 17203)
RAFTLOG_PEER=(18201 18202 18203)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ab-writes.XXXXXX")
PIDS=()
KEEP=0

trap 'stop_processes; [ "$KEEP" = 1 ] || rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

for pass in $(seq "$PASSES"); do
    if [ $((pass % 2)) = 1 ]; then order=("$1" "$2"); else order=("$2" "$1"); fi
    for binary in "${order[@]}"; do
        run_dir="$WORK/pass-$pass-$(basename "$binary")"
        raftlog_start "$binary" "$run_dir" ab-writes
        url=$(raftlog_leader) || { echo "ab-writes: logs in $run_dir" >&2; KEEP=1; exit 1; }
        for connections in $CONNS; do
            threads=$((connections < 2 ? 1 : 2))
            result=$(VALUE_BYTES=256 wrk -t"$threads" -c"$connections" -d"${DURATION}s" \
                --timeout 10s -s "$ROOT/benches/lua/raftlog-append.lua" "$url" |
                grep '^RESULT' || echo "RESULT 0 nan nan -1 0")
            echo "pass $pass $(basename "$binary") c$connections $result"
        done
        stop_processes
    done
done
