package api

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func validHeartbeat() *Heartbeat {
	return &Heartbeat{
		Version:      Version,
		HostID:       "4c4c4544-0042",
		Hostname:     "web-1",
		IPs:          []string{"10.0.0.5", "fe80::1"},
		AgentVersion: "1.0.0",
		Kernel:       "6.1.0-28-amd64",
		Counters:     Counters{Drops: map[string]uint64{"ring_full": 3}, RingFill: 0.25},
		TaskResults:  []TaskResult{{ID: "t1", Kind: TaskUsers, Items: 20, Facts: map[string]string{"root": "1"}}},
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in           string
		major, minor int
		ok           bool
	}{
		{"1.0", 1, 0, true},
		{"1.7", 1, 7, true},
		{"2", 2, 0, true},
		{"", 0, 0, false},
		{"v1", 0, 0, false},
		{"1.x", 0, 0, false},
		{"-1.0", 0, 0, false},
	} {
		major, minor, err := ParseVersion(tc.in)
		if (err == nil) != tc.ok || major != tc.major || minor != tc.minor {
			t.Errorf("ParseVersion(%q) = %d, %d, %v; want %d, %d, ok=%v", tc.in, major, minor, err, tc.major, tc.minor, tc.ok)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := validHeartbeat().Validate(); err != nil {
		t.Fatalf("valid heartbeat refused: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Heartbeat)
		want   string
	}{
		{"newer minor accepted", func(h *Heartbeat) { h.Version = "1.9" }, ""},
		{"other major", func(h *Heartbeat) { h.Version = "2.0" }, "not supported"},
		{"missing version", func(h *Heartbeat) { h.Version = "" }, "not supported"},
		{"empty host id", func(h *Heartbeat) { h.HostID = "" }, "host_id"},
		{"empty hostname", func(h *Heartbeat) { h.Hostname = "" }, "hostname"},
		{"long hostname", func(h *Heartbeat) { h.Hostname = strings.Repeat("a", MaxNameLen+1) }, "hostname"},
		{"bad ip", func(h *Heartbeat) { h.IPs = []string{"10.0.0.300"} }, "not an IP"},
		{"negative uptime", func(h *Heartbeat) { h.UptimeSeconds = -1 }, "negative"},
		{"ring fill NaN", func(h *Heartbeat) { h.Counters.RingFill = math.NaN() }, "ring_fill"},
		{"ring fill above 1", func(h *Heartbeat) { h.Counters.RingFill = 1.5 }, "ring_fill"},
		{"task without kind", func(h *Heartbeat) { h.TaskResults[0].Kind = "" }, "kind"},
		{"long summary", func(h *Heartbeat) { h.TaskResults[0].Summary = strings.Repeat("x", MaxSummaryLen+1) }, "summary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := validHeartbeat()
			tc.mutate(h)
			err := h.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestVersionErrorIsTyped(t *testing.T) {
	h := validHeartbeat()
	h.Version = "3.1"
	var ve *VersionError
	if err := h.Validate(); !errors.As(err, &ve) || ve.Got != "3.1" {
		t.Fatalf("Validate() = %v, want *VersionError for 3.1", err)
	}
}

func TestClampMakesAnOversizedHeartbeatValid(t *testing.T) {
	h := validHeartbeat()
	long := strings.Repeat("é", 2000) // 2 bytes a rune: cuts must not split one
	h.Kernel, h.LastError = long, long
	h.Counters.Drops = map[string]uint64{}
	for i := range MaxDropReasons + 5 {
		h.Counters.Drops[strings.Repeat("r", i+1)] = uint64(i)
	}
	h.Counters.Drops[strings.Repeat("k", MaxTaskKindLength+10)] = 1
	h.TaskResults = nil
	for i := range MaxTaskResults + 3 {
		facts := map[string]string{long: long}
		for j := range MaxFacts + 2 {
			facts[strings.Repeat("f", j+1)] = "v"
		}
		h.TaskResults = append(h.TaskResults, TaskResult{
			ID: strings.Repeat("i", i+1), Kind: TaskUsers, Summary: long, Error: long, Facts: facts,
		})
	}
	if h.Validate() == nil {
		t.Fatal("the oversized heartbeat should not validate before Clamp")
	}
	h.Clamp()
	if err := h.Validate(); err != nil {
		t.Fatalf("after Clamp: %v", err)
	}
	if len(h.TaskResults) != MaxTaskResults || h.TaskResults[0].ID != strings.Repeat("i", 4) {
		t.Errorf("kept %d results starting with %q, want the newest %d", len(h.TaskResults), h.TaskResults[0].ID, MaxTaskResults)
	}
	for _, s := range []string{h.Kernel, h.LastError, h.TaskResults[0].Summary} {
		if !utf8.ValidString(s) || len(s) == 0 {
			t.Errorf("clipped string invalid or empty: %d bytes", len(s))
		}
	}
	// A heartbeat within limits is left as it was.
	ok := validHeartbeat()
	ok.Clamp()
	if !reflect.DeepEqual(ok, validHeartbeat()) {
		t.Errorf("Clamp changed a valid heartbeat: %+v", ok)
	}
}

// An invalid byte at the limit passes a length check in Go but becomes
// U+FFFD (3 bytes) in JSON; Clamp removes it so the console accepts.
func TestClampRemovesInvalidUTF8(t *testing.T) {
	h := Heartbeat{Version: Version, HostID: "h", Hostname: "n",
		TaskResults: []TaskResult{{ID: "t", Kind: TaskUsers, Summary: strings.Repeat("a", MaxSummaryLen-1) + "\xc3"}}}
	h.Clamp()
	raw, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	var sent Heartbeat
	if err := json.Unmarshal(raw, &sent); err != nil {
		t.Fatal(err)
	}
	if err := sent.Validate(); err != nil {
		t.Fatalf("after Clamp and JSON: %v", err)
	}
	if got := Clip("ab\xffcé", 4); got != "abc" {
		t.Errorf("Clip = %q, want %q", got, "abc")
	}
}
