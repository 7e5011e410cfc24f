-- wrk script for `vane serve`: POSTs the ~7 KB signed GitHub push payload of
-- ../shared/peers/webhook, with a fresh X-GitHub-Delivery per request (vane answers a
-- repeated delivery id with 200 and does not queue it again: the benchmark must not measure that).
local f = assert(io.open(os.getenv("PAYLOAD"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "push"
wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
wrk.headers["X-Hub-Signature-256"] = os.getenv("SIG")

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local count = 0
local run = os.getenv("RUN") or "0"
function request()
  count = count + 1
  wrk.headers["X-GitHub-Delivery"] = run .. "-" .. tid .. "-" .. count
  return wrk.format()
end

local bad = 0
function response(status, headers, body)
  if status ~= 202 then bad = bad + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("p50_ms %.2f\np99_ms %.2f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
