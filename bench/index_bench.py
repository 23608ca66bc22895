#!/usr/bin/env python3
"""Archive index latency: the two questions the UI asks most, on a city-sized index.

Builds an index of 100 cameras x 10 days of 10 s segments (8.64 M rows, less a few random
holes) with SQLAlchemy Core ``executemany`` in big transactions, in *time order across
cameras* (as a live recorder writes them: every camera's rows interleaved), then times:

* 2000 random ``ArchiveIndex.segment_at(camera, t)`` ("which file holds camera X at T");
* 2000 random ``varta.playback.query.recordings_report(index, camera, t, t + 1 day, tz)``
  ("what is recorded for X that day", with the gaps and their reasons);

and, to show where the report's time goes, smaller samples of ``segments_between`` for one
day and of the bare SQL for the same rows (sqlite3/DB-API cursor, two columns). Target:
p99 <= 5 ms for each question.

The SQLite database is kept under bench/out/index (rebuilt only when the parameters
change, or with ``--rebuild``). ``--postgres URL`` runs the same against an (empty)
PostgreSQL database instead; it is always rebuilt there.

Usage::

    .venv/bin/python bench/index_bench.py                 # 100 cameras x 10 days
    .venv/bin/python bench/index_bench.py --quick         # 10 cameras x 10 days
    .venv/bin/python bench/index_bench.py --postgres postgresql://user:pw@127.0.0.1/varta_bench
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from sqlalchemy import insert, select, text  # noqa: E402

from varta.db.schema import camera_status, cameras, outages, segments  # noqa: E402

US = 1_000_000
SEG_US = 10 * US
DAY_US = 86_400 * US
TARGET_P99_MS = 5.0
TZ = ZoneInfo("Europe/Kyiv")
BATCH = 100_000


def seg_bytes(cam_index: int) -> int:
    """Bytes of one 10 s segment (about 4 Mbit/s; a constant per camera keeps span sums exact)."""
    return 5_000_000 + 997 * cam_index


def plan_holes(rng: random.Random, n_cams: int, n_slots: int, holes_per_cam: int) -> dict[int, list[tuple[int, int]]]:
    """Per camera: sorted (first_slot, last_slot_exclusive) holes of 1 segment to 2 hours."""
    out = {}
    for c in range(n_cams):
        holes = []
        for _ in range(holes_per_cam):
            length = rng.choice((1, 1, 2, 3, 6, 30, 90, 360, 720))
            a = rng.randrange(0, n_slots - length)
            holes.append((a, a + length))
        out[c] = sorted(holes)
    return out


def build(engine, n_cams: int, days: int, seed: int, holes_per_cam: int) -> dict:
    rng = random.Random(seed)
    t0 = (int(time.time()) // 86400 - days - 1) * DAY_US  # midnight UTC, ending yesterday
    n_slots = days * 86400 // 10
    cam_ids = [f"cam-{i:04d}" for i in range(n_cams)]
    holes = plan_holes(rng, n_cams, n_slots, holes_per_cam)
    # slot -> set of cameras missing at that slot (holes are short and few: a dict is enough)
    missing: dict[int, set[int]] = {}
    for c, hs in holes.items():
        for a, b in hs:
            for s in range(a, b):
                missing.setdefault(s, set()).add(c)
    now = int(time.time() * US)
    t_build = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(cameras), [
            {"id": cid, "name": cid, "kind": "street", "address": "", "group_name": "", "main_url":
             f"rtsp://127.0.0.1:8554/{cid}", "sub_url": None, "retention_days": 10, "schedule": {"default": "continuous", "rules": []},
             "recorder": None, "enabled": True, "created_us": now, "updated_us": now} for cid in cam_ids])
        # Half of the holes are explained by an outage row (camera unreachable), half are not.
        out_rows = []
        for c, hs in holes.items():
            for j, (a, b) in enumerate(hs):
                if j % 2 == 0:
                    out_rows.append({"camera_id": cam_ids[c], "start_us": t0 + a * SEG_US, "end_us": t0 + b * SEG_US,
                                     "reason": "timeout", "detail": "bench hole", "recorder": "bench"})
        if out_rows:
            conn.execute(insert(outages), out_rows)
        conn.execute(insert(camera_status), [
            {"camera_id": cid, "recorder": "bench", "state": "recording", "reason": "", "detail": "",
             "since_us": t0, "last_segment_end_us": t0 + n_slots * SEG_US, "bitrate_bps": 4e6, "fps": 25.0,
             "lag_s": 0.0, "updated_us": now} for cid in cam_ids])
    day_prefix: dict[int, str] = {}
    rows: list[dict] = []
    total = 0
    run_ids = [f"{rng.getrandbits(32):08x}" for _ in cam_ids]

    def flush() -> None:
        nonlocal rows
        with engine.begin() as conn:
            conn.execute(insert(segments), rows)
        rows = []

    for s in range(n_slots):
        start = t0 + s * SEG_US
        day, sod = divmod(s * 10, 86400)
        if day not in day_prefix:
            import datetime as dt

            d = dt.datetime.fromtimestamp(start / US, tz=dt.timezone.utc)
            day_prefix[day] = d.strftime("%Y/%m/%d/%Y%m%dT")
        hh, rem = divmod(sod, 3600)
        mm, ss = divmod(rem, 60)
        stem = f"{day_prefix[day]}{hh:02d}{mm:02d}{ss:02d}Z-"
        gone = missing.get(s, ())
        for c, cid in enumerate(cam_ids):
            if c in gone:
                continue
            rows.append({"camera_id": cid, "start_us": start, "end_us": start + SEG_US,
                         "path": f"{stem}{run_ids[c]}.mp4", "bytes": seg_bytes(c),
                         "init_bytes": 812, "codec": "h264", "width": 1920, "height": 1080, "fps": 25.0,
                         "run_id": run_ids[c], "recorder": "bench", "status": "ok"})
        if len(rows) >= BATCH:
            total += len(rows)
            flush()
            if total % (10 * BATCH) < BATCH:
                el = time.perf_counter() - t_build
                print(f"  {total:,} rows, {total / el:,.0f} rows/s", flush=True)
    if rows:
        total += len(rows)
        flush()
    n_spans = 0
    try:  # newer schemas keep continuous stretches ("spans") in step with the segments
        from varta.db.schema import spans
    except ImportError:
        spans = None
    if spans is not None:
        # What ArchiveIndex.add_segment would have left: one span per stretch between holes.
        span_rows = []
        with_bytes = "bytes" in spans.c

        def span(cid: str, c: int, a: int, b: int) -> dict:
            row = {"camera_id": cid, "start_us": t0 + a * SEG_US, "end_us": t0 + b * SEG_US}
            if with_bytes:
                row["bytes"] = (b - a) * seg_bytes(c)
            return row

        for c, cid in enumerate(cam_ids):
            cur = 0
            for a, b in holes[c]:
                if a > cur:
                    span_rows.append(span(cid, c, cur, a))
                cur = max(cur, b)
            if cur < n_slots:
                span_rows.append(span(cid, c, cur, n_slots))
        with engine.begin() as conn:
            conn.execute(insert(spans), span_rows)
        n_spans = len(span_rows)
    return {"spans": n_spans, "t0": t0, "t1": t0 + n_slots * SEG_US, "rows": total, "cameras": cam_ids,
            "build_s": round(time.perf_counter() - t_build, 1),
            "holes": sum(len(h) for h in holes.values()), "outages": len(out_rows)}


def db_server_cpu() -> float:
    """CPU seconds of the local PostgreSQL server processes (0 for SQLite, which runs in-process).

    Every process named ``postgres`` on this machine counts, so another PostgreSQL instance
    busy at the same time would be included; a remote server is not seen at all.
    """
    total = 0.0
    for name in os.listdir("/proc"):
        if name.isdigit() and C.comm(int(name)) == "postgres":
            total += C.cpu_seconds(int(name)) or 0.0
    return total


def lat(fn, args_list) -> list[float]:
    out = []
    for args in args_list:
        t = time.perf_counter()
        fn(*args)
        out.append((time.perf_counter() - t) * 1000)
    return out


def stats_row(label: str, ms: list[float], target: bool = True) -> list[str]:
    p99 = C.percentile(ms, 99)
    verdict = ("meets" if p99 <= TARGET_P99_MS else "MISSES") if target else ""
    return [label, str(len(ms)), f"{C.percentile(ms, 50):.2f}", f"{C.percentile(ms, 95):.2f}", f"{p99:.2f}",
            f"{max(ms):.2f}", verdict]


def run(n_cams: int, days: int, queries: int, pg_url: str | None, rebuild: bool, seed: int,
        results: str | None, janitor_passes: int = 2) -> str:
    from varta.db.engine import open_database
    from varta.playback.query import recordings_report
    from varta.recording.index import ArchiveIndex

    params = {"cameras": n_cams, "days": days, "seed": seed, "holes_per_cam": 10, "recipe": 3}
    if pg_url:
        import hashlib

        from sqlalchemy.engine import make_url

        url, backend = pg_url, "PostgreSQL"
        safe = make_url(pg_url).render_as_string(hide_password=True)
        (C.OUT / "index").mkdir(parents=True, exist_ok=True)
        stamp = C.OUT / "index" / f"pg-{hashlib.sha1(safe.encode()).hexdigest()[:10]}.json"
        # A PostgreSQL database is reused only when it was built by this script with the same
        # parameters (the stamp says so) and --rebuild is not given; else it must be empty.
        if rebuild or not (stamp.is_file() and json.loads(stamp.read_text())["params"] == params):
            stamp.unlink(missing_ok=True)
    else:
        d = C.OUT / "index"
        d.mkdir(parents=True, exist_ok=True)
        db = d / f"index-{n_cams}x{days}.db"
        stamp = db.with_suffix(".json")
        url, backend = f"sqlite:///{db.resolve()}", "SQLite"
        if rebuild or not (stamp.is_file() and db.is_file() and json.loads(stamp.read_text())["params"] == params):
            for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), stamp):
                p.unlink(missing_ok=True)
    engine = open_database(url)
    with engine.connect() as conn:
        have = conn.execute(select(segments.c.id).limit(1)).first() is not None
    if stamp.is_file() and have:
        meta = json.loads(stamp.read_text())["meta"]
        print(f"reusing {url} ({meta['rows']:,} rows, built in {meta['build_s']} s)")
    else:
        if have:
            raise SystemExit(f"{url} already holds segments that this script did not build with these "
                             "parameters: give an empty database")
        print(f"building {n_cams} cameras x {days} days of 10 s segments in {url} ...", flush=True)
        meta = build(engine, n_cams, days, seed, params["holes_per_cam"])
        print(f"built {meta['rows']:,} rows in {meta['build_s']} s", flush=True)
        stamp.write_text(json.dumps({"params": params, "meta": meta}))
    size = ""
    if not pg_url:
        size = f", {(Path(url.removeprefix('sqlite:///')).stat().st_size / 2**30):.2f} GiB file"
    index = ArchiveIndex(engine)
    cams, t0, t1 = meta["cameras"], meta["t0"], meta["t1"]
    rng = random.Random(seed + 1)
    at_args = [(rng.choice(cams), rng.randrange(t0, t1)) for _ in range(queries)]
    rep_args = [(rng.choice(cams), t) for t in (rng.randrange(t0, t1 - DAY_US) for _ in range(queries))]
    small = max(50, queries // 4)

    # Warm-up: a few of each, so the first figures are not the cold page cache.
    for cam, t in at_args[:20]:
        index.segment_at(cam, t)
    for cam, t in rep_args[:5]:
        recordings_report(index, cam, t, t + DAY_US, TZ)

    print(f"timing {queries} segment_at ...", flush=True)
    at_ms = lat(index.segment_at, at_args)
    probe_n = min(200, len(at_args))
    hits = sum(1 for cam, t in at_args[:probe_n] if index.segment_at(cam, t) is not None)
    print(f"  segment_at p50 {C.percentile(at_ms, 50):.2f} ms, p99 {C.percentile(at_ms, 99):.2f} ms "
          f"(target p99 ≤ {TARGET_P99_MS:g} ms); {hits}/{probe_n} in a segment, the rest in holes", flush=True)
    print(f"timing {queries} recordings_report over one day ...", flush=True)
    rep_ms = lat(lambda cam, t: recordings_report(index, cam, t, t + DAY_US, TZ), rep_args)
    print(f"  recordings_report p50 {C.percentile(rep_ms, 50):.2f} ms, p99 {C.percentile(rep_ms, 99):.2f} ms "
          f"(target p99 ≤ {TARGET_P99_MS:g} ms)", flush=True)
    sample = rep_args[:small]
    gaps = [len(recordings_report(index, cam, t, t + DAY_US, TZ)["gaps"]) for cam, t in sample[:100]]
    between_ms = lat(lambda cam, t: index.segments_between(cam, t, t + DAY_US), sample)
    hour_ms = lat(lambda cam, t: index.segments_between(cam, t, t + 3600 * US), rep_args[-small:])
    ranges_ms = (lat(lambda cam, t: index.ranges_between(cam, t, t + DAY_US), sample)
                 if hasattr(index, "ranges_between") else None)
    raw_sql = text("SELECT start_us, end_us FROM segments WHERE camera_id = :c AND start_us < :t2 "
                   "AND start_us > :t1m AND end_us > :t1 AND status != 'missing' ORDER BY start_us")
    from varta.recording.index import MAX_SEGMENT_US

    with engine.connect() as conn:
        def raw(cam, t):
            return conn.execute(raw_sql, {"c": cam, "t1": t, "t2": t + DAY_US, "t1m": t - MAX_SEGMENT_US}).all()

        raw_ms = lat(raw, sample)
        n_rows = len(raw(*sample[0]))
        plans = []
        if not pg_url:
            for label, q in (("segment_at", "SELECT * FROM segments WHERE camera_id='x' AND start_us <= 5 AND "
                              "start_us > 1 AND status != 'missing' ORDER BY start_us DESC LIMIT 1"),
                             ("segments_between", "SELECT * FROM segments WHERE camera_id='x' AND start_us < 9 "
                              "AND start_us > 1 AND end_us > 2 AND status != 'missing' ORDER BY start_us")):
                detail = "; ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {q}"))
                plans.append(f"{label}: {detail}")
    # Background work the recorder does on the same index: the janitor pass (retention scan per
    # camera, free space, storage forecast), every VARTA_JANITOR_INTERVAL_S (60 s by default).
    # It runs here under a node name that owns no rows, so it cannot delete anything; the scans
    # it makes are the same as on a node with nothing expired.
    bg_rows = []
    if janitor_passes > 0:
        from varta.config import Settings
        from varta.recording.janitor import Janitor, JanitorReport

        jhome = C.OUT / "index" / "janitor-home"
        settings = Settings(home=jhome, database_url=url, recorder_name="bench-readonly")
        jan = Janitor(engine, settings, "bench-readonly")
        for label, fn in (("ArchiveIndex.camera_totals() (forecast)", index.camera_totals),
                          ("Janitor._apply_retention (per-camera scans)",
                           lambda: jan._apply_retention(int(time.time() * US), {}, JanitorReport())),
                          ("Janitor.run_once() (one whole pass)", jan.run_once)):
            walls, cpus = [], []
            for _ in range(janitor_passes):
                w, c, db0 = time.perf_counter(), time.process_time(), db_server_cpu()
                fn()
                walls.append(time.perf_counter() - w)
                cpus.append(time.process_time() - c + db_server_cpu() - db0)
            print(f"  {label}: {C.median(walls):.2f} s wall, {C.median(cpus):.2f} s CPU", flush=True)
            bg_rows.append([label, str(janitor_passes), f"{C.median(walls):.2f}", f"{C.median(cpus):.2f}",
                            f"{100 * C.median(cpus) / settings.janitor_interval_s:.1f}"])
    rows = [
        stats_row("segment_at(camera, t)", at_ms),
        stats_row("recordings_report(camera, t, t + 1 day)", rep_ms),
        *([stats_row("  part: ranges_between, 1 day (spans)", ranges_ms, False)] if ranges_ms else []),
        stats_row("segments_between, 1 day (Segment objects)", between_ms, False),
        stats_row("  bare SQL, same rows, 2 columns (DB floor for it)", raw_ms, False),
        stats_row("segments_between, 1 hour (a playback timeline)", hour_ms, False),
    ]
    spans_note = f"; {meta['spans'] / len(cams):.0f} spans per camera over the 10 days" if meta.get("spans") else ""
    block = C.header(
        f"Index: {backend}, {len(cams)} cameras x {days} days of 10 s segments ({meta['rows']:,} rows{size})",
        f"- rows inserted in time order across cameras (as a live recorder writes), {meta['holes']} random holes "
        f"(10 s to 2 h, {meta['outages']} of them explained by an outage row); build {meta['build_s']} s "
        f"({meta['rows'] / max(meta['build_s'], 1e-9):,.0f} rows/s, executemany, {BATCH:,}-row transactions)\n"
        f"- random cameras and times, warm cache, one thread; one day holds ~{n_rows:,} segment rows{spans_note}")
    block += "\n" + C.md_table(["query", "n", "p50 ms", "p95 ms", "p99 ms (target ≤ 5)", "max ms", "target"], rows)
    if bg_rows:
        block += ("\n\nBackground work on the same index (not a latency target; CPU of this process, where "
                  "SQLite does its work, plus any local PostgreSQL server processes):\n\n")
        block += C.md_table(["janitor work", "passes", "median wall s", "median CPU s",
                             "% of one core at one pass per 60 s"], bg_rows)
    block += f"\n\nGaps per one-day report (first 100): mean {sum(gaps) / max(1, len(gaps)):.2f}, max {max(gaps)}."
    if plans:
        block += "\n\nSQLite query plans: " + " | ".join(plans)
    engine.dispose()
    return C.emit(block, results, "index_bench.md")


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 cameras x 10 days")
    ap.add_argument("--cameras", type=int, default=None, help="default 100 (10 with --quick)")
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--queries", type=int, default=2000, help="random queries per question")
    ap.add_argument("--postgres", default=None, metavar="URL", help="run against this (empty) PostgreSQL database")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached SQLite database")
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--janitor-passes", type=int, default=2, help="timed janitor passes (0 = skip)")
    ap.add_argument("--results", default=None)
    a = ap.parse_args(argv)
    n_cams = a.cameras or (10 if a.quick else 100)
    if not (1 <= n_cams <= 1000 and 2 <= a.days <= 60 and 10 <= a.queries <= 100_000):
        raise SystemExit("--cameras 1..1000, --days 2..60, --queries 10..100000")
    return run(n_cams, a.days, a.queries, a.postgres, a.rebuild, a.seed, a.results, a.janitor_passes)


if __name__ == "__main__":
    main()
