#!/usr/bin/env python3
"""Recorder cost: Varta vs N bare ffmpeg processes recording the same RTSP cameras.

For each N (default 1, 8, 32, 64) a local GStreamer RTSP server (CameraSimulator) serves
N clients of a 1920x1080 25 fps 4 Mbit/s H.264 loop (GOP 50). Then, one after the other:

(a) floor: N bare ffmpeg processes running exactly the command Varta runs per camera
    (``varta.recording.ffmpeg.record_command``), each writing 10 s fMP4 segments;
(b) Varta: ``varta recorder`` (or ``serve``) as its own process with a fresh VARTA_HOME
    and the N cameras imported from a generated YAML file, once per ingest backend
    (``VARTA_RECORDER_BACKEND``: ``pyav``, libav in the recorder process, Varta's default;
    ``ffmpeg``, a supervised ffmpeg per camera running the command of (a)).

Each side gets the same warm-up (from the moment every stream has written data) and the
same measurement window. Measured over the window:

* CPU: utime+stime from /proc/PID/stat at window start and end (floor: every ffmpeg;
  Varta: the Python process plus all its ffmpeg children, if any) → % of one core per stream;
* PSS from /proc/PID/smaps_rollup at window end (Varta: Python PSS / N + mean ffmpeg PSS);
* frames kept: PyAV packet count of the segments that closed inside the window vs
  fps x the wall time those segments span (their files' close times), so both dropped
  frames and a recorder falling behind show up;
* lag: Varta's camera_status.lag_s (polled every 2 s), and for both sides the close time of
  each segment minus its media end placed on the run's clock (varta.recording.timing.RunClock);
  also the age of the newest indexed segment (now - camera_status.last_segment_end_us);
* the camera simulator's own CPU, and the CPU of every other process on the machine
  ("other load"), to show the budget: the simulator runs on the same 2 cores.

Usage::

    .venv/bin/python bench/recorder_bench.py                 # 1, 8, 32, 64 streams, 60 s windows
    .venv/bin/python bench/recorder_bench.py --quick         # 1, 8 streams, 30 s windows
    .venv/bin/python bench/recorder_bench.py --counts 1,8 --window 45
    .venv/bin/python bench/recorder_bench.py --counts 64 --backends ffmpeg --repeat 2
    .venv/bin/python bench/recorder_bench.py --counts 8 --backends pyav,pyav+s3 --repeat 2   # shipping cost

Traffic stays on 127.0.0.1. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (also puts the project root on sys.path)

from varta.recording.ffmpeg import find_ffmpeg, record_command, relative_segment_path  # noqa: E402
from varta.recording.probe import ProbeError, probe_segment  # noqa: E402
from varta.recording.timing import RunClock  # noqa: E402

FPS = C.STREAM["fps"]
TARGET_CPU_RATIO = 1.10  # within 10% of bare ffmpeg
TARGET_PSS_MB = 10.0
TARGET_LAG_S = 2.0

from varta.recording.ingest import die_with_parent  # noqa: E402

_child_setup = die_with_parent  # in the forked child: die with the benchmark, own process group


# --------------------------------------------------------------------------- data


@dataclass
class Seg:
    path: Path
    media_start_s: float  # seconds on the run's media clock (floor) / index µs as s (Varta)
    media_end_s: float
    closed_s: float = 0.0  # wall time the file was closed (its mtime)
    frames: int = 0


@dataclass
class SideResult:
    side: str
    n: int
    window_s: float
    cpu_s: float = 0.0  # all of this side's processes
    cpu_main_s: float = 0.0  # Varta's Python process alone
    pss_ffmpeg_kb: list[int] = field(default_factory=list)
    pss_main_kb: int = 0
    pss_main_first_kb: int = 0  # Python process PSS at the first poll in the window (growth check)
    rss_ffmpeg_kb: list[int] = field(default_factory=list)
    sim_cpu_s: float = 0.0
    other_cpu_s: float = 0.0  # every other process on the machine (not this side, not the simulator)
    frames: int = 0
    expected_frames: float = 0.0
    media_s: float = 0.0
    seg_frames: int = 0  # frames inside in-window segments vs their own durations
    seg_expected: float = 0.0
    max_lag_s: float = 0.0  # close time - media end on the run clock (computed)
    max_status_lag_s: float | None = None  # Varta's camera_status.lag_s
    max_newest_age_s: float | None = None  # Varta: now - newest segments.end_us
    segments_in_window: int = 0
    streams_short: int = 0  # streams with fewer than 2 segments closed in the window
    restarts: int = 0  # ffmpeg processes that exited/were replaced during the window
    notes: list[str] = field(default_factory=list)
    code: str = ""  # git commit of the code this run measured (the tree can change between runs)

    @property
    def cpu_pct_per_stream(self) -> float:
        return 100.0 * self.cpu_s / self.window_s / self.n

    @property
    def pss_mb_per_stream(self) -> float:
        ff = sum(self.pss_ffmpeg_kb) / len(self.pss_ffmpeg_kb) if self.pss_ffmpeg_kb else 0.0
        return (ff + self.pss_main_kb / self.n) / 1024

    @property
    def ffmpeg_pss_mb(self) -> float:
        return (sum(self.pss_ffmpeg_kb) / len(self.pss_ffmpeg_kb) / 1024) if self.pss_ffmpeg_kb else 0.0

    @property
    def frames_kept_pct(self) -> float:
        return 100.0 * self.frames / self.expected_frames if self.expected_frames else 0.0

    @property
    def seg_integrity_pct(self) -> float:
        return 100.0 * self.seg_frames / self.seg_expected if self.seg_expected else 0.0

    @property
    def other_load_pct(self) -> float:
        """CPU of every other process on the machine during the window (% of one core)."""
        return 100.0 * self.other_cpu_s / self.window_s

    @property
    def sim_pct_per_stream(self) -> float:
        return 100.0 * self.sim_cpu_s / self.window_s / self.n


def analyse_stream(segs: list[Seg], w0: float, w1: float, res: SideResult, clock_from_media: bool) -> None:
    """Fold one stream's segments into *res* (frames kept, lag) over the window [w0, w1]."""
    segs = sorted(segs, key=lambda s: s.media_start_s)
    for s in segs:
        try:
            s.closed_s = s.path.stat().st_mtime
        except OSError:
            s.closed_s = float("nan")
    # Lag: the close time vs the media end placed on the run clock, exactly as Varta does
    # it (first segment anchors, later ones are placed on that anchor). For Varta's index
    # rows the placement is already done (media times are UTC), so lag = close - end.
    lags = []
    clock = RunClock()
    for s in segs:
        if s.closed_s != s.closed_s:  # NaN: file gone
            continue
        if clock_from_media:
            _, _, lag = clock.place(s.media_start_s, s.media_end_s, int(s.closed_s * 1e6))
        else:
            lag = max(0.0, s.closed_s - s.media_end_s)
        if w0 <= s.closed_s <= w1:
            lags.append(lag)
    if lags:
        res.max_lag_s = max(res.max_lag_s, max(lags))
    inside = [s for s in segs if w0 <= s.closed_s <= w1]
    res.segments_in_window += len(inside)
    for s in inside:
        try:
            s.frames = probe_segment(s.path).frames or 0
        except ProbeError as exc:
            res.notes.append(f"unreadable segment {s.path.name}: {exc}")
            s.frames = 0
        res.seg_frames += s.frames
        res.seg_expected += FPS * (s.media_end_s - s.media_start_s)
    if len(inside) < 2:
        res.streams_short += 1
        res.frames += sum(s.frames for s in inside)
        res.expected_frames += FPS * (w1 - w0)
        return
    # Frames of the segments after the first one closed in the window cover the wall time
    # from the first one's close to the last one's close.
    res.frames += sum(s.frames for s in inside[1:])
    res.expected_frames += FPS * (inside[-1].closed_s - inside[0].closed_s)
    res.media_s += sum(s.media_end_s - s.media_start_s for s in inside[1:])


# --------------------------------------------------------------------------- helpers


def prepare_day_dirs(cam_dir: Path) -> None:
    """ffmpeg's segment muxer does not create folders (Varta keeps today's and tomorrow's)."""
    today = datetime.now(timezone.utc)
    for day in (today, today + timedelta(days=1)):
        (cam_dir / day.strftime("%Y/%m/%d")).mkdir(parents=True, exist_ok=True)


def wait_until(pred, timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


def has_data(cam_dir: Path) -> bool:
    for root, _dirs, files in os.walk(cam_dir):
        for f in files:
            if f.endswith(".mp4") and os.path.getsize(os.path.join(root, f)) > 0:
                return True
    return False


def stop_procs(procs: list[subprocess.Popen], sig=signal.SIGINT, grace: float = 10.0) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def measure_window(pids_fn, sim_pid: int, warmup: float, window: float, poll=None):
    """Sleep the warm-up, then measure CPU of pids_fn() over *window* seconds.

    *poll* (optional) is called about every 2 s inside the window. Returns
    (CpuWindow, sim_cpu_s, other_cpu_s, w0, w1, pids_at_start, pids_at_end); other_cpu_s is
    the CPU of every other process alive at both ends of the window (the machine's other load;
    /proc/stat's tick-sampled totals undercount bursty loads like these on this VM).
    """
    time.sleep(warmup)
    pids0 = pids_fn()
    cpu = C.CpuWindow(pids0)
    sim = C.CpuWindow([sim_pid])
    all0 = C.all_cpu()
    w0 = time.time()
    cpu.start()
    sim.start()
    end = time.monotonic() + window
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(2.0, left))
        if poll:
            poll()
    cpu.stop()
    sim.stop()
    w1 = time.time()
    all1 = C.all_cpu()
    pids1 = pids_fn()
    mine = set(pids0) | set(pids1) | {sim_pid, os.getpid()}
    other = sum(all1[p] - all0[p] for p in all1 if p in all0 and p not in mine)
    return cpu, sim.used(), other, w0, w1, pids0, pids1


# --------------------------------------------------------------------------- (a) floor


def run_floor(n: int, sim, ffmpeg: str, work: Path, warmup: float, window: float, seg_s: int,
              extra_env: dict | None = None) -> SideResult:
    res = SideResult("floor", n, window)
    procs: list[subprocess.Popen] = []
    cams = []
    env = {**os.environ, "TZ": "UTC", **(extra_env or {})}
    try:
        for i in range(n):
            name = f"cam{i + 1:03d}"
            cam_dir = work / name
            prepare_day_dirs(cam_dir)
            cmd = record_command(ffmpeg, sim.url(name), cam_dir, secrets.token_hex(4), seg_s, 10.0)
            out = open(cam_dir / "segments.csv", "wb")
            err = open(cam_dir / "ffmpeg.log", "wb")
            procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                          preexec_fn=_child_setup))
            out.close()
            err.close()
            cams.append((name, cam_dir))
        if not wait_until(lambda: all(has_data(d) for _, d in cams) or any(p.poll() is not None for p in procs),
                          60):
            res.notes.append("not every stream had data after 60 s")
        dead = [p.pid for p in procs if p.poll() is not None]
        if dead:
            res.notes.append(f"{len(dead)} ffmpeg exited early")
        pids = [p.pid for p in procs]
        cpu, res.sim_cpu_s, res.other_cpu_s, w0, w1, _, _ = measure_window(
            lambda: [p.pid for p in procs if p.poll() is None], sim.pid, warmup, window)
        res.window_s = w1 - w0
        res.cpu_s = cpu.used()
        res.restarts = len(cpu.lost) + (n - len(cpu.t0))
        res.pss_ffmpeg_kb = [k for p in pids if (k := C.pss_kb(p)) is not None]
        res.rss_ffmpeg_kb = [k for p in pids if (k := C.rss_kb(p)) is not None]
    finally:
        stop_procs(procs)
    for name, cam_dir in cams:
        segs = []
        for line in (cam_dir / "segments.csv").read_text(errors="replace").splitlines():
            try:
                fname, a, b = line.strip().rsplit(",", 2)
                segs.append(Seg(cam_dir / relative_segment_path(fname.strip('"')), float(a), float(b)))
            except ValueError:
                continue
        analyse_stream(segs, w0, w1, res, clock_from_media=True)
    return res


# --------------------------------------------------------------------------- (b) Varta


def prefill_index(db_url: str, cam_ids: list[str], days: float, recorder: str, seg_s: int) -> tuple[int, float]:
    """Index rows for *days* of past 10 s segments per camera, as a recorder in steady state has.

    They end at UTC midnight three days ago (older than anything start-up reconciliation
    looks at, so it does not check their files, which do not exist) and start *days*
    earlier, but never more than 10 days ago minus an hour, so that retention finds
    nothing to delete during the run: the janitor pays only for its scans, as it does
    every minute in steady state. Returns (rows, seconds).
    """
    from sqlalchemy import insert

    from varta.db.engine import open_database
    from varta.db.schema import segments

    t = time.perf_counter()
    us = 1_000_000
    today = int(time.time()) // 86400 * 86400
    end_s = today - 3 * 86400
    start_s = max(end_s - int(days * 86400), int(time.time()) - 10 * 86400 + 3600)
    start_s -= start_s % seg_s
    engine = open_database(db_url)
    rows, total = [], 0
    for t_s in range(start_s, end_s, seg_s):
        stamp = time.strftime("%Y/%m/%d/%Y%m%dT%H%M%SZ", time.gmtime(t_s))
        for cam in cam_ids:
            rows.append({"camera_id": cam, "start_us": t_s * us, "end_us": (t_s + seg_s) * us,
                         "path": f"{stamp}-prefill.mp4", "bytes": 5_000_000, "init_bytes": 812, "codec": "h264",
                         "width": 1920, "height": 1080, "fps": 25.0, "run_id": "prefill", "recorder": recorder,
                         "status": "ok"})
        if len(rows) >= 100_000:
            with engine.begin() as conn:
                conn.execute(insert(segments), rows)
            total += len(rows)
            rows = []
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(segments), rows)
        total += len(rows)
    try:  # newer schemas keep continuous stretches ("spans") in step with the segments
        from varta.db.schema import spans
    except ImportError:
        spans = None
    if spans is not None:
        with engine.begin() as conn:
            extra = {"bytes": total // len(cam_ids) * 5_000_000} if "bytes" in spans.c else {}
            conn.execute(insert(spans), [{"camera_id": cam, "start_us": start_s * us, "end_us": end_s * us, **extra}
                                         for cam in cam_ids])
    engine.dispose()
    return total, time.perf_counter() - t


def run_varta(n: int, sim, ffmpeg: str, work: Path, warmup: float, window: float, seg_s: int,
              mode: str, extra_env: dict, prefill_days: float = 0.0, backend: str = "pyav") -> SideResult:
    res = SideResult(backend, n, window)
    home = work / "home"
    home.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VARTA_")}
    env.update({
        "VARTA_HOME": str(home),
        "VARTA_SEGMENT_SECONDS": str(seg_s),
        "VARTA_RECORDER_NAME": "bench",
        "VARTA_FFMPEG": ffmpeg,
        "VARTA_RECORDER_BACKEND": backend,
    })
    env.update(extra_env)
    py = sys.executable
    cams_yaml = home / "cameras.yaml"
    lines = ["cameras:"]
    for i in range(n):
        name = f"cam{i + 1:03d}"
        lines += [f"  - id: {name}", f"    url: {sim.url(name)}", "    kind: other"]
    cams_yaml.write_text("\n".join(lines) + "\n")
    r = subprocess.run([py, "-m", "varta.cli", "camera", "import", str(cams_yaml)], env=env, capture_output=True,
                       text=True, timeout=120, cwd=C.ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"camera import failed: {r.stdout}\n{r.stderr}")
    if prefill_days > 0:
        rows, secs = prefill_index(f"sqlite:///{(home / 'varta.db').resolve()}", [f"cam{i + 1:03d}" for i in range(n)],
                                   prefill_days, "bench", seg_s)
        res.notes.append(f"index prefilled with {rows:,} past segment rows ({rows / n / 8640:.1f} days per camera)")
        print(f"   prefilled the index with {rows:,} rows in {secs:.0f} s", flush=True)
    log = open(home / "varta.log", "wb")
    if mode == "serve":
        cmd = [py, "-m", "varta.cli", "serve", "--listen", "127.0.0.1:0"]
    else:
        cmd = [py, "-m", "varta.cli", "recorder"]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            cwd=C.ROOT, preexec_fn=_child_setup)
    log.close()
    db_path = home / "varta.db"

    def db():
        return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)

    def recording_count() -> int:
        try:
            with db() as con:
                return con.execute("select count(*) from camera_status where state='recording'").fetchone()[0]
        except sqlite3.Error:
            return 0

    status_lags: list[float] = []
    ages: list[float] = []

    pss_samples: list[int] = []

    def poll() -> None:
        if (k := C.pss_kb(proc.pid)) is not None:
            pss_samples.append(k)
        try:
            with db() as con:
                for (lag,) in con.execute("select lag_s from camera_status where lag_s is not null"):
                    status_lags.append(float(lag))
                now = time.time()
                for (end_us,) in con.execute("select last_segment_end_us from camera_status "
                                             "where last_segment_end_us is not null"):
                    ages.append(now - end_us / 1e6)
        except sqlite3.Error as exc:
            res.notes.append(f"db poll: {exc}")

    def ff_children() -> list[int]:
        return [p for p in C.children(proc.pid) if C.comm(p) == "ffmpeg"]

    try:
        ok = wait_until(lambda: recording_count() >= n or proc.poll() is not None, 90)
        if proc.poll() is not None:
            raise RuntimeError(f"varta {mode} exited: {(home / 'varta.log').read_text()[-3000:]}")
        if not ok:
            res.notes.append(f"only {recording_count()}/{n} cameras recording after 90 s")
        cpu, res.sim_cpu_s, res.other_cpu_s, w0, w1, p0, p1 = measure_window(
            lambda: [proc.pid, *ff_children()], sim.pid, warmup, window, poll)
        res.window_s = w1 - w0
        res.cpu_s = cpu.used()
        res.cpu_main_s = cpu.used(proc.pid)
        res.restarts = len(set(p0) ^ set(p1)) // 2 + len(cpu.lost)
        expected_children = n if backend == "ffmpeg" else 0
        if len(p0) - 1 != expected_children:
            res.notes.append(f"{len(p0) - 1} ffmpeg children at window start (expected {expected_children})")
        res.pss_main_kb = C.pss_kb(proc.pid) or 0
        res.pss_main_first_kb = pss_samples[0] if pss_samples else res.pss_main_kb
        res.pss_ffmpeg_kb = [k for p in p1[1:] if (k := C.pss_kb(p)) is not None]
        res.rss_ffmpeg_kb = [k for p in p1[1:] if (k := C.rss_kb(p)) is not None]
        poll()
    finally:
        stop_procs([proc], signal.SIGINT, grace=40)
    res.max_status_lag_s = max(status_lags) if status_lags else None
    res.max_newest_age_s = max(ages) if ages else None
    rec = home / "recordings"
    with db() as con:
        rows = con.execute("select camera_id, start_us, end_us, path from segments where run_id != 'prefill' "
                           "order by camera_id, start_us")
        by_cam: dict[str, list[Seg]] = {}
        for cam, s, e, p in rows:
            by_cam.setdefault(cam, []).append(Seg(rec / cam / p, s / 1e6, e / 1e6))
        outages = con.execute("select count(*) from outages where reason not in ('recorder_down')").fetchone()[0]
    if outages:
        res.notes.append(f"{outages} outage rows other than recorder_down")
    missing = n - len(by_cam)
    if missing:
        res.notes.append(f"{missing} cameras without any indexed segment")
        res.expected_frames += missing * FPS * res.window_s
        res.streams_short += missing
    for segs in by_cam.values():
        analyse_stream(segs, w0, w1, res, clock_from_media=False)
    # Python exceptions in the log are worth knowing about.
    text = (home / "varta.log").read_text(errors="replace")
    if "Traceback" in text or " ERROR " in text:
        res.notes.append("varta log has errors: " + text[text.find("Traceback") if "Traceback" in text
                                                          else text.find(" ERROR "):][:300].replace("\n", " | "))
    return res


# --------------------------------------------------------------------------- main


SHIPPING = "pyav+s3"


def run_shipping(n: int, sim, ffmpeg: str, work: Path, warmup: float, window: float, seg_s: int, mode: str,
                 extra_env: dict, prefill_days: float) -> SideResult:
    """The pyav recorder with archive_storage = s3: every closed segment hashed and shipped
    (PUT, HEAD check, index update) to a moto S3 server on 127.0.0.1 started for this side.
    The S3 server's own CPU is the store's, not Varta's: it shows under "other load"."""
    sys.path.insert(0, str(C.ROOT / "tests"))
    from s3server import S3Server

    with S3Server(start_timeout=60) as srv:
        srv.client().create_bucket(Bucket="bench-archive")
        env = dict(extra_env, VARTA_ARCHIVE_STORAGE="s3", VARTA_ARCHIVE_S3_ENDPOINT_URL=srv.endpoint_url,
                   VARTA_ARCHIVE_S3_BUCKET="bench-archive", VARTA_ARCHIVE_S3_REGION=srv.region,
                   VARTA_ARCHIVE_S3_ACCESS_KEY=srv.access_key, VARTA_ARCHIVE_S3_SECRET_KEY=srv.secret_key,
                   VARTA_ARCHIVE_S3_PATH_STYLE="true")
        r = run_varta(n, sim, ffmpeg, work, warmup, window, seg_s, mode, env, prefill_days, backend="pyav")
        db = work / "home" / "varta.db"
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            shipped, total = con.execute("select sum(stored <> 'local'), count(*) from segments").fetchone()
        finally:
            con.close()
        listed = srv.client().list_objects_v2(Bucket="bench-archive").get("KeyCount", 0)
    r.side = SHIPPING
    r.notes.append(f"{shipped or 0} of {total} indexed segments shipped and verified when the recorder stopped "
                   f"({listed} objects in the bucket; a segment is due 10 s after it ends)")
    return r


def merge(parts: list[SideResult]) -> SideResult:
    """Several repetitions of one side as one result (sums over all windows, worst lags)."""
    m = SideResult(parts[0].side, parts[0].n, 0.0)
    for r in parts:
        for k in ("window_s", "cpu_s", "cpu_main_s", "sim_cpu_s", "other_cpu_s", "frames", "expected_frames",
                  "media_s", "seg_frames", "seg_expected", "segments_in_window", "streams_short", "restarts"):
            setattr(m, k, getattr(m, k) + getattr(r, k))
        m.pss_ffmpeg_kb += r.pss_ffmpeg_kb
        m.rss_ffmpeg_kb += r.rss_ffmpeg_kb
        m.max_lag_s = max(m.max_lag_s, r.max_lag_s)
        for k in ("max_status_lag_s", "max_newest_age_s"):
            vals = [x for x in (getattr(m, k), getattr(r, k)) if x is not None]
            setattr(m, k, max(vals) if vals else None)
        m.notes += r.notes
    m.pss_main_kb = int(sum(r.pss_main_kb for r in parts) / len(parts))
    m.pss_main_first_kb = int(sum(r.pss_main_first_kb for r in parts) / len(parts))
    return m


def fmt(x: float | None, nd: int = 2) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def lag_of(r: SideResult | None) -> float | None:
    if r is None:
        return None
    return max(r.max_status_lag_s or 0.0, r.max_lag_s)


def run(counts: list[int], warmup: float, window: float, seg_s: int, mode: str, keep: bool,
        results: str | None, sides: tuple[str, ...] = ("floor", "pyav", "ffmpeg"), repeat: int = 1,
        varta_env: dict | None = None, prefill_days: float = 0.0, floor_env: dict | None = None) -> str:
    from varta.demo.simulator import CameraSimulator, gst_rtsp_available

    ok, why = gst_rtsp_available()
    if not ok:
        raise SystemExit(f"camera simulator unavailable: {why}")
    ffmpeg = find_ffmpeg(None)
    stream = C.bench_stream()
    print(f"stream: {stream} ({stream.stat().st_size * 8 / C.STREAM['seconds'] / 1e6:.2f} Mbit/s incl. TS overhead)")
    backends = [x for x in sides if x != "floor"]
    rows, detail_rows, notes, per_rep, raw = [], [], [], [], []
    code_seen: dict[str, list[str]] = {}
    for n in counts:
        mounts = {f"cam{i + 1:03d}": stream for i in range(n)}
        runs: dict[str, list[SideResult]] = {s: [] for s in sides}
        for rep in range(repeat):
            for side in sides:
                work = Path(tempfile.mkdtemp(prefix=f"varta-bench-{side}-{n}-", dir=C.OUT))
                label = "floor (bare ffmpeg)" if side == "floor" else f"Varta, {side} backend"
                print(f"\n== N={n} {label} (run {rep + 1}/{repeat}): warm-up {warmup:g} s, window {window:g} s "
                      f"(files under {work})", flush=True)
                sim = CameraSimulator(mounts, threads=0, ready_timeout=60)
                sim.start()
                t = time.monotonic()
                code = C.code_version()
                try:
                    if side == "floor":
                        r = run_floor(n, sim, ffmpeg, work, warmup, window, seg_s, floor_env)
                    elif side == SHIPPING:
                        r = run_shipping(n, sim, ffmpeg, work, warmup, window, seg_s, mode, varta_env or {},
                                         prefill_days)
                    else:
                        r = run_varta(n, sim, ffmpeg, work, warmup, window, seg_s, mode, varta_env or {},
                                      prefill_days, backend=side)
                finally:
                    sim.close()
                    if not keep:
                        shutil.rmtree(work, ignore_errors=True)
                r.code = code
                code_seen.setdefault(code, []).append(f"N={n} {side} #{rep + 1}")
                runs[side].append(r)
                print(f"   {side}: CPU {r.cpu_pct_per_stream:.3f}%/stream, PSS {r.pss_mb_per_stream:.1f} MB/stream, "
                      f"frames kept {r.frames_kept_pct:.2f}% ({r.frames}/{r.expected_frames:.0f}), "
                      f"max lag {fmt(lag_of(r))} s, sim {r.sim_pct_per_stream:.2f}%/stream, "
                      f"other load {r.other_load_pct:.0f}% of a core  [{time.monotonic() - t:.0f} s]", flush=True)
                for note in r.notes:
                    print(f"   note: {note}")
                per_rep.append([n, rep + 1, side, f"{r.cpu_pct_per_stream:.3f}", f"{r.pss_mb_per_stream:.1f}",
                                f"{r.frames_kept_pct:.2f}", fmt(lag_of(r)), f"{r.other_load_pct:.0f}"])
        merged = {s: merge(rs) for s, rs in runs.items()}
        f = merged.get("floor")
        for b in backends or [None]:
            v = merged.get(b) if b else None
            ratio = v.cpu_pct_per_stream / f.cpu_pct_per_stream if f and v and f.cpu_pct_per_stream else None
            print(f"-- N={n} {b or ''}: Varta CPU {fmt(v and v.cpu_pct_per_stream, 3)}%/stream vs floor "
                  f"{fmt(f and f.cpu_pct_per_stream, 3)}% → ×{fmt(ratio)} (target ≤ ×{TARGET_CPU_RATIO:.2f}); "
                  f"PSS {fmt(v and v.pss_mb_per_stream, 1)} MB/stream (floor {fmt(f and f.pss_mb_per_stream, 1)}, "
                  f"target ≤ {TARGET_PSS_MB:g}); frames kept {fmt(v and v.frames_kept_pct)}% "
                  f"(floor {fmt(f and f.frames_kept_pct)}%); max lag {fmt(lag_of(v))} s "
                  f"(floor {fmt(lag_of(f))}, target ≤ {TARGET_LAG_S:g})", flush=True)

            def both(fn, nd: int = 2, v=v) -> str:
                return f"{fmt(fn(f) if f else None, nd)} / {fmt(fn(v) if v else None, nd)}"

            rows.append([n, b or "–", fmt(f and f.cpu_pct_per_stream, 3), fmt(v and v.cpu_pct_per_stream, 3),
                         "–" if ratio is None else f"×{ratio:.2f}",
                         fmt(f and f.pss_mb_per_stream, 1), fmt(v and v.pss_mb_per_stream, 1),
                         both(lambda r: r.frames_kept_pct), both(lag_of), fmt(v and v.max_newest_age_s, 1),
                         both(lambda r: r.sim_pct_per_stream), both(lambda r: r.other_load_pct, 0)])
            if v:
                detail_rows.append([n, b, f"{100 * v.cpu_main_s / v.window_s:.2f}",
                                    f"{100 * v.cpu_main_s / v.window_s / n:.3f}",
                                    f"{100 * (v.cpu_s - v.cpu_main_s) / v.window_s / n:.3f}",
                                    f"{v.pss_main_first_kb / 1024:.0f} → {v.pss_main_kb / 1024:.0f}",
                                    fmt(v.ffmpeg_pss_mb if v.pss_ffmpeg_kb else None, 1),
                                    fmt(f and f.ffmpeg_pss_mb, 1),
                                    fmt(f and (sum(f.rss_ffmpeg_kb) / max(1, len(f.rss_ffmpeg_kb))) / 1024, 1),
                                    both(lambda r: r.segments_in_window, 0), both(lambda r: r.restarts, 0)])
        loc, shp = merged.get("pyav"), merged.get(SHIPPING)
        if loc and shp and loc.cpu_pct_per_stream:
            k = shp.cpu_pct_per_stream / loc.cpu_pct_per_stream
            line = (f"shipping to the bucket: {shp.cpu_pct_per_stream:.3f}% of a core per stream vs "
                    f"{loc.cpu_pct_per_stream:.3f}% for the local-only recorder in the same run → ×{k:.2f} "
                    f"(target ≤ ×1.25); PSS {shp.pss_mb_per_stream:.1f} vs {loc.pss_mb_per_stream:.1f} MB/stream")
            print(f"-- N={n} {line}", flush=True)
            notes.append(f"N={n} {line}")
        for side, r in merged.items():
            notes += [f"N={n} {side}: {x}" for x in dict.fromkeys(r.notes)]
        raw.append({s: {k: getattr(r, k) for k in r.__dataclass_fields__} | {
            "cpu_pct_per_stream": r.cpu_pct_per_stream, "pss_mb_per_stream": r.pss_mb_per_stream,
            "frames_kept_pct": r.frames_kept_pct} for s, r in merged.items()})
    (C.OUT / "recorder_bench.json").write_text(json.dumps(raw, indent=1, default=str))
    extra = (f"- warm-up {warmup:g} s after every stream has data, window {window:g} s"
             f"{f', {repeat} alternating runs per side (figures over all windows)' if repeat > 1 else ''}; "
             f"the sides ({', '.join(sides)}) run one after the other, each against a fresh camera simulator "
             f"(GStreamer, one thread)")
    if prefill_days:
        extra += (f"\n- Varta's index prefilled with up to {prefill_days:g} days of past segment rows per camera "
                  f"(a recorder in steady state; nothing old enough for retention to delete)")
    if varta_env:
        extra += f"\n- Varta process environment: {' '.join(f'{k}={v}' for k, v in varta_env.items())}"
    if floor_env:
        extra += f"\n- floor ffmpeg environment: {' '.join(f'{k}={v}' for k, v in floor_env.items())}"
    if len(code_seen) > 1:
        extra += "\n- the code changed during this run; runs per commit: " + "; ".join(
            f"{k}: {', '.join(v)}" for k, v in code_seen.items())
    block = C.header(f"Recorder: Varta ({mode}) vs bare ffmpeg, 1080p25 4 Mbit/s, {seg_s} s segments", extra)
    block += "\n" + C.md_table(
        ["N", "Varta backend", "floor CPU %/stream", "Varta CPU %/stream", "ratio (≤ ×1.10)", "floor PSS MB",
         "Varta PSS MB/stream (≤ 10)", "frames kept % floor / Varta", "max lag s floor / Varta (≤ 2)",
         "newest segment age s", "simulator CPU %/stream floor / Varta", "other load % floor / Varta"],
        rows)
    if detail_rows:
        block += "\n\nDetails (Varta side unless marked):\n\n" + C.md_table(
            ["N", "backend", "Varta Python CPU % (total)", "Python CPU %/stream", "Varta ffmpeg CPU %/stream",
             "Python PSS MB, window start → end", "Varta ffmpeg PSS MB", "floor ffmpeg PSS MB", "floor ffmpeg RSS MB",
             "segments in window floor / Varta", "ingest restarts floor / Varta"],
            detail_rows)
    if repeat > 1:
        block += "\n\nEach run:\n\n" + C.md_table(["N", "run", "side", "CPU %/stream", "PSS MB/stream",
                                                    "frames kept %", "max lag s", "other load %"], per_rep)
    block += ("\n\nCPU: % of one core (utime+stime over the window). Frames kept: packets in the segments "
              "closed in the window (after the first) vs 25 fps x the wall time between the first and last "
              "close; the simulator itself delivers ~0.04% below real time (loop wrap), so the floor reads "
              "~99.96%. Lag: segment close time minus its media end on the run clock; Varta's figure is the max "
              "of camera_status.lag_s (polled every 2 s) and that. Newest segment age: now - "
              f"camera_status.last_segment_end_us, normally up to one segment ({seg_s} s) plus the lag. Other "
              "load: CPU of every other process on the machine during the window (a test suite, the kernel "
              "threads, this benchmark's own polling is excluded), % of one core; the machine has 2.")
    if notes:
        block += "\n\nNotes:\n" + "\n".join(f"- {x}" for x in notes)
    return C.emit(block, results, "recorder_bench.md")


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default=None, help="comma-separated stream counts (default 1,8,32,64)")
    ap.add_argument("--quick", action="store_true", help="1,8 streams and 30 s windows")
    ap.add_argument("--window", type=float, default=None, help="measurement window, s (default 60)")
    ap.add_argument("--warmup", type=float, default=10.0, help="warm-up after every stream has data, s")
    ap.add_argument("--segment-seconds", type=int, default=10)
    ap.add_argument("--mode", choices=("recorder", "serve"), default="recorder",
                    help="run `varta recorder` (default) or `varta serve`")
    ap.add_argument("--backends", default="pyav,ffmpeg",
                    help="Varta ingest backends to measure, comma-separated (pyav,ffmpeg,pyav+s3: the pyav recorder "
                         "shipping to a local S3 server; 'none' = floor only)")
    ap.add_argument("--no-floor", action="store_true", help="skip the bare-ffmpeg floor")
    ap.add_argument("--repeat", type=int, default=1, help="alternate the sides this many times per N (default 1)")
    ap.add_argument("--varta-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the Varta process (e.g. MALLOC_ARENA_MAX=2); repeatable")
    ap.add_argument("--floor-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the floor's ffmpeg processes; repeatable")
    ap.add_argument("--prefill-days", type=float, default=0.0,
                    help="before starting Varta, fill its index with this many days of past segment rows per "
                         "camera (at most ~7), to measure a recorder whose archive is full (janitor scans)")
    ap.add_argument("--keep", action="store_true", help="keep the recordings under bench/out")
    ap.add_argument("--results", default=None, help="append the Markdown block here (default bench/out/...)")
    a = ap.parse_args(argv)
    counts = [int(x) for x in (a.counts or ("1,8" if a.quick else "1,8,32,64")).split(",") if x.strip()]
    window = a.window or (30.0 if a.quick else 60.0)
    if any(c < 1 or c > 256 for c in counts):
        raise SystemExit("counts must be between 1 and 256")
    if window < 3 * a.segment_seconds:
        raise SystemExit(f"--window must hold at least 3 segments ({3 * a.segment_seconds} s): frames kept is "
                         "counted between segment closes inside the window")
    backends = [] if a.backends == "none" else [b.strip() for b in a.backends.split(",") if b.strip()]
    if any(b not in ("pyav", "ffmpeg", SHIPPING) for b in backends):
        raise SystemExit(f"--backends: pyav, ffmpeg and/or {SHIPPING} (shipping to a local S3 server), or none")
    sides = tuple(([] if a.no_floor else ["floor"]) + backends)
    if not sides or not 1 <= a.repeat <= 10 or not 0 <= a.prefill_days <= 10:
        raise SystemExit("nothing to run, or --repeat outside 1..10, or --prefill-days outside 0..10")
    return run(counts, a.warmup, window, a.segment_seconds, a.mode, a.keep, a.results, sides, a.repeat,
               dict(kv.split("=", 1) for kv in a.varta_env), a.prefill_days,
               dict(kv.split("=", 1) for kv in a.floor_env))


if __name__ == "__main__":
    main()
