package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"smith/heartbeat/api"
)

func (f *fixture) enrol(secret, id, name string) (*api.Enrolment, error) {
	return api.NewClient(f.ts.URL, secret, f.ts.Client()).Enrol(context.Background(), id, name)
}

func (f *fixture) do(method, path, auth string) (int, []byte) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.ts.URL+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, body := f.roundTrip(req)
	return resp.StatusCode, body
}

func TestEnrolmentAndHostCredentials(t *testing.T) {
	var audit bytes.Buffer
	f := newFixture(t, func(c *Config) { c.Audit = NewAudit(&audit, c.Log) })
	if _, err := f.enrol("wrong", "id-a", "web-a"); !api.IsUnauthorized(err) {
		t.Errorf("wrong fleet secret: %v", err)
	}
	if _, err := f.enrol(consolePw, "id-a", "web-a"); !api.IsUnauthorized(err) {
		t.Errorf("console password as the fleet secret: %v", err)
	}
	a, err := f.enrol(fleetToken, "id-a", "web-a")
	if err != nil || a.HostID != "id-a" || a.Credential == "" {
		t.Fatalf("enrol: %+v %v", a, err)
	}
	var h api.Host
	if code := f.get(api.HostsPath+"/id-a", &h); code != 200 || h.Online || !h.EnrolledAt.Equal(f.clock.Now()) || h.EnrolledFrom != "127.0.0.1" {
		t.Errorf("enrolled host: %d %+v", code, h)
	}
	b, _ := f.enrol(fleetToken, "id-b", "web-b")
	agentA := api.NewClient(f.ts.URL, a.Credential, f.ts.Client())
	if _, err := agentA.Send(context.Background(), heartbeat("id-a", "web-a")); err != nil {
		t.Errorf("a for itself: %v", err)
	}
	// a's credential cannot speak for b: refused, and shown on b.
	if _, err := agentA.Send(context.Background(), heartbeat("id-b", "web-b")); !api.HasCode(err, "wrong_host") {
		t.Errorf("a for b: %v", err)
	}
	// A clone of a (same machine-id, no credential) cannot enrol.
	if _, err := f.enrol(fleetToken, "id-a", "clone-of-a"); !api.HasCode(err, "already_enrolled") || !strings.Contains(err.Error(), "machine-id") {
		t.Errorf("second enrolment of id-a: %v", err)
	}
	f.get(api.HostsPath+"/id-a", &h)
	if h.Conflicts != 1 || h.LastConflict == nil || h.LastConflict.Hostname != "clone-of-a" {
		t.Errorf("clone not shown on a: %+v", h.LastConflict)
	}
	f.get(api.HostsPath+"/id-b", &h)
	if h.Conflicts != 1 || !strings.Contains(h.LastConflict.Reason, "id-a") {
		t.Errorf("a's claim not shown on b: %+v", h.LastConflict)
	}
	// A clone with a's credential: two runs alternate.
	hb := heartbeat("id-a", "web-a")
	for i, step := range []struct {
		run  string
		code string
	}{{"run-1", ""}, {"run-2", ""}, {"run-1", "identity_conflict"}} {
		hb.RunID = step.run
		_, err := agentA.Send(context.Background(), hb)
		if (step.code == "" && err != nil) || (step.code != "" && !api.HasCode(err, step.code)) {
			t.Errorf("step %d (%s): %v, want %q", i, step.run, err, step.code)
		}
	}

	// Decommission: the console credential, the exact id.
	if code, _ := f.do("DELETE", api.HostsPath+"/id-b", ""); code != 401 {
		t.Errorf("anonymous decommission: %d", code)
	}
	if code, _ := f.do("DELETE", api.HostsPath+"/web-b", consolePw); code != 404 {
		t.Errorf("decommission by name: %d", code)
	}
	code, body := f.do("DELETE", api.HostsPath+"/id-b", consolePw)
	if code != 200 || !strings.Contains(string(body), `"hostname":"web-b"`) {
		t.Fatalf("decommission: %d %s", code, body)
	}
	if _, err := api.NewClient(f.ts.URL, b.Credential, f.ts.Client()).Send(context.Background(), heartbeat("id-b", "web-b")); !api.HasCode(err, "unknown_credential") {
		t.Errorf("heartbeat after decommission: %v", err)
	}
	if l := f.list(""); l.Counts.Total != 1 {
		t.Errorf("after decommission: %+v", l.Counts)
	}
	var events []string
	for _, line := range strings.Split(strings.TrimSpace(audit.String()), "\n") {
		var e AuditEntry
		json.Unmarshal([]byte(line), &e)
		if strings.HasPrefix(e.Event, "enrol") || e.Event == "decommission" {
			events = append(events, e.Event+" "+e.Fields["host_id"]+" "+e.Fields["hostname"])
		}
	}
	want := "enrol id-a web-a,enrol id-b web-b,enrol_refused_enrolled id-a clone-of-a,decommission id-b web-b"
	if got := strings.Join(events, ","); got != want {
		t.Errorf("audit: %s\nwant   %s", got, want)
	}
}

// Guessing the fleet secret locks the address out of enrolment only: the
// console password still works from there.
func TestWrongFleetSecretsLockEnrolmentOut(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.LoginMaxFailures = 3; c.LoginLockout = time.Minute })
	for i := 0; i < 2; i++ {
		if _, err := f.enrol("guess", "a", "a"); !api.IsUnauthorized(err) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if _, err := f.enrol("guess", "a", "a"); !api.HasCode(err, "locked_out") {
		t.Fatalf("third guess: %v", err)
	}
	if _, err := f.enrol(fleetToken, "a", "a"); !api.HasCode(err, "locked_out") {
		t.Errorf("right secret while locked out: %v", err)
	}
	if code := f.get(api.CountPath, nil); code != 200 {
		t.Errorf("console password from the same address: %d", code)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.enrol(fleetToken, "a", "a"); err != nil {
		t.Errorf("after the lockout: %v", err)
	}
}

func TestEnrolmentIsRateLimited(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.EnrolRate = 1; c.EnrolBurst = 2 })
	for i, id := range []string{"a", "b"} {
		if _, err := f.enrol(fleetToken, id, id); err != nil {
			t.Fatalf("enrolment %d: %v", i, err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, f.ts.URL+api.EnrolPath, strings.NewReader(`{"version":"1.1","host_id":"c","hostname":"c"}`))
	req.Header.Set("Authorization", "Bearer "+fleetToken)
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	err = api.ReadError(resp)
	resp.Body.Close()
	if resp.StatusCode != 429 || !api.HasCode(err, "enrol_rate_limited") || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("third enrolment at once: %d %v %q", resp.StatusCode, err, resp.Header.Get("Retry-After"))
	}
	if l := f.list(""); l.Counts.Total != 2 {
		t.Errorf("refused enrolment registered: %+v", l.Counts)
	}
	f.clock.Advance(time.Second)
	if _, err := f.enrol(fleetToken, "c", "c"); err != nil {
		t.Errorf("a second later: %v", err)
	}
}
