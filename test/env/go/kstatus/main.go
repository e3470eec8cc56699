// kstatus prints the kstatus result (sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute) of each
// object read from stdin: one JSON object, a List, or a JSON stream. Output is one JSON line
// per object: {"kind","name","status","message"}. Tests use it to check Ferry's conditions the
// exact way Flux and `kubectl wait`-style tooling compute readiness, not a re-implementation.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	dec := json.NewDecoder(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return
		} else if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: cannot decode input: %v\n", err)
			os.Exit(2)
		}
		// apimachinery's decoder keeps integers int64, which unstructured accessors require.
		var obj map[string]interface{}
		if err := utiljson.Unmarshal(raw, &obj); err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: cannot decode input: %v\n", err)
			os.Exit(2)
		}
		items := []interface{}{obj}
		if list, ok := obj["items"].([]interface{}); ok {
			items = list
		}
		for _, item := range items {
			m, ok := item.(map[string]interface{})
			if !ok {
				fmt.Fprintln(os.Stderr, "kstatus: an item is not an object")
				os.Exit(2)
			}
			u := &unstructured.Unstructured{Object: m}
			res, err := status.Compute(u)
			if err != nil {
				fmt.Fprintf(os.Stderr, "kstatus: %s/%s: %v\n", u.GetKind(), u.GetName(), err)
				os.Exit(1)
			}
			if err := enc.Encode(result{Kind: u.GetKind(), Name: u.GetName(), Status: res.Status.String(), Message: res.Message}); err != nil {
				os.Exit(1)
			}
		}
	}
}
