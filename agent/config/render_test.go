package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// Render and Load are inverse: every key of the defaults, and values set
// away from them, come back as they were.
func TestRenderLoadsBack(t *testing.T) {
	want := Default()
	want.Agent.PidFile = ""
	want.Agent.Hostname = "test-host"
	want.Source.Kind = "file"
	want.Source.File = "/tmp/ring"
	want.Source.PollInterval = Duration(2 * time.Millisecond)
	want.Output.Sinks = []string{"kafka", "file"}
	want.Kafka.Brokers = []string{"127.0.0.1:9092"}
	want.Spool.MaxBytes = 16 << 10
	want.Metrics.Listen = ""
	want.Filter.ArgvAllow = []string{`^x$`}
	raw, err := Render(want)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded back\n%+v\nwant\n%+v\nfrom\n%s", got, want, raw)
	}
}
