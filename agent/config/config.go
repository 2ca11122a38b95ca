// Package config reads smith-agent's TOML configuration.  Unknown keys,
// bad values and unreadable files are errors: a typo must not silently
// leave a default in place.  agent/smith-agent.toml is the commented
// example and docs/AGENT.md the reference.
package config

import (
	"errors"
	"fmt"
	"net"

	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"smith/heartbeat/api"
)

// DefaultPath is where the service looks for its configuration.
const DefaultPath = "/etc/smith/smith-agent.toml"

// Config is the whole configuration.
type Config struct {
	Agent     Agent     `toml:"agent"`
	Source    Source    `toml:"source"`
	Log       Log       `toml:"log"`
	Filter    Filter    `toml:"filter"`
	Enrich    Enrich    `toml:"enrich"`
	Output    Output    `toml:"output"`
	Kafka     Kafka     `toml:"kafka"`
	Spool     Spool     `toml:"spool"`
	Heartbeat Heartbeat `toml:"heartbeat"`
	Metrics   Metrics   `toml:"metrics"`
	Tasks     Tasks     `toml:"tasks"`
}

// Tasks bounds the console's asset collections.
type Tasks struct {
	// IntegrityRate bounds the bytes per second the file integrity
	// check reads.
	IntegrityRate Size `toml:"integrity_rate"`
}

// Agent holds process-wide settings.
type Agent struct {
	// Format of events: "smith" or "ecs".
	Format string `toml:"format"`
	// StateDir keeps the sequence-number state (and the spool by default).
	StateDir string `toml:"state_dir"`
	// PidFile is written at start and removed at exit; "" for none.
	PidFile string `toml:"pid_file"`
	// QueueSize is the number of encoded events between the reader and
	// the sinks.
	QueueSize int `toml:"queue_size"`
	// Hostname overrides os.Hostname (for tests and odd hosts).
	Hostname string `toml:"hostname"`
}

// Source says where records come from.
type Source struct {
	// Kind: "device" (/dev/smith, shared-memory ring), "netlink", or
	// "file" (a ring in a shared file, kernel-free mode).
	Kind   string `toml:"kind"`
	Device string `toml:"device"`
	File   string `toml:"file"`
	// PollInterval is how often the file ring is checked for new records
	// (a file has no wake-ups; the device and netlink do not poll).
	PollInterval Duration `toml:"poll_interval"`
}

// Log configures logrus.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
	File   string `toml:"file"`   // "" means stderr
}

// Filter drops events that are known to be uninteresting.
type Filter struct {
	// Self drops events of the agent itself and its children.
	Self bool `toml:"self"`
	// ExeAllow: events whose exe matches one of these patterns
	// (path.Match syntax; a pattern without a glob character is an exact
	// path) are not reported.
	ExeAllow []string `toml:"exe_allow"`
	// ArgvAllow: exec events whose command line (arguments joined by
	// spaces) matches one of these regular expressions are not reported.
	ArgvAllow []string `toml:"argv_allow"`
}

// Enrich configures the lookups added to each event.
type Enrich struct {
	ProcDir     string   `toml:"proc_dir"`
	PasswdFile  string   `toml:"passwd_file"`
	DockerDir   string   `toml:"docker_dir"`
	KubeletDir  string   `toml:"kubelet_dir"`
	CacheSize   int      `toml:"cache_size"`
	Containers  bool     `toml:"containers"`
	Usernames   bool     `toml:"usernames"`
	RefreshHost Duration `toml:"host_refresh"`

	// ContainerdDir and CrioDirs: where containerd and CRI-O keep each
	// container's OCI spec (names and pods from its annotations).
	ContainerdDir string   `toml:"containerd_dir"`
	CrioDirs      []string `toml:"crio_dirs"`
	// Ancestry is the number of ancestors each event carries (0: none);
	// ProcessTableSize bounds the agent's process table.
	Ancestry         int `toml:"ancestry"`
	ProcessTableSize int `toml:"process_table_size"`
	// ExeHash adds the sha256 of exec events' executables, hashed at
	// most ExeHashRate bytes per second, files up to ExeHashMaxSize; the
	// reader waits at most ExeHashWait for a file it has not seen.
	ExeHash        bool     `toml:"exe_hash"`
	ExeHashMaxSize Size     `toml:"exe_hash_max_size"`
	ExeHashRate    Size     `toml:"exe_hash_rate"`
	ExeHashWait    Duration `toml:"exe_hash_wait"`
}

// Output selects the sinks.
type Output struct {
	// Sinks: any of "stdout", "file", "kafka".  Default: stdout, or
	// kafka alone when brokers are configured.
	Sinks []string `toml:"sinks"`
	File  File     `toml:"file"`
}

// File is the rotating file sink.
type File struct {
	Path     string `toml:"path"`
	MaxBytes Size   `toml:"max_bytes"`
	MaxFiles int    `toml:"max_files"`
}

// Kafka is the Kafka sink.
type Kafka struct {
	Brokers     []string `toml:"brokers"`
	Topic       string   `toml:"topic"`
	ClientID    string   `toml:"client_id"`
	Compression string   `toml:"compression"` // none, gzip, snappy, lz4, zstd
	Acks        string   `toml:"acks"`        // all, leader, none
	// MaxMessageBytes bounds one event; longer ones are dropped (counted).
	MaxMessageBytes int      `toml:"max_message_bytes"`
	Timeout         Duration `toml:"timeout"`
	// RetryInterval is how often the spool retries a broker that is down.
	RetryInterval Duration `toml:"retry_interval"`
	Version       string   `toml:"version"`
	TLS           TLS      `toml:"tls"`
	SASL          SASL     `toml:"sasl"`
}

// TLS configures a TLS client.
type TLS struct {
	Enabled            bool   `toml:"enabled"`
	CAFile             string `toml:"ca_file"`
	CertFile           string `toml:"cert_file"`
	KeyFile            string `toml:"key_file"`
	ServerName         string `toml:"server_name"`
	InsecureSkipVerify bool   `toml:"insecure_skip_verify"`
}

// SASL configures Kafka authentication.
type SASL struct {
	Mechanism    string `toml:"mechanism"` // "", PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	User         string `toml:"user"`
	Password     string `toml:"password"`
	PasswordFile string `toml:"password_file"`
}

// Spool is the on-disk buffer for what Kafka cannot take now.
type Spool struct {
	Dir          string `toml:"dir"`
	MaxBytes     Size   `toml:"max_bytes"`
	SegmentBytes Size   `toml:"segment_bytes"`
}

// Heartbeat is the console client.
type Heartbeat struct {
	// URL of smith-console; "" disables heartbeats.
	URL       string   `toml:"url"`
	Token     string   `toml:"token"`
	TokenFile string   `toml:"token_file"`
	Interval  Duration `toml:"interval"`
	Timeout   Duration `toml:"timeout"`
	CAFile    string   `toml:"ca_file"`
	// PinSHA256 pins the console certificate by its SHA-256 fingerprint
	// (smith-console fingerprint); instead of ca_file.
	PinSHA256 string `toml:"pin_sha256"`
	// Insecure allows a plain http:// URL to a host other than loopback.
	Insecure bool `toml:"insecure"`
	// CredentialFile keeps this host's own console credential, received
	// at enrolment ("" : console.credential in agent.state_dir).
	CredentialFile string `toml:"credential_file"`
}

// SpoolBound is the disk spool's bound in bytes, 0 when there is no spool
// (only the Kafka sink spools); the heartbeat reports it.
func (c *Config) SpoolBound() uint64 {
	if !c.HasSink("kafka") || c.Spool.MaxBytes <= 0 {
		return 0
	}
	return uint64(c.Spool.MaxBytes)
}

// HeartbeatCredentialFile is where the host's console credential is kept.
func (c *Config) HeartbeatCredentialFile() string {
	if c.Heartbeat.CredentialFile != "" {
		return c.Heartbeat.CredentialFile
	}
	return filepath.Join(c.Agent.StateDir, "console.credential")
}

// Metrics is the Prometheus endpoint.
type Metrics struct {
	// Listen address; "" disables the endpoint.
	Listen string `toml:"listen"`
}

// Default returns the configuration used for keys the file leaves out.
func Default() Config {
	return Config{
		Agent: Agent{Format: "smith", StateDir: "/var/lib/smith", PidFile: "/run/smith.pid", QueueSize: 8192},
		Source: Source{Kind: "device", Device: "/dev/smith",
			PollInterval: Duration(10 * time.Millisecond)},
		Log:    Log{Level: "info", Format: "text"},
		Filter: Filter{Self: true},
		Enrich: Enrich{ProcDir: "/proc", PasswdFile: "/etc/passwd", DockerDir: "/var/lib/docker",
			KubeletDir: "/var/lib/kubelet", CacheSize: 4096, Containers: true, Usernames: true,
			RefreshHost: Duration(time.Minute), ContainerdDir: "/run/containerd",
			CrioDirs: []string{"/run/containers/storage", "/var/lib/containers/storage"},
			Ancestry: 4, ProcessTableSize: 16384, ExeHash: true, ExeHashMaxSize: 128 << 20,
			ExeHashRate: 32 << 20, ExeHashWait: Duration(20 * time.Millisecond)},
		Output: Output{File: File{Path: "/var/log/smith/events.json", MaxBytes: 100 << 20, MaxFiles: 5}},
		Kafka: Kafka{Topic: "smith", ClientID: "smith-agent", Compression: "snappy", Acks: "all",
			MaxMessageBytes: 1 << 20, Timeout: Duration(10 * time.Second),
			RetryInterval: Duration(2 * time.Second)},
		Spool:     Spool{MaxBytes: 1 << 30, SegmentBytes: 16 << 20},
		Heartbeat: Heartbeat{Interval: Duration(30 * time.Second), Timeout: Duration(10 * time.Second)},
		Metrics:   Metrics{Listen: "127.0.0.1:9464"},
		Tasks:     Tasks{IntegrityRate: 20 << 20},
	}
}

// Load reads and validates the file at path over the defaults.
func Load(path string) (Config, error) {
	cfg := Default()
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	md, err := toml.Decode(string(raw), &cfg)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %s", path, oneLine(err))
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return cfg, fmt.Errorf("config %s: unknown key(s) %s", path, strings.Join(keys, ", "))
	}
	if err := cfg.finish(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// FromDefaults returns the defaults, validated, for running without a file.
func FromDefaults() (Config, error) {
	cfg := Default()
	return cfg, cfg.finish()
}

func oneLine(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message)
	}
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// SpoolDir is the spool directory (default: state_dir/spool).
func (c *Config) SpoolDir() string {
	if c.Spool.Dir != "" {
		return c.Spool.Dir
	}
	return filepath.Join(c.Agent.StateDir, "spool")
}

// HasSink reports whether the named sink is enabled.
func (c *Config) HasSink(name string) bool {
	for _, s := range c.Output.Sinks {
		if s == name {
			return true
		}
	}
	return false
}

// finish fills derived defaults and validates every value.
func (c *Config) finish() error {
	if len(c.Output.Sinks) == 0 {
		if len(c.Kafka.Brokers) > 0 {
			c.Output.Sinks = []string{"kafka"}
		} else {
			c.Output.Sinks = []string{"stdout"}
		}
	}
	var p problems
	c.checkInput(&p)
	c.checkContext(p.bad)
	c.checkOutput(&p)
	c.checkConsole(&p)
	if len(p) > 0 {
		return errors.New(strings.Join(p, "; "))
	}
	return nil
}

// problems collects what is wrong with a configuration, in order.
type problems []string

func (p *problems) bad(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p *problems) oneOf(key, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	p.bad("%s = %q: want one of %s", key, v, strings.Join(allowed, ", "))
}

// checkInput checks [agent], [source], [log], [filter] and [enrich].
func (c *Config) checkInput(p *problems) {
	p.oneOf("agent.format", c.Agent.Format, "smith", "ecs")
	if c.Agent.StateDir == "" {
		p.bad("agent.state_dir is empty")
	}
	if c.Agent.QueueSize < 1 || c.Agent.QueueSize > 1<<20 {
		p.bad("agent.queue_size = %d: want 1..1048576", c.Agent.QueueSize)
	}
	p.oneOf("source.kind", c.Source.Kind, "device", "netlink", "file")
	if c.Source.Kind == "file" && c.Source.File == "" {
		p.bad("source.kind = \"file\" needs source.file")
	}
	if c.Source.PollInterval <= 0 {
		p.bad("source.poll_interval must be positive")
	}
	p.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	p.oneOf("log.format", c.Log.Format, "text", "json")
	for _, pat := range c.Filter.ExeAllow {
		if _, err := filepath.Match(pat, ""); err != nil {
			p.bad("filter.exe_allow %q: %v", pat, err)
		}
	}
	for _, pat := range c.Filter.ArgvAllow {
		if _, err := regexp.Compile(pat); err != nil {
			p.bad("filter.argv_allow %q: %v", pat, err)
		}
	}
	if c.Enrich.CacheSize < 1 || c.Enrich.CacheSize > 1<<20 {
		p.bad("enrich.cache_size = %d: want 1..1048576", c.Enrich.CacheSize)
	}
}

// checkOutput checks [output], [kafka] and [spool].
func (c *Config) checkOutput(p *problems) {
	for _, s := range c.Output.Sinks {
		p.oneOf("output.sinks", s, "stdout", "file", "kafka")
	}
	if c.HasSink("file") {
		if c.Output.File.Path == "" {
			p.bad("output.file.path is empty")
		}
		if c.Output.File.MaxBytes < 4096 || c.Output.File.MaxFiles < 1 {
			p.bad("output.file: max_bytes >= 4096 and max_files >= 1 required")
		}
	}
	// Values are checked even when the sink is off: a typo stays a typo.
	p.oneOf("kafka.compression", c.Kafka.Compression, "none", "gzip", "snappy", "lz4", "zstd")
	p.oneOf("kafka.acks", c.Kafka.Acks, "all", "leader", "none")
	p.oneOf("kafka.sasl.mechanism", c.Kafka.SASL.Mechanism, "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
	if !c.HasSink("kafka") {
		return
	}
	if len(c.Kafka.Brokers) == 0 {
		p.bad("output.sinks has kafka but kafka.brokers is empty")
	}
	for _, b := range c.Kafka.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			p.bad("kafka.brokers %q: want host:port", b)
		}
	}
	if c.Kafka.Topic == "" {
		p.bad("kafka.topic is empty")
	}
	if c.Kafka.MaxMessageBytes < 1024 {
		p.bad("kafka.max_message_bytes = %d: want >= 1024", c.Kafka.MaxMessageBytes)
	}
	if c.Kafka.Timeout <= 0 || c.Kafka.RetryInterval <= 0 {
		p.bad("kafka.timeout and kafka.retry_interval must be positive")
	}
	if c.Spool.MaxBytes < 0 {
		p.bad("spool.max_bytes must not be negative")
	}
	if c.Spool.SegmentBytes < 4096 {
		p.bad("spool.segment_bytes = %d: want >= 4096", c.Spool.SegmentBytes)
	}
}

// checkConsole checks [heartbeat] and [metrics].
func (c *Config) checkConsole(p *problems) {
	if c.Heartbeat.URL != "" {
		if err := api.CheckConsoleURL(c.Heartbeat.URL, c.Heartbeat.Insecure); err != nil {
			p.bad("heartbeat.url: %v", err)
		}
		if c.Heartbeat.PinSHA256 != "" {
			if _, err := api.NormalizePin(c.Heartbeat.PinSHA256); err != nil {
				p.bad("heartbeat.pin_sha256: %v", err)
			}
			if c.Heartbeat.CAFile != "" {
				p.bad("heartbeat: give ca_file or pin_sha256, not both")
			}
		}
		if c.Heartbeat.Interval < Duration(time.Second) {
			p.bad("heartbeat.interval must be at least 1s")
		}
		if c.Heartbeat.Timeout <= 0 {
			p.bad("heartbeat.timeout must be positive")
		}
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			p.bad("metrics.listen %q: want host:port or \"\"", c.Metrics.Listen)
		}
	}
}

// EnrolmentToken is the fleet enrolment secret: token_file's text
// (trimmed) when given, else token.
func (h Heartbeat) EnrolmentToken() (string, error) {
	if h.TokenFile == "" {
		return h.Token, nil
	}
	raw, err := os.ReadFile(h.TokenFile)
	if err != nil {
		return "", fmt.Errorf("heartbeat.token_file: %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}

// Duration is a time.Duration written as "30s", "10ms" in TOML.
type Duration time.Duration

// D is the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want e.g. \"30s\" or \"10ms\"", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Size is a byte count written as 1048576, "64KiB", "16MiB" or "1GiB".
type Size int64

// UnmarshalText parses a size with an optional KiB/MiB/GiB suffix.
func (s *Size) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(text, u.suffix) {
			text, mult = strings.TrimSpace(strings.TrimSuffix(text, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return fmt.Errorf("size %q: want bytes, or a number with KiB, MiB or GiB", b)
	}
	*s = Size(v * mult)
	return nil
}
