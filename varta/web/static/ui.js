// Small helpers shared by the console's views: element building and the API call.
export const $ = (sel, root = document) => root.querySelector(sel);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) el.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return el;
}

function csrf() {
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
