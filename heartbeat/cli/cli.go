// Package cli is smith-console's command line: `serve` runs the console,
// and the seed's verbs (`list [prefix]`, `count`, `host <name-or-ip>`) read
// a running console through the same HTTP API the web console uses.
package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"smith/heartbeat/api"
)

// Version is the build's version, set with
// -ldflags "-X smith/heartbeat/cli.Version=...".
var Version = "dev"

const usage = `smith-console: the Smith heartbeat server, web console and fleet CLI.

Usage:
  smith-console serve [flags]            run the console (heartbeats, web console, API)
  smith-console list [flags] [prefix]    hosts whose name or IP starts with prefix
  smith-console count [flags]            total, online and offline hosts
  smith-console host [flags] <name-or-ip>
                                         one host (id, name or IP) with its latest task results
  smith-console decommission [flags] <host-id>
                                         forget a host and revoke its credential (exact host id)
  smith-console fingerprint <cert.pem>   print a certificate's SHA-256 pin (for heartbeat.pin_sha256)
  smith-console -version                 print the version

serve flags (each overrides the config file):
  -config FILE      TOML config (see docs/CONSOLE.md)
  -listen ADDR      listen address (default :8443)
  -db FILE          host registry file (default /var/lib/smith/console.db)
  -tls-cert FILE    serve HTTPS with this certificate ...
  -tls-key FILE     ... and key
  Without a certificate the console serves plain HTTP on a loopback address
  only; elsewhere set tls_self_signed, tls_proxy or insecure in the config.
  -log-level LEVEL  debug, info, warn, error
  Secrets come from the config or SMITH_FLEET_TOKEN (the fleet enrolment
  secret: agents trade it for their own host credential) and
  SMITH_CONSOLE_PASSWORD.

list, count, host and decommission flags (before the argument):
  -server URL       console address (default $SMITH_CONSOLE_URL, else https://127.0.0.1:8443);
                    http:// only to loopback unless -insecure
  -password-file F  file holding the console password (default $SMITH_CONSOLE_PASSWORD)
  -ca FILE          PEM CA certificates to verify an HTTPS console
  -pin SHA256       accept exactly the console certificate with this fingerprint
                    (default $SMITH_CONSOLE_PIN), for a self-signed console
  -insecure         allow plain http:// to a host other than loopback
  -json             print the API's JSON instead of a table
`

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// Run runs smith-console with args (without the program name) and returns
// the exit code. ctx ends the serve verb (main cancels it on SIGINT and
// SIGTERM).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch verb, rest := args[0], args[1:]; verb {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "-version", "--version", "version":
		fmt.Fprintf(stdout, "smith-console %s (heartbeat protocol %s)\n", Version, api.Version)
		return exitOK
	case "serve":
		return serve(ctx, rest, stderr, getenv)
	case "fingerprint":
		if len(rest) != 1 {
			fmt.Fprintln(stderr, "smith-console fingerprint: want one certificate file (try smith-console --help)")
			return exitUsage
		}
		pin, err := fingerprint(rest[0])
		if err != nil {
			fmt.Fprintf(stderr, "smith-console fingerprint: %v\n", err)
			return exitFail
		}
		fmt.Fprintln(stdout, pin)
		return exitOK
	case "list", "count", "host", "decommission":
		return query(ctx, verb, rest, stdout, stderr, getenv)
	default:
		fmt.Fprintf(stderr, "smith-console: unknown command %q (try smith-console --help)\n", verb)
		return exitUsage
	}
}

// consoleClient reads the console API with the console password.
type consoleClient struct {
	base     string
	password string
	http     *http.Client
}

func (c *consoleClient) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, out)
}

func (c *consoleClient) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return fmt.Errorf("request %s: %w", c.base+path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.password)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("console at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return api.ReadError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("answer of %s: %w", c.base+path, err)
	}
	return nil
}

func query(ctx context.Context, verb string, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("smith-console "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	defServer := getenv("SMITH_CONSOLE_URL")
	if defServer == "" {
		defServer = "https://127.0.0.1:8443"
	}
	server := fs.String("server", defServer, "console address")
	pwFile := fs.String("password-file", "", "file holding the console password")
	caFile := fs.String("ca", "", "PEM CA certificates for an HTTPS console")
	pin := fs.String("pin", getenv("SMITH_CONSOLE_PIN"), "SHA-256 fingerprint of the console certificate")
	insecure := fs.Bool("insecure", false, "allow plain http:// to another host")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	rest := fs.Args()
	switch {
	case verb == "list" && len(rest) > 1,
		verb == "count" && len(rest) != 0,
		verb == "host" && len(rest) != 1,
		verb == "decommission" && len(rest) != 1:
		fmt.Fprintf(stderr, "smith-console %s: wrong arguments %q (try smith-console --help)\n", verb, rest)
		return exitUsage
	}

	password := getenv("SMITH_CONSOLE_PASSWORD")
	if *pwFile != "" {
		raw, err := os.ReadFile(*pwFile)
		if err != nil {
			fmt.Fprintf(stderr, "smith-console: password file: %v\n", err)
			return exitUsage
		}
		password = strings.TrimSpace(string(raw))
	}
	if password == "" {
		fmt.Fprintln(stderr, "smith-console: no console password: set SMITH_CONSOLE_PASSWORD or -password-file")
		return exitUsage
	}
	if err := api.CheckConsoleURL(*server, *insecure); err != nil {
		fmt.Fprintf(stderr, "smith-console: -server: %v\n", err)
		return exitUsage
	}
	hc, err := httpClient(*caFile, *pin)
	if err != nil {
		fmt.Fprintf(stderr, "smith-console: %v\n", err)
		return exitUsage
	}
	c := &consoleClient{base: strings.TrimRight(*server, "/"), password: password, http: hc}

	switch verb {
	case "list":
		prefix := ""
		if len(rest) == 1 {
			prefix = rest[0]
		}
		var l api.HostList
		err = c.get(ctx, api.HostsPath+"?prefix="+url.QueryEscape(prefix), &l)
		if err == nil {
			err = output(stdout, *asJSON, l, func(w io.Writer) { printList(w, l, time.Now()) })
		}
	case "count":
		var n api.Counts
		err = c.get(ctx, api.CountPath, &n)
		if err == nil {
			err = output(stdout, *asJSON, n, func(w io.Writer) {
				fmt.Fprintf(w, "total %d  online %d  offline %d\n", n.Total, n.Online, n.Offline)
			})
		}
	case "host":
		var h api.Host
		err = c.get(ctx, api.HostsPath+"/"+url.PathEscape(rest[0]), &h)
		if err == nil {
			err = output(stdout, *asJSON, h, func(w io.Writer) { printHost(w, h, time.Now()) })
		}
	case "decommission":
		var h api.Host
		err = c.do(ctx, http.MethodDelete, api.HostsPath+"/"+url.PathEscape(rest[0]), &h)
		if err == nil {
			err = output(stdout, *asJSON, h, func(w io.Writer) {
				fmt.Fprintf(w, "decommissioned %s (%s): its credential is revoked; its agent must enrol again to come back\n",
					safe(h.Hostname), safe(h.HostID))
			})
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "smith-console %s: %s\n", verb, safe(err.Error()))
		return exitFail
	}
	return exitOK
}

func httpClient(caFile, pin string) (*http.Client, error) {
	tlsCfg, err := api.ClientTLS(caFile, pin)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}, nil
}

func output(w io.Writer, asJSON bool, v any, text func(io.Writer)) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(w)
	return nil
}

func status(h api.Host) string {
	switch {
	case h.Conflicts > 0:
		return statusText(h.Online) + "!"
	case h.LastSeen.IsZero():
		return "enrolled"
	}
	return statusText(h.Online)
}

func statusText(online bool) string {
	if online {
		return "online"
	}
	return "offline"
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printList(w io.Writer, l api.HostList, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tHOST\tIPS\tLAST SEEN\tAGENT\tMODULE\tKERNEL\tEVENTS/S\tDROPS (RECENT)\tSPOOL BYTES")
	for _, h := range l.Hosts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%d\t%d\n",
			status(h), safe(h.Hostname), dash(strings.Join(safeAll(h.IPs), ",")), ago(h.LastSeen, now),
			dash(safe(h.AgentVersion)), dash(safe(h.ModuleVersion)), dash(safe(h.Kernel)),
			h.EventRate, h.DropsRecentTotal, h.Counters.SpoolBytes)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d shown; fleet: total %d  online %d  offline %d\n",
		len(l.Hosts), l.Counts.Total, l.Counts.Online, l.Counts.Offline)
	for _, a := range l.Alerts {
		fmt.Fprintf(w, "ALERT %s %s since %s: %s\n", a.Kind, safe(a.Hostname), ago(a.Since, now), safe(a.Detail))
	}
	for _, h := range l.Hosts {
		if h.Conflicts > 0 {
			fmt.Fprintf(w, "! %s: %d identity conflicts (smith-console host %s)\n", safe(h.Hostname), h.Conflicts, safe(h.HostID))
		}
	}
}

func printHost(w io.Writer, h api.Host, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("host", safe(h.Hostname))
	row("status", status(h))
	row("host id", safe(h.HostID))
	row("ips", dash(strings.Join(safeAll(h.IPs), ", ")))
	row("heartbeats from", dash(h.RemoteAddr))
	row("last seen", fmt.Sprintf("%s (%s)", ago(h.LastSeen, now), when(h.LastSeen)))
	row("first seen", when(h.FirstSeen))
	if h.EnrolledAt.IsZero() {
		row("enrolled", "no (registered before enrolment; enrols at its agent's next start)")
	} else {
		row("enrolled", fmt.Sprintf("%s from %s", when(h.EnrolledAt), dash(safe(h.EnrolledFrom))))
	}
	if h.Conflicts > 0 && h.LastConflict != nil {
		c := h.LastConflict
		row("IDENTITY CONFLICTS", fmt.Sprintf("%d, last %s from %s (%s): %s", h.Conflicts, when(c.At), safe(c.Remote), dash(safe(c.Hostname)), safe(c.Reason)))
	}
	row("kernel", dash(safe(h.Kernel)))
	row("uptime", (time.Duration(h.UptimeSeconds) * time.Second).String())
	row("agent", fmt.Sprintf("%s, up %s", dash(safe(h.AgentVersion)), time.Duration(h.AgentUptimeSeconds)*time.Second))
	row("module", fmt.Sprintf("%s, abi %s, transport %s", dash(safe(h.ModuleVersion)), dash(safe(h.ABIVersion)), dash(safe(h.Transport))))
	row("event rate", fmt.Sprintf("%.1f/s", h.EventRate))
	row("events", fmt.Sprintf("read %d, sent %d", h.Counters.EventsRead, h.Counters.EventsSent))
	row("drops, last "+(time.Duration(h.DropWindowSeconds)*time.Second).String(), fmt.Sprintf("%d%s", h.DropsRecentTotal, dropDetail(h.DropsRecent)))
	row("drops since agent start", fmt.Sprintf("%d%s", h.DropsTotal, dropDetail(h.Counters.Drops)))
	spool := fmt.Sprintf("%d bytes, %d events", h.Counters.SpoolBytes, h.Counters.SpoolEvents)
	if h.SpoolFillPct >= 0 {
		spool += fmt.Sprintf(" (%.1f%% full)", h.SpoolFillPct)
	}
	row("spool", spool)
	row("ring fill", fmt.Sprintf("%.1f%%", h.Counters.RingFill*100))
	if h.VersionDrift {
		row("version drift", "yes: not the fleet's most common agent or module version")
	}
	if h.LastError != "" {
		row("last error", safe(h.LastError))
	}
	for _, a := range h.Alerts {
		row("ALERT "+a.Kind, fmt.Sprintf("since %s: %s", ago(a.Since, now), safe(a.Detail)))
	}
	tw.Flush()
	if len(h.Tasks) == 0 {
		fmt.Fprintln(w, "\nno task results yet")
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tFINISHED\tRESULT\tITEMS\tSUMMARY")
	for _, t := range h.Tasks {
		result, summary := "ok", t.Summary
		if t.Error != "" {
			result, summary = "failed", t.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", safe(string(t.Kind)), ago(t.FinishedAt, now), result, t.Items, safe(summary))
	}
	tw.Flush()
}

func dropDetail(drops map[string]uint64) string {
	var parts []string
	for reason, n := range drops {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", safe(reason), n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	sort.Strings(parts)
	return " (" + strings.Join(parts, ", ") + ")"
}
