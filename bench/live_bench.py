#!/usr/bin/env python3
"""Live view: end-to-end latency in a real browser, and server CPU per live viewer.

Latency (target <= 1.0 s on loopback): headless Chromium (Debian's chromium via
Playwright) opens the console's live wall for one camera served by the GStreamer RTSP
simulator. Once a GOP the relay tells the browser when that keyframe arrived from the RTSP
server (the ``clock`` message; on loopback that is when it left the server, within a
millisecond); frames between keyframes arrive at the stream's pace. For every frame the
browser *presents* (``requestVideoFrameCallback``) the latency is its presentation time
minus its arrival at Varta. The floor beside it: when the same keyframe's bytes reached the
browser's WebSocket — what any relay costs before the browser buffers, decodes and shows.

CPU per viewer (target: a small fraction of one stream's recording cost): ``varta serve``
with one camera and recording off; N WebSocket viewers (1, 10, 50; plain clients in
another process, reading and discarding fMP4) for a window; the server process's CPU is
read from /proc. The floor it is compared with: the same server recording that camera with
no viewer (one stream's recording cost, same run).

Usage::

    .venv/bin/python bench/live_bench.py [--quick] [--results FILE]
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from varta.demo.media import make_test_stream  # noqa: E402
from varta.demo.simulator import CameraSimulator  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Server:
    def __init__(self, home: Path):
        self.home, self.port = home, free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VARTA_")}
        self.env.update({"VARTA_HOME": str(home), "VARTA_SEGMENT_SECONDS": "10"})
        self.proc = None

    def cli(self, *args) -> str:
        return subprocess.run([sys.executable, "-m", "varta.cli", *args], env=self.env, check=True,
                              capture_output=True, text=True).stdout

    def start(self) -> None:
        import httpx

        self.proc = subprocess.Popen([sys.executable, "-m", "varta.cli", "serve", "--listen", f"127.0.0.1:{self.port}"],
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/api/system/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("varta serve did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)

    def account(self) -> tuple[str, str]:
        from varta.access.accounts import Accounts
        from varta.db.engine import open_database

        password = f"pw-{secrets.token_hex(8)}"
        eng = open_database(f"sqlite:///{self.home / 'varta.db'}")
        Accounts(eng).add("bench", "Bench Operator User", "department", password=password)
        eng.dispose()
        return "bench", password

    def cookie(self, login: str, password: str) -> str:
        import httpx

        r = httpx.post(f"http://127.0.0.1:{self.port}/api/auth/login", json={"login": login, "password": password})
        r.raise_for_status()
        return f"varta_session={r.cookies['varta_session']}"


_VIEWERS = r'''
import asyncio, sys, websockets
url, cookie, n, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
got = [0] * n
async def one(i):
    async with websockets.connect(url, additional_headers={"Cookie": cookie}, max_size=None) as ws:
        loop = asyncio.get_running_loop(); end = loop.time() + seconds + 5
        while loop.time() < end:
            try:
                m = await asyncio.wait_for(ws.recv(), timeout=1)
            except asyncio.TimeoutError:
                continue
            if isinstance(m, bytes): got[i] += 1
async def main():
    await asyncio.gather(*(one(i) for i in range(n)))
asyncio.run(main())
print(min(got), max(got))
'''


def cpu_per_viewer(srv: Server, cookie: str, viewers: int, seconds: float) -> tuple[float, str]:
    url = f"ws://127.0.0.1:{srv.port}/api/cameras/bench-cam/live"
    clients = subprocess.Popen([sys.executable, "-c", _VIEWERS, url, cookie, str(viewers), str(seconds)],
                               stdout=subprocess.PIPE, text=True)
    time.sleep(5)  # connect, relay warm-up
    c0, t0 = cpu_seconds(srv.proc.pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(srv.proc.pid), time.monotonic()
    out = clients.communicate(timeout=60)[0].strip()
    return 100 * (c1 - c0) / (t1 - t0), out


def idle_cpu(srv: Server, seconds: float) -> float:
    c0, t0 = cpu_seconds(srv.proc.pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(srv.proc.pid) - c0) / (time.monotonic() - t0)


_LATENCY_JS = """async (seconds) => {
  const v = await new Promise((ok) => { const f = () => { const v = document.querySelector('video');
    v && v.readyState >= 2 ? ok(v) : setTimeout(f, 100); }; f(); });
  const shown = [];
  const end = performance.now() + seconds * 1000;
  await new Promise((done) => {
    const cb = (now, meta) => {
      const c = window.__varta_clocks.filter((k) => k.media_time <= meta.mediaTime + 1e-6).pop();
      if (c) shown.push((performance.timeOrigin + meta.presentationTime) - (c.wall_ms + (meta.mediaTime - c.media_time) * 1000));
      if (performance.now() < end) v.requestVideoFrameCallback(cb); else done();
    };
    v.requestVideoFrameCallback(cb);
  });
  return {shown, received: window.__varta_received};
}"""


def browser_latency(srv: Server, login: str, password: str, seconds: float) -> list[float]:
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if not chromium:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        page = b.new_page()
        # Watch the console's WebSocket: the relay's clock messages (when a keyframe arrived
        # from the camera) and when the next fragment, that keyframe, reached the browser.
        page.add_init_script("""(() => { window.__varta_clocks = []; window.__varta_received = [];
          const W = window.WebSocket; window.WebSocket = function (...a) {
          const ws = new W(...a); let last = null;
          ws.addEventListener('message', (e) => {
            if (typeof e.data === 'string') { const m = JSON.parse(e.data);
              if (m.type === 'clock') { window.__varta_clocks.push(m); last = m; } }
            else if (last) { window.__varta_received.push(performance.timeOrigin + performance.now() - last.wall_ms); last = null; }
          });
          return ws; }; window.WebSocket.prototype = W.prototype; })();""")
        page.goto(f"http://127.0.0.1:{srv.port}/")
        page.fill("#login input[name=login]", login)
        page.fill("#login input[name=password]", password)
        page.click("#login button[type=submit]")
        page.wait_for_selector(".tile video")
        page.goto(f"http://127.0.0.1:{srv.port}/#/live?layout=1")
        page.wait_for_timeout(3000)
        samples = page.evaluate(_LATENCY_JS, seconds)
        b.close()
    return samples


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--results")
    args = ap.parse_args()
    window = 10.0 if args.quick else 30.0
    media_dir = BENCH / "out" / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    # A street camera's sub-stream: 640x360, 25 fps, 1 s GOP, ~800 kbit/s.
    stream = make_test_stream(media_dir / "sub360p25.ts", width=640, height=360, fps=25, seconds=60, gop=25,
                              bitrate="800k", label="bench", preset="ultrafast")
    sim = CameraSimulator({"cam": stream})
    sim.start()
    lines = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            srv = Server(Path(tmp))
            srv.cli("camera", "add", "bench-cam", "--url", sim.url("cam"), "--schedule", "off")
            login, password = srv.account()
            srv.start()
            try:
                got = browser_latency(srv, login, password, window)
                samples, received = got["shown"], got["received"]
                lat = (f"live latency, frame arrives from the RTSP server -> presented in Chromium: median "
                       f"{statistics.median(samples) / 1000:.3f} s, p95 {pct(samples, 0.95) / 1000:.3f} s, "
                       f"max {max(samples) / 1000:.3f} s over {len(samples)} frames (target <= 1.0 s) | floor, "
                       f"the same frame's bytes reaching the browser (no buffering, decoding, display): median "
                       f"{statistics.median(received) / 1000:.3f} s over {len(received)} keyframes")
                print(lat, flush=True)
                lines.append(lat)
                cookie = srv.cookie(login, password)
                time.sleep(12)  # the relay lingers 10 s after the browser left
                base = idle_cpu(srv, window / 2)
                results = {}
                for n in (1, 10, 50):
                    results[n] = cpu_per_viewer(srv, cookie, n, window)
                    time.sleep(12)  # the relay lingers 10 s after the last viewer
            finally:
                srv.stop()
            # Floor: the same server recording the camera, no viewer.
            srv2 = Server(Path(tmp) / "rec")
            srv2.home.mkdir()
            srv2.cli("camera", "add", "bench-cam", "--url", sim.url("cam"))
            srv2.start()
            try:
                time.sleep(5)
                rec = idle_cpu(srv2, window) - base
            finally:
                srv2.stop()
        one = results[1][0] - base
        for n, (cpu, got) in results.items():
            per = (cpu - base - one) / (n - 1) if n > 1 else one
            line = (f"{n:>2} viewers: server CPU {cpu:5.2f} % of a core (idle {base:.2f}); relay + first viewer "
                    f"{one:.2f} %; each further viewer {per:.3f} % | floor: recording this stream {rec:.2f} % "
                    f"(per-viewer / recording = {per / rec if rec > 0 else float('nan'):.2f}); fragments per client "
                    f"min/max {got}")
            print(line, flush=True)
            lines.append(line)
    finally:
        sim.stop()
    block = "\n".join(["### live_bench.py", "", *[f"- {ln}" for ln in lines], ""])
    out = Path(args.results or BENCH / "out" / "live.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as fh:
        fh.write(block + "\n")


if __name__ == "__main__":
    main()
