-- Argo CD health check for Ferry's two kinds, ferry.dev Integration and SyncSchedule: both write
-- the same kstatus conditions (Ready, Reconciling, Stalled, Degraded, each with
-- observedGeneration) and status.observedGeneration (-1 until first reconciled).
--
-- Runs in gopher-lua, Argo CD's embedded Lua 5.1, where a check installed through argocd-cm gets
-- only the base and table libraries (no string or math unless useOpenLibs is set): so plain
-- comparisons and `..` only, and nothing that Lua 5.4 reads differently (no `//`, no float
-- formatting). Tests run it on gopher-lua and on Lua 5.4.
--
-- The order is kstatus's (what Flux and Helm --wait compute), so Argo CD and Flux agree on every
-- state kstatus knows; Argo CD's Suspended and Degraded add what kstatus has no word for.
--   no status, or metadata.generation not observed yet  -> Progressing
--   Reconciling=True (a transient error being retried)   -> Progressing
--   Stalled=True (the spec or a referenced object is bad) -> Degraded, "Reason: message"
--   spec.suspend                                         -> Suspended
--   Ready missing, Unknown or about an older generation  -> Progressing
--   Ready=False                                          -> Degraded, "Reason: message"
--   Degraded=True (circuit open, SLA missed, run failed) -> Degraded, "Reason: message"
--   Ready=True                                           -> Healthy, Ready's message
local function health(status, message)
  return { status = status, message = message }
end

local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

-- The reason is the stable word to alert on; the message names the field or the cause.
local function explain(c)
  local reason = c.reason or c.type
  if c.message == nil or c.message == "" then
    return reason
  end
  return reason .. ": " .. c.message
end

local generation = obj.metadata.generation

if obj.status == nil or obj.status.observedGeneration == nil then
  return health("Progressing", "Waiting for the Ferry controller to reconcile " .. obj.kind .. " " .. obj.metadata.name)
end
local observed = obj.status.observedGeneration
if generation ~= nil and observed < generation then
  if observed < 0 then
    return health("Progressing", "Waiting for the Ferry controller to reconcile generation " .. generation)
  end
  return health("Progressing", "Waiting for the Ferry controller to observe generation " .. generation .. " (status describes " .. observed .. ")")
end

local reconciling = condition("Reconciling")
if isTrue(reconciling) then
  return health("Progressing", reconciling.message or "Reconciling")
end

local stalled = condition("Stalled")
if isTrue(stalled) then
  return health("Degraded", explain(stalled))
end

local ready = condition("Ready")
if obj.spec ~= nil and obj.spec.suspend == true then
  if ready ~= nil and ready.reason == "Suspended" and ready.message ~= nil then
    return health("Suspended", ready.message)
  end
  return health("Suspended", obj.kind .. " is suspended")
end

if ready == nil or ready.status == "Unknown" or (generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation) then
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    return health("Progressing", ready.message)
  end
  return health("Progressing", "Waiting for the Ready condition")
end

if ready.status ~= "True" then
  return health("Degraded", explain(ready))
end

local degraded = condition("Degraded")
if isTrue(degraded) then
  return health("Degraded", explain(degraded))
end

return health("Healthy", ready.message or "")
