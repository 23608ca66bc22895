// Lockdown (varta/lockdown; issue 19): the red banner every signed-in person sees while one
// is in force, and the page where the mayor or the Responsible Department asks for a move
// and another named person confirms it (the two-person rule; the server's shell needs none).
import { t } from "./i18n.js";
import { api, h, $ } from "./ui.js";
import { can } from "./alarms.js";
import { cityDateTime } from "./nodes.js";

const scopeText = (s) => t(s === "all" ? "ldScopeAll" : "ldScopeSensitive");
// A move typed on the server is journaled as "os:<user>": shown as the server's console.
const person = (login) => (login && login.startsWith("os:") ? `${t("ldConsole")} (${login.slice(3)})` : login);

export const lockdownBanner = {
  timer: null,
  me: null,
  start(me) {
    clearInterval(this.timer);
    this.me = me;
    if (!me) { $("#lockdown").hidden = true; return; }
    this.refresh();
    this.timer = setInterval(() => this.refresh(), 3000);
  },
  async refresh() {
    const el = $("#lockdown");
    let st;
    try { st = await api("GET", "/api/lockdown"); } catch { return; }
    const pending = (st.pending || []).length;
    el.hidden = !st.active && !pending;
    el.dataset.active = st.active ? "yes" : "no";
    const parts = [];
    if (st.active) {
      parts.push(`🔒 ${t("ldActive")}: ${scopeText(st.scope)} · ${t("ldSince")} ${cityDateTime(st.since)} · ` +
        `${t("ldBy")} ${person(st.started_by)}${st.confirmed_by ? `, ${t("ldConfirmedBy")} ${st.confirmed_by}` : ""} · ${st.reason}`);
    }
    if (pending) parts.push(` · ${t("ldPending")}: ${pending}`);
    el.replaceChildren(...parts,
      can(this.me, "lockdown.manage") ? h("a", { href: "#/lockdown" }, t("ldOpen")) : "");
  },
};

export async function lockdownView(me, nav) {
  const main = nav.main();
  const st = await nav.get("/api/lockdown");
  const say = h("p", { id: "ld-note", role: "status" });
  const fail = (e) => { say.textContent = e.message; say.className = "error"; };
  const reload = () => lockdownView(me, nav);
  const reason = h("textarea", { id: "ld-reason", rows: 2, cols: 60, required: true, "aria-label": t("ldReason"),
                                  placeholder: t("ldReasonHint") });
  const scope = h("select", { id: "ld-scope", "aria-label": t("ldScope") },
    h("option", { value: "sensitive" }, t("ldScopeSensitive")), h("option", { value: "all" }, t("ldScopeAll")));
  const ask = async (move) => {
    try {
      await api("POST", "/api/lockdown/requests", { move, scope: move === "on" ? scope.value : null, reason: reason.value });
      lockdownBanner.refresh();
      reload();
    } catch (e) { fail(e); }
  };
  const decide = async (id, what) => {
    try { await api("POST", `/api/lockdown/requests/${id}/${what}`, {}); lockdownBanner.refresh(); reload(); } catch (e) { fail(e); }
  };
  const state = st.active
    ? h("p", { id: "ld-state", "data-active": "yes" }, `🔒 ${t("ldActive")}: ${scopeText(st.scope)} · ${t("ldSince")} ` +
        `${cityDateTime(st.since)} · ${t("ldBy")} ${person(st.started_by)}` +
        (st.confirmed_by ? `, ${t("ldConfirmedBy")} ${st.confirmed_by}` : "") + ` · ${st.reason}`)
    : h("p", { id: "ld-state", "data-active": "no" }, t("ldNone"));
  const pending = (st.pending || []).map((r) => h("li", { "data-request": r.id },
    `${r.move === "on" ? `${t("ldAskOn")} (${scopeText(r.scope)})` : t("ldAskOff")} · ${t("ldAskedBy")} ${r.requested_name || r.requested_by} · ` +
    `${cityDateTime(r.requested)} · ${r.reason} · ${t("ldExpires")} ${cityDateTime(r.expires)} `,
    r.requested_by === me.login
      ? h("button", { type: "button", class: "ld-withdraw", onclick: () => decide(r.id, "withdraw") }, t("ldWithdraw"))
      : [h("button", { type: "button", class: "ld-confirm", onclick: () => decide(r.id, "confirm") }, t("ldConfirm")), " ",
         h("button", { type: "button", class: "ld-refuse", onclick: () => decide(r.id, "withdraw") }, t("ldRefuse"))]));
  main.replaceChildren(h("section", { id: "lockdown-page" },
    h("h2", {}, t("ldTitle")), h("p", { class: "muted" }, t("ldHint")), state,
    h("h3", {}, t("ldPending")), pending.length ? h("ul", { id: "ld-pending" }, pending) : h("p", {}, t("ldNoPending")),
    h("h3", {}, t("ldAsk")),
    h("label", {}, t("ldScope"), " ", scope), h("br"),
    h("label", {}, t("ldReason"), h("br"), reason), h("br"),
    h("button", { type: "button", id: "ld-ask-on", onclick: () => ask("on") }, t("ldAskOn")), " ",
    st.active ? h("button", { type: "button", id: "ld-ask-off", onclick: () => ask("off") }, t("ldAskOff")) : "",
    say));
}
