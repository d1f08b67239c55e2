-- "Token then API" for wrk 4.1: every connection first asks storegate's token endpoint for a
-- token (client_credentials), then sends only guarded requests (the URL given to wrk) carrying
-- a token it got that way. Used by benches/load/compare.sh for the "storegate token-then-API"
-- rows, next to the rows whose token was minted before the run.
--
--   wrk -t1 -c50 -d10s -s benches/load/token_then_api.lua https://127.0.0.1:19446/api/products \
--     -- 50 [/connect/token] [client_id] [client_secret]
--
-- The first argument after "--" is required: the connections per thread (wrk's -c divided by
-- -t; wrk does not tell a script). The others default to what compare.sh configures:
-- /connect/token, bench, load-test-secret.
--
-- What it does. wrk runs one Lua state per thread and drives that thread's -c/-t connections
-- through it: request() is called whenever one of those connections is about to send (its
-- first request once it is connected, TLS handshake done; then each next one right after its
-- previous answer, no pipelining), response() for every answer. A script is never told which
-- connection it is serving. So, per thread:
--   * the first N calls of request() (N = connections per thread) return the token POST
--     (grant_type=client_credentials, the client's id and secret in the form body); every
--     later call returns a GET of wrk's URL with "Authorization: Bearer <token>";
--   * response() reads access_token out of each token answer (a body holding
--     "access_token"); the GETs carry the newest token the thread has received. Once all N
--     answers are in, that is one token for all the thread's connections until the end.
--
-- Why the N token POSTs are the first requests of N different connections: a connection asks
-- request() again only after its previous answer has arrived. If no token answer has arrived
-- by the time the N-th token POST is handed out, none of the N calls can have been a second
-- request of a connection, so they were the first requests of all N connections, and every
-- request after them is a GET. The script counts the token POSTs handed out after some token
-- answer had already arrived ("late" below). With late = 0 the claim holds exactly; with
-- late > 0 it may not (over TLS the handshakes finish at different times): then a connection
-- whose answer came back early may have sent a second token POST, and as many connections may
-- have started with a GET carrying another connection's token. Either way the thread sends
-- exactly N token POSTs and every GET carries a token the thread got from the endpoint.
--
-- Limits:
--   * A GET carries the thread's newest token, not necessarily the token its own connection
--     received (no connection identity, see above). What it costs the gateway is the same in
--     kind: tokens minted at run time, each verified fully the first time it is presented,
--     then from the verification cache; and each connection presents one token over and over
--     (the connection's memo of its last token, `Recent`, hits) once the answers are in.
--     Tokens minted but never presented are never verified: at most N-1 ES256 verifications
--     (~0.1 ms each) fewer than one token per connection would cost, per thread and run.
--   * wrk counts the N token requests (and their latency) in its totals with the GETs.
--   * A connection wrk reopens (after a socket error or a "Connection: close") does not ask
--     for a new token; it carries the thread's newest. The errors column shows such runs.
--   * response() is defined, so wrk hands every answer's headers and body to Lua, and
--     request() is called for every request: more work for the load generator than the rows
--     with a fixed request. Measure a pre-minted token through a script of the same shape if
--     the load generator's core may be the limit.
--   * No refresh: a run must be shorter than the token's lifetime.
--   * done() prints the counters (lines starting "token-then-API"): token POSTs sent, token
--     answers, distinct tokens, late token POSTs, GETs sent, answers that were not 2xx.

local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

local conns, token_req, api_headers
local bearer, api_req
-- wrk 4.1 calls request() once on the first thread's state before any connection opens, to
-- count the requests in what it returns (script_verify_request); that call sends nothing.
local verify_call

-- Counters, read by done() through thread:get.
token_posts = 0      -- token POSTs handed out
token_answers = 0    -- answers carrying an access_token
late_posts = 0       -- token POSTs handed out after a token answer had arrived
distinct_tokens = 0
api_gets = 0         -- GETs handed out
not_2xx = 0          -- answers with another status (token or API)
no_token_yet = 0     -- GETs that would have had no token (must stay 0)
local seen = {}

function init(args)
   verify_call = (id == 1)
   conns = tonumber(args[1])
   if not conns or conns < 1 then
      error("token_then_api.lua: give the connections per thread after --, e.g. -- 50")
   end
   local path = args[2] or "/connect/token"
   local client_id = args[3] or "bench"
   local secret = args[4] or "load-test-secret"
   local h = {}
   for k, v in pairs(wrk.headers) do h[k] = v end
   h["Content-Type"] = "application/x-www-form-urlencoded"
   local body = "grant_type=client_credentials&client_id=" .. client_id .. "&client_secret=" .. secret
   token_req = wrk.format("POST", path, h, body)
   api_headers = {}
   for k, v in pairs(wrk.headers) do api_headers[k] = v end
end

function request()
   if verify_call then
      verify_call = false
      return token_req
   end
   if token_posts < conns then
      token_posts = token_posts + 1
      if token_answers > 0 then late_posts = late_posts + 1 end
      return token_req
   end
   if not api_req then
      -- Cannot happen (see above: a call after the N-th is a second request, which follows
      -- an answer); counted and answered with a token POST rather than an unauthorized GET.
      no_token_yet = no_token_yet + 1
      token_posts = token_posts + 1
      return token_req
   end
   api_gets = api_gets + 1
   return api_req
end

function response(status, headers, body)
   if status < 200 or status > 299 then not_2xx = not_2xx + 1 end
   if body and body:find('"access_token"', 1, true) then
      local token = body:match('"access_token"%s*:%s*"([^"]+)"')
      if token then
         token_answers = token_answers + 1
         if not seen[token] then
            seen[token] = true
            distinct_tokens = distinct_tokens + 1
         end
         if token ~= bearer then
            bearer = token
            api_headers["Authorization"] = "Bearer " .. token
            api_req = wrk.format("GET", wrk.path, api_headers)
         end
      end
   end
end

function done(summary, latency, requests)
   local names = { "token_posts", "token_answers", "distinct_tokens", "late_posts", "api_gets",
                   "not_2xx", "no_token_yet" }
   local total = {}
   for _, n in ipairs(names) do total[n] = 0 end
   for _, t in ipairs(threads) do
      local line = {}
      for _, n in ipairs(names) do
         local v = tonumber(t:get(n)) or 0
         total[n] = total[n] + v
         line[#line + 1] = n .. "=" .. v
      end
      io.write("token-then-API thread ", t:get("id"), ": ", table.concat(line, " "), "\n")
   end
   local line = {}
   for _, n in ipairs(names) do line[#line + 1] = n .. "=" .. total[n] end
   io.write("token-then-API total: ", table.concat(line, " "), "\n")
end
