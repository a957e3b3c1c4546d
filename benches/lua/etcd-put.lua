-- etcd: put key "bench" through the v3 JSON gateway; the value is VALUE_B64 (base64 of
-- VALUE_BYTES bytes, computed by the shell script, since the gateway wants base64).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

wrk.method = "POST"
wrk.path = "/v3/kv/put"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"key":"YmVuY2g=","value":"' .. os.getenv("VALUE_B64") .. '"}'
