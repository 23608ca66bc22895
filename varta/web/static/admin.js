// Administration pages: cameras (with their recording schedule), accounts and the access
// journal. Each is shown only to roles whose policy allows it; the server checks anyway.
import { lang, said, t } from "./i18n.js";
import { api, cityTimeInput, h } from "./ui.js";

const MODES = ["continuous", "off", "motion", "events"];

export async function adminView(section, me, main) {
  const can = (a) => me.allowed_actions.includes(a);
  const tabs = h("div", { class: "toolbar tabs" },
    can("camera.manage") ? h("a", { href: "#/admin/cameras", class: section === "cameras" ? "on" : "" }, t("cameras")) : "",
    can("user.manage") ? h("a", { href: "#/admin/users", class: section === "users" ? "on" : "" }, t("users")) : "",
    can("journal.read") ? h("a", { href: "#/admin/journal", class: section === "journal" ? "on" : "" }, t("journal")) : "",
    can("token.manage") ? h("a", { href: "#/admin/subscriptions", class: section.startsWith("subscriptions") ? "on" : "" },
      t("subscriptions")) : "");
  const body = h("div", { id: `admin-${section}` });
  main().replaceChildren(tabs, body);
  if (section === "cameras") return camerasPage(body);
  if (section === "users") return usersPage(body);
  if (section.startsWith("subscriptions")) return subscriptionsPage(body, section.split("/")[1]);
  return journalPage(body, can("journal.cabinet"));
}

function message(el, text, ok = false) {
  el.textContent = text;
  el.className = ok ? "ok" : "error";
}

// --- cameras and schedules ----------------------------------------------------------------
const SENSITIVITY = ["normal", "sensitive"];
async function camerasPage(body) {
  const cams = await api("GET", "/api/cameras");
  const note = h("p", { class: "error" });
  const form = h("form", { id: "camera-form", class: "inline" },
    h("input", { name: "id", placeholder: "mel-0042", required: true }),
    h("input", { name: "url", placeholder: "rtsp://user:pass@10.1.0.42/stream1", required: true, size: 36 }),
    h("input", { name: "name", placeholder: t("name") }),
    h("input", { name: "group", placeholder: t("group") }),
    h("input", { name: "retention_days", type: "number", min: 10, placeholder: "10" }),
    h("select", { name: "sensitivity", "aria-label": t("sensitivity") }, SENSITIVITY.map((s) => h("option", { value: s }, t(`sens_${s}`)))),
    h("button", { type: "submit" }, t("add")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData(form));
    if (!f.retention_days) delete f.retention_days; else f.retention_days = +f.retention_days;
    try { await api("POST", "/api/cameras", f); await camerasPage(body); } catch (e) { message(note, e.message); }
  });
  const rows = cams.map((c) => {
    const mode = h("select", { class: "mode", onchange: async (e) => {
      try { await api("PATCH", `/api/cameras/${c.id}`, { schedule: e.target.value }); message(note, `${c.id}: ${e.target.value}`, true); }
      catch (err) { message(note, err.message); }
    } }, MODES.map((m) => h("option", { value: m, selected: c.schedule?.default === m }, t(`mode_${m}`))));
    // Sensitive: views of critical infrastructure, checkpoints; a lockdown shuts their remote views.
    const sens = h("select", { class: "sensitivity", "aria-label": t("sensitivity"), onchange: async (e) => {
      try { await api("PATCH", `/api/cameras/${c.id}`, { sensitivity: e.target.value }); message(note, `${c.id}: ${t(`sens_${e.target.value}`)}`, true); }
      catch (err) { message(note, err.message); }
    } }, SENSITIVITY.map((s) => h("option", { value: s, selected: (c.sensitivity || "normal") === s }, t(`sens_${s}`))));
    return h("tr", { "data-camera": c.id },
      h("td", {}, c.id), h("td", {}, c.name), h("td", {}, c.group), h("td", {}, said("ck_", c.kind)), h("td", {}, c.main_url || ""),
      h("td", {}, `${c.retention_days} ${t("days")}`), h("td", {}, sens),
      h("td", {}, mode, " ", h("button", { class: "timetable", type: "button", onclick: () => {
        editor.replaceChildren(timetableEditor(c, async () => camerasPage(body), () => editor.replaceChildren()));
        editor.scrollIntoView({ block: "nearest" });
      } }, `${t("timetable")}…`), c.schedule?.rules?.length ? h("span", { class: "muted" }, ` (${c.schedule.rules.length})`) : ""),
      h("td", { "data-state": c.status.state }, said("cs_", c.status.state)),
      h("td", {}, h("button", { class: "remove", onclick: async () => {
        if (!confirm(`${t("remove")} ${c.id}?`)) return;
        try { await api("DELETE", `/api/cameras/${c.id}`); await camerasPage(body); } catch (e) { message(note, e.message); }
      } }, t("remove"))));
  });
  const editor = h("div", { id: "timetable-slot" });
  body.replaceChildren(form, onvifAdder(() => camerasPage(body)), note, editor, h("table", {},
    h("thead", {}, h("tr", {}, ["ID", t("name"), t("group"), t("kind"), "URL", t("retention"), t("sensitivity"), t("schedule"), t("stateCol"), ""]
      .map((x) => h("th", {}, x)))), h("tbody", {}, rows)));
}

// "Add cameras" by ONVIF (/api/onvif): discover the devices on the camera networks (a
// multicast probe and directed probes to the ranges typed), tick those to add, give the
// credentials once; each is added from its profiles (main and sub stream) or says why not.
function onvifAdder(reload) {
  const ranges = h("input", { name: "ranges", placeholder: "10.20.0.0/24", size: 24, id: "onvif-ranges" });
  const user = h("input", { name: "user", placeholder: t("onvifUser"), size: 10, id: "onvif-user", autocomplete: "off" });
  const password = h("input", { name: "password", type: "password", placeholder: t("password"), size: 10, id: "onvif-password", autocomplete: "new-password" });
  const prefix = h("input", { name: "prefix", placeholder: t("onvifPrefix"), title: t("onvifPrefix"), size: 6, value: "cam-", id: "onvif-prefix" });
  const group = h("input", { name: "group", placeholder: t("group"), size: 10, id: "onvif-group" });
  const note = h("span", { class: "muted", id: "onvif-note" });
  const list = h("div", { id: "onvif-found" });
  const discover = h("button", { type: "button", id: "onvif-discover" }, t("onvifDiscover"));
  discover.addEventListener("click", async () => {
    note.textContent = t("onvifSearching");
    note.className = "muted";
    try {
      const got = await api("POST", "/api/onvif/discover", { ranges: ranges.value.split(/[\s,;]+/).filter(Boolean),
        user: user.value, password: password.value });
      note.textContent = `${t("onvifFound")}: ${got.devices.length}`;
      let n = 0;
      const rows = got.devices.map((d) => {
        n += 1;
        const tick = h("input", { type: "checkbox", class: "onvif-pick", checked: !d.registered, disabled: !!d.registered });
        const id = h("input", { class: "onvif-id", size: 12, value: d.registered || `${prefix.value}${String(n).padStart(3, "0")}` });
        return h("tr", { "data-xaddr": d.xaddr }, h("td", {}, tick), h("td", {}, id), h("td", {}, d.address),
          h("td", {}, [d.manufacturer, d.model].filter(Boolean).join(" ") || d.name || "—"), h("td", {}, d.firmware || "—"),
          h("td", {}, d.serial || "—"), h("td", {}, d.registered ? `${t("onvifRegistered")}: ${d.registered}` : (d.error || t("onvifNew"))));
      });
      const add = h("button", { type: "button", id: "onvif-add" }, t("onvifAdd"));
      add.addEventListener("click", async () => {
        const devices = [...list.querySelectorAll("tr[data-xaddr]")].filter((r) => r.querySelector(".onvif-pick:checked"))
          .map((r) => ({ xaddr: r.dataset.xaddr, id: r.querySelector(".onvif-id").value.trim() }));
        if (!devices.length) return;
        try {
          const res = await api("POST", "/api/onvif/cameras/bulk", { user: user.value, password: password.value, group: group.value, devices });
          const failed = res.results.filter((r) => !r.added);
          note.textContent = `${t("onvifAdded")}: ${res.added}` + (failed.length ? ` · ${failed.map((f) => `${f.id}: ${f.error}`).join("; ")}` : "");
          note.className = failed.length ? "error" : "ok";
          if (res.added) setTimeout(reload, 800);
        } catch (e) { note.textContent = e.message; note.className = "error"; }
      });
      list.replaceChildren(h("table", {}, h("thead", {}, h("tr", {}, ["", "ID", t("onvifAddress"), t("onvifModel"),
        t("onvifFirmware"), t("onvifSerial"), ""].map((x) => h("th", {}, x)))), h("tbody", {}, rows)), add);
    } catch (e) { note.textContent = e.message; note.className = "error"; }
  });
  return h("details", { id: "onvif-adder" }, h("summary", {}, t("onvifTitle")),
    h("p", { class: "hint" }, t("onvifHint")),
    h("div", { class: "toolbar" }, ranges, user, password, prefix, group, discover, note), list);
}

// --- subscriptions of outside systems and their delivery log (docs/police-exchange.md) ------
async function subscriptionsPage(body, open) {
  const { subscriptions } = await api("GET", "/api/subscriptions");
  const rows = subscriptions.map((s) => h("tr", { "data-id": s.id, "data-active": s.active ? "1" : "0", class: String(s.id) === open ? "on" : "" },
    h("td", {}, h("a", { href: `#/admin/subscriptions/${s.id}` }, `#${s.id}`)), h("td", {}, s.owner),
    h("td", {}, t(`subkind_${s.kind}`)), h("td", {}, s.url), h("td", {}, s.created.slice(0, 19).replace("T", " ")),
    h("td", {}, s.active ? t("subActive") : t("subCancelled")),
    h("td", { class: "counts" }, ["pending", "delivered", "dead"].map((k) => `${t(`dl_${k}`)}: ${s.deliveries[k]}`).join(" · "))));
  const parts = [h("p", { class: "hint" }, t("subHint")), h("table", { id: "subscriptions" },
    h("thead", {}, h("tr", {}, ["№", t("login"), t("kind"), t("subUrl"), t("created"), t("status"), t("subDeliveries")].map((x) => h("th", {}, x)))),
    h("tbody", {}, rows))];
  if (open) {
    const log = await api("GET", `/api/subscriptions/${encodeURIComponent(open)}/deliveries`);
    parts.push(h("h3", {}, `${t("subLog")} #${open}`), h("table", { id: "deliveries" },
      h("thead", {}, h("tr", {}, [t("time"), t("subEvent"), t("status"), t("subAttempts"), t("subAnswer")].map((x) => h("th", {}, x)))),
      h("tbody", {}, log.deliveries.map((d) => h("tr", { "data-state": d.state },
        h("td", {}, d.created.slice(0, 19).replace("T", " ")), h("td", {}, `${t(`ev_${d.event_type}`)} · ${d.event_id}`),
        h("td", {}, t(`dl_${d.state}`)), h("td", {}, d.attempts),
        h("td", {}, d.last_status ? `HTTP ${d.last_status}` : d.state === "withheld" ? t("dlWithheldWhy") : d.last_error ? t("dlNoAnswer") : ""))))));
  }
  body.replaceChildren(...parts);
}

// --- the weekly timetable (R8) ---------------------------------------------------------------
// {"default": mode, "rules": [{"days": ["mon", ...], "from": "HH:MM", "to": "HH:MM", "mode"}]}:
// the default mode, and rules of which the last that covers a moment wins; a rule whose
// "to" is before its "from" runs past midnight into the next day (varta/cameras/schedule.py).
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const HHMM = "([01]\\d|2[0-3]):[0-5]\\d|24:00";
const SLOTS = 48;  // half-hours in the preview

const minutes = (hhmm) => { const [h, m] = hhmm.split(":").map(Number); return h * 60 + m; };

// The mode in force on day d (0 = Monday) at minute m of the day: the server's rule, here
// for the preview (the server decides; this only shows what it will decide).
export function modeAt(schedule, d, m) {
  let mode = schedule.default;
  for (const r of schedule.rules) {
    const start = minutes(r.from), end = minutes(r.to);
    const on = (day) => r.days.includes(DAYS[(day + 7) % 7]);
    const covers = start <= end ? on(d) && m >= start && m < end : (on(d) && m >= start) || (on(d - 1) && m < end);
    if (covers) mode = r.mode;
  }
  return mode;
}

function timetableEditor(cam, saved, close) {
  const base = cam.schedule && typeof cam.schedule === "object" ? cam.schedule : { default: cam.schedule || "continuous", rules: [] };
  const modeSelect = (value, cls) => h("select", { class: cls }, MODES.map((m) => h("option", { value: m, selected: m === value }, t(`mode_${m}`))));
  const def = modeSelect(base.default || "continuous", "default-mode");
  const rules = h("div", { class: "tt-rules" });
  const note = h("p", { class: "error" });
  const grid = h("table", { class: "tt-grid" });
  const ruleRow = (r) => {
    const row = h("div", { class: "tt-rule" },
      DAYS.map((d) => h("label", { class: "day" }, h("input", { type: "checkbox", value: d, checked: r.days.includes(d) }), t(`day_${d}`))),
      h("input", { class: "from", value: r.from, pattern: HHMM, size: 5, placeholder: t("hhmm"), "aria-label": t("from") }), "–",
      h("input", { class: "to", value: r.to, pattern: HHMM, size: 5, placeholder: t("hhmm"), "aria-label": t("to") }),
      modeSelect(r.mode, "mode"),
      h("button", { type: "button", class: "remove-rule", title: t("remove"), onclick: () => { row.remove(); draw(); } }, "×"));
    row.addEventListener("input", draw);
    row.addEventListener("change", draw);
    return row;
  };
  const read = () => ({
    default: def.value,
    rules: [...rules.children].map((row) => ({
      days: [...row.querySelectorAll(".day input:checked")].map((i) => i.value),
      from: row.querySelector(".from").value.trim(), to: row.querySelector(".to").value.trim(),
      mode: row.querySelector("select.mode").value,
    })),
  });
  const valid = (s) => s.rules.every((r) => r.days.length && new RegExp(`^(${HHMM})$`).test(r.from) && new RegExp(`^(${HHMM})$`).test(r.to));
  function draw() {
    const s = read();
    if (!valid(s)) return;  // half-typed: keep the last picture
    grid.replaceChildren(
      h("thead", {}, h("tr", {}, h("th", {}), Array.from({ length: 24 }, (_, hr) => h("th", { colspan: 2 }, hr % 3 ? "" : String(hr).padStart(2, "0"))))),
      h("tbody", {}, DAYS.map((d, di) => h("tr", { "data-day": d }, h("th", {}, t(`day_${d}`)),
        Array.from({ length: SLOTS }, (_, i) => { const m = modeAt(s, di, i * 30); return h("td", { class: `m-${m}`, "data-mode": m }); })))));
  }
  def.addEventListener("change", draw);
  for (const r of base.rules || []) rules.append(ruleRow(r));
  const form = h("form", { id: "timetable", class: "card", "data-camera": cam.id },
    h("h3", {}, `${t("timetable")}: ${cam.id}${cam.name ? ` · ${cam.name}` : ""}`),
    h("label", {}, `${t("ttDefault")} `, def),
    h("p", { class: "hint" }, t("ttHint")), rules,
    h("button", { type: "button", class: "add-rule", onclick: () => {
      rules.append(ruleRow({ days: ["mon", "tue", "wed", "thu", "fri"], from: "22:00", to: "06:00", mode: "motion" })); draw();
    } }, t("ttAddRule")),
    grid,
    h("div", { class: "legend" }, MODES.map((m) => h("span", {}, h("i", { class: `m-${m}` }), ` ${t(`mode_${m}`)} `))),
    h("div", { class: "toolbar" }, h("button", { type: "submit" }, t("save")), h("button", { type: "button", class: "cancel", onclick: close }, t("cancel"))), note);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const s = read();
    if (!valid(s)) { message(note, t("ttInvalid")); return; }
    try { await api("PATCH", `/api/cameras/${encodeURIComponent(cam.id)}`, { schedule: s }); await saved(); }
    catch (e) { message(note, e.message); }
  });
  draw();
  return form;
}

// --- accounts -------------------------------------------------------------------------------
const ROLES = ["mayor", "first_deputy", "deputy_mayor", "department", "contractor", "police", "admin"];

async function usersPage(body) {
  const users = await api("GET", "/api/users");
  const note = h("p", { id: "users-note", class: "error" });
  const form = h("form", { id: "user-form", class: "inline" },
    h("input", { name: "login", placeholder: "shevchenko.o", required: true }),
    h("input", { name: "full_name", placeholder: "Шевченко Олена Петрівна", required: true, size: 28 }),
    h("select", { name: "role" }, ROLES.map((r) => h("option", { value: r }, t(`role_${r}`)))),
    h("input", { name: "position", placeholder: t("position") }),
    h("input", { name: "organisation", placeholder: t("organisation") }),
    h("input", { name: "camera_groups", placeholder: t("groupsComma") }),
    h("button", { type: "submit" }, t("add")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData(form));
    f.camera_groups = f.camera_groups ? f.camera_groups.split(",").map((x) => x.trim()).filter(Boolean) : [];
    try {
      const u = await api("POST", "/api/users", f);
      await usersPage(body);
      message(document.getElementById("users-note"), `${u.login}: ${t("oneTimePassword")} ${u.one_time_password}`, true);
    } catch (e) { message(note, e.message); }
  });
  const act = (login, path, text) => async () => {
    try {
      const r = await api("POST", `/api/users/${login}/${path}`);
      message(note, r.one_time_password ? `${login}: ${t("oneTimePassword")} ${r.one_time_password}` : `${login}: ${text}`, true);
    } catch (e) { message(note, e.message); }
  };
  const rows = users.map((u) => h("tr", { "data-login": u.login },
    h("td", {}, u.login), h("td", {}, u.full_name), h("td", { "data-role": u.role }, t(`role_${u.role}`)), h("td", {}, u.camera_groups.join(", ")),
    h("td", {}, [u.active ? "" : t("disabled"), u.locked ? t("locked") : "", u.totp_enabled ? "2FA" : ""].filter(Boolean).join(" · ")),
    h("td", {},
      h("button", { class: "toggle", onclick: async () => {
        try { await api("PATCH", `/api/users/${u.login}`, { active: !u.active }); await usersPage(body); } catch (e) { message(note, e.message); }
      } }, u.active ? t("disable") : t("enable")),
      h("button", { onclick: act(u.login, "reset-password", "") }, t("resetPassword")),
      h("button", { onclick: act(u.login, "reset-totp", t("totpReset")) }, t("resetTotp")))));
  const editor = h("div", { id: "timetable-slot" });
  body.replaceChildren(form, note, editor, h("table", {},
    h("thead", {}, h("tr", {}, [t("login"), t("name"), t("role"), t("groups"), "", ""].map((x) => h("th", {}, x)))),
    h("tbody", {}, rows)));
}

// --- the access journal --------------------------------------------------------------------
async function journalPage(body, canCabinet) {
  const filters = h("form", { id: "journal-filter", class: "inline" },
    cityTimeInput({ name: "from", placeholder: `${t("from")}: ${t("timeFormat")}` }),
    cityTimeInput({ name: "to", placeholder: `${t("to")}: ${t("timeFormat")}` }),
    h("input", { name: "account", placeholder: t("login") }), h("select", { name: "action" }, h("option", { value: "" }, t("allActions"))),
    h("input", { name: "camera", placeholder: t("camera") }),
    h("select", { name: "access" }, h("option", { value: "" }, "—"), h("option", { value: "direct" }, t("direct")),
      h("option", { value: "remote" }, t("remote"))),
    h("button", { type: "submit" }, t("show")));
  const links = h("span", {});
  const verdict = h("p", { id: "journal-verify" });
  const table = h("table", { id: "journal" });
  const query = () => {
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(filters)) if (v) p.set(k === "camera" ? "object" : k, k === "camera" ? `camera:${v}` : v);
    return p;
  };
  async function load() {
    const p = query();
    p.set("limit", "500");
    const shown = new URLSearchParams(p); shown.set("order", "newest");  // on screen: the newest first
    shown.set("lang", lang);  // each line as read in the console's language (the stored words stay)
    const data = await api("GET", `/api/journal?${shown}`);
    const pick = filters.elements.action;
    if (pick.options.length === 1) {
      for (const [code, name] of Object.entries(data.actions)) pick.append(h("option", { value: code }, name));
      pick.value = p.get("action") || "";
    }
    const csv = new URLSearchParams(p); csv.set("format", "csv");
    const pdf = new URLSearchParams(p); pdf.set("format", "pdf");
    links.replaceChildren(h("a", { href: `/api/journal?${csv}`, download: "varta-journal.csv", class: "report-link" }, "CSV"), " ",
      h("a", { href: `/api/journal?${pdf}`, download: "varta-journal.pdf", class: "report-link" }, "PDF"));
    table.replaceChildren(
      h("thead", {}, h("tr", {}, ["№", t("time"), t("login"), t("name"), t("role"), t("source"), t("action"), t("object"), t("result"), t("detail")]
        .map((x) => h("th", {}, x)))),
      h("tbody", {}, data.lines.map((l) => h("tr", { "data-result": l.result, "data-action": l.action },
        h("td", {}, l.seq), h("td", {}, l.time.slice(0, 19).replace("T", " ")), h("td", {}, l.shown.account),
        h("td", {}, l.shown.full_name), h("td", {}, l.shown.role), h("td", {}, `${l.shown.source} (${l.shown.access})`),
        h("td", {}, l.shown.action), h("td", {}, l.shown.object), h("td", {}, l.shown.result),
        h("td", { class: "detail" }, l.shown.detail)))));
  }
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  const verify = h("button", { id: "verify", onclick: async () => {
    const v = await api("GET", "/api/journal/verify");
    message(verdict, v.ok ? `${t("journalIntact")}: ${v.lines}` : `${t("journalBroken")} ${v.first_bad_line}: ${v.problems[0]}`, v.ok);
  } }, t("verify"));
  const parts = [filters, h("div", { class: "toolbar" }, verify, links), verdict];
  if (canCabinet) parts.push(cabinetForm(load));
  body.replaceChildren(...parts, table);
  await load();
}

function cabinetForm(reload) {
  const note = h("span", {});
  const form = h("form", { id: "cabinet-form", class: "inline" },
    h("b", {}, t("cabinet")),
    h("input", { name: "person", placeholder: t("person"), required: true }),
    h("input", { name: "organisation", placeholder: t("organisation") }),
    h("input", { name: "purpose", placeholder: t("purpose"), required: true }),
    h("input", { name: "let_in_by", placeholder: t("letInBy"), required: true }),
    cityTimeInput({ name: "entered", required: true, placeholder: `${t("entered")}: ${t("timeFormat")}` }),
    cityTimeInput({ name: "left", placeholder: `${t("left")}: ${t("timeFormat")}` }),
    h("button", { type: "submit" }, t("save")), note);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData(form));
    if (!f.left) delete f.left;
    try { const r = await api("POST", "/api/journal/cabinet", f); message(note, `№ ${r.seq}`, true); form.reset(); reload(); }
    catch (e) { message(note, e.message); }
  });
  return form;
}
