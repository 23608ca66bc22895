#!/usr/bin/env python3
"""Control plane at capital scale: 6,000 cameras on 20-60 simulated recorders, one PostgreSQL.

Issue 12 asks whether one PostgreSQL carries a capital's coordination and archive index.
This runs Varta's own cluster and index code against a private PostgreSQL server that
holds at least one day of every camera's index rows (6,000 x 8,640 = 51.8 M segment rows):

* ``--nodes`` (30) simulated recorders, each with its own connection pool: Varta's
  :class:`~varta.cluster.coordinator.Coordinator` (1 s tick, 5 s lease: the defaults)
  around a stand-in for the record role that records no video. A writer thread per node
  indexes one 10 s segment per held camera every 10 s (``ArchiveIndex.add_segment``, with
  the camera's state in the same transaction, under the camera's fence), as
  ``CameraSupervisor`` does: for 6,000 cameras 600 segment rows and 600 status updates a
  second. A camera it starts gets the supervisor's first writes (last segment, outage).
  Nodes run five to a process (the GIL), the one killed later alone in its own.
* one more process asks, at random cameras and times of the preloaded days,
  ``segment_at``, ``ranges_between`` over a day, the console's one-day
  ``recordings_report`` and ``segments_between`` over an hour.

Over a steady window (``--duration``): p50/p99 of lease renewal (``NodeRegistry.heartbeat``,
inside each tick), index insert, status update and the queries; rows written per second;
the CPU of the PostgreSQL server (postmaster and every backend, from /proc) as % of one
core and as headroom on 2 cores. Then the killed node's process gets SIGKILL (kill -9),
and the time from its last heartbeat until every camera it held is leased by another
node is read from the leases table (the database's clock), beside the lease time.

With the load stopped: what each recorder also asks of the database but the simulation
leaves out (the registry's change check every 3 s and 5 s, the janitor's pass every 60 s),
added to the headroom; and what the full 10-day index (518 M rows) needs: sizes per row
(``pg_relation_size``) extrapolated, B-tree heights, the queries' plans (``EXPLAIN
(ANALYZE, BUFFERS)``), the cost of retention by ``DELETE`` (the oldest hour, rolled back)
and a note on time-range partitioning.

The server is this script's own child (not pg_ctl's daemon): its CPU is one process tree,
``--pg-cpus`` can pin it, and it shuts down (fast) when the script ends, even by SIGKILL.
Its data folder under bench/out/scale/ is built once per camera count and days (COPY ...
FREEZE) and reused; each run starts a fresh cluster (nodes, leases and outages emptied)
and keeps the rows earlier runs wrote.

Usage::

    .venv/bin/python bench/scale_bench.py                  # 6,000 cameras, 1 day, 30 nodes, 300 s
    .venv/bin/python bench/scale_bench.py --nodes 20       # 300 cameras per node
    .venv/bin/python bench/scale_bench.py --pg-cpus 0,1    # the database on 2 cores, the nodes on the rest
    .venv/bin/python bench/scale_bench.py --quick          # 600 cameras (5.2 M rows), 10 nodes, 60 s
"""

from __future__ import annotations

import argparse
import ctypes
import heapq
import json
import logging
import math
import multiprocessing as mp
import os
import pwd
import queue
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from sqlalchemy import delete, func, select, text  # noqa: E402

from varta.cluster.coordinator import Coordinator  # noqa: E402
from varta.cluster.leases import Fence, Fenced, Lease  # noqa: E402
from varta.cluster.nodes import NodeRegistry  # noqa: E402
from varta.cluster.placement import CameraInfo, NodeInfo, Placer  # noqa: E402
from varta.db.schema import cluster_nodes, leases, outages, segments  # noqa: E402

US = 1_000_000
SEG_S = 10
SEG_US = SEG_S * US
DAY_US = 86_400 * US
SLOTS_PER_DAY = 86_400 // SEG_S
TICK_S, LEASE_S = 1.0, 5.0  # cluster_tick_s, cluster_lease_s: Varta's defaults
SYNC_S = 3.0  # RecorderService.sync_interval_s: each recorder re-reads the camera list
FULL_PASS_S = 5.0  # Coordinator.full_pass_s: and so does its coordinator (role.cameras())
JANITOR_S = 60.0  # janitor_interval_s: each recorder's retention pass
CONTROL_P99_MS, QUERY_P99_MS = 50.0, 5.0
DB_CORES, HEADROOM = 2, 3.0
CITY_CAMERAS, CITY_DAYS = 6_000, 10  # the full index the 10-day estimate is for
PAST_NODES = 30  # the preloaded day was recorded by this many nodes (segments.recorder)
SEG_BYTES = 5_000_000  # about 4 Mbit/s for 10 s
RECIPE = 1  # bump when the generated rows change: cached databases are then rebuilt
SEGMENT_KINDS = ("heartbeat", "tick", "add_segment", "lag")
NODES_PER_PROC = 5  # more threads per process and the GIL delays every reply from the database
QUERY_KINDS = ("segment_at", "ranges_day", "report_day", "segments_hour")

log = logging.getLogger("scale_bench")


def _node_name(i: int) -> str:
    return f"sim{i:02d}"


def _node_id(i: int) -> str:
    """Stable node ids, so the preloaded rows' recorders are the simulated nodes."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"varta-scale-bench/{_node_name(i)}"))


def _cam(i: int) -> str:
    return f"cam{i:05d}"


def _phase_s(camera_id: str) -> float:
    """Where in each 10 s a camera's segments end: spread evenly, as real cameras are."""
    return (int(camera_id[3:]) * 7919 % 10_000) / 1000.0


def _set_pdeathsig(sig: int) -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise SystemExit("no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateServer:
    """A throw-away PostgreSQL server on its own data folder, run as this script's child.

    pg_ctl would daemonise it; as a child its CPU is one process tree under our eyes, and
    PR_SET_PDEATHSIG gives it SIGINT (fast shutdown) if this script dies, even by SIGKILL.
    It gets its own session so that a Ctrl-C reaches only this script, which stops the
    simulated nodes first and the server last."""

    def __init__(self, data: Path, logfile: Path, cpus: set[int] | None = None):
        self.data, self.logfile, self.cpus = data, logfile, cpus
        self.bin = _pg_bin()
        self.version = subprocess.run([str(self.bin / "postgres"), "--version"], capture_output=True, text=True,
                                      check=True).stdout.strip()
        # PostgreSQL refuses to run as root: as root, run it as its own user.
        pw = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self.ids = (pw.pw_uid, pw.pw_gid) if pw else None
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def _preexec(self) -> None:  # runs in the child, before exec
        if self.ids:
            os.setgroups([])
            os.setgid(self.ids[1])
            os.setuid(self.ids[0])
        _set_pdeathsig(signal.SIGINT)  # after setuid, which would clear it
        if self.cpus:
            os.sched_setaffinity(0, self.cpus)

    def init(self) -> None:
        self.data.mkdir(parents=True)
        if self.ids:
            os.chown(self.data, *self.ids)
        subprocess.run([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "varta", "-E", "UTF8",
                        "--locale=C.UTF-8"], check=True, capture_output=True, preexec_fn=self._preexec,
                       cwd=self.data, timeout=300)

    def start(self, settings: dict[str, str]) -> str:
        """Start with these settings (``-c``); returns the URL of database ``varta``."""
        self.port = _free_port()
        args = [str(self.bin / "postgres"), "-D", str(self.data), "-c", f"port={self.port}",
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.data}"]
        for k, v in settings.items():
            args += ["-c", f"{k}={v}"]
        with open(self.logfile, "ab") as logf:
            self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, preexec_fn=self._preexec,
                                         cwd=self.data, start_new_session=True)
        import psycopg

        deadline = time.monotonic() + 600  # crash recovery of a big cluster can take a while
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not start (exit {self.proc.returncode}); see {self.logfile}")
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return f"postgresql://varta@127.0.0.1:{self.port}/varta"

    def dsn(self, db: str = "varta") -> str:
        return f"host=127.0.0.1 port={self.port} user=varta dbname={db}"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.proc.send_signal(signal.SIGINT)  # fast shutdown: roll back, checkpoint, exit
        try:
            self.proc.wait(300)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGQUIT)  # immediate: crash recovery at the next start
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def pids(self) -> list[int]:
        return [self.proc.pid, *C.children(self.proc.pid)] if self.proc else []

    def cpu_seconds(self) -> float:
        """CPU of the whole server: the postmaster, the backends alive now, and (through the
        postmaster's cutime/cstime) every backend it has already reaped."""
        pid = self.proc.pid
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        f = data[data.rindex(b")") + 2:].split()
        total = sum(int(x) for x in f[11:15]) / C.CLK_TCK  # utime, stime, cutime, cstime
        return total + sum(C.cpu_seconds(c) or 0.0 for c in C.children(pid))


# Loading: none of this is durable until the final checkpoint and sync, which is fine for
# a cache that is rebuilt when its stamp is missing. wal_level=minimal lets COPY and
# CREATE INDEX skip the WAL for a table truncated in the same transaction.
LOAD_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "wal_level": "minimal",
                 "max_wal_senders": "0", "autovacuum": "off", "max_wal_size": "20GB", "checkpoint_timeout": "1h"}


def _run_settings(nodes: int, overrides: dict[str, str]) -> dict[str, str]:
    """What the measured server runs with: PostgreSQL's defaults except these (reported)."""
    mem = os.sysconf("SC_PHYS_PAGES") * C.PAGE
    out = {
        # 128 MB is sized for a laptop; a dedicated server gives it ~25% of RAM. Here an
        # eighth (at most 4 GB): the simulated nodes share the machine.
        "shared_buffers": f"{max(128, min(4096, mem // 2**20 // 8))}MB",
        # Each node has its own pool (as each real node does): room for every node's busy threads.
        "max_connections": str(max(100, 5 * nodes + 40)),
    }
    out.update(overrides)
    return out


def _load_settings() -> dict[str, str]:
    mem = os.sysconf("SC_PHYS_PAGES") * C.PAGE
    return {**LOAD_SETTINGS, "maintenance_work_mem": f"{max(64, min(2048, mem // 2**20 // 16))}MB"}


def estimate_bytes(rows: int) -> int:
    """Disk the data folder needs: ~330 bytes a row (heap ~200 + four indexes), + slack."""
    return int(rows * 330 * 1.15) + 2 * 2**30


def build(server: PrivateServer, n_cams: int, days: int) -> dict:
    """Preload ``days`` days of 10 s segments for every camera, in time order across
    cameras (as live recorders write them: each camera's rows spread over the table), one
    span per camera covering them, and each camera's status. Returns the stamp's meta."""
    import psycopg

    t_build = time.perf_counter()
    server.start(_load_settings())
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as admin:
        admin.execute("CREATE DATABASE varta")
    from varta.cameras.schedule import Schedule
    from varta.db.engine import open_database
    from varta.recording.ffmpeg import SEGMENT_NAME_PATTERN

    url = f"postgresql://varta@127.0.0.1:{server.port}/varta"
    open_database(url).dispose()  # Varta's migrations make the schema and its indexes
    t1 = ((int(time.time()) - 60) // SEG_S * SEG_S) * US
    t0 = t1 - days * DAY_US
    slots = days * SLOTS_PER_DAY
    recorders = "(ARRAY[" + ",".join(f"'{_node_id(i)}'" for i in range(PAST_NODES)) + "])"
    # The path as the recorder names it (varta.recording.ffmpeg.SEGMENT_NAME_PATTERN), and a
    # run id per camera and day.
    if SEGMENT_NAME_PATTERN != "%Y/%m/%d/%Y%m%dT%H%M%SZ-{run}.mp4":
        raise RuntimeError("the recorder names segments differently now: update path_fmt")
    path_fmt = "'YYYY/MM/DD/YYYYMMDD\"T\"HH24MISS\"Z-\"'"
    run_id = f"lpad(to_hex((c * 2654435761 + (s / {SLOTS_PER_DAY}) * 40503) % 4294967296), 8, '0')"
    chunk_slots = 360  # one hour of every camera per COPY
    rows_total = 0
    with psycopg.connect(server.dsn()) as dst, psycopg.connect(server.dsn(), autocommit=True) as src:
        # The ids are generated valid: no foreign-key trigger per row (52 M lookups).
        dst.execute("SET session_replication_role = replica")
        indexes = dst.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'segments' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'segments'::regclass) "
            "ORDER BY indexname").fetchall()
        for name, _ in indexes:  # built once after the load: much faster than 52 M inserts into each
            dst.execute(f'DROP INDEX "{name}"')
        # Truncated in this transaction: COPY ... FREEZE writes the rows frozen and all-visible
        # (no VACUUM pass over the table afterwards), and wal_level=minimal skips their WAL.
        dst.execute("TRUNCATE segments")
        dst.execute(
            "INSERT INTO cameras (id, name, kind, address, group_name, main_url, retention_days, schedule, enabled, "
            "created_us, updated_us) SELECT 'cam' || lpad(c::text, 5, '0'), 'Camera ' || c, 'street', '', '', "
            "'rtsp://10.' || (c / 65536) || '.' || (c / 256 %% 256) || '.' || (c %% 256) || '/stream1', 10, "
            "%(schedule)s::json, true, %(t)s, %(t)s FROM generate_series(1, %(n)s) AS c",
            {"schedule": json.dumps(Schedule.always().to_json()), "t": t1, "n": n_cams})
        columns = "camera_id, start_us, end_us, path, bytes, init_bytes, codec, width, height, fps, run_id, " \
                  "recorder, status"
        for a in range(0, slots, chunk_slots):
            n = min(chunk_slots, slots - a) * n_cams
            # One series, i -> (slot, camera): rows come out in time order across cameras
            # without a sort. Binary COPY: every column cast to its exact type.
            out_sql = (
                f"COPY (SELECT 'cam' || lpad(c::text, 5, '0'), ({t0} + s * {SEG_US})::bigint, "
                f"({t0} + (s + 1) * {SEG_US})::bigint, "
                f"to_char(to_timestamp(({t0} + s * {SEG_US}) / {US}) AT TIME ZONE 'UTC', {path_fmt}) || {run_id} "
                f"|| '.mp4', ({SEG_BYTES - 100_000} + (c * 7919 + s * 104729) % 200000)::bigint, 812::integer, "
                f"'h264', 1920::integer, 1080::integer, 25.0::float8, {run_id}, {recorders}[1 + c % {PAST_NODES}], "
                f"'ok' FROM (SELECT {a} + i / {n_cams} AS s, 1 + i % {n_cams} AS c "
                f"FROM generate_series(0::bigint, {n - 1}) AS i) AS g) TO STDOUT (FORMAT binary)")
            t = time.perf_counter()
            with src.cursor().copy(out_sql) as cout, dst.cursor() as cur:
                with cur.copy(f"COPY segments ({columns}) FROM STDIN (FORMAT binary, FREEZE)") as cin:
                    for block in cout:
                        cin.write(block)
                rows_total += cur.rowcount
            print(f"  {rows_total:,} / {slots * n_cams:,} rows ({n / (time.perf_counter() - t):,.0f} rows/s)",
                  flush=True)
        for name, definition in indexes:
            t = time.perf_counter()
            dst.execute(definition)
            print(f"  {name} built in {time.perf_counter() - t:.0f} s", flush=True)
        # One continuous stretch per camera (the preload has no holes), summed from the rows.
        dst.execute("INSERT INTO spans (camera_id, start_us, end_us, bytes) SELECT camera_id, min(start_us), "
                    "max(end_us), sum(bytes) FROM segments GROUP BY camera_id")
        dst.execute(
            "INSERT INTO camera_status (camera_id, recorder, state, reason, detail, since_us, last_segment_end_us, "
            f"bitrate_bps, fps, lag_s, updated_us) SELECT 'cam' || lpad(c::text, 5, '0'), {recorders}[1 + c % "
            f"{PAST_NODES}], 'recording', '', '', {t0}, {t1}, 4e6, 25.0, 0.0, {t1} "
            f"FROM generate_series(1, {n_cams}) AS c")
        max_id = dst.execute("SELECT max(id) FROM segments").fetchone()[0]
        n_spans = dst.execute("SELECT count(*), sum(end_us - start_us) FROM spans").fetchone()
        dst.commit()
        after = dst.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND "
                            "tablename = 'segments' ORDER BY indexname").fetchall()
    if rows_total != slots * n_cams or n_spans[0] != n_cams or n_spans[1] != n_cams * days * DAY_US:
        raise RuntimeError(f"load check failed: {rows_total} rows, spans {n_spans}")
    if not set(indexes) <= set(after):
        raise RuntimeError(f"load check failed: indexes {after} are not Varta's {indexes}")
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("ANALYZE")
        conn.execute("CHECKPOINT")
    server.stop()
    os.sync()  # fsync was off: make the cache durable before its stamp says it is complete
    return {"rows": rows_total, "max_id": max_id, "t0": t0, "t1": t1, "build_s": round(time.perf_counter() - t_build)}


# --------------------------------------------------------------------------- simulated nodes


EVENTS = ("lapsed", "fenced", "errors")  # sessions that lapsed, writes refused by a fence, failures


class Samples:
    """Latency samples (monotonic time, ms) and events (monotonic time) from one process's
    threads; CLOCK_MONOTONIC is the same in every process, so windows compare."""

    def __init__(self, kinds: tuple[str, ...]):
        self.data: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
        self.events: dict[str, list[float]] = {k: [] for k in EVENTS}

    def add(self, kind: str, ms: float) -> None:
        self.data[kind].append((time.monotonic(), ms))

    def note(self, event: str) -> int:
        self.events[event].append(time.monotonic())
        return len(self.events[event])

    def time(self, kind: str, fn, *args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.add(kind, (time.perf_counter() - t) * 1000)

    def window(self, w0: float, w1: float) -> dict:
        return {"ms": {k: [ms for t, ms in v if w0 <= t <= w1] for k, v in self.data.items()},
                "counts": {k: sum(1 for t in v if w0 <= t <= w1) for k, v in self.events.items()}}


class TimedRegistry(NodeRegistry):
    """Varta's node registry; each heartbeat (the session renewal that keeps every lease
    the node holds) is timed."""

    def __init__(self, engine, ttl_us: int, samples: Samples):
        super().__init__(engine, ttl_us)
        self.samples = samples

    def heartbeat(self, node_id, load=None):
        row, lapsed = self.samples.time("heartbeat", super().heartbeat, node_id, load)
        if lapsed:  # this node was too slow to renew: the simulation, not the database, is starved
            self.samples.note("lapsed")
        return row, lapsed


class SharedPlacer(Placer):
    """One Placer for the simulated nodes of a process. Placement is pure (the same live
    nodes give the same answer on every node), and ranking 6,000 cameras over 30 nodes
    takes about half a second of Python: computed once per process instead of once per
    node, the nodes' threads are not starved whenever the node set changes. (A real
    recorder spends that on its own CPU; it is measured apart.) The lock keeps one node
    set's rankings from mixing with another's while nodes briefly disagree about who is
    alive."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()

    def place(self, cameras, nodes):
        with self._lock:
            return super().place(cameras, nodes)


class TimedCoordinator(Coordinator):
    def __init__(self, *args, samples: Samples, **kwargs):
        super().__init__(*args, **kwargs)
        self.samples = samples

    def tick(self) -> None:
        self.samples.time("tick", super().tick)


class SimRecordRole:
    """The ``record`` role of a simulated recorder (WorkRole): it keeps each held camera's
    fence and hands cameras it begins to the node's writer.

    The camera list is read once (``CameraRegistry.list``) and then reused, as the real role
    does while the registry's checksum (``CameraRegistry.version``, polled every 3 s and 5 s)
    does not change. The poll's cost is measured apart, with the load stopped, and added to
    the projection."""

    kind = "record"
    node_role = "recorder"
    handoff = False  # no video, so no make-before-break moves; failover is what is measured

    def __init__(self, node: "SimNode"):
        from varta.cameras.registry import CameraRegistry

        self.node = node
        self.registry = CameraRegistry(node.engine)
        self._cameras = [CameraInfo(c.id, c.recorder, c.group_name) for c in self.registry.list() if c.enabled]
        self._held: dict[str, Fence] = {}
        self._lock = threading.Lock()

    def cameras(self) -> list[CameraInfo]:
        return self._cameras

    def running(self) -> dict[str, int]:
        with self._lock:
            return {k: f.epoch for k, f in self._held.items()}

    def begin(self, key: str, fence: Fence, taken_from: Lease | None, start_at_us: int | None) -> None:
        if self.registry.get(key) is None:  # as RecorderService.begin: the camera's settings
            return
        with self._lock:
            self._held[key] = fence
        self.node.started.put((key, fence, taken_from))

    def end(self, key: str, why: str) -> None:
        with self._lock:
            self._held.pop(key, None)

    def handing_over(self, key: str) -> bool:
        return False

    def fence(self, key: str) -> Fence | None:
        with self._lock:
            return self._held.get(key)


@dataclass
class _Run:
    """One camera's recording on this node: its fence and where its next segment starts."""

    fence: Fence
    run_id: str
    start_us: int
    first: bool = True


class SimNode:
    def __init__(self, url: str, index: int, samples: Samples, placer: SharedPlacer):
        from varta.db.engine import make_engine
        from varta.recording.index import ArchiveIndex

        self.id, self.name = _node_id(index), _node_name(index)
        self.engine = make_engine(url)  # a pool of its own, as each real node has
        self.index = ArchiveIndex(self.engine)
        self.samples = samples
        self.role = SimRecordRole(self)
        self.started: queue.SimpleQueue = queue.SimpleQueue()
        self.coordinator = TimedCoordinator(
            self.engine, self.id, roles=[self.role], tick_s=TICK_S, ttl_s=LEASE_S,
            registry=TimedRegistry(self.engine, int(LEASE_S * US), samples),
            load=lambda: {"pid": os.getpid(), "cameras": len(self.role.running())}, samples=samples)
        self.coordinator._state[SimRecordRole.kind].placer = placer
        self._stop = threading.Event()
        # --write-share: a camera writes a segment every SEG_S / share seconds (set by the parent).
        self.period = float(os.environ.get("SCALE_WRITE_PERIOD_S", SEG_S))
        self._writer = threading.Thread(target=self._write_loop, name="writer", daemon=True)

    def start(self) -> None:
        """As a recorder starts: register (its session begins), then tick. Nodes started
        together wait one lease time before taking cameras, so all have registered by then
        and the first placement is already the final one."""
        from varta import __version__

        self.coordinator.nodes.register(node_id=self.id, name=self.name, roles=["recorder"], address="",
                                        version=__version__, capacity=0, groups=[], takes_unpinned=True,
                                        public_key="", wrap_key="", pid=os.getpid())
        self.coordinator.start()
        self._writer.start()

    def stop(self) -> None:
        self._stop.set()
        self.coordinator.stop()
        self._writer.join(timeout=15)
        self.engine.dispose()

    def _write_loop(self) -> None:
        runs: dict[str, _Run] = {}
        # (wall time the camera's next segment ends, tie-breaker, camera, its run)
        due: list[tuple[float, int, str, _Run]] = []
        seq = 0
        while not self._stop.is_set():
            while True:
                try:
                    key, fence, taken_from = self.started.get_nowait()
                except queue.Empty:
                    break
                now = time.time()
                run = runs[key] = _Run(fence, secrets.token_hex(4), int(now * US))
                self._guard(key, self._start_camera, key, fence, taken_from)
                phase = _phase_s(key)
                seq += 1
                period = self.period
                heapq.heappush(due, ((math.floor((now - phase) / period) + 1) * period + phase, seq, key, run))
            if not due:
                self._stop.wait(0.05)
                continue
            delay = due[0][0] - time.time()
            if delay > 0:
                self._stop.wait(min(delay, 0.05))  # and look for newly begun cameras meanwhile
                continue
            at, _, key, run = heapq.heappop(due)
            if runs.get(key) is not run:
                continue  # the camera was begun again since: that run has its own entry
            if self.role.fence(key) != run.fence:
                del runs[key]  # the lease moved on
                continue
            self.samples.add("lag", (time.time() - at) * 1000)
            if self._guard(key, self._segment, key, run, int(at * US)) is not False:
                seq += 1
                heapq.heappush(due, (at + self.period, seq, key, run))

    def _guard(self, key: str, fn, *args):
        """A write refused by the fence stops the camera here, as CameraSupervisor does;
        any other failure is counted and the next segment is tried."""
        try:
            return fn(*args)
        except Fenced:
            self.samples.note("fenced")
            self.role.end(key, "fenced")
            return False
        except Exception:
            if self.samples.note("errors") <= 3:
                log.exception("simulated write failed")
            return None

    def _start_camera(self, key: str, fence: Fence, taken_from: Lease | None) -> None:
        """What CameraSupervisor.run writes first: the camera was dark since its last segment."""
        last = self.index.last_segment(key)
        if last is not None and self.index.current_outage(key) is None:
            reason = ("node_failover" if taken_from is not None and taken_from.holder
                      and taken_from.holder != self.id else "recorder_down")
            self.index.open_outage(key, last.end_us, reason, "", self.id, fence=fence)

    def _segment(self, key: str, run: _Run, end_us: int) -> None:
        from varta.recording.ffmpeg import SEGMENT_NAME_PATTERN

        start_us = run.start_us
        when = datetime.fromtimestamp(start_us / US, tz=timezone.utc)
        nbytes = SEG_BYTES + random.randrange(-100_000, 100_000)
        if run.first:  # the camera records again: its outage ends where this footage begins
            self.index.close_outage(key, start_us, fence=run.fence)
            run.first = False
        # As the recorder does (CameraSupervisor._index): the segment row, its span and the
        # camera's state in one transaction under the camera's fence.
        state = dict(state="recording", reason="", detail="", last_segment_end_us=end_us,
                     bitrate_bps=nbytes * 8 / ((end_us - start_us) / US), fps=25.0, lag_s=0.0)
        self.samples.time("add_segment", self.index.add_segment, fence=run.fence, camera_id=key,
                          start_us=start_us, end_us=end_us, path=when.strftime(SEGMENT_NAME_PATTERN.format(
                              run=run.run_id)), bytes=nbytes, init_bytes=812, codec="h264", width=1920,
                          height=1080, fps=25.0, run_id=run.run_id, recorder=self.id, camera_state=state)
        run.start_us = end_us


def _worker_setup() -> None:
    _set_pdeathsig(signal.SIGKILL)  # never outlive the script
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the script, which stops us in order
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(processName)s %(levelname)s %(name)s: %(message)s")


def _serve(conn, samples: Samples, start, stop) -> None:
    """A worker's command loop: ready, go, report (samples of a window), stop."""
    conn.send(("ready", os.getpid()))
    while True:
        try:
            cmd, *args = conn.recv()
        except EOFError:
            cmd = "stop"
        if cmd == "go":
            start()
        elif cmd == "report":
            conn.send(samples.window(*args))
        else:
            stop()
            return


def node_process(url: str, indexes: list[int], conn) -> None:
    _worker_setup()
    samples = Samples(SEGMENT_KINDS)
    placer = SharedPlacer()
    nodes = [SimNode(url, i, samples, placer) for i in indexes]

    def start() -> None:
        for n in nodes:
            n.start()

    def stop() -> None:
        for n in nodes:
            n.stop()

    _serve(conn, samples, start, stop)


def query_process(url: str, n_cams: int, t0: int, t1: int, rate: float, seed: int, conn) -> None:
    """The console's questions about the preloaded days, one at a time at ``rate`` per second."""
    _worker_setup()
    from zoneinfo import ZoneInfo

    from varta.db.engine import make_engine
    from varta.playback.query import recordings_report
    from varta.recording.index import ArchiveIndex

    samples = Samples(QUERY_KINDS)
    engine = make_engine(url)
    index = ArchiveIndex(engine)
    tz = ZoneInfo("Europe/Kyiv")
    rng = random.Random(seed)
    stop = threading.Event()
    hour = 3600 * US

    def ask(kind: str, cam: str):
        if kind == "segment_at":
            return index.segment_at(cam, rng.randrange(t0, t1))
        if kind == "segments_hour":
            h = rng.randrange(t0, t1 - hour)
            return index.segments_between(cam, h, h + hour)
        d = rng.randrange(t0, t1 - DAY_US + 1)
        if kind == "ranges_day":
            return index.ranges_between(cam, d, d + DAY_US)
        return recordings_report(index, cam, d, d + DAY_US, tz)

    def loop() -> None:
        nxt = time.monotonic()
        i = 0
        while not stop.is_set():
            kind = QUERY_KINDS[i % len(QUERY_KINDS)]
            i += 1
            try:
                samples.time(kind, ask, kind, _cam(rng.randint(1, n_cams)))
            except Exception:
                if samples.note("errors") <= 3:
                    log.exception("query failed")
            nxt = max(nxt + 1.0 / rate, time.monotonic())  # late: the next one now, no burst to catch up
            stop.wait(nxt - time.monotonic())

    thread = threading.Thread(target=loop, name="queries", daemon=True)

    def halt() -> None:
        stop.set()
        thread.join(timeout=15)
        engine.dispose()

    _serve(conn, samples, thread.start, halt)


class Worker:
    """A worker process seen from the script: its pipe, pid and the nodes it runs."""

    def __init__(self, ctx, name: str, target, args: tuple, node_ids: list[str]):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(*args, child), name=name, daemon=True)
        self.proc.start()
        child.close()
        self.node_ids = node_ids
        self.pid = 0

    def ready(self, timeout: float) -> None:
        if not self.conn.poll(timeout):
            raise RuntimeError(f"{self.proc.name} did not start")
        _, self.pid = self.conn.recv()

    def ask(self, *msg, timeout: float = 120):
        self.conn.send(msg)
        if not self.conn.poll(timeout):
            raise RuntimeError(f"{self.proc.name} did not answer {msg[0]}")
        return self.conn.recv()

    def stop(self) -> None:
        if self.proc.is_alive():
            try:
                self.conn.send(("stop",))
            except OSError:
                pass
            self.proc.join(30)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(10)


# --------------------------------------------------------------------------- measuring


def _wait(pred, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(every)
    raise RuntimeError(f"timed out: {what}")


def _all_leased(engine, n_cams: int) -> bool:
    with engine.connect() as conn:
        held = conn.execute(select(func.count()).select_from(leases).where(
            leases.c.kind == "record", leases.c.holder.is_not(None))).scalar_one()
    return held == n_cams


def _per_node(engine, n_nodes: int) -> list[int]:
    """Cameras each node holds, fewest first (nodes holding none included)."""
    with engine.connect() as conn:
        held = dict(conn.execute(select(leases.c.holder, func.count()).where(
            leases.c.kind == "record", leases.c.holder.is_not(None)).group_by(leases.c.holder)).all())
    return sorted(held.get(_node_id(i), 0) for i in range(n_nodes))


def failover(engine, victim: Worker) -> dict | None:
    """kill -9 the victim's process; how long until another node leases each of its cameras."""
    nid = victim.node_ids[0]
    with engine.connect() as conn:
        lost = [r[0] for r in conn.execute(select(leases.c.name).where(leases.c.holder == nid))]
    victim.proc.kill()
    victim.proc.join(10)
    if not lost:  # it lost them when its session lapsed: nothing comes back without planned moves
        return None
    with engine.connect() as conn:
        hb, expires = conn.execute(select(cluster_nodes.c.heartbeat_us, cluster_nodes.c.expires_us)
                                   .where(cluster_nodes.c.id == nid)).one()

    def moved():
        with engine.connect() as conn:
            rows = conn.execute(select(leases.c.holder, leases.c.acquired_us).where(leases.c.name.in_(lost))).all()
        return rows if all(h not in (None, nid) for h, _ in rows) else None

    rows = _wait(moved, 60 + LEASE_S, "the dead node's cameras leased by others", every=0.05)
    taken = sorted(a for _, a in rows)
    return {"cameras": len(lost), "takers": len({h for h, _ in rows}),
            "first_s": (taken[0] - hb) / US, "all_s": (taken[-1] - hb) / US,
            "after_expiry_s": (taken[-1] - expires) / US}


def _capture(engine, call) -> tuple[str, dict]:
    """The SQL statement (and parameters) an ArchiveIndex call sends, for EXPLAIN."""
    from sqlalchemy import event

    seen = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    return next((s, p) for s, p in reversed(seen) if "FROM segments" in s or "FROM spans" in s)


def _plan_summary(lines: list[str]) -> str:
    scans = [ln.strip().split("  (")[0].lstrip("-> ") for ln in lines if " Scan " in ln]
    buffers = next((ln.strip() for ln in lines if "Buffers:" in ln), "")
    exe = next((ln.strip() for ln in lines if ln.startswith("Execution Time")), "")
    return f"{'; '.join(scans)} — {buffers.removeprefix('Buffers: ')}; {exe.lower()}"


def ten_days(engine, server: PrivateServer, meta: dict, n_cams: int, rows_now: int, seed: int) -> dict:
    """What the full 10-day index needs: sizes, B-tree heights, plans, retention costs."""
    from varta.recording.index import ArchiveIndex

    city_rows = CITY_CAMERAS * CITY_DAYS * SLOTS_PER_DAY
    out: dict = {"city_rows": city_rows, "rows": rows_now}
    with engine.connect() as conn:
        rels = [("segments (heap)", "segments")] + [
            (r[0], r[0]) for r in conn.execute(text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'segments' ORDER BY indexname"))]
        try:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
            conn.commit()
            heights = {r[0]: r[1] + 1 for r in conn.execute(text(
                "SELECT indexname, (bt_metap(indexname)).level FROM pg_indexes WHERE tablename = 'segments'"))}
        except Exception:  # contrib not installed: heights are estimated only
            conn.rollback()
            heights = {}
        sizes = []
        for label, rel in rels:
            nbytes = conn.execute(text("SELECT pg_relation_size(CAST(:r AS regclass))"), {"r": rel}).scalar_one()
            per_row = nbytes / rows_now
            leaf_pages = nbytes / 8192 * city_rows / rows_now
            # A B-tree's internal pages hold about as many keys as its leaves (suffix
            # truncation makes them no bigger), ~90% full.
            fanout = max(2.0, 8192 * 0.9 / max(per_row, 8))
            est = 1 + math.ceil(math.log(max(leaf_pages, 2)) / math.log(fanout)) if rel != "segments" else None
            sizes.append({"rel": label, "bytes": nbytes, "per_row": per_row, "city_bytes": per_row * city_rows,
                          "height": heights.get(rel), "city_height": est})
        out["sizes"] = sizes
        out["other_mb"] = conn.execute(text(
            "SELECT (pg_total_relation_size('spans') + pg_total_relation_size('camera_status') + "
            "pg_total_relation_size('leases') + pg_total_relation_size('cluster_nodes')) / 1048576.0")).scalar_one()

    index = ArchiveIndex(engine)
    rng = random.Random(seed + 7)
    t0, t1 = meta["t0"], meta["t1"]
    plans = {}
    for label, call in (
            ("segment_at", lambda c: index.segment_at(c, rng.randrange(t0, t1))),
            ("ranges_between, 1 day", lambda c: index.ranges_between(c, t1 - DAY_US, t1)),
            ("segments_between, 1 hour", lambda c: index.segments_between(c, t0 + 3600 * US, t0 + 7200 * US))):
        stmt, params = _capture(engine, lambda: call(_cam(rng.randint(1, n_cams))))
        with engine.connect() as conn:
            lines = [r[0] for r in conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {stmt}", params)]
        plans[label] = (lines, _plan_summary(lines))
    out["plans"] = plans

    # Retention by DELETE, the floor of what Varta's janitor does now: the oldest hour of
    # every camera, rolled back (nothing changes; the cost is that of the delete itself,
    # before the VACUUM that a committed one would also need).
    with engine.connect() as conn:
        tx = conn.begin()
        cpu0, w = server.cpu_seconds(), time.perf_counter()
        n = conn.execute(delete(segments).where(segments.c.start_us < t0 + 3600 * US)).rowcount
        out["delete"] = {"rows": n, "wall_s": time.perf_counter() - w, "cpu_s": server.cpu_seconds() - cpu0}
        tx.rollback()

    return out


def measured_apart(engine, server: PrivateServer, n_nodes: int) -> dict:
    """Per-recorder work the simulation leaves out or shares, timed with the load stopped:
    the camera list (re-read every 3 s and 5 s), one janitor retention pass (every 60 s),
    and placing every camera afresh (whenever the set of live nodes changes)."""
    from varta.cameras.registry import CameraRegistry
    from varta.config import Settings
    from varta.recording.janitor import Janitor, JanitorReport

    def cost(fn, times: int) -> dict:
        fn()  # warm
        pg0, py0, w = server.cpu_seconds(), time.process_time(), time.perf_counter()
        for _ in range(times):
            fn()
        return {"wall_s": (time.perf_counter() - w) / times, "pg_s": (server.cpu_seconds() - pg0) / times,
                "py_s": (time.process_time() - py0) / times}

    registry = CameraRegistry(engine)
    # The janitor runs under a node id that owns no rows, so it finds nothing to delete:
    # the steady state's scans, one indexed probe per camera in the registry.
    settings = Settings(home=C.OUT / "scale" / "janitor-home", database_url=str(engine.url),
                        recorder_name="scale-bench-readonly")
    jan = Janitor(engine, settings, "scale-bench-readonly")
    cams = [CameraInfo(c.id, c.recorder, c.group_name) for c in registry.list()]
    nodes = [NodeInfo(_node_id(i), _node_name(i)) for i in range(n_nodes)]
    # A recorder re-reads the registry only when it changed; the poll itself is one aggregate.
    return {"camera_list": cost(registry.version, 10),
            "janitor": cost(lambda: jan._apply_retention(int(time.time() * US), {}, JanitorReport()), 3),
            "placement": cost(lambda: Placer().place(cams, nodes), 3)}


# --------------------------------------------------------------------------- the run


def _cached(stamp: Path, data: Path, params: dict) -> dict | None:
    if not (stamp.is_file() and (data / "PG_VERSION").is_file()):
        return None
    got = json.loads(stamp.read_text())
    return got["meta"] if got.get("params") == params else None


def _prepare(server: PrivateServer, stamp: Path, params: dict, rebuild: bool) -> dict:
    """The preloaded database: reused when its stamp matches, else built afresh."""
    meta = None if rebuild else _cached(stamp, server.data, params)
    if meta is not None:
        print(f"reusing {server.data} ({meta['rows']:,} rows, built in {meta['build_s']} s)", flush=True)
        return meta
    rows = params["cameras"] * params["days"] * SLOTS_PER_DAY
    need = estimate_bytes(rows)
    shutil.rmtree(server.data, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    free = shutil.disk_usage(server.data.parent).free
    if free < need:
        raise SystemExit(f"{rows:,} rows need about {need / 2**30:.0f} GiB under {server.data.parent}; "
                         f"{free / 2**30:.0f} GiB free")
    print(f"building {params['cameras']:,} cameras x {params['days']} day(s) of 10 s segments ({rows:,} rows, "
          f"up to {need / 2**30:.1f} GiB) in {server.data} ...", flush=True)
    server.init()
    meta = build(server, params["cameras"], params["days"])
    stamp.write_text(json.dumps({"params": params, "meta": meta}))
    print(f"built {meta['rows']:,} rows in {meta['build_s']} s", flush=True)
    return meta


def _rows(engine, meta: dict) -> int:
    """Rows in ``segments``: the preload plus what runs wrote (an index range, not a scan)."""
    with engine.connect() as conn:
        return meta["rows"] + conn.execute(select(func.count()).select_from(segments).where(
            segments.c.id > meta["max_id"])).scalar_one()


def _stats(ms: list[float]) -> list[str]:
    if not ms:
        return ["0", "-", "-", "-"]
    return [f"{len(ms):,}", f"{C.percentile(ms, 50):.2f}", f"{C.percentile(ms, 99):.2f}", f"{max(ms):.1f}"]


def _verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def run(a) -> str:
    from varta.db.engine import open_database

    base = C.OUT / "scale"
    base.mkdir(parents=True, exist_ok=True)
    tag = f"pg-{a.cameras}c-{a.days}d"
    server = PrivateServer(base / tag, base / f"{tag}.log", a.pg_cpus)
    res: dict = {"version": server.version}
    workers: list[Worker] = []
    try:
        meta = _prepare(server, base / f"{tag}.json", {"cameras": a.cameras, "days": a.days, "recipe": RECIPE},
                        a.rebuild)
        res["meta"] = meta
        res["settings"] = _run_settings(a.nodes, dict(kv.split("=", 1) for kv in a.pg_set))
        url = server.start(res["settings"])
        engine = open_database(url)  # a no-op unless Varta gained a migration since the build
        with engine.begin() as conn:  # a fresh cluster each run; earlier runs' rows stay
            for table in (leases, cluster_nodes, outages):
                conn.execute(delete(table))
        res["rows_before"] = _rows(engine, meta)

        # The node to be killed alone in its process, the others NODES_PER_PROC to a process.
        ctx = mp.get_context("spawn")
        groups = [[0]] + [list(range(k, min(k + NODES_PER_PROC, a.nodes))) for k in range(1, a.nodes, NODES_PER_PROC)]
        res["procs"] = len(groups)
        for k, g in enumerate(groups):
            workers.append(Worker(ctx, f"nodes-{k}", node_process, (url, g), [_node_id(i) for i in g]))
        workers.append(Worker(ctx, "queries", query_process,
                              (url, a.cameras, meta["t0"], meta["t1"], a.query_rate, a.seed), []))
        for w in workers:
            w.ready(300)
        t_go = time.monotonic()
        for w in workers:
            w.conn.send(("go",))
        # On one small machine the 30 nodes' cold start (each its camera list, placement, claims
        # and a first query per camera) shares two cores: far slower than on 30 servers.
        _wait(lambda: _all_leased(engine, a.cameras), 600, "every camera leased")
        res["placed_s"] = time.monotonic() - t_go
        res["per_node_at_start"] = _per_node(engine, a.nodes)
        # Whatever a slow start left unbalanced is given back (this role has no make-before-
        # break moves): measure the steady state, not the rebalancing.
        fair = 2 * a.cameras / a.nodes
        _wait(lambda: (p := _per_node(engine, a.nodes))[0] > 0 and p[-1] <= fair and _all_leased(engine, a.cameras),
              300, "a balanced cluster")
        res["balanced_s"] = time.monotonic() - t_go
        res["per_node"] = _per_node(engine, a.nodes)
        print(f"{a.nodes} nodes hold all {a.cameras:,} cameras after {res['placed_s']:.1f} s; warm-up {a.warmup} s, "
              f"then {a.duration} s measured", flush=True)
        time.sleep(a.warmup)

        bench_pids = [os.getpid()] + [w.pid for w in workers]
        pg0, all0 = server.cpu_seconds(), C.all_cpu()
        with engine.connect() as conn:
            id0 = conn.execute(select(func.max(segments.c.id))).scalar_one()
        w0 = time.monotonic()
        time.sleep(a.duration)
        w1 = time.monotonic()
        pg1, all1 = server.cpu_seconds(), C.all_cpu()
        res["loadavg"] = os.getloadavg()
        pg_pids = set(server.pids())
        with engine.connect() as conn:
            res["written"] = conn.execute(select(func.count()).select_from(segments).where(
                segments.c.id > id0)).scalar_one()
        res["window"] = w1 - w0
        res["ms"] = {k: [] for k in SEGMENT_KINDS + QUERY_KINDS}
        res["counts"] = dict.fromkeys(EVENTS, 0)
        for w in workers:
            got = w.ask("report", w0, w1)
            for k, v in got["ms"].items():
                res["ms"][k] += v
            for k, v in got["counts"].items():
                res["counts"][k] += v
        res["pg_cpu"] = pg1 - pg0
        res["bench_cpu"] = sum(all1[p] - all0[p] for p in bench_pids if p in all0 and p in all1)
        res["other_cpu"] = sum(all1[p] - all0[p] for p in all1
                               if p in all0 and p not in pg_pids and p not in bench_pids)
        print(f"window: {res['written'] / res['window']:.0f} segment rows/s, PostgreSQL "
              f"{100 * res['pg_cpu'] / res['window']:.0f}% of a core", flush=True)

        print(f"killing {workers[0].proc.name} (node sim00) with SIGKILL ...", flush=True)
        res["failover"] = fo = failover(engine, workers[0])
        if fo:
            print(f"  its {fo['cameras']} cameras leased by {fo['takers']} other nodes {fo['all_s']:.1f} s after "
                  f"its last heartbeat (lease {LEASE_S:g} s)", flush=True)
        for w in workers:
            w.stop()
        print("load stopped: camera list and janitor costs; sizes, plans and retention for 10 days ...", flush=True)
        res["apart"] = measured_apart(engine, server, a.nodes)
        res["td"] = ten_days(engine, server, meta, a.cameras, _rows(engine, meta), a.seed)
        engine.dispose()
    finally:
        for w in workers:
            w.stop()
        server.stop()
    return report(a, res)


def report(a, res: dict) -> str:
    window, ms, fo, apart, counts = res["window"], res["ms"], res["failover"], res["apart"], res["counts"]
    per_node, start_nodes = res["per_node"], res["per_node_at_start"]
    rate = a.cameras / SEG_S * a.write_share
    lat_rows = []
    for label, kind, target in (
            ("lease renewal: NodeRegistry.heartbeat (1 UPDATE per node per tick)", "heartbeat", CONTROL_P99_MS),
            ("index insert: ArchiveIndex.add_segment (fenced; + span + camera state, one transaction)",
             "add_segment", CONTROL_P99_MS),
            ("coordinator tick, whole (heartbeat, nodes, leases, placement)", "tick", None),
            ("writer lateness (segment written after its end)", "lag", None),
            ("segment_at(camera, t)", "segment_at", QUERY_P99_MS),
            ("ranges_between, 1 day (spans)", "ranges_day", QUERY_P99_MS),
            ("recordings_report, 1 day (the console's day view)", "report_day", QUERY_P99_MS),
            ("segments_between, 1 hour (a playback timeline)", "segments_hour", None)):
        v = ms[kind]
        verdict = _verdict(C.percentile(v, 99) <= target) if (target and v) else ""
        lat_rows.append([label, *_stats(v), f"≤ {target:g}" if target else "", verdict])

    pg_core = res["pg_cpu"] / window
    lists_per_s = a.nodes * (1 / SYNC_S + 1 / FULL_PASS_S)
    list_core = lists_per_s * apart["camera_list"]["pg_s"]
    jan_core = a.nodes / JANITOR_S * apart["janitor"]["pg_s"]
    total_core = pg_core + list_core + jan_core
    written_rate = res["written"] / window
    status_rate = written_rate  # the camera's state is written with each segment (same transaction)
    fig_rows = [
        ["segment rows written", f"{written_rate:,.0f} /s", f"{rate:,.0f} /s", _verdict(written_rate >= 0.98 * rate)],
        ["status updates", f"{status_rate:,.0f} /s", f"{rate:,.0f} /s", _verdict(status_rate >= 0.98 * rate)],
        ["PostgreSQL CPU in the window (postmaster + backends)", f"{100 * pg_core:.1f}% of one core", "", ""],
        ["headroom on 2 cores, window", f"{DB_CORES / pg_core:.1f}x", f"≥ {HEADROOM:g}x",
         _verdict(DB_CORES / pg_core >= HEADROOM)],
        [f"+ registry polls: {a.nodes} recorders check the {a.cameras:,} cameras for changes every {SYNC_S:g} s and "
         f"{FULL_PASS_S:g} s (measured apart: {1000 * apart['camera_list']['pg_s']:.1f} ms PostgreSQL CPU each)",
         f"+{100 * list_core:.1f}% of one core", "", ""],
        [f"+ janitor: {a.nodes} retention passes per {JANITOR_S:g} s (measured apart: "
         f"{apart['janitor']['pg_s']:.2f} s PostgreSQL CPU each)", f"+{100 * jan_core:.1f}% of one core", "", ""],
        ["headroom on 2 cores, with those", f"{DB_CORES / total_core:.1f}x", f"≥ {HEADROOM:g}x",
         _verdict(DB_CORES / total_core >= HEADROOM)],
    ]
    if a.write_share < 1.0:
        # Upper bound: as if every bit of the window's PostgreSQL CPU grew with the writes
        # (the heartbeats, ticks and queries do not).
        full_core = pg_core / a.write_share + list_core + jan_core
        fig_rows.append([f"projected to the full write rate ({a.cameras / SEG_S:,.0f} rows/s; window measured at "
                         f"{100 * a.write_share:.0f}%, all of its PostgreSQL CPU scaled up: an upper bound)",
                         f"{100 * full_core:.1f}% of one core → headroom {DB_CORES / full_core:.1f}x",
                         f"≥ {HEADROOM:g}x", _verdict(DB_CORES / full_core >= HEADROOM)])
    fig_rows += [
        [f"failover: {fo['cameras']} cameras of the killed node leased elsewhere",
         f"{fo['all_s']:.1f} s after its last heartbeat, {fo['after_expiry_s']:.1f} s after its session expired "
         f"(first camera {fo['first_s']:.1f} s; {fo['takers']} takers)",
         f"floor {LEASE_S:g} s (lease); ≤ {LEASE_S + 2 * TICK_S:g} s (+ 2 ticks)",
         _verdict(fo["all_s"] <= LEASE_S + 2 * TICK_S)] if fo else
        ["failover", "not measured: the node to be killed held no camera when killed", "", "MISSES"],
        ["cold start: every camera leased", f"{res['placed_s']:.1f} s after the nodes started",
         f"a node waits one lease ({LEASE_S:g} s) before taking work", ""],
        ["cameras per node then: fewest / median / most", " / ".join(str(x) for x in (
            start_nodes[0], start_nodes[len(start_nodes) // 2], start_nodes[-1])), "", ""],
        ["balanced (every node ≤ 2× its share): cameras per node, fewest / median / most",
         f"{res['balanced_s']:.1f} s after the start: " + " / ".join(str(x) for x in (
             per_node[0], per_node[len(per_node) // 2], per_node[-1])), f"~{a.cameras / a.nodes:.0f} each "
         "(rendezvous hashing)", _verdict(per_node[0] > 0 and per_node[-1] <= 2 * a.cameras / a.nodes)],
        ["lapsed sessions / fenced / failed calls in the window", " / ".join(str(n) for n in counts.values()),
         "0 / 0 / 0", _verdict(not any(counts.values()))],
    ]
    la = res["loadavg"]
    pinned = f"; PostgreSQL pinned to CPUs {sorted(a.pg_cpus)}, the rest to the others" if a.pg_cpus else ""
    extra = (
        f"- {res['version']}, a private server on this machine (`initdb --locale C.UTF-8`), changed from the "
        f"defaults: {', '.join(f'{k}={v}' for k, v in res['settings'].items())} (shared_buffers: 128 MB is sized "
        f"for a laptop, a dedicated server gives it about a quarter of its RAM, here an eighth as the nodes share "
        f"the machine; max_connections: every node has its own pool){pinned}\n"
        f"- load average at the window's end {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} (1/5/15 min)\n"
        f"- index: {res['rows_before']:,} segment rows at the start ({res['meta']['rows']:,} preloaded: "
        f"{a.cameras:,} cameras x {a.days} day(s) of 10 s segments, one span per camera; the rest written by "
        f"earlier runs)\n"
        f"- {a.nodes} simulated recorders (Varta's Coordinator, {TICK_S:g} s tick, {LEASE_S:g} s lease) in "
        f"{res['procs']} processes, the killed one alone in its own; one 10 s segment (with its status update) per "
        f"camera per 10 s; queries at {a.query_rate:g}/s from one more process; warm-up {a.warmup} s, window "
        f"{window:.0f} s. Latencies are as the caller sees them (Python and the GIL included)\n"
        f"- CPU in the window: PostgreSQL {res['pg_cpu']:.1f} s, this benchmark's own Python processes "
        f"{res['bench_cpu']:.1f} s ({100 * res['bench_cpu'] / window:.0f}% of a core), everything else on the "
        f"machine at least {res['other_cpu']:.1f} s ({100 * res['other_cpu'] / window:.0f}%)\n"
        f"- each recorder's own CPU (measured apart): {1000 * apart['camera_list']['py_s']:.0f} ms per change check "
        f"of the {a.cameras:,} cameras, {100 * (1 / SYNC_S + 1 / FULL_PASS_S) * apart['camera_list']['py_s']:.1f}% "
        f"of a core at one read per {SYNC_S:g} s and {FULL_PASS_S:g} s; {apart['janitor']['py_s']:.2f} s per "
        f"janitor retention pass ({100 * apart['janitor']['py_s'] / JANITOR_S:.1f}% of a core at one per "
        f"{JANITOR_S:g} s); {apart['placement']['py_s']:.2f} s to place them over {a.nodes} nodes, in its "
        f"coordinator's tick, whenever the live node set changes")
    block = C.header(f"Control plane: {a.cameras:,} cameras on {a.nodes} simulated recorders, one PostgreSQL", extra)
    block += "\n" + C.md_table(["call", "n", "p50 ms", "p99 ms", "max ms", "target p99 ms", "verdict"], lat_rows)
    block += "\n\n" + C.md_table(["figure", "measured", "target / floor", "verdict"], fig_rows)
    if counts["lapsed"]:
        block += (f"\n\n**Not a valid measurement of the database:** {counts['lapsed']} node sessions lapsed in the "
                  "window, i.e. simulated nodes went more than a lease time without a heartbeat because this "
                  "machine could not run them (see the CPU line above; give it more cores, `--pg-cpus`).")
    block += "\n\n" + ten_day_text(res["td"])
    return C.emit(block, a.results, "scale_bench.md")


def ten_day_text(td: dict) -> str:
    city_rows = td["city_rows"]
    gb = 2**30
    rows = []
    for s in td["sizes"]:
        h = "" if s["city_height"] is None else f"{s['height'] or '?'} → {s['city_height']}"
        rows.append([s["rel"], f"{s['bytes'] / gb:.2f}", f"{s['per_row']:.0f}", f"{s['city_bytes'] / gb:.0f}", h])
    total_now = sum(s["bytes"] for s in td["sizes"])
    total_city = sum(s["city_bytes"] for s in td["sizes"])
    rows.append(["total", f"{total_now / gb:.2f}", f"{total_now / td['rows']:.0f}", f"{total_city / gb:.0f}", ""])
    d = td["delete"]
    per_row_us = 1e6 * d["cpu_s"] / max(d["rows"], 1)
    retention_core = per_row_us * CITY_CAMERAS / SEG_S / 1e6  # the city expires 600 rows/s
    height = max((s["city_height"] or 0) for s in td["sizes"])
    out = [f"**The full index: {CITY_CAMERAS:,} cameras x {CITY_DAYS} days = {city_rows / 1e6:.0f} M rows** "
           f"(measured on {td['rows']:,} rows; the other cluster tables {td['other_mb']:.0f} MB):", "",
           C.md_table(["relation", "now GiB", "bytes/row", f"{CITY_DAYS} days GiB (est.)",
                       "B-tree height now → 10 days (est.)"], rows), "",
           "Plans (EXPLAIN ANALYZE, warm cache, load stopped; in full below):", ""]
    out += [f"- {label}: {summary}" for label, (_, summary) in td["plans"].items()]
    out += [
        f"- retention by DELETE (what the janitor does, one paged scan per retention class): a rolled-back DELETE of the oldest "
        f"hour ({d['rows']:,} rows) took {d['wall_s']:.1f} s and {d['cpu_s']:.1f} s of PostgreSQL CPU, "
        f"{per_row_us:.1f} µs a row, so the city's 600 expired rows a second cost ≥ {100 * retention_core:.2f}% "
        f"of a core to delete; the cost is what follows (below).",
        "",
        f"What {city_rows / 1e6:.0f} M rows need: about {total_city / gb:.0f} GiB of disk for `segments` "
        f"(freshly built indexes; indexes grown by inserts are somewhat larger), {total_city / CITY_DAYS / gb:.0f} "
        f"GiB written and removed again every day. The B-trees stay {height} levels deep, so segment_at and the "
        f"day view remain a few page reads (the day view reads `spans`, a few rows per camera per day). Inserts "
        f"touch only the live edge: each camera's last leaf of `ix_segments_camera_start` (about "
        f"{CITY_CAMERAS * 8 / 1024:.0f} MB for {CITY_CAMERAS:,} cameras) and the right edges of the other indexes. "
        f"Rows are in time order across cameras, so a playback timeline (`segments_between`) reads one heap page "
        f"per segment (360 an hour): cheap while the day is cached, random reads for old days on a cold cache. "
        f"Retention is what does not scale as it is: a deleted row stays in the heap and in all four indexes "
        f"until VACUUM, which reads every index whole (~{(total_city - td['sizes'][0]['city_bytes']) / gb:.0f} GiB "
        f"at 10 days) on each pass, and every page the day's deletes touch is written to the WAL again after a "
        f"checkpoint; with the default autovacuum_vacuum_scale_factor (0.2) autovacuum waits for "
        f"~{0.2 * city_rows / 1e6:.0f} M dead rows (two days of deletes) before it starts, the table bloating "
        f"by a fifth meanwhile. "
        f"**Daily range partitions of `segments` on `start_us`** fix that: an expired day is a DETACH + DROP "
        f"(milliseconds: no dead rows, no VACUUM, no index bloat); the queries above all bound `start_us` "
        f"(segment_at: `start_us > t - 15 min`), so the planner prunes to one partition (two at midnight), and "
        f"each partition's indexes are one day's size. What Varta would have to change: the primary key must "
        f"include `start_us` (`get_segment(id)` then probes every partition's index: 10-14 probes, still under a "
        f"millisecond), and retention must go by day instead of by camera: a day's partition can be dropped once "
        f"every node has deleted that day's files and no camera keeps it (a longer `retention_days`, a hold); "
        f"the few rows that must stay are first copied into a partition for kept footage. `spans`, "
        f"`camera_status`, `leases` and `cluster_nodes` stay small and need nothing.",
        "", "Query plans:", ""]
    for label, (lines, _) in td["plans"].items():
        out.append(f"    -- {label}")
        out += [f"    {ln}" for ln in lines]
    return "\n".join(out)


def _cpu_list(text_: str) -> set[int]:
    cpus = {int(x) for x in text_.split(",") if x.strip()}
    usable = os.sched_getaffinity(0)
    if not cpus or not cpus < usable:
        raise argparse.ArgumentTypeError(f"give some, not all, of the CPUs {sorted(usable)}")
    return cpus


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="600 cameras (5.2 M rows) on 10 nodes, 15 s warm-up, 60 s window")
    ap.add_argument("--nodes", type=int, default=None, help="simulated recorders (default 30; 10 with --quick)")
    ap.add_argument("--cameras", type=int, default=None, help=f"default {CITY_CAMERAS:,} (600 with --quick)")
    ap.add_argument("--days", type=int, default=1, help="days of index rows preloaded (default 1)")
    ap.add_argument("--duration", type=int, default=None, help="measured window, s (default 300; 60 with --quick)")
    ap.add_argument("--warmup", type=int, default=None, help="s before the window (default 30; 15 with --quick)")
    ap.add_argument("--query-rate", type=float, default=20.0, help="queries per second, all kinds (default 20)")
    ap.add_argument("--pg-cpus", type=_cpu_list, default=None, metavar="LIST",
                    help="pin PostgreSQL to these CPUs (e.g. 0,1: the 2 cores of the target) and the simulated "
                         "nodes to the others")
    ap.add_argument("--pg-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a PostgreSQL setting for the measured run (repeatable)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached database")
    ap.add_argument("--write-share", type=float, default=1.0,
                    help="the share of the city's write rate to generate (0.05..1; each camera then writes a "
                         "segment every 10/share s): a small machine cannot run the clients of 600 writes/s beside "
                         "the database, so PostgreSQL's CPU is measured at a share and projected (upper bound)")
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--results", default=None, help="append the Markdown block here (default bench/out/scale_bench.md)")
    a = ap.parse_args(argv)
    a.cameras = a.cameras or (600 if a.quick else CITY_CAMERAS)
    # 30 simulated nodes cost more than a core of Python even at 600 cameras (every node's
    # coordinator and writer are Varta's own code): too many for a small machine's check.
    a.nodes = a.nodes or (10 if a.quick else 30)
    a.duration = a.duration or (60 if a.quick else 300)
    a.warmup = a.warmup or (15 if a.quick else 30)
    if not (2 <= a.nodes <= 200 and a.nodes <= a.cameras <= 99_999 and 1 <= a.days <= 30):
        raise SystemExit("--nodes 2..200, --cameras nodes..99999, --days 1..30")
    if a.warmup < SEG_S or a.duration < 3 * SEG_S or a.query_rate <= 0:
        raise SystemExit("--warmup ≥ 10 s (one segment), --duration ≥ 30 s, --query-rate > 0")
    if not 0.05 <= a.write_share <= 1.0:
        raise SystemExit("--write-share 0.05..1")
    os.environ["SCALE_WRITE_PERIOD_S"] = str(SEG_S / a.write_share)  # the node processes read it
    if any("=" not in kv for kv in a.pg_set):
        raise SystemExit("--pg-set KEY=VALUE")
    if a.pg_cpus:  # the nodes (children of this process) inherit the rest
        os.sched_setaffinity(0, os.sched_getaffinity(0) - a.pg_cpus)
    # A SIGTERM runs the same clean-up as Ctrl-C: nodes stopped, PostgreSQL shut down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return run(a)


if __name__ == "__main__":
    main()
