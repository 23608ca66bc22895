#!/usr/bin/env python3
"""Search across tracks (issue 16): latency of `TrackStore.search` over many cameras × days of
track records, beside the floor — a plain indexed scan of the same time window.

Target: p95 ≤ 500 ms for 100 cameras × 30 days on SQLite and PostgreSQL.

Synthetic records, as the analytics worker writes them: per camera and day ``--per-day``
tracks spread over the day (busier by day than by night), classes mostly person/car, random
headings, 0–2 colours, short paths, no thumbnails (they are not read by a search). Queries,
as investigators ask them: (a) one hour, class person, one heading, all cameras; (b) one
day, a colour, all cameras; (c) one hour, 5 cameras, any track. The floor runs, for each
query, ``SELECT id FROM track_records WHERE start_us >= ? AND start_us < ?`` over the same
window: what reading the window through the time index costs before any filter.

Usage::

    .venv/bin/python bench/search_bench.py                  # SQLite in bench/out/search, 100 × 30 × 300
    .venv/bin/python bench/search_bench.py --quick          # 20 cameras × 7 days
    .venv/bin/python bench/search_bench.py --postgres postgresql://u:p@127.0.0.1/varta_bench
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from sqlalchemy import insert, select, text  # noqa: E402

from varta.analytics.trackrecords import COLOURS, COMPASS  # noqa: E402
from varta.db.engine import open_database  # noqa: E402
from varta.db.schema import track_records  # noqa: E402
from varta.search.query import TrackQuery  # noqa: E402
from varta.search.store import TrackStore  # noqa: E402

OUT = BENCH / "out" / "search"
US, DAY = 1_000_000, 86_400 * 1_000_000
T0 = 1_764_806_400 * US  # 2025-12-04 00:00 UTC: the first day of the synthetic month


def fill(engine, cameras: int, days: int, per_day: int, seed: int) -> int:
    rng = random.Random(seed)
    rows, n = [], 0
    started = time.perf_counter()
    for d in range(days):
        for c in range(cameras):
            for _ in range(per_day):
                hour = rng.choices(range(24), weights=[1 if h < 6 or h > 22 else 4 for h in range(24)])[0]
                start = T0 + d * DAY + hour * 3600 * US + rng.randrange(3600 * US)
                dwell = rng.uniform(1, 60)
                colours = rng.sample(COLOURS, rng.choice((0, 1, 1, 2)))
                rows.append({"camera_id": f"cam-{c:04d}", "label": rng.choices(["person", "car", "bicycle", "truck"],
                                                                                 weights=[6, 3, 1, 0.5])[0],
                             "start_us": start, "end_us": start + int(dwell * US),
                             "path": [[0, 0.1, 0.5], [dwell, 0.9, 0.4]], "entry": "left", "exit": "right",
                             "heading": "right", "compass": rng.choice(COMPASS), "speed": 0.05, "dwell_s": dwell,
                             "colours": "," + ",".join(colours) + "," if colours else "", "score": 0.8,
                             "thumbnail": None, "worker": "bench"})
                if len(rows) >= 20_000:
                    with engine.begin() as conn:
                        conn.execute(insert(track_records), rows)
                    n += len(rows)
                    rows = []
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(track_records), rows)
        n += len(rows)
    print(f"filled {n:,} records in {time.perf_counter() - started:.0f} s", flush=True)
    return n


def queries(cameras: int, days: int, count: int, seed: int) -> list[tuple[str, TrackQuery, list[str]]]:
    rng = random.Random(seed + 1)
    all_cams = [f"cam-{c:04d}" for c in range(cameras)]
    out = []
    for i in range(count):
        day = T0 + rng.randrange(days) * DAY
        hour = day + rng.randrange(7, 21) * 3600 * US
        kind = i % 3
        if kind == 0:
            out.append(("hour, person, heading", TrackQuery(hour, hour + 3600 * US, classes=["person"],
                                                            headings=[rng.choice(COMPASS)]), all_cams))
        elif kind == 1:
            out.append(("day, colour", TrackQuery(day, day + DAY, colours=[rng.choice(COLOURS)]), all_cams))
        else:
            out.append(("hour, 5 cameras", TrackQuery(hour, hour + 3600 * US), rng.sample(all_cams, 5)))
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run(cameras: int, days: int, per_day: int, count: int, postgres: str | None, seed: int) -> str:
    if postgres:
        url = postgres
        engine = open_database(url)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM track_records"))
    else:
        shutil.rmtree(OUT, ignore_errors=True)
        OUT.mkdir(parents=True)
        url = f"sqlite:///{OUT / 'varta.db'}"
        engine = open_database(url)
    n = fill(engine, cameras, days, per_day, seed)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE track_records"))
    store = TrackStore(engine)
    qs = queries(cameras, days, count, seed)
    for _, q, cams in qs[:3]:  # warm the caches the way a running server has them
        store.search(q, cams)
    timings: dict[str, list[float]] = {}
    floor: dict[str, list[float]] = {}
    found: dict[str, list[int]] = {}
    for name, q, cams in qs:
        t = time.perf_counter()
        rows = store.search(q, cams)
        timings.setdefault(name, []).append(time.perf_counter() - t)
        found.setdefault(name, []).append(len(rows))
        t = time.perf_counter()
        with engine.connect() as conn:
            conn.execute(select(track_records.c.id).where(track_records.c.start_us >= q.start_us,
                                                          track_records.c.start_us < q.end_us)).all()
        floor.setdefault(name, []).append(time.perf_counter() - t)
    load = os.getloadavg()
    lines = [f"search over {n:,} track records ({cameras} cameras × {days} days × {per_day}/day), "
             f"{engine.dialect.name}, {count} queries; load average {load[0]:.2f} {load[1]:.2f}",
             "| query | Varta p50 / p95 ms | floor (indexed window scan) p50 / p95 ms | tracks found, median |",
             "|---|---|---|---|"]
    every = [x for v in timings.values() for x in v]
    for name in timings:
        v, f = timings[name], floor[name]
        lines.append(f"| {name} | {pct(v, 50) * 1000:.0f} / {pct(v, 95) * 1000:.0f} | "
                     f"{pct(f, 50) * 1000:.0f} / {pct(f, 95) * 1000:.0f} | {statistics.median(found[name]):.0f} |")
    lines.append(f"| all | {pct(every, 50) * 1000:.0f} / {pct(every, 95) * 1000:.0f} | "
                 f"{pct([x for v in floor.values() for x in v], 50) * 1000:.0f} / "
                 f"{pct([x for v in floor.values() for x in v], 95) * 1000:.0f} | |")
    report = "\n".join(lines)
    print(report)
    return report


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=100)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--per-day", type=int, default=300, help="tracks per camera and day")
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--quick", action="store_true", help="20 cameras × 7 days")
    ap.add_argument("--postgres", default=None, metavar="URL", help="an (upgraded) PostgreSQL database to fill")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--results", default=None, help="append the report to this Markdown file")
    a = ap.parse_args(argv)
    if a.quick:
        a.cameras, a.days = 20, 7
    report = run(a.cameras, a.days, a.per_day, a.queries, a.postgres, a.seed)
    if a.results:
        with open(a.results, "a", encoding="utf-8") as f:
            f.write(f"\n## search_bench\n{report}\n")
    return report


if __name__ == "__main__":
    main()
