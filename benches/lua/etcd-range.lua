-- etcd: range read of key "bench" through the v3 JSON gateway; linearizable, or serializable
-- (local, no quorum) when SERIALIZABLE=true.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local serializable = os.getenv("SERIALIZABLE") == "true"
wrk.method = "POST"
wrk.path = "/v3/kv/range"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"key":"YmVuY2g="' .. (serializable and ',"serializable":true' or '') .. '}'
