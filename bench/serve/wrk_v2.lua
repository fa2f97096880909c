-- wrk -s wrk_v2.lua URL/v2/models/NAME/infer : one text per request, Open Inference Protocol v2.
-- The text is the one ../shared/bench/wrk_predict.lua sends the FastAPI peer: WORDS words
-- (default 27) from the same list, so both sides see the same words.
local n = tonumber(os.getenv("WORDS") or "27")
local base = {"the","quick","brown","fox","jumps","over","lazy","dog","while","platform","trains","small","bert","model","on","two","cores"}
local w = {}
for i = 1, n do w[i] = base[(i - 1) % #base + 1] .. tostring(i % 7) end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["' .. table.concat(w, " ") .. '"]}]}'
