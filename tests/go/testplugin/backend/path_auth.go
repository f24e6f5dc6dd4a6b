package backend

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const configKey = "config"

type config struct {
	LoginSecret string `json:"login_secret"`
}

type renewalRecord struct {
	Count       int       `json:"count"`
	LastRenewal time.Time `json:"last_renewal"`
}

func (b *Backend) authPaths() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "login",
			Fields: map[string]*framework.FieldSchema{
				"name":       {Type: framework.TypeString, Required: true, Description: "Name of the identity logging in (display name and alias)."},
				"secret":     {Type: framework.TypeString, Description: "Must equal config's login_secret when one is set."},
				"policies":   {Type: framework.TypeCommaStringSlice, Description: "Policies of the token."},
				"ttl":        {Type: framework.TypeDurationSecond, Description: "Token TTL; renewals extend by this much."},
				"max_ttl":    {Type: framework.TypeDurationSecond, Description: "Token maximum TTL."},
				"num_uses":   {Type: framework.TypeInt, Description: "Use limit of the token (0: unlimited)."},
				"metadata":   {Type: framework.TypeKVPairs, Description: "Token metadata."},
				"renewable":  {Type: framework.TypeBool, Default: true, Description: "Whether the token may be renewed."},
				"deny_renew": {Type: framework.TypeBool, Description: "The renew callback refuses renewals of this token."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: b.login},
			},
			HelpSynopsis: "Unauthenticated login returning an Auth.",
		},
		{
			Pattern: "renewals/" + framework.GenericNameRegex("name"),
			Fields: map[string]*framework.FieldSchema{
				"name": {Type: framework.TypeString},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.readRenewals},
			},
			HelpSynopsis: "How many times the token of a login was renewed through this plugin.",
		},
		{
			Pattern: "config",
			Fields: map[string]*framework.FieldSchema{
				"login_secret": {Type: framework.TypeString, Description: "When set, login requires secret=<this>."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: b.readConfig},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.writeConfig},
			},
		},
	}
}

func (b *Backend) getConfig(ctx context.Context, s logical.Storage) (*config, error) {
	c := &config{}
	e, err := s.Get(ctx, configKey)
	if err != nil {
		return nil, err
	}
	if e != nil {
		if err := e.DecodeJSON(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (b *Backend) readConfig(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	c, err := b.getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{"login_secret_set": c.LoginSecret != ""}}, nil
}

func (b *Backend) writeConfig(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	e, err := logical.StorageEntryJSON(configKey, &config{LoginSecret: d.Get("login_secret").(string)})
	if err != nil {
		return nil, err
	}
	return nil, req.Storage.Put(ctx, e)
}

func (b *Backend) login(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if name == "" {
		return logical.ErrorResponse("missing name"), logical.ErrInvalidRequest
	}
	c, err := b.getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if c.LoginSecret != "" && subtle.ConstantTimeCompare([]byte(c.LoginSecret), []byte(d.Get("secret").(string))) != 1 {
		return nil, logical.ErrPermissionDenied
	}
	ttl := time.Duration(d.Get("ttl").(int)) * time.Second
	maxTTL := time.Duration(d.Get("max_ttl").(int)) * time.Second
	metadata := map[string]string{}
	for k, v := range d.Get("metadata").(map[string]string) {
		metadata[k] = v
	}
	metadata["name"] = name
	return &logical.Response{
		Auth: &logical.Auth{
			DisplayName: name,
			Policies:    d.Get("policies").([]string),
			Metadata:    metadata,
			NumUses:     d.Get("num_uses").(int),
			InternalData: map[string]interface{}{
				"name":       name,
				"ttl":        int64(ttl / time.Second),
				"max_ttl":    int64(maxTTL / time.Second),
				"deny_renew": d.Get("deny_renew").(bool),
			},
			LeaseOptions: logical.LeaseOptions{
				TTL:       ttl,
				MaxTTL:    maxTTL,
				Renewable: d.Get("renewable").(bool),
			},
			Alias: &logical.Alias{Name: name, Metadata: map[string]string{"name": name}},
		},
	}, nil
}

// authRenew is called by the host when a token created by login is renewed.
func (b *Backend) authRenew(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if req.Auth == nil {
		return nil, fmt.Errorf("renew request without auth")
	}
	name, _ := req.Auth.InternalData["name"].(string)
	if name == "" {
		return nil, fmt.Errorf("token was not created by this plugin's login (no name in its internal data)")
	}
	if deny, _ := req.Auth.InternalData["deny_renew"].(bool); deny {
		return logical.ErrorResponse("renewal of %q denied by the plugin", name), logical.ErrPermissionDenied
	}
	b.leaseMu.Lock()
	defer b.leaseMu.Unlock()
	rec := &renewalRecord{}
	key := "renewals/" + name
	e, err := req.Storage.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if e != nil {
		if err := e.DecodeJSON(rec); err != nil {
			return nil, err
		}
	}
	rec.Count++
	rec.LastRenewal = time.Now().UTC()
	if e, err = logical.StorageEntryJSON(key, rec); err != nil {
		return nil, err
	}
	if err := req.Storage.Put(ctx, e); err != nil {
		return nil, err
	}
	ttl := time.Duration(number(req.Auth.InternalData["ttl"])) * time.Second
	maxTTL := time.Duration(number(req.Auth.InternalData["max_ttl"])) * time.Second
	return framework.LeaseExtend(ttl, maxTTL, b.System())(ctx, req, d)
}

func (b *Backend) readRenewals(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	e, err := req.Storage.Get(ctx, "renewals/"+d.Get("name").(string))
	if err != nil {
		return nil, err
	}
	rec := &renewalRecord{}
	if e != nil {
		if err := e.DecodeJSON(rec); err != nil {
			return nil, err
		}
	}
	data := map[string]interface{}{"count": rec.Count}
	if rec.Count > 0 {
		data["last_renewal"] = rec.LastRenewal.Format(time.RFC3339Nano)
	}
	return &logical.Response{Data: data}, nil
}

// number reads an integer that went through JSON (internal data crosses the
// host as JSON, so numbers may come back as float64 or json.Number).
func number(v interface{}) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int64:
		return n
	case float64:
		return int64(n)
	case interface{ Int64() (int64, error) }:
		i, _ := n.Int64()
		return i
	}
	return 0
}
