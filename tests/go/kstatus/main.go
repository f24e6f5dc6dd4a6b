// Command kstatus prints the verdict of sigs.k8s.io/cli-utils' kstatus library
// (the status Flux and kpt compute) for Kubernetes objects.
//
//	kubectl get secretsmount team-a -o json | kstatus
//	kubectl get secretsmounts -A -o json | kstatus            # a List: one line per item
//	kstatus -expect Current < object.json                    # exit 1 unless every verdict is Current
//
// Input: one or more objects as JSON or YAML on stdin (a List's items are
// taken one by one). Output: one JSON object per line,
//
//	{"apiVersion":"…","kind":"…","namespace":"…","name":"…",
//	 "status":"Current|InProgress|Failed|Terminating|Unknown","message":"…","conditions":[…]}
//
// Exit status: 0 when every object was computed (and matched -expect, if
// given); 1 when a verdict differs from -expect; 2 on bad input.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kjson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Namespace  string             `json:"namespace,omitempty"`
	Name       string             `json:"name"`
	Status     status.Status      `json:"status"`
	Message    string             `json:"message"`
	Conditions []status.Condition `json:"conditions"`
}

func main() {
	expect := flag.String("expect", "", "exit 1 unless every object's status is this one (e.g. Current, InProgress, Failed)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: kstatus [-expect STATUS] < objects (JSON or YAML)")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	verdicts, err := compute(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	mismatch := false
	for _, v := range verdicts {
		if err := out.Encode(v); err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
			os.Exit(2)
		}
		if *expect != "" && string(v.Status) != *expect {
			fmt.Fprintf(os.Stderr, "kstatus: %s %s/%s is %s, expected %s: %s\n", v.Kind, v.Namespace, v.Name, v.Status, *expect, v.Message)
			mismatch = true
		}
	}
	if mismatch {
		os.Exit(1)
	}
}

// compute decodes every object of the stream and computes its status.
func compute(r io.Reader) ([]verdict, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bufio.NewReader(r), 4096)
	var verdicts []verdict
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("decoding input: %w", err)
		}
		// k8s.io/apimachinery's json keeps whole numbers as int64, which
		// unstructured accessors (metadata.generation, ...) require.
		var obj map[string]interface{}
		if err := kjson.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("decoding input: %w", err)
		}
		if obj == nil {
			continue // an empty YAML document
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("reading the items of %s: %w", u.GetKind(), err)
			}
			for i := range list.Items {
				v, err := computeOne(&list.Items[i])
				if err != nil {
					return nil, err
				}
				verdicts = append(verdicts, v)
			}
			continue
		}
		v, err := computeOne(u)
		if err != nil {
			return nil, err
		}
		verdicts = append(verdicts, v)
	}
	if len(verdicts) == 0 {
		return nil, errors.New("no object on stdin")
	}
	return verdicts, nil
}

func computeOne(u *unstructured.Unstructured) (verdict, error) {
	if u.GetKind() == "" {
		return verdict{}, fmt.Errorf("object %q has no kind", u.GetName())
	}
	res, err := status.Compute(u)
	if err != nil {
		return verdict{}, fmt.Errorf("computing the status of %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	conds := res.Conditions
	if conds == nil {
		conds = []status.Condition{}
	}
	return verdict{
		APIVersion: u.GetAPIVersion(),
		Kind:       u.GetKind(),
		Namespace:  u.GetNamespace(),
		Name:       u.GetName(),
		Status:     res.Status,
		Message:    res.Message,
		Conditions: conds,
	}, nil
}
