package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const credsType = "creds"

// leaseRecord is what the plugin remembers of each secret it issued, so tests
// can see through leases/<id> and revocations whether the host called the
// secret's renew and revoke callbacks.
type leaseRecord struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	IssuedAt  time.Time `json:"issued_at"`
	Renewals  int       `json:"renewals"`
	Revoked   bool      `json:"revoked"`
	RevokedAt time.Time `json:"revoked_at,omitempty"`
	LeaseID   string    `json:"lease_id,omitempty"`
}

func (b *Backend) credsSecret() *framework.Secret {
	return &framework.Secret{
		Type: credsType,
		Fields: map[string]*framework.FieldSchema{
			"username": {Type: framework.TypeString},
			"password": {Type: framework.TypeString},
		},
		DefaultDuration: time.Hour,
		Renew:           b.credsRenew,
		Revoke:          b.credsRevoke,
	}
}

func (b *Backend) credsPaths() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "creds/" + framework.GenericNameRegex("name"),
			Fields: map[string]*framework.FieldSchema{
				"name": {Type: framework.TypeString},
				"ttl":  {Type: framework.TypeDurationSecond, Description: "Lease TTL (default 1h)."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.issueCreds},
			},
			HelpSynopsis: "Issues a renewable, revocable secret of type creds.",
		},
		{
			Pattern: "leases/?$",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.listLeases},
			},
		},
		{
			Pattern: "leases/" + framework.GenericNameRegex("id"),
			Fields: map[string]*framework.FieldSchema{
				"id": {Type: framework.TypeString},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.readLease},
			},
		},
		{
			Pattern: "revocations",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.readRevocations},
			},
			HelpSynopsis: "The ids of the creds the host revoked, oldest first.",
		},
	}
}

func randomHex(n int) (string, error) {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(buf), nil
}

func (b *Backend) putLease(ctx context.Context, s logical.Storage, rec *leaseRecord) error {
	e, err := logical.StorageEntryJSON("lease/"+rec.ID, rec)
	if err != nil {
		return err
	}
	return s.Put(ctx, e)
}

func (b *Backend) getLease(ctx context.Context, s logical.Storage, id string) (*leaseRecord, error) {
	e, err := s.Get(ctx, "lease/"+id)
	if err != nil || e == nil {
		return nil, err
	}
	rec := &leaseRecord{}
	if err := e.DecodeJSON(rec); err != nil {
		return nil, err
	}
	return rec, nil
}

func (b *Backend) issueCreds(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	id, err := randomHex(8)
	if err != nil {
		return nil, err
	}
	password, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	rec := &leaseRecord{ID: id, Name: name, IssuedAt: time.Now().UTC()}
	b.leaseMu.Lock()
	err = b.putLease(ctx, req.Storage, rec)
	b.leaseMu.Unlock()
	if err != nil {
		return nil, err
	}
	resp := b.Secret(credsType).Response(
		map[string]interface{}{"id": id, "username": name + "-" + id, "password": password},
		map[string]interface{}{"id": id, "name": name},
	)
	if ttl := d.Get("ttl").(int); ttl > 0 {
		resp.Secret.TTL = time.Duration(ttl) * time.Second
	}
	return resp, nil
}

func (b *Backend) secretID(req *logical.Request) (string, error) {
	if req.Secret == nil {
		return "", fmt.Errorf("request has no secret")
	}
	id, _ := req.Secret.InternalData["id"].(string)
	if id == "" {
		return "", fmt.Errorf("secret has no id in its internal data")
	}
	return id, nil
}

func (b *Backend) credsRenew(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id, err := b.secretID(req)
	if err != nil {
		return nil, err
	}
	b.leaseMu.Lock()
	defer b.leaseMu.Unlock()
	rec, err := b.getLease(ctx, req.Storage, id)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, fmt.Errorf("unknown creds %q", id)
	}
	if rec.Revoked {
		return logical.ErrorResponse("creds %q were revoked", id), logical.ErrInvalidRequest
	}
	rec.Renewals++
	if err := b.putLease(ctx, req.Storage, rec); err != nil {
		return nil, err
	}
	resp := &logical.Response{Secret: req.Secret}
	resp.Secret.TTL = time.Hour
	if req.Secret.Increment > 0 {
		resp.Secret.TTL = req.Secret.Increment
	}
	return resp, nil
}

func (b *Backend) credsRevoke(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id, err := b.secretID(req)
	if err != nil {
		return nil, err
	}
	b.leaseMu.Lock()
	defer b.leaseMu.Unlock()
	rec, err := b.getLease(ctx, req.Storage, id)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		// Revoking something unknown succeeds: revocation is idempotent.
		return nil, nil
	}
	if !rec.Revoked {
		rec.Revoked = true
		rec.RevokedAt = time.Now().UTC()
		rec.LeaseID = req.Secret.LeaseID
		if err := b.putLease(ctx, req.Storage, rec); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func (b *Backend) listLeases(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	keys, err := req.Storage.List(ctx, "lease/")
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(keys), nil
}

func (b *Backend) readLease(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	rec, err := b.getLease(ctx, req.Storage, d.Get("id").(string))
	if err != nil || rec == nil {
		return nil, err
	}
	data := map[string]interface{}{
		"id":        rec.ID,
		"name":      rec.Name,
		"issued_at": rec.IssuedAt.Format(time.RFC3339Nano),
		"renewals":  rec.Renewals,
		"revoked":   rec.Revoked,
	}
	if rec.Revoked {
		data["revoked_at"] = rec.RevokedAt.Format(time.RFC3339Nano)
		data["lease_id"] = rec.LeaseID
	}
	return &logical.Response{Data: data}, nil
}

func (b *Backend) readRevocations(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	keys, err := req.Storage.List(ctx, "lease/")
	if err != nil {
		return nil, err
	}
	var revoked []*leaseRecord
	for _, k := range keys {
		rec, err := b.getLease(ctx, req.Storage, k)
		if err != nil {
			return nil, err
		}
		if rec != nil && rec.Revoked {
			revoked = append(revoked, rec)
		}
	}
	sort.Slice(revoked, func(i, j int) bool { return revoked[i].RevokedAt.Before(revoked[j].RevokedAt) })
	ids := make([]string, 0, len(revoked))
	for _, r := range revoked {
		ids = append(ids, r.ID)
	}
	return &logical.Response{Data: map[string]interface{}{"ids": ids}}, nil
}
