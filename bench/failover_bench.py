"""Failover: how long each camera of a recorder killed with kill -9 goes unrecorded.

Three real ``varta recorder`` processes (own data folders, one PostgreSQL) record 30+
cameras served by the GStreamer RTSP simulator (1080p, 25 fps, 4 Mbit/s, 2 s GOP: a street
camera), with Varta's default 10 s segments and 5 s lease. One recorder is killed with
SIGKILL; once the others record its cameras, the gap of each is read from the index: from
the last indexed footage before the kill to the first after it.

Two figures per camera:
* *while the node is down*: the footage it was writing (up to one segment) is on its disk
  and unreachable, so this is lease + tick + connect + first keyframe + that segment;
* *after it returns*: its restart reconciles the torn segment into the index, leaving
  lease + tick + connect + first keyframe — the part failover itself costs.

The floor beside them is the lease time (no design that waits for a lease can do better),
and the expected cost lease + tick + half a GOP. Rounds kill each recorder in turn.
Nothing asserts; figures go to bench/out/failover_bench.md (or --results).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import _common as C

LEASE_S = 5.0
TICK_S = 1.0


def _db(admin_url: str):
    import sqlalchemy as sa

    from varta.db.engine import make_engine

    name = f"varta_failover_{secrets.token_hex(4)}"
    eng = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name, name


def _drop(admin_url: str, name: str) -> None:
    import sqlalchemy as sa

    from varta.db.engine import make_engine

    eng = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


class Node:
    def __init__(self, name: str, home: Path, db_url: str, seg_s: int):
        self.name, self.home = name, home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VARTA_")}
        self.env.update(VARTA_HOME=str(home), VARTA_DATABASE_URL=db_url, VARTA_NODE_NAME=name,
                        VARTA_SEGMENT_SECONDS=str(seg_s), VARTA_ANALYTICS="false",
                        VARTA_CLUSTER_LEASE_S=str(LEASE_S), VARTA_CLUSTER_TICK_S=str(TICK_S))
        self.proc: subprocess.Popen | None = None

    def cli(self, *args: str) -> str:
        r = subprocess.run([sys.executable, "-m", "varta.cli", *args], env=self.env, capture_output=True, text=True,
                           timeout=300, cwd=C.ROOT)
        if r.returncode:
            raise RuntimeError(f"varta {' '.join(args)}: {r.stderr[-800:]}")
        return r.stdout

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "node.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "varta.cli", "recorder", "--listen", "127.0.0.1:0"],
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=C.ROOT,
                                     preexec_fn=_die_with_parent)
        log.close()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    import ctypes

    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)


def _holders(node: Node) -> dict[str, str]:
    return {cam: n["name"] for n in json.loads(node.cli("nodes", "--json")) for cam in n["cameras"]}


def _recording(engine) -> set[str]:
    from sqlalchemy import text

    with engine.connect() as conn:
        return {r[0] for r in conn.execute(text("select camera_id from camera_status where state = 'recording'"))}


def _gaps(engine, cams: set[str], t_kill: int) -> dict[str, float]:
    """camera → seconds between the last footage ending before the kill and the first after."""
    from sqlalchemy import text

    out = {}
    with engine.connect() as conn:
        for cam in cams:
            before = conn.execute(text("select max(end_us) from segments where camera_id = :c and start_us < :t"),
                                  {"c": cam, "t": t_kill}).scalar()
            after = conn.execute(text("select min(start_us) from segments where camera_id = :c and start_us >= :b"),
                                 {"c": cam, "b": before or t_kill}).scalar()
            if before is not None and after is not None:
                out[cam] = max(0.0, (after - before) / 1e6)
    return out


def _wait(pred, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(every)
    raise RuntimeError(f"timed out: {what}")


def run(cameras: int, rounds: int, seg_s: int, admin_url: str, results: str | None) -> str:
    from varta.db.engine import make_engine
    from varta.demo.simulator import CameraSimulator

    stream = C.bench_stream()
    work = C.OUT / f"failover-{int(time.time())}"
    work.mkdir(parents=True)
    db_url, db_name = _db(admin_url)
    sim = CameraSimulator({f"cam{i:03d}": stream for i in range(cameras)}, threads=2)
    sim.start()
    nodes = {name: Node(name, work / name, db_url, seg_s) for name in ("rec-a", "rec-b", "rec-c")}
    engine = make_engine(db_url)
    down: list[float] = []
    back: list[float] = []
    per_round = []
    try:
        lines = ["cameras:"] + [f"  - id: cam{i:03d}\n    url: {sim.url(f'cam{i:03d}')}" for i in range(cameras)]
        (work / "cameras.yaml").write_text("\n".join(lines) + "\n")
        first = nodes["rec-a"]
        first.home.mkdir(parents=True)
        first.cli("camera", "import", str(work / "cameras.yaml"))
        for n in nodes.values():
            n.start()
        every = {f"cam{i:03d}" for i in range(cameras)}
        _wait(lambda: _recording(engine) >= every and len(_holders(first)) == cameras, 180, "all cameras recording")
        for r in range(rounds):
            # Let planned moves settle and segments roll; the kill lands at a random point of
            # the segments being written (the cameras' segments roll in step, so a fixed sleep
            # would kill at the same phase every round).
            time.sleep(3 * seg_s + random.uniform(0, seg_s))
            holders = _holders(first)
            victim = sorted(nodes)[r % 3]
            lost = {c for c, h in holders.items() if h == victim}
            if not lost:
                continue
            t_kill = time.time_ns() // 1000
            nodes[victim].kill9()
            others = next(n for name, n in nodes.items() if name != victim)
            _wait(lambda: not (lost & {c for c, h in _holders(others).items() if h == victim}), 120, "take-over")
            _wait(lambda: len(_gaps(engine, lost, t_kill)) == len(lost), 120, "first segments after the take-over")
            g_down = _gaps(engine, lost, t_kill)
            nodes[victim].start()  # it reconciles the segment it was writing when killed
            time.sleep(2 * seg_s + 10)
            g_back = _gaps(engine, lost, t_kill)
            down += g_down.values()
            back += g_back.values()
            per_round.append((victim, len(lost), max(g_down.values()), max(g_back.values())))
            print(f"round {r + 1}: kill -9 {victim} ({len(lost)} cameras): gap max {max(g_down.values()):.1f} s "
                  f"while down, {max(g_back.values()):.1f} s once it returned", flush=True)
    finally:
        for n in nodes.values():
            n.stop()
        sim.close()
        engine.dispose()
        _drop(admin_url, db_name)
    # lease + a tick + RTSP connect (~1 s) + the wait for the first keyframe and the torn
    # fragment the kill lost (half of the 2 s GOP each, on average)
    expected = LEASE_S + TICK_S + 1.0 + 1.0 + 1.0
    rows = [
        ["while the node is down", f"{C.percentile(down, 50):.1f}", f"{C.percentile(down, 95):.1f}",
         f"{max(down):.1f}", f"{LEASE_S:.0f} (lease)", "≤ 15 (hard 30)"],
        ["after it returns (torn segment recovered)", f"{C.percentile(back, 50):.1f}",
         f"{C.percentile(back, 95):.1f}", f"{max(back):.1f}", f"{LEASE_S:.0f} (lease); expected {expected:.0f}",
         "≤ 15 (hard 30)"],
    ]
    block = C.header(f"Failover: kill -9 of one of 3 recorders, {cameras} cameras, {len(down)} camera gaps",
                     f"- streams: 1080p 25 fps 4 Mbit/s, GOP 2 s; segments {seg_s} s; lease {LEASE_S:.0f} s, "
                     f"tick {TICK_S:.0f} s; PostgreSQL {admin_url.rsplit('@', 1)[-1].rsplit('/', 1)[0]}")
    block += "\n" + C.md_table(["per-camera gap (s)", "p50", "p95", "max", "floor", "target"], rows)
    block += "\n\n" + C.md_table(["round", "killed", "cameras", "max gap while down (s)", "max gap after return (s)"],
                                 [[i + 1, v, n, f"{a:.1f}", f"{b:.1f}"] for i, (v, n, a, b) in enumerate(per_round)])
    return C.emit(block, results, "failover_bench.md")


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3, help="kills, one recorder after the other")
    ap.add_argument("--segment-seconds", type=int, default=10)
    ap.add_argument("--postgres", default=os.environ.get("VARTA_TEST_POSTGRES_URL"),
                    help="an admin URL of a PostgreSQL server (a scratch database is made on it)")
    ap.add_argument("--quick", action="store_true", help="12 cameras, one round")
    ap.add_argument("--results", default=None)
    a = ap.parse_args(argv)
    if not a.postgres:
        raise SystemExit("give --postgres URL (or VARTA_TEST_POSTGRES_URL): failover needs PostgreSQL")
    cams, rounds = (12, 1) if a.quick else (a.cameras, a.rounds)
    return run(cams, rounds, a.segment_seconds, a.postgres, a.results)


if __name__ == "__main__":
    main()
