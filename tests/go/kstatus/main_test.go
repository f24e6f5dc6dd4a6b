package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// These pin what kstatus concludes from the conditions lockbox's operator
// writes; see tests/harness/README.md ("kstatus") for the rules.
func TestVerdicts(t *testing.T) {
	want := map[string]status.Status{
		"current.json":                 status.CurrentStatus,     // Ready=True, observedGeneration == generation
		"no-status-yet.json":           status.CurrentStatus,     // no status at all: kstatus assumes Current
		"ready-false-invalidspec.json": status.InProgressStatus,  // Ready=False alone is never Failed
		"reconciling.json":             status.InProgressStatus,  // Reconciling=True
		"stale-generation.json":        status.InProgressStatus,  // observedGeneration < generation
		"stalled-before-stale.json":    status.InProgressStatus,  // a stale observedGeneration wins over Stalled
		"stalled-invalidspec.json":     status.FailedStatus,      // Stalled=True
		"stalled-digestmismatch.json":  status.FailedStatus,      // Stalled=True
		"terminating.json":             status.TerminatingStatus, // metadata.deletionTimestamp set
	}
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) != len(want) {
		t.Fatalf("testdata: %v %v", files, err)
	}
	for _, f := range files {
		in, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := compute(in)
		in.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(v) != 1 || v[0].Status != want[filepath.Base(f)] {
			t.Errorf("%s: got %+v, want %s", f, v, want[filepath.Base(f)])
		}
	}
}

func TestListAndYAML(t *testing.T) {
	in := `apiVersion: v1
kind: List
items:
- apiVersion: lockbox.dev/v1alpha1
  kind: SecretsMount
  metadata: {name: a, namespace: team-a, generation: 4}
  status:
    observedGeneration: 4
    conditions: [{type: Ready, status: "True", reason: Mounted, message: ok}]
- apiVersion: lockbox.dev/v1alpha1
  kind: SecretsMount
  metadata: {name: b, namespace: team-a, generation: 1}
  status:
    observedGeneration: 1
    conditions:
    - {type: Stalled, status: "True", reason: InvalidSpec, message: bad path}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: team-a}
`
	v, err := compute(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 3 || v[0].Status != status.CurrentStatus || v[1].Status != status.FailedStatus ||
		v[1].Message != "bad path" || v[2].Status != status.CurrentStatus || v[2].Name != "c" {
		t.Fatalf("verdicts: %+v", v)
	}
	if _, err := compute(strings.NewReader("")); err == nil {
		t.Fatal("empty input accepted")
	}
}
