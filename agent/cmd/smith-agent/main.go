// Command smith-agent reads the smith kernel module's records, turns them
// into JSON events and ships them to Kafka, a file or stdout, reporting
// its health to smith-console.  main only wires the packages of agent/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"smith/agent/config"
	"smith/agent/encode"
	"smith/agent/enrich"
	"smith/agent/filter"
	"smith/agent/heartbeat"
	"smith/agent/inventory"
	"smith/agent/logging"
	"smith/agent/metrics"
	"smith/agent/pipeline"
	"smith/agent/sink"
	"smith/agent/source"
	"smith/shm"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

const usage = `Usage: smith-agent [flags]

Reads the smith module's ring (/dev/smith), turns records into JSON events
and ships them to Kafka, a rotating file or stdout (see docs/AGENT.md).

Flags:
`

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1
	exitConfig  = 2
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("smith-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", config.DefaultPath, "configuration file (TOML); when the default path does not exist, built-in defaults are used")
	check := fs.Bool("check-config", false, "validate the configuration and exit (0: valid, 2: not)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nExit codes: 0 clean stop, 1 runtime failure, 2 bad configuration or flags.\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "smith-agent: unexpected argument %q (see -help)\n", fs.Arg(0))
		return exitConfig
	}
	if *showVersion {
		fmt.Fprintf(stdout, "smith-agent %s (ring ABI %d.%d)\n", version, shm.ABIMajor, shm.ABIMinor)
		return exitOK
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	var cfg config.Config
	var err error
	if _, statErr := os.Stat(*cfgPath); !explicit && errors.Is(statErr, os.ErrNotExist) {
		cfg, err = config.FromDefaults()
	} else {
		cfg, err = config.Load(*cfgPath)
	}
	if err != nil {
		fmt.Fprintf(stderr, "smith-agent: %v\n", err)
		return exitConfig
	}
	// What a start would refuse, refused before anything starts (and by
	// -check-config, which systemd runs first): exit 2, not restarted.
	if err := preflight(cfg); err != nil {
		fmt.Fprintf(stderr, "smith-agent: %v\n", err)
		return exitConfig
	}
	if *check {
		fmt.Fprintf(stdout, "smith-agent: configuration OK (sinks: %s)\n", strings.Join(cfg.Output.Sinks, ", "))
		return exitOK
	}
	log, closeLog, reopenLog, err := logging.Open(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "smith-agent: %v\n", err)
		return exitConfig
	}
	defer closeLog()
	if err := agent(cfg, log, reopenLog, stdout); err != nil {
		log.WithError(err).Error("smith-agent stopped")
		if log.Out != stderr {
			fmt.Fprintf(stderr, "smith-agent: %v\n", err)
		}
		return exitRuntime
	}
	return exitOK
}

// preflight checks what the configuration names beyond its own syntax,
// as a start would use it: the log level, the event format, the filter
// patterns, the Kafka settings (kafka.version, TLS files, the SASL
// password file), the heartbeat token and CA files.  It changes nothing.
func preflight(cfg config.Config) error {
	if _, err := logrus.ParseLevel(cfg.Log.Level); err != nil {
		return fmt.Errorf("log.level: %w", err)
	}
	if _, err := encode.New(encode.Format(cfg.Agent.Format), encode.Host{}); err != nil {
		return fmt.Errorf("agent.format: %w", err)
	}
	if _, err := filter.New(0, cfg.Filter.ExeAllow, cfg.Filter.ArgvAllow); err != nil {
		return err
	}
	if slices.Contains(cfg.Output.Sinks, "kafka") {
		if _, err := sink.SaramaConfig(cfg.Kafka); err != nil {
			return err
		}
	}
	if cfg.Heartbeat.URL != "" {
		if _, err := cfg.Heartbeat.EnrolmentToken(); err != nil {
			return err
		}
		if f := cfg.Heartbeat.CAFile; f != "" {
			if _, err := sink.TLSConfig(config.TLS{CAFile: f}); err != nil {
				return fmt.Errorf("heartbeat.ca_file: %w", err)
			}
		}
	}
	return nil
}

func openSource(c config.Source) (source.Source, error) {
	switch c.Kind {
	case "file":
		return source.OpenFile(c.File, c.PollInterval.D())
	case "netlink":
		return source.OpenNetlink(c.Device)
	}
	return source.OpenDevice(c.Device)
}

// agent runs until SIGTERM or SIGINT, then stops in order: the reader
// first (flushing what it read), then the sinks, then the rest.
func agent(cfg config.Config, log *logrus.Logger, reopenLog func() error, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if cfg.Agent.PidFile != "" {
		if err := writePidFile(cfg.Agent.PidFile); err != nil {
			return err
		}
		defer os.Remove(cfg.Agent.PidFile)
	}
	host, err := enrich.NewHost(cfg.Agent.Hostname)
	if err != nil {
		return err
	}
	src, err := openSource(cfg.Source)
	if err != nil {
		return err
	}
	defer src.Release()
	counters := &metrics.Counters{}
	ringStats := src.Ring
	counters.RingStats.Store(&ringStats)

	state, next, err := openSeqState(cfg.Agent.StateDir, src, log)
	if err != nil {
		return err
	}
	defer state.Close()
	// Drop counters outlive the agent: a kill while the spool is full
	// and dropping loses none (docs/RELIABILITY.md).
	if note, err := counters.Persist(filepath.Join(cfg.Agent.StateDir, "drops")); err != nil {
		return err
	} else if note != "" {
		log.Warn(note)
	}

	enc, err := encode.New(encode.Format(cfg.Agent.Format), host.Get())
	if err != nil {
		return err
	}
	flt, prevPid, prevEnd, err := newFilter(cfg.Filter, state, src)
	if err != nil {
		return err
	}
	enr := enrich.New(enrich.OptionsFrom(cfg.Enrich))
	defer enr.Close()

	sinks, err := sink.Open(cfg, host.Get().Name, stdout, pipeline.Batches(cfg.Agent.QueueSize)+1, counters, log)
	if err != nil {
		return err
	}
	p := pipeline.New(pipeline.Options{
		Source: src, Encoder: enc, Enricher: enr, Filter: flt, Sinks: sinks.Sinks, Counters: counters,
		State: state, NextSeq: next, RingSize: src.Size(), QueueEvents: cfg.Agent.QueueSize, Log: log,
		PrevPid: prevPid, PrevEnd: prevEnd,
	})

	var bg sync.WaitGroup
	bgCtx, stopBg := context.WithCancel(context.Background())
	defer func() {
		stopBg()
		bg.Wait()
	}()
	if cfg.Metrics.Listen != "" {
		closeMetrics, err := serveMetrics(cfg.Metrics.Listen, counters, log)
		if err != nil {
			sinks.Close(sinkCloseTimeout)
			return err
		}
		defer closeMetrics()
	}
	bg.Go(func() { host.Watch(bgCtx, cfg.Enrich.RefreshHost.D(), enc.SetHost) })
	if cfg.Heartbeat.URL != "" {
		hb, err := newHeartbeat(cfg, host, src, counters, sinks, p, log)
		if err != nil {
			sinks.Close(sinkCloseTimeout)
			return err
		}
		bg.Go(func() { hb.Run(bgCtx) })
	}
	reopenOnHUP(bgCtx, &bg, reopenLog, sinks, log)

	m := src.Module()
	log.Infof("smith-agent %s reading %s ring (ABI %s), format %s, sinks %s, first sequence number %d",
		version, m.Transport, m.ABI, cfg.Agent.Format, strings.Join(cfg.Output.Sinks, ","), next)
	runErr := p.Run(ctx)
	sinks.Close(sinkCloseTimeout)
	log.Infof("stopped: %d events read, %d sent, %d spooled, %d spilled", counters.Read.Load(), counters.Sent.Load(), counters.Spooled.Load(), counters.Spilled.Load())
	return runErr
}

// sinkCloseTimeout bounds the wait for the sinks at a stop.
const sinkCloseTimeout = 15 * time.Second

// writePidFile writes the agent's pid to path, making its directory
// (/run/smith may not exist: a tmpfs /run is empty at boot).
func writePidFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("pid file directory: %w", err)
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

// openSeqState opens the sequence state in dir for src's ring and says
// when the event stream starts anew or continues above a mismatch.
func openSeqState(dir string, src source.Source, log logrus.FieldLogger) (*pipeline.SeqState, uint64, error) {
	state, next, fellBack, err := pipeline.OpenSeqState(dir, src.ConsumerPos(), src.Size())
	if err != nil {
		return nil, 0, err
	}
	if why := state.Fresh(); why != "" {
		log.Warnf("%s: new event stream %s, numbered from %d (a consumer tells it from earlier ones by its stream id)", why, state.Stream(), next)
	} else if fellBack {
		log.Warnf("sequence state does not match the ring (module reloaded): stream %s continues at %d, above every number handed out", state.Stream(), next)
	}
	return state, next, nil
}

// newFilter is the filter of [filter]; with filter.self it drops the
// agent's own events, and those of the agent before it up to where the
// ring is now (everything that one could have read was written before
// now): the pid and the ring position returned.
func newFilter(c config.Filter, state *pipeline.SeqState, src source.Source) (*filter.Filter, uint32, uint64, error) {
	selfPid, prevPid, prevEnd := uint32(0), uint32(0), uint64(0)
	if c.Self {
		selfPid = uint32(os.Getpid())
		prevPid, prevEnd = state.PreviousPID(), src.ProducerPos()
	}
	flt, err := filter.New(selfPid, c.ExeAllow, c.ArgvAllow)
	return flt, prevPid, prevEnd, err
}

// serveMetrics serves the Prometheus endpoint on listen until the
// returned function closes it.
func serveMetrics(listen string, counters *metrics.Counters, log logrus.FieldLogger) (func(), error) {
	ms, err := metrics.Serve(listen, counters)
	if err != nil {
		return nil, err
	}
	log.Infof("metrics on http://%s/metrics", ms.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ms.Close(ctx)
	}, nil
}

// newHeartbeat is the console client of [heartbeat]: its tasks collect
// from the host's root, its status from src and counters.
func newHeartbeat(cfg config.Config, host *enrich.Host, src source.Source, counters *metrics.Counters, sinks *sink.Set, p *pipeline.Pipeline, log logrus.FieldLogger) (*heartbeat.Client, error) {
	token, err := cfg.Heartbeat.EnrolmentToken()
	if err != nil {
		return nil, err
	}
	status := inventory.Status{Module: src.Module, Counters: counters, Version: version, Format: cfg.Agent.Format, Sinks: cfg.Output.Sinks}
	return heartbeat.New(heartbeat.Options{
		URL: cfg.Heartbeat.URL, Token: token, CredentialFile: cfg.HeartbeatCredentialFile(), SpoolMaxBytes: cfg.SpoolBound(),
		Interval: cfg.Heartbeat.Interval.D(), Timeout: cfg.Heartbeat.Timeout.D(),
		CAFile: cfg.Heartbeat.CAFile, PinSHA256: cfg.Heartbeat.PinSHA256, Insecure: cfg.Heartbeat.Insecure,
		AgentVersion: version, Host: host.Get, Module: src.Module, Counters: counters, Ship: p.AddTasks, LastError: sinks.LastError,
		Tasks: &inventory.Tasks{Root: "/", IntegrityRate: int64(cfg.Tasks.IntegrityRate), Status: status.Facts},
		Log:   log,
	})
}

// reopenOnHUP opens the log and output files again on each SIGHUP
// (logrotate) until ctx is done.
func reopenOnHUP(ctx context.Context, bg *sync.WaitGroup, reopenLog func() error, sinks *sink.Set, log logrus.FieldLogger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	bg.Go(func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			if err := reopenLog(); err != nil {
				log.WithError(err).Error("SIGHUP: reopen the log file")
			}
			sinks.Reopen()
			log.Info("SIGHUP: log and output files reopened")
		}
	})
}
