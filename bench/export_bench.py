#!/usr/bin/env python3
"""Export speed: one camera, one contiguous hour of 1080p 4 Mbit/s archive → one MP4.

The hour is built without encoding an hour: the 60 s 1080p source loop (the same stream
the recorder benchmark serves) is cut into 10 s fragmented-MP4 segments by ffmpeg's
segment muxer with Varta's own flags (``FMP4_FLAGS``, ``-reset_timestamps 1``), and those
six files are copied 60 times into a fresh Varta home's ``recordings/<cam>/YYYY/MM/DD``
folders under the names the recorder would give them, with one index row each
(``ArchiveIndex.add_segment``; consecutive start/end, ``init_bytes`` from
``check_segment``). Then it times:

* ``varta.playback.export.export_camera`` over the full hour (what ``varta export`` and the
  API run: concat + stream copy + ``+faststart``, read-back probe, SHA-256), and its parts;
* the floor: plain ``ffmpeg -f concat -c copy`` of the same list (without and with
  ``-movflags +faststart``), and ``cat`` of the segment files to /dev/null (read speed).

Everything runs warm (files in the page cache): dropping the cache needs root and is not
attempted. Each timing is repeated (``--repeat``, default 3) and the median reported.

Usage::

    .venv/bin/python bench/export_bench.py            # one hour
    .venv/bin/python bench/export_bench.py --quick    # ten minutes, one repetition
    .venv/bin/python bench/export_bench.py --bucket   # and the same hour from an S3 bucket (issue 13)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from varta.recording.ffmpeg import FMP4_FLAGS, SEGMENT_NAME_PATTERN, find_ffmpeg  # noqa: E402

TARGET_X = 200.0  # export at least 200x real time
SEG_S = 10


def make_source_segments(ffmpeg: str) -> tuple[list[Path], list[tuple[float, float]]]:
    """Cut the 60 s source into 10 s fMP4 segments with Varta's muxer flags (cached)."""
    src = C.bench_stream()
    out = C.MEDIA / "export-segments"
    stamp = out / "params.json"
    params = {"src": src.name, "size": src.stat().st_size, "flags": FMP4_FLAGS, "segment_time": SEG_S}
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        listing = json.loads((out / "segments.json").read_text())
        return [out / n for n, _, _ in listing], [(a, b) for _, a, b in listing]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(src),
           "-map", "0:v:0", "-c", "copy", "-f", "segment", "-segment_time", str(SEG_S),
           "-segment_format", "mp4", "-segment_format_options", f"movflags={FMP4_FLAGS}",
           "-reset_timestamps", "1", "-segment_list", str(out / "list.csv"), "-segment_list_type", "csv",
           str(out / "seg%03d.mp4")]
    subprocess.run(cmd, check=True, timeout=300)
    listing = []
    for line in (out / "list.csv").read_text().splitlines():
        name, a, b = line.rsplit(",", 2)
        listing.append((name.strip('"'), float(a), float(b)))
    (out / "segments.json").write_text(json.dumps(listing))
    stamp.write_text(json.dumps(params))
    return [out / n for n, _, _ in listing], [(a, b) for _, a, b in listing]


def build_archive(home: Path, ffmpeg: str, minutes: int, camera_id: str = "bench-cam"):
    """A Varta home with a camera holding a contiguous archive of *minutes* minutes (call
    again with another ``camera_id`` for more cameras over the same hour)."""
    from varta.cameras.model import Camera
    from varta.cameras.registry import CameraRegistry
    from varta.db.engine import open_database
    from varta.recording.index import ArchiveIndex
    from varta.recording.mp4box import check_segment
    from varta.recording.probe import probe_stream_header

    files, spans = make_source_segments(ffmpeg)
    info = probe_stream_header(files[0])
    checks = [check_segment(f) for f in files]
    engine = open_database(f"sqlite:///{(home / 'varta.db').resolve()}")
    CameraRegistry(engine).add(Camera(id=camera_id, main_url="rtsp://127.0.0.1:8554/bench", name="export bench"))
    index = ArchiveIndex(engine)
    rec = home / "recordings" / camera_id
    # Two days ago, on the hour (UTC): a plain past hour.
    now = int(time.time())
    t0_us = (now - 2 * 86400) // 3600 * 3600 * 1_000_000
    t_us = t0_us
    run_id = secrets.token_hex(4)
    total = minutes * 60
    k, paths, nbytes = 0, [], 0
    while t_us < t0_us + total * 1_000_000:
        i = k % len(files)
        dur_us = int(round((spans[i][1] - spans[i][0]) * 1_000_000))
        start = datetime.fromtimestamp(t_us / 1e6, tz=timezone.utc)
        rel = start.strftime(SEGMENT_NAME_PATTERN.format(run=run_id))
        dest = rec / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[i], dest)
        index.add_segment(camera_id=camera_id, start_us=t_us, end_us=t_us + dur_us, path=rel,
                          bytes=checks[i].file_bytes, init_bytes=checks[i].init_bytes, codec=info.codec,
                          width=info.width, height=info.height, fps=info.fps, run_id=run_id, recorder="bench")
        paths.append(dest)
        nbytes += checks[i].file_bytes
        t_us += dur_us
        k += 1
    return engine, index, t0_us, t_us, paths, nbytes


def other_load(a0: dict[int, float], a1: dict[int, float], seconds: float) -> float:
    """% of one core used by other processes (alive at both ends, not this one) between two snapshots."""
    me = os.getpid()
    return 100.0 * sum(a1[p] - a0[p] for p in a1 if p in a0 and p != me) / max(seconds, 1e-9)


def timed(fn, repeat: int) -> tuple[float, list[float], object, float]:
    """(median s, all times, last result, other processes' load in % of a core over the runs)."""
    times, result = [], None
    a0, t0 = C.all_cpu(), time.perf_counter()
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    other = other_load(a0, C.all_cpu(), time.perf_counter() - t0)
    return C.median(times), times, result, other


def run(minutes: int, repeat: int, results: str | None, keep: bool, bucket: bool = False) -> str:
    from varta.playback.export import export_camera
    from varta.recording.probe import probe_segment

    ffmpeg = find_ffmpeg(None)
    work = C.OUT / "export-work"
    shutil.rmtree(work, ignore_errors=True)
    home = work / "home"
    home.mkdir(parents=True)
    t = time.perf_counter()
    engine, index, t1, t2, paths, nbytes = build_archive(home, ffmpeg, minutes)
    archive_s = (t2 - t1) / 1e6
    mb = nbytes / 1e6
    print(f"archive: {len(paths)} segments, {archive_s:.0f} s, {mb:.0f} MB "
          f"({nbytes * 8 / archive_s / 1e6:.2f} Mbit/s), built in {time.perf_counter() - t:.1f} s")
    out = work / "export.mp4"
    lst = work / "list.ffconcat"
    lst.write_text("ffconcat version 1.0\n" + "".join(f"file '{p.resolve()}'\n" for p in paths))

    def cat() -> None:
        subprocess.run(["cat", *map(str, paths)], stdout=subprocess.DEVNULL, check=True)

    def floor(faststart: bool):
        def go() -> None:
            cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
                   "-i", str(lst), "-map", "0:v:0", "-c", "copy", *(["-movflags", "+faststart"] if faststart else []),
                   "-f", "mp4", str(out)]
            subprocess.run(cmd, check=True)
        return go

    def varta_export():
        out.unlink(missing_ok=True)
        return export_camera(index, home / "recordings", ffmpeg, "bench-cam", t1, t2, out, timezone.utc)

    def sha() -> str:
        h = hashlib.sha256()
        with open(out, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()

    cat()  # warm the page cache: every figure below is a warm one
    rows = []
    measured = {}
    for label, fn in (("cat segment files > /dev/null (read speed)", cat),
                      ("floor: ffmpeg -f concat -c copy", floor(False)),
                      ("floor: ffmpeg -f concat -c copy -movflags +faststart", floor(True)),
                      ("Varta export_camera (whole call)", varta_export)):
        med, times, res, other = timed(fn, repeat)
        measured[label] = (med, times, res, other)
        print(f"{label}: median {med:.2f} s over {repeat} ({', '.join(f'{x:.2f}' for x in times)}) → "
              f"{mb / med:.0f} MB/s, ×{archive_s / med:.0f} real time (target ≥ ×{TARGET_X:.0f}); other load "
              f"{other:.0f}% of a core", flush=True)
    exported = measured["Varta export_camera (whole call)"][2]
    # Parts of Varta's export after ffmpeg: the read-back probe and the SHA-256 of the output.
    probe_med, _, info, _ = timed(lambda: probe_segment(out), repeat)
    sha_med, _, _, _ = timed(sha, repeat)
    out_mb = out.stat().st_size / 1e6
    print(f"  of which read-back probe (PyAV packet walk): {probe_med:.2f} s; SHA-256 of {out_mb:.0f} MB: "
          f"{sha_med:.2f} s")
    v_med = measured["Varta export_camera (whole call)"][0]
    f_med = measured["floor: ffmpeg -f concat -c copy"][0]
    for label, (med, times, _, other) in measured.items():
        verdict = "" if label.startswith("cat") else ("meets" if archive_s / med >= TARGET_X else "MISSES")
        rows.append([label, f"{med:.2f}", f"{min(times):.2f}–{max(times):.2f}", f"{mb / med:.0f}",
                     f"×{archive_s / med:.0f}", verdict, f"{other:.0f}"])
    rows.append(["  part: read-back probe of the output (PyAV)", f"{probe_med:.2f}", "", "", "", "", ""])
    rows.append(["  part: SHA-256 of the output (hashlib)", f"{sha_med:.2f}", "", f"{out_mb / sha_med:.0f}", "", "",
                 ""])
    block = C.header(
        f"Export: {archive_s / 60:.0f} min of one camera (1080p25, 4 Mbit/s, {len(paths)} x 10 s fMP4 segments, "
        f"{mb:.0f} MB) to one MP4",
        f"- warm page cache (no cache drop: needs root); median of {repeat} run(s); output on the same disk "
        f"(bench/out), not fsynced")
    block += "\n" + C.md_table(["what", "median s", "range s", "MB/s (input)", "× real time (target ≥ ×200)",
                                "target", "other load % of a core"], rows)
    block += (f"\n\nVarta / floor time: ×{v_med / f_med:.2f}. Exported file: {exported.duration_s:.1f} s, "
              f"{exported.frames} frames (expected {int(round(archive_s * C.STREAM['fps']))}), "
              f"{exported.bytes / 1e6:.0f} MB, {len(exported.gaps)} gap(s) reported.")
    if bucket:
        block += "\n\n" + bucket_part(engine, index, home, work, ffmpeg, t1, t2, paths, nbytes, archive_s, repeat)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    engine.dispose()
    return C.emit(block, results, "export_bench.md")


def bucket_part(engine, index, home: Path, work: Path, ffmpeg: str, t1: int, t2: int, paths: list[Path],
                nbytes: int, archive_s: float, repeat: int) -> str:
    """The same hour exported from an S3 bucket (moto over HTTP on 127.0.0.1), as a web node
    with no copy of it does, against plain boto3 downloads of the same objects."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import update

    sys.path.insert(0, str(C.ROOT / "tests"))
    from s3server import S3Server

    from varta.config import Settings
    from varta.db.schema import segments
    from varta.playback.export import export_camera
    from varta.storage import layout
    from varta.storage.files import NodeFiles, SegmentReader
    from varta.storage.objects import S3Config, S3Store

    mb = nbytes / 1e6
    rows = []
    with S3Server(start_timeout=60) as srv:
        srv.client().create_bucket(Bucket="bench-archive")
        store = S3Store(S3Config(bucket="bench-archive", endpoint_url=srv.endpoint_url, access_key=srv.access_key,
                                 secret_key=srv.secret_key, region=srv.region, addressing="path", prefix="city/"))
        t = time.perf_counter()
        segs = index.segments_between("bench-cam", t1, t2)
        keys = []
        for seg in segs:
            info = store.put_file(layout.segment_key(seg.camera_id, seg.path), home / "recordings" / seg.camera_id
                                  / seg.path)
            keys.append(info.key)
            with engine.begin() as conn:
                conn.execute(update(segments).where(segments.c.id == seg.id).values(stored=layout.S3,
                                                                                   sha256=info.sha256))
        print(f"bucket: {len(keys)} objects, {mb:.0f} MB shipped in {time.perf_counter() - t:.1f} s", flush=True)
        segs = index.segments_between("bench-cam", t1, t2)  # as indexed now: in the bucket only
        client = store.client
        dl = work / "download"

        def boto3_download(workers: int):
            def go():
                shutil.rmtree(dl, ignore_errors=True)
                dl.mkdir(parents=True)

                def one(i_key):
                    i, key = i_key
                    client.download_file("bench-archive", key, str(dl / f"{i:05d}.mp4"))
                if workers == 1:
                    for item in enumerate(keys):
                        one(item)
                else:
                    with ThreadPoolExecutor(workers) as pool:
                        list(pool.map(one, enumerate(keys)))
            return go

        web = Settings(home=work / "web-home")  # a web node: none of the hour on its disk
        files = NodeFiles(web, "web-node", None, store)
        out = work / "export-from-bucket.mp4"

        def varta_from_bucket():
            out.unlink(missing_ok=True)
            with files.reading(work / "scratch") as reader:
                return export_camera(index, reader, ffmpeg, "bench-cam", t1, t2, out, timezone.utc)

        def varta_read_only():
            with files.reading(work / "scratch") as reader:
                reader.prefetch(segs)
                for seg in segs:
                    reader.segment(seg)

        lst = work / "download.ffconcat"
        lst.write_text("ffconcat version 1.0\n" + "".join(f"file '{(dl / f'{i:05d}.mp4').resolve()}'\n"
                                                          for i in range(len(keys))))

        def download_and_concat():
            boto3_download(SegmentReader.PREFETCH)()
            subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe",
                            "0", "-i", str(lst), "-map", "0:v:0", "-c", "copy", "-movflags", "+faststart", "-f", "mp4",
                            str(work / "floor-from-bucket.mp4")], check=True)

        measured = {}
        for label, fn in (("floor: boto3 download_file, one object at a time", boto3_download(1)),
                          (f"floor: boto3 download_file, {SegmentReader.PREFETCH} at a time", boto3_download(
                              SegmentReader.PREFETCH)),
                          (f"Varta's reading alone: SegmentReader, {SegmentReader.PREFETCH} GETs in flight, each "
                           "checked against the index's SHA-256", varta_read_only),
                          ("floor: boto3 download (6 at a time) + ffmpeg concat +faststart", download_and_concat),
                          ("Varta export_camera from the bucket (GETs + SHA-256 check + concat)", varta_from_bucket)):
            med, times, res, other = timed(fn, repeat)
            measured[label] = (med, res)
            print(f"{label}: median {med:.2f} s ({', '.join(f'{x:.2f}' for x in times)}) → {mb / med:.0f} MB/s, "
                  f"×{archive_s / med:.0f} real time; other load {other:.0f}% of a core (the S3 server's included)",
                  flush=True)
            rows.append([label, f"{med:.2f}", f"{min(times):.2f}–{max(times):.2f}", f"{mb / med:.0f}",
                         f"×{archive_s / med:.0f}", f"{other:.0f}"])
        shutil.rmtree(dl, ignore_errors=True)
    v_med, exported = measured["Varta export_camera from the bucket (GETs + SHA-256 check + concat)"]
    read_med = next(m for k, (m, _) in measured.items() if k.startswith("Varta's reading"))
    dl_med = min(m for k, (m, _) in measured.items() if k.startswith("floor: boto3 download_file"))
    whole_floor = measured["floor: boto3 download (6 at a time) + ffmpeg concat +faststart"][0]
    rel, rel_whole = dl_med / read_med, whole_floor / v_med
    x = archive_s / v_med
    verdict = (f"×{x:.0f} real time (target ≥ ×{TARGET_X:.0f}: {'meets' if x >= TARGET_X else 'MISSES'}); "
               f"reading {rel:.2f}× the speed of the faster boto3 download (target ≥ 0.8×: "
               f"{'meets' if rel >= 0.8 else 'MISSES'}); the whole export {rel_whole:.2f}× the speed of "
               f"download + concat")
    print(f"export from the bucket: {verdict}", flush=True)
    return ("Export of the same hour from the archive bucket (moto S3 server over HTTP on 127.0.0.1, on the "
            "same 2 cores; a web node with no copy of its own):\n\n"
            + C.md_table(["what", "median s", "range s", "MB/s", "× real time", "other load % of a core"], rows)
            + f"\n\nFrom the bucket: {verdict}. Exported file: {exported.frames} frames, "
              f"{len(exported.gaps)} gap(s).")


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 minutes of archive, one repetition")
    ap.add_argument("--minutes", type=int, default=None, help="archive length (default 60)")
    ap.add_argument("--repeat", type=int, default=None, help="repetitions per timing (default 3)")
    ap.add_argument("--keep", action="store_true", help="keep bench/out/export-work")
    ap.add_argument("--bucket", action="store_true",
                    help="also export the hour from an S3 bucket (moto over HTTP) against boto3 downloads")
    ap.add_argument("--results", default=None)
    a = ap.parse_args(argv)
    minutes = a.minutes or (10 if a.quick else 60)
    repeat = a.repeat or (1 if a.quick else 3)
    if not 1 <= minutes <= 24 * 60 or not 1 <= repeat <= 20:
        raise SystemExit("--minutes 1..1440, --repeat 1..20")
    return run(minutes, repeat, a.results, a.keep, a.bucket)


if __name__ == "__main__":
    main()
