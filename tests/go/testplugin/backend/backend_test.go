package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func newTestBackend(t *testing.T, typ logical.BackendType) (*Backend, logical.Storage) {
	t.Helper()
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	b := New(typ)
	if err := b.Setup(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	return b, conf.StorageView
}

func do(t *testing.T, b *Backend, s logical.Storage, op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	t.Helper()
	resp, err := b.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: path, Data: data, Storage: s})
	if err != nil {
		t.Fatalf("%s %s: %v (response %#v)", op, path, err, resp)
	}
	return resp
}

func TestKV(t *testing.T) {
	b, s := newTestBackend(t, logical.TypeLogical)
	ctx := context.Background()

	found, exists, err := b.HandleExistenceCheck(ctx, &logical.Request{Operation: logical.CreateOperation, Path: "kv/a/b", Storage: s})
	if err != nil || !found || exists {
		t.Fatalf("existence before write: found=%v exists=%v err=%v", found, exists, err)
	}
	resp := do(t, b, s, logical.CreateOperation, "kv/a/b", map[string]interface{}{"message": "Hello World"})
	if resp.Data["operation"] != "create" {
		t.Fatalf("write response: %#v", resp.Data)
	}
	_, exists, _ = b.HandleExistenceCheck(ctx, &logical.Request{Operation: logical.CreateOperation, Path: "kv/a/b", Storage: s})
	if !exists {
		t.Fatal("entry does not exist after write")
	}
	if got := do(t, b, s, logical.ReadOperation, "kv/a/b", nil).Data["message"]; got != "Hello World" {
		t.Fatalf("read: %v", got)
	}
	if keys := do(t, b, s, logical.ListOperation, "kv/", nil).Data["keys"].([]string); len(keys) != 1 || keys[0] != "a/" {
		t.Fatalf("list kv/: %v", keys)
	}
	if keys := do(t, b, s, logical.ListOperation, "kv/a/", nil).Data["keys"].([]string); len(keys) != 1 || keys[0] != "b" {
		t.Fatalf("list kv/a/: %v", keys)
	}
	do(t, b, s, logical.DeleteOperation, "kv/a/b", nil)
	if resp := do(t, b, s, logical.ReadOperation, "kv/a/b", nil); resp != nil {
		t.Fatalf("read after delete: %#v", resp)
	}
}

func TestSpecialPaths(t *testing.T) {
	b, _ := newTestBackend(t, logical.TypeCredential)
	p := b.SpecialPaths()
	if strings.Join(p.Root, ",") != "root,root/*" || strings.Join(p.Unauthenticated, ",") != "login" {
		t.Fatalf("special paths: %#v", p)
	}
	if b.Type() != logical.TypeCredential {
		t.Fatalf("type %v", b.Type())
	}
	if v := b.PluginVersion().Version; v != Version {
		t.Fatalf("plugin version %q", v)
	}
}

func TestLoginAndRenew(t *testing.T) {
	b, s := newTestBackend(t, logical.TypeCredential)
	resp := do(t, b, s, logical.UpdateOperation, "login", map[string]interface{}{
		"name": "alice", "policies": "dev,ops", "ttl": "60s", "max_ttl": "120s", "num_uses": 3,
		"metadata": map[string]interface{}{"team": "blue"},
	})
	a := resp.Auth
	if a == nil || strings.Join(a.Policies, ",") != "dev,ops" || a.TTL != time.Minute || a.MaxTTL != 2*time.Minute ||
		a.NumUses != 3 || !a.Renewable || a.Metadata["team"] != "blue" || a.Metadata["name"] != "alice" || a.Alias.Name != "alice" {
		t.Fatalf("auth: %#v", a)
	}

	renewed, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RenewOperation, Path: "login", Auth: a, Storage: s})
	if err != nil || renewed.Auth == nil || renewed.Auth.TTL != time.Minute {
		t.Fatalf("renew: %#v %v", renewed, err)
	}
	if n := do(t, b, s, logical.ReadOperation, "renewals/alice", nil).Data["count"]; n != 1 {
		t.Fatalf("renewals: %v", n)
	}

	do(t, b, s, logical.UpdateOperation, "config", map[string]interface{}{"login_secret": "s3cret"})
	if _, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "login",
		Data: map[string]interface{}{"name": "bob", "secret": "wrong"}, Storage: s}); err != logical.ErrPermissionDenied {
		t.Fatalf("login with a wrong secret: %v", err)
	}
	do(t, b, s, logical.UpdateOperation, "login", map[string]interface{}{"name": "bob", "secret": "s3cret"})

	denied := do(t, b, s, logical.UpdateOperation, "login", map[string]interface{}{"name": "carol", "secret": "s3cret", "deny_renew": true}).Auth
	if _, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RenewOperation, Path: "login", Auth: denied, Storage: s}); err == nil {
		t.Fatal("renewal with deny_renew succeeded")
	}
}

func TestCredsRenewRevoke(t *testing.T) {
	b, s := newTestBackend(t, logical.TypeLogical)
	resp := do(t, b, s, logical.ReadOperation, "creds/app", map[string]interface{}{"ttl": "30s"})
	if resp.Secret == nil || !resp.Secret.Renewable || resp.Secret.TTL != 30*time.Second {
		t.Fatalf("secret: %#v", resp.Secret)
	}
	id := resp.Data["id"].(string)
	secret := resp.Secret
	secret.LeaseID = "creds/app/lease1"

	if _, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RenewOperation, Secret: secret, Storage: s}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RevokeOperation, Secret: secret, Storage: s}); err != nil {
		t.Fatal(err)
	}
	lease := do(t, b, s, logical.ReadOperation, "leases/"+id, nil).Data
	if lease["renewals"] != 1 || lease["revoked"] != true || lease["lease_id"] != "creds/app/lease1" {
		t.Fatalf("lease record: %#v", lease)
	}
	if ids := do(t, b, s, logical.ReadOperation, "revocations", nil).Data["ids"].([]string); len(ids) != 1 || ids[0] != id {
		t.Fatalf("revocations: %v", ids)
	}
	if _, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RenewOperation, Secret: secret, Storage: s}); err == nil {
		t.Fatal("renewal after revocation succeeded")
	}
}

func TestFailHooks(t *testing.T) {
	b, s := newTestBackend(t, logical.TypeLogical)
	if resp := do(t, b, s, logical.ReadOperation, "fail/big", map[string]interface{}{"bytes": 1000}); len(resp.Data["blob"].(string)) != 1000 {
		t.Fatal("fail/big size")
	}
	if resp := do(t, b, s, logical.ReadOperation, "fail/hang", map[string]interface{}{"seconds": 1}); resp.Data["hung_seconds"] != 1 {
		t.Fatal("fail/hang with seconds=1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "fail/hang",
		Data: map[string]interface{}{"honor_cancel": true}, Storage: s}); err != context.DeadlineExceeded {
		t.Fatalf("fail/hang honoring cancel: %v", err)
	}
	if _, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "fail/error",
		Data: map[string]interface{}{"status": 503, "message": "down"}, Storage: s}); err == nil || err.Error() != "down" {
		t.Fatalf("fail/error: %v", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("fail/panic did not panic")
			}
		}()
		_, _ = b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "fail/panic", Storage: s})
	}()
}
