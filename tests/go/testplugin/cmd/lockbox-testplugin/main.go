// Command lockbox-testplugin is lockbox's Go test plugin as a secrets engine.
// See package lockbox.test/testplugin/backend for its paths and
// lockbox.test/testplugin/internal/serve for its startup failure hooks.
package main

import (
	"github.com/hashicorp/vault/sdk/logical"

	"lockbox.test/testplugin/internal/serve"
)

func main() {
	serve.Main(logical.TypeLogical)
}
