// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"smith/agent/metrics"
)

// Metrics is one scrape of a Prometheus text endpoint: every sample by its
// name and label set.  Look series up with agent/metrics' names
// (metrics.NameDropped, metrics.DropSpoolFull.String()).
type Metrics struct {
	samples map[string]float64 // by name{k="v",...}, labels sorted
	names   map[string][]string
}

// MetricsURL is the scrape URL of an agent whose metrics.listen is addr.
func MetricsURL(addr string) string { return "http://" + addr + metrics.Path }

var scrapeClient = &http.Client{Timeout: 5 * time.Second}

// Scrape reads url's /metrics.
func Scrape(ctx context.Context, url string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Metrics{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return Metrics{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Metrics{}, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	m, err := ParseMetrics(resp.Body)
	if err != nil {
		return m, fmt.Errorf("scrape %s: %w", url, err)
	}
	return m, nil
}

// ParseMetrics reads the Prometheus text format.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{samples: map[string]float64{}, names: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, rest, err := splitSample(line)
		if err != nil {
			return m, err
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return m, fmt.Errorf("metric line %q: no value", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return m, fmt.Errorf("metric line %q: %w", line, err)
		}
		key := seriesKey(name, labels)
		if _, ok := m.samples[key]; !ok {
			m.names[name] = append(m.names[name], key)
		}
		m.samples[key] = v
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("read metrics: %w", err)
	}
	return m, nil
}

// splitSample cuts `name{k="v",...} value` into its name, labels and the
// rest.
func splitSample(line string) (string, map[string]string, string, error) {
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return "", nil, "", fmt.Errorf("metric line %q: no value", line)
	}
	name, rest := line[:i], line[i:]
	labels := map[string]string{}
	if rest[0] != '{' {
		return name, labels, rest, nil
	}
	rest = rest[1:]
	for {
		rest = strings.TrimLeft(rest, ", ")
		if strings.HasPrefix(rest, "}") {
			return name, labels, rest[1:], nil
		}
		k, after, ok := strings.Cut(rest, "=")
		if !ok || !strings.HasPrefix(after, `"`) {
			return "", nil, "", fmt.Errorf("metric line %q: bad labels", line)
		}
		v, tail, err := quoted(after)
		if err != nil {
			return "", nil, "", fmt.Errorf("metric line %q: %w", line, err)
		}
		labels[strings.TrimSpace(k)] = v
		rest = tail
	}
}

// quoted reads the Go-style quoted string s starts with (the format escapes
// \\, \" and \n, as Go does).
func quoted(s string) (string, string, error) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			v, err := strconv.Unquote(s[:i+1])
			return v, s[i+1:], err
		}
	}
	return "", "", fmt.Errorf("unterminated label value")
}

func seriesKey(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name + "{")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + strconv.Quote(labels[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// Value is the sample of name with the given labels (pairs: key, value),
// and whether there is one.
func (m Metrics) Value(name string, labelPairs ...string) (float64, bool) {
	labels := map[string]string{}
	for i := 0; i+1 < len(labelPairs); i += 2 {
		labels[labelPairs[i]] = labelPairs[i+1]
	}
	v, ok := m.samples[seriesKey(name, labels)]
	return v, ok
}

// Dropped is the agent's drop counter for reason (a metrics.Drop name or a
// ring reason).
func (m Metrics) Dropped(reason string) (float64, bool) {
	return m.Value(metrics.NameDropped, metrics.LabelReason, reason)
}

// Sum adds every sample of name, whatever its labels.
func (m Metrics) Sum(name string) float64 {
	var s float64
	for _, k := range m.names[name] {
		s += m.samples[k]
	}
	return s
}

// ByLabel is every sample of name by the value of its label.
func (m Metrics) ByLabel(name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, k := range m.names[name] {
		_, labels, _, _ := splitSample(k + " 0")
		out[labels[label]] += m.samples[k]
	}
	return out
}
