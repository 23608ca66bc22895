"""Helpers shared by the benchmark scripts (stdlib only, plus ``varta`` where noted).

Linux only: CPU time and memory come from ``/proc``. Nothing here asserts on a time;
the scripts measure and print.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
MEDIA = OUT / "media"
if str(ROOT) not in sys.path:  # run as ``python bench/x.py`` from anywhere
    sys.path.insert(0, str(ROOT))

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# The stream every recorder benchmark uses (see docs: a street camera's main stream).
STREAM = dict(width=1920, height=1080, fps=25, seconds=60, gop=50, bitrate="4M", noise=True,
              label="bench", preset="ultrafast")


def bench_stream() -> Path:
    """The 1080p 25 fps 4 Mbit/s loop (encoded once, cached under bench/out/media)."""
    from varta.demo.media import make_test_stream

    MEDIA.mkdir(parents=True, exist_ok=True)
    return make_test_stream(MEDIA / "cam1080p25-4M-gop50-60s.ts", **STREAM)


# --------------------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), in seconds; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    # fields[0] is field 3 (state); utime = field 14, stime = field 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pss_kb(pid: int) -> int | None:
    """Proportional set size (kB) from /proc/PID/smaps_rollup; None if unreadable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE // 1024
    except OSError:
        return None


def children(pid: int) -> list[int]:
    """Direct children of *pid* (from every thread's ``children`` file)."""
    kids: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids.update(int(x) for x in fh.read().split())
        except OSError:
            continue
    return sorted(kids)


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies over all CPUs, from /proc/stat (for a window's machine load)."""
    with open("/proc/stat") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    total = sum(parts[:8])  # user..steal (guest is already in user)
    return float(total - idle), float(total)


class CpuWindow:
    """CPU seconds of a set of processes between :meth:`start` and :meth:`stop`.

    A process that exits inside the window loses its last ticks (they cannot be read
    after reaping); the caller sees that as ``lost`` and the benchmark reports it.
    """

    def __init__(self, pids: list[int]):
        self.pids = list(pids)
        self.t0: dict[int, float] = {}
        self.t1: dict[int, float] = {}

    def start(self) -> None:
        self.t0 = {p: c for p in self.pids if (c := cpu_seconds(p)) is not None}

    def stop(self) -> None:
        self.t1 = {p: c for p in self.pids if (c := cpu_seconds(p)) is not None}

    @property
    def lost(self) -> list[int]:
        return [p for p in self.t0 if p not in self.t1]

    def used(self, pid: int | None = None) -> float:
        pids = [pid] if pid is not None else list(self.t0)
        return sum(self.t1[p] - self.t0[p] for p in pids if p in self.t0 and p in self.t1)


# --------------------------------------------------------------------------- reporting


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank-interpolated percentile (p in 0..100)."""
    if not values:
        return float("nan")
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def md_table(headers: list[str], rows: list[list[object]]) -> str:
    def cell(v: object) -> str:
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def ffmpeg_version(ffmpeg: str | None = None) -> str:
    exe = ffmpeg or shutil.which("ffmpeg") or "ffmpeg"
    try:
        out = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True,
                             timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    first = out.splitlines()[0] if out else "unknown"
    return " ".join(first.split()[:3])


def machine_line() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "?")
    except OSError:
        model = "?"
    mem_gb = os.sysconf("SC_PHYS_PAGES") * PAGE / 2**30
    return (f"{os.cpu_count()} vCPU ({model}), {mem_gb:.0f} GiB RAM, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def code_version() -> str:
    """The commit of the code measured, and whether varta/ had uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "varta"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes in varta/' if dirty else ''}"


def all_cpu() -> dict[int, float]:
    """CPU seconds of every process on the machine (for the load a benchmark did not cause)."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            c = cpu_seconds(int(name))
            if c is not None:
                out[int(name)] = c
    return out


def header(title: str, extra: str = "") -> str:
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"### {title}", "", f"- run: {now}; code: {code_version()}", f"- machine: {machine_line()}",
             f"- ffmpeg: {ffmpeg_version()}"]
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


def emit(block: str, results: str | None, default_name: str) -> str:
    """Print a Markdown block and append it to *results* (default bench/out/<name>.md)."""
    print()
    print(block)
    path = Path(results) if results else OUT / default_name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(block.rstrip() + "\n\n")
    print(f"(appended to {path})")
    return block
