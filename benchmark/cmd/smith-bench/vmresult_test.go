package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"strings"
	"testing"
)

func marked(t *testing.T, json string) string {
	t.Helper()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(json))
	w.Close()
	enc := base64.StdEncoding.EncodeToString(gz.Bytes())
	// busybox base64 wraps at 76 columns; a console may prefix noise.
	var lines []string
	for len(enc) > 76 {
		lines = append(lines, enc[:76])
		enc = enc[76:]
	}
	lines = append(lines, enc)
	return "boot noise\n[  1.0] x SMITH-BENCH-JSON-BEGIN\n" + strings.Join(lines, "\n") + "\nSMITH-BENCH-JSON-END\nafter\n"
}

func TestExtractVMResultDecodesTheMarkedBlock(t *testing.T) {
	log := marked(t, `{"rounds":7,"machine":{"kernel":"6.1.0-1-amd64"},"notes":["`+strings.Repeat("x", 300)+`"]}`)
	vm, err := extractVMResult(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if vm.Rounds != 7 || vm.Machine.Kernel != "6.1.0-1-amd64" || len(vm.Notes[0]) != 300 {
		t.Errorf("got %+v", vm)
	}
}

func TestExtractVMResultFailsWithoutACompleteBlock(t *testing.T) {
	for name, log := range map[string]string{
		"no block":  "booted\nSMITH-VM-RESULT status=1\n",
		"truncated": "SMITH-BENCH-JSON-BEGIN\nH4sIAAAA\n",
		"corrupt":   "SMITH-BENCH-JSON-BEGIN\n!!!!\nSMITH-BENCH-JSON-END\n",
	} {
		if _, err := extractVMResult(strings.NewReader(log)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
