-- Offered load, approximately: each connection waits BENCH_DELAY_MS after every response
-- before it sends again (wrk has no rate option). Closed loop: a slow server is offered less.
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS"))
function delay()
  return delay_ms
end
