package mock

import (
	"context"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestWriteReadListDelete(t *testing.T) {
	ctx := context.Background()
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	b, err := Factory(ctx, conf)
	if err != nil {
		t.Fatal(err)
	}
	s := conf.StorageView
	req := func(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
		t.Helper()
		resp, err := b.HandleRequest(ctx, &logical.Request{Operation: op, Path: path, Data: data, Storage: s})
		if err != nil {
			t.Fatalf("%s %s: %v", op, path, err)
		}
		return resp
	}
	req(logical.CreateOperation, "test", map[string]interface{}{"message": "Hello World"})
	if got := req(logical.ReadOperation, "test", nil).Data["message"]; got != "Hello World" {
		t.Fatalf("read test: %v", got)
	}
	if keys := req(logical.ListOperation, "", nil).Data["keys"].([]string); len(keys) != 1 || keys[0] != "test" {
		t.Fatalf("list: %v", keys)
	}
	req(logical.DeleteOperation, "test", nil)
	if resp := req(logical.ReadOperation, "test", nil); resp != nil {
		t.Fatalf("read after delete: %#v", resp)
	}
}
