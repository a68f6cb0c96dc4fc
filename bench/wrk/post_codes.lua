-- wrk script for bench/token_endpoint.py --grant transfer_code: every request redeems the next
-- single-use authorization code from a file, and the summary says how many codes were taken.
--
-- Parameters come from the environment (kept out of the command line, so out of `ps`):
--   BENCH_FORM_PREFIX    the URL-encoded form body up to and including "&code=" (required)
--   BENCH_CODES_FILE     one code per line (required)
--   BENCH_AUTHORIZATION  the Authorization header value (optional)
--
-- The last line of output is "BENCH_RESULT {json}" as in post_form.lua plus "codes_taken": how
-- many codes request() handed out (answered or still in flight when the run ended). When the file
-- runs out, the code "exhausted" is sent: the server refuses it and wrk counts a status error.

local prefix = os.getenv("BENCH_FORM_PREFIX")
local path = os.getenv("BENCH_CODES_FILE")
if prefix == nil or prefix == "" or path == nil or path == "" then
  io.stderr:write("post_codes.lua: BENCH_FORM_PREFIX and BENCH_CODES_FILE must be set\n")
  os.exit(2)
end

local codes = {}
for line in io.lines(path) do
  if line ~= "" then codes[#codes + 1] = line end
end

local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Accept"] = "application/json",
}
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
  headers["Authorization"] = authorization
end

taken = 0  -- global: read back from each thread in done()
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function request()
  taken = taken + 1
  return wrk.format("POST", nil, headers, prefix .. (codes[taken] or "exhausted"))
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("taken") end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}, ' ..
    '"codes_taken": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, total))
end
