package server

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"smith/heartbeat/api"
)

// metrics are the console's own Prometheus series, served at /metrics.
type metrics struct {
	reg        *prometheus.Registry
	heartbeats *prometheus.CounterVec // by result code ("ok" or the refusal)
	enrolments *prometheus.CounterVec
	logins     *prometheus.CounterVec // login and api_password results
	alerts     *prometheus.CounterVec // alert events by kind and state
	latency    prometheus.Histogram
	hosts      *prometheus.GaugeVec // by state
	firing     *prometheus.GaugeVec // by kind
	drift      prometheus.Gauge
	recent     *prometheus.GaugeVec // fleet drops in the window, by reason
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smith_console_heartbeats_total",
			Help: "Heartbeat requests, by HTTP status of the answer."}, []string{"status"}),
		enrolments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smith_console_enrolments_total",
			Help: "Enrolment requests, by HTTP status of the answer."}, []string{"status"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smith_console_password_checks_total",
			Help: "Console password checks (web login and CLI), by result: ok, failed, locked_out."}, []string{"result"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smith_console_alert_events_total",
			Help: "Alerts that started (firing) or ended (resolved), by kind."}, []string{"kind", "state"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "smith_console_heartbeat_seconds",
			Help: "Time the registry took to record a heartbeat.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}),
		hosts: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "smith_console_hosts",
			Help: "Hosts in the registry, by state: online, offline, enrolled (no heartbeat yet)."}, []string{"state"}),
		firing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "smith_console_alerts_firing",
			Help: "Alerts firing, by kind."}, []string{"kind"}),
		drift: prometheus.NewGauge(prometheus.GaugeOpts{Name: "smith_console_version_drift_hosts",
			Help: "Hosts whose agent or module version is not the fleet's most common."}),
		recent: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "smith_console_fleet_recent_drops",
			Help: "Events the fleet dropped within the drop window, by reason."}, []string{"reason"}),
	}
	m.reg.MustRegister(m.heartbeats, m.enrolments, m.logins, m.alerts, m.latency, m.hosts, m.firing, m.drift, m.recent,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if w := s.cfg.Webhook; w != nil {
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "smith_console_webhook_sent_total", Help: "Alert events the webhook took."},
				func() float64 { return float64(w.Sent.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "smith_console_webhook_failed_total", Help: "Alert events the webhook refused or did not answer (after one retry)."},
				func() float64 { return float64(w.Failed.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "smith_console_webhook_dropped_total", Help: "Alert events dropped because the webhook queue was full."},
				func() float64 { return float64(w.Dropped.Load()) }),
		)
	}
	return m
}

// observe refreshes the fleet gauges from a listing.
func (m *metrics) observe(l api.HostList) {
	var online, offline, enrolled, drift float64
	recent := map[string]float64{}
	for _, h := range l.Hosts {
		switch {
		case h.LastSeen.IsZero():
			enrolled++
		case h.Online:
			online++
		default:
			offline++
		}
		if h.VersionDrift {
			drift++
		}
		for reason, n := range h.DropsRecent {
			recent[reason] += float64(n)
		}
	}
	m.hosts.WithLabelValues("online").Set(online)
	m.hosts.WithLabelValues("offline").Set(offline)
	m.hosts.WithLabelValues("enrolled").Set(enrolled)
	m.drift.Set(drift)
	firing := map[string]float64{api.AlertDrops: 0, api.AlertModuleUnloaded: 0, api.AlertOffline: 0}
	for _, a := range l.Alerts {
		firing[a.Kind]++
	}
	for kind, n := range firing {
		m.firing.WithLabelValues(kind).Set(n)
	}
	m.recent.Reset()
	for reason, n := range recent {
		m.recent.WithLabelValues(reason).Set(n)
	}
}

// handler refreshes the fleet gauges and serves every series.
func (m *metrics) handler(s *Server) http.HandlerFunc {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return func(w http.ResponseWriter, r *http.Request) {
		m.observe(s.cfg.Registry.List("", s.cfg.Now()))
		h.ServeHTTP(w, r)
	}
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// counted counts each answer of next in c by its HTTP status.
func counted(c *prometheus.CounterVec, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		next(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		c.WithLabelValues(strconv.Itoa(sw.status)).Inc()
	}
}
