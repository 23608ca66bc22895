#!/usr/bin/env python3
"""Secrets at rest (issue 19): what sealing costs where it is paid most — reading a
capital's whole camera registry (6,000 cameras, main and sub-stream addresses sealed), as
every recorder's and analytics node's role does when the registry changes and the console's
camera list does on every load — beside the floor measured in the same run: the same
registry read with the addresses in clear (the query and the mapping alone). Also the bare
cost of one seal and one open.

Usage::

    .venv/bin/python bench/secrets_bench.py            # 6,000 cameras
    .venv/bin/python bench/secrets_bench.py --quick    # 1,000 cameras
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cameras", type=int, default=None)
    args = ap.parse_args()
    n = args.cameras or (1000 if args.quick else 6000)
    from sqlalchemy import text

    from varta.cameras.model import Camera
    from varta.cameras.registry import CameraRegistry
    from varta.db.engine import open_database
    from varta.secrets.box import Keyring, new_key

    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min)")
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_database(f"sqlite:///{tmp}/varta.db", keys_dir=Path(tmp) / "keys")
        reg = CameraRegistry(engine)
        t0 = time.perf_counter()
        for i in range(n):
            reg.add(Camera(id=f"cam-{i:05d}", main_url=f"rtsp://viewer:Pa55-{i}@10.{i // 250}.{i % 250}.1/main",
                           sub_url=f"rtsp://viewer:Pa55-{i}@10.{i // 250}.{i % 250}.1/sub"))
        print(f"{n} cameras added (each sealed twice): {time.perf_counter() - t0:.1f} s")
        sealed = _timed(lambda: reg.list(), 7)
        # The floor: the same rows with the addresses in clear (what the read cost before sealing).
        ring = Keyring.of(new_key())
        with engine.begin() as conn:
            rows = conn.execute(text("SELECT id, main_url, sub_url FROM cameras")).all()
            from varta.secrets.vault import vault_for

            v = vault_for(engine)
            for cid, m, s in rows:
                conn.execute(text("UPDATE cameras SET main_url = :m, sub_url = :s WHERE id = :i"),
                             {"m": v.open(m, "cameras.url"), "s": v.open(s, "cameras.url"), "i": cid})
        clear = _timed(lambda: reg.list(), 7)
        one_seal = _timed(lambda: ring.seal("rtsp://viewer:Pa55-1@10.0.0.1/main", "cameras.url"), 2000)
        value = ring.seal("rtsp://viewer:Pa55-1@10.0.0.1/main", "cameras.url")
        one_open = _timed(lambda: ring.open(value, "cameras.url"), 2000)
        engine.dispose()
    med = statistics.median
    print(f"registry read, {n} cameras, addresses sealed: median {med(sealed) * 1e3:.0f} ms "
          f"(min {min(sealed) * 1e3:.0f})")
    print(f"floor, the same read in clear:              median {med(clear) * 1e3:.0f} ms (min {min(clear) * 1e3:.0f})")
    print(f"sealing's share: {med(sealed) / med(clear):.2f}× the floor, "
          f"+{(med(sealed) - med(clear)) * 1e6 / (2 * n):.1f} µs per address")
    print(f"one seal: {med(one_seal) * 1e6:.1f} µs, one open: {med(one_open) * 1e6:.1f} µs")
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
