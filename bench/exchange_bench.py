#!/usr/bin/env python3
"""Webhook delivery (issue 16): throughput and latency of the outbox dispatcher, beside the
floor — the same signed bodies POSTed in a bare loop with the same HTTP client.

A receiver on 127.0.0.1 (a threading HTTP server answering 204) records when each event
arrives. ``--events`` alarms are enqueued (one transaction each, as the analytics worker
writes them) for ``--subscribers`` subscriptions, then the dispatcher sends them; latency is
from the enqueue's commit to the receipt. SQLite in bench/out/exchange.

Usage::

    .venv/bin/python bench/exchange_bench.py                 # 2,000 events × 1 and × 10 subscribers
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import httpx  # noqa: E402

from varta.db.engine import open_database  # noqa: E402
from varta.exchange.dispatcher import Dispatcher  # noqa: E402
from varta.exchange.store import Exchange  # noqa: E402

OUT = BENCH / "out" / "exchange"


class Receiver:
    def __init__(self):
        self.arrived: dict[str, float] = {}
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.arrived[self.headers.get("X-Varta-Event-Id", "") + "/" + self.path] = time.perf_counter()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def run(events: int, subscribers: int) -> str:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    engine = open_database(f"sqlite:///{OUT / 'varta.db'}")
    rx = Receiver()
    ex = Exchange(engine, lambda: b"k" * 32, None)
    for i in range(subscribers):
        ex.subscribe(f"unit{i}", "alarms", f"http://127.0.0.1:{rx.port}/s{i}", {}, "bench")
    payload = {"alarm": {"camera_id": "mel-0001", "group": "centre", "rule": "gate", "label": "person",
                         "severity": "alarm"}, "picture_jpeg_base64": "A" * 40_000}  # a 30 KB picture
    enq: dict[str, float] = {}
    for i in range(events):
        with engine.begin() as conn:
            ex.enqueue(conn, None, "alarms", "alarm.opened", {**payload, "id": f"alarm-{i}"})
        enq[f"alarm-{i}"] = time.perf_counter()
    d = Dispatcher(ex, lambda sub, p: None, budget_s=3600)
    t0 = time.perf_counter()
    sent = d.tick()
    span = time.perf_counter() - t0
    lat = [rx.arrived[k] - enq[k.split("/")[0]] for k in rx.arrived]
    # The floor: the same bodies, one client, a bare loop.
    body = json.dumps({**payload, "id": "x"}).encode()
    t1 = time.perf_counter()
    with httpx.Client() as c:
        for i in range(events * subscribers):
            c.post(f"http://127.0.0.1:{rx.port}/floor", content=body, headers={"X-Varta-Event-Id": f"f{i}"})
    floor = time.perf_counter() - t1
    load = os.getloadavg()
    report = (f"{events} alarms × {subscribers} subscribers (30 KB picture each), SQLite; load {load[0]:.2f}: "
              f"delivered {sent} in {span:.1f} s = **{sent / span:.0f}/s** (floor, bare POST loop: "
              f"{events * subscribers / floor:.0f}/s); enqueue→receipt p50 {statistics.median(lat):.2f} s "
              f"(all enqueued first, so this is the backlog drained, not the idle latency)")
    print(report)
    # Idle latency: one event at a time, the dispatcher ticking every 0.1 s as the duty does each tick.
    singles = []
    for i in range(20):
        with engine.begin() as conn:
            ex.enqueue(conn, None, "alarms", "alarm.opened", {**payload, "id": f"one-{i}"})
        t = time.perf_counter()
        while not any(k.startswith(f"one-{i}/") for k in rx.arrived):
            d.tick()
            time.sleep(0.001)
        singles.append(min(v for k, v in rx.arrived.items() if k.startswith(f"one-{i}/")) - t)
    idle = f"one alarm at a time, enqueue→first receipt: p50 {statistics.median(singles) * 1000:.0f} ms, " \
           f"max {max(singles) * 1000:.0f} ms (+ up to one cluster tick, 1 s, before the duty looks)"
    print(idle)
    return report + "\n" + idle


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--quick", action="store_true", help="300 events")
    ap.add_argument("--results", default=None, help="append the report to this Markdown file")
    a = ap.parse_args(argv)
    report = "\n".join(run(300 if a.quick else a.events, s) for s in (1, 10))
    if a.results:
        with open(a.results, "a", encoding="utf-8") as f:
            f.write(f"\n## exchange_bench\n{report}\n")
    return report


if __name__ == "__main__":
    main()
