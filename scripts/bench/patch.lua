-- wrk script: PATCH /task-executions/{id}, each task moved queued → running
-- → completed. Reads task ids, one a line, from the file named by
-- BENCH_IDS, and the key from BENCH_KEY. Run with as many threads as
-- connections (-tN -cN, N also in BENCH_THREADS): each thread owns one
-- connection and its own slice of the ids. A thread moves on to its next
-- change when the answer to the last one arrives (wrk may build a request
-- again, after a reconnection, without sending the first), so a task's two
-- changes go one after the other. Every answer must be 200: any other
-- counts as an error, and the first of each thread is printed.
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do
  if line ~= "" then ids[#ids + 1] = line end
end
local threads = {}

setup = function(thread)
  thread:set("slice", #threads)
  threads[#threads + 1] = thread
end

local next_index, last_index, phase
init = function(args)
  local count = tonumber(os.getenv("BENCH_THREADS"))
  local per = math.floor(#ids / count)
  next_index = slice * per + 1
  last_index = next_index + per - 1
  phase = 0
  exhausted = 0
  refused = ""
end

local auth = { ["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY"),
  ["Content-Type"] = "application/json" }
local bodies = { [0] = '{"status":"running"}', [1] = '{"status":"completed","output":{"ok":true}}' }

request = function()
  if next_index > last_index then
    -- Out of ids: the run is reported as such (seed more), and the thread
    -- stops after this harmless request.
    exhausted = 1
    wrk.thread:stop()
    return wrk.format("GET", "/healthz")
  end
  return wrk.format("PATCH", "/task-executions/" .. ids[next_index], auth, bodies[phase])
end

response = function(status, headers, body)
  if status ~= 200 and refused == "" then
    refused = status .. " " .. (body or "")
  end
  if phase == 0 then
    phase = 1
  else
    phase = 0
    next_index = next_index + 1
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  local exhausted = 0
  for _, thread in ipairs(threads) do
    exhausted = exhausted + thread:get("exhausted")
    if thread:get("refused") ~= "" then io.write("refused: " .. thread:get("refused") .. "\n") end
  end
  io.write(string.format("BENCH requests=%d duration_us=%d mean_us=%d p50_us=%d p99_us=%d errors=%d exhausted=%d"
    .. " (connect %d, read %d, write %d, status %d, timeout %d)\n",
    summary.requests, summary.duration, latency.mean, latency:percentile(50), latency:percentile(99), errors, exhausted,
    e.connect, e.read, e.write, e.status, e.timeout))
end
