// Command consumer is the smallest External Secrets Operator we could build
// within the CI budget: it syncs kv version 2 secrets from lockbox into a
// Kubernetes Secret through the Vault client calls of ESO's Vault provider
// (see sync.go), driven by ESO's own manifests (a SecretStore and an
// ExternalSecret, `external-secrets.io/v1`, see config.go).
//
//	consumer -f manifests.yaml [-kubeconfig FILE] [-once]
//
// It syncs at start and then every refreshInterval, until SIGTERM or
// SIGINT. A failed sync is logged with its reason and retried at the next
// interval; with -once the first sync is the only one and a failure exits 1.
// Bad flags or manifests exit 2. Secret values never reach the log.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const defaultTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	logger := log.New(stderr, "lockbox-consumer: ", log.LstdFlags|log.LUTC)
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "YAML with one SecretStore (vault provider) and one ExternalSecret, external-secrets.io/v1 (- for stdin)")
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file (default $KUBECONFIG; empty: the in-cluster configuration)")
	once := fs.Bool("once", false, "sync once and exit (1 when the sync fails)")
	tokenFile := fs.String("token-file", defaultTokenFile, "the ServiceAccount token to log in with when the SecretStore has no serviceAccountRef")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" || fs.NArg() > 0 {
		logger.Printf("error: usage: consumer -f MANIFESTS.yaml [-kubeconfig FILE] [-once]")
		return 2
	}
	cfg, err := loadConfig(*file)
	if err != nil {
		logger.Printf("error: %s: %v", *file, err)
		return 2
	}
	rest, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		logger.Printf("error: Kubernetes client configuration: %v", err)
		return 2
	}
	rest.UserAgent = "lockbox-consumer"
	kube, err := kubernetes.NewForConfig(rest)
	if err != nil {
		logger.Printf("error: Kubernetes client: %v", err)
		return 2
	}
	s := &Syncer{Config: cfg, Kube: kube, TokenFile: *tokenFile, Logf: logger.Printf}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	what := fmt.Sprintf("ExternalSecret %s/%s → Secret %s/%s", cfg.Namespace(), cfg.External.Metadata.Name, cfg.Namespace(), cfg.TargetName())
	logger.Printf("syncing %s from %s every %s", what, cfg.Store.Spec.Provider.Vault.Server, cfg.Refresh)
	for {
		// One sync may not outlive the interval (or a minute with -once).
		limit := cfg.Refresh
		if *once || limit > time.Minute {
			limit = time.Minute
		}
		syncCtx, cancel := context.WithTimeout(ctx, limit)
		out, err := s.Sync(syncCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			logger.Printf("stopping")
			return 0
		case err != nil:
			logger.Printf("error: sync of %s failed: %v", what, err)
			if *once {
				return 1
			}
		default:
			logger.Printf("synced %s: %s (keys: %s)", what, out.Action, strings.Join(out.Keys, ", "))
			if *once {
				return 0
			}
		}
		select {
		case <-ctx.Done():
			logger.Printf("stopping")
			return 0
		case <-time.After(cfg.Refresh):
		}
	}
}

func loadConfig(file string) (*Config, error) {
	if file == "-" {
		return ParseConfig(os.Stdin)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, errors.Unwrap(err)
	}
	defer f.Close()
	return ParseConfig(f)
}
