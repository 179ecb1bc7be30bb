-- http-get.lua - wrk script: GET one resource, and print the summary as
-- one JSON line like http-cycle.lua.
function done(summary, latency, requests)
    io.write(string.format(
        "WRK {\"requests\":%d,\"seconds\":%.3f,\"rps\":%.1f," ..
        "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"errors\":%d}\n",
        summary.requests, summary.duration / 1e6,
        summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        summary.errors.status + summary.errors.connect +
        summary.errors.read + summary.errors.write + summary.errors.timeout))
end
