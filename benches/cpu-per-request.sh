#!/usr/bin/env bash
# CPU time per request of each node of a 3-process raftlog cluster, for an append (the write
# load of compare-etcd.sh: one 256-byte record per request) against GET /healthz (actix-web
# and loopback TCP with nothing behind them: what any request costs). Alternates the two
# loads on one cluster; one line per run:
#   LOAD req/s  leader µs/req  follower µs/req  follower µs/req  cluster µs/req
# CPU is user + system time from /proc/PID/stat over the run, divided by wrk's requests.
#
#   benches/cpu-per-request.sh BINARY
#
# Environment: CONNS (256), DURATION seconds per run (8), PASSES (2).
# shellcheck source=benches/raftlog-cluster.sh
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BINARY" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/benches/raftlog-cluster.sh"
CONNS=${CONNS:-256}
DURATION=${DURATION:-8}
PASSES=${PASSES:-2}
RAFTLOG_HTTP=(17701 17702 17703)
RAFTLOG_PEER=(18701 18702 18703)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cpu-per-request.XXXXXX")
PIDS=()
trap 'stop_processes; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

raftlog_start "$1" "$WORK" cpu-per-request
url=$(raftlog_leader)
port=${url##*:}
# The leader first, then the followers.
order=()
for i in 0 1 2; do
    if [ "${RAFTLOG_HTTP[$i]}" = "$port" ]; then order=("${PIDS[$i]}" "${order[@]}"); else order+=("${PIDS[$i]}"); fi
done
ticks_per_second=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

for _ in $(seq "$PASSES"); do
    for load in healthz append; do
        before=(); for pid in "${order[@]}"; do before+=("$(cpu_ticks "$pid")"); done
        if [ "$load" = healthz ]; then
            result=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" -s "$ROOT/benches/lua/report.lua" "$url/healthz")
        else
            result=$(VALUE_BYTES=256 wrk -t2 -c"$CONNS" -d"${DURATION}s" \
                -s "$ROOT/benches/lua/raftlog-append.lua" "$url")
        fi
        requests=$(echo "$result" | awk '/^RESULT/ {print $6}')
        line="$load $(echo "$result" | awk '/^RESULT/ {printf "%.0f", $2}') req/s"
        total=0
        for k in 0 1 2; do
            ticks=$(($(cpu_ticks "${order[$k]}") - ${before[$k]}))
            total=$((total + ticks))
            line+=" $(awk -v t="$ticks" -v n="$requests" -v hz="$ticks_per_second" \
                'BEGIN {printf "%.1f", t / hz / n * 1e6}')"
        done
        echo "$line $(awk -v t="$total" -v n="$requests" -v hz="$ticks_per_second" \
            'BEGIN {printf "%.1f", t / hz / n * 1e6}')  (µs/req: leader, followers, cluster)"
    done
done
