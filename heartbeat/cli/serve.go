package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"smith/heartbeat/server"
	"smith/heartbeat/store"
)

// shutdownGrace is how long in-flight requests get to finish on SIGTERM;
// heartbeats are small, so a few seconds is plenty.
const shutdownGrace = 5 * time.Second

func serve(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("smith-console serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	configPath := fs.String("config", "", "TOML config file")
	listen := fs.String("listen", "", "listen address")
	db := fs.String("db", "", "host registry file")
	tlsCert := fs.String("tls-cert", "", "TLS certificate (PEM)")
	tlsKey := fs.String("tls-key", "", "TLS key (PEM)")
	logLevel := fs.String("log-level", "", "debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "smith-console serve: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	cfg, err := LoadConfig(*configPath, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "smith-console: %v\n", err)
		return exitUsage
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			cfg.Listen = *listen
		case "db":
			cfg.DB = *db
		case "tls-cert":
			cfg.TLSCert = *tlsCert
		case "tls-key":
			cfg.TLSKey = *tlsKey
		case "log-level":
			cfg.LogLevel = *logLevel
		}
	})
	if err := cfg.Check(); err != nil {
		fmt.Fprintf(stderr, "smith-console: %v\n", err)
		return exitUsage
	}
	logger, closeLog, err := newLogger(&cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "smith-console: %v\n", err)
		return exitUsage
	}
	defer closeLog()
	if err := run(ctx, &cfg, logger); err != nil {
		logger.Error(err.Error())
		return exitFail
	}
	return exitOK
}

func newLogger(cfg *Config, stderr io.Writer) (*logrus.Logger, func(), error) {
	logger := logrus.New()
	level, err := logrus.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, nil, fmt.Errorf("config: log_level: %w", err)
	}
	logger.SetLevel(level)
	if cfg.LogFormat == "json" {
		logger.SetFormatter(&logrus.JSONFormatter{})
	} else {
		logger.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	}
	logger.SetOutput(stderr)
	closeLog := func() {}
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("log file: %w", err)
		}
		logger.SetOutput(f)
		closeLog = func() { f.Close() }
	}
	return logger, closeLog, nil
}

// run serves until ctx ends, then shuts down in order: stop accepting,
// let in-flight requests finish, stop the maintenance loop, flush and
// close the registry.
func run(ctx context.Context, cfg *Config, logger *logrus.Logger) error {
	if err := os.MkdirAll(filepath.Dir(cfg.DB), 0o700); err != nil {
		return fmt.Errorf("registry directory: %w", err)
	}
	var tlsConfig *tls.Config
	pin := ""
	if cfg.ServesTLS() {
		var err error
		if tlsConfig, pin, err = consoleTLS(cfg); err != nil {
			return err
		}
	}
	audit, closeAudit, err := openAudit(cfg, logger)
	if err != nil {
		return err
	}
	defer closeAudit()
	reg, sessions, rd, err := openRegistry(cfg, audit)
	if err != nil {
		return err
	}
	var webhook *server.Webhook
	if cfg.AlertWebhook != "" {
		webhook = server.NewWebhook(cfg.AlertWebhook, nil, logger)
	}
	srv, err := server.New(server.Config{
		FleetToken:       cfg.FleetToken,
		ConsolePassword:  cfg.ConsolePassword,
		Registry:         reg,
		Interval:         cfg.HeartbeatInterval.Duration,
		SessionTTL:       cfg.SessionTTL.Duration,
		SecureCookie:     tlsConfig != nil || cfg.TLSProxy,
		TrustProxy:       cfg.TLSProxy,
		LoginMaxFailures: cfg.LoginMaxFailures,
		LoginLockout:     cfg.LoginLockout.Duration,
		Audit:            audit,
		EnrolRate:        cfg.EnrolRate,
		EnrolBurst:       cfg.EnrolBurst,
		Webhook:          webhook,
		Sessions:         sessions,
		Log:              logger,
	})
	if err != nil {
		reg.Close()
		return fmt.Errorf("config: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		reg.Close()
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	logListening(logger, cfg, ln.Addr().String(), tlsConfig != nil, rd != nil, pin)

	maintainCtx, stopMaintain := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.Maintain(maintainCtx, cfg.FlushInterval.Duration) })
	if rd != nil {
		wg.Go(func() {
			reg.Follow(maintainCtx, func(err error) { logger.WithError(err).Error("redis: another replica's change not read") })
		})
	}
	if webhook != nil {
		wg.Go(func() { webhook.Run(maintainCtx) })
	}
	serveErr := serveHTTP(ctx, srv, ln, cfg, logger)
	stopMaintain()
	wg.Wait()
	if err := reg.Close(); err != nil {
		return errors.Join(serveErr, err)
	}
	if serveErr != nil {
		return fmt.Errorf("serve on %s: %w", cfg.Listen, serveErr)
	}
	logger.Info("stopped; registry saved")
	return nil
}

// openAudit is the audit trail: the audit_log file and the log, or the
// log alone; the function returned closes the file.
func openAudit(cfg *Config, logger *logrus.Logger) (*server.Audit, func(), error) {
	if cfg.AuditLog == "" {
		return server.NewAudit(nil, logger), func() {}, nil
	}
	f, err := os.OpenFile(cfg.AuditLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	return server.NewAudit(f, logger), func() { f.Close() }, nil
}

// openRegistry opens the host registry (bbolt, or Redis when redis_url
// is set, which then also holds the sessions) and audits a changed task
// schedule.
func openRegistry(cfg *Config, audit *server.Audit) (*store.Registry, server.Sessions, *store.Redis, error) {
	policy := store.Policy{
		OfflineAfter:  cfg.OfflineTimeout(),
		TaskIntervals: cfg.TaskIntervals(),
		MaxHosts:      cfg.MaxHosts,
		DropWindow:    cfg.DropWindow.Duration,
	}
	var reg *store.Registry
	var sessions server.Sessions
	var rd *store.Redis
	var err error
	if cfg.RedisURL != "" {
		if rd, err = store.OpenRedis(cfg.RedisURL, cfg.RedisPrefix); err != nil {
			return nil, nil, nil, err
		}
		sessions = rd.Sessions(cfg.SessionTTL.Duration)
		reg, err = store.OpenWith(rd, policy)
	} else {
		reg, err = store.Open(cfg.DB, policy)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	changes, err := reg.ScheduleChanges()
	if err != nil {
		reg.Close()
		return nil, nil, nil, err
	}
	if len(changes) > 0 {
		audit.Record(time.Now(), "tasks_changed", "", changes)
	}
	return reg, sessions, rd, nil
}

// logListening says where and how the console serves.
func logListening(logger *logrus.Logger, cfg *Config, addr string, tlsOn, redis bool, pin string) {
	fields := logrus.Fields{
		"addr": addr, "tls": tlsOn, "tls_proxy": cfg.TLSProxy, "db": cfg.DB,
		"heartbeat_interval": cfg.HeartbeatInterval.String(), "offline_after": cfg.OfflineTimeout().String(),
	}
	if redis {
		fields["db"] = "redis, keys " + cfg.RedisPrefix + "*"
	}
	if pin != "" {
		// What agents put in heartbeat.pin_sha256.
		fields["cert_sha256"] = pin
	}
	if !tlsOn && !cfg.TLSProxy {
		logger.WithField("addr", addr).Warn("serving plain HTTP: credentials travel in clear")
	}
	logger.WithFields(fields).Info("smith-console listening")
}

// serveHTTP serves h on ln until ctx ends or serving fails, then gives
// in-flight requests shutdownGrace to finish; it returns why serving
// ended (nil for ctx).
func serveHTTP(ctx context.Context, h http.Handler, ln net.Listener, cfg *Config, logger *logrus.Logger) error {
	// http.Server's own complaints (TLS handshakes, bad requests) at
	// debug level: a scanner must not be able to flood the log.
	errLog := logger.WriterLevel(logrus.DebugLevel)
	defer errLog.Close()
	httpSrv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       cfg.IdleTimeout.Duration,
		ErrorLog:          log.New(errLog, "", 0),
	}
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case serveErr = <-served:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		logger.WithError(err).Warn("requests still running at shutdown")
	}
	if serveErr == nil {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	} else if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}
