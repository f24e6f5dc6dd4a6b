"""Drives lockbox with hvac, the Python Vault client, unchanged.

Run by tests/integration/compat.rs with VAULT_ADDR, VAULT_TOKEN and
LOCKBOX_UNSEAL_KEY set. Exits non-zero (with a traceback) on any mismatch.
"""
import os
import sys

import hvac
from hvac import exceptions

addr = os.environ["VAULT_ADDR"]
token = os.environ["VAULT_TOKEN"]
unseal_key = os.environ["LOCKBOX_UNSEAL_KEY"]

client = hvac.Client(url=addr, token=token)
assert client.is_authenticated(), "root token not accepted"
assert client.sys.is_initialized()
assert not client.sys.is_sealed()

health = client.sys.read_health_status(method="GET")
assert health["initialized"] and not health["sealed"], health

# Secrets engines.
client.sys.enable_secrets_engine("kv", path="team", description="team kv", options={"version": "1"})
mounts = client.sys.list_mounted_secrets_engines()
assert "team/" in mounts["data"], mounts
assert mounts["data"]["team/"]["type"] == "kv"
client.sys.tune_mount_configuration(path="team", default_lease_ttl="1h", max_lease_ttl="2h")
tuned = client.sys.read_mount_configuration(path="team")
assert tuned["data"]["default_lease_ttl"] == 3600, tuned

kv = client.secrets.kv.v1
kv.create_or_update_secret(path="app/db", secret={"password": "s3cret"}, mount_point="team")
read = kv.read_secret(path="app/db", mount_point="team")
assert read["data"] == {"password": "s3cret"}, read
listed = kv.list_secrets(path="app", mount_point="team")
assert listed["data"]["keys"] == ["db"], listed
kv.delete_secret(path="app/db", mount_point="team")
try:
    kv.read_secret(path="app/db", mount_point="team")
    raise AssertionError("deleted secret still readable")
except exceptions.InvalidPath:
    pass

client.sys.move_backend("team", "team-moved")
assert "team-moved/" in client.sys.list_mounted_secrets_engines()["data"]

# Policies and tokens.
client.sys.create_or_update_acl_policy(
    name="reader", policy='path "team-moved/*" { capabilities = ["read", "list"] }'
)
assert "reader" in client.sys.list_acl_policies()["data"]["keys"]
assert "team-moved" in client.sys.read_acl_policy("reader")["data"]["policy"]
created = client.auth.token.create(policies=["reader"], ttl="1h")
child_token = created["auth"]["client_token"]
assert created["auth"]["policies"] == ["default", "reader"], created

child = hvac.Client(url=addr, token=child_token)
assert child.is_authenticated()
me = child.auth.token.lookup_self()
assert me["data"]["policies"] == ["default", "reader"], me
renewed = child.auth.token.renew_self(increment="30m")
assert renewed["auth"]["lease_duration"] == 1800, renewed
kv.create_or_update_secret(path="visible", secret={"a": "1"}, mount_point="team-moved")
assert child.secrets.kv.v1.read_secret(path="visible", mount_point="team-moved")["data"]["a"] == "1"
try:
    child.secrets.kv.v1.create_or_update_secret(path="visible", secret={"a": "2"}, mount_point="team-moved")
    raise AssertionError("write allowed by a read-only policy")
except exceptions.Forbidden:
    pass
child.auth.token.revoke_self()
assert not child.is_authenticated()

bad = hvac.Client(url=addr, token="lbs.wrong")
assert not bad.is_authenticated()

# Seal and unseal.
client.sys.seal()
assert client.sys.is_sealed()
try:
    kv.read_secret(path="visible", mount_point="team-moved")
    raise AssertionError("read while sealed")
except exceptions.VaultDown:
    pass
status = client.sys.submit_unseal_key(unseal_key)
assert status["sealed"] is False, status
client.sys.disable_secrets_engine("team-moved")
print("hvac compatibility: ok")
