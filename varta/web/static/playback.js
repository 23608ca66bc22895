// Recorded video in the browser without HLS.js or transcoding: the archive's fMP4
// segments are appended to a Media Source SourceBuffer, each at its own wall-clock place
// (timestampOffset), so the video's timeline is the city's clock and gaps stay gaps.

const AHEAD_S = 40;   // keep this much buffered ahead of the playhead
const WINDOW_MS = 30 * 60 * 1000;  // segments listed per request

function codecOf(bytes) {
  const u8 = new Uint8Array(bytes);
  for (let i = 0; i + 8 < u8.length && i < 4096; i++) {
    if (u8[i] === 0x61 && u8[i + 1] === 0x76 && u8[i + 2] === 0x63 && u8[i + 3] === 0x43) {  // "avcC"
      const hex = (b) => b.toString(16).padStart(2, "0");
      return `avc1.${hex(u8[i + 5])}${hex(u8[i + 6])}${hex(u8[i + 7])}`;
    }
    if (u8[i] === 0x68 && u8[i + 1] === 0x76 && u8[i + 2] === 0x63 && u8[i + 3] === 0x43) return "hvc1.1.6.L93.B0";
  }
  return "avc1.42e01e";
}

export class ArchivePlayer {
  constructor(video, cameraId, { onState = () => {} } = {}) {
    this.video = video;
    this.cameraId = cameraId;
    this.onState = onState;
    this.segments = [];
    this.next = 0;          // index of the next segment to append
    this.loading = false;
    this.listedTo = 0;
    this.aborter = new AbortController();  // its listings and downloads, cancelled by close()
    video.addEventListener("timeupdate", () => this.feed());
    video.addEventListener("waiting", () => this.skipGap());
  }

  // Wall-clock ms <-> media seconds: media time 0 is this.origin.
  wall() { return this.origin + this.video.currentTime * 1000; }

  async open(atMs) {
    this.close();
    const signal = this.aborter.signal;  // aborted when closed (or opened again) meanwhile
    this.origin = atMs - 60 * 1000;
    this.segments = [];
    this.next = 0;
    this.listedTo = atMs - 30 * 1000;
    await this.list();
    const first = this.segments.findIndex((s) => s.end > atMs);
    if (first < 0) { this.onState({ state: "nothing", detail: "no recording at or after this time" }); return false; }
    this.next = first;
    const bytes = await this.fetchSegment(this.segments[first]);
    const mime = `video/mp4; codecs="${codecOf(bytes)}"`;
    this.ms = new MediaSource();
    this.video.src = URL.createObjectURL(this.ms);
    await new Promise((ok) => this.ms.addEventListener("sourceopen", ok, { once: true }));
    signal.throwIfAborted();
    this.sb = this.ms.addSourceBuffer(mime);
    this.sb.mode = "segments";
    await this.append(this.segments[first], bytes);
    signal.throwIfAborted();
    this.next = first + 1;
    // Show the frame at (or just before) the asked instant, even inside a segment.
    this.video.currentTime = Math.max((Math.max(atMs, this.segments[first].start) - this.origin) / 1000, 0);
    this.onState({ state: "ready" });
    this.feed();
    return true;
  }

  async list() {
    const from = new Date(this.listedTo).toISOString();
    const to = new Date(this.listedTo + WINDOW_MS).toISOString();
    const res = await fetch(`/api/cameras/${encodeURIComponent(this.cameraId)}/segments?from=${from}&to=${to}`,
                            { credentials: "same-origin", signal: this.aborter.signal });
    if (!res.ok) throw new Error((await res.json()).detail || res.status);
    const known = new Set(this.segments.map((s) => s.id));
    for (const s of await res.json()) {
      if (!known.has(s.id)) this.segments.push({ id: s.id, url: s.url, start: Date.parse(s.start), end: Date.parse(s.end) });
    }
    this.segments.sort((a, b) => a.start - b.start);
    this.listedTo += WINDOW_MS;
  }

  async fetchSegment(seg) {
    const res = await fetch(seg.url, { credentials: "same-origin", signal: this.aborter.signal });
    if (!res.ok) throw new Error(`segment ${seg.id}: ${res.status}`);
    return await res.arrayBuffer();
  }

  append(seg, bytes) {
    return new Promise((ok, fail) => {
      this.sb.timestampOffset = (seg.start - this.origin) / 1000;
      this.sb.addEventListener("updateend", ok, { once: true });
      this.sb.addEventListener("error", fail, { once: true });
      this.sb.appendBuffer(bytes);
    });
  }

  async feed() {
    if (this.loading || !this.sb) return;
    const ahead = this.segments.length > this.next
      ? (this.segments[this.next].start - this.wall()) / 1000 : -1;
    if (ahead > AHEAD_S) return;
    this.loading = true;
    try {
      if (this.next >= this.segments.length && this.listedTo < Date.now()) await this.list();
      if (this.next < this.segments.length) {
        const seg = this.segments[this.next];
        await this.append(seg, await this.fetchSegment(seg));
        this.next++;
      }
    } catch (e) {
      if (e.name !== "AbortError") this.onState({ state: "error", detail: String(e.message || e) });
    } finally {
      this.loading = false;
    }
  }

  skipGap() {
    // Stalled in a gap (the camera was down): jump to where the recording resumes.
    const v = this.video, b = v.buffered;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) > v.currentTime + 0.05) { v.currentTime = b.start(i); return; }
    }
    this.feed();
  }

  step(frames, fps = 25) {
    this.video.pause();
    this.video.currentTime = Math.max(0, this.video.currentTime + frames / fps);
  }

  seekWall(ms) {
    const t = (ms - this.origin) / 1000;
    const b = this.video.buffered;
    for (let i = 0; i < b.length; i++) if (t >= b.start(i) && t <= b.end(i)) { this.video.currentTime = t; return true; }
    return false;
  }

  close() {
    this.aborter.abort();
    this.aborter = new AbortController();
    if (this.video.src) URL.revokeObjectURL(this.video.src);
    this.video.removeAttribute("src");
    this.sb = null;
    this.ms = null;
  }
}

// The timeline: recorded ranges (green) and gaps with their reasons (red) for a window
// that zooms from a month to a minute; click to play from there.
export const ZOOMS = [
  ["month", 30 * 86400e3], ["week", 7 * 86400e3], ["day", 86400e3], ["hour", 3600e3], ["10min", 600e3], ["minute", 60e3],
];

export async function loadRanges(cameraId, fromMs, toMs, signal) {
  const q = `from=${new Date(fromMs).toISOString()}&to=${new Date(toMs).toISOString()}`;
  const res = await fetch(`/api/cameras/${encodeURIComponent(cameraId)}/recordings?${q}`, { credentials: "same-origin", signal });
  if (!res.ok) throw new Error((await res.json()).detail || res.status);
  const rep = await res.json();
  return {
    ranges: rep.ranges.map((r) => [Date.parse(r.start), Date.parse(r.end)]),
    gaps: rep.gaps.map((g) => ({ start: Date.parse(g.start), end: Date.parse(g.end), reason: g.reason, description: g.description })),
  };
}

// The events layer: the camera's analytics events in the shown window (empty for a role
// that may not see events), drawn as markers over the ranges; a marker click seeks to it.
const EVENT_COLOURS = { alarm: "#ff5c5c", warning: "#ffb020", info: "#4c8dff" };

export async function loadEvents(cameraId, fromMs, toMs, signal) {
  const q = new URLSearchParams({ camera: cameraId, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), limit: "1000" });
  const res = await fetch(`/api/events?${q}`, { credentials: "same-origin", signal });
  if (!res.ok) return [];
  const rep = await res.json();
  return rep.events.map((e) => ({
    id: e.id, start: Date.parse(e.start), end: e.end ? Date.parse(e.end) : null, startText: e.start,
    severity: e.severity, rule: e.rule, kind: e.kind, label: e.label, state: e.state,
  })).sort((a, b) => a.start - b.start);
}

// The event whose marker is under x (canvas pixels), or null.
export function eventAt(canvas, fromMs, toMs, events, offsetX, slop = 6) {
  const w = canvas.clientWidth || canvas.width;
  let best = null, bestD = slop + 1;
  for (const ev of events || []) {
    const d = Math.abs(((ev.start - fromMs) / (toMs - fromMs)) * w - offsetX);
    if (d < bestD) { best = ev; bestD = d; }
  }
  return best;
}

// Gaps by what they mean: a real outage, footage not expected (not yet registered, not
// recorded by the schedule), or the segment being recorded now.
export const GAP_STYLES = {
  outage: "#b33", no_recording: "#666", schedule_off: "#555", in_progress: "#3b6fb6",
};
export const gapStyle = (reason) => GAP_STYLES[reason] || GAP_STYLES.outage;

// The gap under x (canvas pixels), or null.
export function gapAt(canvas, fromMs, toMs, gaps, offsetX) {
  const w = canvas.clientWidth || canvas.width;
  const ms = fromMs + (offsetX / w) * (toMs - fromMs);
  return (gaps || []).find((g) => g.start <= ms && ms <= g.end) || null;
}

// Tick steps for the time axis, the smallest giving labels at least 90 px apart.
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800]
  .map((s) => s * 1000);

function axis(g, w, h, fromMs, toMs, x, timeZone) {
  const span = toMs - fromMs;
  const step = STEPS.find((s) => (s / span) * w >= 90) || STEPS[STEPS.length - 1];
  const dated = step >= 86400e3;
  const fmt = new Intl.DateTimeFormat("uk-UA", dated
    ? { timeZone, day: "2-digit", month: "2-digit" }
    : { timeZone, hour: "2-digit", minute: "2-digit", second: step < 60e3 ? "2-digit" : undefined, hour12: false });
  // Ticks fall on whole steps of the city's clock: shift by the zone's offset at the window's start.
  const offset = (() => {
    const p = Object.fromEntries(new Intl.DateTimeFormat("en-GB", { timeZone, hourCycle: "h23", year: "numeric",
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .formatToParts(new Date(fromMs)).map((q) => [q.type, q.value]));
    return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(fromMs / 1000) * 1000;
  })();
  g.fillStyle = "#ccc"; g.font = "11px sans-serif"; g.textBaseline = "top";
  const ticks = [];
  for (let t = Math.ceil((fromMs + offset) / step) * step - offset; t <= toMs; t += step) {
    const px = x(t);
    g.fillRect(px, h - 18, 1, 5);
    const label = fmt.format(new Date(t));
    g.fillText(label, Math.min(Math.max(px - 14, 0), w - 40), h - 12);
    ticks.push(label);
  }
  return ticks;
}

export function drawTimeline(canvas, fromMs, toMs, data, cursorMs, marks = {}, timeZone = "Europe/Kyiv") {
  const w = canvas.width = canvas.clientWidth || 800, h = canvas.height = 54;
  const g = canvas.getContext("2d");
  const x = (ms) => ((ms - fromMs) / (toMs - fromMs)) * w;
  g.fillStyle = "#222"; g.fillRect(0, 0, w, h);
  for (const gap of data.gaps) {
    g.fillStyle = gapStyle(gap.reason);
    g.fillRect(x(gap.start), 8, Math.max(1, x(gap.end) - x(gap.start)), 20);
  }
  g.fillStyle = "#2e9e57";
  for (const [a, b] of data.ranges) g.fillRect(x(a), 8, Math.max(1, x(b) - x(a)), 20);
  if (marks.in && marks.out) { g.fillStyle = "rgba(76,141,255,.35)"; g.fillRect(x(marks.in), 0, x(marks.out) - x(marks.in), 36); }
  for (const ev of data.events || []) {
    const colour = EVENT_COLOURS[ev.severity] || "#fff";
    const a = x(ev.start), b = x(ev.end ?? Math.min(toMs, Date.now()));
    g.fillStyle = colour;
    g.fillRect(a, 30, Math.max(2, b - a), 5);                                     // how long it lasted
    g.beginPath(); g.moveTo(a - 5, 0); g.lineTo(a + 5, 0); g.lineTo(a, 8); g.closePath(); g.fill();  // where it began
    g.fillRect(a - 0.5, 0, 1, 36);
  }
  canvas.dataset.ticks = axis(g, w, h, fromMs, toMs, x, timeZone).join("|");
  canvas.dataset.span = Math.round(toMs - fromMs);
  if (cursorMs) { g.fillStyle = "#fff"; g.fillRect(x(cursorMs) - 1, 0, 2, 36); }
}
