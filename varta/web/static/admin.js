// Administration pages: cameras (with their recording schedule), accounts and the access
// journal. Each is shown only to roles whose policy allows it; the server checks anyway.
import { t } from "./i18n.js";
import { api, h } from "./ui.js";

const MODES = ["continuous", "off", "motion", "events"];

export async function adminView(section, me, main) {
  const can = (a) => me.allowed_actions.includes(a);
  const tabs = h("div", { class: "toolbar tabs" },
    can("camera.manage") ? h("a", { href: "#/admin/cameras", class: section === "cameras" ? "on" : "" }, t("cameras")) : "",
    can("user.manage") ? h("a", { href: "#/admin/users", class: section === "users" ? "on" : "" }, t("users")) : "",
    can("journal.read") ? h("a", { href: "#/admin/journal", class: section === "journal" ? "on" : "" }, t("journal")) : "");
  const body = h("div", { id: `admin-${section}` });
  main().replaceChildren(tabs, body);
  if (section === "cameras") return camerasPage(body);
  if (section === "users") return usersPage(body);
  return journalPage(body, can("journal.cabinet"));
}

function message(el, text, ok = false) {
  el.textContent = text;
  el.className = ok ? "ok" : "error";
}

// --- cameras and schedules ----------------------------------------------------------------
async function camerasPage(body) {
  const cams = await api("GET", "/api/cameras");
  const note = h("p", { class: "error" });
  const form = h("form", { id: "camera-form", class: "inline" },
    h("input", { name: "id", placeholder: "mel-0042", required: true }),
    h("input", { name: "url", placeholder: "rtsp://user:pass@10.1.0.42/stream1", required: true, size: 36 }),
    h("input", { name: "name", placeholder: t("name") }),
    h("input", { name: "group", placeholder: t("group") }),
    h("input", { name: "retention_days", type: "number", min: 10, placeholder: "10" }),
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
    return h("tr", { "data-camera": c.id },
      h("td", {}, c.id), h("td", {}, c.name), h("td", {}, c.group), h("td", {}, c.kind), h("td", {}, c.main_url || ""),
      h("td", {}, `${c.retention_days} ${t("days")}`),
      h("td", {}, mode, h("button", { class: "timetable", title: t("timetable"), onclick: async () => {
        // The weekly timetable (R8) as JSON: {"default": mode, "rules": [{"days": [...], "from", "to", "mode"}]}.
        const text = prompt(t("timetable"), JSON.stringify(c.schedule));
        if (text === null) return;
        try { await api("PATCH", `/api/cameras/${c.id}`, { schedule: JSON.parse(text) }); await camerasPage(body); }
        catch (e) { message(note, e.message); }
      } }, "⋯")),
      h("td", {}, c.status.state),
      h("td", {}, h("button", { class: "remove", onclick: async () => {
        if (!confirm(`${t("remove")} ${c.id}?`)) return;
        try { await api("DELETE", `/api/cameras/${c.id}`); await camerasPage(body); } catch (e) { message(note, e.message); }
      } }, t("remove"))));
  });
  body.replaceChildren(form, note, h("table", {},
    h("thead", {}, h("tr", {}, ["ID", t("name"), t("group"), t("kind"), "URL", t("retention"), t("schedule"), t("stateCol"), ""]
      .map((x) => h("th", {}, x)))), h("tbody", {}, rows)));
}

// --- accounts -------------------------------------------------------------------------------
const ROLES = ["mayor", "first_deputy", "deputy_mayor", "department", "contractor", "police", "admin"];

async function usersPage(body) {
  const users = await api("GET", "/api/users");
  const note = h("p", { id: "users-note", class: "error" });
  const form = h("form", { id: "user-form", class: "inline" },
    h("input", { name: "login", placeholder: "shevchenko.o", required: true }),
    h("input", { name: "full_name", placeholder: "Шевченко Олена Петрівна", required: true, size: 28 }),
    h("select", { name: "role" }, ROLES.map((r) => h("option", { value: r }, r))),
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
    h("td", {}, u.login), h("td", {}, u.full_name), h("td", {}, u.role), h("td", {}, u.camera_groups.join(", ")),
    h("td", {}, [u.active ? "" : t("disabled"), u.locked ? t("locked") : "", u.totp_enabled ? "2FA" : ""].filter(Boolean).join(" · ")),
    h("td", {},
      h("button", { class: "toggle", onclick: async () => {
        try { await api("PATCH", `/api/users/${u.login}`, { active: !u.active }); await usersPage(body); } catch (e) { message(note, e.message); }
      } }, u.active ? t("disable") : t("enable")),
      h("button", { onclick: act(u.login, "reset-password", "") }, t("resetPassword")),
      h("button", { onclick: act(u.login, "reset-totp", t("totpReset")) }, t("resetTotp")))));
  body.replaceChildren(form, note, h("table", {},
    h("thead", {}, h("tr", {}, [t("login"), t("name"), t("role"), t("groups"), "", ""].map((x) => h("th", {}, x)))),
    h("tbody", {}, rows)));
}

// --- the access journal --------------------------------------------------------------------
async function journalPage(body, canCabinet) {
  const filters = h("form", { id: "journal-filter", class: "inline" },
    h("input", { name: "from", type: "datetime-local", step: 1 }), h("input", { name: "to", type: "datetime-local", step: 1 }),
    h("input", { name: "account", placeholder: t("login") }), h("input", { name: "action", placeholder: "archive.*" }),
    h("input", { name: "object", placeholder: "camera:mel-0012" }),
    h("select", { name: "access" }, h("option", { value: "" }, "—"), h("option", { value: "direct" }, t("direct")),
      h("option", { value: "remote" }, t("remote"))),
    h("button", { type: "submit" }, t("show")));
  const links = h("span", {});
  const verdict = h("p", { id: "journal-verify" });
  const table = h("table", { id: "journal" });
  const query = () => {
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(filters)) if (v) p.set(k, v);
    return p;
  };
  async function load() {
    const p = query();
    p.set("limit", "500");
    const shown = new URLSearchParams(p); shown.set("order", "newest");  // on screen: the newest first
    const data = await api("GET", `/api/journal?${shown}`);
    const csv = new URLSearchParams(p); csv.set("format", "csv");
    const pdf = new URLSearchParams(p); pdf.set("format", "pdf");
    links.replaceChildren(h("a", { href: `/api/journal?${csv}`, download: "varta-journal.csv", class: "report-link" }, "CSV"), " ",
      h("a", { href: `/api/journal?${pdf}`, download: "varta-journal.pdf", class: "report-link" }, "PDF"));
    table.replaceChildren(
      h("thead", {}, h("tr", {}, ["№", t("time"), t("login"), t("name"), t("role"), t("source"), t("action"), t("object"), t("result"), t("detail")]
        .map((x) => h("th", {}, x)))),
      h("tbody", {}, data.lines.map((l) => h("tr", { "data-result": l.result },
        h("td", {}, l.seq), h("td", {}, l.time.slice(0, 19).replace("T", " ")), h("td", {}, l.account), h("td", {}, l.full_name),
        h("td", {}, l.role), h("td", {}, `${l.source} (${l.access})`), h("td", {}, l.action), h("td", {}, l.object),
        h("td", {}, l.result), h("td", { class: "detail" }, l.detail)))));
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
    h("input", { name: "entered", type: "datetime-local", step: 1, required: true }),
    h("input", { name: "left", type: "datetime-local", step: 1 }),
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
