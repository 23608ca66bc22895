// Live video: fMP4 fragments over a WebSocket into Media Source Extensions (no plugin,
// no transcoding). One LivePlayer per <video>; it reconnects by itself and keeps the
// picture near the live edge (the browser would otherwise drift behind over time).

const LIVE_EDGE_S = 0.3;   // how far behind the newest frame we aim to play
const MAX_LAG_S = 1.5;     // further behind than this: jump to the edge
const KEEP_S = 20;         // buffered seconds kept behind the playhead

export class LivePlayer {
  constructor(video, cameraId, { stream = "sub", onState = () => {} } = {}) {
    this.video = video;
    this.cameraId = cameraId;
    this.stream = stream;
    this.onState = onState;
    this.closed = false;
    this.retry = 1000;
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/api/cameras/${encodeURIComponent(this.cameraId)}/live?stream=${this.stream}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.queue = [];
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") return this.control(JSON.parse(ev.data));
      this.queue.push(ev.data);
      this.pump();
    };
    ws.onclose = (ev) => {
      if (this.closed) return;
      if (ev.code === 1008) {  // refused by the policy: say why, do not hammer the server
        this.onState({ state: "refused", detail: ev.reason });
        return;
      }
      this.onState({ state: "reconnecting", detail: ev.reason || "connection lost" });
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 15000);
    };
    ws.onopen = () => { this.retry = 1000; };
  }

  control(msg) {
    if (msg.type === "clock") {  // when the keyframe at media_time arrived from the camera
      this.clock = msg;
      return;
    }
    if (msg.type === "init") {
      this.startSource(msg.mime);
    }
    this.onState(msg);
  }

  startSource(mime) {
    if (!window.MediaSource || !MediaSource.isTypeSupported(mime)) {
      this.onState({ state: "unsupported", detail: mime });
      return;
    }
    this.ms = new MediaSource();
    this.sb = null;
    this.queue = [];
    this.video.src = URL.createObjectURL(this.ms);
    this.ms.addEventListener("sourceopen", () => {
      this.sb = this.ms.addSourceBuffer(mime);
      this.sb.mode = "segments";
      this.sb.addEventListener("updateend", () => this.pump());
      this.pump();
    }, { once: true });
    this.video.muted = true;
    this.video.play().catch(() => {});
  }

  pump() {
    const sb = this.sb;
    if (!sb || sb.updating || !this.queue.length) return;
    const v = this.video;
    if (v.buffered.length && v.currentTime - v.buffered.start(0) > KEEP_S * 2) {
      sb.remove(v.buffered.start(0), v.currentTime - KEEP_S);  // keep memory bounded
      return;
    }
    // Append what has arrived in one go: fewer updates, same order.
    const parts = this.queue.splice(0);
    const size = parts.reduce((n, p) => n + p.byteLength, 0);
    const all = new Uint8Array(size);
    let off = 0;
    for (const p of parts) { all.set(new Uint8Array(p), off); off += p.byteLength; }
    try {
      sb.appendBuffer(all);
    } catch (e) {
      this.onState({ state: "reconnecting", detail: String(e) });
      this.ws.close();
      return;
    }
    this.chase();
  }

  chase() {
    const v = this.video;
    if (!v.buffered.length) return;
    const end = v.buffered.end(v.buffered.length - 1);
    if (end - v.currentTime > MAX_LAG_S || v.currentTime < v.buffered.start(0)) {
      v.currentTime = Math.max(v.buffered.start(v.buffered.length - 1), end - LIVE_EDGE_S);
    }
    if (v.paused) v.play().catch(() => {});
  }

  // Seconds between a frame arriving from the camera and being on screen now (null: unknown).
  delay() {
    if (!this.clock || this.video.readyState < 2) return null;
    const arrived = this.clock.wall_ms + (this.video.currentTime - this.clock.media_time) * 1000;
    return (Date.now() - arrived) / 1000;
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
    if (this.video.src) URL.revokeObjectURL(this.video.src);
    this.video.removeAttribute("src");
  }
}
