-- Argo CD health check for lockbox.dev resources (SecretsMount and
-- PluginCatalogEntry), from their kstatus status (the same verdicts as
-- Flux's kstatus; the operator writes Stalled/Reconciling beside Ready):
--   no status yet, or status for an older generation  -> Progressing
--   Stalled=True (InvalidSpec, DigestMismatch, PathConflict, ...; a retry
--     cannot fix it)                                  -> Degraded
--   Reconciling=True (waiting for a catalog entry, a Secret, a registry;
--     retried)                                        -> Progressing
--   Ready=True                                        -> Healthy
--   Ready=False without either (an operator before Stalled/Reconciling):
--     reason PluginMissing -> Progressing, any other  -> Degraded
-- Install: see "GitOps with Argo CD and Flux" in the README.
local hs = {}
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the lockbox operator to report status"
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the lockbox operator to reconcile the latest spec"
  return hs
end
local function why(c)
  return (c.reason or "") .. ": " .. (c.message or "")
end
-- kstatus order: the first Stalled=True or Reconciling=True decides.
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Stalled" and c.status == "True" then
    hs.status = "Degraded"
    hs.message = why(c)
    return hs
  end
  if c.type == "Reconciling" and c.status == "True" then
    hs.status = "Progressing"
    hs.message = why(c)
    return hs
  end
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    if c.status == "True" then
      hs.status = "Healthy"
    elseif c.status == "False" and c.reason ~= "PluginMissing" then
      hs.status = "Degraded"
    else
      hs.status = "Progressing"
    end
    hs.message = why(c)
    return hs
  end
end
hs.status = "Progressing"
hs.message = "No Ready condition yet"
return hs
