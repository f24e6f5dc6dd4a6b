package main

// One sync, the way External Secrets Operator's Vault provider does it for a
// SecretStore with `auth.kubernetes` and `version: v2` (ESO v0.16.2, token
// cache off, its default), with the same client library at the same version
// (github.com/hashicorp/vault/api v1.16.0, api/auth/kubernetes v0.9.0):
//
//  1. vault.DefaultConfig() with the store's server address (and caBundle as
//     the TLS roots), vault.NewClient, SetNamespace when the store has one;
//  2. a ServiceAccount token from the TokenRequest API (CoreV1
//     ServiceAccounts(ns).CreateToken, the ref's audiences, 600 s), or the
//     pod's token file without a serviceAccountRef;
//  3. authkubernetes.NewKubernetesAuth(role, WithServiceAccountToken,
//     WithMountPath) and client.Auth().Login: a write of {role, jwt} to
//     auth/<mountPath>/login that sets the client token;
//  4. per data entry, client.Logical().ReadWithDataWithContext on
//     <path>/data/<key> (with ?version= when remoteRef.version is set), the
//     value taken from the response's data.data (the property, or the whole
//     map as JSON without one);
//  5. at the end, ESO's Close: auth/token/lookup-self
//     (Auth().Token().LookupSelfWithContext), and revoke-self when the token
//     is a service token with a TTL of a minute or more.
//
// Then the target Secret is created, or updated only when its data differ.
// No secret value is ever logged or put into an error.

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"

	vault "github.com/hashicorp/vault/api"
	authkubernetes "github.com/hashicorp/vault/api/auth/kubernetes"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The labels on every Secret the consumer writes: who manages it and for
// which ExternalSecret. A Secret without them is never overwritten.
const (
	managedByLabel      = "app.kubernetes.io/managed-by"
	managedByValue      = "lockbox-consumer"
	externalSecretLabel = "consumer.lockbox.test/external-secret"
)

// ESO's TokenRequest lifetime for serviceAccountRef logins.
const tokenSeconds int64 = 600

// Syncer syncs one ExternalSecret.
type Syncer struct {
	Config *Config
	Kube   kubernetes.Interface
	// TokenFile is read for the login when the store has no
	// serviceAccountRef (ESO reads the pod's own token there).
	TokenFile string
	// Logf receives progress lines (never secret values).
	Logf func(format string, args ...any)
}

// Outcome of a successful sync.
type Outcome struct {
	// Action is "created", "updated" or "unchanged".
	Action string
	// Keys are the target Secret's keys, sorted.
	Keys []string
}

// Sync logs in, reads every data entry and writes the target Secret.
func (s *Syncer) Sync(ctx context.Context) (Outcome, error) {
	values, err := s.fetch(ctx)
	if err != nil {
		return Outcome{}, err
	}
	action, err := s.write(ctx, values)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Action: action, Keys: slices.Sorted(maps.Keys(values))}, nil
}

// describe renders a Vault API error as "HTTP <code>: <errors>" (one line),
// other errors as they are.
func describe(err error) string {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return fmt.Sprintf("HTTP %d: %s", re.StatusCode, strings.Join(re.Errors, "; "))
	}
	return err.Error()
}

func (s *Syncer) newClient() (*vault.Client, error) {
	v := s.Config.Store.Spec.Provider.Vault
	cfg := vault.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault client configuration: %w", cfg.Error)
	}
	cfg.Address = v.Server
	if len(v.CABundle) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(v.CABundle) {
			return nil, errors.New("spec.provider.vault.caBundle holds no PEM certificate")
		}
		transport, ok := cfg.HttpClient.Transport.(*http.Transport)
		if !ok {
			return nil, errors.New("vault client: unexpected HTTP transport, cannot set caBundle")
		}
		transport.TLSClientConfig.RootCAs = pool
	}
	client, err := vault.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", v.Server, err)
	}
	// Only the Kubernetes login gives this client a token (never VAULT_TOKEN).
	client.ClearToken()
	if v.Namespace != nil {
		client.SetNamespace(*v.Namespace)
	}
	return client, nil
}

// jwt is the ServiceAccount token the login presents.
func (s *Syncer) jwt(ctx context.Context) (string, string, error) {
	k := s.Config.Store.Spec.Provider.Vault.Auth.Kubernetes
	ns := s.Config.Namespace()
	if ref := k.ServiceAccountRef; ref != nil {
		who := fmt.Sprintf("ServiceAccount %s/%s", ns, ref.Name)
		seconds := tokenSeconds
		req := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{
			Audiences:         ref.Audiences,
			ExpirationSeconds: &seconds,
		}}
		resp, err := s.Kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, ref.Name, req, metav1.CreateOptions{})
		if err != nil {
			return "", who, fmt.Errorf("requesting a token for %s (TokenRequest API): %w", who, err)
		}
		return resp.Status.Token, who, nil
	}
	b, err := os.ReadFile(s.TokenFile)
	if err != nil {
		return "", "", fmt.Errorf("no serviceAccountRef, and the pod's token file cannot be read: %w", err)
	}
	return strings.TrimSpace(string(b)), "the token of " + s.TokenFile, nil
}

func (s *Syncer) fetch(ctx context.Context) (map[string][]byte, error) {
	v := s.Config.Store.Spec.Provider.Vault
	client, err := s.newClient()
	if err != nil {
		return nil, err
	}
	jwt, who, err := s.jwt(ctx)
	if err != nil {
		return nil, err
	}
	mount := s.Config.MountPath()
	role := v.Auth.Kubernetes.Role
	login, err := authkubernetes.NewKubernetesAuth(role,
		authkubernetes.WithServiceAccountToken(jwt), authkubernetes.WithMountPath(mount))
	if err != nil {
		return nil, fmt.Errorf("kubernetes auth: %w", err)
	}
	if _, err := client.Auth().Login(ctx, login); err != nil {
		return nil, fmt.Errorf("login refused: PUT %s/v1/auth/%s/login as role %q with %s: %s",
			v.Server, mount, role, who, describe(err))
	}
	s.Logf("logged in at auth/%s/login as role %q with %s", mount, role, who)
	defer s.close(ctx, client)

	mountPath := strings.Trim(*v.Path, "/")
	reads := map[string]map[string]any{}
	values := map[string][]byte{}
	for _, d := range s.Config.External.Spec.Data {
		path := DataPath(mountPath, d.RemoteRef.Key)
		id := path + "?version=" + d.RemoteRef.Version
		data, ok := reads[id]
		if !ok {
			data, err = read(ctx, client, path, d.RemoteRef.Version)
			if err != nil {
				return nil, err
			}
			reads[id] = data
		}
		value, err := property(data, d.RemoteRef.Property)
		if err != nil {
			return nil, fmt.Errorf("%s (for secretKey %q): %w", path, d.SecretKey, err)
		}
		values[d.SecretKey] = value
	}
	return values, nil
}

// read is ESO's kv version 2 read: the secret's data.data.
func read(ctx context.Context, client *vault.Client, path, version string) (map[string]any, error) {
	var params map[string][]string
	if version != "" {
		params = map[string][]string{"version": {version}}
	}
	secret, err := client.Logical().ReadWithDataWithContext(ctx, path, params)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %s", path, describe(err))
	}
	if secret == nil {
		return nil, fmt.Errorf("reading %s: no secret there", path)
	}
	inner, ok := secret.Data["data"]
	if !ok {
		return nil, fmt.Errorf("reading %s: the answer has no data.data: is the mount kv version 2?", path)
	}
	if inner == nil {
		return nil, fmt.Errorf("reading %s: the version is deleted or destroyed", path)
	}
	data, ok := inner.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("reading %s: data.data is not an object", path)
	}
	return data, nil
}

// property picks `name` out of the secret's data: a top-level key first,
// then a dotted path through nested objects (ESO uses gjson for that);
// without a name, the whole data as JSON. Strings are taken as they are,
// other values as JSON.
func property(data map[string]any, name string) ([]byte, error) {
	if name == "" {
		return json.Marshal(data)
	}
	value, ok := data[name]
	if !ok {
		var cur any = data
		for _, part := range strings.Split(name, ".") {
			m, isMap := cur.(map[string]any)
			if !isMap {
				return nil, fmt.Errorf("no property %q", name)
			}
			if cur, ok = m[part]; !ok {
				return nil, fmt.Errorf("no property %q", name)
			}
		}
		value = cur
	}
	if s, isString := value.(string); isString {
		return []byte(s), nil
	}
	return json.Marshal(value)
}

// close is ESO's Close without a token cache: look the token up, revoke it
// if it is a service token that is not about to expire.
func (s *Syncer) close(ctx context.Context, client *vault.Client) {
	me, err := client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil || me == nil {
		s.Logf("warning: auth/token/lookup-self failed, the token is left to expire: %s", describeOr(err, "empty answer"))
		return
	}
	if t, _ := me.Data["type"].(string); t == "batch" {
		return
	}
	if ttl, err := me.TokenTTL(); err == nil && ttl.Seconds() < 60 {
		return
	}
	if err := client.Auth().Token().RevokeSelfWithContext(ctx, ""); err != nil {
		s.Logf("warning: auth/token/revoke-self failed, the token is left to expire: %s", describe(err))
		return
	}
	client.ClearToken()
}

func describeOr(err error, otherwise string) string {
	if err != nil {
		return describe(err)
	}
	return otherwise
}

// write creates the target Secret, or updates it when its data differ.
func (s *Syncer) write(ctx context.Context, values map[string][]byte) (string, error) {
	ns, name, owner := s.Config.Namespace(), s.Config.TargetName(), s.Config.External.Metadata.Name
	secrets := s.Kube.CoreV1().Secrets(ns)
	cur, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:      name,
				Namespace: ns,
				Labels:    map[string]string{managedByLabel: managedByValue, externalSecretLabel: owner},
			},
			Type: corev1.SecretTypeOpaque,
			Data: values,
		}
		if _, err := secrets.Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			return "", fmt.Errorf("creating Secret %s/%s: %w", ns, name, err)
		}
		return "created", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading Secret %s/%s: %w", ns, name, err)
	}
	if cur.Labels[managedByLabel] != managedByValue || cur.Labels[externalSecretLabel] != owner {
		return "", fmt.Errorf("Secret %s/%s exists and is not managed for ExternalSecret %q (labels %s=%s, %s=%s missing): delete it or choose another spec.target.name",
			ns, name, owner, managedByLabel, managedByValue, externalSecretLabel, owner)
	}
	if maps.EqualFunc(cur.Data, values, func(a, b []byte) bool { return string(a) == string(b) }) {
		return "unchanged", nil
	}
	cur.Data = values
	if _, err := secrets.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return "", fmt.Errorf("updating Secret %s/%s: %w", ns, name, err)
	}
	return "updated", nil
}
