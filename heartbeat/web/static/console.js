// Smith console page. Talks to the console API on the same origin with
// the session cookie; builds every node with textContent, never HTML from
// data, so nothing a host reports can become markup.
"use strict";

const REFRESH_MS = 5000;

const $ = (id) => document.getElementById(id);
let timer = null;
let filterDelay = null;

async function getJSON(path) {
  const resp = await fetch(path, { credentials: "same-origin" });
  if (resp.status === 401) {
    throw Object.assign(new Error("not logged in"), { unauthorized: true });
  }
  if (!resp.ok) {
    let msg = resp.status + " " + resp.statusText;
    try { msg = (await resp.json()).error || msg; } catch (_) { /* keep status text */ }
    throw new Error(msg);
  }
  return resp.json();
}

function show(section) {
  for (const id of ["login", "fleet", "detail"]) {
    $(id).hidden = id !== section;
  }
  $("logout").hidden = section === "login";
}

function problem(err) {
  if (err && err.unauthorized) {
    stop();
    show("login");
    return;
  }
  $("problem").hidden = !err;
  $("problem").textContent = err ? "Console unreachable: " + err.message : "";
}

function stop() {
  if (timer) { clearTimeout(timer); timer = null; }
}

function schedule() {
  stop();
  timer = setTimeout(route, REFRESH_MS);
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function seen(h) {
  return Date.parse(h.last_seen) > 0;
}

// status is "online", "offline", or "enrolled" for a host that has its
// credential but has not sent a heartbeat yet.
function status(h) {
  if (!seen(h)) return "enrolled";
  return h.online ? "online" : "offline";
}

function badge(st) {
  return el("span", st, "badge " + st);
}

function conflictText(h) {
  const c = h.last_conflict;
  if (!h.conflicts || !c) return "none";
  return h.conflicts + ", last " + ago(c.at) + " from " + c.remote +
    (c.hostname ? " (" + c.hostname + ")" : "") + ": " + c.reason;
}

function ago(iso) {
  const t = Date.parse(iso);
  if (!t || t <= 0) return "never";
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  return Math.floor(s / 86400) + " d ago";
}

function duration(sec) {
  if (!sec) return "-";
  const d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60);
  if (d) return d + " d " + h + " h";
  if (h) return h + " h " + m + " min";
  return m + " min " + (sec % 60) + " s";
}

function bytes(n) {
  if (!n) return "0";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function rate(r) {
  if (!r) return "0";
  return r >= 100 ? Math.round(r).toLocaleString() : r.toFixed(1);
}

function spoolText(h) {
  const b = bytes(h.counters.spool_bytes);
  return h.spool_fill_pct >= 0 ? b + " (" + h.spool_fill_pct.toFixed(1) + " %)" : b;
}

function alertName(kind) {
  return kind.replaceAll("_", " ");
}

function dropList(drops) {
  return Object.entries(drops || {}).filter(([, n]) => n > 0)
    .map(([r, n]) => r + " " + n.toLocaleString()).join(", ");
}

function showAlerts(alerts) {
  const list = $("alerts-list");
  list.replaceChildren();
  for (const a of alerts) {
    const li = document.createElement("li");
    li.dataset.kind = a.kind;
    li.dataset.host = a.hostname;
    li.append(el("span", alertName(a.kind), "badge alert"), " ");
    const link = el("a", a.hostname);
    link.href = "#/host/" + encodeURIComponent(a.host_id);
    li.append(link, " ", el("span", "since " + ago(a.since), "muted"), " ", el("span", a.detail));
    list.append(li);
  }
  $("alerts").hidden = alerts.length === 0;
  $("alerts-count").textContent = alerts.length;
}

function moduleText(h) {
  if (!h.module_version) return "not loaded";
  return h.module_version + (h.abi_version ? " / " + h.abi_version : "");
}

async function showFleet() {
  const prefix = $("filter").value.trim();
  const list = await getJSON("/api/v1/hosts" + (prefix ? "?prefix=" + encodeURIComponent(prefix) : ""));
  show("fleet");
  $("count-total").textContent = list.counts.total;
  $("count-online").textContent = list.counts.online;
  $("count-offline").textContent = list.counts.offline;
  showAlerts(list.alerts || []);

  const body = document.createElement("tbody");
  for (const h of list.hosts) {
    const tr = document.createElement("tr");
    tr.dataset.host = h.hostname;
    tr.dataset.status = status(h);
    tr.dataset.conflict = h.conflicts > 0 ? "true" : "false";
    tr.addEventListener("click", () => { location.hash = "#/host/" + encodeURIComponent(h.host_id); });
    const st = el("td"); st.append(badge(status(h)));
    if (h.conflicts > 0) {
      const c = el("span", "identity conflict", "badge conflict");
      c.title = conflictText(h);
      st.append(" ", c);
    }
    for (const a of h.alerts || []) {
      if (a.kind === "offline") continue;
      const b = el("span", alertName(a.kind), "badge alert");
      b.title = a.detail;
      st.append(" ", b);
    }
    tr.dataset.alerts = (h.alerts || []).map((a) => a.kind).join(" ");
    tr.append(st);
    const name = el("td"); const a = el("a", h.hostname);
    a.href = "#/host/" + encodeURIComponent(h.host_id); name.append(a); tr.append(name);
    tr.append(el("td", h.ips.join(", ")));
    const seen = el("td", ago(h.last_seen)); seen.title = h.last_seen; tr.append(seen);
    const agent = el("td", h.agent_version || "-");
    if (h.version_drift) {
      agent.append(" ", el("span", "drift", "badge drift"));
      agent.title = "the fleet runs " + list.agent_version + (list.module_version ? ", module " + list.module_version : "");
    }
    tr.append(agent);
    tr.append(el("td", moduleText(h)));
    tr.append(el("td", h.kernel || "-"));
    tr.append(el("td", rate(h.event_rate), "num"));
    const drops = el("td", h.drops_recent_total.toLocaleString(), "num" + (h.drops_recent_total ? " warn" : ""));
    drops.title = "last " + Math.round(h.drop_window_s / 60) + " min; " + h.drops_total.toLocaleString() + " since the agent started";
    tr.append(drops);
    tr.append(el("td", spoolText(h), "num"));
    body.append(tr);
  }
  $("hosts").replaceChild(body, $("hosts").tBodies[0]);
  $("empty").hidden = list.hosts.length > 0;
  $("updated").textContent = "Updated " + new Date().toLocaleTimeString();
}

function factRows(tbody, rows) {
  tbody.replaceChildren();
  for (const [k, v] of rows) {
    const tr = document.createElement("tr");
    tr.append(el("th", k), el("td", v));
    tbody.append(tr);
  }
}

async function showHost(id) {
  const h = await getJSON("/api/v1/hosts/" + encodeURIComponent(id));
  show("detail");
  $("detail-name").textContent = h.hostname;
  const st = $("detail-status");
  st.textContent = status(h);
  st.className = "badge " + status(h);
  $("detail").dataset.host = h.host_id;
  $("decommission").hidden = false;
  $("decommission-confirm").hidden = true;
  $("decommission-cancel").hidden = true;

  factRows($("detail-identity").tBodies[0], [
    ["Host id", h.host_id],
    ["IPs", h.ips.join(", ") || "-"],
    ["Heartbeats from", h.remote_addr],
    ["Last seen", ago(h.last_seen) + " (" + h.last_seen + ")"],
    ["First seen", seen(h) ? h.first_seen : "never"],
    ["Enrolled", Date.parse(h.enrolled_at) > 0
      ? h.enrolled_at + (h.enrolled_from ? " from " + h.enrolled_from : "")
      : "no (enrols at its agent's next start)"],
    ["Identity conflicts", conflictText(h)],
    ["Kernel", h.kernel || "-"],
    ["Uptime", duration(h.uptime_s)],
    ["Agent", (h.agent_version || "-") + ", up " + duration(h.agent_uptime_s)],
    ["Module / ABI", moduleText(h) + (h.transport ? " via " + h.transport : "")],
    ["Heartbeat interval", h.interval_s ? h.interval_s + " s" : "-"],
  ]);
  const c = h.counters;
  const drops = dropList(c.drops), recent = dropList(h.drops_recent);
  const win = Math.round(h.drop_window_s / 60) + " min";
  factRows($("detail-health").tBodies[0], [
    ["Alerts", (h.alerts || []).map((a) => alertName(a.kind) + " since " + ago(a.since) + ": " + a.detail).join("; ") || "none"],
    ["Event rate", rate(h.event_rate) + " /s"],
    ["Events read", c.events_read.toLocaleString()],
    ["Events sent", c.events_sent.toLocaleString()],
    ["Drops, last " + win, h.drops_recent_total.toLocaleString() + (recent ? " (" + recent + ")" : "") +
      (h.drops_recent_total ? ", " + (h.drops_recent_total / h.drop_window_s).toFixed(2) + " /s" : "")],
    ["Drops since agent start", h.drops_total.toLocaleString() + (drops ? " (" + drops + ")" : "")],
    ["Spool", spoolText(h) + ", " + c.spool_events.toLocaleString() + " events"],
    ["Ring fill", (c.ring_fill * 100).toFixed(1) + " %"],
    ["Module", h.module_loaded ? "loaded" : "not loaded"],
    ["Version drift", h.version_drift ? "yes: not the fleet's most common version" : "no"],
  ]);
  $("detail-error").textContent = h.last_error ? "Last error: " + h.last_error : "";

  const tasks = h.tasks || [];
  const body = document.createElement("tbody");
  for (const t of tasks) {
    const tr = document.createElement("tr");
    tr.dataset.kind = t.kind;
    tr.append(el("td", t.kind.replaceAll("_", " ")));
    const fin = el("td", ago(t.finished_at)); fin.title = t.finished_at; tr.append(fin);
    const res = el("td");
    res.append(el("span", t.error ? "failed" : "ok", "badge " + (t.error ? "failed" : "ok")));
    tr.append(res);
    tr.append(el("td", t.items, "num"));
    const sum = el("td", t.error || t.summary || "");
    const facts = Object.entries(t.facts || {}).map(([k, v]) => k + "=" + v).join("  ");
    if (facts) sum.append(el("div", facts, "facts-list"));
    tr.append(sum);
    body.append(tr);
  }
  $("detail-tasks").replaceChild(body, $("detail-tasks").tBodies[0]);
  $("detail-notasks").hidden = tasks.length > 0;
}

// decommission forgets the shown host and revokes its credential; the
// first click asks, the second does it.
async function decommission() {
  const id = $("detail").dataset.host;
  stop();
  const resp = await fetch("/api/v1/hosts/" + encodeURIComponent(id), {
    method: "DELETE", credentials: "same-origin",
  }).catch((err) => ({ ok: false, status: 0, statusText: err.message }));
  if (!resp.ok) {
    let msg = resp.status + " " + resp.statusText;
    try { msg = (await resp.json()).error || msg; } catch (_) { /* keep status text */ }
    problem(new Error(msg));
    schedule();
    return;
  }
  location.hash = "";
  route();
}

function askDecommission(ask) {
  $("decommission").hidden = ask;
  $("decommission-confirm").hidden = !ask;
  $("decommission-cancel").hidden = !ask;
}

async function route() {
  stop();
  const m = location.hash.match(/^#\/host\/(.+)$/);
  try {
    if (m) {
      await showHost(decodeURIComponent(m[1]));
    } else {
      await showFleet();
    }
    problem(null);
  } catch (err) {
    problem(err);
    if (err.unauthorized) return;
  }
  schedule();
}

async function login(ev) {
  ev.preventDefault();
  $("login-error").textContent = "";
  const resp = await fetch("/api/v1/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ password: $("password").value }),
  }).catch((err) => ({ ok: false, status: 0, statusText: err.message }));
  $("password").value = "";
  if (!resp.ok) {
    $("login-error").textContent = resp.status === 401 ? "Wrong password." : "Login failed: " + resp.statusText;
    return;
  }
  route();
}

async function logout() {
  stop();
  await fetch("/api/v1/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
  show("login");
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("back").addEventListener("click", (ev) => { ev.preventDefault(); location.hash = ""; });
  $("decommission").addEventListener("click", () => askDecommission(true));
  $("decommission-cancel").addEventListener("click", () => askDecommission(false));
  $("decommission-confirm").addEventListener("click", decommission);
  $("filter").addEventListener("input", () => {
    clearTimeout(filterDelay);
    filterDelay = setTimeout(route, 200);
  });
  window.addEventListener("hashchange", route);
  route();
});
