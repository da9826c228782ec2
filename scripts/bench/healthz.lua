-- wrk script for the HTTP floor: GET /healthz (no key, no store), reported like check.lua.
-- Usage: wrk -t2 -c64 -d10s -s scripts/bench/healthz.lua http://127.0.0.1:PORT/healthz

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
done = dofile(here .. "report.lua").done
