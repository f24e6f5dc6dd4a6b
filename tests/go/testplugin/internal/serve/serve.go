// Package serve runs the test plugin's backend under Vault's plugin protocol,
// with startup failures chosen by the environment (the catalog entry's env):
//
//	LOCKBOX_TESTPLUGIN_FAIL=exit       exit with status 3 before the handshake
//	LOCKBOX_TESTPLUGIN_FAIL=panic      panic before the handshake
//	LOCKBOX_TESTPLUGIN_FAIL=hang       never print a handshake
//	LOCKBOX_TESTPLUGIN_FAIL=garbage    print a line that is not a handshake, then block
//	LOCKBOX_TESTPLUGIN_HANDSHAKE=LINE  print LINE as the handshake (e.g. one that
//	                                   lies about its socket or certificate), then block
//	LOCKBOX_TESTPLUGIN_DUMP_ENV=FILE   write the process's arguments and environment
//	                                   to FILE (one per line) before serving
//	LOCKBOX_TESTPLUGIN_MULTIPLEX=false serve one backend per process (plugin.Serve)
//	                                   instead of multiplexing (plugin.ServeMultiplex)
package serve

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/plugin"

	"lockbox.test/testplugin/backend"
)

// Main serves the backend of the given type and never returns.
func Main(typ logical.BackendType) {
	if path := os.Getenv("LOCKBOX_TESTPLUGIN_DUMP_ENV"); path != "" {
		if err := dumpEnv(path); err != nil {
			fatal(err)
		}
	}
	if line := os.Getenv("LOCKBOX_TESTPLUGIN_HANDSHAKE"); line != "" {
		fmt.Println(line)
		block()
	}
	switch mode := os.Getenv("LOCKBOX_TESTPLUGIN_FAIL"); mode {
	case "":
	case "exit":
		fmt.Fprintln(os.Stderr, "lockbox test plugin: exiting before the handshake as requested")
		os.Exit(3)
	case "panic":
		panic("lockbox test plugin: panic before the handshake as requested")
	case "hang":
		block()
	case "garbage":
		fmt.Println("this is not a go-plugin handshake line")
		block()
	default:
		fatal(fmt.Errorf("unknown LOCKBOX_TESTPLUGIN_FAIL=%q", mode))
	}

	opts := &plugin.ServeOpts{BackendFactoryFunc: backend.Factory(typ)}
	var err error
	if os.Getenv("LOCKBOX_TESTPLUGIN_MULTIPLEX") == "false" {
		err = plugin.Serve(opts)
	} else {
		err = plugin.ServeMultiplex(opts)
	}
	if err != nil {
		fatal(err)
	}
	os.Exit(0)
}

func dumpEnv(path string) error {
	env := os.Environ()
	sort.Strings(env)
	var sb strings.Builder
	for i, a := range os.Args[1:] {
		fmt.Fprintf(&sb, "ARG%d=%s\n", i+1, a)
	}
	for _, kv := range env {
		sb.WriteString(strings.ReplaceAll(kv, "\n", `\n`))
		sb.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(sb.String()), 0o600)
}

func block() {
	select {}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "lockbox test plugin: %v\n", err)
	os.Exit(1)
}
