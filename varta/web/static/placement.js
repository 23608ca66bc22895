// Where the next cameras should go (#/placement; /api/placement, issue 17, MVS-3, MVS-4).
// The Responsible Department imports the city's incident records, candidate sites and
// excluded zones, analyses a period and sees on the map where incidents happen (density,
// Gi* hot spots), what today's cameras see and the k best new sites with what each adds;
// it keeps a result as a proposal, sends it to the police unit, and approves it once agreed.
// The police unit sees the proposals sent to it and agrees or comments. Incident places
// only, never video.
import { t } from "./i18n.js";
import { api, cityTimeInput, csrf, h } from "./ui.js";

const pct = (x) => `${(100 * (x || 0)).toFixed(1)} %`;

async function upload(kind, file, replace) {
  const res = await fetch(`/api/placement/${kind}?replace=${replace}&name=${encodeURIComponent(file.name)}`, {
    method: "PUT", credentials: "same-origin", headers: { "Content-Type": "text/plain", "X-CSRF-Token": csrf() },
    body: await file.text() });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(typeof data.detail === "string" ? data.detail : `${res.status}`);
  return data;
}

function summaryLine(d) {
  const cats = Object.entries(d.categories || {}).map(([c, n]) => `${c} ${n}`).join(", ");
  return `${t("plIncidents")}: ${d.incidents}${cats ? ` (${cats})` : ""} · ${t("plSites")}: ${d.sites} · ` +
    `${t("plZones")}: ${d.zones}`;
}

function importer(kind, label, onDone) {
  const file = h("input", { type: "file", accept: ".csv,.geojson,.json,text/csv,application/geo+json", "aria-label": label });
  const replace = h("input", { type: "checkbox", checked: kind !== "incidents" });
  const note = h("span", { class: "muted" });
  const go = h("button", { type: "button" }, t("plImport"));
  go.addEventListener("click", async () => {
    if (!file.files.length) { note.textContent = t("plChooseFile"); return; }
    note.textContent = "…";
    try {
      const d = await upload(kind, file.files[0], replace.checked);
      note.textContent = `${t("plImported")}: ${d.imported}`;
      note.className = "ok";
      onDone(d);
    } catch (e) { note.textContent = e.message; note.className = "error"; }
  });
  return h("div", { class: "toolbar", "data-import": kind }, h("b", {}, label), file,
    h("label", {}, replace, ` ${t("plReplace")}`), go, note);
}

// The map: density cells, hot spots, today's fields of view, incidents, zones, proposed sites.
function drawLayers(L, map, res, layers) {
  for (const l of Object.values(layers)) l.clearLayers();
  const dmax = Math.max(1e-9, ...res.layers.cells.map((c) => c.density));
  for (const c of res.layers.cells) {
    const a = c.density / dmax;
    if (a > 0.02) {
      L.rectangle(c.bounds, { stroke: false, fillColor: a > 0.66 ? "#b30000" : a > 0.33 ? "#fc8d59" : "#fdcc8a",
        fillOpacity: 0.15 + 0.45 * a, className: "pl-heat" }).addTo(layers.heat);
    }
    if (c.hot || c.warm) {
      L.rectangle(c.bounds, { color: c.hot ? "#b30000" : "#e67e22", weight: c.hot ? 2 : 1, fill: false,
        dashArray: c.hot ? null : "4 3", className: c.hot ? "pl-hot" : "pl-warm" })
        .bindTooltip(`${c.hot ? t("plHot") : t("plWarm")} · Gi* z ${c.z} · p ${c.p} · ${t("plIncidents")} ${c.count}`)
        .addTo(layers.hot);
    }
  }
  for (const ring of res.layers.views) {
    L.polygon(ring, { color: "#1d4ed8", weight: 1, fillOpacity: 0.2, className: "pl-view" }).addTo(layers.views);
  }
  for (const [lat, lon, now, proposed] of res.layers.incidents) {
    L.circleMarker([lat, lon], { radius: 2, weight: 0, fillOpacity: 0.8,
      fillColor: now ? "#1d4ed8" : proposed ? "#15803d" : "#333", className: "pl-incident" }).addTo(layers.incidents);
  }
  for (const z of res.zones || []) {
    L.polygon(z.polygon, { color: "#555", weight: 1, dashArray: "3 3", fillOpacity: 0.15, className: "pl-zone" })
      .bindTooltip(`${t("plZone")}: ${z.name}`).addTo(layers.zones);
  }
  for (const s of res.sites) {
    L.circle([s.lat, s.lon], { radius: res.options.radius_m, color: "#15803d", weight: 1, fillOpacity: 0.2,
      className: "pl-site-radius" }).addTo(layers.sites);
    L.marker([s.lat, s.lon], { icon: L.divIcon({ className: "pl-site", html: String(s.rank), iconSize: [20, 20] }),
      title: `${s.rank}. ${s.name || `#${s.id}`}` })
      .bindTooltip(`${s.rank}. ${s.name || `#${s.id}`} · +${s.gain} ${t("plIncidentsShort")}` +
        `${s.chosen ? ` · ${t("plChosen")}` : ""}`).addTo(layers.sites);
  }
  const pts = res.layers.incidents.map((i) => [i[0], i[1]]).concat(res.sites.map((s) => [s.lat, s.lon]));
  if (pts.length) map.fitBounds(L.latLngBounds(pts).pad(0.05));
}

function resultTables(res) {
  const b = res.baselines, tm = res.temporal;
  const row = (name, cov, test, cls) => h("tr", { "data-method": cls }, h("td", {}, name), h("td", {}, cov ? pct(cov.share) : "—"),
    h("td", {}, cov ? pct(cov.weighted_share) : pct(b.random.weighted_share_mean)), h("td", {}, test != null ? pct(test) : "—"));
  return h("div", { id: "pl-result" },
    h("p", { id: "pl-coverage" }, h("b", {}, `${t("plCoveredNow")}: ${pct(res.coverage_now.share)}`),
      ` (${res.coverage_now.covered}/${res.coverage_now.incidents}) → `,
      h("b", {}, `${t("plCoveredProposed")}: ${pct(res.coverage_proposed.share)}`),
      ` (${res.coverage_proposed.covered}/${res.coverage_proposed.incidents}) · ${t("plSolver")}: ` +
      `${res.solver.status === "optimal" ? t("plOptimal") : `${t("plTimeLimit")} (${t("plGap")} ${pct(res.solver.gap)})`}, ` +
      `${res.seconds} ${t("sec")}`),
    h("p", { class: "muted", id: "pl-hotspots" }, `${t("plHotCells")}: ${res.hotspots.hot} (${t("plWarmCells")}: ` +
      `${res.hotspots.warm}) / ${res.hotspots.cells} · ${t("plCell")} ${res.hotspots.cell_m} ${t("metres")} · ` +
      `${t("plHotShare")} ${pct(res.hotspots.share_in_hot_area)} ${t("plOnArea")} ${pct(res.hotspots.area_share_hot_area)}`),
    h("table", { id: "pl-sites" }, h("thead", {}, h("tr", {}, [t("plRank"), t("plSite"), t("plLat"), t("plLon"),
      t("plGain"), t("plGainWeighted")].map((x) => h("th", {}, x)))),
      h("tbody", {}, res.sites.map((s) => h("tr", {}, h("td", {}, s.rank), h("td", {}, `${s.name || `#${s.id}`}${s.chosen ? ` (${t("plChosen")})` : ""}`),
        h("td", {}, s.lat.toFixed(6)), h("td", {}, s.lon.toFixed(6)), h("td", {}, `+${s.gain}`), h("td", {}, s.gain_weighted))))),
    h("table", { id: "pl-compare" }, h("thead", {}, h("tr", {}, [t("plMethod"), t("plShare"), t("plWeighted"),
      t("plLater")].map((x) => h("th", {}, x)))),
      h("tbody", {}, row(t("plMip"), res.coverage_proposed, tm?.mip.test.weighted_share, "mip"),
        row(t("plGreedy"), b.greedy.coverage_proposed, tm?.greedy.test.weighted_share, "greedy"),
        row(t("plDensest"), b.densest.coverage_proposed, tm?.densest.test.weighted_share, "densest"),
        row(t("plRandom"), null, tm?.random.test_weighted_share_mean, "random"))),
    tm ? h("p", { class: "hint" }, `${t("plTemporal")} ${tm.split.slice(0, 10)}: ${tm.fit_incidents} / ${tm.test_incidents}`) : "");
}

function proposalCard(me, p, nav, units, open) {
  const may = (a) => me.allowed_actions.includes(a);
  const actions = h("div", { class: "toolbar" },
    h("button", { type: "button", class: "pl-open", onclick: () => open(p.id) }, t("plShow")),
    h("a", { href: `/api/placement/proposals/${p.id}/report.pdf?lang=uk`, class: "pl-pdf" }, `${t("plReport")} (УКР)`),
    h("a", { href: `/api/placement/proposals/${p.id}/report.pdf?lang=en` }, `${t("plReport")} (EN)`),
    h("a", { href: `/api/placement/proposals/${p.id}/export.geojson` }, t("plGeojson")),
    h("a", { href: `/api/placement/proposals/${p.id}/export.csv` }, t("plCsv")));
  const note = h("span", { class: "muted" });
  const act = async (path, body) => {
    try { await api("POST", `/api/placement/proposals/${p.id}/${path}`, body); location.reload(); }
    catch (e) { note.textContent = e.message; note.className = "error"; }
  };
  if (may("placement.manage") && ["draft", "commented"].includes(p.status)) {
    const to = h("select", { "aria-label": t("plUnit") }, units.map((u) => h("option", { value: u.login },
      `${u.full_name || u.login}${u.organisation ? ` · ${u.organisation}` : ""}`)));
    const text = h("input", { placeholder: t("plLetter"), size: 30 });
    actions.append(to, text, h("button", { type: "button", class: "pl-send", onclick: () => act("send", { to: to.value, text: text.value }) }, t("plSend")));
  }
  if (may("placement.review") && ["sent", "commented", "agreed"].includes(p.status)) {
    const text = h("input", { placeholder: t("plCommentText"), size: 40, class: "pl-comment-text" });
    actions.append(text,
      p.status !== "agreed" ? h("button", { type: "button", class: "pl-agree", onclick: () => act("answer", { verdict: "agree", text: text.value }) }, t("plAgree")) : "",
      h("button", { type: "button", class: "pl-comment", onclick: () => act("answer", { verdict: "comment", text: text.value }) }, t("plComment")));
  }
  if (may("placement.approve") && p.status === "agreed") {
    actions.append(h("button", { type: "button", class: "pl-approve", onclick: () => act("approve", {}) }, t("plApprove")));
  }
  const s = p.params.summary || {};
  return h("article", { class: "pl-proposal", "data-id": p.id, "data-status": p.status },
    h("h4", {}, `№${p.id} · ${p.title}`),
    h("p", {}, `${t("plStatus")}: `, h("b", {}, t(`plSt_${p.status}`)), ` · ${p.created.slice(0, 16).replace("T", " ")} · ` +
      `${p.sent_to ? `${t("plSentTo")} ${p.sent_to} · ` : ""}` +
      `${s.coverage_now ? `${pct(s.coverage_now.share)} → ${pct(s.coverage_proposed.share)}` : ""}`),
    (p.notes || []).filter((n) => n.step !== "draft").length
      ? h("ul", { class: "pl-notes" }, p.notes.filter((n) => n.step !== "draft").map((n) =>
        h("li", {}, `${n.time.slice(0, 16).replace("T", " ")} · ${n.full_name || n.account} · ${t(`plSt_${n.step}`)}${n.text ? `: ${n.text}` : ""}`)))
      : "",
    actions, note);
}

export async function placementView(me, nav, { cityNowMinus, loadLeaflet }) {
  const may = (a) => me.allowed_actions.includes(a);
  const analyst = may("placement.view");
  const [L, data, list, units] = await Promise.all([loadLeaflet(),
    analyst ? nav.get("/api/placement/data") : null, nav.get("/api/placement/proposals"),
    may("placement.manage") ? nav.get("/api/placement/police-units") : { units: [] }]);
  const box = h("div", { id: "placement-map" });
  const out = h("section", { id: "pl-out" });
  const status = h("p", { class: "muted", id: "pl-status" });
  const proposals = h("section", { id: "pl-proposals" }, h("h3", {}, t("plProposals")));
  let current = null;

  const parts = [h("h2", {}, t("placementTitle")), h("p", { class: "hint" }, t("placementHint"))];
  let form = null;
  if (analyst) {
    const summary = h("p", { id: "pl-data" }, summaryLine(data));
    parts.push(summary);
    if (may("placement.manage")) {
      const refresh = (d) => { summary.textContent = summaryLine(d); };
      parts.push(h("details", { id: "pl-imports" }, h("summary", {}, t("plImports")),
        h("p", { class: "hint" }, t("plImportHint")),
        importer("incidents", t("plIncidents"), refresh), importer("sites", t("plSites"), refresh),
        importer("zones", t("plZones"), refresh)));
    }
    const cats = Object.keys(data.categories || {});
    const first = data.first ? data.first.slice(0, 19) : null;
    form = h("form", { id: "pl-form", class: "toolbar" },
      h("label", {}, `${t("from")} `, cityTimeInput({ name: "from", value: first || cityNowMinus(365 * 86400), required: true })),
      h("label", {}, `${t("to")} `, cityTimeInput({ name: "to", value: cityNowMinus(0), required: true })),
      h("label", {}, `${t("plK")} `, h("input", { name: "k", type: "number", min: 1, max: 1000, value: 10, size: 4 })),
      h("label", {}, `${t("plRadius")} `, h("input", { name: "radius_m", type: "number", min: 5, max: 2000, value: 50, size: 5 })),
      h("label", {}, `${t("plSpacing")} `, h("input", { name: "min_spacing_m", type: "number", min: 0, max: 10000, value: 0, size: 5 })),
      cats.length ? h("select", { name: "categories", multiple: true, size: Math.min(4, cats.length), "aria-label": t("plCategories") },
        cats.map((c) => h("option", { value: c }, c))) : "",
      h("label", {}, h("input", { type: "checkbox", name: "use_zones", checked: true }), ` ${t("plUseZones")}`),
      h("button", { type: "submit" }, t("plAnalyse")));
    parts.push(form);
  }
  parts.push(status, box, out, proposals);
  nav.main().replaceChildren(...parts);

  const map = L.map(box, { zoomControl: false, attributionControl: true });
  L.control.zoom({ zoomInTitle: t("zoomIn"), zoomOutTitle: t("zoomOut") }).addTo(map);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  nav.onLeave(() => map.remove());
  if (me.map.tile_url) L.tileLayer(me.map.tile_url, { maxZoom: 19, attribution: me.map.attribution || "" }).addTo(map);
  map.setView([48.5, 31.2], 6);
  const layers = { heat: L.layerGroup(), hot: L.layerGroup(), views: L.layerGroup(), incidents: L.layerGroup(),
    zones: L.layerGroup(), sites: L.layerGroup() };
  for (const l of Object.values(layers)) l.addTo(map);
  L.control.layers(null, { [t("plLayerHeat")]: layers.heat, [t("plLayerHot")]: layers.hot, [t("plLayerViews")]: layers.views,
    [t("plLayerIncidents")]: layers.incidents, [t("plLayerZones")]: layers.zones, [t("plLayerSites")]: layers.sites },
  { collapsed: false }).addTo(map);

  const show = (res, titleText) => {
    current = res;
    drawLayers(L, map, res, layers);
    out.replaceChildren(titleText ? h("h3", {}, titleText) : "", resultTables(res));
    box.dataset.sites = String(res.sites.length);
    if (may("placement.manage") && !titleText) {
      const title = h("input", { name: "title", placeholder: t("plTitle"), size: 40, required: true });
      const keep = h("form", { id: "pl-keep", class: "toolbar" }, title, h("button", { type: "submit" }, t("plKeep")));
      keep.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        try {
          await api("POST", "/api/placement/proposals", { ...lastBody, title: title.value });
          location.reload();
        } catch (e) { status.textContent = e.message; }
      });
      out.append(keep);
    }
  };
  let lastBody = null;
  form?.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    lastBody = { from: f.get("from"), to: f.get("to"), k: Number(f.get("k")), radius_m: Number(f.get("radius_m")),
      min_spacing_m: Number(f.get("min_spacing_m")), categories: f.getAll("categories"), use_zones: f.get("use_zones") === "on" };
    status.textContent = t("plWorking");
    try {
      const res = await api("POST", "/api/placement/analyze", lastBody, nav.signal);
      status.textContent = "";
      show(res, null);
    } catch (e) { if (e.name !== "AbortError") status.textContent = e.message; }
  });
  const open = async (id) => {
    const p = await nav.get(`/api/placement/proposals/${id}`);
    show(p.result, `№${p.id} · ${p.title}`);
    box.scrollIntoView();
  };
  proposals.append(list.proposals.length ? h("div", {}, list.proposals.map((p) => proposalCard(me, p, nav, units.units, open)))
    : h("p", { class: "muted" }, t("plNoProposals")));
  if (!analyst && list.proposals.length) await open(list.proposals[0].id);
  return current;
}
