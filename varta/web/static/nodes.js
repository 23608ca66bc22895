// The cluster's nodes (issue 12, docs/cluster.md): one row per node with its roles, state,
// the cameras it records, the moves towards it, its disk and heartbeat; the active node_down
// alarms above the table; Drain and Resume for the roles allowed to run the system. The page
// is read again every 5 s while it is open (nav.every: it stops when the user leaves). Times
// are the city's, as the server writes them. The server applies the policy; the console only
// hides the buttons a role may not use.
import { lang, t } from "./i18n.js";
import { api, h } from "./ui.js";
import { can } from "./alarms.js";

const REFRESH_MS = 5000;
const STATES = ["active", "draining", "stopping", "down", "stopped"];

// "2026-12-03T11:10:04.819+02:00" (city time, as the server writes it) -> "03.12.2026 11:10:04".
export function cityDateTime(iso) {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d:\d\d:\d\d)/.exec(iso || "");
  return m ? `${m[3]}.${m[2]}.${m[1]} ${m[4]}` : "";
}

const known = (key, raw) => (t(key) === key ? raw : t(key));  // a translation, else the value as it came
const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => String(values[k] ?? ""));
const number = (x, digits = 1) => new Intl.NumberFormat(lang === "uk" ? "uk-UA" : "en-GB",
  { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(x);
const gb = (bytes) => `${number(bytes / 1e9)} ${t("gb")}`;

function rolesCell(node) {
  return h("td", { class: "roles" }, node.roles.map((r) => known(`noderole_${r}`, r)).join(", "));
}

function camerasCell(node, open) {
  const ids = node.cameras || [];
  const count = node.capacity ? `${ids.length} / ${node.capacity}` : `${ids.length}`;
  const title = [ids.join(", "), node.capacity ? `${t("nodeCapacity")}: ${node.capacity}` : "",
    node.analysing?.length ? `${t("nodeAnalysing")}: ${node.analysing.join(", ")}` : ""].filter(Boolean).join("\n");
  const cell = h("td", { class: "cameras", "data-count": ids.length, title });
  if (!ids.length) { cell.append(count); return cell; }
  const details = h("details", { open: open.has(node.id) },
    h("summary", {}, count), h("ul", { class: "node-cameras" }, ids.map((id) => h("li", { "data-camera": id }, id))));
  details.addEventListener("toggle", () => (details.open ? open.add(node.id) : open.delete(node.id)));
  cell.append(details);
  if (node.analysing?.length) cell.append(h("div", { class: "muted" }, `${t("nodeAnalysing")}: ${node.analysing.length}`));
  return cell;
}

function recordingCell(node) {
  const load = node.load || {};
  if (!node.roles.includes("recorder") || load.recording === undefined) return h("td", { class: "recording" }, "—");
  return h("td", { class: "recording", "data-recording": load.recording,
    title: `${t("nodeRecording")}: ${load.recording} / ${load.cameras ?? 0} · ${t("nodeStandby")}: ${load.standby ?? 0}` },
  `${load.recording}`);
}

// Shipping to the archive bucket (issue 13): what waits on this node's disk, and whether the
// store takes it.
function backlogLine(a) {
  if (!a) return null;
  const failing = a.state === "failing";
  return h("div", { class: `backlog${failing ? " short" : ""}`, "data-backlog-s": a.backlog_s,
    "data-backlog-segments": a.backlog_segments, title: failing ? `${t("nodeStoreFailing")}: ${a.error || ""}` : "" },
  `${t("nodeBacklog")}: ${fill(t("nodeBacklogText"), { n: a.backlog_segments,
    mb: number(a.backlog_bytes / 1e6), s: Math.round(a.backlog_s) })}${failing ? ` · ${t("nodeStoreFailing")}` : ""}`);
}

function diskCell(node) {
  const s = (node.load || {}).storage;
  if (!s) return h("td", { class: "disk" }, "—");
  const days = s.days_capacity == null ? "—" : number(s.days_capacity);
  const backlog = backlogLine((node.load || {}).archive);
  return h("td", { class: `disk${s.short ? " short" : ""}`, "data-short": s.short ? "1" : "0",
    title: [`${t("nodeArchive")}: ${gb(s.archive_bytes || 0)}`, `${t("nodePerDay")}: ${gb(s.daily_bytes || 0)}`,
      s.days_capacity == null ? t("nodeNoForecast") : "", s.short ? t("nodeShort") : ""].filter(Boolean).join("\n") },
  h("div", {}, fill(t("nodeFreeOf"), { free: gb(s.disk_free_bytes || 0), total: gb(s.disk_total_bytes || 0) })),
  h("div", { class: "days" }, `${t("nodeDays")}: ${days} (≥ ${s.required_days})`), ...(backlog ? [backlog] : []));
}

function nodeRow(me, node, nodes, open, act) {
  const actions = h("td", { class: "actions" });
  if (can(me, "system.maintain")) {
    if (node.state === "active") {
      actions.append(h("button", { class: "drain", onclick: () => {
        const others = nodes.some((n) => n.id !== node.id && n.state === "active" && n.roles.includes("recorder"));
        const text = fill(t("drainConfirm"), { name: node.name, n: node.cameras.length }) +
          (node.cameras.length && !others ? `\n\n${t("drainNowhere")}` : "");
        if (confirm(text)) act(node, "drain");
      } }, t("drain")));
    } else if (node.state === "draining") {
      actions.append(h("button", { class: "resume", onclick: () => act(node, "resume") }, t("resume")));
    }
  }
  return h("tr", { "data-node": node.name, "data-id": node.id, "data-state": node.state },
    h("td", { class: "name", title: [node.id, node.address, node.groups?.length ? `${t("groups")}: ${node.groups.join(", ")}` : ""]
      .filter(Boolean).join("\n") }, h("b", {}, node.name), h("div", { class: "muted host" }, node.hostname || "")),
    rolesCell(node),
    h("td", { class: "state" }, known(`nodestate_${node.state}`, node.state)),
    camerasCell(node, open),
    recordingCell(node),
    h("td", { class: "moving", "data-moving": node.moving_in || 0 }, `${node.moving_in || 0}`),
    diskCell(node),
    h("td", { class: "version" }, node.version || ""),
    h("td", { class: "heartbeat nowrap", title: `${t("nodeStarted")}: ${cityDateTime(node.started)}` }, cityDateTime(node.heartbeat)),
    actions);
}

function alarmsBlock(alarms, nodes) {
  const down = alarms.filter((a) => a.kind === "node_down");
  const block = h("div", { id: "node-alarms", hidden: !down.length });
  block.append(...down.map((a) => {
    const node = nodes.find((n) => n.id === a.node || n.name === a.node);
    return h("p", { class: "node-alarm", "data-node": node ? node.name : a.node, title: a.message || "" },
      h("b", {}, t("nodeDownTitle")), " ",
      fill(t("nodeDownText"), { name: node ? node.name : a.node, time: cityDateTime(node ? node.heartbeat : a.created) }));
  }));
  return block;
}

function summary(nodes) {
  const by = (s) => nodes.filter((n) => n.state === s).length;
  const parts = [`${t("nodesCount")}: ${nodes.length}`,
    ...STATES.filter((s) => by(s)).map((s) => `${known(`nodestate_${s}`, s)}: ${by(s)}`),
    `${t("nodeCamerasRecorded")}: ${nodes.reduce((k, n) => k + (n.cameras || []).length, 0)}`];
  return parts.join(" · ");
}

export async function nodesView(me, nav) {
  if (!can(me, "system.view")) throw new Error(t("nodesNotAllowed"));
  const open = new Set();  // the nodes whose camera list is unfolded (kept across refreshes)
  const note = h("p", { id: "nodes-note", class: "muted" });
  const error = h("p", { id: "nodes-error", class: "error" });
  const head = h("p", { id: "nodes-summary", class: "muted" });
  let alarmsEl = h("div", { id: "node-alarms", hidden: true });
  const body = h("tbody");
  const table = h("table", { id: "nodes", "data-refreshed": 0 },
    h("thead", {}, h("tr", {}, [t("node"), t("nodeRoles"), t("stateCol"), t("cameras"), t("nodeRecording"),
      t("nodeMovingIn"), t("disk"), t("nodeVersion"), t("nodeHeartbeat"), ""].map((x) => h("th", {}, x)))),
    body);
  let busy = false;
  let again = false;  // asked for while a read was in flight (e.g. after Drain): read once more
  let refreshes = 0;

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const [nodes, alarms] = await Promise.all([nav.get("/api/nodes"),
        nav.get("/api/system/alarms?active=true").catch((e) => { if (e.name === "AbortError") throw e; return []; })]);
      nav.main();  // throws once the user has left: nothing below touches a page that is gone
      const next = alarmsBlock(alarms, nodes);
      alarmsEl.replaceWith(next);
      alarmsEl = next;
      head.textContent = summary(nodes);
      body.replaceChildren(...(nodes.length ? nodes.map((n) => nodeRow(me, n, nodes, open, act))
        : [h("tr", {}, h("td", { colspan: 10 }, t("noNodes")))]));
      table.dataset.refreshed = String(++refreshes);
      error.textContent = "";
    } catch (e) {
      if (e.name !== "AbortError" && !nav.signal.aborted) error.textContent = e.message;
    } finally {
      busy = false;
      if (again && !nav.signal.aborted) { again = false; refresh(); }
    }
  }

  async function act(node, verb) {
    note.textContent = "";
    error.textContent = "";
    try {
      await api("POST", `/api/nodes/${encodeURIComponent(node.id)}/${verb}`, {});
      note.textContent = fill(t(verb === "drain" ? "drained" : "resumed"), { name: node.name });
    } catch (e) {
      if (!nav.signal.aborted) error.textContent = e.message;
      return;
    }
    if (!nav.signal.aborted) await refresh();
  }

  nav.main().replaceChildren(h("div", { id: "nodes-page" }, h("h2", {}, t("nodes")), head, alarmsEl, note, error, table));
  await refresh();
  nav.every(REFRESH_MS, refresh);
}
