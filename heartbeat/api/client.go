package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client enrols a host and posts its heartbeats to a console. It is safe
// for concurrent use.
type Client struct {
	base  string
	url   string
	token string
	http  *http.Client
}

// NewClient returns a client for the console at baseURL (for example
// "https://console.example:8443") whose bearer is token: the fleet
// enrolment secret for Enrol, the host's credential for Send. A nil hc
// means http.DefaultClient; give one with a Timeout and, for TLS, the
// console's CA or pin (ClientTLS).
func NewClient(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	base := strings.TrimRight(baseURL, "/")
	return &Client{base: base, url: base + HeartbeatPath, token: token, http: hc}
}

// WithToken returns a client of the same console with another bearer.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// Enrol asks for the host's own credential (the client's token is the
// fleet enrolment secret). A refusal is a *StatusError: 409
// already_enrolled when the host id has a credential already, 429 when
// the console is enrolling too many hosts at once.
func (c *Client) Enrol(ctx context.Context, hostID, hostname string) (*Enrolment, error) {
	var out Enrolment
	if err := c.post(ctx, c.base+EnrolPath, &EnrolRequest{Version: Version, HostID: hostID, Hostname: hostname}, &out); err != nil {
		return nil, err
	}
	if out.Credential == "" {
		return nil, fmt.Errorf("enrolment answer from %s has no credential", c.base)
	}
	return &out, nil
}

// Enrolled enrols hostID and returns a client that heartbeats with its
// credential: one call for tests and simulated fleets.
func (c *Client) Enrolled(ctx context.Context, hostID, hostname string) (*Client, error) {
	e, err := c.Enrol(ctx, hostID, hostname)
	if err != nil {
		return nil, err
	}
	return c.WithToken(e.Credential), nil
}

// Send posts hb (its Version is set when empty) and returns the console's
// answer. A refusal by the console is a *StatusError.
func (c *Client) Send(ctx context.Context, hb *Heartbeat) (*Response, error) {
	if hb.Version == "" {
		hb.Version = Version
	}
	var out Response
	if err := c.post(ctx, c.url, hb, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) post(ctx context.Context, url string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode request to %s: %w", url, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("request to %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("post to %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ReadError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxBodyBytes)).Decode(out); err != nil {
		return fmt.Errorf("answer from %s: %w", url, err)
	}
	return nil
}

// HasCode reports whether err is a *StatusError with the given code.
func HasCode(err error, code string) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == code
}

// StatusError is a non-200 answer from the console.
type StatusError struct {
	StatusCode int
	Code       string // Error.Code, empty when the body was not an Error
	Message    string
}

func (e *StatusError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("console answered %d: %s", e.StatusCode, e.Message)
	}
	return fmt.Sprintf("console answered %d %s: %s", e.StatusCode, e.Code, e.Message)
}

// ReadError turns a non-200 response into a *StatusError.
func ReadError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e Error
	if json.Unmarshal(raw, &e) == nil && e.Code != "" {
		return &StatusError{StatusCode: resp.StatusCode, Code: e.Code, Message: e.Message}
	}
	return &StatusError{StatusCode: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
}

// IsUnauthorized reports whether err is the console refusing the token.
func IsUnauthorized(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.StatusCode == http.StatusUnauthorized
}
