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
# Stops every process it started and deletes its work directory, however it ends.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 OLD_BINARY NEW_BINARY" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PASSES=${PASSES:-4}
CONNS=${CONNS:-1 64 256}
DURATION=${DURATION:-10}
HTTP=(17201 17202 17203)
PEER=(18201 18202 18203)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ab-writes.XXXXXX")
PIDS=()

stop_cluster() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
trap 'stop_cluster; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

start_cluster() {
    local binary=$1 data=$2 i j
    mkdir -p "$data"
    for i in 0 1 2; do
        {
            echo "id = $((i + 1))"
            echo 'cluster_id = "ab-writes"'
            echo "data_dir = \"$data/node-$((i + 1))\""
            echo "[http]"
            echo "listen = \"127.0.0.1:${HTTP[$i]}\""
            echo "[peer]"
            echo "listen = \"127.0.0.1:${PEER[$i]}\""
            for j in 0 1 2; do
                echo "[[members]]"
                echo "id = $((j + 1))"
                echo "peer = \"127.0.0.1:${PEER[$j]}\""
                echo "http = \"http://127.0.0.1:${HTTP[$j]}\""
            done
        } >"$data/node-$((i + 1)).toml"
        RUST_LOG=warn "$binary" serve --config "$data/node-$((i + 1)).toml" \
            >"$data/node-$((i + 1)).log" 2>&1 &
        PIDS+=($!)
    done
}

# The leader's URL, once it has committed a write.
leader() {
    local url
    for _ in $(seq 150); do
        url=$(curl -sf "http://127.0.0.1:${HTTP[0]}/v1/cluster" |
            sed -n 's/.*"leader":{[^}]*"http":"\([^"]*\)".*/\1/p') || true
        if [ -n "$url" ] && curl -sf -X POST "$url/v1/streams/bench/records" \
            -H 'content-type: application/json' -d '{"records":[{"value":"x"}]}' >/dev/null; then
            echo "${url%/}"
            return
        fi
        sleep 0.2
    done
    echo "ab-writes: no leader (logs in $WORK)" >&2
    return 1
}

for pass in $(seq "$PASSES"); do
    if [ $((pass % 2)) = 1 ]; then order=("$1" "$2"); else order=("$2" "$1"); fi
    for binary in "${order[@]}"; do
        start_cluster "$binary" "$WORK/pass-$pass-$(basename "$binary")"
        url=$(leader)
        for connections in $CONNS; do
            threads=$((connections < 2 ? 1 : 2))
            result=$(VALUE_BYTES=256 wrk -t"$threads" -c"$connections" -d"${DURATION}s" \
                --timeout 10s -s "$ROOT/benches/lua/raftlog-append.lua" "$url" |
                grep '^RESULT' || echo "RESULT 0 nan nan -1 0")
            echo "pass $pass $(basename "$binary") c$connections $result"
        done
        stop_cluster
    done
done
