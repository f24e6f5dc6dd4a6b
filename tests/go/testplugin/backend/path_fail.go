package backend

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// maxBigResponse bounds fail/big so a typo cannot exhaust the test machine.
const maxBigResponse = 256 << 20

// failPaths are the failure hooks of the host's robustness tests. Each works
// with read and with write, so query parameters and request bodies both reach it.
func (b *Backend) failPaths() []*framework.Path {
	ops := func(cb framework.OperationFunc) map[logical.Operation]framework.OperationHandler {
		return map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   &framework.PathOperation{Callback: cb},
			logical.UpdateOperation: &framework.PathOperation{Callback: cb},
		}
	}
	return []*framework.Path{
		{
			Pattern: "fail/panic",
			Fields: map[string]*framework.FieldSchema{
				"message": {Type: framework.TypeString, Default: "lockbox test plugin: panic requested"},
			},
			Operations:   ops(b.failPanic),
			HelpSynopsis: "Panics inside the request handler; the plugin process dies.",
		},
		{
			Pattern: "fail/hang",
			Fields: map[string]*framework.FieldSchema{
				"seconds":      {Type: framework.TypeInt, Description: "How long to block; 0 (default) blocks forever."},
				"honor_cancel": {Type: framework.TypeBool, Description: "Return early when the host cancels the request."},
			},
			Operations:   ops(b.failHang),
			HelpSynopsis: "Blocks the request.",
		},
		{
			Pattern: "fail/exit",
			Fields: map[string]*framework.FieldSchema{
				"code": {Type: framework.TypeInt, Default: 7},
			},
			Operations:   ops(b.failExit),
			HelpSynopsis: "Exits the plugin process in the middle of the request.",
		},
		{
			Pattern: "fail/error",
			Fields: map[string]*framework.FieldSchema{
				"message": {Type: framework.TypeString, Default: "error requested"},
				"status":  {Type: framework.TypeInt, Description: "HTTP status of a coded error; 0: an ordinary error response (400)."},
			},
			Operations:   ops(b.failError),
			HelpSynopsis: "Returns an error.",
		},
		{
			Pattern: "fail/big",
			Fields: map[string]*framework.FieldSchema{
				"bytes": {Type: framework.TypeInt, Default: 1 << 20},
			},
			Operations:   ops(b.failBig),
			HelpSynopsis: "Returns a response whose data holds about `bytes` bytes.",
		},
	}
}

func (b *Backend) failPanic(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	panic(d.Get("message").(string))
}

func (b *Backend) failHang(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	var timeout <-chan time.Time
	if s := d.Get("seconds").(int); s > 0 {
		timeout = time.After(time.Duration(s) * time.Second)
	}
	var cancelled <-chan struct{}
	if d.Get("honor_cancel").(bool) {
		cancelled = ctx.Done()
	}
	select {
	case <-timeout:
		return &logical.Response{Data: map[string]interface{}{"hung_seconds": d.Get("seconds").(int)}}, nil
	case <-cancelled:
		return nil, ctx.Err()
	}
}

func (b *Backend) failExit(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	code := d.Get("code").(int)
	fmt.Fprintf(os.Stderr, "lockbox test plugin: exiting with code %d as requested\n", code)
	os.Exit(code)
	return nil, nil
}

func (b *Backend) failError(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	msg := d.Get("message").(string)
	if status := d.Get("status").(int); status != 0 {
		return nil, logical.CodedError(status, msg)
	}
	return logical.ErrorResponse("%s", msg), logical.ErrInvalidRequest
}

func (b *Backend) failBig(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	n := d.Get("bytes").(int)
	if n < 0 || n > maxBigResponse {
		return logical.ErrorResponse("bytes must be between 0 and %d", maxBigResponse), logical.ErrInvalidRequest
	}
	return &logical.Response{Data: map[string]interface{}{"blob": strings.Repeat("x", n)}}, nil
}
