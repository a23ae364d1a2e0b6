-- chat-fcgi's door: lighttpd's own answers in the API's error envelope, and
-- a cap on concurrent requests per client address (mod_magnet, Lua 5.4,
-- lighttpd 1.4.69).  lighttpd.conf runs this one file at two points:
--
--   magnet.attract-raw-url-to       every request whose headers parsed:
--       (a) the internal re-run lighttpd makes for an error of its own
--           (server.error-handler; REDIRECT_STATUS holds the status):
--           answer it here, in the envelope;
--       (b) any other request: refuse it with 503 too_many_connections
--           when its address has more than CHAT_DOOR_PER_ADDR requests in
--           lighttpd, else let it through untouched.
--   magnet.attract-response-start-to  every answer, just before its
--       headers go out: an error status without X-Request-ID (so neither a
--       worker's nor ours) gets the envelope.  A net under (a): it catches
--       what the error handler does not re-run.
--
-- The settings come from lighttpd.conf through setenv.set-environment
-- (CHAT_DOOR_MAX_BODY, CHAT_DOOR_PER_ADDR).  lighttpd decides some errors
-- (413 among them) before mod_setenv runs, but applies it on the error
-- handler's re-run, so (a) always has them; the net falls back to what it
-- saw last (kept in the script's global table), then to the defaults below.
-- docs/NOTES.md says which hook sees which error.

local r = lighty.r

-- Defaults, used only before any request has carried the settings.
local DEFAULT_MAX_BODY = 65536
local DEFAULT_PER_ADDR = 64

-- status -> error code, detail.  The codes and details are the contract's
-- (openapi.yaml's x-server-responses and the Error schema's codes); they
-- never echo the request.  Another status gets bad_request or internal.
local TABLE = {
	[400] = { "bad_request", "malformed HTTP request" },
	[403] = { "forbidden", "forbidden" },
	[404] = { "not_found", "no such resource" },
	[405] = { "method_not_allowed", "method not allowed on this path" },
	[408] = { "request_timeout", "request not received in time" },
	[411] = { "length_required", "a POST needs Content-Length or Transfer-Encoding here" },
	[413] = { "payload_too_large", nil }, -- detail built with max_bytes
	[414] = { "uri_too_long", "request target too long" },
	[431] = { "header_fields_too_large", "request header fields too large" },
	[500] = { "internal", "internal error" },
	[501] = { "not_implemented", "method not supported" },
	[502] = { "bad_gateway", "the service failed to answer" },
	[503] = { "service_unavailable", "no worker available, retry later" },
	[504] = { "gateway_timeout", "the service did not answer in time" },
	[505] = { "http_version_not_supported", "HTTP version not supported" },
}

-- The settings, from the environment lighttpd.conf sets; remembered in the
-- global table (one Lua state per script file, kept between requests) for
-- the answers that come before mod_setenv.
local function setting(name, default)
	local v = tonumber(r.req_env[name] or "")
	if v then
		_G[name] = v
		return v
	end
	return _G[name] or default
end

-- The client's X-Request-ID when it is 1-128 of [A-Za-z0-9._-] (as the
-- workers accept it), else a new one: 32 lower-case hex digits.  Headers
-- lighttpd refused to parse (400, 431, 501) are not there: a new one then.
local function request_id()
	local id = r.req_header["X-Request-ID"]
	if id and #id <= 128 and id:find("^[A-Za-z0-9._-]+$") then
		return id
	end
	return string.format("%08x%08x%08x%08x", lighty.c.rand() & 0xffffffff, lighty.c.rand() & 0xffffffff,
		lighty.c.rand() & 0xffffffff, lighty.c.rand() & 0xffffffff)
end

-- Sets the envelope's headers and body; returns the status, which the
-- caller returns to lighttpd (mod_magnet then marks the body complete).
local function envelope(status, code, detail, extra)
	local e = TABLE[status]
	if not code then
		code = e and e[1] or (status >= 500 and "internal" or "bad_request")
	end
	if status == 413 then
		local max = setting("CHAT_DOOR_MAX_BODY", DEFAULT_MAX_BODY)
		detail = "request body over " .. max .. " bytes"
		extra = ',"max_bytes":' .. max
	end
	detail = detail or (e and e[2]) or "the web server refused the request"
	local h = r.resp_header
	h["Content-Type"] = "application/json"
	h["X-Content-Type-Options"] = "nosniff"
	h["Cache-Control"] = "no-store"
	h["X-Request-ID"] = request_id()
	if status == 503 then
		h["Retry-After"] = "1"
	end
	r.resp_body.set({ '{"error":"', code, '","detail":"', detail, '"', extra or "", "}" })
	return status
end

-- (b): requests of this client address in lighttpd right now, this one
-- included: every request past its headers (reading its body, waiting for
-- or talking to a worker, writing its answer).  Connections still sending
-- headers, or idle between keep-alive requests, do not count: lighttpd
-- runs no module for them (no hook before the headers are complete), and
-- a browser's idle keep-alive connections are no threat.
-- lighty.server.irequests() walks every connection: O(connections) per
-- request, stopped as soon as the address is over the cap.
local NOT_A_REQUEST = { connect = true, reqstart = true, read = true, close = true, error = true }

local function over_cap()
	local cap = setting("CHAT_DOOR_PER_ADDR", DEFAULT_PER_ADDR)
	if cap <= 0 then
		return false -- disabled (behind a reverse proxy: see README)
	end
	local me = r.req_attr["request.remote-addr"]
	local n = 0
	for q in lighty.server.irequests() do
		if not NOT_A_REQUEST[q.req_attr["request.stage"]] and q.req_attr["request.remote-addr"] == me then
			n = n + 1
			if n > cap then
				return true
			end
		end
	end
	return false
end

local status = r.req_item.http_status

if status == 0 then
	-- raw-url: (a) or (b).
	local redirected = tonumber(r.req_env["REDIRECT_STATUS"] or "")
	if redirected then
		return envelope(redirected)
	end
	if over_cap() then
		return envelope(503, "too_many_connections", "too many concurrent connections from this address")
	end
	return 0
end

-- response-start: the net.
if status >= 400 and not r.resp_header["X-Request-ID"] then
	return envelope(status)
end
return 0
