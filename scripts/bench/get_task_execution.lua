-- wrk script: GET /task-executions/{id} with random ids, each with a key of
-- the organization that owns it. Reads "key<TAB>task_id" lines from the
-- file named by BENCH_IDS.
local targets = {}
for line in io.lines(os.getenv("BENCH_IDS")) do
  local key, id = line:match("^(%S+)\t(%S+)$")
  if key then targets[#targets + 1] = { key, id } end
end
math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))

request = function()
  local t = targets[math.random(#targets)]
  return wrk.format("GET", "/task-executions/" .. t[2], { ["Authorization"] = "Bearer " .. t[1] })
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("BENCH requests=%d duration_us=%d mean_us=%d p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration, latency.mean, latency:percentile(50), latency:percentile(99), errors))
end
