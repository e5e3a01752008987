-- wrk script for the gate benchmark: every request carries
-- `Authorization: Bearer <token>`, taking the tokens of the file named by the
-- TOKENS environment variable in order (one per line) and starting over at the
-- end. OFFSET (default 0) skips that many tokens first, so that the next round
-- of the unique-token run continues where the previous one stopped. Requests
-- are pre-built in init() so the per-request cost in wrk is one table lookup,
-- the same for every run (plain reverse_proxy included).
--
-- done() prints one machine-readable line:
--   RESULT requests=<n> duration_us=<n> rps=<x> p50_us=<n> p99_us=<n> non2xx=<n> errors=<n> tokens=<n>

local reqs = {}
local n = 0
local i = 0

function init(args)
  local path = os.getenv("TOKENS")
  if path == nil or path == "" then
    error("TOKENS is not set")
  end
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if line ~= "" then
      n = n + 1
      reqs[n] = wrk.format("GET", "/orders", { ["Authorization"] = "Bearer " .. line })
    end
  end
  f:close()
  if n == 0 then
    error("no tokens in " .. path)
  end
  i = (tonumber(os.getenv("OFFSET") or "0") or 0) % n
end

function request()
  i = i + 1
  if i > n then
    i = 1
  end
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  local sockerr = e.connect + e.read + e.write + e.timeout
  -- count the token file in this (main) state too, for the reuse check
  local t = 0
  local path = os.getenv("TOKENS")
  local f = io.open(path, "r")
  if f then
    for line in f:lines() do
      if line ~= "" then t = t + 1 end
    end
    f:close()
  end
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d non2xx=%d errors=%d tokens=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50.0), latency:percentile(99.0), e.status, sockerr, t))
end
