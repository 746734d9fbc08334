-- wrk script of `make bench-wrk`: POSTs BENCH_BODY as JSON and counts every
-- answer that is not a 200, over all threads.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non200 = 0
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
end

function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do
    n = n + t:get("non200")
  end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d rps=%.0f non200=%d socket_errors=%d p99_ms=%.2f\n",
    summary.requests, summary.requests / (summary.duration / 1e6), n,
    e.connect + e.read + e.write + e.timeout, latency:percentile(99) / 1000))
end
