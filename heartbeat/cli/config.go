package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"smith/heartbeat/api"
	"smith/heartbeat/store"
)

// Config is smith-console serve's configuration: a TOML file, then
// environment variables for the secrets, then command-line flags.
// docs/CONSOLE.md lists every key.
type Config struct {
	Listen  string `toml:"listen"`
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// TLSSelfSigned makes the console generate a self-signed certificate
	// (at tls_cert/tls_key, default next to the registry) on first
	// start; agents pin its fingerprint.
	TLSSelfSigned bool `toml:"tls_self_signed"`
	// TLSProxy: a TLS-terminating proxy is in front. The console serves
	// plain HTTP to it, marks cookies Secure, sends HSTS and takes the
	// client address from X-Forwarded-For.
	TLSProxy bool `toml:"tls_proxy"`
	// Insecure allows plain HTTP on an address other than loopback.
	Insecure bool `toml:"insecure"`

	// Secrets: better given by SMITH_FLEET_TOKEN and
	// SMITH_CONSOLE_PASSWORD than written in a file. The fleet token is
	// the enrolment secret: it only gets a new host its own credential.
	FleetToken      string `toml:"fleet_token"`
	ConsolePassword string `toml:"console_password"`

	DB string `toml:"db"`
	// RedisURL, when set, keeps the registry and the sessions in Redis
	// instead of db, so several console replicas serve one fleet;
	// RedisPrefix starts every key (one Redis can hold several fleets).
	RedisURL    string `toml:"redis_url"`
	RedisPrefix string `toml:"redis_prefix"`

	// EnrolRate hosts a second may enrol, EnrolBurst at once; MaxHosts
	// bounds the registry.
	// AlertWebhook receives every alert event as JSON ("" : none);
	// DropWindow is how far back drop rates and the drops alert look.
	AlertWebhook string   `toml:"alert_webhook"`
	DropWindow   Duration `toml:"drop_window"`

	EnrolRate  float64 `toml:"enrol_rate"`
	EnrolBurst int     `toml:"enrol_burst"`
	MaxHosts   int     `toml:"max_hosts"`

	HeartbeatInterval Duration `toml:"heartbeat_interval"`
	// OfflineAfter of 0 means three missed heartbeat intervals.
	OfflineAfter  Duration `toml:"offline_after"`
	FlushInterval Duration `toml:"flush_interval"`
	SessionTTL    Duration `toml:"session_ttl"`
	// IdleTimeout closes a keep-alive connection idle that long. Above
	// the heartbeat interval each agent keeps one connection (about
	// 27 KiB of console memory each, docs/BENCHMARKS.md); below it each
	// heartbeat opens a new one (a TCP, and with TLS a TLS, handshake).
	IdleTimeout Duration `toml:"idle_timeout"`

	// AuditLog is a file of JSON lines: logins, lockouts, task
	// schedule changes, decommissions ("" : the log only).
	AuditLog string `toml:"audit_log"`
	// LoginMaxFailures wrong passwords from one address within
	// LoginLockout lock it out for LoginLockout.
	LoginMaxFailures int      `toml:"login_max_failures"`
	LoginLockout     Duration `toml:"login_lockout"`

	LogLevel  string `toml:"log_level"`
	LogFormat string `toml:"log_format"`
	LogFile   string `toml:"log_file"`

	// Tasks maps a task kind to its interval; 0 disables the kind.
	Tasks map[string]Duration `toml:"tasks"`
}

// Duration is a time.Duration written as "30s", "5m", "24h" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %s is negative", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// DefaultTaskIntervals are how often each task kind runs unless the
// config says otherwise: sockets and status change often, accounts and
// packages rarely.
var DefaultTaskIntervals = map[api.TaskKind]time.Duration{
	api.TaskListeningSockets: time.Hour,
	api.TaskUsers:            6 * time.Hour,
	api.TaskCrontabs:         6 * time.Hour,
	api.TaskPackages:         24 * time.Hour,
	api.TaskModuleStatus:     5 * time.Minute,
	api.TaskAgentStatus:      5 * time.Minute,
}

// DefaultConfig is what smith-console serve runs with when nothing is
// configured (apart from the two secrets, which have no default).
func DefaultConfig() Config {
	return Config{
		Listen:            ":8443",
		DB:                "/var/lib/smith/console.db",
		RedisPrefix:       "smith:",
		HeartbeatInterval: Duration{30 * time.Second},
		FlushInterval:     Duration{time.Second},
		SessionTTL:        Duration{12 * time.Hour},
		IdleTimeout:       Duration{2 * time.Minute},
		LoginMaxFailures:  5,
		EnrolRate:         50,
		DropWindow:        Duration{store.DefaultDropWindow},
		EnrolBurst:        500,
		MaxHosts:          store.DefaultMaxHosts,
		LoginLockout:      Duration{15 * time.Minute},
		LogLevel:          "info",
		LogFormat:         "text",
	}
}

// LoadConfig reads the TOML file at path over the defaults (an empty path
// reads nothing), then takes the secrets from the environment when set.
// Unknown keys are an error, so a misspelt key never passes silently.
func LoadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		md, err := toml.Decode(string(raw), &cfg)
		if err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
		if undecoded := md.Undecoded(); len(undecoded) > 0 {
			keys := make([]string, len(undecoded))
			for i, k := range undecoded {
				keys[i] = k.String()
			}
			return cfg, fmt.Errorf("config %s: unknown key(s): %s", path, strings.Join(keys, ", "))
		}
	}
	if v := getenv("SMITH_FLEET_TOKEN"); v != "" {
		cfg.FleetToken = v
	}
	if v := getenv("SMITH_CONSOLE_PASSWORD"); v != "" {
		cfg.ConsolePassword = v
	}
	return cfg, nil
}

// Check reports the first configuration error, in one line.
func (c *Config) Check() error {
	switch {
	case c.Listen == "":
		return errors.New("config: listen is empty")
	case c.DB == "":
		return errors.New("config: db is empty")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("config: tls_cert and tls_key go together: give both or neither")
	case c.TLSProxy && (c.TLSCert != "" || c.TLSSelfSigned):
		return errors.New("config: tls_proxy means the proxy does TLS: give no tls_cert and no tls_self_signed")
	case c.EnrolRate <= 0 || c.EnrolBurst < 1:
		return errors.New("config: enrol_rate must be positive and enrol_burst at least 1")
	case c.DropWindow.Duration < c.HeartbeatInterval.Duration:
		return fmt.Errorf("config: drop_window %v is shorter than heartbeat_interval %v", c.DropWindow, c.HeartbeatInterval)
	case c.MaxHosts < 1:
		return errors.New("config: max_hosts must be at least 1")
	case c.LoginMaxFailures < 1:
		return errors.New("config: login_max_failures must be at least 1")
	case c.LoginLockout.Duration <= 0:
		return errors.New("config: login_lockout must be positive")
	case c.FleetToken == "":
		return errors.New("config: no fleet token: set fleet_token or SMITH_FLEET_TOKEN")
	case c.ConsolePassword == "":
		return errors.New("config: no console password: set console_password or SMITH_CONSOLE_PASSWORD")
	case c.HeartbeatInterval.Duration < time.Second:
		return fmt.Errorf("config: heartbeat_interval %v is under 1s", c.HeartbeatInterval)
	case c.OfflineAfter.Duration != 0 && c.OfflineAfter.Duration < c.HeartbeatInterval.Duration:
		return fmt.Errorf("config: offline_after %v is shorter than heartbeat_interval %v: healthy hosts would flap", c.OfflineAfter, c.HeartbeatInterval)
	case c.FlushInterval.Duration <= 0:
		return errors.New("config: flush_interval must be positive")
	case c.SessionTTL.Duration <= 0:
		return errors.New("config: session_ttl must be positive")
	case c.IdleTimeout.Duration <= 0:
		return errors.New("config: idle_timeout must be positive")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("config: log_format %q: want text or json", c.LogFormat)
	}
	for kind := range c.Tasks {
		if !api.TaskKind(kind).Known() {
			return fmt.Errorf("config: [tasks] %q is not a task kind (known: %s)", kind, kindList())
		}
	}
	if c.AlertWebhook != "" {
		if err := api.CheckConsoleURL(c.AlertWebhook, c.Insecure); err != nil {
			return fmt.Errorf("config: alert_webhook: %w", err)
		}
	}
	if !c.ServesTLS() && !c.TLSProxy && !c.Insecure && !api.ListenIsLoopback(c.Listen) {
		return fmt.Errorf("config: listen %q is not loopback and no TLS is configured: the console password and host credentials would travel in clear; give tls_cert and tls_key, or tls_self_signed = true, or tls_proxy = true behind a TLS proxy, or insecure = true", c.Listen)
	}
	return nil
}

// ServesTLS reports whether the console itself serves HTTPS.
func (c *Config) ServesTLS() bool { return c.TLSCert != "" || c.TLSSelfSigned }

// OfflineTimeout is how long a host may be silent and stay online.
func (c *Config) OfflineTimeout() time.Duration {
	if c.OfflineAfter.Duration > 0 {
		return c.OfflineAfter.Duration
	}
	return 3 * c.HeartbeatInterval.Duration
}

// TaskIntervals merges [tasks] over DefaultTaskIntervals.
func (c *Config) TaskIntervals() map[api.TaskKind]time.Duration {
	out := make(map[api.TaskKind]time.Duration, len(DefaultTaskIntervals))
	for k, v := range DefaultTaskIntervals {
		out[k] = v
	}
	for k, v := range c.Tasks {
		out[api.TaskKind(k)] = v.Duration
	}
	return out
}

func kindList() string {
	names := make([]string, len(api.TaskKinds))
	for i, k := range api.TaskKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}
