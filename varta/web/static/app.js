// The operator's console: sign-in, the live wall, playback, the map, the health page,
// the analytics alarms and events, and the evidence registers (evidence.js). Plain ES modules, no build step; everything it shows
// comes from /api and is limited there by the policy.
import { LivePlayer } from "./live.js";
import { ArchivePlayer, ZOOMS, drawTimeline, eventAt, gapAt, loadEvents, loadRanges } from "./playback.js";
import { lang, said, setLang, t } from "./i18n.js";
import { $, api, cityTimeInput, cityToIso, h, isoToCity } from "./ui.js";
import { adminView } from "./admin.js";
import { AlarmCenter, can, cityText, eventView, eventsView, labelText } from "./alarms.js";
import { evidenceNav, evidenceView } from "./evidence.js";
import { lockdownBanner, lockdownView } from "./lockdown.js";
import { nodesView } from "./nodes.js";
import { placementView } from "./placement.js";
import { ptzPanel } from "./ptz.js";
import { searchView } from "./search.js";

let me = null;
const alarms = new AlarmCenter($("#alarms"));

// --- navigation -----------------------------------------------------------------------------
// Each route() is one navigation. What a view starts (its requests, players, timers) belongs
// to it and is stopped when the next navigation begins or the user signs out. After an await
// a view reaches the page only through nav.main(), which throws an AbortError once the user
// has moved on: a view whose answer comes late stops there instead of replacing a newer one.
class Navigation {
  #aborter = new AbortController();
  #stops = [];
  signal = this.#aborter.signal;
  main = () => { this.signal.throwIfAborted(); return $("#main"); };
  get = (path) => api("GET", path, undefined, this.signal);
  onLeave(stop) { if (this.signal.aborted) stop(); else this.#stops.push(stop); }  // at once if already left
  every(ms, fn) { const id = setInterval(fn, ms); this.onLeave(() => clearInterval(id)); }
  leave() { this.#aborter.abort(); this.#stops.splice(0).forEach((stop) => stop()); }
}

let current = new Navigation();

function navigate() {
  current.leave();
  current = new Navigation();
  return current;
}

function gapText(g) {
  const k = `rs_${g.reason}`;
  return t(k) === k ? (lang === "en" ? g.description || g.reason : t("rs_unknown")) : t(k);
}

function cityTime(ms, withDate = true) {
  return new Intl.DateTimeFormat(lang === "uk" ? "uk-UA" : "en-GB", {
    timeZone: me.timezone, year: withDate ? "numeric" : undefined, month: withDate ? "2-digit" : undefined,
    day: withDate ? "2-digit" : undefined, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  }).format(new Date(ms));
}

// --- sign-in ----------------------------------------------------------------------------
function loginView(message = "") {
  navigate();
  alarms.stop();
  $("#nav").hidden = true;
  const form = h("form", { id: "login", class: "card" },
    h("h1", {}, t("title")),
    h("label", {}, t("login"), h("input", { name: "login", autocomplete: "username", required: true })),
    h("label", {}, t("password"), h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    h("label", {}, t("otp"), h("input", { name: "otp", inputmode: "numeric", autocomplete: "one-time-code" })),
    h("button", { type: "submit" }, t("signIn")),
    h("p", { class: "error", id: "login-error" }, message || ssoRefusal()));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    try {
      me = await api("POST", "/api/auth/login", { login: f.get("login"), password: f.get("password"), otp: f.get("otp") || null });
      route();
    } catch (e) {
      $("#login-error").textContent = loginError(e);
    }
  });
  $("#main").replaceChildren(form);
  ssoButton(form);
}

// Single sign-on (api_oidc.py): when the city's identity provider is configured, a button
// that goes there; local accounts stay above it (break-glass).
async function ssoButton(form) {
  let sso = null;
  try { sso = await api("GET", "/api/auth/oidc"); } catch { return; }
  if (!sso || !sso.enabled || !form.isConnected) return;
  const error = $("#login-error", form);
  form.insertBefore(h("span", { class: "sso-or" }, t("ssoOr")), error);
  form.insertBefore(h("button", { type: "button", id: "sso", onclick: () => location.assign("/api/auth/oidc/start") },
    `${t("ssoSignIn")} ${sso.label}`), error);
}

// The identity provider's sign-in came back refused: the server says why by a code in the
// address (/?sso_error=no_role), worded here in the console's language; the address is then cleaned.
function ssoRefusal() {
  const code = new URLSearchParams(location.search).get("sso_error");
  if (!code) return "";
  history.replaceState(null, "", location.pathname + location.hash);
  const key = `sso_err_${code}`;
  return t(key) === key ? t("sso_err_failed") : t(key);
}

// A remote session from the identity provider, which asserted no second factor: the code
// from the authenticator app enrolled in Varta (stage oidc_otp), then the full session.
function ssoOtpView() {
  navigate();
  $("#nav").hidden = true;
  const form = h("form", { id: "sso-otp", class: "card" },
    h("h1", {}, t("title")), h("p", {}, t("ssoOtp")),
    h("label", {}, t("otp"), h("input", { name: "otp", inputmode: "numeric", autocomplete: "one-time-code", required: true })),
    h("button", { type: "submit" }, t("confirm")), h("p", { class: "error" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      me = await api("POST", "/api/auth/oidc/otp", { otp: new FormData(form).get("otp") });
      route();
    } catch (e) {
      if (e.status === 401 && !(e.data && e.data.code)) { me = null; loginView(t("sso_err_expired")); return; }
      $(".error", form).textContent = loginError(e);
    }
  });
  $("#main").replaceChildren(form);
}

// The server's refusal worded in the console's language by its code; a lockout's time in
// the city's time (the server gives it with the city's offset).
function loginError(e) {
  const code = e.data && e.data.code;
  const key = `login_${code}`;
  if (!code || t(key) === key) return e.message;
  const until = /(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)/.exec(e.message || "");
  return t(key).replace("{until}", until ? cityText(until[1]) : "");
}

function passwordView() {
  const form = h("form", { class: "card", id: "change-password" },
    h("h2", {}, t("changePassword")),
    h("label", {}, t("currentPassword"), h("input", { name: "current", type: "password", required: true })),
    h("label", {}, t("newPassword"), h("input", { name: "next", type: "password", minlength: 12, required: true })),
    h("button", { type: "submit" }, t("save")), h("p", { class: "error" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    try {
      await api("POST", "/api/auth/password", { current_password: f.get("current"), new_password: f.get("next") });
      me = await api("GET", "/api/auth/me");
      route();
    } catch (e) { $(".error", form).textContent = e.message; }
  });
  $("#main").replaceChildren(form);
}

async function totpView(nav) {
  const setup = await api("POST", "/api/auth/totp/setup");
  const qr = h("div", { class: "qr" });
  qr.innerHTML = setup.qr_svg;  // generated by the server from the otpauth URI
  const form = h("form", { class: "card", id: "enrol-totp" },
    h("p", {}, t("enrolTotp")), qr, h("code", {}, setup.secret),
    h("label", {}, t("otp"), h("input", { name: "otp", inputmode: "numeric", required: true })),
    h("button", { type: "submit" }, t("confirm")), h("p", { class: "error" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/api/auth/totp/confirm", { secret: setup.secret, otp: new FormData(form).get("otp") });
      me = await api("GET", "/api/auth/me");
      route();
    } catch (e) { $(".error", form).textContent = e.message; }
  });
  nav.main().replaceChildren(form);
}

// --- the live wall ----------------------------------------------------------------------
const LAYOUTS = [1, 4, 9, 16];

async function liveView(nav, params) {
  const cams = await nav.get("/api/cameras");
  const groups = [...new Set(cams.map((c) => c.group).filter(Boolean))].sort();
  const kinds = [...new Set(cams.map((c) => c.kind))].sort();
  const layout = LAYOUTS.includes(+params.get("layout")) ? +params.get("layout") : 4;
  const group = params.get("group") || "";
  const kind = params.get("kind") || "";
  const enlarged = params.get("camera");
  const shown = cams.filter((c) => (!group || c.group === group) && (!kind || c.kind === kind));

  const go = (changes) => {
    const p = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) v ? p.set(k, v) : p.delete(k);
    location.hash = `#/live?${p}`;
  };
  const bar = h("div", { class: "toolbar" },
    h("select", { id: "group", onchange: (e) => go({ group: e.target.value }) },
      h("option", { value: "" }, t("allGroups")), groups.map((g) => h("option", { value: g, selected: g === group }, g))),
    h("select", { id: "kind", onchange: (e) => go({ kind: e.target.value }) },
      h("option", { value: "" }, t("allKinds")), kinds.map((k) => h("option", { value: k, selected: k === kind }, said("ck_", k)))),
    h("span", {}, t("layout")),
    LAYOUTS.map((n) => h("button", { class: n === layout ? "on" : "", "data-layout": n, onclick: () => go({ layout: n }) }, `${n}`)),
    enlarged ? h("button", { id: "back", onclick: () => go({ camera: "" }) }, t("back")) : "");

  const main = nav.main();
  if (!shown.length) {
    main.replaceChildren(bar, h("p", {}, t("noCameras")));
    return;
  }
  const list = enlarged ? shown.filter((c) => c.id === enlarged) : shown.slice(0, layout);
  const grid = h("div", { class: `wall n${enlarged ? 1 : layout}` });
  for (const cam of list) grid.append(tile(nav, cam, enlarged ? "main" : "sub", () => go({ camera: cam.id })));
  main.replaceChildren(bar, grid);
  if (enlarged && list.length && can(me, "ptz.control")) {
    const panel = await ptzPanel(nav, list[0]);
    if (panel) nav.main().append(panel);
  }
}

function tile(nav, cam, stream, enlarge) {
  const video = h("video", { muted: true, autoplay: true, playsinline: true, "data-camera": cam.id });
  const state = h("span", { class: "state" }, t("state_connecting"));
  const viewers = h("span", { class: "viewers" }, "");
  const el = h("figure", { class: "tile", "data-camera": cam.id }, video,
    h("figcaption", {}, h("b", {}, cam.id), " ", cam.name || "", " ", state, " ", viewers,
      h("span", { class: "actions" },
        stream === "sub" ? h("button", { title: t("enlarge"), class: "enlarge", onclick: enlarge }, "⤢") : "",
        h("button", { title: t("snapshot"), class: "snapshot", onclick: () => window.open(`/api/cameras/${cam.id}/snapshot.jpg`, "_blank") }, "◎"),
        h("button", { title: t("fullscreen"), onclick: () => el.requestFullscreen?.() }, "□"))));
  const player = new LivePlayer(video, cam.id, {
    stream,
    onState: (msg) => {
      if (msg.state) {
        const locked = msg.state === "refused" && (msg.detail || "").startsWith("lockdown");  // lockdown.js
        state.textContent = t(locked ? "state_lockdown" : `state_${msg.state}`);
        el.dataset.state = locked ? "lockdown" : msg.state;
        state.title = lang === "en" ? msg.detail || "" : "";  // the camera's own words: English page only
      }
      if (msg.viewers !== undefined) viewers.textContent = `${t("viewers")}: ${msg.viewers}`;
    },
  });
  nav.onLeave(() => player.close());
  const delay = h("span", { class: "delay" });
  const lags = [];
  $("figcaption", el).insertBefore(delay, $(".actions", el));
  nav.every(1000, () => {
    // The median of the last 10 s (one reading a second): what the picture lags, not its jitter.
    const d = player.delay();
    if (d !== null) { lags.push(d); if (lags.length > 10) lags.shift(); }
    const mid = [...lags].sort((a, b) => a - b)[Math.floor(lags.length / 2)];
    delay.textContent = mid === undefined ? "" : `${mid.toFixed(2)} ${t("sec")}`;
    delay.title = t("delayHow");
  });
  return el;
}

// --- playback ---------------------------------------------------------------------------
const SPEEDS = [0.5, 1, 2, 4, 8, 16];

async function toMs(nav, text, cameraId) {
  // A time typed in the city's zone (no offset) is placed by the server, which knows the zone.
  if (/[zZ]|[+-]\d\d:\d\d$/.test(text)) return Date.parse(text);
  const rep = await nav.get(`/api/cameras/${encodeURIComponent(cameraId)}/recordings?from=${encodeURIComponent(text)}&to=now`);
  return Date.parse(rep.from);
}

// Now minus ``seconds`` in the city's time, as the server reads it (no offset).
function cityNowMinus(seconds) {
  const parts = new Intl.DateTimeFormat("sv-SE", { timeZone: me.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(new Date(Date.now() - seconds * 1000));
  return parts.replace(" ", "T");
}

async function playbackView(nav, params) {
  const cams = await nav.get("/api/cameras");
  if (!params.get("cameras") && !params.get("t") && cams.length) {
    // Opened from the menu: the last minutes of the first camera that records (the address
    // says so, and the form below can change it).
    const first = cams.find((c) => c.status?.state === "recording") || cams[0];
    location.replace(`#/playback?${new URLSearchParams({ cameras: first.id, t: cityNowMinus(300) })}`);
    return;
  }
  const chosen = (params.get("cameras") || "").split(",").filter((c) => cams.some((x) => x.id === c)).slice(0, 4);
  const picker = h("select", { id: "pb-cameras", multiple: true, size: Math.min(6, cams.length || 1) },
    cams.map((c) => h("option", { value: c.id, selected: chosen.includes(c.id) }, `${c.id} ${c.name || ""}`)));
  // The city's dd.mm.yyyy hh:mm:ss, whatever the browser's locale (a datetime-local field
  // shows mm/dd/yyyy and AM/PM in an English browser beside the console's own clock).
  const shownT = params.get("t") && !/[zZ+]/.test(params.get("t")) ? isoToCity(params.get("t")) : "";
  const when = cityTimeInput({ id: "pb-time", value: shownT });
  const go = h("button", { id: "pb-go", onclick: () => {
    const ids = [...picker.selectedOptions].map((o) => o.value).slice(0, 4);
    const typed = cityToIso(when.value);
    if (when.value && !typed) { when.setCustomValidity(t("timeFormat")); when.reportValidity(); return; }
    const p = new URLSearchParams({ cameras: ids.join(","), t: typed || params.get("t") || "" });
    location.hash = `#/playback?${p}`;
  } }, t("play"));
  const bar = h("div", { class: "toolbar" }, picker, when, go);
  if (!chosen.length || !params.get("t")) { nav.main().replaceChildren(bar, h("p", {}, t("choosePlayback"))); return; }

  const atMs = await toMs(nav, params.get("t"), chosen[0]);
  const main = nav.main();
  let zoom = Math.max(0, ZOOMS.findIndex(([name]) => name === (params.get("zoom") || "hour")));
  const marks = {};
  const clock = h("span", { id: "pb-clock", class: "clock" });
  const status = h("span", { id: "pb-status" });
  const rows = chosen.map((id) => {
    const video = h("video", { muted: true, playsinline: true, "data-camera": id });
    const canvas = h("canvas", { class: "timeline", "data-camera": id });
    const gaps = h("ul", { class: "gaps", "data-camera": id });
    const player = new ArchivePlayer(video, id, { onState: (m) => {
      status.textContent = m.state === "nothing" ? t("pbNothing") : m.state === "error" ? `${t("pbError")} ${m.detail || ""}` : "";
      video.dataset.state = m.state;
    } });
    nav.onLeave(() => player.close());
    const events = h("ul", { class: "events", "data-camera": id });
    return { id, video, canvas, gaps, events, player, data: { ranges: [], gaps: [], events: [] } };
  });
  const master = rows[0].player;
  const windowOf = () => { const span = ZOOMS[zoom][1]; const c = master.sb ? master.wall() : atMs; return [c - span / 2, c + span / 2]; };
  async function refreshTimelines() {
    const [a, b] = windowOf();
    for (const r of rows) {
      try {
        const [ranges, events] = await Promise.all([loadRanges(r.id, a, b, nav.signal),
          can(me, "event.view") ? loadEvents(r.id, a, b, nav.signal) : []]);
        r.data = { ...ranges, events };
      } catch (e) { if (nav.signal.aborted) return; status.textContent = e.message; }
      r.gaps.replaceChildren(...r.data.gaps.map((g) => h("li", { "data-reason": g.reason }, `${cityTime(g.start)} – ${cityTime(g.end)}: ${gapText(g)}`)));
      r.events.replaceChildren(...r.data.events.map((ev) => h("li", { "data-event": ev.id, "data-severity": ev.severity },
        h("a", { href: `#/events/${ev.id}` }, `${cityText(ev.startText)} ${ev.rule}`))));
      r.canvas.title = r.data.events.length ? t("eventsOnTimeline") : "";
    }
    redraw();
  }
  function redraw() {
    const [a, b] = windowOf();
    for (const r of rows) drawTimeline(r.canvas, a, b, r.data, r.player.sb ? r.player.wall() : atMs, marks, me.timezone);
    if (master.sb) clock.textContent = cityTime(master.wall());
  }
  for (const r of rows) {
    r.canvas.addEventListener("click", async (ev) => {
      const [a, b] = windowOf();
      const hit = eventAt(r.canvas, a, b, r.data.events, ev.offsetX);  // an event marker: go to its start
      const ms = hit ? hit.start : a + (ev.offsetX / r.canvas.clientWidth) * (b - a);
      try {
        for (const x of rows) if (!x.player.seekWall(ms)) await x.player.open(ms);
      } catch (e) { if (e.name !== "AbortError") status.textContent = e.message; return; }
      if (hit) status.textContent = `${cityText(hit.startText)} · ${hit.rule}${hit.label ? ` · ${labelText(hit.label)}` : ""}`;
      redraw();
    });
    r.canvas.addEventListener("mousemove", (ev) => {
      const [a, b] = windowOf();
      const hit = eventAt(r.canvas, a, b, r.data.events, ev.offsetX);
      r.canvas.classList.toggle("on-event", !!hit);
      const gap = hit ? null : gapAt(r.canvas, a, b, r.data.gaps, ev.offsetX);  // why nothing was recorded there
      r.canvas.title = hit ? `${cityText(hit.startText)} · ${hit.rule} (${t(`sev_${hit.severity}`)})`
        : gap ? `${gapText(gap)} (${cityTime(gap.start)} – ${cityTime(gap.end)})`
          : (r.data.events.length ? t("eventsOnTimeline") : "");
    });
  }
  const speed = h("select", { id: "pb-speed", onchange: (e) => rows.forEach((r) => { r.video.playbackRate = +e.target.value; }) },
    SPEEDS.map((x) => h("option", { value: x, selected: x === 1 }, `${x}×`)));
  const progress = h("progress", { id: "export-progress", max: 1, value: 0, hidden: true });
  const links = h("span", { id: "export-links" });
  const controls = h("div", { class: "toolbar" },
    h("button", { id: "pb-play", onclick: () => rows.forEach((r) => (r.video.paused ? r.video.play() : r.video.pause())) }, t("playPause")),
    h("button", { id: "pb-back", onclick: () => rows.forEach((r) => r.player.step(-1)) }, "◀|"),
    h("button", { id: "pb-fwd", onclick: () => rows.forEach((r) => r.player.step(1)) }, "|▶"),
    speed, clock,
    ZOOMS.map(([name], i) => h("button", { class: i === zoom ? "on" : "", "data-zoom": name, onclick: (e) => {
      zoom = i; controls.querySelectorAll("[data-zoom]").forEach((b) => b.classList.toggle("on", b === e.target)); refreshTimelines();
    } }, t(`zoom_${name}`))),
    h("button", { id: "mark-in", onclick: () => { marks.in = master.wall(); redraw(); } }, t("markIn")),
    h("button", { id: "mark-out", onclick: () => { marks.out = master.wall(); redraw(); } }, t("markOut")),
    h("button", { id: "export", onclick: () => startExport(nav, chosen, marks, progress, links, status) }, t("export")),
    progress, links, status);
  const grid = h("div", { class: `wall playback n${rows.length === 1 ? 1 : 4}` },
    rows.map((r) => h("figure", { class: "tile", "data-camera": r.id }, r.video, h("figcaption", {}, h("b", {}, r.id)))));
  const legend = h("div", { id: "pb-legend", class: "legend" },
    ["lgRecorded", "lgOutage", "lgNotRegistered", "lgScheduleOff", "lgInProgress", "lgEvents"]
      .map((key) => h("span", { "data-key": key }, h("i", {}), t(key))));  // colours in style.css (no inline styles: CSP)
  main.replaceChildren(bar, controls, grid, ...rows.map((r) => h("div", { class: "track" }, h("b", {}, r.id), r.canvas, r.gaps, r.events)), legend);
  for (const r of rows) await r.player.open(atMs);
  if (!params.get("paused")) rows.forEach((r) => r.video.play().catch(() => {}));
  await refreshTimelines();
  // Followers keep to the first camera's clock (synchronised playback of up to 4).
  nav.every(500, () => {
    if (!master.origin) return;
    const wall = master.wall();
    for (const r of rows.slice(1)) if (r.player.origin && Math.abs(r.player.wall() - wall) > 300) r.player.seekWall(wall);
    redraw();
  });
}

async function startExport(nav, cameras, marks, progress, links, status) {
  if (!marks.in || !marks.out || marks.out <= marks.in) { status.textContent = t("markFirst"); return; }
  progress.hidden = false; progress.value = 0; links.replaceChildren();
  try {
    let job = await api("POST", "/api/exports", { cameras, from: new Date(marks.in).toISOString(), to: new Date(marks.out).toISOString() });
    while (job.status === "queued" || job.status === "running") {
      await new Promise((ok) => setTimeout(ok, 500));
      job = await nav.get(`/api/exports/${job.id}`);  // stops when the operator leaves; the job goes on
      progress.value = job.progress || 0;
    }
    if (job.status !== "done") throw new Error(job.error || job.status);
    progress.value = 1;
    // Each file with what a court or the police will ask: the interval it really holds (it
    // starts at the keyframe at or before the mark: a lossless copy cannot cut between
    // keyframes), its length and its SHA-256, under a name unique to camera and interval.
    links.replaceChildren(...job.files.map((f) => {
      const early = (marks.in - Date.parse(f.start)) / 1000;
      return h("div", { class: "export-file", "data-camera": f.camera_id },
        h("a", { href: f.url || `/api/exports/${job.id}/files/${f.name}`, download: f.download_name || f.name, class: "download" },
          f.download_name || f.name),
        h("span", { class: "export-times" }, ` ${cityText(f.start)} – ${cityText(f.end)} · ${(+f.duration_s).toFixed(1)} ${t("sec")}`),
        early > 0.05 ? h("span", { class: "export-keyframe" }, ` · ${t("exportKeyframe").replace("{s}", early.toFixed(1))}`) : "",
        h("div", { class: "export-sha" }, `SHA-256: `, h("code", {}, f.sha256)));
    }));
  } catch (e) { if (e.name !== "AbortError") status.textContent = e.message; }
}

// --- map ----------------------------------------------------------------------------------
const STATE_COLOURS = { recording: "#35c46a", reconnecting: "#ffb020", starting: "#ffb020", failed: "#ff5c5c" };

function loadLeaflet() {
  if (window.L) return Promise.resolve(window.L);
  const css = h("link", { rel: "stylesheet", href: "/static/vendor/leaflet/leaflet.css" });
  document.head.append(css);
  return new Promise((ok, fail) => {
    const s = h("script", { src: "/static/vendor/leaflet/leaflet.js" });
    s.onload = () => ok(window.L);
    s.onerror = () => fail(new Error("leaflet.js did not load"));
    document.head.append(s);
  });
}

async function mapView(nav, params) {
  const [cams, L] = await Promise.all([nav.get("/api/cameras"), loadLeaflet()]);
  const placed = cams.filter((c) => c.latitude != null && c.longitude != null);
  const note = h("p", { id: "map-note", class: "muted" });
  const box = h("div", { id: "map" });
  const legend = h("div", { class: "legend" }, Object.entries(STATE_COLOURS).map(([s, c]) => {
    const dot = h("i");
    dot.style.background = c;  // CSSOM, allowed by the console's strict CSP (no inline style attributes)
    return h("span", { "data-state": s }, dot, ` ${said("cs_", s)} `);
  }));
  // "Which cameras see this place?": an address from the city's list, or a click on the map.
  const search = h("input", { id: "near-address", list: "near-addresses", placeholder: t("nearAddress"), size: 32 });
  const choices = h("datalist", { id: "near-addresses" });
  const radius = h("select", { id: "near-radius" }, [50, 100, 150, 300, 500].map((r) =>
    h("option", { value: r, selected: r === 150 }, `${r} ${t("metres")}`)));
  const nearPane = h("section", { id: "near", hidden: true });
  search.addEventListener("input", async () => {
    if (search.value.trim().length < 2) return;
    try {
      const got = await api("GET", `/api/addresses?q=${encodeURIComponent(search.value)}`, undefined, nav.signal);
      choices.replaceChildren(...got.addresses.map((a) => h("option", { value: a.address })));
    } catch { /* typing on: the next answer will do */ }
  });
  const finder = h("form", { id: "near-form", class: "toolbar" }, search, choices, radius,
    h("button", { type: "submit" }, t("nearShow")), h("span", { class: "hint" }, t("nearHint")));
  nav.main().replaceChildren(finder, nearPane, legend, box, note);
  const map = L.map(box, { zoomControl: false, attributionControl: true });
  L.control.zoom({ zoomInTitle: t("zoomIn"), zoomOutTitle: t("zoomOut") }).addTo(map);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');  // the name, not its English motto
  map.on("popupopen", (e) => e.popup.getElement()?.querySelector(".leaflet-popup-close-button")?.setAttribute("aria-label", t("close")));
  nav.onLeave(() => map.remove());
  if (me.map.tile_url) {
    const layer = L.tileLayer(me.map.tile_url, { maxZoom: 19, attribution: me.map.attribution || "" }).addTo(map);
    layer.on("tileerror", () => { note.textContent = t("tilesFailed"); });
  } else {
    note.textContent = t("noTiles");
  }
  const markers = placed.map((c) => {
    const m = L.circleMarker([c.latitude, c.longitude], {
      radius: 9, weight: 2, color: "#000", fillOpacity: 0.9, fillColor: STATE_COLOURS[c.status.state] || "#888",
    }).addTo(map);
    const info = h("div", { class: "popup", "data-camera": c.id }, h("b", {}, c.id), ` ${c.name || ""}`, h("br"),
      said("cs_", c.status.state), c.status.reason ? ` · ${said("rs_", c.status.reason)}` : "",
      can(me, "live.view") ? h("div", {}, h("a", { href: `#/live?camera=${encodeURIComponent(c.id)}` }, t("live"))) : "",
      can(me, "camera.manage") ? viewForm(c) : "");
    m.bindPopup(info);
    m.camera = c;
    return m;
  });
  const wanted = markers.find((m) => m.camera.id === params.get("camera"));  // from an alarm: that camera
  if (wanted) map.setView(wanted.getLatLng(), 17);
  else if (markers.length) map.fitBounds(L.featureGroup(markers).getBounds().pad(0.3), { maxZoom: 16 });
  else map.setView([48.5, 31.2], 6);
  for (const m of markers) {  // the SVG paths exist once the map has a view
    m.getElement()?.setAttribute("data-camera", m.camera.id);
    m.getElement()?.setAttribute("data-state", m.camera.status.state);
  }
  box.dataset.markers = String(markers.length);
  if (wanted) { wanted.openPopup(); box.dataset.centred = wanted.camera.id; }
  for (const c of placed) if (c.view) L.polygon(sector(c), { className: "fov", weight: 1 }).addTo(map);

  let pin = null;
  async function near(query) {
    const p = new URLSearchParams({ ...query, radius_m: radius.value });
    let found;
    try { found = await api("GET", `/api/cameras/near?${p}`, undefined, nav.signal); }
    catch (e) { if (e.name !== "AbortError") nearPane.replaceChildren(h("p", { class: "error" }, e.message)); nearPane.hidden = false; return; }
    const at = [found.point.latitude, found.point.longitude];
    if (pin) pin.remove();
    pin = L.circleMarker(at, { radius: 7, weight: 3, color: "#fff", fillColor: "#ff5c5c", fillOpacity: 1 }).addTo(map);
    map.setView(at, Math.max(map.getZoom(), 17));
    const cams = found.cameras;
    const tiles = can(me, "live.view") ? cams.slice(0, 4).map((c) => tile(nav, c, "sub", () => { location.hash = `#/live?camera=${encodeURIComponent(c.id)}`; })) : [];
    nearPane.replaceChildren(
      h("h3", {}, `${t("nearTitle")}: ${found.point.address || at.map((x) => x.toFixed(5)).join(", ")}`),
      cams.length ? h("ol", { class: "near-list" }, cams.map((c) => h("li", { "data-camera": c.id, "data-sees": c.sees ? "1" : "0" },
        h("b", {}, c.id), ` ${c.name || ""} · ${Math.round(c.distance_m)} ${t("metres")} · `,
        h("span", { class: c.sees ? "ok" : "muted" }, c.sees ? t("nearSees") : t("nearNearby")))))
        : h("p", {}, t("nearNone")),
      tiles.length ? h("div", { class: `wall n${tiles.length === 1 ? 1 : 4} near-wall` }, tiles) : "");
    nearPane.hidden = false;
    nearPane.dataset.point = at.join(",");
  }
  finder.addEventListener("submit", (ev) => { ev.preventDefault(); if (search.value.trim()) near({ address: search.value.trim() }); });
  map.on("click", (e) => near({ lat: e.latlng.lat.toFixed(6), lon: e.latlng.lng.toFixed(6) }));
}

// The field of view, edited where it is drawn (camera.manage): where the camera looks
// (degrees from north, clockwise), how wide, how far; saved at once, the map redrawn.
function viewForm(c) {
  const v = c.view || { direction: 0, angle: 60, range_m: 50 };
  const num = (name, value, max) => h("input", { name, type: "number", min: name === "direction" ? 0 : 1, max, step: 1,
    value: Math.round(value), size: 4, required: true });
  const note = h("span", { class: "error" });
  const form = h("form", { class: "view-form" },
    h("label", {}, `${t("viewDirection")} `, num("direction", v.direction, 359)),
    h("label", {}, `${t("viewAngle")} `, num("angle", v.angle, 360)),
    h("label", {}, `${t("viewRange")} `, num("range_m", v.range_m, 2000)),
    h("button", { type: "submit" }, t("save")), note);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    try {
      await api("PATCH", `/api/cameras/${encodeURIComponent(c.id)}`, { view_direction: +f.get("direction"),
        view_angle: +f.get("angle"), view_range_m: +f.get("range_m") });
      route();
    } catch (e) { note.textContent = e.message; }
  });
  return form;
}

// A camera's field of view as a map polygon (the server's cameras/geo.sector, here to draw).
function sector(c, steps = 16) {
  const R = 6371008.8, rad = Math.PI / 180;
  const dest = (brg, d) => {
    const p1 = c.latitude * rad, l1 = c.longitude * rad, b = brg * rad, a = d / R;
    const p2 = Math.asin(Math.sin(p1) * Math.cos(a) + Math.cos(p1) * Math.sin(a) * Math.cos(b));
    const l2 = l1 + Math.atan2(Math.sin(b) * Math.sin(a) * Math.cos(p1), Math.cos(a) - Math.sin(p1) * Math.sin(p2));
    return [p2 / rad, l2 / rad];
  };
  const v = c.view;
  const pts = v.angle < 360 ? [[c.latitude, c.longitude]] : [];
  for (let i = 0; i <= steps; i++) pts.push(dest(v.direction - v.angle / 2 + (v.angle * i) / steps, v.range_m));
  return pts;
}

// --- health -------------------------------------------------------------------------------
async function healthView(nav) {
  const cams = await nav.get("/api/cameras");
  let storage = null;
  try { storage = await nav.get("/api/system/storage"); } catch { /* not for every role */ }
  const rows = cams.map((c) => fillHealthRow(h("tr", {},
    h("td", {}, c.id), h("td", {}, c.name), h("td", { class: "state" }), h("td", { class: "reason" }),
    h("td", { class: "last-frame" }), h("td", {}), h("td", {}), h("td", {}),
    h("td", { class: "analytics", "data-camera": c.id }, "…")), c));
  const table = h("table", { id: "health" },
    h("thead", {}, h("tr", {}, [t("camera"), t("cameraName"), t("stateCol"), t("reason"), t("lastFrame"), t("fps"), t("bitrate"), t("viewers"), t("analytics")]
      .map((x) => h("th", {}, x)))),
    h("tbody", {}, rows));
  analyticsStatus(nav, table, cams);  // filled in as the answers come
  const parts = [table, h("p", { class: "hint" }, t("autoRefresh"))];
  if (storage) {
    const d = storage.disk;
    const short = storage.days_capacity != null && storage.days_capacity < storage.required_days;
    parts.unshift(h("p", { id: "storage", class: short ? "short" : "" },
      `${t("disk")}: ${t("diskFree")} ${(d.free_bytes / 1e9).toFixed(1)} ${t("ofTotal")} ${(d.total_bytes / 1e9).toFixed(1)} GB · ` +
      `${t("daysLeft")}: ${storage.days_capacity ?? "—"} (≥ ${storage.required_days})`));
  }
  if (can(me, "system.view")) parts.unshift(await systemAlarmList(nav));
  nav.main().replaceChildren(...parts);
  // Refreshed in place while the page is open (a dispatch room leaves it on a screen): the
  // cells change, the table stays, so nothing the operator looks at blinks.
  const refresh = async () => {
    if (nav.signal.aborted) return;
    try {
      const now = await nav.get("/api/cameras");
      for (const c of now) {
        const tr = [...table.tBodies[0].rows].find((r) => r.cells[0].textContent === c.id);
        if (tr) fillHealthRow(tr, c);
      }
      table.dataset.refreshed = Date.now();
      analyticsStatus(nav, table, now);
    } catch { return; }
    setTimeout(refresh, 5000);
  };
  setTimeout(refresh, 5000);
}

// A health row's recorder cells (state and reason worded, last frame in city time), drawn
// and refreshed by the same code.
function fillHealthRow(tr, c) {
  tr.dataset.state = c.status.state;
  tr.cells[2].textContent = said("cs_", c.status.state);
  tr.cells[3].textContent = said("rs_", c.status.reason);
  // The camera's or ffmpeg's own words, for IT: on the English page only (like system alarms).
  tr.cells[3].title = lang === "en" ? c.status.detail || "" : "";
  tr.cells[4].textContent = cityText(c.status.last_segment_end);
  tr.cells[5].textContent = c.status.fps ?? "";
  tr.cells[6].textContent = c.status.bitrate_kbps ?? "";
  tr.cells[7].textContent = c.viewers ?? 0;
  return tr;
}

// System alarms (disk, storage forecast, nodes, archive, webhook, overdue requests): the
// server's kinds worded here in the console's language; its English detail only on the
// English page. A banner under the menu on every page, the list on the health page.
function alarmTitle(a) {
  const key = `sa_${a.kind}`;
  const title = t(key) === key ? t("sa_other") : t(key);
  return [title, a.camera_id ? `${t("sa_camera")} ${a.camera_id}` : "", `${t("sa_node")} ${a.node_name || a.node}`,
    `${t("sa_since")} ${cityText(a.created)}`].filter(Boolean).join(" · ");
}

async function systemAlarmList(nav) {
  const list = await nav.get("/api/system/alarms?active=true");
  return h("section", { id: "system-alarm-list" }, h("h3", {}, t("sysAlarms")),
    list.length ? h("ul", {}, list.map((a) => h("li", { "data-kind": a.kind, "data-severity": a.severity },
      h("span", { class: "kind" }, alarmTitle(a)), lang === "en" ? h("div", { class: "detail" }, a.message) : "")))
      : h("p", {}, t("sysAlarmsNone")));
}

const systemAlarms = {
  timer: null,
  start(me) {
    clearInterval(this.timer);
    if (!can(me, "system.view")) { $("#system-alarms").hidden = true; return; }
    this.refresh();
    this.timer = setInterval(() => this.refresh(), 30000);
  },
  async refresh() {
    const el = $("#system-alarms");
    let list = [];
    try { list = await api("GET", "/api/system/alarms?active=true"); } catch { return; }
    el.hidden = !list.length;
    if (!list.length) return;
    el.dataset.severity = list.some((a) => a.severity === "critical") ? "critical" : "warning";
    el.dataset.count = list.length;
    el.replaceChildren(`⚠ ${t("sysAlarmsActive")}: ${list.length} · ${alarmTitle(list[0])}`,
      h("a", { href: "#/health" }, t("sysAlarmsOpen")));
  },
};

// Each camera's analytics (state, actual/target frame rate, why): one request per camera.
async function analyticsStatus(nav, table, cams) {
  await Promise.all(cams.map(async (c) => {
    const cell = table.querySelector(`td.analytics[data-camera="${CSS.escape(c.id)}"]`);
    if (!cell) return;  // a camera added since the page was drawn
    try {
      const { status } = await nav.get(`/api/cameras/${encodeURIComponent(c.id)}/analytics`);
      cell.dataset.analytics = status ? status.state : "none";
      if (!status) { cell.textContent = t("an_none"); return; }
      const fps = (x) => (x == null ? "–" : (+x).toFixed(1));
      // The rate it really holds beside the rate asked for; when degraded, what the governor
      // allows, how far behind the camera analysis runs, and why (worded here, not by the server).
      const slowed = status.allowed_fps != null && status.allowed_fps < status.target_fps - 1e-6;
      const lagging = status.lag_s != null && status.lag_s > 2;
      cell.textContent = `${t(`an_${status.state}`)} · ${fps(status.actual_fps)}/${fps(status.target_fps)} ${t("fps")}` +
        (status.detect_fps ? ` · ${t("detections")} ${fps(status.detect_fps)}` : "") +
        (slowed ? ` · ${t("an_allowed")} ${fps(status.allowed_fps)}` : "") +
        (lagging ? ` · ${t("an_lag")} ${fps(status.lag_s)}` : "");
      if (status.state === "degraded") {
        cell.append(h("div", { class: "why" }, t(slowed ? "an_why_slowed" : "an_why_behind")));
        cell.title = status.updated || "";
      } else {
        cell.title = [lang === "en" ? status.detail : "", status.updated].filter(Boolean).join(" · ");
      }
    } catch (e) {
      cell.textContent = "";
      cell.title = e.message;
    }
  }));
}

// --- routing ----------------------------------------------------------------------------
async function route() {
  const nav = navigate();  // the previous view stops here, whatever it was waiting for
  try {
    if (!me) {
      try { me = await nav.get("/api/auth/me"); } catch (e) {
        if (nav.signal.aborted) return;
        if (e.status === 403 && e.data?.detail?.code === "oidc_otp") ssoOtpView();  // single sign-on, code due
        else loginView();
        return;
      }
    }
    if (me.stage === "password") return passwordView();
    if (me.stage === "totp_enrol") return await totpView(nav);
    $("#nav").hidden = false;
    chrome();
    $("#who").textContent = `${me.full_name} · ${me.role_title[lang] || me.role} · ` +
      (me.restricted_zone ? t("restricted") : t(me.access));
    alarms.start(me);
    systemAlarms.start(me);
    lockdownBanner.start(me);
    const [path, query] = location.hash.slice(1).split("?");
    if (!path || (path === "/live" && !can(me, "live.view"))) {
      // The role's first page; one that sees no video (the administrator) never meets the
      // live wall. The address says where the user is (hashchange routes again).
      location.replace(`#${homePage(me)}`);
      return;
    }
    const params = new URLSearchParams(query || "");
    for (const a of document.querySelectorAll("#nav a[data-page]")) a.classList.toggle("on", path.split("/")[1] === a.dataset.page);
    if (path === "/health") await healthView(nav);
    else if (path === "/playback") await playbackView(nav, params);
    else if (path === "/map") await mapView(nav, params);
    else if (path === "/nodes") await nodesView(me, nav);
    else if (path === "/lockdown") await lockdownView(me, nav);
    else if (path === "/search") await searchView(me, nav, params, { cityNowMinus, loadLeaflet });
    else if (path === "/placement") await placementView(me, nav, { cityNowMinus, loadLeaflet });
    else if (path === "/events") await eventsView(me, nav.main, params);
    else if (path.startsWith("/events/")) await eventView(me, nav.main, path.slice(8), (ev) => alarms.handled(ev));
    else if (path.startsWith("/admin/")) await adminView(path.slice(7), me, nav.main);
    else if (path === "/evidence" || path.startsWith("/evidence/")) await evidenceView(me, nav.main, path.slice(9), params);
    else await liveView(nav, params);
  } catch (e) {
    if (nav.signal.aborted) return;  // a view the user has left: its late answer or failure is dropped
    if (e.status === 401) { me = null; systemAlarms.start(null); lockdownBanner.start(null); return loginView(e.message); }
    nav.main().replaceChildren(h("p", { class: "error" }, e.message));
  }
}

// Where a role starts: the live wall, else the first page its actions open.
function homePage(me) {
  if (can(me, "live.view")) return "/live";
  if (can(me, "archive.play")) return "/playback";
  if (can(me, "event.view")) return "/events";
  if (["camera.manage", "user.manage", "journal.read"].some((a) => can(me, a))) return `/admin/${adminHome(me)}`;
  return "/health";
}

function adminHome(me) {
  return can(me, "camera.manage") ? "cameras" : can(me, "user.manage") ? "users" : "journal";
}

function chrome() {
  document.title = t("title");
  $("#nav").replaceChildren(
    can(me, "live.view") ? h("a", { href: "#/live", "data-page": "live" }, t("live")) : "",
    me && me.allowed_actions.includes("archive.play") ? h("a", { href: "#/playback", "data-page": "playback" }, t("playback")) : "",
    can(me, "event.view") ? h("a", { href: "#/events", "data-page": "events" }, t("events")) : "",
    can(me, "search.tracks") ? h("a", { href: "#/search", "data-page": "search" }, t("searchNav")) : "",
    evidenceNav(me),  // with the red count of requests overdue or due soon
    h("a", { href: "#/map", "data-page": "map" }, t("map")),
    can(me, "placement.view") || can(me, "placement.review")
      ? h("a", { href: "#/placement", "data-page": "placement" }, t("placementNav")) : "",
    h("a", { href: "#/health", "data-page": "health" }, t("health")),
    can(me, "system.view") ? h("a", { href: "#/nodes", "data-page": "nodes" }, t("nodes")) : "",  // nodes.js
    can(me, "lockdown.manage") ? h("a", { href: "#/lockdown", "data-page": "lockdown" }, t("ldNav")) : "",  // lockdown.js
    me && ["camera.manage", "user.manage", "journal.read"].some((a) => me.allowed_actions.includes(a))
      ? h("a", { href: `#/admin/${adminHome(me)}`, "data-page": "admin" }, t("admin")) : "",
    h("span", { id: "who" }),
    h("button", { id: "lang", onclick: () => { setLang(lang === "uk" ? "en" : "uk"); chrome(); alarms.render(true); route(); } }, lang === "uk" ? "EN" : "УКР"),
    h("button", { id: "logout", onclick: async () => { await api("POST", "/api/auth/logout", {}).catch(() => {}); me = null; systemAlarms.start(null); lockdownBanner.start(null); loginView(); } }, t("signOut")));
}

setLang(lang);
chrome();
window.addEventListener("hashchange", route);
route();
