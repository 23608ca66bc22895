#!/usr/bin/env python3
"""Video analytics cost: throughput per core, cameras per machine, CPU per camera vs Motion.

Three parts (``--parts``, default all three, one after the other, never at the same time):

throughput
    Varta's analysis code in this process on real footage (the .ts camera loops made from
    vtest.avi, the three Intel clips and traffic_overhead.mp4 by
    ``varta.demo.media.prepare_from_file``, the same files the live parts serve). Process CPU
    time (``time.process_time``: every thread), YOLOX-nano on one ONNX Runtime thread
    (Varta's default ``detector_threads``). Frames per second per core, every frame of the
    file: decoding alone (the floor), motion only (``detect: false``), motion + detector on
    every frame; a bare ``InferenceSession.run`` beside the detector. Then each clip analysed
    at 5 fps as a camera is: CPU per second of video (= share of a core per camera), share of
    analysed frames with motion and with a detector run, gated (Varta) vs the detector on every
    analysed frame (``analyze_file(gate=False)``, the naive baseline).

capacity
    Real cameras: the GStreamer RTSP simulator serves the clips, ``varta recorder`` records
    them (pyav backend, 10 s segments) and starts its analytics worker (``varta analytics
    run``, niced, 1 detector thread, ``VARTA_ANALYTICS_CPU_CORES=2``); every camera has
    ``url`` = ``sub_url`` = the same simulated stream and analytics settings (5 fps, a
    whole-picture person zone rule) given with ``varta analytics set``. N grows in steps in
    one running system until analysis cannot hold 5 fps: a step holds when every camera's
    ``analytics_status.actual_fps`` averages >= 4.75 over the window, none is degraded, and
    recording stays complete (every camera recording, segments arriving, ``camera_status``
    lag <= 2 s). The naive baseline (detector on every analysed frame) has no setting in the
    worker; it is emulated with ``motion_threshold: -1`` (every pixel counts as changed, so
    the gate is always open) and measured the same way; the count computed from the
    throughput part's per-camera costs is printed beside it.

compare
    CPU per camera of recording + analysing, same N cameras of the realistic mix, same
    window, one after the other: Varta (recorder process + analytics worker process,
    utime+stime from /proc) vs Motion 4.5 (Debian's ``motion``: passthrough recording of the
    same RTSP stream, ``movie_passthrough on``, motion detection on every frame, no object
    detection).

Mixes: ``busy`` = vtest (people walking in every frame); ``clips`` = the realistic mix of
the three Intel clips (empty periods) and the traffic clip, round robin; ``quiet`` = the
clips plus as many cameras watching an empty parking lot (seconds 14-24 of the Intel
parking-lot clip, nobody in it, looped). Each clip keeps its native size and rate (480x360
to 768x432, 10 to 24 fps): sub-stream-like.

Usage::

    .venv/bin/python bench/analytics_bench.py [--quick] [--results FILE]
    .venv/bin/python bench/analytics_bench.py --parts capacity --mixes clips,quiet

Needs the GStreamer simulator (see bench/README.md), Debian's ``motion`` for the
comparison (``apt-get install motion``), the model at $VARTA_TEST_DATA/models/yolox_nano.onnx.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402  (also puts the project root on sys.path)

DATA = Path(os.environ.get("VARTA_TEST_DATA", "/work/shared/data"))
MODEL = DATA / "models" / "yolox_nano.onnx"
FPS = 5.0
CORES = 2.0  # VARTA_ANALYTICS_CPU_CORES for the live parts, and the machine's size
HOLD_FPS = 4.75  # a camera "holds 5 fps" when its actual_fps averages at least this
MAX_LAG_S = 2.0

CLIPS = {  # name: (source, what it shows)
    "vtest": ("video/vtest.avi", "plaza, people walking all the time (PETS09-S2L1)"),
    "people": ("video/intel_one-by-one-person-detection.mp4", "indoor, people one at a time, empty spells"),
    "parking": ("video/intel_person-bicycle-car-detection.mp4", "parking lot, a car, a cyclist, a walker; mostly empty"),
    "cars": ("video/intel_car-detection.mp4", "cars from straight above, empty spells"),
    "traffic": ("video/traffic_overhead.mp4", "dense road traffic from above"),
    "empty": ("video/intel_person-bicycle-car-detection.mp4", "the parking lot with nobody in it (its s 14-24, looped)"),
}
EMPTY_CUT = (14.0, 10.0)  # start, seconds of the parking-lot clip with nothing moving
MIXES = {
    "busy": ["vtest"],
    "clips": ["people", "parking", "cars", "traffic"],
    "quiet": ["people", "empty", "parking", "empty", "cars", "empty", "traffic", "empty"],
}
PERSON_ZONE = {"name": "anyone", "type": "zone", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]],
               "classes": ["person"], "min_dwell_s": 0.5}

from varta.recording.ingest import die_with_parent  # noqa: E402

_child_setup = die_with_parent  # in the forked child: die with the benchmark, own process group


def fmt(x: float | None, nd: int = 2) -> str:
    return "–" if x is None or x != x else f"{x:.{nd}f}"


# --------------------------------------------------------------------------- media


def clip_ts(name: str) -> Path:
    """The loopable camera stream for a clip (cached under bench/out/media)."""
    from varta.demo.media import ffmpeg_exe, prepare_from_file

    C.MEDIA.mkdir(parents=True, exist_ok=True)
    src = DATA / CLIPS[name][0]
    if name == "empty":
        cut = C.MEDIA / "ana-src-parking-empty-14-24s.mp4"
        if not cut.is_file():
            tmp = cut.with_suffix(".tmp.mp4")
            subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-ss", str(EMPTY_CUT[0]), "-i", str(src),
                            "-t", str(EMPTY_CUT[1]), "-an", "-c:v", "libx264", "-crf", "18", "-preset", "veryfast",
                            str(tmp)], check=True, timeout=120)
            tmp.replace(cut)
        src = cut
    return prepare_from_file(src, C.MEDIA / f"ana-{name}.ts")


def probe(path: Path) -> tuple[int, int, float, float]:
    """width, height, frame rate, duration (s) of a stream file."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        dur = float(c.duration / 1e6) if c.duration else float(s.duration * s.time_base)
        return s.codec_context.width, s.codec_context.height, float(s.average_rate), dur


# --------------------------------------------------------------------------- part B: throughput


@dataclass
class ClipCost:
    name: str
    size: str
    rate: float
    frames: int
    seconds: float  # media duration
    decode_ms: float = 0.0  # per frame, PyAV decode only
    decode_bgr_ms: float = 0.0  # decode + conversion to BGR (FrameSource, every frame)
    motion_ms: float = 0.0  # motion-only pipeline (with tamper, Varta's default), per frame
    detect_all_ms: float = 0.0  # motion + detector on every frame, per frame
    # at 5 fps, as a camera: CPU seconds per second of video (share of one core), frames
    analysed: int = 0
    motion_frames: int = 0
    gated_runs: int = 0
    core_motion: float = 0.0
    core_gated: float = 0.0
    core_naive: float = 0.0
    core_before: float = 0.0  # as before issue 14: FP32, 416x416 canvas, whole frames
    region_share: float | None = None  # detector runs on a region: mean share of the picture

    @property
    def motion_share(self) -> float:
        return self.motion_frames / self.analysed if self.analysed else float("nan")

    @property
    def detect_share(self) -> float:
        return self.gated_runs / self.analysed if self.analysed else float("nan")


def int8_model() -> Path:
    """The INT8 model made from MODEL exactly as ``varta model install`` makes it (cached)."""
    from varta.analytics.models import DEFAULT_MODEL, derive_int8, models_dir
    from varta.analytics.quantize import verified
    from varta.analytics.models import MODELS

    home = C.OUT / "int8-home"
    target = models_dir(home) / "yolox_nano_int8.onnx"
    if verified(target, MODELS[DEFAULT_MODEL].sha256):
        return target
    models_dir(home).mkdir(parents=True, exist_ok=True)
    shutil.copy(MODEL, models_dir(home) / MODEL.name)
    return derive_int8(DEFAULT_MODEL, home)


def _floor(det, blob, runs: int) -> float:
    c0 = time.process_time()
    for _ in range(runs):
        det.session.run(None, {det.input: blob})
    return 1000 * (time.process_time() - c0) / runs


def _detect_ms(det, picture, runs: int) -> float:
    c0 = time.process_time()
    for _ in range(runs):
        det.detect(picture)
    return 1000 * (time.process_time() - c0) / runs


def throughput(names: list[str], quick: bool) -> tuple[list[ClipCost], dict]:
    import av
    import numpy as np

    from varta.analytics.config import parse_config
    from varta.analytics.detector import YoloxDetector, letterbox
    from varta.analytics.offline import analyze_file
    from varta.analytics.source import FrameSource

    import cv2

    cv2.setNumThreads(1)  # as the worker runs (worker.start): one OpenCV thread per camera thread
    # Before issue 14: the official FP32 export on its 416x416 canvas, whole frames. Now:
    # the same weights on the cropped canvas, motion regions (Varta's defaults; INT8 is a
    # setting, its bare run is measured as a floor).
    before = YoloxDetector(MODEL, threads=1, square=True)
    det = fp32 = YoloxDetector(MODEL, threads=1)
    blank = np.full((432, 768, 3), 90, np.uint8)  # the Intel clips' size: a 416x256 canvas
    for d in (before, det, fp32):
        for _ in range(5):
            d.detect(blank)
    runs = 60 if quick else 200
    # Floors: InferenceSession.run alone, each model on the canvas it is given.
    ort_before = _floor(before, letterbox(blank, square=True)[0], runs)
    ort_fp32 = _floor(fp32, letterbox(blank, square=False)[0], runs)
    ort_ms = ort_fp32
    ort_int8 = _floor(YoloxDetector(int8_model(), threads=1), letterbox(blank, square=False)[0], runs)
    detect_before = _detect_ms(before, blank, runs)
    detect_ms = _detect_ms(det, blank, runs)
    out: list[ClipCost] = []
    motion_cfg = parse_config({"detect": False})
    full_cfg = parse_config({"fps": FPS, "rules": [PERSON_ZONE]})
    before_cfg = parse_config({"fps": FPS, "rules": [PERSON_ZONE], "detect_region": "frame"})
    for name in names:
        ts = clip_ts(name)
        w, h, rate, dur = probe(ts)
        cc = ClipCost(name, f"{w}x{h}", rate, 0, dur)
        # Floor: decoding alone (PyAV, one thread, as FrameSource sets it), no conversion.
        c0 = time.process_time()
        with av.open(str(ts)) as cont:
            st = cont.streams.video[0]
            st.thread_type = "SLICE"
            st.codec_context.thread_count = 1
            n = sum(1 for _ in cont.decode(st))
        cc.frames = n
        cc.decode_ms = 1000 * (time.process_time() - c0) / n
        c0 = time.process_time()
        k = sum(1 for _ in FrameSource(str(ts), 0, live=False, start_us=0).frames())
        cc.decode_bgr_ms = 1000 * (time.process_time() - c0) / k
        r = analyze_file(ts, motion_cfg, None, fps=0)
        cc.motion_ms = 1000 * r.cpu_s / r.frames_analysed
        if name in (("vtest", "traffic") if quick else ("vtest", "parking", "cars", "traffic")):
            r = analyze_file(ts, full_cfg, det, fps=0, gate=False)
            cc.detect_all_ms = 1000 * r.cpu_s / r.frames_analysed
        # As a camera at 5 fps: every frame decoded, 5 a second analysed.
        r = analyze_file(ts, motion_cfg, None, fps=FPS)
        cc.core_motion = r.cpu_s / dur
        r = analyze_file(ts, full_cfg, det, fps=FPS, gate=True)
        cc.core_gated = r.cpu_s / dur
        cc.analysed, cc.motion_frames, cc.gated_runs = r.frames_analysed, r.motion_frames, r.detections_run
        cc.region_share = r.region_share
        r = analyze_file(ts, before_cfg, before, fps=FPS, gate=True)
        cc.core_before = r.cpu_s / dur
        r = analyze_file(ts, before_cfg, det, fps=FPS, gate=False)
        cc.core_naive = r.cpu_s / dur
        print(f"   {name:8s} {cc.size} {rate:.3g} fps {n} frames: decode {cc.decode_ms:.2f} ms, +BGR "
              f"{cc.decode_bgr_ms:.2f} ms, motion-only {cc.motion_ms:.2f} ms, motion+detector "
              f"{cc.detect_all_ms or float('nan'):.2f} ms per frame | at 5 fps: motion on "
              f"{100 * cc.motion_share:.0f}% of analysed frames, detector on {100 * cc.detect_share:.0f}%; "
              f"% of a core per camera: motion-only {100 * cc.core_motion:.2f}, Varta (gated) "
              f"{100 * cc.core_gated:.2f} (before issue 14: {100 * cc.core_before:.2f}), naive "
              f"{100 * cc.core_naive:.2f}", flush=True)
        out.append(cc)
    default_threads = 1
    return out, {"ort_ms": ort_ms, "detect_ms": detect_ms, "cv_threads": default_threads, "ort_before": ort_before,
                 "ort_fp32": ort_fp32, "detect_before": detect_before, "ort_int8": ort_int8}


def mix_costs(costs: dict[str, ClipCost], mix: list[str]) -> dict[str, float]:
    """Per-camera averages over a mix (each clip weighted by its share of the cameras)."""
    cs = [costs[k] for k in mix if k in costs]
    if len(cs) != len(mix):
        return {}
    avg = lambda f: sum(f(c) for c in cs) / len(cs)  # noqa: E731
    return {"gated": avg(lambda c: c.core_gated), "naive": avg(lambda c: c.core_naive),
            "before": avg(lambda c: c.core_before),
            "motion": avg(lambda c: c.core_motion), "motion_share": avg(lambda c: c.motion_share),
            "detect_share": avg(lambda c: c.detect_share)}


# --------------------------------------------------------------------------- live system


def cli(env: dict, *args: str, timeout: float = 60) -> str:
    r = subprocess.run([sys.executable, "-m", "varta.cli", *args], env=env, capture_output=True, text=True,
                       timeout=timeout, cwd=env.get("PYTHONPATH") or C.ROOT)  # a baseline's tree runs its own code
    if r.returncode != 0:
        raise RuntimeError(f"varta {' '.join(args)} failed: {r.stdout}\n{r.stderr}")
    return r.stdout


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = C.children(p)
        out += kids
        todo += kids
    return out


@dataclass
class Window:
    n: int
    seconds: float
    recorder_cpu: float = 0.0  # CPU seconds over the window
    worker_cpu: float = 0.0
    sim_cpu: float = 0.0
    other_cpu: float = 0.0
    machine_busy: float = 0.0  # share of the machine (both cores) busy, /proc/stat
    fps: dict = field(default_factory=dict)  # camera -> list of actual_fps samples
    dfps: dict = field(default_factory=dict)
    states: dict = field(default_factory=dict)  # camera -> set of states seen
    max_lag: float = 0.0
    max_age: float = 0.0  # now - last_segment_end_us, worst
    not_recording: int = 0  # cameras not in state recording at some poll
    segments: dict = field(default_factory=dict)  # camera -> segments that ended (were indexed) in the window
    close_delays: list = field(default_factory=list)  # events closed in the window: written - end, s
    notes: list = field(default_factory=list)

    @property
    def busy_cores(self) -> float:  # every process measured, in cores
        return (self.worker_cpu + self.recorder_cpu + self.sim_cpu + self.other_cpu) / self.seconds

    def delay(self) -> str:
        d = sorted(self.close_delays)
        return f"{C.median(d):.1f} / {d[-1]:.1f} ({len(d)})" if d else "–"

    def cam_fps(self) -> dict[str, float]:
        return {c: sum(v) / len(v) for c, v in self.fps.items() if v}

    @property
    def min_fps(self) -> float:
        f = self.cam_fps()
        return min(f.values()) if len(f) == self.n else 0.0

    @property
    def mean_fps(self) -> float:
        f = self.cam_fps()
        return sum(f.values()) / self.n if self.n else 0.0

    @property
    def detect_fps(self) -> float:  # all cameras together
        return sum(sum(v) / len(v) for v in self.dfps.values() if v)

    @property
    def degraded(self) -> int:
        return sum(1 for s in self.states.values() if s & {"degraded", "no_video", "starting", "off"})

    @property
    def min_segments(self) -> int:
        return min((self.segments.get(f"cam{i + 1:03d}", 0) for i in range(self.n)), default=0)

    @property
    def recording_ok(self) -> bool:
        expected = int(self.seconds // 10) - 1
        return (self.not_recording == 0 and self.max_lag <= MAX_LAG_S and self.min_segments >= max(1, expected))

    @property
    def holds(self) -> bool:
        return self.min_fps >= HOLD_FPS and self.degraded == 0 and self.recording_ok

    def pct(self, cpu: float) -> float:
        return 100.0 * cpu / self.seconds


class LiveVarta:
    """``varta recorder`` (+ its analytics child) on a fresh home, cameras added in steps."""

    def __init__(self, work: Path, sim, mix: list[str], naive: bool, extra_env: dict | None = None,
                 detect: bool = True, settings: dict | None = None, code: Path | None = None):
        self.home = work / "home"
        (self.home / "models").mkdir(parents=True)
        shutil.copy(MODEL, self.home / "models" / MODEL.name)  # installed, as `varta model install --from` does
        self.sim, self.mix, self.naive = sim, mix, naive
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VARTA_") and k != "PYTHONPATH"}
        self.env.update({"VARTA_HOME": str(self.home), "VARTA_SEGMENT_SECONDS": "10", "VARTA_RECORDER_NAME": "bench",
                         "VARTA_ANALYTICS_CPU_CORES": f"{CORES:g}",
                         "VARTA_RECORDER_BACKEND": "pyav", **(extra_env or {})})
        self.code = code
        if code is not None:  # another version of Varta (a git worktree): its code, its defaults
            self.env["PYTHONPATH"] = str(code)
        self.n = 0
        self.proc: subprocess.Popen | None = None
        cfg = {"fps": FPS, "rules": [PERSON_ZONE]} if detect else {"fps": FPS, "detect": False}
        cfg.update(settings or {})
        if naive:
            cfg["motion_threshold"] = -1  # every pixel "changed": the detector runs on every analysed frame
        self.cfg_file = work / "analytics.json"
        self.cfg_file.write_text(json.dumps(cfg))
        self.kinds: dict[str, str] = {}

    def add(self, count: int) -> None:
        ids = [f"cam{self.n + i + 1:03d}" for i in range(count)]
        lines = ["cameras:"]
        for i, cam in enumerate(ids):
            kind = self.mix[(self.n + i) % len(self.mix)]
            self.kinds[cam] = kind
            url = self.sim.url(kind)
            lines += [f"  - id: {cam}", f"    url: {url}", f"    sub_url: {url}", "    kind: other"]
        f = self.home / f"cams-{self.n + 1}.yaml"
        f.write_text("\n".join(lines) + "\n")
        cli(self.env, "camera", "import", str(f))
        # `varta analytics set` per camera (a process each, ~1 s of CPU): three at a time.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda cam: cli(self.env, "analytics", "set", cam, str(self.cfg_file)), ids))
        self.n += count

    def start(self) -> None:
        log = open(self.home / "varta.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "varta.cli", "recorder"], env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.code or C.ROOT, preexec_fn=_child_setup)
        log.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def worker_pid(self) -> int | None:
        if not self.proc:
            return None
        for p in C.children(self.proc.pid):
            if "analytics run" in cmdline(p):
                return p
        return None

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.home / 'varta.db'}?mode=ro", uri=True, timeout=10)

    def ready(self) -> bool:
        now = time.time() * 1e6
        try:
            with self.db() as con:
                ana = con.execute("select count(*) from analytics_status where state in ('analysing','motion_only') "
                                  "and actual_fps > 0 and updated_us > ?", (now - 7e6,)).fetchone()[0]
                rec = con.execute("select count(*) from camera_status where state='recording' "
                                  "and last_segment_end_us is not null").fetchone()[0]
        except sqlite3.Error:
            return False
        return ana >= self.n and rec >= self.n

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"varta recorder exited: {(self.home / 'varta.log').read_text()[-3000:]}")
            if self.ready():
                return True
            time.sleep(1)
        return False

    def measure(self, warmup: float, window: float) -> Window:
        time.sleep(warmup)
        wpid = self.worker_pid()
        res = Window(self.n, window)
        if wpid is None:
            res.notes.append("no analytics worker process")
        pids = [self.proc.pid] + ([wpid] if wpid else [])
        cpu = C.CpuWindow(pids + [self.sim.pid])
        all0 = C.all_cpu()
        b0, t0 = C.machine_busy()
        w0 = time.time()
        cpu.start()
        end = time.monotonic() + window
        seen_updates: set = set()
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(2.0, left))
            self._poll(res, w0, seen_updates)
        cpu.stop()
        b1, t1 = C.machine_busy()
        w1 = time.time()
        all1 = C.all_cpu()
        res.seconds = w1 - w0
        slow = sorted((f, c) for c, f in res.cam_fps().items() if f < HOLD_FPS)
        if slow:
            res.notes.append("below 4.75 fps: " + ", ".join(f"{c} ({self.kinds.get(c, '?')}) {f:.2f}"
                                                            for f, c in slow[:6]) + (" …" if len(slow) > 6 else ""))
        res.recorder_cpu = cpu.used(self.proc.pid)
        res.worker_cpu = cpu.used(wpid) if wpid else 0.0
        res.sim_cpu = cpu.used(self.sim.pid)
        mine = set(pids) | {self.sim.pid, os.getpid()}
        res.other_cpu = sum(all1[p] - all0[p] for p in all1 if p in all0 and p not in mine)
        res.machine_busy = (b1 - b0) / (t1 - t0) if t1 > t0 else float("nan")
        if cpu.lost:
            res.notes.append(f"processes ended inside the window: {cpu.lost}")
        try:
            with self.db() as con:
                # Segments *finished* (indexed) in the window: one that starts late in it is not
                # closed by its end, which read as "not recording" for a healthy camera.
                for cam, k in con.execute("select camera_id, count(*) from segments where end_us >= ? and "
                                          "end_us < ? group by camera_id", (int(w0 * 1e6), int(w1 * 1e6))):
                    res.segments[cam] = k
                # How late the worker closes events: written (updated_us) - the object's last sighting (end_us).
                # Normally the tracker's 2 s memory plus a little; it grows when analysis falls behind.
                res.close_delays = [(u - e) / 1e6 for u, e in con.execute(
                    "select updated_us, end_us from events where end_us is not null and updated_us >= ? and "
                    "updated_us < ? and kind != 'motion'", (int(w0 * 1e6), int(w1 * 1e6)))]
        except sqlite3.Error as exc:
            res.notes.append(f"segments: {exc}")
        return res

    def _poll(self, res: Window, w0: float, seen: set) -> None:
        now = time.time()
        try:
            with self.db() as con:
                for cam, state, afps, dfps, upd in con.execute(
                        "select camera_id, state, actual_fps, detect_fps, updated_us from analytics_status"):
                    res.states.setdefault(cam, set()).add(state)
                    if upd / 1e6 >= w0 and (cam, upd) not in seen:
                        seen.add((cam, upd))
                        res.fps.setdefault(cam, []).append(float(afps))
                        res.dfps.setdefault(cam, []).append(float(dfps))
                for cam, state, lag, end_us in con.execute(
                        "select camera_id, state, lag_s, last_segment_end_us from camera_status"):
                    if state != "recording":
                        res.not_recording += 1
                    if lag is not None:
                        res.max_lag = max(res.max_lag, float(lag))
                    if end_us is not None:
                        res.max_age = max(res.max_age, now - end_us / 1e6)
        except sqlite3.Error as exc:
            res.notes.append(f"db poll: {exc}")

    def log_errors(self) -> str:
        try:
            text = (self.home / "varta.log").read_text(errors="replace")
        except OSError:
            return ""
        bad = [ln for ln in text.splitlines() if " ERROR " in ln or "Traceback" in ln]
        slowed = sum(1 for ln in text.splitlines() if "analysis slowed" in ln)
        out = f"{len(bad)} error lines" + (f" (first: {bad[0][:200]})" if bad else "")
        if slowed:
            out += f"; governor slowed a camera {slowed} times"
        return out


def make_sim(kinds: list[str]):
    from varta.demo.simulator import CameraSimulator, gst_rtsp_available

    ok, why = gst_rtsp_available()
    if not ok:
        raise SystemExit(f"camera simulator unavailable: {why}")
    sim = CameraSimulator({k: clip_ts(k) for k in dict.fromkeys(kinds)}, ready_timeout=60)
    sim.start()
    return sim


# --------------------------------------------------------------------------- part C: capacity


@dataclass
class Ramp:
    mix: str
    naive: bool
    steps: list[Window] = field(default_factory=list)
    log: str = ""
    code: str = ""  # "" = this tree; else the baseline's label

    @property
    def label(self) -> str:
        what = "naive (gate always open)" if self.naive else "Varta (motion gate)"
        return f"{what}, {self.code}" if self.code else what

    @property
    def capacity(self) -> int | None:
        ok = [w.n for w in self.steps if w.holds]
        return max(ok) if ok else None

    @property
    def first_fail(self) -> int | None:
        bad = [w.n for w in self.steps if not w.holds]
        return min(bad) if bad else None


def ramp(mix: str, naive: bool, start: int, step: int, max_steps: int, warmup: float, window: float,
         env: dict | None = None, settings: dict | None = None, code: Path | None = None,
         code_label: str = "") -> Ramp:
    out = Ramp(mix, naive, code=code_label)
    kinds = MIXES[mix]
    n0 = max(1, start)
    tried_lower = False
    while True:
        sim = make_sim(kinds)
        work = Path(tempfile.mkdtemp(prefix=f"varta-ana-{mix}-", dir=C.OUT))
        live = LiveVarta(work, sim, kinds, naive, env, settings=settings, code=code)
        try:
            live.add(n0)
            live.start()
            for i in range(max_steps):
                label = f"{mix} {out.label} N={live.n}"
                t = time.monotonic()
                ok = live.wait_ready(60 + 2 * live.n)
                if not ok:
                    print(f"   {label}: not every camera analysing/recording after {time.monotonic() - t:.0f} s; "
                          "measuring anyway", flush=True)
                w = live.measure(warmup, window)
                if not ok:
                    w.notes.append("not every camera reported analysing and recording before the window")
                out.steps.append(w)
                print(f"   {label}: actual fps min {w.min_fps:.2f} mean {w.mean_fps:.2f}, detector {w.detect_fps:.1f}/s "
                      f"({100 * w.detect_fps / (FPS * w.n):.0f}% of analysed frames), degraded {w.degraded}; "
                      f"CPU % of a core: worker {w.pct(w.worker_cpu):.0f}, recorder {w.pct(w.recorder_cpu):.0f}, "
                      f"simulator {w.pct(w.sim_cpu):.0f}, other {w.pct(w.other_cpu):.0f} = "
                      f"{100 * w.busy_cores / CORES:.0f}% of the 2 cores; event close delay s {w.delay()}; "
                      f"recording: max lag {w.max_lag:.2f} s, min segments "
                      f"{w.min_segments}, not recording {w.not_recording} -> {'HOLDS' if w.holds else 'does not hold'}"
                      + (f" ({'; '.join(w.notes)})" if w.notes else ""), flush=True)
                if not w.holds or i == max_steps - 1:
                    break
                live.add(step)
        finally:
            live.stop()
            out.log = live.log_errors()
            sim.close()
            shutil.rmtree(work, ignore_errors=True)
        if out.capacity is None and not tried_lower and n0 > 1:
            tried_lower = True  # the first step already failed: start again lower
            n0 = max(1, n0 - 2 * step)
            max_steps = 2
            continue
        return out


# --------------------------------------------------------------------------- part D: Motion


MOTION_MAIN = """daemon off
setup_mode off
log_file {dir}/motion.log
log_level 5
target_dir {dir}/rec
webcontrol_port 0
stream_port 0
camera_dir {dir}/cams
"""
MOTION_CAM = """camera_id {id}
camera_name {name}
netcam_url {url}
netcam_params rtsp_transport=tcp
width {w}
height {h}
framerate {fps}
threshold 1500
emulate_motion off
picture_output off
movie_output on
movie_passthrough on
movie_max_time 10
movie_filename {name}/%Y%m%d%H%M%S-%v
text_left {name}
text_right %Y-%m-%d\\n%T
locate_motion_mode off
"""


def run_motion(work: Path, sim, cams: dict[str, str], warmup: float, window: float) -> dict:
    exe = shutil.which("motion")
    if not exe:
        return {"error": "motion is not installed (apt-get install -y motion)"}
    d = work / "motion"
    (d / "cams").mkdir(parents=True)
    (d / "rec").mkdir()
    (d / "motion.conf").write_text(MOTION_MAIN.format(dir=d))
    for i, (cam, kind) in enumerate(cams.items(), start=1):
        w, h, rate, _ = probe(clip_ts(kind))
        (d / "cams" / f"{cam}.conf").write_text(MOTION_CAM.format(id=i, name=cam, url=sim.url(kind), w=w, h=h,
                                                                  fps=math.ceil(rate)))
    version = subprocess.run([exe, "-h"], capture_output=True, text=True).stdout.split("\n")[0].split(",")[0].strip()
    log = open(d / "stdout.log", "wb")
    proc = subprocess.Popen([exe, "-n", "-c", str(d / "motion.conf")], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, preexec_fn=_child_setup, cwd=d)
    log.close()
    try:
        time.sleep(5 + warmup)
        if proc.poll() is not None:
            return {"error": f"motion exited: {(d / 'motion.log').read_text(errors='replace')[-1500:]}"}
        cpu = C.CpuWindow([proc.pid, sim.pid])
        b0, t0 = C.machine_busy()
        all0 = C.all_cpu()
        w0 = time.time()
        cpu.start()
        time.sleep(window)
        cpu.stop()
        all1 = C.all_cpu()
        b1, t1 = C.machine_busy()
        secs = time.time() - w0
        mine = {proc.pid, sim.pid, os.getpid()}
        other = sum(all1[p] - all0[p] for p in all1 if p in all0 and p not in mine)
        files = [p for p in (d / "rec").rglob("*") if p.is_file()]
        text = (d / "motion.log").read_text(errors="replace")
        return {"version": version, "cpu": cpu.used(proc.pid), "sim": cpu.used(sim.pid), "seconds": secs,
                "machine": (b1 - b0) / (t1 - t0), "files": len(files), "other": other,
                "bytes": sum(p.stat().st_size for p in files), "threads": len(os.listdir(f"/proc/{proc.pid}/task")),
                "errors": sum(1 for ln in text.splitlines() if "[ERR]" in ln),
                "connected": sum(1 for cam in cams if cam in text),
                "passthrough": text.count("passthrough")}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def varta_window(n: int, kinds: list[str], warmup: float, window: float, detect: bool, env: dict | None) -> tuple:
    sim = make_sim(kinds)
    work = Path(tempfile.mkdtemp(prefix="varta-ana-cmp-", dir=C.OUT))
    try:
        live = LiveVarta(work, sim, kinds, naive=False, extra_env=env, detect=detect)
        try:
            live.add(n)
            live.start()
            ok = live.wait_ready(90)
            w = live.measure(warmup, window)
            if not ok:
                w.notes.append("not every camera reported analysing and recording before the window")
        finally:
            live.stop()
        log = live.log_errors()
    finally:
        sim.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"   Varta ({'motion + objects' if detect else 'motion only, detect: false'}), {n} cameras: recorder "
          f"{w.pct(w.recorder_cpu) / n:.2f} + worker {w.pct(w.worker_cpu) / n:.2f} = "
          f"{w.pct(w.recorder_cpu + w.worker_cpu) / n:.2f}% of a core per camera; actual fps min {w.min_fps:.2f}; "
          f"detector {w.detect_fps:.1f}/s; simulator {w.pct(w.sim_cpu) / n:.2f}%/camera; other load "
          f"{w.pct(w.other_cpu):.0f}%", flush=True)
    return w, log


def compare(n: int, mix: str, warmup: float, window: float, env: dict | None = None, motion_only: bool = True) -> dict:
    kinds = MIXES[mix]
    cams = {f"cam{i + 1:03d}": kinds[i % len(kinds)] for i in range(n)}
    out: dict = {"n": n, "mix": mix}
    out["varta"], out["varta_log"] = varta_window(n, kinds, warmup, window, True, env)
    if motion_only:
        out["varta_motion"], out["varta_motion_log"] = varta_window(n, kinds, warmup, window, False, env)
    # Motion, same streams, same window (a fresh simulator: one RTSP session per camera)
    sim = make_sim(kinds)
    work = Path(tempfile.mkdtemp(prefix="varta-ana-motion-", dir=C.OUT))
    try:
        m = run_motion(work, sim, cams, warmup, window)
    finally:
        sim.close()
        shutil.rmtree(work, ignore_errors=True)
    out["motion"] = m
    if "error" in m:
        print(f"   Motion: {m['error']}", flush=True)
    else:
        print(f"   {m['version']}, {n} cameras: {100 * m['cpu'] / m['seconds'] / n:.2f}% of a core per camera; "
              f"{m['files']} movie files; errors in its log {m['errors']}; simulator "
              f"{100 * m['sim'] / m['seconds'] / n:.2f}%/camera; other load {100 * m['other'] / m['seconds']:.0f}%",
              flush=True)
    return out


# --------------------------------------------------------------------------- main

REC_CORE = 0.004  # recording one of these sub-streams (measured: 0.3-0.4 % of a core)
SIM_CORE = 0.009  # the simulator's two RTSP sessions per camera (measured: 0.6-0.9 %)


def computed_capacity(m: dict, naive: bool, detect_ms: float) -> tuple[float, float, float]:
    """(N, CPU bound, detector-pool bound) for a mix's per-camera costs at 5 fps (the pool:
    as many inferences at once as the analytics budget has cores, worker.pool_size)."""
    per = (m["naive"] if naive else m["gated"]) + REC_CORE + SIM_CORE
    cpu_bound = CORES / per
    share = 1.0 if naive else max(m["detect_share"], 1e-6)
    det_bound = math.ceil(CORES) * (1000.0 / detect_ms) / (FPS * share)
    return min(cpu_bound, det_bound), cpu_bound, det_bound



def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="vtest only, one capacity step, 4 cameras vs Motion (~3 min)")
    ap.add_argument("--parts", default="throughput,capacity,compare")
    ap.add_argument("--mixes", default=None, help="capacity mixes (default busy,clips; quick: clips)")
    ap.add_argument("--naive-mixes", default=None, help="mixes for the naive ramp (default clips)")
    ap.add_argument("--start", default=None, help="capacity: first N per mix, e.g. busy=10,clips=14 (default: "
                                                    "computed from the throughput part)")
    ap.add_argument("--step", type=int, default=None, help="capacity: cameras added per step")
    ap.add_argument("--steps", type=int, default=None, help="capacity: at most this many steps per ramp")
    ap.add_argument("--window", type=float, default=None, help="capacity: measurement window per step, s (default 20)")
    ap.add_argument("--warmup", type=float, default=5.0, help="after every camera analyses and records (default 5 s)")
    ap.add_argument("--compare-n", type=int, default=None, help="cameras for the Motion comparison (default 8; quick 4)")
    ap.add_argument("--compare-window", type=float, default=None, help="default 45 s (quick 15)")
    ap.add_argument("--varta-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the live Varta runs (e.g. VARTA_DETECTOR_THREADS=2); repeatable")
    ap.add_argument("--settings", default=None, metavar="JSON",
                    help="capacity: extra analytics settings for every camera, e.g. '{\"tracked_interval_s\": 0.4}'")
    ap.add_argument("--baseline-code", default=None, metavar="TREE",
                    help="capacity: also ramp each mix with the Varta source tree at TREE (e.g. a git worktree of "
                         "the commit before a change), first, the same way")
    ap.add_argument("--baseline-label", default=None, help="how the tables name the baseline (e.g. its commit)")
    ap.add_argument("--results", default=None)
    a = ap.parse_args(argv)
    code0 = C.code_version()
    parts = [p.strip() for p in a.parts.split(",") if p.strip()]
    if not MODEL.is_file():
        raise SystemExit(f"no detector model at {MODEL} (set VARTA_TEST_DATA)")
    window = a.window or (15.0 if a.quick else 20.0)
    cmp_window = a.compare_window or (15.0 if a.quick else 45.0)
    compare_n = a.compare_n or (4 if a.quick else 8)
    mixes = (a.mixes or ("clips" if a.quick else "busy,clips")).split(",")
    naive_mixes = [x for x in (a.naive_mixes if a.naive_mixes is not None else ("" if a.quick else "clips")).split(",")
                   if x]
    max_steps = a.steps or (1 if a.quick else 3)
    t_start = time.monotonic()
    load0 = os.getloadavg()
    sections: list[str] = []
    costs: dict[str, ClipCost] = {}
    floors: dict = {}

    if "throughput" in parts:
        names = ["vtest"] if a.quick else ["vtest", "people", "parking", "cars", "traffic",
                                                                   "empty"]
        print(f"\n== throughput ({', '.join(names)})", flush=True)
        all0, t0 = C.all_cpu(), time.monotonic()
        cl, floors = throughput(names, a.quick)
        all1, dt = C.all_cpu(), time.monotonic() - t0
        other = sum(all1[p] - all0[p] for p in all1 if p in all0 and p != os.getpid())
        print(f"   other load during the throughput part: {100 * other / dt:.0f}% of a core", flush=True)
        costs = {c.name: c for c in cl}
        rows = []
        for c in cl:
            rows.append([c.name, c.size, f"{c.rate:.3g}", c.frames, f"{1000 / c.decode_ms:.0f}",
                         f"{1000 / c.decode_bgr_ms:.0f}", f"{1000 / c.motion_ms:.0f}",
                         f"{1000 / c.detect_all_ms:.0f}" if c.detect_all_ms else "–",
                         f"{100 * c.motion_share:.0f}", f"{100 * c.detect_share:.0f}",
                         f"{100 * c.core_motion:.2f}", f"{100 * c.core_before:.2f}", f"**{100 * c.core_gated:.2f}**",
                         f"×{c.core_before / c.core_gated:.2f}",
                         f"{100 * c.region_share:.0f}" if c.region_share is not None else "–",
                         f"{100 * c.core_naive:.2f}"])
        s = (f"#### Throughput (one process, process CPU time, 1 ONNX Runtime thread; {dt:.0f} s)\n\n"
             f"Detector floors, a 768x432 picture, per core: the official FP32 export on its 416x416 canvas, "
             f"`InferenceSession.run` alone {floors['ort_before']:.1f} ms = {1000 / floors['ort_before']:.0f}/s "
             f"(Varta's `detect`, letterbox + run + decode + NMS, {floors['detect_before']:.1f} ms = "
             f"{1000 / floors['detect_before']:.0f}/s: before issue 14); the same weights on Varta's cropped "
             f"416x256 canvas {floors['ort_fp32']:.1f} ms = {1000 / floors['ort_fp32']:.0f}/s (bare run; Varta's "
             f"`detect` {floors['detect_ms']:.1f} ms = {1000 / floors['detect_ms']:.0f}/s); "
             f"the INT8 variant on it {floors['ort_int8']:.1f} ms = {1000 / floors['ort_int8']:.0f}/s (bare run). "
             f"OpenCV: {floors['cv_threads']} thread per camera thread, as the worker sets it. Other load on the "
             f"machine during this part (every other process): {100 * other / dt:.0f}% of a core.\n\n")
        s += C.md_table(["clip", "size", "fps", "frames", "decode only (floor), frames/s/core",
                         "decode + BGR, frames/s/core", "motion only, frames/s/core",
                         "motion + detector every frame, frames/s/core", "5 fps: frames with motion %",
                         "5 fps: detector runs %", "5 fps: motion only, % core/camera",
                         "5 fps: before issue 14 (FP32, 416x416 canvas, whole frame), % core/camera",
                         "5 fps: Varta now (cropped canvas, motion regions), % core/camera", "before ÷ now",
                         "picture the detector looked at, % (mean per run)",
                         "5 fps: naive (detector every frame, cropped canvas), % core/camera"], rows)
        mixrows = []
        for mname, kinds in MIXES.items():
            m = mix_costs(costs, kinds)
            if m:
                mixrows.append([mname, ", ".join(kinds), f"{100 * m['motion_share']:.0f}",
                                f"{100 * m['detect_share']:.0f}", f"{100 * m['before']:.2f}",
                                f"**{100 * m['gated']:.2f}**", f"×{m['before'] / m['gated']:.2f}",
                                f"{100 * m['naive']:.2f}"])
        if mixrows:
            s += "\n\nPer camera at 5 fps, averaged over a mix (each clip = one camera):\n\n" + C.md_table(
                ["mix", "cameras", "frames with motion %", "detector runs %", "before issue 14, % core/camera",
                 "Varta now, % core/camera (analysis only)", "before ÷ now", "naive % core/camera"], mixrows)
        s += ("\n\nFrames/s per core = frames ÷ process CPU seconds over the whole file (every frame analysed). "
              "\"5 fps\": the file analysed as a camera is (every frame decoded, 5 a second converted and analysed), "
              "CPU seconds ÷ seconds of video = share of one core one such camera needs for analysis (recording "
              "not included). Motion only = `detect: false` (motion gate + tamper checks). Naive = "
              "`analyze_file(gate=False)`: the detector on every analysed frame. The streams are the .ts loops "
              "the live parts serve (re-encoded by `prepare_from_file`, x264 veryfast, no B-frames).")
        sections.append(s)

    ramps: list[Ramp] = []
    env = dict(kv.split("=", 1) for kv in a.varta_env)
    settings = json.loads(a.settings) if a.settings else None
    if "capacity" in parts:
        t_part = time.monotonic()
        starts = dict(kv.split("=") for kv in a.start.split(",")) if a.start else {}
        plan = [(m, False, None) for m in mixes] + [(m, True, None) for m in naive_mixes]
        if a.baseline_code:  # the same ramps with the code before this work, one after the other
            plan = [(m, False, Path(a.baseline_code)) for m in mixes] + plan
        for mname, naive, code in plan:
            est = None
            m = mix_costs(costs, MIXES[mname]) if costs else {}
            if m:
                est = computed_capacity(m, naive, floors["detect_ms"])[0]
            start = int(starts.get(mname + ("-naive" if naive else ""), 0)) or (int(est * 0.65) if est else 8)
            step = a.step or max(2, round(0.12 * start))
            print(f"\n== capacity: {mname} mix, {'naive' if naive else 'Varta'}; start N={start}, step {step}"
                  + (f" (computed estimate {est:.1f})" if est else ""), flush=True)
            if code is not None:
                start = int(starts.get(mname + "-baseline", 0)) or start
            ramps.append(ramp(mname, naive, start, step, max_steps, a.warmup, window, env, settings, code,
                              a.baseline_label or f"code at {code}" if code else ""))
        rows = []
        for r in ramps:
            for w in r.steps:
                rows.append([r.mix, r.label, w.n,
                             f"{w.min_fps:.2f} / {w.mean_fps:.2f}", f"{w.detect_fps:.1f}",
                             f"{100 * w.detect_fps / (FPS * w.n):.0f}", w.degraded,
                             f"{w.pct(w.worker_cpu):.0f}", f"{w.pct(w.recorder_cpu):.0f}", f"{w.pct(w.sim_cpu):.0f}",
                             f"{w.pct(w.other_cpu):.0f}", f"{100 * w.busy_cores / CORES:.0f}", w.delay(),
                             f"{w.max_lag:.2f}", f"{w.max_age:.1f}", w.min_segments, w.not_recording,
                             "holds" if w.holds else "**no**", "; ".join(w.notes)])
        s = (f"#### Capacity: cameras analysed at {FPS:g} fps while recording them (live, "
             f"VARTA_ANALYTICS_CPU_CORES={CORES:g}{''.join(f', {k}={v}' for k, v in env.items())}; "
             f"{time.monotonic() - t_part:.0f} s)\n\n")
        s += C.md_table(["mix", "analysis", "N", "actual fps min / mean (≥ 4.75)", "detector runs/s (all)",
                         "detector on % of analysed frames", "cameras reported degraded", "worker CPU %",
                         "recorder CPU %", "simulator CPU %", "other CPU %", "all of it, % of the 2 cores",
                         "event close delay s, median / max (events)", "recording: max lag s (≤ 2)", "newest segment age s", "min segments in window",
                         "not recording (polls)", "5 fps held", "notes"], rows)
        summary = []
        for r in ramps:
            m = mix_costs(costs, MIXES[r.mix]) if costs else {}
            comp = "–"
            if m:
                n_c, cpu_b, det_b = computed_capacity(m, r.naive, floors["detect_ms"])
                comp = f"{n_c:.1f} (CPU bound {cpu_b:.1f}, detector-pool bound {det_b:.1f})"
            peak = max((w.detect_fps for w in r.steps), default=0.0)
            summary.append([r.mix, r.label,
                            r.capacity if r.capacity is not None else "< " + str(min(w.n for w in r.steps)),
                            r.first_fail if r.first_fail is not None else "not reached", f"{peak:.0f}", comp, r.log])
        s += "\n\nLargest N that held, per ramp:\n\n" + C.md_table(
            ["mix", "analysis", "largest N holding 5 fps", "first N that did not", "most detector runs/s seen",
             "computed N from the throughput part", "worker/recorder log"], summary)
        for mname in mixes:
            old = next((r for r in ramps if r.code and r.mix == mname), None)
            new = next((r for r in ramps if not r.code and not r.naive and r.mix == mname), None)
            if old and new and old.capacity and new.capacity:
                s += (f"\n\n{mname}: **{new.capacity} cameras now vs {old.capacity} with {old.code}: "
                      f"×{new.capacity / old.capacity:.2f}** (targets: ≥ 30 on the clips mix, ≥ ×2 on busy footage).")
        by = {(r.mix, r.naive): r for r in ramps if not r.code}
        naive_ref = next((r for r in ramps if r.naive and r.capacity), None)
        for mname in mixes:
            g, nv = by.get((mname, False)), by.get((mname, True)) or naive_ref
            held = [w for w in (g.steps if g else []) if w.holds]
            share = sum(w.detect_fps for w in held) / sum(FPS * w.n for w in held) if held else 0.0
            if g and g.capacity and share >= 0.95 and not by.get((mname, True)):
                s += (f"\n\n{mname}: Varta {g.capacity} cameras; the detector ran on {100 * share:.0f}% of the "
                      "analysed frames, i.e. Varta worked as the naive baseline does: ×1.0 by construction "
                      "(target ≥ ×3).")
            elif g and nv and g.capacity and nv.capacity:
                same = "" if nv.mix == mname else f" (naive measured on the {nv.mix} mix: with the gate always open " \
                                                   "the content hardly changes its cost)"
                s += (f"\n\n{mname}: Varta {g.capacity} cameras vs naive {nv.capacity} measured{same} = "
                      f"**×{g.capacity / nv.capacity:.2f}** (target ≥ ×3).")
            if g and (m := mix_costs(costs, MIXES[mname])):
                cg = computed_capacity(m, False, floors["detect_ms"])[0]
                cn = computed_capacity(m, True, floors["detect_ms"])[0]
                s += f" Computed: {cg:.1f} vs {cn:.1f} = ×{cg / cn:.2f}."
        s += ("\n\nA step holds when every camera's `analytics_status.actual_fps` (the worker's own count, "
              "reported every 5 s) averages ≥ 4.75 over the window, no camera is degraded or without video, and "
              "recording is complete (every camera `recording` at every poll, `camera_status.lag_s` ≤ 2 s, each "
              "camera's segments keep arriving). Cameras are added to the running system between steps. The "
              "simulator (one GStreamer process, two RTSP sessions per camera: recording and analysis) runs on "
              "the same 2 cores. Event close delay: for the zone events closed in the window, when the worker "
              "wrote the close minus when the person was last seen (normally the tracker's 2 s memory plus the "
              "rule's; it grows when analysis falls behind the cameras). Computed N = min(CPU bound: 2 cores ÷ (analysis at 5 fps from the throughput "
              f"part + {100 * REC_CORE:.1f} % recording + {100 * SIM_CORE:.1f} % simulator per camera), one-detector "
              "bound: the worker runs as many inferences at once as its budget has cores (`DetectorPool`), so at "
              "most (pool size × 1 ÷ detect ms) inferences a second, ÷ (5 × share of analysed frames detected)).")
        sections.append(s)

    if "compare" in parts:
        t_part = time.monotonic()
        print(f"\n== CPU per camera vs Motion: {compare_n} cameras, clips mix, window {cmp_window:g} s", flush=True)
        cmp = compare(compare_n, "clips", a.warmup, cmp_window, env, motion_only=not a.quick)
        w, wm, m, n = cmp["varta"], cmp.get("varta_motion"), cmp["motion"], cmp["n"]

        def vrow(label: str, w: Window, log: str) -> list:
            return [label, f"{w.pct(w.recorder_cpu) / n:.2f}", f"{w.pct(w.worker_cpu) / n:.2f}",
                    f"**{w.pct(w.recorder_cpu + w.worker_cpu) / n:.2f}**",
                    f"actual fps min {w.min_fps:.2f}; detector {w.detect_fps:.1f}/s "
                    f"({100 * w.detect_fps / (FPS * n):.0f}% of analysed frames); max lag {w.max_lag:.2f} s; "
                    f"≥ {w.min_segments} segments per camera; log: {log}",
                    f"{w.pct(w.sim_cpu) / n:.2f}", f"{w.pct(w.other_cpu):.0f}"]

        rows = [vrow("Varta, motion gate + YOLOX + tracker + rules (as deployed; target ≤ 3 %)", w, cmp["varta_log"])]
        if wm is not None:
            rows.append(vrow("Varta, motion only (`detect: false`)", wm, cmp["varta_motion_log"]))
        if "error" in m:
            rows.append(["Motion", "–", "–", "–", m["error"], "", ""])
        else:
            rows.append([f"{m['version']}: passthrough recording, motion detection on every frame", "–", "–",
                         f"**{100 * m['cpu'] / m['seconds'] / n:.2f}**",
                         f"one process, {m['threads']} threads; {m['files']} movie files ({m['bytes'] / 1e6:.1f} MB) "
                         f"in the warm-up and window; {m['errors']} [ERR] lines in its log",
                         f"{100 * m['sim'] / m['seconds'] / n:.2f}", f"{100 * m['other'] / m['seconds']:.0f}"])
        s = (f"#### CPU per camera: recording + analysing, {n} cameras of the clips mix, {w.seconds:.0f} s windows "
             f"({time.monotonic() - t_part:.0f} s)\n\n"
             + C.md_table(["what", "recorder process %/camera", "analytics worker %/camera",
                           "total, % of one core per camera", "detail", "simulator %/camera",
                           "other load % of a core"], rows))
        if "error" not in m and m["cpu"] > 0:
            mc = m["cpu"] / m["seconds"]
            s += (f"\n\nVarta ÷ Motion: ×{(w.recorder_cpu + w.worker_cpu) / w.seconds / mc:.2f} with object "
                  "detection" + (f", ×{(wm.recorder_cpu + wm.worker_cpu) / wm.seconds / mc:.2f} motion only"
                                 if wm is not None else "") + " (Motion runs no object detector).")
        s += ("\n\nSame N streams (each camera's `url` = `sub_url` = one simulated stream; Varta opens it twice, "
              "recording and analysis; Motion once), the same warm-up and window, one after the other. Motion: "
              "`framerate` = the stream's rate (it decodes and checks every frame), `threshold 1500`, "
              "`movie_passthrough on`, `movie_max_time 10`, records while there is motion (its normal mode; "
              "`emulate_motion off`), no web control or stream server, text overlay on.")
        sections.append(s)

    elapsed = time.monotonic() - t_start
    load1 = os.getloadavg()
    extra = (f"- parts: {', '.join(parts)}{' (quick)' if a.quick else ''}; {elapsed:.0f} s; load average at "
             f"start {load0[0]:.2f}, at end {load1[0]:.2f}\n"
             f"- model: {MODEL}; analysis {FPS:g} fps; live runs' extra environment: "
             f"{' '.join(a.varta_env) or 'none'} (Varta's defaults: 1 detector thread, worker nice 10); "
             f"capacity cameras' extra analytics settings: {a.settings or 'none'}")
    if C.code_version() != code0:
        extra += f"\n- the code changed during the run: {code0} at the start"
    block = C.header("Analytics cost: throughput, capacity, CPU per camera vs Motion", extra) + "\n"
    block += "\n\n".join(sections)
    return C.emit(block, a.results, "analytics.md")


if __name__ == "__main__":
    main()
