// PTZ controls on the enlarged live tile (/api/cameras/{id}/ptz; issue 18): press and hold
// an arrow (or the keyboard's arrows, + and −) to turn and zoom, release to stop; presets to
// go to, save and remove; who steers the camera now. One operator at a time: another's
// command is refused with the holder's name unless one's role is higher (varta/onvif/ptzlock.py).
import { t } from "./i18n.js";
import { api, h } from "./ui.js";

const SPEED = 0.5;
const DIRS = [["↖", -1, 1], ["↑", 0, 1], ["↗", 1, 1], ["←", -1, 0], null, ["→", 1, 0], ["↙", -1, -1], ["↓", 0, -1], ["↘", 1, -1]];
const KEYS = { ArrowLeft: [-1, 0, 0], ArrowRight: [1, 0, 0], ArrowUp: [0, 1, 0], ArrowDown: [0, -1, 0], "+": [0, 0, 1], "=": [0, 0, 1], "-": [0, 0, -1] };

export async function ptzPanel(nav, cam) {
  const base = `/api/cameras/${encodeURIComponent(cam.id)}/ptz`;
  let status;
  try { status = await api("GET", `${base}/status`, undefined, nav.signal); } catch { return null; }  // no PTZ here
  const note = h("span", { class: "ptz-note", id: "ptz-note" });
  const holder = h("span", { class: "ptz-holder", id: "ptz-holder" });
  const position = h("span", { class: "muted", id: "ptz-position" });
  const say = (e) => { note.textContent = e ? e.message : ""; note.className = e ? "ptz-note error" : "ptz-note"; };
  let moving = false;
  const move = async (pan, tilt, zoom) => {
    moving = true;
    try { await api("POST", `${base}/move`, { pan: pan * SPEED, tilt: tilt * SPEED, zoom: zoom * SPEED }); say(null); } catch (e) { say(e); }
  };
  const stop = async () => {
    if (!moving) return;
    moving = false;
    try { await api("POST", `${base}/stop`, {}); } catch (e) { say(e); }
    refresh();
  };
  const pad = h("div", { class: "ptz-pad" }, DIRS.map((d) => d
    ? h("button", { type: "button", class: "ptz-dir", "data-pan": d[1], "data-tilt": d[2], title: t("ptzMove"),
        onpointerdown: () => move(d[1], d[2], 0), onpointerup: stop, onpointerleave: stop }, d[0])
    : h("button", { type: "button", class: "ptz-stop", title: t("ptzStop"), onclick: () => { moving = true; stop(); } }, "■")));
  const zoom = h("div", { class: "ptz-zoom" },
    h("button", { type: "button", class: "ptz-zoom-in", title: t("ptzZoomIn"), onpointerdown: () => move(0, 0, 1), onpointerup: stop, onpointerleave: stop }, "+"),
    h("button", { type: "button", class: "ptz-zoom-out", title: t("ptzZoomOut"), onpointerdown: () => move(0, 0, -1), onpointerup: stop, onpointerleave: stop }, "−"));
  const presets = h("select", { id: "ptz-presets", "aria-label": t("ptzPresets") });
  const loadPresets = async () => {
    try {
      const got = await api("GET", `${base}/presets`, undefined, nav.signal);
      presets.replaceChildren(h("option", { value: "" }, `${t("ptzPresets")}…`), ...got.presets.map((p) => h("option", { value: p.token }, p.name)));
    } catch (e) { say(e); }
  };
  presets.addEventListener("change", async () => {
    if (!presets.value) return;
    try { await api("POST", `${base}/goto`, { preset: presets.value }); say(null); } catch (e) { say(e); }
    presets.value = "";
    setTimeout(refresh, 600);
  });
  const name = h("input", { id: "ptz-preset-name", size: 12, placeholder: t("ptzPresetName") });
  const save = h("button", { type: "button", id: "ptz-save", onclick: async () => {
    if (!name.value.trim()) return;
    try { await api("POST", `${base}/presets`, { name: name.value.trim() }); name.value = ""; say(null); loadPresets(); } catch (e) { say(e); }
  } }, t("ptzSave"));
  const release = h("button", { type: "button", id: "ptz-release", onclick: async () => {
    try { await api("POST", `${base}/release`, {}); refresh(); } catch (e) { say(e); }
  } }, t("ptzRelease"));
  const refresh = async () => {
    try { status = await api("GET", `${base}/status`, undefined, nav.signal); } catch { return; }
    const p = status.position || {};
    position.textContent = `${t("ptzPan")} ${p.pan ?? "—"} · ${t("ptzTilt")} ${p.tilt ?? "—"} · ${t("ptzZoom")} ${p.zoom ?? "—"}`;
    position.dataset.pan = p.pan ?? "";
    holder.textContent = status.holder ? `${t("ptzHeldBy")}: ${status.holder_name || status.holder}${status.yours ? ` (${t("ptzYou")})` : ""}` : t("ptzFree");
    holder.dataset.holder = status.holder || "";
    release.hidden = !status.yours;
  };
  const keys = (ev) => {
    const k = KEYS[ev.key];
    if (!k || ev.target.closest?.("input, select, textarea")) return;
    ev.preventDefault();
    if (ev.type === "keydown" && !ev.repeat) move(...k);
    if (ev.type === "keyup") stop();
  };
  document.addEventListener("keydown", keys);
  document.addEventListener("keyup", keys);
  nav.onLeave(() => { document.removeEventListener("keydown", keys); document.removeEventListener("keyup", keys); });
  nav.every(3000, refresh);
  await Promise.all([loadPresets(), refresh()]);
  return h("section", { class: "ptz", id: "ptz", "data-camera": cam.id }, pad, zoom,
    h("div", { class: "ptz-side" }, presets, h("div", {}, name, save), holder, release, position,
      h("p", { class: "hint" }, t("ptzKeys")), note));
}
