package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"smith/heartbeat/api"
)

// try logs in with pw from the address in X-Forwarded-For (the fixture
// trusts the proxy header, so each test address is its own client).
func (f *fixture) try(pw, from string) (int, http.Header, api.Error) {
	f.t.Helper()
	body, _ := json.Marshal(api.Login{Password: pw})
	req, _ := http.NewRequest(http.MethodPost, f.ts.URL+api.LoginPath, bytes.NewReader(body))
	req.Header.Set("X-Forwarded-For", "198.51.100.9, "+from)
	resp, raw := f.roundTrip(req)
	var e api.Error
	json.Unmarshal(raw, &e)
	return resp.StatusCode, resp.Header, e
}

func TestWrongPasswordsLockTheAddressOut(t *testing.T) {
	var audit bytes.Buffer
	f := newFixture(t, func(c *Config) {
		c.TrustProxy = true
		c.LoginMaxFailures = 3
		c.LoginLockout = 10 * time.Minute
		c.Audit = NewAudit(&audit, c.Log)
	})
	for i := 0; i < 2; i++ {
		if code, _, _ := f.try("guess", "203.0.113.5"); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i+1, code)
		}
	}
	code, hdr, e := f.try("guess", "203.0.113.5")
	if code != http.StatusTooManyRequests || e.Code != "locked_out" || hdr.Get("Retry-After") != "600" ||
		!strings.Contains(e.Message, "203.0.113.5") || !strings.Contains(e.Message, "locked out until") {
		t.Fatalf("third wrong password: %d %v %+v", code, hdr, e)
	}
	// Locked: even the right password is refused, by the web login and
	// as the CLI's bearer password.
	if code, _, _ := f.try(consolePw, "203.0.113.5"); code != http.StatusTooManyRequests {
		t.Errorf("right password while locked out: %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, f.ts.URL+api.CountPath, nil)
	req.Header.Set("Authorization", "Bearer "+consolePw)
	req.Header.Set("X-Forwarded-For", "203.0.113.5")
	if resp, err := f.ts.Client().Do(req); err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("CLI while locked out: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	// Another address is not affected.
	if code, _, _ := f.try(consolePw, "203.0.113.6"); code != http.StatusNoContent {
		t.Errorf("other address: %d", code)
	}
	f.clock.Advance(10*time.Minute - time.Second)
	if code, _, _ := f.try(consolePw, "203.0.113.5"); code != http.StatusTooManyRequests {
		t.Errorf("a second before the end of the lockout: %d", code)
	}
	f.clock.Advance(time.Second)
	if code, _, _ := f.try(consolePw, "203.0.113.5"); code != http.StatusNoContent {
		t.Errorf("after the lockout: %d", code)
	}

	var events []string
	for _, line := range strings.Split(strings.TrimSpace(audit.String()), "\n") {
		var e AuditEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		events = append(events, e.Event+" "+e.Remote)
	}
	want := []string{
		"login_failed 203.0.113.5", "login_failed 203.0.113.5", "login_failed 203.0.113.5", "lockout 203.0.113.5",
		"login_locked_out 203.0.113.5", "api_password_locked_out 203.0.113.5", "login 203.0.113.6",
		"login_locked_out 203.0.113.5", "login 203.0.113.5",
	}
	if strings.Join(events, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
	}
}

func TestFailuresAreForgottenAfterTheLockoutPeriod(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.TrustProxy = true; c.LoginMaxFailures = 2; c.LoginLockout = time.Minute })
	f.try("guess", "203.0.113.7")
	f.clock.Advance(time.Minute + time.Second)
	if code, _, _ := f.try("guess", "203.0.113.7"); code != http.StatusUnauthorized {
		t.Errorf("a failure a lockout period after the previous one locked the address: %d", code)
	}
}

func TestHSTSWithSecureCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		f := newFixture(t, func(c *Config) { c.SecureCookie = secure })
		resp, err := f.ts.Client().Get(f.ts.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Strict-Transport-Security") != ""; got != secure {
			t.Errorf("SecureCookie %v: HSTS header %q", secure, resp.Header.Get("Strict-Transport-Security"))
		}
		code, hdr, _ := f.try(consolePw, "203.0.113.8")
		if code != http.StatusNoContent || strings.Contains(hdr.Get("Set-Cookie"), "Secure") != secure {
			t.Errorf("SecureCookie %v: login %d, cookie %q", secure, code, hdr.Get("Set-Cookie"))
		}
	}
}
