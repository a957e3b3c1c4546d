# A local 3-process raftlog cluster for the benchmark scripts (compare-etcd.sh,
# ab-writes.sh, cpu-per-request.sh), which source this file. The caller sets RAFTLOG_HTTP and
# RAFTLOG_PEER (three ports each) and a PIDS array, into which raftlog_start adds the
# processes it starts (and the caller any others, such as etcd's); stop_processes stops them.

# raftlog_start BINARY DIR CLUSTER_ID: writes DIR/node-N.toml — identity, addresses and
# members only, every tuning key at its default — and starts the three nodes, logging to
# DIR/node-N.log, with data in DIR/data-N.
raftlog_start() {
    local binary=$1 dir=$2 cluster_id=$3 i j
    mkdir -p "$dir"
    for i in 0 1 2; do
        local config="$dir/node-$((i + 1)).toml"
        {
            echo "id = $((i + 1))"
            echo "cluster_id = \"$cluster_id\""
            echo "data_dir = \"$dir/data-$((i + 1))\""
            echo "[http]"
            echo "listen = \"127.0.0.1:${RAFTLOG_HTTP[$i]}\""
            echo "[peer]"
            echo "listen = \"127.0.0.1:${RAFTLOG_PEER[$i]}\""
            for j in 0 1 2; do
                echo "[[members]]"
                echo "id = $((j + 1))"
                echo "peer = \"127.0.0.1:${RAFTLOG_PEER[$j]}\""
                echo "http = \"http://127.0.0.1:${RAFTLOG_HTTP[$j]}\""
            done
        } >"$config"
        RUST_LOG=warn "$binary" serve --config "$config" >"$dir/node-$((i + 1)).log" 2>&1 &
        PIDS+=($!)
    done
}

# raftlog_leader: prints the leader's URL once it has committed a write (to stream "bench");
# after 30 s without one, says so on stderr and fails.
raftlog_leader() {
    local leader
    for _ in $(seq 150); do
        leader=$(curl -sf "http://127.0.0.1:${RAFTLOG_HTTP[0]}/v1/cluster" |
            sed -n 's/.*"leader":{[^}]*"http":"\([^"]*\)".*/\1/p') || true
        if [ -n "$leader" ] && curl -sf -X POST "$leader/v1/streams/bench/records" \
            -H 'content-type: application/json' -d '{"records":[{"value":"first"}]}' >/dev/null; then
            echo "${leader%/}"
            return
        fi
        sleep 0.2
    done
    echo "raftlog elected no leader" >&2
    return 1
}

# stop_processes: stops the processes in PIDS — SIGTERM, up to 10 s each for a clean stop,
# then SIGKILL, so a hung process cannot hang the script — and empties it.
stop_processes() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
