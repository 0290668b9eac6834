-- Runs an Argo CD health check as Argo CD does: the object is the global `obj`, the script
-- returns the table `hs`. Only the libraries Argo CD opens for health checks are visible
-- (base, table, string, math), so a script that needs io or os fails here too.
--
--   lua5.1 harness.lua deploy/argocd/health.lua OBJECT.lua   (OBJECT.lua: `return {...}`)
--
-- Prints the status, a newline, then the message.
local health, object = arg[1], arg[2]
local env = {
  obj = dofile(object),
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
  select = select, tonumber = tonumber, tostring = tostring, type = type, unpack = unpack,
  string = string, table = table, math = math,
}
local check = assert(loadfile(health))
setfenv(check, env)
local hs = check()
assert(type(hs) == "table", "the health check returned no table")
assert(hs == env.hs, "the health check must fill the global hs and return it")
io.write(tostring(hs.status), "\n", tostring(hs.message))
