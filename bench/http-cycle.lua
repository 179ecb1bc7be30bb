-- http-cycle.lua - wrk script: each wrk thread (one connection each)
-- drives its own volume bench-N through attach (begin, step, finish) and
-- detach (begin, finish) cycles over vsed's API, like `vsectl bench`.
-- Every request is one transition; a non-2xx answer is counted as an error.
local counter = 0
function setup(thread)
    thread:set("id", "bench-" .. counter)
    counter = counter + 1
end

local plan = {
    {"begin", '{"op":"attach","owner":"wrk"}'},
    {"step", '{"op_id":"%s","to":"attaching"}'},
    {"finish", '{"op_id":"%s","to":"in_use"}'},
    {"begin", '{"op":"detach","owner":"wrk"}'},
    {"finish", '{"op_id":"%s","to":"available"}'},
}
local i, op_id, bad = 1, "", 0
local headers = {["Content-Type"] = "application/json"}

function request()
    local step = plan[i]
    return wrk.format("POST", "/v1/resources/" .. id .. "/" .. step[1],
                      headers, string.format(step[2], op_id))
end

function response(status, hdrs, body)
    if status ~= 200 then
        -- The volume is at the other rest state (an earlier run left it
        -- in_use, say): begin the other cycle.
        bad = bad + 1
        i = (i == 1) and 4 or 1
        return
    end
    if plan[i][1] == "begin" then
        op_id = string.match(body, '"op_id":"([^"]+)"')
    end
    i = i % #plan + 1
end

function done(summary, latency, requests)
    local l = latency
    io.write(string.format(
        "WRK {\"requests\":%d,\"seconds\":%.3f,\"rps\":%.1f," ..
        "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"errors\":%d}\n",
        summary.requests, summary.duration / 1e6,
        summary.requests / (summary.duration / 1e6),
        l:percentile(50) / 1000, l:percentile(99) / 1000,
        summary.errors.status + summary.errors.connect +
        summary.errors.read + summary.errors.write + summary.errors.timeout))
end
