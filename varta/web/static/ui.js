// Small helpers shared by the console's views: element building, the API call and the
// city's time field.
import { t } from "./i18n.js";

export const $ = (sel, root = document) => root.querySelector(sel);

// "03.12.2026 10:15:00" <-> "2026-12-03T10:15:00" (city time, no offset: the server reads both).
export function cityToIso(text) {
  const m = /^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$/.exec(text || "");
  if (!m) return /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?$/.test(text || "") ? text : "";
  const p2 = (v) => String(v).padStart(2, "0");
  return `${m[3]}-${p2(m[2])}-${p2(m[1])}T${p2(m[4])}:${m[5]}:${m[6] || "00"}`;
}

export function isoToCity(iso) {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d))?/.exec(iso || "");
  return m ? `${m[3]}.${m[2]}.${m[1]} ${m[4]}:${m[5]}:${m[6] || "00"}` : "";
}

// A date and time field in the city's dd.mm.yyyy hh:mm:ss, whatever the browser's locale
// (a datetime-local field shows mm/dd/yyyy and AM/PM in an English browser). An ISO value
// is shown in the city's form; either form typed is accepted (the server reads both).
export const CITY_TIME_PATTERN = "\\d{1,2}\\.\\d{1,2}\\.\\d{4} \\d{1,2}:\\d{2}(:\\d{2})?|\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2})?";

export function cityTimeInput(attrs = {}) {
  const value = attrs.value ? isoToCity(attrs.value) || attrs.value : "";
  return h("input", { type: "text", inputmode: "numeric", placeholder: t("timeFormat"), pattern: CITY_TIME_PATTERN,
                      size: 19, ...attrs, value });
}

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) el.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return el;
}

export function csrf() {
  const m = document.cookie.match(/(?:^|; )varta_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

// JSON in, JSON out; an error carries the server's reason (e.g. the policy's refusal).
// With a signal (the view's navigation, app.js) the call is cancelled when the user moves on:
// it then rejects with an AbortError, never with a half-read answer.
export async function api(method, path, body, signal) {
  const res = await fetch(path, {
    method, credentials: "same-origin", signal,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  signal?.throwIfAborted();
  if (!res.ok) {
    const detail = data && (data.detail?.message || data.detail || data.code);
    const err = new Error(typeof detail === "string" ? detail : `${res.status}`);
    err.status = res.status; err.data = data;
    throw err;
  }
  return data;
}
