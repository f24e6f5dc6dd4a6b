// Package backend is lockbox's own Go test plugin, written with Vault's SDK.
//
// One backend serves both plugin types (the binary decides which, see
// cmd/lockbox-testplugin and cmd/lockbox-testplugin-auth). It exercises what a
// host of Vault's plugin protocol must support, each piece on its own path:
//
//	kv/<path>          read, create/update (any fields), delete, list; existence check
//	root/<name>        read/write, declared a root path: the host must require sudo
//	login              unauthenticated; returns an Auth (policies, ttl, max_ttl,
//	                   num_uses, metadata, renewable) whose renewal calls back here
//	renewals/<name>    how many times the Auth of <name> was renewed
//	creds/<name>       read issues a secret of type "creds" (renewable, revocable)
//	leases/            list of issued creds ids; leases/<id>: issued/renewed/revoked
//	revocations        read: the ids the host revoked, in order
//	config             login_secret: when set, login requires it
//	info               process, mount and SystemView facts as the plugin sees them
//	password/<policy>  SystemView.GeneratePasswordFromPolicy
//	fail/panic         panics in the handler (the process dies)
//	fail/hang          blocks (seconds=N, default forever; honor_cancel=true to
//	                   return when the host cancels the request)
//	fail/exit          exits the process (code=N, default 7)
//	fail/error         returns an error response (message, status)
//	fail/big           returns a response of about bytes=N bytes
//
// Startup failures are chosen with the environment (set it in the catalog
// entry's env); see internal/serve.
package backend

import (
	"context"
	"strings"
	"sync"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Version is the plugin version reported to the host (PluginVersion). Override
// it at build time to get distinct binaries of the same plugin:
//
//	go build -ldflags "-X lockbox.test/testplugin/backend.Version=v2.0.0" ...
var Version = "v1.0.0"

// Factory returns a backend factory for the given type (logical.TypeLogical
// for a secrets engine, logical.TypeCredential for an auth method).
func Factory(typ logical.BackendType) logical.Factory {
	return func(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
		b := New(typ)
		if err := b.Setup(ctx, conf); err != nil {
			return nil, err
		}
		return b, nil
	}
}

// Backend is the test plugin's backend.
type Backend struct {
	*framework.Backend

	// leaseMu serializes read-modify-write of lease and renewal records.
	leaseMu sync.Mutex
}

// New builds the backend without setting it up.
func New(typ logical.BackendType) *Backend {
	b := &Backend{}
	b.Backend = &framework.Backend{
		Help:           strings.TrimSpace(backendHelp),
		BackendType:    typ,
		RunningVersion: Version,
		PathsSpecial: &logical.Paths{
			Root:            []string{"root", "root/*"},
			Unauthenticated: []string{"login"},
		},
		Secrets: []*framework.Secret{b.credsSecret()},
		Paths: framework.PathAppend(
			b.kvPaths(),
			b.rootPaths(),
			b.authPaths(),
			b.credsPaths(),
			b.infoPaths(),
			b.failPaths(),
		),
		AuthRenew: b.authRenew,
	}
	return b
}

const backendHelp = `
lockbox's Go test plugin: kv-like storage, a root path, an unauthenticated
login, a renewable and revocable secret type, and failure hooks.
`
