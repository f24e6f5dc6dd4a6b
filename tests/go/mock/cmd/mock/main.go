// Command mock serves the mock secrets engine as an external Vault plugin.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/vault/sdk/plugin"

	"lockbox.test/mock"
)

func main() {
	if err := plugin.ServeMultiplex(&plugin.ServeOpts{BackendFactoryFunc: mock.Factory}); err != nil {
		fmt.Fprintf(os.Stderr, "mock plugin: %v\n", err)
		os.Exit(1)
	}
}
