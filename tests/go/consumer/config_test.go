package main

import (
	"strings"
	"testing"
	"time"
)

const good = `# the README's manifests, shortened
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: lockbox
  namespace: team-a
spec:
  provider:
    vault:
      server: https://lockbox.lockbox.svc:8200
      path: secret
      version: v2
      auth:
        kubernetes:
          mountPath: kubernetes
          role: app
          serviceAccountRef:
            name: app
            audiences: [lockbox]
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: db
  namespace: team-a
spec:
  refreshInterval: 15s
  secretStoreRef:
    name: lockbox
    kind: SecretStore
  target:
    name: db-credentials
    creationPolicy: Owner
  data:
  - secretKey: username
    remoteRef:
      key: app/db
      property: username
  - secretKey: password
    remoteRef:
      key: app/db
      property: password
      conversionStrategy: Default
`

func TestParseGood(t *testing.T) {
	c, err := ParseConfig(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Refresh != 15*time.Second || c.TargetName() != "db-credentials" || c.Namespace() != "team-a" || c.MountPath() != "kubernetes" {
		t.Fatalf("parsed %+v", c)
	}
	k := c.Store.Spec.Provider.Vault.Auth.Kubernetes
	if k.Role != "app" || k.ServiceAccountRef.Name != "app" || k.ServiceAccountRef.Audiences[0] != "lockbox" {
		t.Fatalf("auth %+v", k)
	}
}

func TestParseRefusals(t *testing.T) {
	for _, tc := range []struct{ old, new, want string }{
		{"version: v2", "version: v1", `version "v1": this consumer reads kv version 2 only`},
		{"      path: secret\n", "", "spec.provider.vault.path is empty"},
		{"          role: app\n", "", "auth.kubernetes.role is empty"},
		{"refreshInterval: 15s", "refreshInterval: soon", `refreshInterval "soon"`},
		{"    name: lockbox\n    kind", "    name: other\n    kind", `does not name the SecretStore "lockbox"`},
		{"conversionStrategy: Default", "conversionStrategy: Unicode", `remoteRef.conversionStrategy "Unicode"`},
		{"creationPolicy: Owner", "creationPolicy: Merge", `creationPolicy "Merge"`},
		{"secretKey: password", "secretKey: username", `secretKey "username" is given twice`},
		{"      server: https", "      server: ftp", `server "ftp://`},
		{"      version: v2\n", "      version: v2\n      readYourWrites: true\n", `unknown field "readYourWrites"`},
		{"kind: ExternalSecret", "kind: ClusterExternalSecret", `kind "ClusterExternalSecret"`},
		{"  namespace: team-a\nspec:\n  refresh", "  namespace: team-b\nspec:\n  refresh", `SecretStore namespace "team-a" differs`},
	} {
		in := strings.Replace(good, tc.old, tc.new, 1)
		if in == good {
			t.Fatalf("%q is not in the manifests", tc.old)
		}
		_, err := ParseConfig(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q → %q: got %v, want an error with %q", tc.old, tc.new, err, tc.want)
		}
	}
	_, err := ParseConfig(strings.NewReader(good[:strings.Index(good, "---")]))
	if err == nil || !strings.Contains(err.Error(), "no ExternalSecret") {
		t.Errorf("a lone SecretStore: %v", err)
	}
}

func TestDataPath(t *testing.T) {
	for _, tc := range [][3]string{
		{"secret", "app/db", "secret/data/app/db"},
		{"secret/", "/app/db", "secret/data/app/db"},
		{"secret", "secret/app/db", "secret/data/app/db"},
		{"secret", "secret/data/app/db", "secret/data/app/db"},
		{"team-a/kv", "app", "team-a/kv/data/app"},
	} {
		if got := DataPath(tc[0], tc[1]); got != tc[2] {
			t.Errorf("DataPath(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

func TestProperty(t *testing.T) {
	data := map[string]any{"user": "u", "port": 5432.0, "nested": map[string]any{"a": "b"}, "x.y": "dotted"}
	for _, tc := range [][2]string{
		{"user", "u"}, {"port", "5432"}, {"nested.a", "b"}, {"x.y", "dotted"}, {"nested", `{"a":"b"}`},
	} {
		got, err := property(data, tc[0])
		if err != nil || string(got) != tc[1] {
			t.Errorf("property %q = %q, %v; want %q", tc[0], got, err, tc[1])
		}
	}
	for _, name := range []string{"missing", "user.x", "nested.b"} {
		if _, err := property(data, name); err == nil || !strings.Contains(err.Error(), "no property") {
			t.Errorf("property %q: %v", name, err)
		}
	}
}
