#!/usr/bin/env python3
"""Diagnostic: the CPU cost of PyAV's ``timeout=`` for the in-process ingest (varta.recording.ingest.PyAVRun).

Runs N ``PyAVRun`` ingests inside this process (no database, no supervisor) against the
camera simulator and measures this process's CPU over a window, for two variants:

* ``as-is``: ``PyAVRun`` exactly as Varta runs it now (libav's own RTSP socket ``timeout``
  option only);
* ``pyav-timeout``: the same plus PyAV's ``av.open(..., timeout=(t, t))``, as Varta's first
  PyAV backend did. PyAV implements that timeout with an AVIOInterruptCB that takes the GIL
  on *every* call (it reads ``time.monotonic()`` under the GIL), and libav calls it around
  every socket read and wait: with many cameras the threads convoy on the GIL.

A bare ffmpeg per stream is the floor (see recorder_bench.py); this script only compares
the two in-process variants with each other, in the same run, one after the other.

Usage::

    .venv/bin/python bench/pyav_ingest_bench.py                 # N = 8, 32; 30 s windows
    .venv/bin/python bench/pyav_ingest_bench.py --counts 64 --window 60
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import av  # noqa: E402

from varta.recording.ingest import PyAVRun  # noqa: E402


class PyAVTimeoutRun(PyAVRun):
    """PyAVRun plus PyAV's GIL-taking interrupt callback (``timeout=``), the first version's way."""

    def _open_input(self):
        source = self.url
        options = {}
        scheme = self.url.split(":", 1)[0].lower()
        if scheme in ("rtsp", "rtsps"):
            options = {"rtsp_transport": "tcp", "timeout": str(int(self.timeout_s * 1_000_000))}
        elif scheme == "file":
            source = self.url.removeprefix("file://")
        return av.open(source, "r", options=options, timeout=(self.timeout_s, self.timeout_s))


VARIANTS = {"as-is": PyAVRun, "pyav-timeout": PyAVTimeoutRun}


def one(cls, n: int, sim, warmup: float, window: float, seg_s: int) -> dict:
    from datetime import datetime, timedelta, timezone

    work = Path(tempfile.mkdtemp(prefix="pyav-ingest-", dir=C.OUT))
    runs = []
    try:
        for i in range(n):
            cam_dir = work / f"cam{i + 1:03d}"
            now = datetime.now(timezone.utc)
            for day in (now, now + timedelta(days=1)):
                (cam_dir / day.strftime("%Y/%m/%d")).mkdir(parents=True, exist_ok=True)
            runs.append(cls(sim.url(f"cam{i + 1:03d}"), cam_dir, secrets.token_hex(4), seg_s, 10.0))
        time.sleep(warmup)
        me, sim_pid = os.getpid(), sim.pid
        c0, s0, w0 = C.cpu_seconds(me), C.cpu_seconds(sim_pid), time.monotonic()
        lines0 = sum(r.lines.qsize() for r in runs)
        time.sleep(window)
        c1, s1, w1 = C.cpu_seconds(me), C.cpu_seconds(sim_pid), time.monotonic()
        lines1 = sum(r.lines.qsize() for r in runs)
        alive = sum(1 for r in runs if r.poll() is None)
        pss = C.pss_kb(me) or 0
    finally:
        for r in runs:
            r.stop()
        deadline = time.monotonic() + 30
        for r in runs:
            r._thread.join(timeout=max(0.1, deadline - time.monotonic()))
        shutil.rmtree(work, ignore_errors=True)
    el = w1 - w0
    return {"cpu_pct_stream": 100 * (c1 - c0) / el / n, "cpu_pct_total": 100 * (c1 - c0) / el,
            "sim_pct_stream": 100 * (s1 - s0) / el / n, "segments": lines1 - lines0, "alive": alive,
            "pss_mb": pss / 1024}


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="8,32")
    ap.add_argument("--window", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--results", default=None)
    a = ap.parse_args(argv)
    from varta.demo.simulator import CameraSimulator, gst_rtsp_available

    ok, why = gst_rtsp_available()
    if not ok:
        raise SystemExit(f"camera simulator unavailable: {why}")
    counts = [int(x) for x in a.counts.split(",")]
    if any(not 1 <= c <= 128 for c in counts) or not 5 <= a.window <= 600:
        raise SystemExit("counts 1..128, window 5..600 s")
    stream = C.bench_stream()
    rows = []
    for n in counts:
        mounts = {f"cam{i + 1:03d}": stream for i in range(n)}
        for name in a.variants.split(","):
            with CameraSimulator(mounts, threads=0, ready_timeout=60) as sim:
                r = one(VARIANTS[name], n, sim, a.warmup, a.window, 10)
            print(f"N={n} {name}: {r['cpu_pct_stream']:.3f}% of a core per stream "
                  f"({r['cpu_pct_total']:.1f}% total), simulator {r['sim_pct_stream']:.2f}%/stream, "
                  f"{r['segments']} segments in the window, {r['alive']}/{n} alive, process PSS {r['pss_mb']:.0f} MB",
                  flush=True)
            rows.append([n, name, f"{r['cpu_pct_stream']:.3f}", f"{r['cpu_pct_total']:.1f}",
                         f"{r['sim_pct_stream']:.2f}", r["segments"], f"{r['alive']}/{n}", f"{r['pss_mb']:.0f}"])
    block = C.header("PyAV in-process ingest: CPU by variant (diagnostic)",
                     f"- warm-up {a.warmup:g} s, window {a.window:g} s; N ingest threads in one Python process, "
                     "no database; variants run one after the other")
    block += "\n" + C.md_table(["N", "variant", "CPU %/stream", "CPU % total", "simulator %/stream",
                                "segments in window", "alive at end", "process PSS MB*"], rows)
    block += ("\n\n*PSS of this one process after the variant's window: it includes whatever earlier variants "
              "left allocated in the same process, so compare CPU here, not memory.")
    return C.emit(block, a.results, "pyav_ingest_bench.md")


if __name__ == "__main__":
    main()
