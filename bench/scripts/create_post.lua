-- POST /api/v1/posts/ with a body of its own on every request: the thread's number (handed
-- out in setup) and a per-thread counter make each title unique within the run, and
-- BENCH_RUN_ID makes it unique across runs.
local run_id = os.getenv("BENCH_RUN_ID") or "0"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTHORIZATION")

local threads_set_up = 0
function setup(thread)
  threads_set_up = threads_set_up + 1
  thread:set("thread_number", threads_set_up)
end

local sent = 0
function request()
  sent = sent + 1
  local body = string.format(
    '{"title":"Bench write %s %d %d","content":"Written by the benchmark.",'
      .. '"description":"A write","tags":["bench","topic-%d"]}',
    run_id, thread_number, sent, sent % 50 + 1)
  return wrk.format(nil, nil, nil, body)
end
