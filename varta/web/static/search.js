// Search across every camera's tracks (#/search; GET /api/search/tracks): what the analytics
// followed, by class, time, heading, colour, dwell and camera; a grid of thumbnails, each
// opening playback at its moment or starting an incident from it. An archive action (A4.4,
// A4.5): offered to the roles whose policy allows search.tracks.
import { cityText, labelText } from "./alarms.js";
import { t } from "./i18n.js";
import { api, cityTimeInput, h } from "./ui.js";

const COMPASS = ["n", "ne", "e", "se", "s", "sw", "w", "nw"];
const PICTURE = ["up", "up-right", "right", "down-right", "down", "down-left", "left", "up-left"];
const COLOURS = ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "brown", "black", "grey", "white"];
const CLASSES = ["person", "car", "bicycle", "motorcycle", "bus", "truck"];

// The same city time ``s`` seconds later, written as the server writes city time (no offset).
function shift(iso, s) {
  const m = /([+-])(\d\d):(\d\d)$/.exec(iso);
  const off = m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
  return new Date(Date.parse(iso) + s * 1000 + off * 60000).toISOString().slice(0, 19);
}

// "Add to request №…": the track's camera and time (a minute each side) become one more
// interval of a registered request, held at once.
function addTo(tr, open) {
  const note = h("span", { class: "added" });
  const pick = h("select", { class: "add-to-request", "aria-label": t("addToRequest") },
    h("option", { value: "" }, `${t("addToRequest")}…`), open.map((r) => h("option", { value: r.id }, `${r.number} · ${r.requester}`)));
  pick.addEventListener("change", async () => {
    if (!pick.value) return;
    const r = open.find((x) => String(x.id) === pick.value);
    try {
      await api("POST", `/api/requests/${pick.value}/items`, { items: [{ camera_id: tr.camera_id,
        from: shift(tr.start, -60), to: shift(tr.end, 60) }] });
      note.textContent = ` ${t("addedTo")} ${r.number}`;
      note.className = "added ok";
    } catch (e) { note.textContent = ` ${e.message}`; note.className = "added error"; }
    pick.value = "";
  });
  return h("div", {}, pick, note);
}

const opt = (value, text, chosen) => h("option", { value, selected: chosen.includes(value) }, text);

// An area drawn on a small map (click to add corners): the cameras standing in it are searched.
async function areaPicker(nav, cams, value, loadLeaflet) {
  const input = h("input", { type: "hidden", name: "polygon", value: value || "" });
  const box = h("div", { id: "search-map" });
  const clear = h("button", { type: "button", id: "area-clear" }, t("areaClear"));
  const count = h("span", { class: "muted", id: "area-count" });
  const section = h("details", { id: "search-area", open: !!value }, h("summary", {}, t("areaTitle")),
    h("p", { class: "hint" }, t("areaHint")), box, h("div", { class: "toolbar" }, clear, count), input);
  const L = await loadLeaflet();
  const map = L.map(box, { attributionControl: false, zoomControl: false });
  L.control.zoom({ zoomInTitle: t("zoomIn"), zoomOutTitle: t("zoomOut") }).addTo(map);
  nav.onLeave(() => map.remove());
  const placed = cams.filter((c) => c.latitude != null);
  for (const c of placed) {
    L.circleMarker([c.latitude, c.longitude], { radius: 6, weight: 1, color: "#000", fillColor: "#4c8dff", fillOpacity: 0.9 })
      .bindTooltip(`${c.id}${c.name ? ` · ${c.name}` : ""}`).addTo(map);
  }
  if (placed.length) map.fitBounds(L.latLngBounds(placed.map((c) => [c.latitude, c.longitude])).pad(0.3), { maxZoom: 17 });
  else map.setView([48.5, 31.2], 6);
  let corners = (value || "").split(";").filter(Boolean).map((p) => p.split(",").map(Number));
  let shape = null;
  const draw = () => {
    if (shape) shape.remove();
    shape = corners.length ? L.polygon(corners, { className: "area", weight: 2 }).addTo(map) : null;
    input.value = corners.length >= 3 ? corners.map((p) => p.map((x) => x.toFixed(6)).join(",")).join(";") : "";
    count.textContent = corners.length ? `${t("areaCorners")}: ${corners.length}` : "";
    box.dataset.corners = String(corners.length);
  };
  map.on("click", (e) => { corners.push([e.latlng.lat, e.latlng.lng]); draw(); });
  clear.addEventListener("click", () => { corners = []; draw(); });
  section.addEventListener("toggle", () => map.invalidateSize());
  draw();
  return section;
}

export async function searchView(me, nav, params, { cityNowMinus, loadLeaflet }) {
  const cams = await nav.get("/api/cameras");
  const all = (k) => params.getAll(k);
  const form = h("form", { id: "search-form", class: "toolbar" },
    h("label", {}, `${t("from")} `, cityTimeInput({ name: "from", value: params.get("from") || cityNowMinus(3600), required: true })),
    h("label", {}, `${t("to")} `, cityTimeInput({ name: "to", value: params.get("to") || cityNowMinus(0), required: true })),
    h("select", { name: "class", "aria-label": t("label") }, h("option", { value: "" }, t("allClasses")),
      CLASSES.map((c) => opt(c, labelText(c), all("class")))),
    h("select", { name: "heading", "aria-label": t("direction") }, h("option", { value: "" }, t("anyHeading")),
      h("optgroup", { label: t("compass") }, COMPASS.map((d) => opt(d, t(`hd_${d}`), all("heading")))),
      h("optgroup", { label: t("inPicture") }, PICTURE.map((d) => opt(d, t(`hp_${d}`), all("heading"))))),
    h("select", { name: "colour", "aria-label": t("colour") }, h("option", { value: "" }, t("anyColour")),
      COLOURS.map((c) => opt(c, t(`col_${c}`), all("colour")))),
    h("select", { name: "camera", "aria-label": t("camera") }, h("option", { value: "" }, t("allCameras")),
      cams.map((c) => opt(c.id, `${c.id}${c.name ? ` · ${c.name}` : ""}`, all("camera")))),
    h("input", { name: "min_dwell_s", type: "number", min: 0, step: 1, size: 5, placeholder: t("minDwell"),
                 value: params.get("min_dwell_s") || "" }),
    h("button", { type: "submit" }, t("search")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) p.append(k, v);
    location.hash = `#/search?${p}`;
  });
  const results = h("section", { id: "search-results" });
  const area = await areaPicker(nav, cams, params.get("polygon"), loadLeaflet);
  form.append(area);
  nav.main().replaceChildren(h("h2", {}, t("searchTracks")), form, h("p", { class: "hint" }, t("searchHint")), results);
  if (!params.get("from")) return;  // the form first; a search runs from the address

  // Registered requests not yet resolved: a found track can be added to one of them.
  const open = me.allowed_actions.includes("request.register") && me.allowed_actions.includes("request.view")
    ? (await nav.get("/api/requests?state=registered")).requests : [];
  const q = new URLSearchParams(params);
  const started = performance.now();
  const got = await nav.get(`/api/search/tracks?${q}`);
  const ms = Math.round(performance.now() - started);
  const card = (tr) => {
    const at = tr.start.slice(0, 19);
    const play = `#/playback?${new URLSearchParams({ cameras: tr.camera_id, t: at })}`;
    const incident = `#/evidence/incidents/new?${new URLSearchParams({ camera: tr.camera_id, from: at,
      to: tr.end.slice(0, 19), title: `${labelText(tr.label)} · ${tr.camera_id}` })}`;
    // A request made from it: this camera and moment (widened by a minute each side) filled in.
    const request = `#/evidence/requests/new?${new URLSearchParams({ camera: tr.camera_id,
      from: shift(tr.start, -60), to: shift(tr.end, 60) })}`;
    const heading = tr.compass ? t(`hd_${tr.compass}`) : tr.heading ? t(`hp_${tr.heading}`) : t("standing");
    return h("figure", { class: "track-card", "data-id": tr.id, "data-camera": tr.camera_id },
      h("a", { href: play, title: t("playMoment") },
        tr.thumbnail_url ? h("img", { src: tr.thumbnail_url, alt: labelText(tr.label) }) : h("div", { class: "nothumb" }, "—")),
      h("figcaption", {}, h("b", {}, labelText(tr.label)), ` · ${heading}`, h("br"),
        `${tr.camera_id} · ${cityText(tr.start)}`, h("br"),
        `${tr.colours.map((c) => t(`col_${c}`)).join(", ") || "—"} · ${Math.round(tr.dwell_s)} ${t("sec")}`, h("br"),
        h("a", { href: play, class: "play" }, t("playMoment")),
        me.allowed_actions.includes("incident.manage") ? [" · ", h("a", { href: incident, class: "to-incident" }, t("toIncident"))] : "",
        me.allowed_actions.includes("request.register") ? [" · ", h("a", { href: request, class: "to-request" }, t("toRequest"))] : "",
        open.length ? addTo(tr, open) : ""));
  };
  results.replaceChildren(
    h("p", { class: "muted", id: "search-count" }, `${t("found")}: ${got.tracks.length}${got.truncated ? "+" : ""} · ${ms} ${t("msec")}`),
    got.tracks.length ? h("div", { class: "track-grid" }, got.tracks.map(card)) : h("p", {}, t("noTracks")));
  results.dataset.query = q.toString();  // which search these results answer
}
