-- Argo CD health check for lockbox.dev resources (SecretsMount and
-- PluginCatalogEntry), from their kstatus-style status:
--   no status yet, or status for an older generation  -> Progressing
--   Ready=True                                        -> Healthy
--   Ready=False, reason PluginMissing                 -> Progressing
--     (the mount waits for its catalog entry, e.g. within one sync)
--   Ready=False, any other reason                     -> Degraded
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
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    local why = (c.reason or "") .. ": " .. (c.message or "")
    if c.status == "True" then
      hs.status = "Healthy"
    elseif c.status == "False" and c.reason ~= "PluginMissing" then
      hs.status = "Degraded"
    else
      hs.status = "Progressing"
    end
    hs.message = why
    return hs
  end
end
hs.status = "Progressing"
hs.message = "No Ready condition yet"
return hs
