-- raftlog: append one record per request to stream "bench" as a JSON batch, the value
-- VALUE_BYTES bytes of text (default 256).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local size = tonumber(os.getenv("VALUE_BYTES") or "256")
wrk.method = "POST"
wrk.path = "/v1/streams/bench/records"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"records":[{"value":"' .. string.rep("x", size) .. '"}]}'
