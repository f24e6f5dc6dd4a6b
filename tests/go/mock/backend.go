// Package mock is a minimal secrets engine written with Vault's SDK: every
// path below the mount is a key/value entry kept in the mount's storage.
//
//	write mock/test message="Hello World"   stores {"message": "Hello World"} at test
//	read mock/test                          returns it
//	list mock/                              lists the entries
//	delete mock/test                        removes it
//
// It is lockbox's own counterpart of the mock plugin in Vault's plugin
// walkthrough; build it from this directory with
//
//	go build -o vault/plugins/mock cmd/mock/main.go
package mock

import (
	"context"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Factory creates and sets up the mock backend for one mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

type backend struct {
	*framework.Backend
}

func newBackend() *backend {
	b := &backend{}
	b.Backend = &framework.Backend{
		Help:        "The mock secrets engine stores whatever is written to it.",
		BackendType: logical.TypeLogical,
		Paths: []*framework.Path{
			{
				Pattern:             framework.MatchAllRegex("path"),
				Fields:              map[string]*framework.FieldSchema{"path": {Type: framework.TypeString}},
				TakesArbitraryInput: true,
				ExistenceCheck:      b.exists,
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation:   &framework.PathOperation{Callback: b.read},
					logical.CreateOperation: &framework.PathOperation{Callback: b.write},
					logical.UpdateOperation: &framework.PathOperation{Callback: b.write},
					logical.DeleteOperation: &framework.PathOperation{Callback: b.delete},
					logical.ListOperation:   &framework.PathOperation{Callback: b.list},
				},
				HelpSynopsis: "Stores and returns arbitrary key/value data.",
			},
		},
	}
	return b
}

// Entries are stored under "entry/<path>" so the storage layout can grow.
func key(path string) string { return "entry/" + path }

func (b *backend) exists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	e, err := req.Storage.Get(ctx, key(req.Path))
	return e != nil, err
}

func (b *backend) read(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	e, err := req.Storage.Get(ctx, key(req.Path))
	if err != nil || e == nil {
		return nil, err
	}
	var data map[string]interface{}
	if err := e.DecodeJSON(&data); err != nil {
		return nil, err
	}
	return &logical.Response{Data: data}, nil
}

func (b *backend) write(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if req.Path == "" || strings.HasSuffix(req.Path, "/") {
		return logical.ErrorResponse("a path is required"), logical.ErrInvalidRequest
	}
	if len(req.Data) == 0 {
		return logical.ErrorResponse("data must be provided"), logical.ErrInvalidRequest
	}
	e, err := logical.StorageEntryJSON(key(req.Path), req.Data)
	if err != nil {
		return nil, err
	}
	return nil, req.Storage.Put(ctx, e)
}

func (b *backend) delete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, req.Storage.Delete(ctx, key(req.Path))
}

func (b *backend) list(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	prefix := req.Path
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	keys, err := req.Storage.List(ctx, key(prefix))
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(keys), nil
}
