-- One wrk script for every scenario, configured through the environment by bench/run.py:
--   BENCH_METHOD, BENCH_PATH, BENCH_AUTH (Authorization header), BENCH_BODY (form body; "{token}" is replaced by
--   the next line of BENCH_POOL, so each pooled code or refresh token is sent exactly once), BENCH_OUT (JSON result).
-- When the pool runs dry the thread stops, and the run's duration is what it took to spend the pool.
local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local auth = os.getenv("BENCH_AUTH")
local body = os.getenv("BENCH_BODY")
local pool_file = os.getenv("BENCH_POOL")
local out = os.getenv("BENCH_OUT")

local headers = {}
if auth and auth ~= "" then headers["Authorization"] = auth end
if body and body ~= "" then headers["Content-Type"] = "application/x-www-form-urlencoded" end

local pool, next_index = nil, 1
if pool_file and pool_file ~= "" then
  pool = {}
  for line in io.lines(pool_file) do
    if line ~= "" then pool[#pool + 1] = line end
  end
end

local static = nil
statuses = {}

function init(_args)
  -- After wrk's own init has set the Host header.
  headers["Host"] = wrk.headers["Host"]
  static = wrk.format(method, path, headers, (body ~= nil and body ~= "") and body or nil)
end

function request()
  if pool == nil then
    return static
  end
  local token = pool[next_index]
  if token == nil then
    wrk.thread:stop()
    return static
  end
  next_index = next_index + 1
  return wrk.format(method, path, headers, (body:gsub("{token}", token)))
end

function response(status, _headers, _body)
  statuses[status] = (statuses[status] or 0) + 1
end

-- Each thread's status counts, gathered in done() through the thread objects.
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, _requests)
  if not out or out == "" then return end
  local counts = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    if s then
      for code, n in pairs(s) do counts[tostring(code)] = (counts[tostring(code)] or 0) + n end
    end
  end
  local parts = {}
  for code, n in pairs(counts) do parts[#parts + 1] = string.format('"%s":%d', code, n) end
  local e = summary.errors
  local f = io.open(out, "w")
  f:write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d},"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(parts, ",")))
  f:close()
end
