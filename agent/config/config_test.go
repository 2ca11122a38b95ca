package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "smith-agent.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadValues(t *testing.T) {
	cfg, err := Load(write(t, `
[agent]
format = "ecs"
[source]
kind = "file"
file = "/tmp/ring"
poll_interval = "5ms"
[kafka]
brokers = ["127.0.0.1:9092"]
compression = "zstd"
[spool]
max_bytes = "64MiB"
segment_bytes = 65536
[filter]
exe_allow = ["/usr/sbin/*"]
argv_allow = ["^sleep [0-9]+$"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Agent.Format != "ecs" || cfg.Source.PollInterval.D() != 5*time.Millisecond ||
		cfg.Spool.MaxBytes != 64<<20 || cfg.Spool.SegmentBytes != 65536 || cfg.Kafka.Compression != "zstd" {
		t.Fatalf("values not read: %+v", cfg)
	}
	// With brokers and no sinks, Kafka is the sink.
	if len(cfg.Output.Sinks) != 1 || cfg.Output.Sinks[0] != "kafka" {
		t.Fatalf("sinks = %v", cfg.Output.Sinks)
	}
	if cfg.SpoolDir() != "/var/lib/smith/spool" {
		t.Fatalf("spool dir %s", cfg.SpoolDir())
	}
}

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := FromDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Output.Sinks) != 1 || cfg.Output.Sinks[0] != "stdout" {
		t.Fatalf("default sink %v, want stdout", cfg.Output.Sinks)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	if _, err := Load("../smith-agent.toml"); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	for name, tc := range map[string]struct{ text, want string }{
		"unknown key":      {"[agent]\nfromat = \"smith\"\n", "unknown key(s) agent.fromat"},
		"unknown section":  {"[kafak]\n", "unknown key(s) kafak"},
		"bad format":       {"[agent]\nformat = \"xml\"\n", `agent.format = "xml"`},
		"bad duration":     {"[heartbeat]\ninterval = \"soon\"\n", "duration"},
		"bad size":         {"[spool]\nmax_bytes = \"lots\"\n", "size"},
		"wrong type":       {"[agent]\nqueue_size = \"big\"\n", "queue_size"},
		"syntax":           {"[agent\n", "line 2"},
		"kafka no brokers": {"[output]\nsinks = [\"kafka\"]\n", "kafka.brokers is empty"},
		"bad regexp":       {"[filter]\nargv_allow = [\"(\"]\n", "filter.argv_allow"},
		"bad broker":       {"[kafka]\nbrokers = [\"nohost\"]\n", "host:port"},
		"file needs path":  {"[source]\nkind = \"file\"\n", "source.file"},
		"heartbeat url":    {"[heartbeat]\nurl = \"ftp://x\"\n", "heartbeat.url"},
		"plain http":       {"[heartbeat]\nurl = \"http://console.example:8080\"\n", "in clear"},
		"bad pin":          {"[heartbeat]\nurl = \"https://c:8443\"\npin_sha256 = \"abc\"\n", "heartbeat.pin_sha256"},
		"pin and ca":       {"[heartbeat]\nurl = \"https://c:8443\"\nca_file = \"/x\"\npin_sha256 = \"" + strings.Repeat("ab", 32) + "\"\n", "not both"},
	} {
		_, err := Load(write(t, tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q, want one line containing %q", name, err, tc.want)
		}
	}
	if _, err := Load("/nonexistent/smith.toml"); err == nil || !strings.Contains(err.Error(), "/nonexistent/smith.toml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestPlainHTTPOnlyToLoopbackOrWhenInsecure(t *testing.T) {
	for text, ok := range map[string]bool{
		"url = \"http://127.0.0.1:8080\"\n":                        true,
		"url = \"http://localhost:8080\"\n":                        true,
		"url = \"http://[::1]:8080\"\n":                            true,
		"url = \"https://console.example:8443\"\n":                 true,
		"url = \"http://console.example:8080\"\ninsecure = true\n": true,
		"url = \"http://console.example:8080\"\n":                  false,
		"url = \"http://10.0.0.1:8080\"\n":                         false,
	} {
		_, err := Load(write(t, "[heartbeat]\n"+text))
		if (err == nil) != ok {
			t.Errorf("%q: error %v, want ok=%v", text, err, ok)
		}
	}
}
