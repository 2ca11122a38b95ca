package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"smith/heartbeat/api"
	"smith/heartbeat/consoletest"
	"smith/heartbeat/store"
	"smith/heartbeat/store/redistest"
	"smith/internal/harness"
)

// replica is one console of a fleet kept in Redis.
type replica struct {
	reg *store.Registry
	srv *Server
	ts  *httptest.Server
}

func newReplica(t *testing.T, url string, clk *clock) *replica {
	t.Helper()
	rd, err := store.OpenRedis(url, "fleet:")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := store.OpenWith(rd, testPolicy)
	if err != nil {
		t.Fatal(err)
	}
	logger, _ := logtest.NewNullLogger()
	srv, err := New(Config{FleetToken: fleetToken, ConsolePassword: consolePw, Registry: reg, Now: clk.Now, Log: logger,
		Sessions: rd.Sessions(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { reg.Follow(ctx, func(err error) { t.Errorf("follow: %v", err) }); close(done) }()
	r := &replica{reg: reg, srv: srv, ts: httptest.NewServer(srv)}
	t.Cleanup(func() {
		r.ts.Close()
		cancel()
		<-done
		if err := reg.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return r
}

func (r *replica) host(t *testing.T, id string) (api.Host, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.ts.URL+api.HostsPath+"/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+consolePw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h api.Host
	json.NewDecoder(resp.Body).Decode(&h)
	return h, resp.StatusCode
}

// Two replicas behind a load balancer serve one fleet from a real
// redis-server: a host enrolled and heartbeating on one is seen on the
// other and goes offline there when silent; a login on one is valid on
// the other; a decommission on one revokes the credential on both; a
// restarted replica loads the fleet from Redis; alerts are evaluated by
// one replica only.
func TestReplicasShareTheFleetThroughRedis(t *testing.T) {
	url := redistest.Start(t)
	clk := consoletest.NewClock(time.Now().UTC().Truncate(time.Second))
	a, b := newReplica(t, url, clk), newReplica(t, url, clk)

	e, err := api.NewClient(a.ts.URL, fleetToken, nil).Enrol(context.Background(), "id-1", "web-1")
	if err != nil {
		t.Fatal(err)
	}
	agent := api.NewClient(a.ts.URL, e.Credential, nil)
	hb := heartbeat("id-1", "web-1", "10.0.0.1")
	// The first heartbeat may reach the other replica at once, before
	// any flush: b finds the new credential in Redis.
	if _, err := api.NewClient(b.ts.URL, e.Credential, nil).Send(context.Background(), hb); err != nil {
		t.Fatalf("first heartbeat on b right after enrolling on a: %v", err)
	}
	if _, err := agent.Send(context.Background(), hb); err != nil {
		t.Fatal(err)
	}
	if err := a.reg.Flush(); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 10*time.Second, "heartbeat on a seen on b", func() bool {
		h, code := b.host(t, "id-1")
		return code == 200 && h.Online && h.Kernel == "6.1.0-28-amd64"
	})
	// The same agent's next heartbeat lands on b (its credential is
	// known there).
	clk.Advance(30 * time.Second)
	hb.AgentUptimeSeconds += 30
	if _, err := api.NewClient(b.ts.URL, e.Credential, nil).Send(context.Background(), hb); err != nil {
		t.Fatalf("heartbeat on b: %v", err)
	}
	b.reg.Flush()
	harness.WaitFor(t, 10*time.Second, "b's heartbeat seen on a", func() bool {
		h, _ := a.host(t, "id-1")
		return h.LastSeen.Equal(clk.Now())
	})
	// Silent past the offline timeout: offline on both.
	clk.Advance(91 * time.Second)
	for name, r := range map[string]*replica{"a": a, "b": b} {
		if h, _ := r.host(t, "id-1"); h.Online {
			t.Errorf("replica %s: host online after 91 s of silence", name)
		}
	}

	// Sessions are shared.
	body, _ := json.Marshal(api.Login{Password: consolePw})
	resp, err := http.Post(a.ts.URL+api.LoginPath, "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("login on a: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, b.ts.URL+api.CountPath, nil)
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("a's session on b: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}

	// One replica leads the alerts.
	leaders := 0
	for _, r := range []*replica{a, b} {
		if r.reg.Leads(time.Minute) {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("%d replicas lead the alerts, want 1", leaders)
	}

	// A third replica started now loads the fleet from Redis.
	c := newReplica(t, url, clk)
	if h, code := c.host(t, "id-1"); code != 200 || h.Hostname != "web-1" {
		t.Errorf("new replica: %d %+v", code, h)
	}

	// Decommissioned on b: the credential is refused on a too.
	req, _ = http.NewRequest(http.MethodDelete, b.ts.URL+api.HostsPath+"/id-1", nil)
	req.Header.Set("Authorization", "Bearer "+consolePw)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("decommission on b: %v %v", resp.StatusCode, err)
	}
	b.reg.Flush()
	harness.WaitFor(t, 10*time.Second, "decommission seen on a", func() bool {
		_, code := a.host(t, "id-1")
		return code == 404
	})
	if _, err := agent.Send(context.Background(), hb); !api.HasCode(err, "unknown_credential") {
		t.Errorf("heartbeat on a after decommission on b: %v", err)
	}
}
