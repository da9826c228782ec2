-- Shared by check.lua and healthz.lua: at the end of a wrk run, one line
-- `BENCH_RESULT {json}` on stdout with the rate, latency percentiles and every kind of failure.
-- wrk counts a response with status >= 400 as errors.status; socket errors and timeouts are
-- counted apart. The rate counts answered requests only, so a failing run cannot look fast.

local report = {}

function report.done(summary, latency, _requests)
  local errors = summary.errors
  local http_errors = errors.status
  local socket_errors = errors.connect + errors.read + errors.write + errors.timeout
  local seconds = summary.duration / 1e6
  local ok = summary.requests - http_errors
  io.write(string.format(
    'BENCH_RESULT {"seconds": %.3f, "requests": %d, "ok": %d, "http_errors": %d, "socket_errors": %d, '
      .. '"requests_per_second": %.1f, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    seconds, summary.requests, ok, http_errors, socket_errors, ok / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end

return report
