// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"encoding/json"
	"testing"
)

func TestLookupWalksNestedObjects(t *testing.T) {
	var ev map[string]any
	if err := json.Unmarshal([]byte(`{"process":{"pid":7,"args":["a"],"parent":{"pid":1}},"tgid":7}`), &ev); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]any{
		"tgid":               7.0,
		"process.pid":        7.0,
		"process.parent.pid": 1.0,
		"process.args.0":     nil, // arrays are not walked
		"process.pid.x":      nil,
		"host.name":          nil,
	} {
		if got := Lookup(ev, path); got != want {
			t.Errorf("Lookup(%s) = %v, want %v", path, got, want)
		}
	}
}
