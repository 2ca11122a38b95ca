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
	log, closeLog, reopenLog, err := setupLog(cfg.Log, stderr)
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
		if f := cfg.Heartbeat.TokenFile; f != "" {
			if _, err := os.ReadFile(f); err != nil {
				return fmt.Errorf("heartbeat.token_file: %w", err)
			}
		}
		if f := cfg.Heartbeat.CAFile; f != "" {
			if _, err := sink.TLSConfig(config.TLS{CAFile: f}); err != nil {
				return fmt.Errorf("heartbeat.ca_file: %w", err)
			}
		}
	}
	return nil
}

// setupLog returns the logger, a function that closes its file and one
// that opens the file again (SIGHUP, after logrotate moved it).
func setupLog(c config.Log, stderr io.Writer) (*logrus.Logger, func(), func() error, error) {
	log := logrus.New()
	log.Out = stderr
	lvl, err := logrus.ParseLevel(c.Level)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("log.level: %w", err)
	}
	log.SetLevel(lvl)
	if c.Format == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	}
	if c.File == "" {
		return log, func() {}, func() error { return nil }, nil
	}
	open := func() (*os.File, error) {
		f, err := os.OpenFile(c.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
		return f, nil
	}
	f, err := open()
	if err != nil {
		return nil, nil, nil, err
	}
	log.SetOutput(f)
	var mu sync.Mutex
	reopen := func() error {
		nf, err := open()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		log.SetOutput(nf) // under the logger's lock: no line is split
		f.Close()
		f = nf
		return nil
	}
	closeFn := func() {
		mu.Lock()
		defer mu.Unlock()
		f.Close()
	}
	return log, closeFn, reopen, nil
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
		// /run/smith may not exist (a tmpfs /run is empty at boot).
		if err := os.MkdirAll(filepath.Dir(cfg.Agent.PidFile), 0o755); err != nil {
			return fmt.Errorf("pid file directory: %w", err)
		}
		if err := os.WriteFile(cfg.Agent.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fmt.Errorf("pid file: %w", err)
		}
		defer os.Remove(cfg.Agent.PidFile)
	}
	host, err := enrich.HostIdentity(cfg.Agent.Hostname)
	if err != nil {
		return err
	}
	var hostMu sync.Mutex
	currentHost := func() encode.Host {
		hostMu.Lock()
		defer hostMu.Unlock()
		return host
	}

	src, err := openSource(cfg.Source)
	if err != nil {
		return err
	}
	defer src.Release()
	counters := &metrics.Counters{}
	ringStats := src.Ring
	counters.RingStats.Store(&ringStats)

	state, next, fellBack, err := pipeline.OpenSeqState(cfg.Agent.StateDir, src.ConsumerPos(), src.Size())
	if err != nil {
		return err
	}
	defer state.Close()
	if why := state.Fresh(); why != "" {
		log.Warnf("%s: new event stream %s, numbered from %d (a consumer tells it from earlier ones by its stream id)", why, state.Stream(), next)
	} else if fellBack {
		log.Warnf("sequence state does not match the ring (module reloaded): stream %s continues at %d, above every number handed out", state.Stream(), next)
	}

	// Drop counters outlive the agent: a kill while the spool is full
	// and dropping loses none (docs/RELIABILITY.md).
	if note, err := counters.Persist(filepath.Join(cfg.Agent.StateDir, "drops")); err != nil {
		return err
	} else if note != "" {
		log.Warn(note)
	}

	enc, err := encode.New(encode.Format(cfg.Agent.Format), host)
	if err != nil {
		return err
	}
	selfPid, prevPid, prevEnd := uint32(0), uint32(0), uint64(0)
	if cfg.Filter.Self {
		selfPid = uint32(os.Getpid())
		// Everything the previous agent could have read was written
		// before now.
		prevPid, prevEnd = state.PreviousPID(), src.ProducerPos()
	}
	flt, err := filter.New(selfPid, cfg.Filter.ExeAllow, cfg.Filter.ArgvAllow)
	if err != nil {
		return err
	}
	enr := enrich.New(enrich.Options{
		ProcDir: cfg.Enrich.ProcDir, PasswdFile: cfg.Enrich.PasswdFile, DockerDir: cfg.Enrich.DockerDir,
		KubeletDir: cfg.Enrich.KubeletDir, CacheSize: cfg.Enrich.CacheSize,
		Usernames: cfg.Enrich.Usernames, Containers: cfg.Enrich.Containers,
		ContainerdDir: cfg.Enrich.ContainerdDir, CrioDirs: cfg.Enrich.CrioDirs,
		Ancestry: cfg.Enrich.Ancestry, ProcessTableSize: cfg.Enrich.ProcessTableSize,
		Hash: enrich.HashOptions{Enabled: cfg.Enrich.ExeHash, MaxSize: int64(cfg.Enrich.ExeHashMaxSize),
			Rate: int64(cfg.Enrich.ExeHashRate), Wait: cfg.Enrich.ExeHashWait.D(), CacheSize: cfg.Enrich.CacheSize},
	})
	defer enr.Close()

	queue := max(2, cfg.Agent.QueueSize/256) + 1
	var sinks []sink.Sink
	var kafka *sink.Kafka
	for _, name := range cfg.Output.Sinks {
		switch name {
		case "stdout":
			sinks = append(sinks, sink.NewWriter("stdout", stdout, queue, counters, log))
		case "file":
			s, err := sink.NewFile(cfg.Output.File.Path, int64(cfg.Output.File.MaxBytes), cfg.Output.File.MaxFiles, queue, counters, log)
			if err != nil {
				return err
			}
			sinks = append(sinks, s)
		case "kafka":
			sp, err := sink.OpenSpool(cfg.SpoolDir(), int64(cfg.Spool.MaxBytes), int64(cfg.Spool.SegmentBytes))
			if err != nil {
				return err
			}
			kafka, err = sink.NewKafka(cfg.Kafka, host.Name, sp, queue, counters, log)
			if err != nil {
				sp.Close()
				return err
			}
			sinks = append(sinks, kafka)
		}
	}
	closeSinks := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		for _, s := range sinks {
			if err := s.Close(ctx); err != nil {
				log.WithError(err).Warnf("closing %s sink", s.Name())
			}
		}
	}

	p := pipeline.New(pipeline.Options{
		Source: src, Encoder: enc, Enricher: enr, Filter: flt, Sinks: sinks, Counters: counters,
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
		ms, err := metrics.Serve(cfg.Metrics.Listen, counters)
		if err != nil {
			closeSinks()
			return err
		}
		log.Infof("metrics on http://%s/metrics", ms.Addr())
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ms.Close(ctx)
		}()
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		t := time.NewTicker(cfg.Enrich.RefreshHost.D())
		defer t.Stop()
		for {
			select {
			case <-bgCtx.Done():
				return
			case <-t.C:
				if h, err := enrich.HostIdentity(cfg.Agent.Hostname); err == nil {
					hostMu.Lock()
					host = h
					hostMu.Unlock()
					enc.SetHost(h) // events carry the new name and addresses too
				}
			}
		}
	}()
	if cfg.Heartbeat.URL != "" {
		token := cfg.Heartbeat.Token
		if cfg.Heartbeat.TokenFile != "" {
			raw, err := os.ReadFile(cfg.Heartbeat.TokenFile)
			if err != nil {
				closeSinks()
				return fmt.Errorf("heartbeat.token_file: %w", err)
			}
			token = strings.TrimSpace(string(raw))
		}
		hb, err := heartbeat.New(heartbeat.Options{
			URL: cfg.Heartbeat.URL, Token: token, CredentialFile: cfg.HeartbeatCredentialFile(), SpoolMaxBytes: cfg.SpoolBound(), Interval: cfg.Heartbeat.Interval.D(), Timeout: cfg.Heartbeat.Timeout.D(),
			CAFile: cfg.Heartbeat.CAFile, PinSHA256: cfg.Heartbeat.PinSHA256, Insecure: cfg.Heartbeat.Insecure, AgentVersion: version, Host: currentHost, Module: src.Module,
			Counters: counters, Ship: p.AddTasks, Log: log,
			LastError: func() string {
				if kafka != nil {
					return kafka.LastError()
				}
				return ""
			},
			Tasks: &inventory.Tasks{Root: "/", IntegrityRate: int64(cfg.Tasks.IntegrityRate), Status: func() (mod, ag [][2]string) {
				m := src.Module()
				r := counters.Ring()
				mod = [][2]string{{"loaded", strconv.FormatBool(m.Version != "")}, {"version", m.Version}, {"abi", m.ABI},
					{"transport", m.Transport}, {"written", strconv.FormatUint(r.Written, 10)},
					{"dropped_full", strconv.FormatUint(r.DroppedFull, 10)}, {"hook_missed", strconv.FormatUint(r.HookMissed, 10)}}
				ag = [][2]string{{"version", version}, {"format", cfg.Agent.Format}, {"sinks", strings.Join(cfg.Output.Sinks, ",")},
					{"events_read", strconv.FormatUint(counters.Read.Load(), 10)}, {"events_sent", strconv.FormatUint(counters.Sent.Load(), 10)},
					{"spool_events", strconv.FormatUint(counters.SpoolEvents.Load(), 10)}}
				return mod, ag
			}},
		})
		if err != nil {
			closeSinks()
			return err
		}
		bg.Add(1)
		go func() {
			defer bg.Done()
			hb.Run(bgCtx)
		}()
	}

	// SIGHUP: open the log and output files again (logrotate).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	bg.Add(1)
	go func() {
		defer bg.Done()
		for {
			select {
			case <-bgCtx.Done():
				return
			case <-hup:
			}
			if err := reopenLog(); err != nil {
				log.WithError(err).Error("SIGHUP: reopen the log file")
			}
			for _, s := range sinks {
				if r, ok := s.(sink.Reopener); ok {
					if err := r.Reopen(); err != nil {
						log.WithError(err).Errorf("SIGHUP: reopen the %s sink's file", s.Name())
					}
				}
			}
			log.Info("SIGHUP: log and output files reopened")
		}
	}()

	m := src.Module()
	log.Infof("smith-agent %s reading %s ring (ABI %s), format %s, sinks %s, first sequence number %d",
		version, m.Transport, m.ABI, cfg.Agent.Format, strings.Join(cfg.Output.Sinks, ","), next)
	runErr := p.Run(ctx)
	closeSinks()
	log.Infof("stopped: %d events read, %d sent, %d spooled", counters.Read.Load(), counters.Sent.Load(), counters.Spooled.Load())
	return runErr
}
