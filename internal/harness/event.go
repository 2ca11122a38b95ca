// SPDX-License-Identifier: GPL-2.0

package harness

import "strings"

// Lookup is the value at a dotted path ("process.parent.pid") of an event
// the agent wrote, decoded from JSON into maps; nil where the path does
// not lead.
func Lookup(event map[string]any, path string) any {
	var cur any = event
	for _, k := range strings.Split(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = obj[k]
	}
	return cur
}
