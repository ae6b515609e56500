-- wrk script: POST an echo job per request, paced (delay per connection), and report counts as
-- one machine-readable line on stdout: requests, 202s (accepted jobs), other statuses, errors.
-- Env: KEEL_TOKEN (bearer token), WRK_DELAY_MS (pause between requests of a connection, 20),
-- WRK_IDS_DIR (each thread writes the ids of its accepted jobs to DIR/ids-N, one per line).
local token = os.getenv("KEEL_TOKEN") or ""
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "20")
local ids_dir = os.getenv("WRK_IDS_DIR")
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("number", counter)
  table.insert(threads, thread)
end

function init(args)
  accepted = 0
  other = 0
  wrk.method = "POST"
  wrk.path = "/api/jobs"
  wrk.body = '{"kind": "echo", "payload": {}}'
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
  if ids_dir then
    ids = io.open(ids_dir .. "/ids-" .. number, "w")
  end
end

function delay()
  return pause
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
    if ids then
      -- Flushed per line: the thread's file is never closed explicitly.
      ids:write((string.match(body, '"id"%s*:%s*"?(%d+)') or "?") .. "\n")
      ids:flush()
    end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local acc, oth = 0, 0
  for _, thread in ipairs(threads) do
    acc = acc + thread:get("accepted")
    oth = oth + thread:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "accepted": %d, "other_status": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, "status_errors": %d, "seconds": %.2f, "p99_ms": %.1f}\n',
    summary.requests, acc, oth, e.connect, e.read, e.write, e.timeout, e.status,
    summary.duration / 1e6, latency:percentile(99) / 1000))
end
