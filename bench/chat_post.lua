-- wrk script for bench/bench_chat.sh: POST a message with the bearer token
-- from CHAT_TOKEN.  With CHAT_KEYED=1 every request carries its own
-- Idempotency-Key (thread number and counter), so each one is stored.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CHAT_TOKEN")
wrk.body = '{"body":"bench message"}'

local keyed = os.getenv("CHAT_KEYED") == "1"
local threads = 0
local counter = 0

function setup(thread)
	threads = threads + 1
	thread:set("thread_no", threads)
end

function request()
	if not keyed then
		return wrk.format()
	end
	counter = counter + 1
	local headers = {}
	for k, v in pairs(wrk.headers) do
		headers[k] = v
	end
	headers["Idempotency-Key"] = "bench-" .. thread_no .. "-" .. counter
	return wrk.format(nil, nil, headers)
end
