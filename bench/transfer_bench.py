#!/usr/bin/env python3
"""Evidence transfer throughput: ``upload_to_s3`` and ``copy_to_folder`` vs their floors.

One random file (``--size-mb``, default 1024; incompressible, like a ZIP of video) is sent

* to a local moto S3 server over loopback (``tests/s3server.py``), by
  - **Varta**: ``varta.evidence.transfer.upload_to_s3`` with its defaults (16 MiB parts,
    8 in flight, Content-MD5 per part, SHA-256 pre-pass, SSE, HEAD check, presigned link),
    and again with the floor's part shape (8 MiB parts, 10 in flight);
  - **floor**: ``boto3``'s ``upload_file`` with the default ``TransferConfig`` (8 MiB
    parts, 10 threads) — what ``aws s3 cp`` does;
* to a folder on the same disk, by
  - **Varta**: ``copy_to_folder`` (copy + hash, fsync, SHA-256 re-read from disk, rename);
  - **floors**: plain ``cp``, and ``cp`` followed by ``sync FILE`` (the same durability).

The moto server is Python and stores objects in memory/temp files: it, not the network,
limits the S3 figures, for Varta and the floor alike — compare the two, not with a real
store. The source file stays in the page cache (dropping it needs root). Each figure is
the median of ``--repeat`` runs (default 1). CPU seconds are those of this process (the
client) and of the moto server over the run. Nothing asserts; it prints and appends a
Markdown block to ``bench/out/transfer_bench.md``.

Usage::

    .venv/bin/python bench/transfer_bench.py --size-mb 1024
    .venv/bin/python bench/transfer_bench.py --size-mb 256 --repeat 3
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

sys.path.insert(0, str(C.ROOT / "tests"))
from s3server import S3Server  # noqa: E402

from varta.evidence.transfer import (FolderTarget, S3Target, check_target,  # noqa: E402
                                     copy_to_folder, upload_to_s3)

MiB = 1024 * 1024


def make_file(path: Path, size_mb: int) -> Path:
    """Random (incompressible) bytes, made once per size and reused."""
    if path.exists() and path.stat().st_size == size_mb * MiB:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        for _ in range(size_mb):
            fh.write(os.urandom(MiB))
    os.replace(tmp, path)
    return path


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Run:
    """Wall time and CPU (client, server) of one timed block."""

    def __init__(self, server_pid: int | None = None):
        self.pid = server_pid

    def __enter__(self) -> "Run":
        self.c0, self.s0 = self_cpu(), C.cpu_seconds(self.pid) if self.pid else None
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.t0
        self.client = self_cpu() - self.c0
        self.server = (C.cpu_seconds(self.pid) - self.s0) if self.pid and self.s0 is not None else None


def timed(n: int, fn) -> list[Run]:
    return [fn() for _ in range(n)]


def summary(name: str, runs: list[Run], size: int, floor_mbs: float | None) -> list[object]:
    wall = C.median([r.wall for r in runs])
    mbs = size / MiB / wall
    client = C.median([r.client for r in runs])
    server = C.median([r.server for r in runs]) if runs[0].server is not None else None
    vs = f"{mbs / floor_mbs:.2f}x" if floor_mbs else "(floor)"
    return [name, f"{wall:.1f}", f"{mbs:.0f}", vs, f"{client:.1f}",
            f"{server:.1f}" if server is not None else "-"]


def bench_s3(path: Path, repeat: int, part_mb: int, workers: int) -> tuple[list[list[object]], str]:
    size = path.stat().st_size
    # moto spools an object above this size to a temporary file; keep parts of either
    # shape in memory so the part size does not decide who pays for disk writes.
    os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(128 * MiB))
    with S3Server(start_timeout=60) as srv:
        pid = srv.proc.pid
        target = S3Target(endpoint_url=srv.endpoint_url, bucket="varta-bench", region=srv.region,
                          access_key=srv.access_key, secret_key=srv.secret_key,
                          part_size_mb=part_mb, workers=workers)
        check_target(target)
        raw = srv.client()

        def floor() -> Run:
            with Run(pid) as r:
                raw.upload_file(str(path), target.bucket, "floor.bin")
            raw.delete_object(Bucket=target.bucket, Key="floor.bin")
            return r

        def varta(t: S3Target):
            def run() -> Run:
                with Run(pid) as r:
                    res = upload_to_s3(path, "varta.bin", t)
                assert res.bytes == size and res.url
                raw.delete_object(Bucket=t.bucket, Key="varta/varta.bin")
                return r
            return run

        # The floor's part shape too: tells the cost of Varta's code from that of the shape.
        same_shape = dataclasses.replace(target, part_size_mb=8, workers=10)
        floor_runs = timed(repeat, floor)
        varta_runs = timed(repeat, varta(target))
        shape_runs = timed(repeat, varta(same_shape))
    floor_mbs = size / MiB / C.median([r.wall for r in floor_runs])
    rows = [summary("S3 floor: boto3 upload_file (8 MiB parts, 10 threads)", floor_runs, size, None),
            summary(f"S3 Varta: upload_to_s3 ({part_mb} MiB parts, {workers} workers)", varta_runs,
                    size, floor_mbs),
            summary("S3 Varta: upload_to_s3 (8 MiB parts, 10 workers)", shape_runs, size, floor_mbs)]
    return rows, f"moto server pid {pid}"


def bench_folder(path: Path, repeat: int) -> list[list[object]]:
    size = path.stat().st_size
    work = C.OUT / "transfer" / "folder"

    def fresh() -> Path:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        return work

    def cp() -> Run:
        dest = fresh()
        with Run() as r:
            subprocess.run(["cp", str(path), str(dest)], check=True)
        return r

    def cp_sync() -> Run:
        dest = fresh()
        with Run() as r:
            subprocess.run(["cp", str(path), str(dest)], check=True)
            subprocess.run(["sync", str(dest / path.name)], check=True)
        return r

    def varta() -> Run:
        dest = fresh()
        with Run() as r:
            res = copy_to_folder(path, FolderTarget(dest))
        assert res.bytes == size
        return r

    cp_runs, sync_runs, varta_runs = timed(repeat, cp), timed(repeat, cp_sync), timed(repeat, varta)
    shutil.rmtree(work, ignore_errors=True)
    cp_mbs = size / MiB / C.median([r.wall for r in cp_runs])
    sync_mbs = size / MiB / C.median([r.wall for r in sync_runs])
    return [summary("folder floor: cp", cp_runs, size, None),
            summary("folder floor: cp + sync FILE", sync_runs, size, cp_mbs),
            summary("folder Varta: copy_to_folder (fsync + verify from disk)", varta_runs, size,
                    sync_mbs)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="file size in MiB (default 1024)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per figure; the median is shown")
    ap.add_argument("--part-mb", type=int, default=16, help="Varta's part size (default 16)")
    ap.add_argument("--workers", type=int, default=8, help="Varta's parts in flight (default 8)")
    ap.add_argument("--skip-s3", action="store_true")
    ap.add_argument("--skip-folder", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the source file for the next run")
    ap.add_argument("--results", help="append the Markdown block here")
    args = ap.parse_args()

    src = make_file(C.OUT / "transfer" / f"package-{args.size_mb}MiB.zip", args.size_mb)
    print(f"source: {src} ({args.size_mb} MiB)", flush=True)
    rows: list[list[object]] = []
    note = ""
    try:
        if not args.skip_s3:
            s3_rows, note = bench_s3(src, args.repeat, args.part_mb, args.workers)
            rows += s3_rows
        if not args.skip_folder:
            rows += bench_folder(src, args.repeat)
    finally:
        if not args.keep:
            src.unlink(missing_ok=True)
    import boto3
    import moto

    extra = (f"- file: {args.size_mb} MiB random, page-cached; repeat {args.repeat} (median); "
             f"boto3 {boto3.__version__}, moto {moto.__version__} ({note or 'no S3 run'}); "
             "the 'vs floor' of copy_to_folder is against cp + sync")
    table = C.md_table(["what", "wall s", "MiB/s", "vs floor", "client CPU s", "server CPU s"], rows)
    C.emit(C.header("Evidence transfer throughput", extra) + "\n" + table, args.results,
           "transfer_bench.md")


if __name__ == "__main__":
    main()
