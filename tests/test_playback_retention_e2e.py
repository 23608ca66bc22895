"""End to end: HLS playback from a timestamp, export jobs over HTTP, retention with holds."""

from __future__ import annotations

import sqlite3
import time
import zoneinfo
from pathlib import Path

import av
import httpx
import pytest

from conftest import FPS, have_ffmpeg

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg/ffprobe not installed")]
TZ = zoneinfo.ZoneInfo("Europe/Kyiv")


def _segments(v, cam):
    with v.api() as c:
        return c.get(f"/api/cameras/{cam}/segments", params={"from": "now-1h", "to": "now+1m"}).json()


def _decode_playlist_start(client: httpx.Client, playlist: str, work: Path):
    """Play like an HLS client: fetch the first segment's init + media byte ranges, decode,
    and return (pts_seconds, counter) of the frame shown at EXT-X-START."""
    from varta.demo.media import read_frame_counter

    lines = playlist.splitlines()
    start = next(float(l.split("TIME-OFFSET=")[1].split(",")[0]) for l in lines if l.startswith("#EXT-X-START"))
    # Walk segments, collapsing EXTINF durations until the one holding the start offset.
    elapsed, i = 0.0, 0
    entries = []
    while i < len(lines):
        if lines[i].startswith("#EXT-X-MAP:"):
            mp = lines[i]
            dur = float(lines[i + 1].split(":")[1].rstrip(","))
            br = lines[i + 2].split(":")[1]
            url = lines[i + 3]
            entries.append((mp, dur, br, url))
            i += 4
        else:
            i += 1
    for mp, dur, br, url in entries:
        if elapsed + dur > start:
            break
        elapsed += dur
    init_len = int(mp.split('BYTERANGE="')[1].split("@")[0])
    length, offset = (int(x) for x in br.split("@"))
    init = client.get(url, headers={"Range": f"bytes=0-{init_len - 1}"})
    body = client.get(url, headers={"Range": f"bytes={offset}-{offset + length - 1}"})
    assert init.status_code == 206 and body.status_code == 206
    f = work / "played.mp4"
    f.write_bytes(init.content + body.content)
    want = start - elapsed
    shown = None
    with av.open(str(f)) as c:
        for frame in c.decode(video=0):
            if frame.time <= want + 1e-6:
                shown = (frame.time, read_frame_counter(frame.to_ndarray(format="gray")))
            else:
                break
    return want, shown


def test_hls_playback_starts_at_the_asked_time(varta, camsim, tmp_path):
    from varta.clock import format_time, parse_time

    v = varta()
    v.run("camera", "add", "mel-0010", "--url", camsim.url("gen1"))
    v.start()
    v.wait_for(lambda: len(_segments(v, "mel-0010")) >= 5, 60, "segments")
    segs = _segments(v, "mel-0010")
    seg = segs[2]
    t = parse_time(seg["start"], TZ) + 1_340_000  # 1.34 s into the third segment, between two frames
    asked = format_time(t, TZ)
    with v.api() as c:
        r = c.get("/api/cameras/mel-0010/playback.m3u8", params={"from": asked})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        assert "#EXT-X-ENDLIST" in r.text and "#EXT-X-PLAYLIST-TYPE:VOD" in r.text
        want, shown = _decode_playlist_start(c, r.text, tmp_path)
        # The segment that holds T, asked directly, agrees.
        at = c.get("/api/cameras/mel-0010/segment-at", params={"t": asked}).json()
        assert at["id"] == seg["id"] and at["offset_s"] == pytest.approx(1.34, abs=1e-3)
    assert shown is not None
    pts, counter = shown
    # The frame shown is the one at or just before T (no later, and less than a frame before).
    assert pts <= want + 1e-6 and want - pts < 1 / FPS + 1e-6
    # And it is the same picture a stream-copy export of T shows at T.
    out = tmp_path / "x.mp4"
    files = v.json("export", "--camera", "mel-0010", "--from", asked, "--to", format_time(t + 3_000_000, TZ),
                   "--out", str(out), "--json")
    start_of_file = parse_time(files[0]["start"], TZ)
    assert start_of_file <= t  # the export starts at the keyframe at or before T
    from varta.demo.media import read_frame_counter

    with av.open(str(out)) as cont:
        frames = [(fr.time, read_frame_counter(fr.to_ndarray(format="gray"))) for fr in cont.decode(video=0)]
    offset = (t - start_of_file) / 1e6
    at_t = [cnt for ts, cnt in frames if ts <= offset + 1e-6][-1]
    assert at_t == counter
    # A gap or the far past: a clear 404.
    with v.api() as c:
        r = c.get("/api/cameras/mel-0010/playback.m3u8", params={"from": "2020-01-01T00:00:00"})
        assert r.status_code == 404 and "no recording" in r.json()["detail"]
        assert c.get("/api/cameras/mel-0010/playback.m3u8", params={"from": "yesterday"}).status_code == 422


def test_export_job_over_http_with_progress_and_download(varta, camsim, tmp_path):
    v = varta()
    v.run("camera", "add", "mel-0011", "--url", camsim.url("gen2"))
    v.run("camera", "add", "mel-0012", "--url", camsim.url("gen3"))
    v.start()
    v.wait_for(lambda: len(_segments(v, "mel-0011")) >= 4 and len(_segments(v, "mel-0012")) >= 4, 60, "segments")
    segs = _segments(v, "mel-0011")
    with v.api() as c:
        r = c.post("/api/exports", json={"cameras": ["mel-0011", "mel-0012"], "from": segs[0]["start"],
                                         "to": segs[3]["end"]})
        assert r.status_code == 202, r.text
        job = r.json()
        seen = []
        for _ in range(120):
            job = c.get(f"/api/exports/{job['id']}").json()
            seen.append(job["progress"])
            if job["status"] in ("done", "failed"):
                break
            time.sleep(0.25)
        assert job["status"] == "done", job
        assert job["progress"] == 1.0
        assert sorted(f["name"] for f in job["files"]) == ["mel-0011.mp4", "mel-0012.mp4"]
        for f in job["files"]:
            dl = c.get(f"/api/exports/{job['id']}/files/{f['name']}")
            assert dl.status_code == 200
            import hashlib

            assert hashlib.sha256(dl.content).hexdigest() == f["sha256"]
            assert f["duration_s"] == pytest.approx(8.0, abs=1.1)
        # Bad requests get clear errors.
        assert c.post("/api/exports", json={"cameras": ["nope"], "from": "now-1m", "to": "now"}).status_code == 404
        r = c.post("/api/exports", json={"cameras": ["mel-0011"], "from": "now", "to": "now-1m"})
        assert r.status_code == 422
        r = c.post("/api/exports", json={"cameras": ["mel-0011"], "from": "2020-01-01T00:00", "to": "2020-01-01T01:00"})
        job = r.json()
        for _ in range(40):
            job = c.get(f"/api/exports/{job['id']}").json()
            if job["status"] == "failed":
                break
            time.sleep(0.25)
        assert job["status"] == "failed" and "no recording" in job["error"]


def test_retention_deletes_aged_footage_except_held(varta, camsim):
    v = varta()
    v.run("camera", "add", "mel-0020", "--url", camsim.url("gen1"), "--retention-days", "10")
    v.start()
    v.wait_for(lambda: len(_segments(v, "mel-0020")) >= 6, 60, "segments")
    v.stop()
    db = sqlite3.connect(v.home / "varta.db")
    rows = db.execute("select id, path, start_us, end_us from segments where camera_id='mel-0020' "
                      "order by start_us").fetchall()
    # Age every recorded segment by 11 days (past the 10-day retention) …
    age = 11 * 86_400 * 1_000_000
    db.execute("update segments set start_us = start_us - ?, end_us = end_us - ? where camera_id='mel-0020'",
               (age, age))
    # … and hold the interval of the third and fourth segments (A4.6).
    held = rows[2:4]
    db.execute("insert into holds (camera_id, start_us, end_us, reason, created_us) values (?,?,?,?,?)",
               ("mel-0020", held[0][2] - age + 100_000, held[-1][3] - age - 100_000, "test hold", 0))
    db.commit()
    res = v.run("retention")
    assert f"deleted {len(rows) - 2} expired segments" in res.stdout, res.stdout
    assert "kept 2 held" in res.stdout
    left = db.execute("select path from segments where camera_id='mel-0020'").fetchall()
    assert sorted(p for (p,) in left) == sorted(r[1] for r in held)
    cam_dir = v.home / "recordings" / "mel-0020"
    for r in rows:
        assert (cam_dir / r[1]).exists() == (r in held)
    # Releasing the hold (a destruction instruction) returns the footage to retention.
    db.execute("update holds set released_us = 1")
    db.commit()
    res = v.run("retention")
    assert "deleted 2 expired segments" in res.stdout
    assert not any((cam_dir / r[1]).exists() for r in held)
    db.close()


def test_retention_below_ten_days_is_refused(varta):
    v = varta()
    res = v.run("camera", "add", "mel-0030", "--url", "rtsp://127.0.0.1:9/x", "--retention-days", "9", check=False)
    assert res.returncode != 0
    assert "at least 10 days" in res.stderr and "A4.6" in res.stderr
    assert v.json("camera", "list", "--json") == []
    bad = v.home / "cams.yaml"
    bad.write_text("cameras:\n  - {id: mel-1, url: rtsp://127.0.0.1/a}\n  - {id: mel-2, url: rtsp://127.0.0.1/b, "
                   "retention_days: 7}\n")
    res = v.run("camera", "import", str(bad), check=False)
    assert res.returncode != 0 and "mel-2" in res.stderr and "at least 10 days" in res.stderr
    assert v.json("camera", "list", "--json") == []  # all or nothing
    v.start()
    with v.api() as c:
        r = c.post("/api/cameras", json={"id": "mel-0031", "url": "rtsp://127.0.0.1/x", "retention_days": 5})
        assert r.status_code == 400 and "at least 10 days" in r.json()["detail"]
        c.post("/api/cameras", json={"id": "mel-0032", "url": "rtsp://127.0.0.1/x"}).raise_for_status()
        r = c.patch("/api/cameras/mel-0032", json={"retention_days": 3})
        assert r.status_code == 400
        assert c.get("/api/cameras/mel-0032").json()["retention_days"] == 10
    # And the server-wide default refuses too.
    res = varta(default_retention_days=5).run("camera", "list", check=False)
    assert res.returncode != 0 and "at least 10 days" in res.stderr


def test_schedule_off_stops_recording_and_explains_the_gap(varta, camsim):
    v = varta()
    v.run("camera", "add", "mel-0040", "--url", camsim.url("gen1"), "--schedule", "off")
    v.start()
    st = v.wait_for(lambda: (s := v.status("mel-0040"))["state"] == "off" and s, 30, "off by schedule")
    assert st["reason"] == "schedule_off"
    time.sleep(3)
    assert _segments(v, "mel-0040") == []
    # Switch to continuous: recording starts without a restart.
    with v.api() as c:
        c.patch("/api/cameras/mel-0040", json={"schedule": "continuous"}).raise_for_status()
    v.wait_for(lambda: len(_segments(v, "mel-0040")) >= 2, 60, "recording by schedule")
