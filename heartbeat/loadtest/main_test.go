package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"smith/heartbeat/api"
	"smith/heartbeat/server"
	"smith/heartbeat/store"
	"smith/heartbeat/store/redistest"
)

// TestSmallLoad keeps the load generator honest: a short run against an
// in-process console registers every agent with no errors and answers
// tasks with results.
func TestSmallLoad(t *testing.T) {
	reg, srv := newConsole(t, store.Policy{
		OfflineAfter:  time.Minute,
		TaskIntervals: map[api.TaskKind]time.Duration{api.TaskUsers: time.Hour},
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()

	const agents = 50
	res, err := Run(context.Background(), Options{
		Agents: agents, Interval: 500 * time.Millisecond, Duration: 2500 * time.Millisecond,
		URL: ts.URL, Token: "f", Password: "c",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Registered != agents || res.Requests < agents || res.P50ms <= 0 || res.P99ms < res.P50ms {
		t.Fatalf("result = %+v", res)
	}
	// Agents that beat twice carried their users task's result back.
	withResult := 0
	for _, h := range reg.List("", time.Now()).Hosts {
		if full, _ := reg.Lookup(h.HostID, time.Now()); len(full.Tasks) == 1 {
			withResult++
		}
	}
	if withResult == 0 {
		t.Errorf("no agent reported a task result")
	}

	// A wrong token is counted as errors, not hidden.
	res, err = Run(context.Background(), Options{
		Agents: 5, Interval: time.Second, Duration: 1200 * time.Millisecond,
		URL: ts.URL, Token: "wrong", Password: "c",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != res.Requests || res.Errors < 5 {
		t.Errorf("wrong token: %d errors of %d requests", res.Errors, res.Requests)
	}
}

// Agents spread over two replicas sharing Redis: the first replica
// counts every host, also those that enrolled on the second.
func TestSmallLoadOnReplicas(t *testing.T) {
	url := redistest.Start(t)
	var urls []string
	for i := 0; i < 2; i++ {
		rd, err := store.OpenRedis(url, "load:")
		if err != nil {
			t.Fatal(err)
		}
		reg, err := store.OpenWith(rd, store.Policy{OfflineAfter: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		quiet := logrus.New()
		quiet.SetLevel(logrus.ErrorLevel)
		srv, err := server.New(server.Config{FleetToken: "f", ConsolePassword: "c", Registry: reg, Log: quiet, EnrolBurst: 100})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, 2)
		go func() { reg.Follow(ctx, func(err error) { t.Error(err) }); done <- struct{}{} }()
		go func() { srv.Maintain(ctx, 100*time.Millisecond); done <- struct{}{} }()
		ts := httptest.NewServer(srv)
		t.Cleanup(func() { ts.Close(); cancel(); <-done; <-done; reg.Close() })
		urls = append(urls, ts.URL)
	}
	const agents = 40
	res, err := Run(context.Background(), Options{
		Agents: agents, Interval: 500 * time.Millisecond, Duration: 2500 * time.Millisecond,
		URL: urls[0], MoreURLs: urls[1:], Token: "f", Password: "c",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Registered != agents {
		t.Fatalf("result = %+v", res)
	}
}

// With Conns set, the agents share that many connections: every agent
// still enrols and beats, and the console never sees more connections.
func TestAgentsShareConnections(t *testing.T) {
	_, srv := newConsole(t, store.Policy{OfflineAfter: time.Minute})
	ts := httptest.NewUnstartedServer(srv)
	// Open connections at once, and the most seen: on a loaded machine an
	// idle shared connection may time out and be dialled again, which is
	// still sharing; more open at once than the limit is not.
	var open, most atomic.Int64
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			n := open.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	ts.Start()
	defer ts.Close()

	const agents, shared = 40, 3
	res, err := Run(context.Background(), Options{
		Agents: agents, Conns: shared, Interval: 500 * time.Millisecond, Duration: 2500 * time.Millisecond,
		URL: ts.URL, Token: "f", Password: "c",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Registered != agents || res.Requests < agents {
		t.Fatalf("result = %+v", res)
	}
	// The final registry check opens one connection of its own.
	if n := most.Load(); n > shared+1 {
		t.Errorf("%d connections open at once for %d shared", n, shared)
	}
}

// newConsole is an in-process console (fleet secret "f", password "c") on
// a bbolt registry closed when the test ends.
func newConsole(t *testing.T, policy store.Policy) (*store.Registry, *server.Server) {
	t.Helper()
	reg, err := store.Open(filepath.Join(t.TempDir(), "hosts.db"), policy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	quiet := logrus.New()
	quiet.SetLevel(logrus.ErrorLevel)
	srv, err := server.New(server.Config{FleetToken: "f", ConsolePassword: "c", Registry: reg, Log: quiet, EnrolBurst: 100})
	if err != nil {
		t.Fatal(err)
	}
	return reg, srv
}
