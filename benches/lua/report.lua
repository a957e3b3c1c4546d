-- Shared by the compare-etcd.sh scripts: at the end of a wrk run, one machine-readable line
--   RESULT <requests/s> <p50 ms> <p99 ms> <errors> <requests>
-- Errors are wrk's connect/read/write/timeout errors plus non-2xx/3xx answers; requests/s
-- counts every answered request, so a run with errors says so in its own column.
done = function(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  local seconds = summary.duration / 1e6
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d\n",
    summary.requests / seconds,
    latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    errors, summary.requests))
end
