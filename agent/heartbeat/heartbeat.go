// Package heartbeat is the agent's side of the console protocol
// (smith/heartbeat/api, docs/HEARTBEAT.md): every interval it posts the
// host's identity, versions and counters, runs the tasks the console
// answers with (agent/inventory collects them), ships their results as data_type "detection_module"
// events, and reports a short summary of each in the next heartbeat.
package heartbeat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"smith/agent/encode"
	"smith/agent/inventory"
	"smith/agent/metrics"
	"smith/agent/source"
	"smith/heartbeat/api"
)

// Options configure the client.
type Options struct {
	URL string
	// Token is the fleet enrolment secret: traded once for this host's
	// own credential, which is kept in CredentialFile (mode 0600; ""
	// keeps it in memory only) and is the bearer of every heartbeat.
	Token          string
	CredentialFile string
	Interval       time.Duration
	Timeout        time.Duration
	CAFile         string
	// PinSHA256 pins the console's certificate by its SHA-256
	// fingerprint (api.Fingerprint), for a self-signed console.
	PinSHA256 string
	// Insecure allows plain http:// to a host other than loopback.
	Insecure bool

	AgentVersion string
	// SpoolMaxBytes is the spool's bound (0 without a spool), reported so
	// the console shows the spool's fill in percent.
	SpoolMaxBytes uint64
	Host          func() encode.Host
	Module        func() source.Module // nil without a module
	Counters      *metrics.Counters
	LastError     func() string
	// Ship sends task items as events; false when they could not be
	// queued.
	Ship  func([]encode.TaskItem) bool
	Tasks *inventory.Tasks
	Log   logrus.FieldLogger
}

// Bounds on what a console answer can make the agent do: whatever the
// console (or whoever speaks for it) answers, the agent beats no faster
// than every MinInterval (or its own configured interval, when that is
// shorter) and no slower than every MaxInterval, runs at most one task of
// a kind per answer and a kind at most once per MinTaskGap, and refuses
// task ids longer than api.MaxIDLen.
const (
	MinInterval = 10 * time.Second
	MaxInterval = 10 * time.Minute
	MinTaskGap  = time.Minute
)

// Client posts heartbeats.
type Client struct {
	o       Options
	api     *api.Client
	hostID  string
	runID   string
	cred    string // this host's credential; "" until enrolled
	started time.Time
	seq     uint64
	// interval is the current one: configured, or as the console asks.
	interval time.Duration

	// lastRun is when each task kind last started (Run's goroutine
	// only).
	lastRun map[api.TaskKind]time.Time
	now     func() time.Time

	mu      sync.Mutex
	results []api.TaskResult // finished since the last heartbeat
	// busy holds the task kinds queued or running.
	busy map[api.TaskKind]bool
	// lost counts task results dropped because the console refused the
	// heartbeat carrying them as invalid.
	lost uint64
}

// New returns a client; it does not contact the console yet.
func New(o Options) (*Client, error) {
	if err := api.CheckConsoleURL(o.URL, o.Insecure); err != nil {
		return nil, fmt.Errorf("heartbeat.url: %w", err)
	}
	tlsCfg, err := api.ClientTLS(o.CAFile, o.PinSHA256)
	if err != nil {
		return nil, fmt.Errorf("heartbeat TLS: %w", err)
	}
	hc := &http.Client{Timeout: o.Timeout, Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsCfg, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}}
	var run [8]byte
	if _, err := rand.Read(run[:]); err != nil {
		return nil, fmt.Errorf("heartbeat run id: %w", err)
	}
	return &Client{o: o, api: api.NewClient(o.URL, o.Token, hc), hostID: HostID(), runID: hex.EncodeToString(run[:]), started: time.Now(),
		interval: o.Interval, lastRun: make(map[api.TaskKind]time.Time), busy: make(map[api.TaskKind]bool), now: time.Now}, nil
}

// HostID is the stable identity of the host: /etc/machine-id, else the
// host name.
func HostID() string {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if raw, err := os.ReadFile(p); err == nil {
			if id := strings.TrimSpace(string(raw)); id != "" {
				return id
			}
		}
	}
	name, _ := os.Hostname()
	return name
}

// Run posts a heartbeat at once and then every interval until ctx ends.
// Tasks run one at a time on a goroutine of their own, so a long one (a
// file integrity check takes minutes) never holds a heartbeat back; its
// result rides on the first heartbeat after it ends. Run returns once
// that goroutine has.
func (c *Client) Run(ctx context.Context) {
	queue := make(chan api.Task, len(api.TaskKinds)+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for t := range queue {
			if ctx.Err() == nil {
				c.runTask(ctx, t)
			}
			c.setBusy(t.Kind, false)
		}
	}()
	defer wg.Wait()
	defer close(queue)
	for {
		next, tasks, err := c.beat(ctx)
		for _, t := range tasks {
			c.setBusy(t.Kind, true)
			select {
			case queue <- t:
			default:
				// Only kinds this agent does not know can pile up here
				// (a known kind is not accepted again while it is busy).
				c.setBusy(t.Kind, false)
				c.o.Log.WithField("task_kind", t.Kind).Warnf("console task %s skipped: %d tasks already waiting", t.ID, len(queue))
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.o.Log.WithError(err).Warn("heartbeat failed")
		} else if next > 0 {
			if adopted := c.adopt(next); adopted != c.interval {
				c.o.Log.Infof("console asks for a heartbeat every %s: beating every %s", next, adopted)
				c.interval = adopted
			}
		}
		t := time.NewTimer(c.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Build returns the heartbeat as it would be sent now.
func (c *Client) Build() *api.Heartbeat {
	c.seq++
	host := c.o.Host()
	cnt := c.o.Counters
	ring := cnt.Ring()
	hb := &api.Heartbeat{
		Version:            api.Version,
		HostID:             c.hostID,
		Hostname:           host.Name,
		IPs:                host.IPs,
		SentAt:             time.Now().UTC(),
		Seq:                c.seq,
		RunID:              c.runID,
		AgentVersion:       c.o.AgentVersion,
		Kernel:             kernelRelease(),
		UptimeSeconds:      hostUptime(),
		AgentUptimeSeconds: int64(time.Since(c.started).Seconds()),
		IntervalSeconds:    int(c.interval / time.Second),
		Counters: api.Counters{
			EventsRead:    cnt.Read.Load(),
			EventsSent:    cnt.Sent.Load(),
			Drops:         cnt.Drops(),
			SpoolBytes:    cnt.SpoolBytes.Load(),
			SpoolEvents:   cnt.SpoolEvents.Load(),
			SpoolMaxBytes: c.o.SpoolMaxBytes,
			RingFill:      ring.Fill,
		},
	}
	if len(hb.IPs) > api.MaxIPs {
		hb.IPs = hb.IPs[:api.MaxIPs]
	}
	if c.o.Module != nil {
		m := c.o.Module()
		hb.ModuleVersion, hb.ABIVersion, hb.Transport = m.Version, m.ABI, m.Transport
	}
	if c.o.LastError != nil {
		hb.LastError = api.Clip(c.o.LastError(), api.MaxErrorLen)
	}
	c.mu.Lock()
	// The oldest first; beat drops exactly these once they are delivered.
	hb.TaskResults = c.results[:min(len(c.results), api.MaxTaskResults):min(len(c.results), api.MaxTaskResults)]
	c.mu.Unlock()
	hb.Clamp()
	return hb
}

// adopt bounds the interval a console asks for: never under MinInterval
// (or the configured interval when the operator chose a shorter one),
// never over MaxInterval.
func (c *Client) adopt(asked time.Duration) time.Duration {
	low := min(MinInterval, c.o.Interval)
	return max(low, min(asked, MaxInterval))
}

// Lost is how many task results were dropped because the console refused
// the heartbeat carrying them as invalid.
func (c *Client) Lost() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

// credential returns this host's credential: in memory, else from
// CredentialFile, else enrolled now with the fleet secret (and saved).
func (c *Client) credential(ctx context.Context) (string, error) {
	if c.cred != "" {
		return c.cred, nil
	}
	if f := c.o.CredentialFile; f != "" {
		raw, err := os.ReadFile(f)
		switch {
		case err == nil && strings.TrimSpace(string(raw)) != "":
			c.cred = strings.TrimSpace(string(raw))
			return c.cred, nil
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("heartbeat credential: %w", err)
		}
	}
	if c.o.Token == "" {
		return "", errors.New("no host credential yet and no fleet enrolment secret (heartbeat.token) to enrol with")
	}
	e, err := c.api.Enrol(ctx, c.hostID, c.o.Host().Name)
	if err != nil {
		if api.HasCode(err, "already_enrolled") {
			return "", fmt.Errorf("enrolment refused, host id %s (/etc/machine-id) is enrolled already: if this machine is a clone, give it its own machine-id; if it was reinstalled, decommission it on the console: %w", c.hostID, err)
		}
		return "", fmt.Errorf("enrolment: %w", err)
	}
	if f := c.o.CredentialFile; f != "" {
		if err := writeSecret(f, e.Credential); err != nil {
			return "", err
		}
	}
	c.o.Log.WithField("host_id", c.hostID).Info("enrolled at the console: heartbeats now carry this host's own credential")
	c.cred = e.Credential
	return c.cred, nil
}

// writeSecret replaces path with text, mode 0600, atomically.
func writeSecret(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("heartbeat credential: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credential-*")
	if err != nil {
		return fmt.Errorf("heartbeat credential: %w", err)
	}
	_, err = tmp.WriteString(text + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("heartbeat credential %s: %w", path, err)
	}
	return nil
}

// forget drops a credential the console no longer knows (the host was
// decommissioned), so the next heartbeat enrols again.
func (c *Client) forget() {
	c.cred = ""
	if f := c.o.CredentialFile; f != "" {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.o.Log.WithError(err).Error("heartbeat credential not removed")
		}
	}
}

// beat posts one heartbeat and returns the interval the console asks
// for and the tasks of its answer the agent accepted, to be run.
func (c *Client) beat(ctx context.Context) (time.Duration, []api.Task, error) {
	cred, err := c.credential(ctx)
	if err != nil {
		return 0, nil, err
	}
	hb := c.Build()
	resp, err := c.api.WithToken(cred).Send(ctx, hb)
	if api.HasCode(err, "unknown_credential") {
		c.forget()
		return 0, nil, fmt.Errorf("the console does not know this host's credential (decommissioned?): enrolling again at the next heartbeat: %w", err)
	}
	if err != nil {
		var se *api.StatusError
		if errors.As(err, &se) && se.Code == "invalid_heartbeat" && len(hb.TaskResults) > 0 {
			// Sent again unchanged they would be refused for ever and
			// the host would go dark: drop them, counted and logged.
			c.mu.Lock()
			c.results = c.results[len(hb.TaskResults):]
			c.lost += uint64(len(hb.TaskResults))
			c.mu.Unlock()
			c.o.Log.WithError(err).Errorf("console refused the heartbeat: %d task results dropped", len(hb.TaskResults))
		}
		return 0, nil, err
	}
	// Delivered: the console has these results now.
	c.mu.Lock()
	c.results = c.results[len(hb.TaskResults):]
	c.mu.Unlock()
	return time.Duration(resp.IntervalSeconds) * time.Second, c.accept(resp.Tasks), nil
}

// setBusy marks a task kind queued or running (true) or done (false).
func (c *Client) setBusy(kind api.TaskKind, busy bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if busy {
		c.busy[kind] = true
	} else {
		delete(c.busy, kind)
	}
}

func (c *Client) isBusy(kind api.TaskKind) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.busy[kind]
}

// accept keeps the tasks of an answer the agent will run: the first of
// each kind, with an id of at most api.MaxIDLen bytes, of a kind that
// did not start within MinTaskGap and is not still running. The rest are
// logged and skipped.
func (c *Client) accept(tasks []api.Task) []api.Task {
	var out []api.Task
	seen := make(map[api.TaskKind]bool)
	now := c.now()
	for kind, last := range c.lastRun {
		if now.Sub(last) >= MinTaskGap {
			delete(c.lastRun, kind)
		}
	}
	for _, t := range tasks {
		why := ""
		switch last, ran := c.lastRun[t.Kind]; {
		case t.ID == "" || len(t.ID) > api.MaxIDLen:
			why = fmt.Sprintf("task id of %d bytes (1..%d allowed)", len(t.ID), api.MaxIDLen)
		case len(t.Kind) > api.MaxTaskKindLength:
			why = fmt.Sprintf("task kind of %d bytes (at most %d)", len(t.Kind), api.MaxTaskKindLength)
		case seen[t.Kind]:
			why = "a second task of the same kind in one answer"
		case c.isBusy(t.Kind):
			why = "a task of the same kind is still running"
		case ran && now.Sub(last) < MinTaskGap:
			why = fmt.Sprintf("the same kind started %s ago (at most once per %s)", now.Sub(last).Round(time.Second), MinTaskGap)
		case len(seen) == len(api.TaskKinds)+1:
			why = "more task kinds in one answer than exist"
		}
		if why != "" {
			c.o.Log.WithField("task_kind", api.Clip(string(t.Kind), api.MaxTaskKindLength)).Warnf("console task skipped: %s", why)
			continue
		}
		seen[t.Kind] = true
		c.lastRun[t.Kind] = now
		out = append(out, t)
	}
	return out
}

func (c *Client) runTask(ctx context.Context, t api.Task) {
	res := api.TaskResult{ID: t.ID, Kind: t.Kind, StartedAt: time.Now().UTC()}
	items, summary, facts, err := c.o.Tasks.Run(ctx, t.Kind)
	if err == nil && len(items) > 0 {
		for i := range items {
			items[i].TaskID = t.ID
			items[i].Kind = string(t.Kind)
		}
		if !c.o.Ship(items) {
			err = fmt.Errorf("event queue full: %d results not shipped", len(items))
		}
	}
	res.FinishedAt = time.Now().UTC()
	res.Items = len(items)
	res.Summary = api.Clip(summary, api.MaxSummaryLen)
	res.Facts = facts
	if err != nil {
		res.Error = api.Clip(err.Error(), api.MaxErrorLen)
		c.o.Log.WithError(err).Warnf("task %s (%s) failed", t.ID, t.Kind)
	}
	c.mu.Lock()
	c.results = append(c.results, res)
	c.mu.Unlock()
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func hostUptime() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Uptime)
}
