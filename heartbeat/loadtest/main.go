// Command loadtest simulates a fleet of agents heartbeating one
// smith-console and reports errors, latency and the console's CPU and
// memory. By default it starts the console binary itself (-console-bin) on
// a loopback port with a fresh registry, so that the console's figures are
// its own; -console uses one already running instead.
//
//	go run ./heartbeat/loadtest -console-bin bin/smith-console \
//	    -agents 10000 -interval 30s -duration 60s
//
// Each simulated agent keeps its own connection, starts at a random point
// of the first interval (so requests are spread evenly, agents/interval per
// second), answers the tasks it receives with results in its next
// heartbeat, and counts any error. Its first request enrols it with the
// fleet secret (a real agent does that once, at its first start); every
// later one is a heartbeat with its own credential. Run by
// `make bench-console`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"smith/heartbeat/api"
	"smith/internal/harness"
)

// Options describe one load run.
type Options struct {
	Agents   int
	Interval time.Duration
	Duration time.Duration
	URL      string
	// More URLs: agents are spread over URL and these in turn (replicas
	// of one fleet behind no load balancer).
	MoreURLs []string
	Token    string
	Password string // console password, to check the registry at the end
	// NewConnEach makes every heartbeat open a new connection instead
	// of keeping one per agent: the console then holds no idle
	// connections, which shows what they cost.
	NewConnEach bool
	// Conns > 0 makes the agents share that many connections (agent i
	// uses connection i mod Conns, one request at a time on it), for
	// fleets larger than the machine's open-file limit allows one
	// connection per agent for; 0 gives each agent its own.
	Conns int
}

// Result is what a run measured.
type Result struct {
	Agents        int     `json:"agents"`
	KeepAlive     bool    `json:"keep_alive"`
	Conns         int     `json:"shared_conns,omitempty"`
	IntervalS     float64 `json:"interval_s"`
	DurationS     float64 `json:"duration_s"`
	Requests      int64   `json:"requests"`
	Errors        int64   `json:"errors"`
	FirstError    string  `json:"first_error,omitempty"`
	RatePerSecond float64 `json:"requests_per_s"`
	P50ms         float64 `json:"p50_ms"`
	P90ms         float64 `json:"p90_ms"`
	P99ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	Registered    int     `json:"hosts_registered"`
	Consoles      int     `json:"consoles,omitempty"`

	// Console process figures, when this program started it.
	ConsoleCPUs      float64 `json:"console_cpu_s,omitempty"`
	ConsoleCPUPct    float64 `json:"console_cpu_pct_of_core,omitempty"`
	ConsoleRSSMiB    float64 `json:"console_rss_mib,omitempty"`
	ConsolePeakRSSMB float64 `json:"console_peak_rss_mib,omitempty"`
}

func main() {
	opts := Options{}
	flag.IntVar(&opts.Agents, "agents", 10000, "simulated agents")
	flag.DurationVar(&opts.Interval, "interval", 30*time.Second, "heartbeat interval of each agent")
	flag.DurationVar(&opts.Duration, "duration", 60*time.Second, "length of the run")
	flag.StringVar(&opts.URL, "console", "", "URL of a running console (instead of -console-bin)")
	flag.BoolVar(&opts.NewConnEach, "new-conn-each", false, "open a new connection for every heartbeat (no keep-alive)")
	flag.IntVar(&opts.Conns, "conns", 0, "share this many connections among the agents (0: one per agent); for more agents than the open-file limit allows")
	bin := flag.String("console-bin", "bin/smith-console", "smith-console binary to start on loopback")
	replicas := flag.Int("replicas", 1, "consoles to start, sharing one fleet in a redis-server started for the run when more than 1")
	redisBin := flag.String("redis-bin", "redis-server", "redis-server binary for -replicas")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	flag.Parse()
	if err := mainErr(opts, *bin, *replicas, *redisBin, *asJSON); err != nil {
		fmt.Fprintf(os.Stderr, "loadtest: %v\n", err)
		os.Exit(1)
	}
}

func mainErr(opts Options, bin string, replicas int, redisBin string, asJSON bool) error {
	opts.Token = envOr("SMITH_FLEET_TOKEN", "load-fleet-token")
	opts.Password = envOr("SMITH_CONSOLE_PASSWORD", "load-console-password")
	var consoles []*consoleProc
	if opts.URL == "" {
		redisURL := ""
		if replicas > 1 {
			rd, url, err := startRedis(redisBin)
			if err != nil {
				return err
			}
			defer rd.stop()
			redisURL = url
		}
		for i := 0; i < max(1, replicas); i++ {
			c, err := startConsole(bin, opts.Token, opts.Password, redisURL)
			if err != nil {
				return err
			}
			defer c.stop()
			consoles = append(consoles, c)
			if i == 0 {
				opts.URL = c.url
			} else {
				opts.MoreURLs = append(opts.MoreURLs, c.url)
			}
		}
	}
	before := make([]procStat, len(consoles))
	for i, c := range consoles {
		before[i] = c.stat()
	}
	res, err := Run(context.Background(), opts, func() {
		for _, c := range consoles {
			c.sampleRSS()
		}
	})
	if err != nil {
		return err
	}
	// With replicas the figures are their sums.
	for i, c := range consoles {
		after := c.stat()
		res.ConsoleCPUs += after.cpu - before[i].cpu
		res.ConsoleRSSMiB += after.rssMiB
		res.ConsolePeakRSSMB += max(after.hwmMiB, c.peakRSS)
	}
	if len(consoles) > 0 {
		res.Consoles = len(consoles)
		res.ConsoleCPUPct = 100 * res.ConsoleCPUs / res.DurationS
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printResult(os.Stdout, res)
	if res.Errors > 0 {
		return fmt.Errorf("%d errors, first: %s", res.Errors, res.FirstError)
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Run drives opts.Agents agents for opts.Duration; tick is called once a
// second while the load runs.
func Run(ctx context.Context, opts Options, tick func()) (*Result, error) {
	if opts.Agents <= 0 || opts.Interval <= 0 || opts.Duration <= 0 {
		return nil, errors.New("agents, interval and duration must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Duration)
	defer cancel()

	var (
		requests, errs atomic.Int64
		firstErr       sync.Once
		firstErrText   string
		mu             sync.Mutex
		latencies      = make([]time.Duration, 0, int(float64(opts.Agents)*(opts.Duration.Seconds()/opts.Interval.Seconds()+1)))
	)
	var shared []*http.Transport
	for range opts.Conns {
		shared = append(shared, newTransport(opts, 1))
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range opts.Agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := newTransport(opts, 0)
			if len(shared) > 0 {
				tr = shared[i%len(shared)]
			}
			a := newAgent(i, opts, tr)
			defer a.transport.CloseIdleConnections()
			next := start.Add(time.Duration(rand.Int64N(int64(opts.Interval))))
			for {
				t := time.NewTimer(time.Until(next))
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				sent := time.Now()
				err := a.beat(ctx)
				took := time.Since(sent)
				if ctx.Err() != nil {
					return // the run ended during the request: not the console's fault
				}
				requests.Add(1)
				if err != nil {
					errs.Add(1)
					firstErr.Do(func() { firstErrText = err.Error() })
				} else {
					mu.Lock()
					latencies = append(latencies, took)
					mu.Unlock()
				}
				next = next.Add(opts.Interval)
			}
		}()
	}
	ticker := time.NewTicker(time.Second)
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-ticker.C:
			if tick != nil {
				tick()
			}
		}
	}
	ticker.Stop()
	wg.Wait()
	elapsed := time.Since(start)

	res := &Result{
		Agents: opts.Agents, KeepAlive: !opts.NewConnEach, Conns: opts.Conns, IntervalS: opts.Interval.Seconds(), DurationS: elapsed.Seconds(),
		Requests: requests.Load(), Errors: errs.Load(), FirstError: firstErrText,
		RatePerSecond: float64(requests.Load()) / elapsed.Seconds(),
	}
	slices.Sort(latencies)
	res.P50ms, res.P90ms, res.P99ms = ms(quantile(latencies, .50)), ms(quantile(latencies, .90)), ms(quantile(latencies, .99))
	if len(latencies) > 0 {
		res.MaxMs = ms(latencies[len(latencies)-1])
	}
	n, err := registered(opts)
	if err != nil {
		return res, err
	}
	res.Registered = n
	return res, nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// agent is one simulated smith-agent with its own connection.
type agent struct {
	transport *http.Transport
	client    *api.Client // the fleet secret until enrolled, then the host's credential
	enrolled  bool
	hb        api.Heartbeat
	pending   []api.Task
	started   time.Time
}

// newTransport is a connection to the console; maxConns > 0 bounds the
// connections it opens (requests beyond wait their turn).
func newTransport(opts Options, maxConns int) *http.Transport {
	return &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: maxConns, IdleConnTimeout: 2 * opts.Interval,
		DisableKeepAlives: opts.NewConnEach}
}

func newAgent(i int, opts Options, tr *http.Transport) *agent {
	return &agent{
		transport: tr,
		client:    api.NewClient(opts.url(i), opts.Token, &http.Client{Transport: tr, Timeout: 30 * time.Second}),
		started:   time.Now(),
		hb: api.Heartbeat{
			HostID:        fmt.Sprintf("load-%08d", i),
			Hostname:      fmt.Sprintf("load-%05d.fleet.example", i),
			IPs:           []string{fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)},
			AgentVersion:  "load",
			ModuleVersion: "1.0.0",
			ABIVersion:    "1.0",
			Transport:     "shm",
			Kernel:        "6.1.0-28-amd64",
			UptimeSeconds: 86400,
			Counters:      api.Counters{Drops: map[string]uint64{"ring_full": 0, "queue_full": 0, "spool_full": 0}},
		},
	}
}

// beat sends one heartbeat carrying results for the tasks the previous
// answer handed out, as a real agent does.
func (a *agent) beat(ctx context.Context) error {
	if !a.enrolled {
		cl, err := a.client.Enrolled(ctx, a.hb.HostID, a.hb.Hostname)
		if err != nil {
			return err
		}
		a.client, a.enrolled = cl, true
	}
	now := time.Now()
	a.hb.Seq++
	a.hb.SentAt = now
	a.hb.AgentUptimeSeconds = int64(now.Sub(a.started).Seconds())
	a.hb.Counters.EventsRead += 3000
	a.hb.Counters.EventsSent += 3000
	a.hb.TaskResults = a.hb.TaskResults[:0]
	for _, t := range a.pending {
		a.hb.TaskResults = append(a.hb.TaskResults, api.TaskResult{
			ID: t.ID, Kind: t.Kind, StartedAt: now, FinishedAt: now, Items: 12,
			Summary: "12 items collected by the load test",
		})
	}
	resp, err := a.client.Send(ctx, &a.hb)
	if err != nil {
		return err
	}
	a.pending = resp.Tasks
	return nil
}

// registered asks the console how many hosts it knows.
func registered(opts Options) (int, error) {
	req, err := http.NewRequest(http.MethodGet, strings.TrimRight(opts.URL, "/")+api.CountPath, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+opts.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("count hosts: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("count hosts: %w", api.ReadError(resp))
	}
	var c api.Counts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return 0, fmt.Errorf("count hosts: %w", err)
	}
	return c.Total, nil
}

func printResult(w io.Writer, r *Result) {
	fmt.Fprintf(w, "agents %d, interval %gs, duration %.1fs, keep-alive %v, %s, %d CPUs\n",
		r.Agents, r.IntervalS, r.DurationS, r.KeepAlive, cpuModel(), runtime.NumCPU())
	fmt.Fprintf(w, "requests %d (%.1f/s), errors %d, hosts registered %d\n",
		r.Requests, r.RatePerSecond, r.Errors, r.Registered)
	fmt.Fprintf(w, "latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", r.P50ms, r.P90ms, r.P99ms, r.MaxMs)
	if r.Consoles > 1 {
		fmt.Fprintf(w, "%d console replicas sharing one redis-server; figures below are their sums\n", r.Consoles)
	}
	if r.ConsoleCPUs > 0 {
		fmt.Fprintf(w, "console: cpu %.2fs (%.1f%% of one core), rss %.1f MiB, peak rss %.1f MiB\n",
			r.ConsoleCPUs, r.ConsoleCPUPct, r.ConsoleRSSMiB, r.ConsolePeakRSSMB)
	}
}

func cpuModel() string {
	if m := harness.CPUModel(); m != "" {
		return m
	}
	return "unknown CPU"
}

// consoleProc is a smith-console this program started.
type consoleProc struct {
	cmd     *exec.Cmd
	url     string
	dir     string
	peakRSS float64
}

// url is the console agent i talks to.
func (o *Options) url(i int) string {
	if n := len(o.MoreURLs) + 1; i%n > 0 {
		return o.MoreURLs[i%n-1]
	}
	return o.URL
}

// startRedis runs a redis-server without persistence on a free loopback
// port, in a temporary directory.
func startRedis(bin string) (*consoleProc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	host, port, _ := net.SplitHostPort(addr)
	dir, err := os.MkdirTemp("", "smith-redis-load-")
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, "--port", port, "--bind", host, "--dir", dir, "--save", "", "--appendonly", "no",
		"--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("start %s: %w", bin, err)
	}
	p := &consoleProc{cmd: cmd, dir: dir}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p, "redis://" + addr + "/0", nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, "", fmt.Errorf("redis-server on %s not up after 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr() (string, error) {
	port, err := harness.FreePort()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", port), nil
}

func startConsole(bin, token, password, redisURL string) (*consoleProc, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("console binary: %w (build it with make build, or give -console)", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "smith-console-load-")
	if err != nil {
		return nil, err
	}
	// The whole simulated fleet enrols within its first interval: the
	// enrolment rate limit is lifted for the run.
	conf := filepath.Join(dir, "console.toml")
	text := "enrol_rate = 1000000.0\nenrol_burst = 1000000\n"
	if redisURL != "" {
		text += fmt.Sprintf("redis_url = %q\n", redisURL)
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "-config", conf, "-listen", addr, "-db", filepath.Join(dir, "console.db"), "-log-level", "warn")
	cmd.Env = append(os.Environ(), "SMITH_FLEET_TOKEN="+token, "SMITH_CONSOLE_PASSWORD="+password)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &consoleProc{cmd: cmd, url: "http://" + addr, dir: dir}
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(c.url + api.HealthPath)
		if err == nil {
			resp.Body.Close()
			return c, nil
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("console at %s not up after 10s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *consoleProc) stop() {
	c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(c.dir)
}

type procStat struct {
	cpu            float64 // user + system seconds
	rssMiB, hwmMiB float64
}

// stat samples the console's CPU time and memory; what cannot be read
// (the process gone) stays 0.
func (c *consoleProc) stat() procStat {
	var s procStat
	pid := c.cmd.Process.Pid
	s.cpu, _ = harness.ProcCPU(pid)
	if m, err := harness.ProcMemory(pid); err == nil {
		s.rssMiB, s.hwmMiB = m.RSSMiB, m.PeakMiB
	}
	return s
}

func (c *consoleProc) sampleRSS() {
	c.peakRSS = max(c.peakRSS, c.stat().rssMiB)
}
