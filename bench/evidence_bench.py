#!/usr/bin/env python3
"""Evidence package build + upload for a one-hour, two-camera request (issue 6).

Two cameras each hold a contiguous hour of 1080p25 4 Mbit/s archive (10 s fMP4 segments,
built like ``export_bench.py`` builds its hour). Then, as ``varta request prepare`` and
``varta request transfer`` do, it times:

* **package**: ``build_package`` (stream-copy export of both hours, SHA-256 of every source
  segment and every output, signed manifest, fsync) + ``zip_package`` + SHA-256 of the ZIP;
* **upload**: ``upload_to_s3`` of the ZIP to a local moto S3 server over loopback
  (multipart, SSE, HEAD check, presigned link);

and, in the same run, the floors they are bound by:

* disk: ``cp`` of the same source bytes (read + write on this disk), and ``cat`` (read);
* export: plain ``ffmpeg -f concat -c copy`` of both hours;
* upload: ``boto3``'s ``upload_file`` (what ``aws s3 cp`` does) of the same ZIP.

Target: ≥ 100 MB/s end to end on loopback (package bytes / (build + upload) seconds).
Warm page cache (no cache drop: needs root). Nothing asserts; it prints and appends a
Markdown block to ``bench/out/evidence_bench.md`` (or ``--results FILE``).

Usage::

    .venv/bin/python bench/evidence_bench.py            # one hour, two cameras
    .venv/bin/python bench/evidence_bench.py --quick    # ten minutes
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from export_bench import build_archive  # noqa: E402

sys.path.insert(0, str(C.ROOT / "tests"))
from s3server import ACCESS_KEY, SECRET_KEY, S3Server  # noqa: E402

from varta.evidence.package import PackageItem, build_package, zip_package  # noqa: E402
from varta.evidence.signing import InstanceKey  # noqa: E402
from varta.evidence.transfer import S3Target, check_target, upload_to_s3  # noqa: E402
from varta.playback.export import sha256_file  # noqa: E402
from varta.recording.ffmpeg import find_ffmpeg  # noqa: E402

TARGET_MB_S = 100.0
CAMERAS = ("bench-a", "bench-b")


def timed(fn):
    t = time.perf_counter()
    res = fn()
    return time.perf_counter() - t, res


def run(minutes: int, results: str | None, keep: bool) -> str:
    ffmpeg = find_ffmpeg(None)
    tz = ZoneInfo("Europe/Kyiv")
    work = C.OUT / "evidence-work"
    shutil.rmtree(work, ignore_errors=True)
    home = work / "home"
    home.mkdir(parents=True)
    paths, nbytes = [], 0
    for cam in CAMERAS:
        engine, index, t1, t2, p, n = build_archive(home, ffmpeg, minutes, cam)
        paths += p
        nbytes += n
    mb = nbytes / 1e6
    print(f"archive: {len(CAMERAS)} cameras × {minutes} min, {len(paths)} segments, {mb:.0f} MB", flush=True)
    subprocess.run(["cat", *map(str, paths)], stdout=subprocess.DEVNULL, check=True)  # warm

    rows = []

    def row(label, seconds, megabytes, note=""):
        rows.append([label, f"{seconds:.2f}", f"{megabytes / seconds:.0f}", note])
        print(f"{label}: {seconds:.2f} s, {megabytes / seconds:.0f} MB/s {note}", flush=True)

    # Floors: the disk, and ffmpeg's own stream copy.
    cat_s, _ = timed(lambda: subprocess.run(["cat", *map(str, paths)], stdout=subprocess.DEVNULL, check=True))
    row("floor: cat of the source segments (read)", cat_s, mb)
    copy_dir = work / "cp"
    copy_dir.mkdir()
    # Segment names carry each camera's run id, so the two hours never collide in one folder.
    cp_s, _ = timed(lambda: subprocess.run(["cp", *map(str, paths), str(copy_dir)], check=True))
    row("floor: cp of the source segments (read + write)", cp_s, mb)
    shutil.rmtree(copy_dir)
    for cam in CAMERAS:
        (work / f"{cam}.ffconcat").write_text("ffconcat version 1.0\n" + "".join(
            f"file '{p.resolve()}'\n" for p in paths if f"/{cam}/" in str(p)))

    def ffmpeg_floor():
        for cam in CAMERAS:
            subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe",
                            "0", "-i", str(work / f"{cam}.ffconcat"), "-map", "0:v:0", "-c", "copy",
                            "-movflags", "+faststart", "-f", "mp4", str(work / f"{cam}.mp4")], check=True)
    ff_s, _ = timed(ffmpeg_floor)
    row("floor: ffmpeg -f concat -c copy +faststart, both cameras", ff_s, mb)
    for cam in CAMERAS:
        (work / f"{cam}.mp4").unlink()

    # Varta: the package.
    key = InstanceKey.load_or_create(home / "keys")
    items = [PackageItem(cam, t1, t2, camera_name=cam) for cam in CAMERAS]
    out_dir = work / "packages"

    def package():
        built = build_package(index=index, segments_from=home / "recordings", ffmpeg=ffmpeg, out_dir=out_dir,
                              name="REQ-BENCH-0001", items=items, request={"number": "REQ-BENCH-0001"},
                              exported_by={"login": "bench", "full_name": "bench", "role": "department",
                                           "source": "127.0.0.1"},
                              instance={"name": "bench", "id": key.fingerprint()[:16], "version": "bench"},
                              key=key, tz=tz)
        z = zip_package(built.path)
        shutil.rmtree(built.path)
        return z, sha256_file(z)
    build_s, (zpath, zsha) = timed(package)
    zmb = zpath.stat().st_size / 1e6
    row("Varta: build_package + zip + SHA-256 (prepare)", build_s, mb, f"→ ZIP {zmb:.0f} MB")

    # Varta: the upload, and boto3's upload_file as the floor, to the same moto server. moto
    # spools a part above its buffer size to a temporary file: keep both part shapes (boto3's
    # 8 MiB, Varta's 16 MiB) in memory, so that the part size does not decide who pays disk writes.
    os.environ["MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"] = str(128 << 20)
    with S3Server() as s3:
        target = S3Target(endpoint_url=s3.endpoint_url, bucket="bench-evidence", access_key=ACCESS_KEY,
                          secret_key=SECRET_KEY)
        check_target(target)
        up_s, res = timed(lambda: upload_to_s3(zpath, "REQ-BENCH-0001/package.zip", target, sha256=zsha))
        row("Varta: upload_to_s3 (transfer)", up_s, zmb, f"SSE {res.sse}")
        client = s3.client(access_key=ACCESS_KEY, secret_key=SECRET_KEY)
        floor_s, _ = timed(lambda: client.upload_file(str(zpath), "bench-evidence", "floor/package.zip"))
        row("floor: boto3 upload_file (aws s3 cp)", floor_s, zmb)
    total = build_s + up_s
    verdict = "meets" if zmb / total >= TARGET_MB_S else "MISSES"
    rows.append(["**Varta end to end: prepare + transfer**", f"{total:.2f}", f"{zmb / total:.0f}",
                 f"target ≥ {TARGET_MB_S:.0f} MB/s: {verdict}"])
    print(f"end to end: {total:.2f} s → {zmb / total:.0f} MB/s (target ≥ {TARGET_MB_S:.0f}): {verdict}")
    block = C.header(f"Evidence package + upload: {len(CAMERAS)} cameras × {minutes} min (1080p25 4 Mbit/s), "
                     f"{mb:.0f} MB of archive",
                     "- warm page cache; package and ZIP on the same disk; moto S3 server on loopback")
    block += "\n" + C.md_table(["what", "s", "MB/s", "note"], rows)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    engine.dispose()
    return C.emit(block, results, "evidence_bench.md")


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 minutes per camera")
    ap.add_argument("--minutes", type=int, default=None, help="archive length per camera (default 60)")
    ap.add_argument("--keep", action="store_true", help="keep bench/out/evidence-work")
    ap.add_argument("--results", default=None)
    a = ap.parse_args(argv)
    minutes = a.minutes or (10 if a.quick else 60)
    if not 1 <= minutes <= 24 * 60:
        raise SystemExit("--minutes 1..1440")
    return run(minutes, a.results, a.keep)


if __name__ == "__main__":
    main()
