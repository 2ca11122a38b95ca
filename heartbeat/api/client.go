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

// Client posts heartbeats to a console. It is safe for concurrent use.
type Client struct {
	url   string
	token string
	http  *http.Client
}

// NewClient returns a client for the console at baseURL (for example
// "https://console.example:8443") authenticating with the fleet token.
// A nil hc means http.DefaultClient; give one with a Timeout and, for
// TLS, the console's CA.
func NewClient(baseURL, fleetToken string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{
		url:   strings.TrimRight(baseURL, "/") + HeartbeatPath,
		token: fleetToken,
		http:  hc,
	}
}

// Send posts hb (its Version is set when empty) and returns the console's
// answer. A refusal by the console is a *StatusError.
func (c *Client) Send(ctx context.Context, hb *Heartbeat) (*Response, error) {
	if hb.Version == "" {
		hb.Version = Version
	}
	body, err := json.Marshal(hb)
	if err != nil {
		return nil, fmt.Errorf("encode heartbeat: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("heartbeat request to %s: %w", c.url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("heartbeat to %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, ReadError(resp)
	}
	var out Response
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxBodyBytes)).Decode(&out); err != nil {
		return nil, fmt.Errorf("heartbeat answer from %s: %w", c.url, err)
	}
	return &out, nil
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
