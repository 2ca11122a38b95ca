package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"smith/heartbeat/api"
)

// webhookQueue bounds the alert events waiting for the webhook; beyond,
// events are dropped and counted, never block the console.
const webhookQueue = 1024

// Webhook posts alert events (api.AlertEvent as JSON, one per request)
// to a URL, from its own goroutine (Run). Failures are logged and
// counted; an event is tried once more after a failure.
type Webhook struct {
	url  string
	http *http.Client
	log  logrus.FieldLogger
	ch   chan api.AlertEvent

	Sent, Failed, Dropped atomic.Uint64
}

// NewWebhook posts to url with hc (nil: a client with a 10 s timeout).
func NewWebhook(url string, hc *http.Client, log logrus.FieldLogger) *Webhook {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Webhook{url: url, http: hc, log: log, ch: make(chan api.AlertEvent, webhookQueue)}
}

// Notify queues ev; it never blocks.
func (w *Webhook) Notify(ev api.AlertEvent) {
	select {
	case w.ch <- ev:
	default:
		w.Dropped.Add(1)
		w.log.WithField("alert", ev.Kind).WithField("host", ev.Hostname).Error("alert webhook queue full: alert not sent")
	}
}

// Run sends queued events until ctx ends.
func (w *Webhook) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-w.ch:
			err := w.post(ctx, ev)
			if err != nil && ctx.Err() == nil {
				err = w.post(ctx, ev)
			}
			if err != nil {
				w.Failed.Add(1)
				w.log.WithError(err).WithField("alert", ev.Kind).WithField("host", ev.Hostname).Error("alert webhook failed")
				continue
			}
			w.Sent.Add(1)
		}
	}
}

func (w *Webhook) post(ctx context.Context, ev api.AlertEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("alert webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.http.Do(req)
	if err != nil {
		return fmt.Errorf("alert webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("alert webhook answered %s", resp.Status)
	}
	return nil
}
