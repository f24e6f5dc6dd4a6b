package main

// The manifests this consumer reads: a SecretStore with a Vault provider and
// an ExternalSecret, in External Secrets Operator's `external-secrets.io/v1`
// shape (the field names and defaults are ESO's), restricted to what this
// consumer implements: kv version 2, Kubernetes auth, explicit `data`
// entries. Anything else is refused by name instead of being ignored, so a
// manifest that works here means the same to ESO.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const apiVersion = "external-secrets.io/v1"

type objectMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// SecretStore is ESO's SecretStore, Vault provider only.
type SecretStore struct {
	typeMeta `json:",inline"`
	Metadata objectMeta      `json:"metadata"`
	Spec     secretStoreSpec `json:"spec"`
}

type secretStoreSpec struct {
	Provider struct {
		Vault *vaultProvider `json:"vault"`
	} `json:"provider"`
}

type vaultProvider struct {
	// Server is the lockbox (Vault) address, e.g. https://lockbox.lockbox.svc:8200.
	Server string `json:"server"`
	// Path is the kv mount, e.g. "secret".
	Path *string `json:"path,omitempty"`
	// Version is the kv version: only "v2".
	Version string `json:"version,omitempty"`
	// Namespace is sent as X-Vault-Namespace.
	Namespace *string `json:"namespace,omitempty"`
	// CABundle is the PEM of the CA that signed the server's certificate
	// (base64 in YAML, as in ESO).
	CABundle []byte    `json:"caBundle,omitempty"`
	Auth     vaultAuth `json:"auth"`
}

type vaultAuth struct {
	Kubernetes *kubernetesAuth `json:"kubernetes"`
}

type kubernetesAuth struct {
	// MountPath of the Kubernetes auth method (default "kubernetes").
	MountPath string `json:"mountPath,omitempty"`
	// Role is the auth method's role.
	Role string `json:"role"`
	// ServiceAccountRef: a token of this ServiceAccount (of the store's
	// namespace) is requested from the TokenRequest API for the login.
	// Without it, the pod's own token file is used, as in ESO.
	ServiceAccountRef *serviceAccountRef `json:"serviceAccountRef,omitempty"`
}

type serviceAccountRef struct {
	Name      string   `json:"name"`
	Audiences []string `json:"audiences,omitempty"`
}

// ExternalSecret is ESO's ExternalSecret with explicit `data` entries.
type ExternalSecret struct {
	typeMeta `json:",inline"`
	Metadata objectMeta         `json:"metadata"`
	Spec     externalSecretSpec `json:"spec"`
}

type externalSecretSpec struct {
	RefreshInterval string         `json:"refreshInterval,omitempty"`
	SecretStoreRef  secretStoreRef `json:"secretStoreRef"`
	Target          target         `json:"target,omitempty"`
	Data            []dataEntry    `json:"data"`
}

type secretStoreRef struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

type target struct {
	Name           string `json:"name,omitempty"`
	CreationPolicy string `json:"creationPolicy,omitempty"`
}

type dataEntry struct {
	SecretKey string    `json:"secretKey"`
	RemoteRef remoteRef `json:"remoteRef"`
}

type remoteRef struct {
	Key      string `json:"key"`
	Property string `json:"property,omitempty"`
	Version  string `json:"version,omitempty"`
	// The ESO fields below are accepted only with their default values.
	ConversionStrategy string `json:"conversionStrategy,omitempty"`
	DecodingStrategy   string `json:"decodingStrategy,omitempty"`
	MetadataPolicy     string `json:"metadataPolicy,omitempty"`
}

// Config is one validated SecretStore and ExternalSecret pair.
type Config struct {
	Store    SecretStore
	External ExternalSecret
	// Refresh is the ExternalSecret's refreshInterval (ESO's default 1h).
	Refresh time.Duration
}

// Namespace is the namespace of both objects (and of the target Secret and
// the ServiceAccount).
func (c *Config) Namespace() string { return c.External.Metadata.Namespace }

// TargetName is the Secret to write: target.name, or the ExternalSecret's name.
func (c *Config) TargetName() string {
	if c.External.Spec.Target.Name != "" {
		return c.External.Spec.Target.Name
	}
	return c.External.Metadata.Name
}

// MountPath is the auth method's mount path (ESO's default "kubernetes").
func (c *Config) MountPath() string {
	k := c.Store.Spec.Provider.Vault.Auth.Kubernetes
	if k.MountPath != "" {
		return strings.Trim(k.MountPath, "/")
	}
	return "kubernetes"
}

// ParseConfig reads the YAML documents of `r` (a SecretStore and an
// ExternalSecret, in any order) and validates them.
func ParseConfig(r io.Reader) (*Config, error) {
	docs := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var store *SecretStore
	var ext *ExternalSecret
	for n := 1; ; n++ {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			if store == nil || ext == nil {
				return nil, missingKinds(store, ext)
			}
			return validate(store, ext)
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var tm typeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		if tm.APIVersion == "" && tm.Kind == "" {
			continue // only comments
		}
		if tm.APIVersion != apiVersion {
			return nil, fmt.Errorf("document %d: apiVersion %q: want %q", n, tm.APIVersion, apiVersion)
		}
		switch tm.Kind {
		case "SecretStore":
			if store != nil {
				return nil, fmt.Errorf("document %d: a second SecretStore: give one SecretStore and one ExternalSecret", n)
			}
			store = &SecretStore{}
			if err := yaml.UnmarshalStrict(doc, store); err != nil {
				return nil, fmt.Errorf("document %d (SecretStore): %w (this consumer supports the Vault provider's server, path, version, namespace, caBundle and auth.kubernetes fields)", n, err)
			}
		case "ExternalSecret":
			if ext != nil {
				return nil, fmt.Errorf("document %d: a second ExternalSecret: give one SecretStore and one ExternalSecret", n)
			}
			ext = &ExternalSecret{}
			if err := yaml.UnmarshalStrict(doc, ext); err != nil {
				return nil, fmt.Errorf("document %d (ExternalSecret): %w (this consumer supports refreshInterval, secretStoreRef, target.name, target.creationPolicy and data)", n, err)
			}
		default:
			return nil, fmt.Errorf("document %d: kind %q: want SecretStore or ExternalSecret", n, tm.Kind)
		}
	}
}

func missingKinds(store *SecretStore, ext *ExternalSecret) error {
	var missing []string
	if store == nil {
		missing = append(missing, "SecretStore")
	}
	if ext == nil {
		missing = append(missing, "ExternalSecret")
	}
	return fmt.Errorf("no %s in the manifests: give one SecretStore and one ExternalSecret", strings.Join(missing, " and no "))
}

func validate(store *SecretStore, ext *ExternalSecret) (*Config, error) {
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }

	if store.Metadata.Name == "" {
		bad("SecretStore metadata.name is empty")
	}
	if ext.Metadata.Name == "" {
		bad("ExternalSecret metadata.name is empty")
	}
	if ext.Metadata.Namespace == "" {
		bad("ExternalSecret metadata.namespace is empty: name the namespace of the target Secret")
	}
	if store.Metadata.Namespace != ext.Metadata.Namespace {
		bad("SecretStore namespace %q differs from the ExternalSecret's %q: a SecretStore serves its own namespace", store.Metadata.Namespace, ext.Metadata.Namespace)
	}
	v := store.Spec.Provider.Vault
	if v == nil {
		bad("SecretStore spec.provider.vault is missing: this consumer speaks only the Vault provider")
	} else {
		if !strings.HasPrefix(v.Server, "http://") && !strings.HasPrefix(v.Server, "https://") {
			bad("spec.provider.vault.server %q: want an http:// or https:// URL", v.Server)
		}
		if v.Version != "v2" {
			bad("spec.provider.vault.version %q: this consumer reads kv version 2 only; set version: v2", v.Version)
		}
		if v.Path == nil || strings.Trim(*v.Path, "/") == "" {
			bad("spec.provider.vault.path is empty: name the kv version 2 mount, e.g. secret")
		}
		k := v.Auth.Kubernetes
		if k == nil {
			bad("spec.provider.vault.auth.kubernetes is missing: this consumer logs in with Kubernetes auth only")
		} else {
			if k.Role == "" {
				bad("spec.provider.vault.auth.kubernetes.role is empty")
			}
			if k.ServiceAccountRef != nil && k.ServiceAccountRef.Name == "" {
				bad("spec.provider.vault.auth.kubernetes.serviceAccountRef.name is empty")
			}
		}
	}
	ref := ext.Spec.SecretStoreRef
	if ref.Name != store.Metadata.Name || (ref.Kind != "" && ref.Kind != "SecretStore") {
		bad("ExternalSecret spec.secretStoreRef (%s %q) does not name the SecretStore %q", orDefault(ref.Kind, "SecretStore"), ref.Name, store.Metadata.Name)
	}
	if p := ext.Spec.Target.CreationPolicy; p != "" && p != "Owner" {
		bad("ExternalSecret spec.target.creationPolicy %q: this consumer implements Owner only", p)
	}
	if len(ext.Spec.Data) == 0 {
		bad("ExternalSecret spec.data is empty: list the keys to sync")
	}
	seen := map[string]bool{}
	for i, d := range ext.Spec.Data {
		switch {
		case d.SecretKey == "":
			bad("spec.data[%d].secretKey is empty", i)
		case seen[d.SecretKey]:
			bad("spec.data[%d].secretKey %q is given twice", i, d.SecretKey)
		}
		seen[d.SecretKey] = true
		if strings.Trim(d.RemoteRef.Key, "/") == "" {
			bad("spec.data[%d].remoteRef.key is empty", i)
		}
		for _, f := range []struct{ name, value, def string }{
			{"conversionStrategy", d.RemoteRef.ConversionStrategy, "Default"},
			{"decodingStrategy", d.RemoteRef.DecodingStrategy, "None"},
			{"metadataPolicy", d.RemoteRef.MetadataPolicy, "None"},
		} {
			if f.value != "" && f.value != f.def {
				bad("spec.data[%d].remoteRef.%s %q: this consumer implements %s only", i, f.name, f.value, f.def)
			}
		}
	}
	refresh := time.Hour
	if s := ext.Spec.RefreshInterval; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			bad("ExternalSecret spec.refreshInterval %q: want a positive duration such as 30s or 1h", s)
		} else {
			refresh = d
		}
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return &Config{Store: *store, External: *ext, Refresh: refresh}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// DataPath is the kv version 2 read path of `key` under mount `mount`, as
// ESO's Vault provider builds it: `<mount>/data/<key>`, where a key that
// already starts with `<mount>/` (or `<mount>/data/`) is not prefixed twice.
func DataPath(mount, key string) string {
	mount = strings.Trim(mount, "/")
	key = strings.TrimLeft(key, "/")
	if rest, ok := strings.CutPrefix(key, mount+"/"); ok {
		key = strings.TrimPrefix(rest, "data/")
	}
	return mount + "/data/" + key
}
