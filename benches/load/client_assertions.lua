-- private_key_jwt token requests for wrk 4.1: every request is a POST to wrk's URL with a
-- client assertion read from a file of pre-signed ones, one a line, each sent once. Used by
-- benches/load/client_auth.sh; the assertions come from
-- `client_assertions sign <key> <kid> <client_id> <aud> <n> <file>` (benches/load/client_assertions.rs).
--
--   wrk -t1 -c50 -d10s -s benches/load/client_assertions.lua https://127.0.0.1:19470/connect/token -- <file>
--
-- One wrk thread only (-t1): two Lua states would send the same assertions. Once the file is
-- used up, the last assertion is sent again (a replay, refused), so that a short file shows as
-- errors. done() prints "client-assertions total: sent=… exhausted=… not_2xx=…"; the row is
-- invalid unless exhausted and not_2xx are 0.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("id", #threads)
   if #threads > 1 then
      error("client_assertions.lua: one wrk thread only (-t1)")
   end
end

local next_assertion, last, verify_call
sent = 0
exhausted = 0
not_2xx = 0
local eof = false
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local prefix = "grant_type=client_credentials" ..
   "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" ..
   "&client_assertion="

function init(args)
   verify_call = (id == 1)
   if not args[1] then error("client_assertions.lua: give the assertions file after --") end
   next_assertion = io.lines(args[1])
end

function request()
   if verify_call then
      verify_call = false
      return wrk.format("POST", wrk.path, headers, prefix .. "not-sent")
   end
   local a
   if not eof then
      a = next_assertion()
      if not a or a == "" then eof = true; a = nil end
   end
   if a then last = a; sent = sent + 1 else exhausted = exhausted + 1 end
   return wrk.format("POST", wrk.path, headers, prefix .. (last or "none"))
end

function response(status, headers, body)
   if status < 200 or status > 299 then not_2xx = not_2xx + 1 end
end

function done(summary, latency, requests)
   local t = threads[1]
   io.write("client-assertions total: sent=", t:get("sent"), " exhausted=", t:get("exhausted"),
            " not_2xx=", t:get("not_2xx"), "\n")
end
