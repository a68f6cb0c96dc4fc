-- wrk script for bench/token_endpoint.py: POST one fixed application/x-www-form-urlencoded body,
-- optionally with an Authorization header, and print a machine-readable summary at the end.
--
-- Parameters come from the environment (wrk passes its own argv to the script, but the runner
-- keeps all request data out of the command line so it never shows in `ps`):
--   BENCH_FORM_BODY      the form body, already URL-encoded (required)
--   BENCH_AUTHORIZATION  the Authorization header value (optional)
--
-- The last line of output is "BENCH_RESULT {json}" with requests, duration (microseconds),
-- socket and status errors, and latency percentiles in microseconds. No per-response Lua hook is
-- installed: it would make wrk itself the bottleneck.

local body = os.getenv("BENCH_FORM_BODY")
if body == nil or body == "" then
  io.stderr:write("post_form.lua: BENCH_FORM_BODY is not set\n")
  os.exit(2)
end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"

local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
