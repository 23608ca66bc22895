// Video-analytics alarms in the console (R3, R6): the alarm cards pushed over the
// /api/alarms WebSocket, the events page (search, detail, the operators' actions) and the
// helpers the playback timeline uses for its events layer. Times are shown as the server
// gives them (the city's clock); the policy is applied by the server, the console only
// hides buttons a role may not use.
import { lang, t } from "./i18n.js";
import { api, cityTimeInput, h } from "./ui.js";

const HEADINGS = ["up", "up-right", "right", "down-right", "down", "down-left", "left", "up-left"];
const CARDED = new Set(["alarm", "warning"]);  // info events go to the events page only
const COMPACT = 3;          // rows shown under the open card; the rest are only counted
const KEEP_VERSIONS = 5000; // event versions remembered (to ignore stale news after a reconnect)
const PING_MS = 25000;      // keeps idle-timing proxies from closing a quiet socket
const RECHECK_MS = 60000;   // the unhandled alarms are read again this often (a safety net for lost pushes)
const LABELS = ["person", "bicycle", "car", "motorcycle", "bus", "truck"];
const KINDS = ["zone", "line", "loiter", "crowd", "stopped", "tamper"];
const SEVERITY_COLOURS = { alarm: "#ff5c5c", warning: "#ffb020", info: "#4c8dff" };

export const can = (me, action) => !!me && (me.allowed_actions || []).includes(action);

// "2026-11-21T22:09:13.123+02:00" (city time, as the server writes it) -> "2026-11-21 22:09:13".
export const cityText = (iso) => (iso ? iso.slice(0, 19).replace("T", " ") : "");

const tr = (prefix, value) => (value ? t(`${prefix}${value}`) : "");
export const labelText = (l) => (l ? (t(`label_${l}`) === `label_${l}` ? l : t(`label_${l}`)) : "");

// An arrow glyph turned to the picture-compass heading (0° = up, clockwise).
export function arrow(heading) {
  const i = HEADINGS.indexOf(heading);
  if (i < 0) return "";
  const el = h("span", { class: "arrow", "data-heading": heading, "aria-hidden": "true" }, "↑");
  el.style.transform = `rotate(${i * 45}deg)`;  // CSSOM: allowed by the strict CSP
  return el;
}

function directionPhrase(ev) {
  const d = ev.detail && typeof ev.detail.direction === "object" ? ev.detail.direction : null;
  return d ? d[lang] || d.en || d.uk || "" : "";
}

// An event the camera's own detector raised (ONVIF events, not Varta's analytics) says so.
export function ruleText(ev) {
  return ev.rule && ev.rule.startsWith("camera:") ? t(`camRule_${ev.rule.slice(7)}`) : ev.rule;
}

// What the rule adds: a crowd's size, a crossing's direction, the tampering kind, how long.
function specifics(ev) {
  const d = ev.detail || {};
  const out = [];
  if (ev.kind === "crowd" && d.count != null) out.push(`${t("people")}: ${d.count}` + (d.peak ? ` (${t("peak")} ${d.peak})` : ""));
  if (ev.kind === "line") {
    if (d.crossing) out.push(t(`crossing_${d.crossing}`));
    if (d.count != null) out.push(`${t("crossingNo")}${d.count}`);
  }
  if (ev.kind === "tamper" && d.tamper) out.push(t(`tamper_${d.tamper}`) === `tamper_${d.tamper}` ? d.tamper : t(`tamper_${d.tamper}`));
  if (ev.kind === "loiter" && d.dwell_s != null) out.push(`${t("dwell")} ${Math.round(d.dwell_s)}`);
  if (ev.kind === "stopped" && d.stopped_s != null) out.push(`${t("stoppedFor")} ${Math.round(d.stopped_s)}`);
  return out.join(" · ");
}

function objectText(ev) {
  if (!ev.label) return "";
  return `${labelText(ev.label)}${ev.score ? ` · ${t("score")} ${Number(ev.score).toFixed(2)}` : ""}` +
    (ev.track_id != null ? ` · #${ev.track_id}` : "");
}

function whenText(ev) {
  return `${cityText(ev.start)} · ` + (ev.ongoing ? t("ongoing") : `${t("ended")} ${cityText(ev.end).slice(11)}`);
}

function facts(ev) {
  const dir = directionPhrase(ev);
  return [
    h("div", { class: "cam" }, h("b", {}, ev.camera_name || ev.camera_id), ` (${ev.camera_id})`, ev.address ? ` · ${ev.address}` : ""),
    h("div", { class: "rule" }, h("b", {}, ruleText(ev)), ev.zone && ev.zone !== ev.rule ? ` · ${t("zone")}: ${ev.zone}` : "",
      ` · ${tr("kind_", ev.kind)}`),
    ev.label ? h("div", { class: "obj" }, objectText(ev)) : "",
    dir || ev.heading ? h("div", { class: "dir" }, arrow(ev.heading), " ", dir) : "",
    specifics(ev) ? h("div", { class: "spec" }, specifics(ev)) : "",
    h("div", { class: "when" }, whenText(ev)),
  ];
}

// --- acting on an event (the same buttons on the card and on the detail page) -------------
function snapshot(ev, big = false) {
  const none = () => h("div", { class: "snap none" }, t("noPicture"));
  if (!ev.snapshot_url) return none();
  const img = h("img", { class: big ? "snap big" : "snap", src: ev.snapshot_url, alt: `${ev.camera_name} · ${ev.rule}` });
  img.addEventListener("error", () => img.replaceWith(none()), { once: true });  // e.g. removed by retention
  return img;
}

function actions(ev, me, { onDone, note: noteBox, error, onNote = () => {} }) {
  const act = async (action, note) => {
    error.textContent = "";
    try {
      const updated = await api("POST", `/api/events/${ev.id}/${action}`, note ? { note } : {});
      onDone(updated, action);
      return true;
    } catch (e) {
      error.textContent = e.message;
      return false;
    }
  };
  const handle = can(me, "event.handle");
  const input = h("input", { name: "note", placeholder: t("notePlaceholder"), maxlength: 4000, required: true });
  const form = h("form", { class: "note-form", hidden: true }, input, h("button", { type: "submit" }, t("saveNote")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!input.value.trim()) return;
    if (await act("note", input.value.trim())) { input.value = ""; form.hidden = true; noteBox.textContent = t("noteSaved"); }
  });
  const buttons = [
    handle ? [
      h("button", { class: "act-ack", onclick: () => act("ack") }, t("ack")),
      h("button", { class: "act-true", onclick: () => act("true") }, t("trueAlarm")),
      h("button", { class: "act-false", onclick: () => act("false") }, t("falseAlarm")),
      h("button", { class: "act-note", onclick: () => { form.hidden = !form.hidden; if (!form.hidden) { onNote(); input.focus(); } } }, t("note")),
    ] : "",
    can(me, "archive.play") && ev.clip ? h("button", { class: "play-clip", onclick: () => {
      const p = new URLSearchParams({ cameras: ev.camera_id, t: ev.clip.from, zoom: "10min" });
      location.hash = `#/playback?${p}`;
    } }, t("playClip")) : "",
    ev.latitude != null && ev.longitude != null
      ? h("button", { class: "show-map", title: `${ev.latitude}, ${ev.longitude}`,
                      onclick: () => { location.hash = `#/map?camera=${encodeURIComponent(ev.camera_id)}`; } }, t("showOnMap")) : "",
    can(me, "incident.manage") ? incidentButton(ev, error) : "",
  ].flat().filter(Boolean);
  return [buttons.length ? h("div", { class: "event-actions" }, buttons) : "", form];
}

// An incident (the case file in the evidence registers, issue 6) opened from this event:
// its camera, time and a title come from the event; then the incident is shown.
function incidentButton(ev, error) {
  const button = h("button", { class: "incident", title: t("incidentTitle") }, t("incident"));
  button.addEventListener("click", async () => {
    error.textContent = "";
    button.disabled = true;
    try {
      const inc = await api("POST", `/api/incidents/from-event/${ev.id}`, {});
      location.hash = `#/evidence/incidents/${inc.id}`;
    } catch (e) {
      error.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

// --- the alarm cards ------------------------------------------------------------------------
export class AlarmCenter {
  constructor(root) {
    this.root = root;
    this.me = null;
    this.ws = null;
    this.closed = true;
    this.retry = 1000;
    this.queue = new Map();     // event id -> event: unhandled alarms/warnings, the cards
    this.versions = new Map();  // event id -> updated_us last seen
    this.hidden = new Set();    // hidden on this screen by a viewer who may not handle them
    this.open = null;           // the card the operator chose (else the newest is open)
    this.card = null;           // {id, el, update}: the open card, kept while it is the same event
    this.collapsed = false;
    this.problem = null;        // {key, detail}: why there are no alarms right now
  }

  start(me) {
    if (!can(me, "event.view")) { this.stop(); return; }
    if (this.me && this.me.login === me.login && !this.closed) { this.me = me; this.render(true); return; }
    this.stop();
    this.me = me;
    this.closed = false;
    this.retry = 1000;
    this.connect();
  }

  stop() {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.ticker);
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(); }
    this.me = null;
    this.queue.clear();
    this.versions.clear();
    this.hidden.clear();
    this.open = null;
    this.card = null;
    this.problem = null;
    this.dom = null;
    this.root.hidden = true;
    this.root.replaceChildren();
    document.title = t("title");
    delete this.root.dataset.ws;
    delete this.root.dataset.backlog;
  }

  connect() {
    if (this.closed) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/api/alarms`);
    this.ws = ws;
    this.root.dataset.ws = "connecting";
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.retry = 1000;
      this.root.dataset.ws = "open";
      this.problem = null;
      this.backlog();
      this.render();
      let since = Date.now();
      clearInterval(this.ticker);
      this.ticker = setInterval(() => {
        if (this.ws !== ws || ws.readyState !== WebSocket.OPEN) return;
        ws.send("ping");  // the server reads and ignores it
        if (Date.now() - since >= RECHECK_MS) { since = Date.now(); this.backlog(); }
      }, PING_MS);
    };
    ws.onmessage = (m) => {
      if (this.ws !== ws) return;
      let msg = null;
      try { msg = JSON.parse(m.data); } catch { return; }
      if (msg && msg.type === "event" && msg.event) this.receive(msg.event);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws || this.closed) return;
      this.ws = null;
      clearInterval(this.ticker);
      if (ev.code === 1008) {  // refused by the policy: say why, do not hammer the server
        this.problem = { key: "alarmsRefused", detail: ev.reason };
        this.root.dataset.ws = "refused";
        this.render();
        return;
      }
      this.problem = { key: "alarmsOffline", detail: "" };
      this.root.dataset.ws = "reconnecting";
      this.render();
      this.timer = setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 30000);
    };
  }

  // Alarms raised while this screen was away (or before it signed in) and still unhandled.
  async backlog() {
    const queued = [...this.queue.values()];
    // The last day, and back to the oldest card still shown (those are looked up again).
    const from = Math.min(Date.now() - 86400e3, ...queued.map((e) => Date.parse(e.start)));
    const limit = 200;
    try {
      const q = new URLSearchParams({ state: "new", limit: String(limit), from: new Date(from).toISOString() });
      const res = await api("GET", `/api/events?${q}`);
      if (res.events.length < limit) {  // a complete answer: what is not in it was handled meanwhile
        const still = new Set(res.events.map((e) => e.id));
        for (const e of queued) if (!still.has(e.id) && this.queue.get(e.id) === e) this.queue.delete(e.id);
      }
      for (const ev of res.events.slice().reverse()) this.receive(ev);
      this.render();
    } catch { /* the pushed alarms still come; the events page shows the rest */ }
    if (!this.closed) this.root.dataset.backlog = "loaded";
  }

  // An event, new or changed (pushed, read back, or the answer to our own action).
  receive(ev) {
    if (this.closed) return;
    const seen = this.versions.get(ev.id);
    if (seen !== undefined && (ev.updated_us ?? 0) < seen) return;  // older news than we have
    this.versions.delete(ev.id);
    this.versions.set(ev.id, ev.updated_us ?? 0);
    if (this.versions.size > KEEP_VERSIONS) this.versions.delete(this.versions.keys().next().value);
    const had = this.queue.has(ev.id);
    if (ev.state !== "new" || !CARDED.has(ev.severity) || this.hidden.has(ev.id)) {
      if (had) { this.queue.delete(ev.id); this.render(); }  // handled (here or by someone else)
      return;
    }
    this.queue.set(ev.id, ev);
    if (!had && ev.severity === "alarm") this.flash();
    this.render();
  }

  flash() {
    this.root.classList.remove("flash");
    void this.root.offsetWidth;  // restart the animation
    this.root.classList.add("flash");
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => this.root.classList.remove("flash"), 3000);
  }

  handled(updated) {
    this.receive(updated);
  }

  render(relabel = false) {
    if (!this.me) return;
    if (relabel) { this.card = null; this.dom = null; }  // language changed: build everything again
    if (!this.dom) {
      this.dom = { head: h("header"), problem: h("p", { class: "problem" }), slot: h("div", { class: "open-card" }),
                   rows: h("div", { class: "rows" }) };
      this.root.replaceChildren(this.dom.head, this.dom.problem, this.dom.slot, this.dom.rows);
    }
    const { head, problem, slot, rows } = this.dom;
    const items = [...this.queue.values()].sort((a, b) => b.id - a.id);
    const n = items.length;
    this.root.hidden = !n && !this.problem;
    this.root.dataset.count = String(n);
    document.title = n ? `(${n}) ${t("title")}` : t("title");
    head.replaceChildren(
      h("b", {}, t("alarms")), " ", h("span", { id: "alarm-count", class: n ? "count on" : "count" }, String(n)),
      ` ${t("unhandled")}`,
      h("button", { class: "collapse", title: this.collapsed ? t("expand") : t("collapse"),
                    onclick: () => { this.collapsed = !this.collapsed; this.render(); } }, this.collapsed ? "▴" : "▾"));
    problem.hidden = !this.problem;
    problem.textContent = this.problem ? `${t(this.problem.key)} ${this.problem.detail || ""}` : "";
    const top = n && !this.collapsed ? items.find((e) => e.id === this.open) || items[0] : null;
    if (!top) {
      this.card = null;
      slot.replaceChildren();
      rows.replaceChildren();
      return;
    }
    if (!this.card || this.card.id !== top.id) this.card = this.buildCard(top);
    else this.card.update(top);
    if (slot.firstChild !== this.card.el) slot.replaceChildren(this.card.el);
    const rest = items.filter((e) => e !== top);
    rows.replaceChildren(...rest.slice(0, COMPACT).map((ev) => h("button", {
      class: "alarm-row", "data-event": ev.id, "data-severity": ev.severity,
      onclick: () => { this.open = ev.id; this.render(); },
    }, h("span", { class: "sev" }, t(`sev_${ev.severity}`)), " ", cityText(ev.start).slice(11), " ",
       h("b", {}, ev.camera_name || ev.camera_id), ` · ${ruleText(ev)}`)),
    rest.length > COMPACT ? h("p", { class: "muted more" }, `+${rest.length - COMPACT} ${t("moreAlarms")}`) : "");
  }

  buildCard(ev) {
    const me = this.me;
    const factsBox = h("div", { class: "facts" });
    const status = h("span", { class: "ongoing" });
    const error = h("p", { class: "error" });
    const note = h("p", { class: "ok note-done" });
    const img = snapshot(ev);
    const [bar, form] = actions(ev, me, {
      note, error,
      onDone: (updated, action) => {
        if (action !== "note" && this.open === ev.id) this.open = null;
        this.handled(updated);
      },
      // Once the operator starts a note, a newer alarm does not take this card's place
      // (it waits as a row) until this one is handled or another is chosen.
      onNote: () => { this.open = ev.id; },
    });
    const el = h("article", { class: "alarm-card", "data-event": ev.id, "data-severity": ev.severity },
      h("div", { class: "title" }, h("span", { class: "sev" }, t(`sev_${ev.severity}`)), " ", h("b", {}, ruleText(ev)), " ", status,
        h("a", { class: "details", href: `#/events/${ev.id}`, title: t("details") }, "⋯")),
      h("a", { href: `#/events/${ev.id}`, class: "snap-link" }, img),
      factsBox, bar, form, note, error,
      can(me, "event.handle") ? "" : h("button", { class: "hide", title: t("hideTitle"), onclick: () => {
        this.hidden.add(ev.id); this.queue.delete(ev.id); this.open = null; this.render();
      } }, t("hide")));
    const update = (e) => {
      el.dataset.ongoing = e.ongoing ? "1" : "0";
      status.textContent = e.ongoing ? `● ${t("ongoing")}` : t("ended");
      factsBox.replaceChildren(...facts(e));
    };
    update(ev);
    return { id: ev.id, el, update };
  }
}

// --- the events page --------------------------------------------------------------------------
const FILTERS = ["camera", "from", "to", "label", "rule", "zone", "kind", "state", "verdict"];
const PAGE = 50;

export async function eventsView(me, main, params) {
  const cams = await api("GET", "/api/cameras");
  const v = (k) => params.get(k) || "";
  const opt = (value, text, current) => h("option", { value, selected: value === current }, text);
  const form = h("form", { id: "events-filter", class: "inline" },
    h("select", { name: "camera" }, opt("", t("allCameras"), v("camera")),
      cams.map((c) => opt(c.id, `${c.id} ${c.name || ""}`, v("camera")))),
    h("label", {}, `${t("from")} `, cityTimeInput({ name: "from", value: v("from") })),
    h("label", {}, `${t("to")} `, cityTimeInput({ name: "to", value: v("to") })),
    h("select", { name: "label", title: t("label") }, opt("", `${t("label")}: ${t("any")}`, v("label")),
      LABELS.map((l) => opt(l, labelText(l), v("label")))),
    h("input", { name: "rule", placeholder: t("rule"), value: v("rule"), size: 12 }),
    h("input", { name: "zone", placeholder: t("zone"), value: v("zone"), size: 10 }),
    h("select", { name: "kind" }, opt("", `${t("kind")}: ${t("any")}`, v("kind")), KINDS.map((k) => opt(k, t(`kind_${k}`), v("kind")))),
    h("select", { name: "state" }, opt("", `${t("stateCol")}: ${t("any")}`, v("state")),
      ["new", "acknowledged"].map((s) => opt(s, t(`evstate_${s}`), v("state")))),
    h("select", { name: "verdict" }, opt("", `${t("verdict")}: ${t("any")}`, v("verdict")),
      ["true", "false", "none"].map((s) => opt(s, t(`verdict_${s}`), v("verdict")))),
    h("button", { type: "submit" }, t("search")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, val] of new FormData(form)) if (val) p.set(k, val);
    const next = `#/events?${p}`;
    if (location.hash === next) load(true); else location.hash = next;
  });
  const error = h("p", { class: "error" });
  const tbody = h("tbody");
  const table = h("table", { id: "events" },
    h("thead", {}, h("tr", {}, ["", t("time"), t("camera"), t("rule"), t("kind"), t("label"), t("direction"), t("severity"),
      t("stateCol"), t("verdict"), t("handledBy")].map((x) => h("th", {}, x)))), tbody);
  const more = h("button", { id: "events-more", hidden: true }, t("older"));
  const empty = h("p", { class: "muted", hidden: true }, t("noEvents"));
  let before = null;
  async function load(fresh) {
    const p = new URLSearchParams();
    for (const k of FILTERS) if (params.get(k)) p.set(k, params.get(k));
    p.set("limit", String(PAGE));
    if (!fresh && before) p.set("before", String(before));
    if (fresh) { tbody.replaceChildren(); before = null; }
    error.textContent = "";
    try {
      const res = await api("GET", `/api/events?${p}`);
      tbody.append(...res.events.map(eventRow));
      if (res.events.length) before = res.events[res.events.length - 1].id;
      more.hidden = res.events.length < PAGE;
      empty.hidden = tbody.children.length > 0;
    } catch (e) { error.textContent = e.message; }
  }
  more.addEventListener("click", () => load(false));
  main().replaceChildren(form, error, table, empty, more);
  await load(true);
}

function eventRow(ev) {
  const open = () => { location.hash = `#/events/${ev.id}`; };
  return h("tr", { class: "event-row", "data-event": ev.id, "data-severity": ev.severity, "data-state": ev.state,
                   "data-verdict": ev.verdict || "", onclick: open },
    h("td", {}, ev.snapshot_url ? h("img", { class: "thumb", src: ev.snapshot_url, loading: "lazy", alt: "" }) : ""),
    h("td", { class: "nowrap" }, cityText(ev.start), ev.ongoing ? h("div", { class: "muted" }, t("ongoing")) : ""),
    h("td", {}, h("a", { href: `#/events/${ev.id}` }, ev.camera_name || ev.camera_id), h("div", { class: "muted" }, ev.address || ev.camera_id)),
    h("td", {}, h("b", {}, ev.rule), ev.zone && ev.zone !== ev.rule ? h("div", { class: "muted" }, ev.zone) : ""),
    h("td", {}, t(`kind_${ev.kind}`)),
    h("td", {}, objectText(ev), specifics(ev) ? h("div", { class: "muted" }, specifics(ev)) : ""),
    h("td", {}, arrow(ev.heading), " ", directionPhrase(ev)),
    h("td", {}, h("span", { class: "sev" }, t(`sev_${ev.severity}`))),
    h("td", { class: "state" }, t(`evstate_${ev.state}`)),
    h("td", { class: "verdict" }, ev.verdict ? t(`verdict_${ev.verdict}`) : ""),
    h("td", {}, ev.handled_by || "", ev.handled ? h("div", { class: "muted" }, cityText(ev.handled)) : ""));
}

// The path over the picture: an SVG drawn in the picture's own 0..1 coordinates.
function pathOverlay(ev) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 1 1");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "path-overlay");
  const colour = SEVERITY_COLOURS[ev.severity] || "#fff";
  const pts = (ev.path || []).filter((p) => Array.isArray(p) && p.length >= 3);
  if (pts.length >= 2) {
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("points", pts.map((p) => `${p[1]},${p[2]}`).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", colour);
    line.setAttribute("stroke-width", "3");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    line.setAttribute("stroke-dasharray", "6 4");
    svg.append(line);
    for (const [i, p] of [pts[0], pts[pts.length - 1]].entries()) {
      const dot = document.createElementNS(NS, "circle");
      dot.setAttribute("cx", p[1]); dot.setAttribute("cy", p[2]); dot.setAttribute("r", "0.008");
      dot.setAttribute("fill", i ? colour : "#fff");
      svg.append(dot);
    }
  }
  svg.dataset.points = String(pts.length);
  return svg;
}

export async function eventView(me, main, id, onHandled = () => {}) {
  const ev = await api("GET", `/api/events/${encodeURIComponent(id)}`);
  const error = h("p", { class: "error" });
  const note = h("p", { class: "ok note-done" });
  const [bar, form] = actions(ev, me, { note, error, onDone: (updated) => {
    onHandled(updated);
    eventView(me, main, id, onHandled).catch((e) => { error.textContent = e.message; });
  } });
  const row = (k, ...v) => h("tr", {}, h("th", {}, k), h("td", {}, ...v));
  const dir = directionPhrase(ev);
  const speed = ev.speed_px_s ?? ev.detail?.direction?.speed_px_s;
  const picture = h("figure", { class: "event-picture" },
    snapshot(ev, true),
    ev.snapshot_url ? pathOverlay(ev) : "");
  const info = h("table", { class: "event-facts" },
    row(t("camera"), h("b", {}, ev.camera_name || ev.camera_id), ` (${ev.camera_id})`),
    row(t("place"), ev.address || "—", ev.latitude != null ? h("span", { class: "muted" }, ` · ${ev.latitude}, ${ev.longitude}`) : ""),
    row(t("rule"), h("b", {}, ev.rule), ` · ${t(`kind_${ev.kind}`)}`),
    ev.zone ? row(t("zone"), ev.zone) : "",
    row(t("severity"), h("span", { class: "sev" }, t(`sev_${ev.severity}`))),
    ev.label ? row(t("label"), objectText(ev)) : "",
    dir || ev.heading ? row(t("direction"), arrow(ev.heading), " ", dir, speed ? h("span", { class: "muted" }, ` · ${Math.round(speed)} ${t("speed")}`) : "") : "",
    specifics(ev) ? row("", specifics(ev)) : "",
    (ev.path || []).length >= 2 ? row(t("path"), `${ev.path.length} ${t("points")}, ${ev.path[ev.path.length - 1][0]} ${t("sec")}`) : "",
    row(t("start"), cityText(ev.start)),
    row(t("end"), ev.ongoing ? t("ongoing") : cityText(ev.end)),
    row(t("stateCol"), h("span", { class: "state" }, t(`evstate_${ev.state}`)),
      ev.verdict ? h("span", { class: "verdict" }, ` · ${t(`verdict_${ev.verdict}`)}`) : ""),
    ev.handled_by ? row(t("handledBy"), ev.handled_by, ` · ${cityText(ev.handled)}`) : "");
  const history = h("table", { id: "event-history" },
    h("thead", {}, h("tr", {}, [t("time"), t("login"), t("action"), t("note")].map((x) => h("th", {}, x)))),
    h("tbody", {}, (ev.actions || []).map((a) => h("tr", { "data-action": a.action },
      h("td", { class: "nowrap" }, cityText(a.time)), h("td", {}, a.account), h("td", {}, t(`act_${a.action}`)),
      h("td", { class: "detail" }, a.note || "")))));
  const page = h("div", { id: "event-detail", "data-event": ev.id, "data-severity": ev.severity, "data-state": ev.state },
    h("p", {}, h("a", { href: "#/events", class: "back" }, t("backToEvents"))),
    h("div", { class: "event-grid" }, picture,
      h("div", {}, info, bar, form, note, error, h("h3", {}, t("history")), history)));
  main().replaceChildren(page);
}
