#!/usr/bin/env bash
# raftlog's core benchmark next to openraft's `benchmarks/minimal` on this machine (issue 9),
# alternating the two run by run so that both see the same minutes.
#
#   OPENRAFT_BENCH=/path/to/openraft/benchmarks/minimal/target/release/bench \
#       benches/compare-openraft.sh
#
# openraft's benchmark is not part of this repository: build it from openraft's sources
# (github.com/databendlabs/openraft, `benchmarks/minimal`, against openraft 0.10.0-alpha.34)
# and give its binary in OPENRAFT_BENCH. Its default of 16 server threads costs it ~40% on
# the 2-core machines issue 9's figures come from, so it runs with 1 and with 2 (and one
# client thread), and the better of the two medians is its figure; raftlog's `core_bench`
# runs every node and client on one thread.
#
# Cases: 1, 64 and 256 clients with one write per call, and 256 clients with batches of 4.
# Prints one line per run and, at the end, each system's median ops/s per case and the
# raftlog/openraft ratio of the medians.
#
# Environment:
#   OPENRAFT_BENCH  openraft's bench binary (required)
#   CORE_BENCH      raftlog's core_bench (default: built with cargo, release)
#   PASSES          passes over every case (4); the order of the runs reverses each pass
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PASSES=${PASSES:-4}
OPENRAFT_BENCH=${OPENRAFT_BENCH:?set OPENRAFT_BENCH to openraft benchmarks/minimal bench binary}
if [ -z "${CORE_BENCH:-}" ]; then
    (cd "$ROOT" && cargo build --release --example core_bench)
    CORE_BENCH=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/core_bench
fi

# name, clients, batch, raftlog ops, openraft ops: each run takes a few seconds.
CASES=(
    "c1 1 1 100000 50000"
    "c64 64 1 2000000 2000000"
    "c256 256 1 2000000 2000000"
    "c256-b4 256 4 2000000 4000000"
)

raftlog_run() { # clients batch ops -> ops/s
    local batch_flag=()
    [ "$2" = 1 ] || batch_flag=(--batch "$2")
    "$CORE_BENCH" --clients "$1" "${batch_flag[@]}" --ops "$3" 2>&1 |
        sed -n 's/.*= \([0-9]*\) ops\/s.*/\1/p'
}

openraft_run() { # server_workers clients batch ops -> ops/s (its op/ms is too coarse at 1 client)
    "$OPENRAFT_BENCH" -m 3 --server-workers "$1" --client-workers 1 -c "$2" -b "$3" -n "$4" \
        2>/dev/null | sed -n 's/.* ns\/op: \([0-9]*\),.*/\1/p' | awk '{ printf "%d\n", 1e9 / $1 }'
}

RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT
for pass in $(seq "$PASSES"); do
    if [ $((pass % 2)) = 1 ]; then
        order=(raftlog openraft-sw1 openraft-sw2)
    else
        order=(openraft-sw2 openraft-sw1 raftlog)
    fi
    for case in "${CASES[@]}"; do
        read -r name clients batch raftlog_ops openraft_ops <<<"$case"
        for system in "${order[@]}"; do
            if [ "$system" = raftlog ]; then
                ops=$(raftlog_run "$clients" "$batch" "$raftlog_ops")
            else
                ops=$(openraft_run "${system#openraft-sw}" "$clients" "$batch" "$openraft_ops")
            fi
            echo "pass $pass $system $name ${ops:-failed}" | tee -a "$RESULTS"
        done
    done
done

median() { # system case -> the median of its runs' ops/s
    awk -v s="$1" -v c="$2" '$3 == s && $4 == c && $5 ~ /^[0-9]+$/ { print $5 }' "$RESULTS" |
        sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%d\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

echo
printf '%-8s %10s %14s %14s %14s %7s\n' case raftlog openraft-sw1 openraft-sw2 openraft ratio
for case in "${CASES[@]}"; do
    name=${case%% *}
    ours=$(median raftlog "$name")
    sw1=$(median openraft-sw1 "$name")
    sw2=$(median openraft-sw2 "$name")
    theirs=$(printf '%s\n%s\n' "${sw1:-0}" "${sw2:-0}" | sort -n | tail -1)
    ratio=$(awk -v a="${ours:-0}" -v b="${theirs:-0}" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
    printf '%-8s %10s %14s %14s %14s %7s\n' "$name" "${ours:--}" "${sw1:--}" "${sw2:--}" "$theirs" "$ratio"
done
