package backend

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// kv/ stores each entry as a JSON object under the storage key "kv/<path>".
func (b *Backend) kvPaths() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: `kv/?` + framework.MatchAllRegex("path"),
			Fields: map[string]*framework.FieldSchema{
				"path": {Type: framework.TypeString, Description: "Location of the entry under kv/."},
			},
			TakesArbitraryInput: true,
			ExistenceCheck:      b.kvExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: b.kvRead},
				logical.CreateOperation: &framework.PathOperation{Callback: b.kvWrite},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.kvWrite},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.kvDelete},
				logical.ListOperation:   &framework.PathOperation{Callback: b.kvList},
			},
			HelpSynopsis: "Arbitrary key/value entries kept in the mount's storage.",
		},
	}
}

// root/ is declared a root path in PathsSpecial: the host must require sudo.
// Entries live under the storage key "root/<path>".
func (b *Backend) rootPaths() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: `root/?` + framework.MatchAllRegex("path"),
			Fields: map[string]*framework.FieldSchema{
				"path": {Type: framework.TypeString},
			},
			TakesArbitraryInput: true,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: b.rootRead},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.rootWrite},
			},
			HelpSynopsis: "A root (sudo) path: the host must require sudo capability.",
		},
	}
}

func kvKey(path string) string { return "kv/" + path }

func (b *Backend) kvExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	e, err := req.Storage.Get(ctx, kvKey(d.Get("path").(string)))
	if err != nil {
		return false, err
	}
	return e != nil, nil
}

func (b *Backend) kvRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	path := d.Get("path").(string)
	if path == "" || strings.HasSuffix(path, "/") {
		return logical.ErrorResponse("read needs an entry name, not a directory (use list)"), logical.ErrInvalidRequest
	}
	e, err := req.Storage.Get(ctx, kvKey(path))
	if err != nil || e == nil {
		return nil, err
	}
	var data map[string]interface{}
	if err := e.DecodeJSON(&data); err != nil {
		return nil, fmt.Errorf("decoding entry %q: %w", path, err)
	}
	return &logical.Response{Data: data}, nil
}

func (b *Backend) kvWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	path := d.Get("path").(string)
	if path == "" || strings.HasSuffix(path, "/") {
		return logical.ErrorResponse("write needs an entry name, not a directory"), logical.ErrInvalidRequest
	}
	data := make(map[string]interface{}, len(req.Data))
	for k, v := range req.Data {
		if k != "path" {
			data[k] = v
		}
	}
	if len(data) == 0 {
		return logical.ErrorResponse("no data to write"), logical.ErrInvalidRequest
	}
	e, err := logical.StorageEntryJSON(kvKey(path), data)
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Put(ctx, e); err != nil {
		return nil, err
	}
	// The operation the host chose (create or update) tells tests that the
	// existence check was consulted.
	return &logical.Response{Data: map[string]interface{}{"operation": string(req.Operation)}}, nil
}

func (b *Backend) kvDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, req.Storage.Delete(ctx, kvKey(d.Get("path").(string)))
}

func (b *Backend) kvList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	prefix := d.Get("path").(string)
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	keys, err := req.Storage.List(ctx, kvKey(prefix))
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(keys), nil
}

func (b *Backend) rootRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	e, err := req.Storage.Get(ctx, "root/"+d.Get("path").(string))
	if err != nil {
		return nil, err
	}
	data := map[string]interface{}{"root": true}
	if e != nil {
		if err := e.DecodeJSON(&data); err != nil {
			return nil, err
		}
	}
	return &logical.Response{Data: data}, nil
}

func (b *Backend) rootWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	data := map[string]interface{}{"root": true}
	for k, v := range req.Data {
		if k != "path" {
			data[k] = v
		}
	}
	e, err := logical.StorageEntryJSON("root/"+d.Get("path").(string), data)
	if err != nil {
		return nil, err
	}
	return nil, req.Storage.Put(ctx, e)
}
