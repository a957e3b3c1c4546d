-- raftlog: read the record at offset 0 of stream "bench" at CONSISTENCY (linearizable,
-- lease or stale), as etcd-range.lua reads one key.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local consistency = os.getenv("CONSISTENCY") or "linearizable"
wrk.method = "GET"
wrk.path = "/v1/streams/bench/records?from=0&limit=1&consistency=" .. consistency
