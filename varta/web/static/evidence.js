// Evidence in the console (issue 6: R7, A4.6–A4.11): the request register with its answer
// deadlines, the hold register and the incident register. Each tab is a filtered list, a
// detail pane with the history, the register as CSV/PDF, and the forms the signed-in role
// may use. The server applies the policy and the order's rules; the console only hides what
// a role may not do and shows the server's reason when it refuses. Times are the city's, as
// the server writes them; times typed in are city time too (the server places them).
import { t } from "./i18n.js";
import { api, cityTimeInput, h } from "./ui.js";
import { can, cityText } from "./alarms.js";

const KINDS = ["police", "court", "third_party", "council_unit"];
const STATES = ["registered", "approved", "refused", "prepared", "transferred", "withdrawn"];
const OFFICES = ["mayor", "first_deputy", "deputy_mayor"];
const TYPES = ["offence", "crime", "traffic_accident", "public_order", "vandalism", "fire", "emergency",
  "missing_person", "other"];
const STATUSES = ["open", "investigating", "closed"];
const PEOPLE = ["faces", "people", "none"];
const WITHDRAWABLE = new Set(["registered", "approved", "prepared"]);
const RED = new Set(["overdue", "due_today", "due_soon"]);  // shown in red (overdue bolder)
const POLL_MS = 500;           // a package or transfer job is read again this often
const DEADLINES_TTL_MS = 30000; // the nav badge's count is read again at most this often
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/;

const TABS = {
  requests: { action: "request.view", label: "requestsTab", filters: ["state", "kind", "open", "q", "from", "to"],
              view: requestsTab },
  holds: { action: "hold.view", label: "holdsTab", filters: ["active", "kind", "camera", "from", "to"], view: holdsTab },
  incidents: { action: "incident.view", label: "incidentsTab", filters: ["status", "type", "camera", "q", "from", "to"],
               view: incidentsTab },
};

export const canEvidence = (me) => Object.values(TABS).some((tab) => can(me, tab.action));

// --- small helpers ----------------------------------------------------------------------------
const opt = (value, text, current) => h("option", { value, selected: String(value) === String(current ?? "") }, text);
const field = (label, input) => h("label", {}, label, input);
const factRow = (k, ...v) => h("tr", {}, h("th", {}, k), h("td", {}, ...v));
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const known = (key, raw) => (t(key) === key ? raw : t(key));  // a translation, else the value as it came

// The server's reason; FastAPI's field errors (a list) as "field: message".
export function errorText(e) {
  const d = e && e.data && e.data.detail;
  if (Array.isArray(d)) return d.map((x) => `${(x.loc || []).slice(1).join(".")}: ${x.msg}`).join("; ");
  return e && e.message ? e.message : String(e);
}

// Today in the city (YYYY-MM-DD), the default date of documents.
function today(me) {
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone: me.timezone, year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(new Date());
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

// A form that reports the server's refusal under itself and cannot be sent twice at once.
function onSubmit(form, error, send) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      await send(new FormData(form));
    } catch (e) {
      error.textContent = errorText(e);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

function go(ctx, hash) {
  if (location.hash === hash) ctx.refresh(); else location.hash = hash;
}

function filterQuery(ctx) {
  const p = new URLSearchParams();
  for (const k of TABS[ctx.tab].filters) {
    const v = ctx.params.get(k);
    if (v) p.set(k, k === "to" && v.length === 10 ? `${v}T23:59:59` : v);  // a "to" date includes that day
  }
  return p;
}

function hashFor(ctx, id = "", extra = {}) {
  const p = new URLSearchParams();
  for (const k of TABS[ctx.tab].filters) if (ctx.params.get(k)) p.set(k, ctx.params.get(k));
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  const qs = p.toString();
  return `#/evidence/${ctx.tab}${id ? `/${encodeURIComponent(id)}` : ""}${qs ? `?${qs}` : ""}`;
}

async function cameras(ctx) {
  if (!ctx.cams) ctx.cams = await api("GET", "/api/cameras").catch(() => []);
  return ctx.cams;
}

// --- the deadlines: a block on top of the Evidence area and a red count on its nav item -----
let deadlineCache = null;  // {login, at, promise}

export function invalidateDeadlines() { deadlineCache = null; }

function loadDeadlines(me, fresh = false) {
  const stale = !deadlineCache || deadlineCache.login !== me.login || Date.now() - deadlineCache.at > DEADLINES_TTL_MS;
  if (fresh || stale) {
    const promise = api("GET", "/api/requests/deadlines");
    deadlineCache = { login: me.login, at: Date.now(), promise };
    promise.then(paintBadge, () => { deadlineCache = null; });
  }
  return deadlineCache.promise;
}

const urgent = (d) => [...d.overdue, ...d.due_today, ...d.due_soon];

function paintBadge(d) {
  const badge = document.getElementById("deadline-badge");
  if (!badge) return;
  const n = urgent(d).length;
  badge.hidden = !n;
  badge.textContent = String(n);
  badge.title = `${t("badgeTitle")}: ${n}`;
  badge.classList.toggle("overdue", d.overdue.length > 0);
}

// The nav item (app.js): shown when the role may see any of the three registers.
export function evidenceNav(me) {
  if (!canEvidence(me)) return "";
  const badge = h("span", { id: "deadline-badge", class: "badge", hidden: true });
  if (can(me, "request.view")) loadDeadlines(me).then(paintBadge).catch(() => {});
  return h("a", { href: "#/evidence", "data-page": "evidence" }, t("evidence"), badge);
}

function dueText(r) {
  if (!r.due_date) return "";
  const left = r.working_days_left;
  let how = `${left} ${t("wdLeft")}`;
  if (r.deadline === "overdue") how = left < 0 ? `${t("dl_overdue")} (${-left} ${t("wdOver")})` : t("dl_overdue");
  else if (r.deadline === "due_today") how = t("dl_due_today");
  else if (r.deadline === null || r.deadline === undefined) how = "";
  return `${t("dueOn")} ${r.due_date}${how ? ` · ${how}` : ""}`;
}

function deadlinesBlock(me) {
  const items = h("div", { class: "items" }, h("span", { class: "muted" }, "…"));
  const box = h("section", { id: "deadlines", class: "deadlines" }, h("b", { class: "head" }, t("deadlines")), items);
  loadDeadlines(me, true).then((d) => fillDeadlines(box, items, d))
    .catch((e) => items.replaceChildren(h("span", { class: "error" }, errorText(e))));
  return box;
}

function fillDeadlines(box, items, d) {
  const list = urgent(d);
  box.dataset.count = String(list.length);
  box.classList.toggle("late", list.length > 0);
  items.replaceChildren(
    ...(list.length ? list.map(deadlineItem) : [h("span", { class: "muted none" }, t("noDeadlines"))]),
    d.on_time.length ? h("span", { class: "muted on-time" }, `${t("dl_on_time")}: ${d.on_time.length}`) : "");
}

function deadlineItem(r) {
  return h("a", { class: `deadline-item red ${r.deadline}`, href: `#/evidence/requests/${r.id}`,
                  "data-number": r.number, "data-deadline": r.deadline },
    h("b", {}, r.number), ` · ${r.requester} · ${dueText(r)}`);
}

// --- the area: tabs, the deadlines, a list and a detail pane --------------------------------
export async function evidenceView(me, main, rest, params) {
  const [tabName = "", id = ""] = rest.split("/").filter(Boolean);
  const allowed = Object.keys(TABS).filter((k) => can(me, TABS[k].action));
  if (!allowed.length) throw new Error(t("evNotAllowed"));
  const tab = allowed.includes(tabName) ? tabName : allowed[0];
  const ctx = { me, tab, id: decodeURIComponent(id), params, list: h("div", { class: "ev-list" }),
                pane: h("div", { class: "ev-pane", id: "ev-pane" }) };
  ctx.refresh = () => evidenceView(me, main, rest, params)  // the same page, read again (after a change)
    .catch((e) => {  // an AbortError: the operator has gone to another page meanwhile (app.js)
      if (e.name !== "AbortError") document.getElementById("ev-pane")?.replaceChildren(h("p", { class: "error" }, errorText(e)));
    });
  const tabs = h("div", { class: "toolbar tabs", id: "evidence-tabs" }, allowed.map((k) =>
    h("a", { href: `#/evidence/${k}`, "data-tab": k, class: k === tab ? "on" : "" }, t(TABS[k].label))));
  main().replaceChildren(h("div", { id: "evidence", "data-tab": tab }, tabs,
    can(me, "request.view") ? deadlinesBlock(me) : "", h("div", { class: "ev-grid" }, ctx.list, ctx.pane)));
  await TABS[tab].view(ctx);
}

function filterBar(ctx, controls) {
  const form = h("form", { class: "inline ev-filter", id: `${ctx.tab}-filter` }, controls,
    h("button", { type: "submit" }, t("search")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) p.set(k, v);
    go(ctx, `#/evidence/${ctx.tab}${p.toString() ? `?${p}` : ""}`);
  });
  form.addEventListener("change", (ev) => {  // a choice applies at once; text waits for Enter
    if (ev.target.tagName === "SELECT" || ev.target.type === "checkbox") form.requestSubmit();
  });
  return form;
}

const dateFilters = (v) => [
  h("label", { class: "muted" }, `${t("from")} `, h("input", { type: "date", name: "from", value: v("from") })),
  h("label", { class: "muted" }, `${t("to")} `, h("input", { type: "date", name: "to", value: v("to") })),
];

function listHead(ctx, controls, newLabel, mayCreate) {
  const q = filterQuery(ctx);
  const file = (fmt) => { const p = new URLSearchParams(q); p.set("format", fmt); return `/api/${ctx.tab}?${p}`; };
  return [filterBar(ctx, controls), h("div", { class: "toolbar" },
    mayCreate ? h("a", { class: "button new", id: `${ctx.tab}-new`, href: hashFor(ctx, "new") }, newLabel) : "",
    h("span", { class: "muted downloads" }, t("downloadRegister"),
      h("a", { class: "download", href: file("csv"), download: "", "data-format": "csv" }, "CSV"),
      h("a", { class: "download", href: file("pdf"), download: "", "data-format": "pdf" }, "PDF")))];
}

function listTable(ctx, headers, items, rowOf) {
  if (!items.length) return h("p", { class: "muted", id: `${ctx.tab}-empty` }, t("noEntries"));
  const rows = items.map((it) => {
    const tr = rowOf(it);
    tr.dataset.id = String(it.id);
    tr.classList.add("ev-row");
    if (String(it.id) === ctx.id || it.number === ctx.id) tr.classList.add("selected");
    tr.addEventListener("click", () => { location.hash = hashFor(ctx, it.id); });
    return tr;
  });
  return h("table", { class: "ev-table", id: `${ctx.tab}-list` },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))), h("tbody", {}, rows));
}

async function fillPane(ctx, { mayCreate, create, detail }) {
  try {
    if (ctx.id === "new" && mayCreate) await create();
    else if (ctx.id && ctx.id !== "new") await detail();
    else ctx.pane.replaceChildren(h("p", { class: "muted" }, t("chooseOne")));
  } catch (e) {
    if (e.status === 401) throw e;
    ctx.pane.replaceChildren(h("p", { class: "error" }, errorText(e)));
  }
}

function historyTable(items = []) {
  return [h("h4", {}, t("evHistory")), h("table", { class: "ev-history" },
    h("thead", {}, h("tr", {}, [t("time"), t("who"), t("action"), t("detail")].map((x) => h("th", {}, x)))),
    h("tbody", {}, items.map((x) => h("tr", { "data-action": x.action },
      h("td", { class: "nowrap" }, cityText(x.time)), h("td", {}, x.full_name || x.account),
      h("td", {}, known(`hist_${x.action.replace(/ /g, "_")}`, x.action)), h("td", { class: "detail" }, detailText(x.detail))))))];
}

// Values of these history fields are codes with a translation (an office, a status, a type).
const CODED = { office: "office_", release_office: "office_", status: "incstatus_", type: "inctype_" };

function detailText(d) {
  if (!d || typeof d !== "object") return d ?? "";
  return Object.entries(d).filter(([, v]) => v !== null && v !== "" && v !== undefined)
    .map(([k, v]) => `${known(`dk_${k}`, k)}: ${valueText(v, CODED[k])}`).join(" · ");
}

function valueText(v, prefix = "") {
  if (v === null || v === undefined) return "—";
  if (Array.isArray(v)) {
    if (v.every(Array.isArray)) return v.map((x) => (x.length === 3 ? `${x[0]} ${valueText(x[1])} – ${valueText(x[2])}` : x.map((y) => valueText(y)).join(" "))).join("; ");
    return v.length === 2 ? `${valueText(v[0], prefix)} → ${valueText(v[1], prefix)}` : v.map((y) => valueText(y, prefix)).join(", ");
  }
  if (typeof v === "object") return JSON.stringify(v);
  if (prefix) return known(`${prefix}${v}`, String(v));
  return typeof v === "string" && ISO_TIME.test(v) ? cityText(v) : String(v);
}

function intervalList(items = []) {
  return h("ul", { class: "ev-intervals" }, items.map((i) =>
    h("li", { "data-camera": i.camera_id }, h("b", {}, i.camera_id), ` ${cityText(i.from)} – ${cityText(i.to)}`)));
}

const camerasOf = (items = []) => [...new Set(items.map((i) => i.camera_id))].join(", ");
const instructionText = (ins) => `№ ${ins.number} ${t("of")} ${ins.date}, ${known(`office_${ins.office}`, ins.office)} ${ins.author}`;

// Camera + interval rows with a camera picker (from /api/cameras).
function intervalRows(cams, preset = []) {
  const box = h("div", { class: "rows" });
  const add = (it = {}) => box.append(intervalRow(cams, it));
  const el = h("fieldset", { class: "ev-interval-rows" }, h("legend", {}, t("items")), box,
    h("button", { type: "button", class: "add-interval", onclick: () => add() }, t("addInterval")));
  (preset.length ? preset : [{}]).forEach(add);
  const value = () => [...box.children].map((row) => ({
    camera_id: row.querySelector(".camera").value.trim(), from: row.querySelector(".from").value,
    to: row.querySelector(".to").value }));
  return { el, value };
}

function intervalRow(cams, it) {
  const camera = cams.length
    ? h("select", { class: "camera", required: true, "aria-label": t("camera") }, opt("", `${t("camera")}…`, it.camera_id || ""),
      cams.map((c) => opt(c.id, `${c.id}${c.name ? ` · ${c.name}` : ""}`, it.camera_id)))
    : h("input", { class: "camera", required: true, value: it.camera_id || "", placeholder: "mel-0012", "aria-label": t("camera") });
  const time = (cls, v) => cityTimeInput({ class: cls, required: true, value: v || "", "aria-label": t(cls) });
  const row = h("div", { class: "interval" }, camera, time("from", it.from), "–", time("to", it.to),
    h("button", { type: "button", class: "remove-interval", title: t("remove"),
                  onclick: () => { if (row.parentNode.children.length > 1) row.remove(); } }, "×"));
  return row;
}

// An incident's cameras and time, for a request or hold made from it.
async function incidentPreset(ctx) {
  const id = ctx.params.get("incident");
  if (!id && ctx.params.get("camera")) {  // from a track found by search (#/search)
    return { items: [{ camera_id: ctx.params.get("camera"), from: ctx.params.get("from"), to: ctx.params.get("to") }] };
  }
  if (!id || !can(ctx.me, "incident.view")) return { id, items: [] };
  const inc = await api("GET", `/api/incidents/${encodeURIComponent(id)}`).catch(() => null);
  if (!inc) return { id, items: [] };
  const at = (s) => (s ? s.slice(0, 19) : "");
  return { id, title: `${inc.number} · ${inc.title}`,
           items: (inc.cameras || []).map((c) => ({ camera_id: c, from: at(inc.from), to: at(inc.to) })) };
}

// --- requests ---------------------------------------------------------------------------------
async function requestsTab(ctx) {
  const v = (k) => ctx.params.get(k) || "";
  const controls = [
    h("select", { name: "state" }, opt("", `${t("stateCol")}: ${t("any")}`, v("state")),
      STATES.map((s) => opt(s, t(`rqstate_${s}`), v("state")))),
    h("select", { name: "kind" }, opt("", `${t("kind")}: ${t("any")}`, v("kind")), KINDS.map((k) => opt(k, t(`rqkind_${k}`), v("kind")))),
    h("label", {}, h("input", { type: "checkbox", name: "open", value: "true", checked: v("open") === "true" }), ` ${t("openOnly")}`),
    h("input", { name: "q", placeholder: t("textSearch"), value: v("q"), size: 14 }),
    ...dateFilters(v),
  ];
  const { requests } = await api("GET", `/api/requests?${filterQuery(ctx)}`);
  const mayCreate = can(ctx.me, "request.register");
  ctx.list.replaceChildren(...listHead(ctx, controls, t("newRequest"), mayCreate),
    listTable(ctx, [t("number"), t("kind"), t("incoming"), t("requester"), t("stateCol"), t("dueOn")], requests, requestRow));
  await fillPane(ctx, { mayCreate, create: () => requestForm(ctx), detail: () => requestDetail(ctx) });
}

function requestRow(r) {
  const red = RED.has(r.deadline);
  return h("tr", { class: `${red ? "red" : ""} ${r.deadline === "overdue" ? "overdue" : ""}`.trim() || null,
                   "data-number": r.number, "data-state": r.state, "data-deadline": r.deadline || "" },
    h("td", {}, h("b", {}, r.number)), h("td", {}, t(`rqkind_${r.kind}`)),
    h("td", {}, `№ ${r.incoming_no} ${t("of")} ${r.incoming_date}`), h("td", {}, r.requester),
    h("td", { class: "state" }, t(`rqstate_${r.state}`)), h("td", { class: "due" }, dueText(r)));
}

async function requestDetail(ctx) {
  const r = await api("GET", `/api/requests/${encodeURIComponent(ctx.id)}`);
  const error = h("p", { class: "error" });
  ctx.pane.replaceChildren(h("article", { id: "request-detail", class: "ev-detail", "data-id": r.id, "data-state": r.state,
                                          "data-deadline": r.deadline || "" },
    h("h3", {}, r.number, " ", h("span", { class: "tag state" }, t(`rqstate_${r.state}`))),
    requestFacts(ctx, r), requestActions(ctx, r, error), error, historyTable(r.history)));
}

function requestFacts(ctx, r) {
  const res = r.resolution;
  return h("table", { class: "ev-facts" },
    factRow(t("kind"), t(`rqkind_${r.kind}`)),
    factRow(t("incoming"), `№ ${r.incoming_no} ${t("of")} ${r.incoming_date}`),
    factRow(t("requester"), r.requester, r.contact ? h("div", { class: "muted" }, r.contact) : ""),
    factRow(t("basis"), r.basis),
    r.purpose ? factRow(t("purpose"), r.purpose) : "",
    factRow(t("items"), intervalList(r.items)),
    r.redaction ? factRow(t("redaction"), redactionText(r.redaction)) : "",
    r.incident_id ? factRow(t("incident"), can(ctx.me, "incident.view")
      ? h("a", { href: `#/evidence/incidents/${r.incident_id}` }, `#${r.incident_id}`) : `#${r.incident_id}`) : "",
    r.hold_id && can(ctx.me, "hold.view") ? factRow(t("hold"), h("a", { href: `#/evidence/holds/${r.hold_id}`, class: "hold-link" }, t("showHold"))) : "",
    factRow(t("registeredAt"), cityText(r.registered), h("span", { class: "muted" }, ` · ${r.registered_by}`)),
    res ? factRow(t("resolution"), h("b", {}, t(`decision_${res.decision}`)), ` ${t("of")} ${res.date} · ${res.name}`,
      h("div", {}, res.text)) : "",
    r.due_date ? factRow(t("dueOn"), h("span", { class: RED.has(r.deadline) ? `red ${r.deadline}` : "" }, dueText(r))) : "",
    r.package ? factRow(t("package"), packageFacts(ctx, r)) : "",
    r.transfer ? factRow(t("transferTo"), transferFacts(ctx, r)) : "",
    r.closed ? factRow(t("closedAt"), cityText(r.closed)) : "");
}

function redactionText(x) {
  return [x.people && x.people !== "none" ? t(`people_${x.people}`) : "", x.plates ? t("plates") : ""].filter(Boolean).join(", ") || "—";
}

function packageFacts(ctx, r) {
  const p = r.package;
  return [h("div", {}, h("b", {}, p.zip || p.name), ` · ${(p.bytes / 1e6).toFixed(1)} MB · ${p.files} ${t("files")}`),
    h("div", { class: "muted mono" }, `SHA-256 ${p.sha256}`),
    h("div", { class: "muted" }, `${t("keyFingerprint")} ${p.fingerprint} · ${cityText(p.built)}`),
    can(ctx.me, "request.prepare") ? h("a", { class: "download", href: `/api/requests/${r.id}/package`, download: "" }, t("downloadZip")) : ""];
}

function transferFacts(ctx, r) {
  const tr = r.transfer;
  const out = [h("div", {}, tr.location || tr.target || "", tr.sse ? h("span", { class: "muted" }, ` · ${t("sse")}: ${tr.sse}`) : "")];
  if (tr.url) {
    const input = h("input", { id: "transfer-link", class: "link", readonly: true, value: tr.url });
    const note = h("span", { class: "ok copy-note" });
    out.push(h("div", { class: "copy-row" }, input,
      h("button", { type: "button", id: "copy-link", onclick: () => copyText(input, note) }, t("copy")), note));
  }
  if (tr.expires) {
    const expired = Date.parse(tr.expires) < Date.now();
    out.push(h("div", { id: "link-expires", class: expired ? "error" : "muted" },
      `${t("expires")} ${cityText(tr.expires)}${expired ? ` (${t("expired")})` : ""}`));
  }
  return out;
}

async function copyText(input, note) {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand("copy");  // where the clipboard API is not offered (plain http)
  }
  note.textContent = t("copied");
}

function requestActions(ctx, r, error) {
  const me = ctx.me;
  return h("div", { class: "ev-actions" },
    can(me, "request.resolve") && r.state === "registered" ? resolveForm(ctx, r, error) : "",
    jobBox(ctx, r, error),
    can(me, "request.transfer") && r.state === "transferred" && r.transfer?.target === "s3"
      ? h("button", { id: "new-link", onclick: () => act(ctx, error, () => api("POST", `/api/requests/${r.id}/link`)) }, t("newLink")) : "",
    can(me, "request.register") && WITHDRAWABLE.has(r.state) ? withdrawForm(ctx, r, error) : "");
}

async function act(ctx, error, call) {
  error.textContent = "";
  try {
    await call();
    invalidateDeadlines();
    await ctx.refresh();
  } catch (e) { error.textContent = errorText(e); }
}

function resolveForm(ctx, r, error) {
  const day = today(ctx.me);
  const radio = (value, checked) => h("label", { class: "choice" },
    h("input", { type: "radio", name: "decision", value, checked }), ` ${t(value)}`);
  const form = h("form", { class: "ev-form", id: "resolve-form" }, h("h4", {}, t("resolution")),
    r.kind === "third_party" && ctx.me.role !== "mayor" ? h("p", { class: "muted" }, t("mayorOnly")) : "",
    h("div", { class: "pair" }, radio("approve", true), radio("refuse", false)),
    field(t("resolutionText"), h("textarea", { name: "text", rows: 2, required: true })),
    field(t("resolutionDate"), h("input", { type: "date", name: "date", value: day, max: day })),
    h("button", { type: "submit" }, t("resolve")));
  onSubmit(form, error, async (f) => {
    await api("POST", `/api/requests/${r.id}/resolve`, { decision: f.get("decision"), text: f.get("text"), date: f.get("date") || null });
    invalidateDeadlines();
    await ctx.refresh();
  });
  return form;
}

function withdrawForm(ctx, r, error) {
  const form = h("form", { class: "inline", id: "withdraw-form" },
    h("input", { name: "reason", required: true, placeholder: t("withdrawReason"), size: 30 }),
    h("button", { type: "submit" }, t("withdraw")));
  onSubmit(form, error, async (f) => {
    await api("POST", `/api/requests/${r.id}/withdraw`, { reason: f.get("reason") });
    invalidateDeadlines();
    await ctx.refresh();
  });
  return h("details", { class: "ev-more" }, h("summary", {}, t("withdraw")), form);
}

// Prepare the package / transfer it: a job with a progress bar, read until it ends.
function jobBox(ctx, r, error) {
  const me = ctx.me;
  const bar = h("progress", { class: "ev-progress", id: "job-progress", max: 1, value: 0, hidden: true });
  const status = h("span", { class: "muted", id: "job-status" });
  const start = async (step, button) => {
    error.textContent = "";
    button.disabled = true;
    try {
      const job = await api("POST", `/api/requests/${r.id}/${step}`);
      if (await follow(job, bar, status)) { invalidateDeadlines(); await ctx.refresh(); }
    } catch (e) {
      error.textContent = errorText(e);
    } finally { button.disabled = false; }
  };
  const button = (id, step, label) => { const b = h("button", { id, onclick: () => start(step, b) }, label); return b; };
  const buttons = [
    can(me, "request.prepare") && ["approved", "prepared"].includes(r.state)
      ? button("prepare", "prepare", r.state === "prepared" ? t("prepareAgain") : t("prepare")) : "",
    can(me, "request.transfer") && r.package && ["prepared", "transferred"].includes(r.state)
      ? button("transfer", "transfer", r.state === "transferred" ? t("transferAgain") : t("transfer")) : "",
  ].filter(Boolean);
  const jobs = r.jobs || [];
  const running = jobs.find((j) => j.status === "queued" || j.status === "running");
  const failed = !running && jobs[0] && jobs[0].status === "failed" ? jobs[0] : null;
  if (running) {
    follow(running, bar, status).then((done) => done && ctx.refresh()).catch((e) => { error.textContent = errorText(e); });
  }
  if (!buttons.length && !running && !failed) return "";
  return h("div", { class: "job-box" }, h("div", { class: "toolbar" }, buttons, status), bar,
    failed ? h("p", { class: "error job-failed" }, `${t(`job_${failed.kind}`)}: ${t("jobFailed")} ${failed.error}`) : "");
}

async function follow(job, bar, status) {
  bar.hidden = false;
  for (;;) {
    bar.value = job.progress || 0;
    status.textContent = `${t(`job_${job.kind}`)} · ${t(`jobstate_${job.status}`)} · ${Math.round((job.progress || 0) * 100)} %`;
    if (job.status === "done") return true;
    if (job.status === "failed") throw new Error(`${t(`job_${job.kind}`)}: ${t("jobFailed")} ${job.error || ""}`);
    await sleep(POLL_MS);
    if (!bar.isConnected) return false;  // the operator went elsewhere; the job goes on on the server
    job = await api("GET", `/api/requests/jobs/${encodeURIComponent(job.id)}`);
  }
}

async function requestForm(ctx) {
  const [cams, preset] = await Promise.all([cameras(ctx), incidentPreset(ctx)]);
  const day = today(ctx.me);
  const error = h("p", { class: "error" });
  const items = intervalRows(cams, preset.items);
  const redaction = h("fieldset", { class: "redaction", hidden: true }, h("legend", {}, t("redaction")),
    h("select", { name: "people" }, PEOPLE.map((p) => opt(p, t(`people_${p}`), "faces"))),
    h("label", {}, h("input", { type: "checkbox", name: "plates", value: "1", checked: true }), ` ${t("plates")}`));
  const kind = h("select", { name: "kind", onchange: (e) => { redaction.hidden = e.target.value !== "third_party"; } },
    KINDS.map((k) => opt(k, t(`rqkind_${k}`), "police")));
  const form = h("form", { class: "ev-form", id: "request-form" }, h("h3", {}, t("newRequest")),
    preset.id ? h("p", { class: "muted" }, `${t("incident")}: ${preset.title || `#${preset.id}`}`) : "",
    field(t("rqKind"), kind),
    h("div", { class: "pair" },
      field(t("incomingNo"), h("input", { name: "incoming_no", required: true })),
      field(t("incomingDate"), h("input", { name: "incoming_date", type: "date", required: true, value: day, max: day }))),
    field(t("requester"), h("input", { name: "requester", required: true })),
    field(t("contact"), h("input", { name: "contact" })),
    field(t("basis"), h("textarea", { name: "basis", rows: 2, required: true })),
    field(t("purpose"), h("textarea", { name: "purpose", rows: 2 })),
    items.el, redaction, h("button", { type: "submit" }, t("registerIt")), error);
  onSubmit(form, error, async (f) => {
    const body = { kind: f.get("kind"), incoming_no: f.get("incoming_no"), incoming_date: f.get("incoming_date"),
                   requester: f.get("requester"), contact: f.get("contact"), basis: f.get("basis"),
                   purpose: f.get("purpose"), items: items.value() };
    if (preset.id) body.incident_id = Number(preset.id);
    if (body.kind === "third_party" && (f.get("people") !== "none" || f.get("plates"))) {
      body.redaction = { people: f.get("people"), plates: f.get("plates") === "1" };
    }
    const req = await api("POST", "/api/requests", body);
    invalidateDeadlines();
    go(ctx, hashFor(ctx, req.id));
  });
  ctx.pane.replaceChildren(form);
}

// --- holds ------------------------------------------------------------------------------------
async function holdsTab(ctx) {
  const v = (k) => ctx.params.get(k) || "";
  const cams = await cameras(ctx);
  const controls = [
    h("select", { name: "active" }, opt("", `${t("stateCol")}: ${t("any")}`, v("active")),
      opt("true", t("holdActive"), v("active")), opt("false", t("holdReleased"), v("active"))),
    h("select", { name: "kind" }, opt("", `${t("kind")}: ${t("any")}`, v("kind")),
      ["instruction", "request"].map((k) => opt(k, t(`holdkind_${k}`), v("kind")))),
    h("select", { name: "camera" }, opt("", t("allCameras"), v("camera")), cams.map((c) => opt(c.id, c.id, v("camera")))),
    ...dateFilters(v),
  ];
  const { holds } = await api("GET", `/api/holds?${filterQuery(ctx)}`);
  const mayCreate = can(ctx.me, "hold.manage");
  ctx.list.replaceChildren(...listHead(ctx, controls, t("placeHold"), mayCreate),
    listTable(ctx, [t("number"), t("kind"), t("instruction"), t("cameras"), t("createdAt"), t("stateCol")], holds, holdRow));
  await fillPane(ctx, { mayCreate, create: () => holdForm(ctx), detail: () => holdDetail(ctx) });
}

function holdRow(x) {
  return h("tr", { "data-number": x.number, "data-active": x.active ? "1" : "0", "data-kind": x.kind },
    h("td", {}, h("b", {}, x.number)), h("td", {}, t(`holdkind_${x.kind}`)),
    h("td", {}, x.instruction ? instructionText(x.instruction) : String(x.reason || "").replace(/^request /, `${t("forRequest")} `)),
    h("td", {}, camerasOf(x.intervals)), h("td", { class: "nowrap" }, cityText(x.created)),
    h("td", { class: "state" }, x.active ? t("holdActive") : t("holdReleased")));
}

async function holdDetail(ctx) {
  const x = await api("GET", `/api/holds/${encodeURIComponent(ctx.id)}`);
  const error = h("p", { class: "error" });
  const mayRelease = can(ctx.me, "hold.manage") && x.active && x.kind === "instruction";
  ctx.pane.replaceChildren(h("article", { id: "hold-detail", class: "ev-detail", "data-id": x.id, "data-active": x.active ? "1" : "0" },
    h("h3", {}, x.number, " ", h("span", { class: "tag state" }, x.active ? t("holdActive") : t("holdReleased"))),
    holdFacts(ctx, x), mayRelease ? releaseForm(ctx, x, error) : "", error, historyTable(x.history)));
}

function holdFacts(ctx, x) {
  return h("table", { class: "ev-facts" },
    factRow(t("kind"), t(`holdkind_${x.kind}`)),
    x.instruction ? factRow(t("instruction"), instructionText(x.instruction)) : "",
    x.reason ? factRow(t("reason"), x.reason) : "",
    x.request_id ? factRow(t("requestsTab"), can(ctx.me, "request.view")
      ? h("a", { href: `#/evidence/requests/${x.request_id}` }, `#${x.request_id}`) : `#${x.request_id}`) : "",
    x.incident_id ? factRow(t("incident"), can(ctx.me, "incident.view")
      ? h("a", { href: `#/evidence/incidents/${x.incident_id}` }, `#${x.incident_id}`) : `#${x.incident_id}`) : "",
    factRow(t("intervals"), intervalList(x.intervals)),
    factRow(t("createdAt"), cityText(x.created), h("span", { class: "muted" }, ` · ${x.created_by}`)),
    x.kind === "request" && x.active ? factRow("", h("span", { class: "muted" }, t("autoHold"))) : "",
    x.released ? factRow(t("releasedAt"), cityText(x.released), h("span", { class: "muted" }, ` · ${x.released_by || ""}`)) : "",
    x.destruction ? factRow(t("destruction"), instructionText(x.destruction)) : "",
    x.release_note ? factRow(t("note"), x.release_note) : "");
}

// The instruction of the mayor, the first deputy or a deputy mayor (A4.6).
function instructionFields(ctx, legend) {
  const day = today(ctx.me);
  return h("fieldset", { class: "instruction" }, h("legend", {}, legend),
    h("div", { class: "pair" },
      field(t("instructionNo"), h("input", { name: "number", required: true, size: 10 })),
      field(t("instructionDate"), h("input", { name: "date", type: "date", required: true, value: day, max: day }))),
    field(t("author"), h("input", { name: "author", required: true })),
    field(t("office"), h("select", { name: "office" }, OFFICES.map((o) => opt(o, t(`office_${o}`), "mayor")))));
}

const instructionOf = (f) => ({ number: f.get("number"), date: f.get("date"), author: f.get("author"), office: f.get("office") });

async function holdForm(ctx) {
  const [cams, preset] = await Promise.all([cameras(ctx), incidentPreset(ctx)]);
  const error = h("p", { class: "error" });
  const items = intervalRows(cams, preset.items);
  const form = h("form", { class: "ev-form", id: "hold-form" }, h("h3", {}, t("placeHold")),
    preset.id ? h("p", { class: "muted" }, `${t("incident")}: ${preset.title || `#${preset.id}`}`) : "",
    instructionFields(ctx, t("instruction")),
    field(t("reason"), h("input", { name: "reason" })),
    items.el, h("button", { type: "submit" }, t("placeHold")), error);
  onSubmit(form, error, async (f) => {
    const body = { instruction: instructionOf(f), reason: f.get("reason"), intervals: items.value() };
    if (preset.id) body.incident_id = Number(preset.id);
    const hold = await api("POST", "/api/holds", body);
    go(ctx, hashFor(ctx, hold.id));
  });
  ctx.pane.replaceChildren(form);
}

function releaseForm(ctx, x, error) {
  const form = h("form", { class: "ev-form", id: "release-form" }, instructionFields(ctx, t("destruction")),
    field(t("note"), h("input", { name: "note" })), h("button", { type: "submit" }, t("releaseHold")));
  onSubmit(form, error, async (f) => {
    await api("POST", `/api/holds/${x.id}/release`, { instruction: instructionOf(f), note: f.get("note") });
    await ctx.refresh();
  });
  return h("details", { class: "ev-more", id: "release" }, h("summary", {}, t("releaseHold")), form);
}

// --- incidents --------------------------------------------------------------------------------
async function incidentsTab(ctx) {
  const v = (k) => ctx.params.get(k) || "";
  const cams = await cameras(ctx);
  const controls = [
    h("select", { name: "status" }, opt("", `${t("status")}: ${t("any")}`, v("status")),
      STATUSES.map((s) => opt(s, t(`incstatus_${s}`), v("status")))),
    h("select", { name: "type" }, opt("", `${t("kind")}: ${t("any")}`, v("type")), TYPES.map((x) => opt(x, t(`inctype_${x}`), v("type")))),
    h("select", { name: "camera" }, opt("", t("allCameras"), v("camera")), cams.map((c) => opt(c.id, c.id, v("camera")))),
    h("input", { name: "q", placeholder: t("textSearch"), value: v("q"), size: 14 }),
    ...dateFilters(v),
  ];
  const { incidents } = await api("GET", `/api/incidents?${filterQuery(ctx)}`);
  const mayCreate = can(ctx.me, "incident.manage");
  ctx.list.replaceChildren(...listHead(ctx, controls, t("newIncident"), mayCreate),
    listTable(ctx, [t("number"), t("kind"), t("incTitle"), t("place"), t("from"), t("status")], incidents, incidentRow));
  await fillPane(ctx, { mayCreate, create: () => incidentForm(ctx), detail: () => incidentDetail(ctx) });
}

function incidentRow(x) {
  return h("tr", { "data-number": x.number, "data-status": x.status },
    h("td", {}, h("b", {}, x.number)), h("td", {}, t(`inctype_${x.type}`)), h("td", {}, x.title),
    h("td", {}, [x.place, (x.cameras || []).join(", ")].filter(Boolean).join(" · ")),
    h("td", { class: "nowrap" }, cityText(x.from)), h("td", { class: "state" }, t(`incstatus_${x.status}`)));
}

async function incidentDetail(ctx) {
  const x = await api("GET", `/api/incidents/${encodeURIComponent(ctx.id)}`);
  const error = h("p", { class: "error" });
  const manage = can(ctx.me, "incident.manage");
  ctx.pane.replaceChildren(h("article", { id: "incident-detail", class: "ev-detail", "data-id": x.id, "data-status": x.status },
    h("h3", {}, x.number, " ", h("span", { class: "tag state" }, t(`incstatus_${x.status}`))),
    incidentFacts(ctx, x), incidentLinks(ctx, x),
    manage ? noteForm(ctx, x, error) : "", manage ? await incidentEdit(ctx, x) : "", error, historyTable(x.history)));
}

function incidentFacts(ctx, x) {
  const evLink = (e) => (can(ctx.me, "event.view")
    ? h("a", { href: `#/events/${e.id}` }, `${cityText(e.start)} ${e.camera_id} · ${e.rule}`) : `${cityText(e.start)} ${e.camera_id} · ${e.rule}`);
  return h("table", { class: "ev-facts" },
    factRow(t("kind"), t(`inctype_${x.type}`)),
    factRow(t("incTitle"), h("b", {}, x.title)),
    x.description ? factRow(t("description"), x.description) : "",
    x.place ? factRow(t("place"), x.place) : "",
    (x.cameras || []).length ? factRow(t("cameras"), x.cameras.join(", ")) : "",
    factRow(t("when"), cityText(x.from), x.to ? ` – ${cityText(x.to)}` : ""),
    factRow(t("createdAt"), cityText(x.created), h("span", { class: "muted" }, ` · ${x.created_by}`)),
    (x.linked_events || []).length ? factRow(t("linkedEvents"), h("ul", { class: "ev-links" }, x.linked_events.map((e) => h("li", {}, evLink(e))))) : "",
    (x.holds || []).length ? factRow(t("holdsTab"), h("ul", { class: "ev-links" }, x.holds.map((hd) => h("li", {},
      h("a", { href: `#/evidence/holds/${hd.id}` }, hd.number), ` · ${hd.active ? t("holdActive") : t("holdReleased")}`)))) : "",
    (x.requests || []).length ? factRow(t("requestsTab"), h("ul", { class: "ev-links" }, x.requests.map((q) => h("li", {},
      h("a", { href: `#/evidence/requests/${q.id}` }, q.number), ` · ${t(`rqstate_${q.state}`)}`)))) : "");
}

// A hold or a request made from this incident (its cameras and time filled in).
function incidentLinks(ctx, x) {
  const p = new URLSearchParams({ incident: String(x.id) });
  const links = [
    can(ctx.me, "hold.manage") ? h("a", { class: "button", id: "hold-from-incident", href: `#/evidence/holds/new?${p}` }, t("holdFromIncident")) : "",
    can(ctx.me, "request.register") ? h("a", { class: "button", id: "request-from-incident", href: `#/evidence/requests/new?${p}` }, t("requestFromIncident")) : "",
  ].filter(Boolean);
  return links.length ? h("div", { class: "toolbar" }, links) : "";
}

function noteForm(ctx, x, error) {
  const form = h("form", { class: "note-form", id: "incident-note" },
    h("input", { name: "text", required: true, placeholder: t("notePlaceholder"), maxlength: 4000 }),
    h("button", { type: "submit" }, t("saveNote")));
  onSubmit(form, error, async (f) => {
    await api("POST", `/api/incidents/${x.id}/notes`, { text: f.get("text") });
    await ctx.refresh();
  });
  return form;
}

function incidentFields(cams, x = {}) {
  const at = (s) => (s ? s.slice(0, 19) : "");
  const listed = new Set(cams.map((c) => c.id));
  const extra = (x.cameras || []).filter((c) => !listed.has(c)).map((c) => ({ id: c }));  // e.g. a removed camera
  return [
    h("div", { class: "pair" },
      field(t("kind"), h("select", { name: "type" }, TYPES.map((k) => opt(k, t(`inctype_${k}`), x.type || "other")))),
      field(t("status"), h("select", { name: "status" }, STATUSES.map((s) => opt(s, t(`incstatus_${s}`), x.status || "open"))))),
    field(t("incTitle"), h("input", { name: "title", required: true, value: x.title || "" })),
    field(t("description"), h("textarea", { name: "description", rows: 3 }, x.description || "")),
    field(t("place"), h("input", { name: "place", value: x.place || "" })),
    field(t("cameras"), h("select", { name: "cameras", multiple: true, size: Math.min(5, Math.max(2, cams.length + extra.length)) },
      [...cams, ...extra].map((c) => h("option", { value: c.id, selected: (x.cameras || []).includes(c.id) },
        `${c.id}${c.name ? ` · ${c.name}` : ""}`)))),
    h("div", { class: "pair" },
      field(t("from"), cityTimeInput({ name: "from", required: true, value: at(x.from) })),
      field(t("to"), cityTimeInput({ name: "to", value: at(x.to) }))),
  ];
}

const incidentBody = (f) => ({ type: f.get("type"), status: f.get("status"), title: f.get("title"),
  description: f.get("description"), place: f.get("place"), cameras: f.getAll("cameras"), from: f.get("from"),
  to: f.get("to") || null });

async function incidentForm(ctx) {
  const cams = await cameras(ctx);
  const error = h("p", { class: "error" });
  // From a track found by search (#/search): its camera and time filled in.
  const p = (k) => ctx.params.get(k) || "";
  const preset = p("camera") ? { cameras: [p("camera")], from: p("from"), to: p("to"), title: p("title") } : {};
  const form = h("form", { class: "ev-form", id: "incident-form" }, h("h3", {}, t("newIncident")),
    incidentFields(cams, preset), h("button", { type: "submit" }, t("registerIt")), error);
  onSubmit(form, error, async (f) => {
    const inc = await api("POST", "/api/incidents", incidentBody(f));
    go(ctx, hashFor(ctx, inc.id));
  });
  ctx.pane.replaceChildren(form);
}

async function incidentEdit(ctx, x) {
  const cams = await cameras(ctx);
  const error = h("p", { class: "error" });
  const form = h("form", { class: "ev-form", id: "incident-edit" }, incidentFields(cams, x),
    h("button", { type: "submit" }, t("save")), error);
  onSubmit(form, error, async (f) => {
    await api("PATCH", `/api/incidents/${x.id}`, incidentBody(f));
    await ctx.refresh();
  });
  return h("details", { class: "ev-more", id: "incident-edit-box" }, h("summary", {}, t("edit")), form);
}
