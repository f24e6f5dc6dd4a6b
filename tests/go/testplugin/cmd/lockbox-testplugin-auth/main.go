// Command lockbox-testplugin-auth is lockbox's Go test plugin as an auth method
// (same paths as lockbox-testplugin, backend type credential).
package main

import (
	"github.com/hashicorp/vault/sdk/logical"

	"lockbox.test/testplugin/internal/serve"
)

func main() {
	serve.Main(logical.TypeCredential)
}
