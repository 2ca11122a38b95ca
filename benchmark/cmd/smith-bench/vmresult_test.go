package main

import (
	"encoding/json"
	"strings"
	"testing"

	"smith/internal/harness"
)

// marked is a console log holding the result as smith-bench-guest prints
// it; a console may prefix noise.
func marked(t *testing.T, text string) string {
	t.Helper()
	var b strings.Builder
	if err := harness.EncodeResult(&b, harness.ResultBench, json.RawMessage(text)); err != nil {
		t.Fatal(err)
	}
	return "boot noise\n[  1.0] x " + b.String() + "after\n"
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
