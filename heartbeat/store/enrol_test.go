package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smith/heartbeat/api"
)

func TestEnrolledHostSpeaksOnlyForItself(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts.db")
	r := open(t, path)
	credA, err := r.Enrol("id-a", "web-a", "10.0.0.1", t0)
	if err != nil || !strings.HasPrefix(credA, credentialPrefix) {
		t.Fatalf("enrol a: %q %v", credA, err)
	}
	credB, _ := r.Enrol("id-b", "web-b", "10.0.0.2", t0)
	if id, ok := r.Authenticate(credA); !ok || id != "id-a" {
		t.Errorf("Authenticate(a) = %q %v", id, ok)
	}
	if h, ok := r.Lookup("web-a", t0); !ok || h.Online || !h.EnrolledAt.Equal(t0) || h.EnrolledFrom != "10.0.0.1" {
		t.Errorf("enrolled host before its first heartbeat: %+v", h)
	}
	// Nothing else authenticates; a's credential cannot speak for b.
	for _, cred := range []string{"", "fleet-secret", credA + "x"} {
		if _, err := r.HeartbeatAs(cred, &api.Heartbeat{HostID: "id-a", Hostname: "web-a"}, "10.0.0.9", t0); !errors.Is(err, ErrUnknownCredential) {
			t.Errorf("credential %q: %v", cred, err)
		}
	}
	if _, err := r.HeartbeatAs(credA, &api.Heartbeat{HostID: "id-b", Hostname: "web-b"}, "10.0.0.1", t0); !errors.Is(err, ErrWrongHost) {
		t.Errorf("a speaking for b: %v", err)
	}
	if h, _ := r.Lookup("id-b", t0); h.Conflicts != 1 || h.LastConflict.Remote != "10.0.0.1" || !strings.Contains(h.LastConflict.Reason, "id-a") {
		t.Errorf("b after a spoke for it: %+v %+v", h, h.LastConflict)
	}
	if _, err := r.HeartbeatAs(credB, &api.Heartbeat{HostID: "id-b", Hostname: "web-b", RunID: "run-1"}, "10.0.0.2", t0); err != nil {
		t.Errorf("b for itself: %v", err)
	}

	// A second machine with a's machine-id cannot enrol; it is shown.
	if _, err := r.Enrol("id-a", "clone", "10.0.0.66", t0.Add(time.Second)); !errors.Is(err, ErrAlreadyEnrolled) {
		t.Errorf("second enrolment: %v", err)
	}
	if h, _ := r.Lookup("id-a", t0); h.Conflicts != 1 || h.LastConflict.Hostname != "clone" || h.LastConflict.Remote != "10.0.0.66" {
		t.Errorf("a after the clone's enrolment: %+v", h.LastConflict)
	}

	// The registry survives a restart with its credentials, and a
	// decommissioned host is gone from disk too.
	if _, ok := r.Decommission("id-b", t0); !ok {
		t.Fatal("decommission b")
	}
	if _, ok := r.Decommission("id-b", t0); ok {
		t.Error("decommissioned twice")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = open(t, path)
	defer r.Close()
	if id, ok := r.Authenticate(credA); !ok || id != "id-a" {
		t.Errorf("after restart: a's credential %q %v", id, ok)
	}
	if _, ok := r.Authenticate(credB); ok {
		t.Error("after restart: b's revoked credential still valid")
	}
	if _, ok := r.Lookup("id-b", t0); ok {
		t.Error("after restart: decommissioned b is back")
	}
	// b enrols again and gets a new credential.
	credB2, err := r.Enrol("id-b", "web-b", "10.0.0.2", t0)
	if err != nil || credB2 == credB {
		t.Errorf("re-enrolment after decommission: %v", err)
	}
}

// A machine cloned with its credential: the agent runs alternate, and the
// run that a newer one replaced is refused when it comes back.
func TestClonedCredentialIsRefusedAndShown(t *testing.T) {
	r := open(t, filepath.Join(t.TempDir(), "hosts.db"))
	defer r.Close()
	cred, _ := r.Enrol("id-a", "web-a", "10.0.0.1", t0)
	beat := func(run, from string) error {
		_, err := r.HeartbeatAs(cred, &api.Heartbeat{HostID: "id-a", Hostname: "web-a", RunID: run}, from, t0)
		return err
	}
	for _, step := range []struct {
		run, from string
		ok        bool
	}{
		{"run-1", "10.0.0.1", true},
		{"run-1", "10.0.0.1", true},
		{"run-2", "10.0.0.1", true}, // a restart of the agent
		{"run-3", "10.0.0.7", true}, // the clone starts
		{"run-2", "10.0.0.1", false},
		{"run-3", "10.0.0.7", true},
	} {
		if err := beat(step.run, step.from); (err == nil) != step.ok || (err != nil && !errors.Is(err, ErrIdentityConflict)) {
			t.Errorf("%s from %s: %v, want ok=%v", step.run, step.from, err, step.ok)
		}
	}
	h, _ := r.Lookup("id-a", t0)
	if h.Conflicts != 1 || h.LastConflict.Remote != "10.0.0.1" || !strings.Contains(h.LastConflict.Reason, "two agents") {
		t.Errorf("conflict shown: %d %+v", h.Conflicts, h.LastConflict)
	}
}

func TestRegistryFullRefusesNewHosts(t *testing.T) {
	r, err := Open(filepath.Join(t.TempDir(), "hosts.db"), Policy{OfflineAfter: time.Minute, MaxHosts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Enrol("a", "a", "", t0)
	r.Enrol("b", "b", "", t0)
	if _, err := r.Enrol("c", "c", "", t0); !errors.Is(err, ErrRegistryFull) {
		t.Errorf("third host in a registry of 2: %v", err)
	}
	r.Decommission("a", t0)
	if _, err := r.Enrol("c", "c", "", t0); err != nil {
		t.Errorf("after a decommission: %v", err)
	}
}
