#!/usr/bin/env bash
# raftlog next to etcd on this machine (issue 7, and the read benchmark of issue 5).
#
# Starts a 3-node etcd cluster and a 3-node raftlog cluster on loopback, both with fsync on
# and default settings, and drives each one's leader with wrk and the Lua scripts in
# benches/lua/, alternating the two systems run by run so that both see the same machine:
#   - writes, one 256-byte value per request, at 1, 8, 64 and 256 connections;
#   - writes of 1 KiB values at 64 connections;
#   - reads at 64 connections: raftlog linearizable vs etcd linearizable, raftlog lease and
#     stale vs etcd serializable.
# raftlog appends are JSON batches of one record (POST /v1/streams/bench/records); etcd puts
# go through its JSON gateway (POST /v3/kv/put), so both parse JSON per request.
# Prints one line per run and, at the end, a table with each system's median over the
# passes and the raftlog/etcd throughput ratio.
#
# Environment:
#   RAFTLOG   the raftlog binary (default: $CARGO_TARGET_DIR or ./target, release; built if
#             missing)
#   DURATION  seconds per run (15)       PASSES  passes over every case (1)
#   CASES     a space-separated subset of the case names below (all)
#   KEEP=1    keep the work directory (logs, data) instead of deleting it
#   TMPDIR    where the work directory (both clusters' data) goes (/tmp); /dev/shm takes
#             the disk out of the measurement
#
# Always stops every process it started and deletes its work directory, however it ends.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LUA="$ROOT/benches/lua"
# shellcheck source=benches/raftlog-cluster.sh
source "$ROOT/benches/raftlog-cluster.sh"
DURATION=${DURATION:-15}
PASSES=${PASSES:-1}
ALL_CASES="put256-c1 put256-c8 put256-c64 put256-c256 put1k-c64 read-linearizable-c64 read-lease-c64 read-stale-c64"
CASES=${CASES:-$ALL_CASES}
RAFTLOG=${RAFTLOG:-${CARGO_TARGET_DIR:-$ROOT/target}/release/raftlog}

# Ports well away from `raftlog dev` (7001) and a default etcd (2379).
ETCD_CLIENT=(12379 12389 12399)
ETCD_PEER=(12380 12390 12400)
RAFTLOG_HTTP=(17101 17102 17103)
RAFTLOG_PEER=(18101 18102 18103)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/compare-etcd.XXXXXX")
PIDS=()

cleanup() {
    local status=$?
    stop_processes
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "compare-etcd: $*" >&2; }

install_missing() {
    local missing=()
    command -v etcd >/dev/null || missing+=(etcd-server)
    command -v etcdctl >/dev/null || missing+=(etcd-client)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v curl >/dev/null || missing+=(curl)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if [ ! -x "$RAFTLOG" ]; then
        log "building $RAFTLOG"
        (cd "$ROOT" && cargo build --release --bin raftlog)
    fi
}

start_etcd() {
    local cluster="" i
    for i in 0 1 2; do
        cluster+="${cluster:+,}e$((i + 1))=http://127.0.0.1:${ETCD_PEER[$i]}"
    done
    for i in 0 1 2; do
        local name="e$((i + 1))"
        # Default settings: fsync on, default snapshot and batching; only addresses set.
        etcd --name "$name" --data-dir "$WORK/etcd/$name" \
            --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT[$i]}" \
            --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT[$i]}" \
            --listen-peer-urls "http://127.0.0.1:${ETCD_PEER[$i]}" \
            --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER[$i]}" \
            --initial-cluster "$cluster" --initial-cluster-token compare-etcd \
            --initial-cluster-state new --logger zap --log-level warn \
            >"$WORK/etcd-$name.log" 2>&1 &
        PIDS+=($!)
    done
}

# The URL of etcd's leader, once there is one.
etcd_leader() {
    local endpoints="" i
    for i in 0 1 2; do endpoints+="${endpoints:+,}http://127.0.0.1:${ETCD_CLIENT[$i]}"; done
    for _ in $(seq 150); do
        # -w simple: endpoint, id, version, db size, is leader, is learner, ...
        local leader
        leader=$(etcdctl --endpoints "$endpoints" endpoint status -w simple 2>/dev/null |
            awk -F', ' '$5 == "true" {print $1}') || true
        if [ -n "$leader" ]; then
            echo "$leader"
            return
        fi
        sleep 0.2
    done
    log "etcd elected no leader"
    return 1
}

value_b64() { head -c "$1" /dev/zero | tr '\0' x | base64 -w0; }

# run SYSTEM CASE: one wrk run; prints "RESULT rps p50 p99 errors requests".
run_case() {
    local system=$1 case=$2
    local connections=${case##*-c}
    local threads=$((connections < 2 ? 1 : 2))
    local script url
    local -a env=()
    case "$system:$case" in
        raftlog:put256-*) script=raftlog-append.lua env=(VALUE_BYTES=256) ;;
        raftlog:put1k-*) script=raftlog-append.lua env=(VALUE_BYTES=1024) ;;
        raftlog:read-*) script=raftlog-read.lua env=("CONSISTENCY=$(echo "$case" | cut -d- -f2)") ;;
        etcd:put256-*) script=etcd-put.lua env=("VALUE_B64=$(value_b64 256)") ;;
        etcd:put1k-*) script=etcd-put.lua env=("VALUE_B64=$(value_b64 1024)") ;;
        etcd:read-linearizable-*) script=etcd-range.lua env=(SERIALIZABLE=false) ;;
        etcd:read-*) script=etcd-range.lua env=(SERIALIZABLE=true) ;;
        *) log "unknown case $case"; exit 2 ;;
    esac
    if [ "$system" = raftlog ]; then url=$RAFTLOG_URL; else url=$ETCD_URL; fi
    env "${env[@]}" wrk -t"$threads" -c"$connections" -d"${DURATION}s" --timeout 10s \
        -s "$LUA/$script" "$url" | grep '^RESULT' || echo "RESULT 0 nan nan -1 0"
}

# What each system is compared on, for the table.
etcd_side() {
    case "$1" in
        read-linearizable-*) echo "linearizable range" ;;
        read-*) echo "serializable range" ;;
        *) echo "put" ;;
    esac
}

# The median of the numbers on stdin (the lower middle one for an even count).
median() { sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print "nan"}'; }

main() {
    install_missing
    log "work directory $WORK"
    start_etcd
    raftlog_start "$RAFTLOG" "$WORK/raftlog" compare-etcd
    # On failure keep the work directory: its logs say why.
    ETCD_URL=$(etcd_leader) || { KEEP=1; exit 1; }
    RAFTLOG_URL=$(raftlog_leader) || { KEEP=1; exit 1; }
    log "etcd leader $ETCD_URL, raftlog leader $RAFTLOG_URL"
    # The key and record the read cases read.
    curl -sf -X POST "$ETCD_URL/v3/kv/put" -d "{\"key\":\"YmVuY2g=\",\"value\":\"$(value_b64 256)\"}" >/dev/null

    local commit
    commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    echo "# compare-etcd: raftlog $commit ($RAFTLOG), $(etcd --version | head -1), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
    echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg); ${DURATION} s per run, $PASSES pass(es)"
    local results="$WORK/results.txt" pass case system order
    : >"$results"
    for pass in $(seq "$PASSES"); do
        for case in $CASES; do
            # Alternate which system goes first, so neither always runs on a warmer machine.
            if [ $((pass % 2)) = 1 ]; then order="raftlog etcd"; else order="etcd raftlog"; fi
            for system in $order; do
                local line
                line=$(run_case "$system" "$case")
                # RESULT rps p50 p99 errors requests
                echo "$case $system $pass ${line#RESULT }" | tee -a "$results"
            done
        done
    done
    echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    printf '%-22s %-20s %12s %8s %8s %12s %8s %8s %7s\n' case "etcd side" "raftlog r/s" "p50 ms" "p99 ms" \
        "etcd r/s" "p50 ms" "p99 ms" ratio
    for case in $CASES; do
        local -a r e
        for system in raftlog etcd; do
            local rps p50 p99
            rps=$(awk -v c="$case" -v s="$system" '$1 == c && $2 == s {print $4}' "$results" | median)
            p50=$(awk -v c="$case" -v s="$system" '$1 == c && $2 == s {print $5}' "$results" | median)
            p99=$(awk -v c="$case" -v s="$system" '$1 == c && $2 == s {print $6}' "$results" | median)
            if [ "$system" = raftlog ]; then r=("$rps" "$p50" "$p99"); else e=("$rps" "$p50" "$p99"); fi
        done
        local ratio
        ratio=$(awk -v a="${r[0]}" -v b="${e[0]}" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')
        printf '%-22s %-20s %12.0f %8.2f %8.2f %12.0f %8.2f %8.2f %7s\n' "$case" "$(etcd_side "$case")" \
            "${r[0]}" "${r[1]}" "${r[2]}" "${e[0]}" "${e[1]}" "${e[2]}" "$ratio"
    done
    local errors
    errors=$(awk '$7 != 0 {n++} END {print n + 0}' "$results")
    if [ "$errors" != 0 ]; then
        echo "# $errors run(s) had errors (column 7 of the lines above)"
    fi
}

main "$@"
