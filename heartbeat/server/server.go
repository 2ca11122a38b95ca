// Package server is smith-console's HTTP side: the heartbeat endpoint the
// agents post to (fleet token), the read API the web console and the CLI
// use (console password or session cookie), and the embedded web console.
//
// A Server is an http.Handler, so a test mounts it on httptest.NewServer:
//
//	reg, _ := store.Open(filepath.Join(t.TempDir(), "hosts.db"), policy)
//	srv, _ := server.New(server.Config{FleetToken: "f", ConsolePassword: "c", Registry: reg})
//	ts := httptest.NewServer(srv)
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"smith/heartbeat/api"
	"smith/heartbeat/store"
	"smith/heartbeat/web"
	"smith/internal/tick"
)

// Config wires a Server.
type Config struct {
	// FleetToken authenticates agents; ConsolePassword people and the
	// CLI. Both are required and must differ.
	FleetToken      string
	ConsolePassword string

	Registry *store.Registry

	// Interval is the heartbeat interval told to agents (default 30 s).
	Interval time.Duration
	// SessionTTL is how long a console login lasts (default 12 h).
	SessionTTL time.Duration
	// SecureCookie marks the session cookie Secure and sends HSTS (set
	// it when serving TLS, or behind a TLS-terminating proxy).
	SecureCookie bool
	// TrustProxy takes the client address from the last entry of
	// X-Forwarded-For (the one the proxy in front added), for the login
	// limiter and the logs. Set it only behind such a proxy.
	TrustProxy bool

	// LoginMaxFailures wrong passwords from one address within
	// LoginLockout lock that address out for LoginLockout (defaults 5
	// and 15 min). Both the web login and the CLI's bearer password
	// count.
	LoginMaxFailures int
	LoginLockout     time.Duration
	// Audit records logins and decommissions (default: the log only).
	Audit *Audit
	// EnrolRate new hosts a second may enrol, EnrolBurst at once
	// (defaults 50 and 500); beyond, 429 and the agent tries again at
	// its next interval.
	EnrolRate  float64
	EnrolBurst int
	// Webhook, when set, receives every alert event (the caller runs
	// it).
	Webhook *Webhook
	// Sessions keeps logins (default: in memory; replicas share
	// store.RedisSessions).
	Sessions Sessions

	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
	// Log receives refusals and state changes (default logrus's standard
	// logger).
	Log logrus.FieldLogger
}

// Server serves the heartbeat API, the console API and the web console.
type Server struct {
	cfg      Config
	fleet    [sha256.Size]byte
	console  [sha256.Size]byte
	sessions Sessions
	limiter  *limiter
	// secrets counts wrong fleet secrets per address, apart from the
	// console password's limiter: misconfigured agents behind the
	// operators' address must not lock the operators out.
	secrets *limiter
	enrols  *bucket
	metrics *metrics
	mux     *http.ServeMux
	// period is Maintain's; a replica leads alerting for 3 periods.
	period atomic.Int64
}

// New checks cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.FleetToken == "":
		return nil, errors.New("fleet token is empty: agents could not authenticate")
	case cfg.ConsolePassword == "":
		return nil, errors.New("console password is empty: nobody could log in")
	case cfg.FleetToken == cfg.ConsolePassword:
		return nil, errors.New("fleet token and console password are the same: every agent host could read the registry")
	case cfg.Registry == nil:
		return nil, errors.New("no host registry")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	if cfg.LoginMaxFailures <= 0 {
		cfg.LoginMaxFailures = 5
	}
	if cfg.LoginLockout <= 0 {
		cfg.LoginLockout = 15 * time.Minute
	}
	if cfg.Audit == nil {
		cfg.Audit = NewAudit(nil, cfg.Log)
	}
	if cfg.Sessions == nil {
		cfg.Sessions = newSessions(cfg.SessionTTL)
	}
	if cfg.EnrolRate <= 0 {
		cfg.EnrolRate = 50
	}
	if cfg.EnrolBurst <= 0 {
		cfg.EnrolBurst = 500
	}
	s := &Server{
		cfg:      cfg,
		fleet:    sha256.Sum256([]byte(cfg.FleetToken)),
		console:  sha256.Sum256([]byte(cfg.ConsolePassword)),
		sessions: cfg.Sessions,
		limiter:  newLimiter(cfg.LoginMaxFailures, cfg.LoginLockout),
		secrets:  newLimiter(cfg.LoginMaxFailures, cfg.LoginLockout),
		enrols:   newBucket(cfg.EnrolRate, cfg.EnrolBurst),
		mux:      http.NewServeMux(),
	}
	s.metrics = newMetrics(s)
	s.mux.HandleFunc(api.HeartbeatPath, counted(s.metrics.heartbeats, s.heartbeat))
	s.mux.HandleFunc("POST "+api.EnrolPath, counted(s.metrics.enrolments, s.enrol))
	s.mux.Handle("GET "+api.MetricsPath, s.viewer(s.metrics.handler(s)))
	s.mux.Handle("DELETE "+api.HostsPath+"/{key}", s.viewer(s.decommission))
	s.mux.HandleFunc("POST "+api.LoginPath, s.login)
	s.mux.HandleFunc("POST "+api.LogoutPath, s.logout)
	s.mux.Handle("GET "+api.HostsPath, s.viewer(s.hosts))
	s.mux.Handle("GET "+api.HostsPath+"/{key}", s.viewer(s.host))
	s.mux.Handle("GET "+api.CountPath, s.viewer(s.count))
	s.mux.HandleFunc("GET "+api.HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such API endpoint")
	})
	assets := web.Handler()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "the console page is read-only")
			return
		}
		assets.ServeHTTP(w, r)
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("Cache-Control", "no-store")
	if s.cfg.SecureCookie {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	s.mux.ServeHTTP(w, r)
}

// Maintain flushes the registry to disk and logs hosts that went offline,
// every period, until ctx ends. The caller closes the registry afterwards
// (which flushes once more).
func (s *Server) Maintain(ctx context.Context, period time.Duration) {
	s.period.Store(int64(period))
	tick.Every(ctx, period, s.maintain)
}

func (s *Server) maintain() {
	now := s.cfg.Now()
	if err := s.cfg.Registry.Flush(); err != nil {
		s.cfg.Log.WithError(err).Error("registry not saved; retrying next period")
	}
	if !s.cfg.Registry.Leads(3 * max(time.Duration(s.period.Load()), time.Second)) {
		// Another replica evaluates and logs; its results arrive
		// with its records.
		s.cfg.Registry.RefreshVersions()
		s.sessions.Prune(now)
		s.limiter.prune(now)
		s.secrets.prune(now)
		return
	}
	for _, h := range s.cfg.Registry.Sweep(now) {
		s.cfg.Log.WithFields(logrus.Fields{
			"host": h.Hostname, "host_id": h.HostID,
			"last_seen": h.LastSeen.UTC().Format(time.RFC3339),
		}).Warn("host offline")
	}
	for _, ev := range s.cfg.Registry.Evaluate(now) {
		s.metrics.alerts.WithLabelValues(ev.Kind, ev.State).Inc()
		log := s.cfg.Log.WithFields(logrus.Fields{"alert": ev.Kind, "host": ev.Hostname, "host_id": ev.HostID, "detail": ev.Detail})
		if ev.State == "firing" {
			log.Warn("alert firing")
		} else {
			log.Info("alert resolved")
		}
		if s.cfg.Webhook != nil {
			s.cfg.Webhook.Notify(ev)
		}
	}
	s.sessions.Prune(now)
	s.limiter.prune(now)
	s.secrets.prune(now)
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) {
	log := s.cfg.Log.WithField("remote", s.clientAddr(r))
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "POST a heartbeat")
		return
	}
	cred := bearer(r)
	if _, ok := s.cfg.Registry.Authenticate(cred); !ok {
		s.refuseCredential(w, log)
		return
	}
	var hb api.Heartbeat
	if status, code, err := decodeJSON(w, r, &hb); err != nil {
		log.WithError(err).Warn("heartbeat refused")
		writeError(w, status, code, err.Error())
		return
	}
	if err := hb.Validate(); err != nil {
		log.WithError(err).WithField("host", hb.Hostname).Warn("heartbeat refused")
		refuseInvalid(w, err, "invalid_heartbeat")
		return
	}
	now := s.cfg.Now()
	began := time.Now()
	tasks, err := s.cfg.Registry.HeartbeatAs(cred, &hb, s.clientAddr(r), now)
	s.metrics.latency.Observe(time.Since(began).Seconds())
	switch {
	case errors.Is(err, store.ErrUnknownCredential):
		// Decommissioned between the two checks.
		s.refuseCredential(w, log)
		return
	case errors.Is(err, store.ErrWrongHost):
		log.WithField("host_id", hb.HostID).Warn("heartbeat refused: credential of another host")
		writeError(w, http.StatusForbidden, "wrong_host", err.Error())
		return
	case errors.Is(err, store.ErrIdentityConflict):
		log.WithField("host_id", hb.HostID).WithField("run_id", hb.RunID).Warn("heartbeat refused: identity conflict")
		writeError(w, http.StatusConflict, "identity_conflict", err.Error())
		return
	}
	if tasks == nil {
		tasks = []api.Task{}
	}
	writeJSON(w, http.StatusOK, &api.Response{
		Version:         api.Version,
		ServerTime:      now.UTC(),
		IntervalSeconds: int(s.cfg.Interval / time.Second),
		Tasks:           tasks,
	})
}

// refuseInvalid answers a request that failed validation: 400 with
// unsupported_version for another major version, else code.
func refuseInvalid(w http.ResponseWriter, err error, code string) {
	var ve *api.VersionError
	if errors.As(err, &ve) {
		code = "unsupported_version"
	}
	writeError(w, http.StatusBadRequest, code, err.Error())
}

func (s *Server) refuseCredential(w http.ResponseWriter, log logrus.FieldLogger) {
	log.Warn("heartbeat refused: not an enrolled host's credential")
	w.Header().Set("WWW-Authenticate", `Bearer realm="smith-agents"`)
	writeError(w, http.StatusUnauthorized, "unknown_credential",
		"not the credential of an enrolled host (decommissioned, or never enrolled: an agent enrols at "+api.EnrolPath+" with the fleet secret)")
}

// enrol gives a new host its credential, for the fleet enrolment secret.
func (s *Server) enrol(w http.ResponseWriter, r *http.Request) {
	addr := s.clientAddr(r)
	log := s.cfg.Log.WithField("remote", addr)
	now := s.cfg.Now()
	if until := s.secrets.locked(addr, now); !until.IsZero() {
		log.Warn("enrolment refused: address locked out after wrong fleet secrets")
		lockedOut(w, addr, until, now)
		return
	}
	if !tokenMatches(bearer(r), s.fleet) {
		log.Warn("enrolment refused: missing or wrong fleet secret")
		if until := s.secrets.fail(addr, now); !until.IsZero() {
			s.cfg.Audit.Record(now, "enrol_lockout", addr, nil)
			lockedOut(w, addr, until, now)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="smith-agents"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong fleet enrolment secret")
		return
	}
	var in api.EnrolRequest
	if status, code, err := decodeJSON(w, r, &in); err != nil {
		writeError(w, status, code, err.Error())
		return
	}
	if err := in.Validate(); err != nil {
		refuseInvalid(w, err, "invalid_enrolment")
		return
	}
	if ok, wait := s.enrols.take(now); !ok {
		secs := max(1, int((wait+time.Second-1)/time.Second))
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		writeError(w, http.StatusTooManyRequests, "enrol_rate_limited",
			fmt.Sprintf("too many enrolments: at most %g a second; try again in %d s", s.cfg.EnrolRate, secs))
		return
	}
	fields := map[string]string{"host_id": in.HostID, "hostname": in.Hostname}
	cred, err := s.cfg.Registry.Enrol(in.HostID, in.Hostname, addr, now)
	switch {
	case errors.Is(err, store.ErrAlreadyEnrolled):
		s.cfg.Audit.Record(now, "enrol_refused_enrolled", addr, fields)
		writeError(w, http.StatusConflict, "already_enrolled", fmt.Sprintf("host id %q: %v", in.HostID, err))
		return
	case errors.Is(err, store.ErrRegistryFull):
		log.Error("enrolment refused: registry full")
		writeError(w, http.StatusForbidden, "registry_full", err.Error()+": decommission hosts that are gone")
		return
	case err != nil:
		log.WithError(err).Error("enrolment failed")
		writeError(w, http.StatusInternalServerError, "internal", "could not enrol the host")
		return
	}
	s.cfg.Audit.Record(now, "enrol", addr, fields)
	writeJSON(w, http.StatusOK, &api.Enrolment{HostID: in.HostID, Credential: cred})
}

// decommission forgets a host by its exact id and revokes its credential.
func (s *Server) decommission(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	now := s.cfg.Now()
	h, ok := s.cfg.Registry.Decommission(key, now)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no host with id %q (decommission takes the exact host id)", key))
		return
	}
	s.cfg.Audit.Record(now, "decommission", s.clientAddr(r), map[string]string{"host_id": h.HostID, "hostname": h.Hostname})
	writeJSON(w, http.StatusOK, h)
}

// decodeJSON reads exactly one JSON value of at most api.MaxBodyBytes into
// v; on failure it returns the status and error code to answer with.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) (int, string, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, api.MaxBodyBytes))
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		return 0, "", nil
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Errorf("body larger than %d bytes", api.MaxBodyBytes)
	}
	return http.StatusBadRequest, "malformed_json", fmt.Errorf("malformed JSON: %w", err)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var in api.Login
	if status, code, err := decodeJSON(w, r, &in); err != nil {
		writeError(w, status, code, err.Error())
		return
	}
	if !s.checkPassword(w, r, in.Password, "login") {
		return
	}
	id, expires, err := s.sessions.Start(s.cfg.Now())
	if err != nil {
		s.cfg.Log.WithError(err).Error("console login: no session")
		writeError(w, http.StatusInternalServerError, "internal", "could not start a session")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/", Expires: expires,
		HttpOnly: true, Secure: s.cfg.SecureCookie, SameSite: http.SameSiteStrictMode,
	})
	s.cfg.Audit.Record(s.cfg.Now(), "login", s.clientAddr(r), nil)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && s.sessions.Valid(c.Value, s.cfg.Now()) {
		s.sessions.End(c.Value)
		s.cfg.Audit.Record(s.cfg.Now(), "logout", s.clientAddr(r), nil)
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.SecureCookie, SameSite: http.SameSiteStrictMode,
	})
	w.WriteHeader(http.StatusNoContent)
}

// viewer admits a request carrying the console password as a bearer token
// (the CLI) or a live session cookie (the browser).
func (s *Server) viewer(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := bearer(r); tok != "" {
			if s.checkPassword(w, r, tok, "api_password") {
				next(w, r)
			}
			return
		}
		if c, err := r.Cookie(sessionCookie); err == nil && s.sessions.Valid(c.Value, s.cfg.Now()) {
			next(w, r)
			return
		}
		s.cfg.Log.WithField("remote", s.clientAddr(r)).WithField("path", r.URL.Path).
			Info("console API refused: not logged in")
		writeError(w, http.StatusUnauthorized, "unauthorized", "log in or give the console password")
	})
}

func (s *Server) hosts(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.cfg.Registry.List(r.URL.Query().Get("prefix"), s.cfg.Now()))
}

func (s *Server) host(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	h, ok := s.cfg.Registry.Lookup(key, s.cfg.Now())
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no host with id, name or IP %q", key))
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) count(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.cfg.Registry.Count(s.cfg.Now()))
}

// checkPassword admits the console password from the client's address
// unless that address is locked out; it answers the refusals itself (401,
// or 429 with Retry-After) and audits them. via names the door: "login"
// or "api_password".
func (s *Server) checkPassword(w http.ResponseWriter, r *http.Request, got, via string) bool {
	now := s.cfg.Now()
	addr := s.clientAddr(r)
	if until := s.limiter.locked(addr, now); !until.IsZero() {
		s.metrics.logins.WithLabelValues("locked_out").Inc()
		s.cfg.Audit.Record(now, via+"_locked_out", addr, nil)
		lockedOut(w, addr, until, now)
		return false
	}
	if tokenMatches(got, s.console) {
		s.limiter.succeed(addr)
		s.metrics.logins.WithLabelValues("ok").Inc()
		return true
	}
	s.metrics.logins.WithLabelValues("failed").Inc()
	s.cfg.Audit.Record(now, via+"_failed", addr, nil)
	if until := s.limiter.fail(addr, now); !until.IsZero() {
		s.cfg.Audit.Record(now, "lockout", addr, map[string]string{
			"failures": fmt.Sprint(s.cfg.LoginMaxFailures), "until": until.UTC().Format(time.RFC3339)})
		lockedOut(w, addr, until, now)
		return false
	}
	writeError(w, http.StatusUnauthorized, "unauthorized", "wrong password")
	return false
}

func lockedOut(w http.ResponseWriter, addr string, until, now time.Time) {
	wait := until.Sub(now).Round(time.Second)
	if wait < time.Second {
		wait = time.Second
	}
	w.Header().Set("Retry-After", fmt.Sprint(int(wait/time.Second)))
	writeError(w, http.StatusTooManyRequests, "locked_out", fmt.Sprintf(
		"too many wrong passwords from %s: locked out until %s (%s); every attempt meanwhile is refused",
		addr, until.UTC().Format(time.RFC3339), wait))
}

// clientAddr is the address a request comes from: the TCP peer, or the
// last X-Forwarded-For entry behind a trusted proxy.
func (s *Server) clientAddr(r *http.Request) string {
	if s.cfg.TrustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if last := strings.TrimSpace(parts[len(parts)-1]); last != "" {
				return last
			}
		}
	}
	return remoteHost(r)
}

func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// tokenMatches compares digests so that the comparison takes the same time
// whatever the length or content of the guess.
func tokenMatches(got string, want [sha256.Size]byte) bool {
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], want[:]) == 1 && got != ""
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status is out; a failed write means the client went away.
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, api.Error{Code: code, Message: msg})
}
