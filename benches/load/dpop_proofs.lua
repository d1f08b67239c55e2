-- "DPoP, pre-minted token, fresh proof per request" for wrk 4.1: every request is a GET of
-- wrk's URL carrying one DPoP-bound token ("Authorization: DPoP <token>") and a DPoP proof
-- ("DPoP: <proof>") read from a file of pre-signed proofs, one a line, each sent once. Used by
-- benches/load/compare.sh for its DPoP row; the proofs come from
-- `dpop_proofs sign <key> ES256 GET <public origin + path> <token> <n> <file>`
-- (benches/load/dpop_proofs.rs).
--
--   wrk -t1 -c50 -d10s -s benches/load/dpop_proofs.lua https://127.0.0.1:19450/api/products \
--     -- <proofs file> <token>
--
-- One wrk thread only (-t1): each thread has a Lua state of its own, and two would send the
-- same proofs. The file must hold at least as many proofs as the run sends: once it is used
-- up, the last proof is sent again (a replay, which the gateway refuses with 401), so that a
-- short file shows as errors, never as requests that were not checked.
--
-- done() prints one line, "dpop-proofs total: sent=… exhausted=… not_2xx=…": proofs sent,
-- requests sent after the file was used up, and answers that were not 2xx. The row is
-- invalid unless exhausted and not_2xx are 0.
--
-- response() is defined (to count the answers that were not 2xx), so wrk hands every
-- answer's status and headers to Lua, and request() is called for every request: more work
-- for the load generator than a fixed request (the Bearer rows) costs it.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("id", #threads)
   if #threads > 1 then
      error("dpop_proofs.lua: one wrk thread only (-t1), or two threads would send the same proofs")
   end
end

local prefix, suffix, next_proof, last
-- wrk 4.1 calls request() once before any connection opens, to count the requests in what it
-- returns (script_verify_request); that call sends nothing, and takes no proof.
local verify_call

-- Counters, read by done() through thread:get.
sent = 0
exhausted = 0
not_2xx = 0
local eof = false

function init(args)
   verify_call = (id == 1)
   local file, token = args[1], args[2]
   if not file or not token then
      error("dpop_proofs.lua: give the proofs file and the token after --")
   end
   next_proof = io.lines(file)
   -- The request with a marker where the proof goes; each request is the two halves around
   -- its proof.
   local marker = "@@PROOF@@"
   local h = {}
   for k, v in pairs(wrk.headers) do h[k] = v end
   h["Authorization"] = "DPoP " .. token
   h["DPoP"] = marker
   local req = wrk.format("GET", wrk.path, h)
   local i, j = req:find(marker, 1, true)
   prefix, suffix = req:sub(1, i - 1), req:sub(j + 1)
end

function request()
   if verify_call then
      verify_call = false
      return prefix .. "not-sent" .. suffix
   end
   local p
   if not eof then
      p = next_proof()
      if not p or p == "" then
         eof = true
         p = nil
      end
   end
   if p then
      last = p
      sent = sent + 1
   else
      exhausted = exhausted + 1
   end
   return prefix .. (last or "no-proof-in-the-file") .. suffix
end

function response(status, headers, body)
   if status < 200 or status > 299 then not_2xx = not_2xx + 1 end
end

function done(summary, latency, requests)
   local t = threads[1]
   io.write("dpop-proofs total: sent=", t:get("sent"), " exhausted=", t:get("exhausted"),
            " not_2xx=", t:get("not_2xx"), "\n")
end
