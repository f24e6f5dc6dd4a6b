"""hvac's kv version 2 API (client.secrets.kv.v2) against a lockbox dev
server whose secret/ is the upstream kv plugin. Each step asserts what it
got; the last line says ok."""
import os
import sys

import hvac
from hvac.exceptions import InvalidPath

c = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
kv = c.secrets.kv.v2
mount = "secret"


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


kv.configure(max_versions=7, mount_point=mount)
conf = kv.read_configuration(mount_point=mount)["data"]
check(conf["max_versions"] == 7, f"configure/read_configuration: {conf}")

r = kv.create_or_update_secret(path="hv/app", secret={"a": "1"}, mount_point=mount)
check(r["data"]["version"] == 1, f"first write is version 1: {r}")
r = kv.read_secret_version(path="hv/app", mount_point=mount, raise_on_deleted_version=True)
check(r["data"]["data"] == {"a": "1"}, f"read: {r}")

r = kv.patch(path="hv/app", secret={"b": "2"}, mount_point=mount)
check(r["data"]["version"] == 2, f"patch makes version 2: {r}")
r = kv.read_secret_version(path="hv/app", mount_point=mount, raise_on_deleted_version=True)
check(r["data"]["data"] == {"a": "1", "b": "2"}, f"patch merged: {r}")

# Check-and-set: a stale cas is refused.
try:
    kv.create_or_update_secret(path="hv/app", secret={"a": "x"}, cas=1, mount_point=mount)
    check(False, "a stale cas was accepted")
except hvac.exceptions.InvalidRequest as e:
    check("check-and-set" in str(e), f"cas error names check-and-set: {e}")

meta = kv.read_secret_metadata(path="hv/app", mount_point=mount)["data"]
check(meta["current_version"] == 2, f"metadata current_version: {meta}")
check(set(meta["versions"]) == {"1", "2"}, f"metadata versions: {meta}")

kv.delete_latest_version_of_secret(path="hv/app", mount_point=mount)
meta = kv.read_secret_metadata(path="hv/app", mount_point=mount)["data"]
check(meta["versions"]["2"]["deletion_time"] != "", f"latest version deleted: {meta}")
kv.undelete_secret_versions(path="hv/app", versions=[2], mount_point=mount)
r = kv.read_secret_version(path="hv/app", mount_point=mount, raise_on_deleted_version=True)
check(r["data"]["data"] == {"a": "1", "b": "2"}, f"undeleted: {r}")

kv.destroy_secret_versions(path="hv/app", versions=[1], mount_point=mount)
meta = kv.read_secret_metadata(path="hv/app", mount_point=mount)["data"]
check(meta["versions"]["1"]["destroyed"] is True, f"version 1 destroyed: {meta}")

kv.update_metadata(path="hv/app", max_versions=3, custom_metadata={"team": "a"}, mount_point=mount)
meta = kv.read_secret_metadata(path="hv/app", mount_point=mount)["data"]
check(meta["max_versions"] == 3 and meta["custom_metadata"] == {"team": "a"}, f"update_metadata: {meta}")

keys = kv.list_secrets(path="hv", mount_point=mount)["data"]["keys"]
check(keys == ["app"], f"list: {keys}")

kv.delete_metadata_and_all_versions(path="hv/app", mount_point=mount)
try:
    kv.read_secret_version(path="hv/app", mount_point=mount, raise_on_deleted_version=True)
    check(False, "read after delete_metadata_and_all_versions succeeded")
except InvalidPath:
    pass

print("hvac kv v2: ok")
