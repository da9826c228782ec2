-- wrk script for POST /v1/check, as a client of `allowly serve` would send it.
-- Usage: wrk -t2 -c64 -d10s -s scripts/bench/check.lua http://127.0.0.1:PORT/v1/check
-- Environment:
--   BENCH_RUNTIME_KEY       the runtime key (Bearer)
--   BENCH_AUTHORIZATIONS    a file with one authorization id a line; checks spread over them
--   BENCH_ACTION            the action checked (default api.call)
--   BENCH_COST_MICROS       when set, every check reserves this estimated cost (budgeted runs)
-- Each wrk thread walks the ids round-robin from its own starting point, so two threads do not
-- send the same authorization in lockstep.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

local function read_ids(path)
  local ids = {}
  local file = assert(io.open(path, "r"), "cannot open BENCH_AUTHORIZATIONS " .. tostring(path))
  for line in file:lines() do
    local id = line:match("^%s*(%S+)%s*$")
    if id then table.insert(ids, id) end
  end
  file:close()
  assert(#ids > 0, "no authorization ids in " .. path)
  return ids
end

local requests = {}
local next_index = 1

function init(_args)
  local key = assert(os.getenv("BENCH_RUNTIME_KEY"), "BENCH_RUNTIME_KEY is not set")
  local action = os.getenv("BENCH_ACTION") or "api.call"
  local cost = os.getenv("BENCH_COST_MICROS")
  local headers = { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }
  local cost_member = cost and string.format(', "estimated_cost_micros": %d', tonumber(cost)) or ""
  -- Every request is formatted once here; request() only hands out the next one.
  for _, id in ipairs(read_ids(os.getenv("BENCH_AUTHORIZATIONS"))) do
    local body = string.format('{"authorization_id": "%s", "actions": ["%s"]%s, "context": {"channel": "wrk"}}',
      id, action, cost_member)
    table.insert(requests, wrk.format("POST", nil, headers, body))
  end
  next_index = ((thread_index or 0) * 7919) % #requests + 1
end

function request()
  local chosen = requests[next_index]
  next_index = next_index % #requests + 1
  return chosen
end

done = report.done
