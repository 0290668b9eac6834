-- Argo CD health check for apigw.dev/ApiGatewayIntegration and apigw.dev/ApiGatewayStage (Lua
-- 5.1, as Argo CD runs it); both kinds carry the same conditions.
-- Install: deploy/argocd/argocd-cm-patch.yaml puts this file under
-- resource.customizations.health.apigw.dev_ApiGatewayIntegration and
-- resource.customizations.health.apigw.dev_ApiGatewayStage in argocd-cm.
--
--   status missing, or observedGeneration behind metadata.generation   Progressing
--   Stalled=True (InvalidSpec, RequiresReplacement, Drifted: for a
--     stage also a rollback made outside)                               Degraded, its message
--   Ready=True                                                         Healthy
--   Ready=False, reason Paused (apigw.dev/paused: "true")              Suspended
--   Reconciling=True (a stage: Pending, changes not served yet), or
--     Ready=False for any other reason                                  Progressing
hs = {}

local function condition(conditions, kind)
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function message(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

hs.status = "Progressing"
hs.message = "Waiting for the operator to reconcile"

if obj.status == nil then
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local conditions = obj.status.conditions or {}
local stalled = condition(conditions, "Stalled")
local ready = condition(conditions, "Ready")
local reconciling = condition(conditions, "Reconciling")

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = message(stalled, stalled.reason or "Stalled")
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message(ready, "The integration in AWS matches the spec")
  return hs
end

if ready ~= nil and ready.status == "False" and ready.reason == "Paused" then
  hs.status = "Suspended"
  hs.message = message(ready, "Paused")
  return hs
end

if reconciling ~= nil and reconciling.status == "True" then
  hs.message = message(reconciling, hs.message)
  return hs
end

if ready ~= nil then
  hs.message = message(ready, ready.reason or hs.message)
end
return hs
