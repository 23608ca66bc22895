"""End to end: real RTSP cameras → `varta serve` → indexed archive → find, play, export.

Each test runs Varta as its own process against GStreamer's RTSP server on 127.0.0.1,
with 2-second segments so that tens of seconds of recording give many segments.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import av
import pytest

from conftest import FPS, GOP, have_ffmpeg

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg/ffprobe not installed")]


def _segments(v, cam: str, since: str = "now-1h") -> list[dict]:
    with v.api() as c:
        return c.get(f"/api/cameras/{cam}/segments", params={"from": since, "to": "now+1m"}).json()


def _recordings(v, cam: str, since: str = "now-1h") -> dict:
    return v.json("recordings", "--camera", cam, "--from", since, "--to", "now", "--json")


def _ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,width,height,nb_read_frames,duration:format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    st = data["streams"][0]
    return {"codec": st["codec_name"], "width": st["width"], "height": st["height"],
            "frames": int(st["nb_read_frames"]), "duration": float(data["format"]["duration"])}


def _counters(path: Path, n: int | None = None) -> list[int]:
    from varta.demo.media import read_frame_counter

    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            out.append(read_frame_counter(frame.to_ndarray(format="gray")))
            if n and len(out) >= n:
                break
    return out


@pytest.mark.parametrize("backend", ["pyav", "ffmpeg"])
def test_records_several_cameras_losslessly_and_exports(varta, camsim, tmp_path, backend):
    v = varta(recorder_backend=backend)
    for name in ("gen1", "gen2", "gen3"):
        v.run("camera", "add", f"mel-{name}", "--url", camsim.url(name), "--kind", "street", "--name", name)
    v.start()
    for name in ("gen1", "gen2", "gen3"):
        v.wait_for(lambda: len(_segments(v, f"mel-{name}")) >= 8, 60, f"8 segments of mel-{name}")

    listed = {c["id"]: c for c in v.json("camera", "list", "--json")}
    assert {listed[f"mel-gen{i}"]["state"] for i in (1, 2, 3)} == {"recording"}

    segs = _segments(v, "mel-gen1")
    # Segments are cut on keyframes (every second), so each is a whole number of GOPs,
    # browser-playable H.264 with the camera's own size: no transcoding.
    for s in segs:
        assert s["codec"] == "h264" and (s["width"], s["height"]) == (640, 360)
        assert s["duration_s"] == pytest.approx(round(s["duration_s"]), abs=0.05)
    # Consecutive segments of one run touch exactly: no hole between them.
    for a, b in zip(segs, segs[1:]):
        assert a["end"] == b["start"]
    rep = _recordings(v, "mel-gen1", "now-2m")
    assert len(rep["ranges"]) == 1
    first, last = segs[0]["start"], segs[-1]["end"]

    # Every frame kept: the burned-in counter advances by exactly one across the whole
    # export (modulo the 20 s loop of the source), and the frame count matches the length.
    out = tmp_path / "gen1.mp4"
    res = v.run("export", "--camera", "mel-gen1", "--from", first, "--to", last, "--out", str(out))
    assert str(out) in res.stdout and "sha256" in res.stdout
    probe = _ffprobe(out)
    expected = sum(s["duration_s"] for s in segs)
    assert probe["codec"] == "h264"
    assert abs(probe["duration"] - expected) <= GOP / FPS
    assert abs(probe["frames"] - expected * FPS) <= GOP
    counters = _counters(out)
    loop = 20 * FPS
    steps = [(b - a) % loop for a, b in zip(counters, counters[1:])]
    assert steps.count(1) == len(steps), f"frames lost or repeated: {sorted(set(steps))}"
    # The reported SHA-256 is the file's.
    import hashlib

    assert hashlib.sha256(out.read_bytes()).hexdigest() in res.stdout

    # Several cameras: a folder with one MP4 per camera.
    folder = tmp_path / "multi"
    files = json.loads(v.run("export", "--camera", "mel-gen2", "--camera", "mel-gen3", "--from", segs[2]["start"],
                             "--to", segs[5]["end"], "--out", str(folder), "--json").stdout)
    assert sorted(Path(f["path"]).name for f in files) == ["mel-gen2.mp4", "mel-gen3.mp4"]
    for f in files:
        assert _ffprobe(Path(f["path"]))["frames"] > 0
        assert len(f["sha256"]) == 64


def test_index_times_agree_with_the_picture(varta, camsim):
    """A segment's indexed start time places its first frame correctly within the run."""
    v = varta()
    v.run("camera", "add", "mel-0001", "--url", camsim.url("gen1"))
    v.start()
    v.wait_for(lambda: len(_segments(v, "mel-0001")) >= 6, 60, "6 segments")
    segs = _segments(v, "mel-0001")
    import zoneinfo

    from varta.clock import parse_time

    tz = zoneinfo.ZoneInfo("Europe/Kyiv")
    firsts = []
    for s in segs[:6]:
        with v.api() as c:
            data = c.get(s["url"]).content
        f = v.home / f"seg{s['id']}.mp4"
        f.write_bytes(data)
        firsts.append((parse_time(s["start"], tz), _counters(f, 1)[0]))
    loop = 20 * FPS
    t0, c0 = firsts[0]
    for t, cnt in firsts[1:]:
        expected = (c0 + round((t - t0) / 1e6 * FPS)) % loop
        # ±1 frame: the simulator's looping source steps 60 ms instead of 40 ms at each wrap.
        off = min((cnt - expected) % loop, (expected - cnt) % loop)
        assert off <= 1, f"segment start time disagrees with the frames recorded ({cnt} vs {expected})"


@pytest.mark.parametrize("backend", ["pyav", "ffmpeg"])
def test_camera_outage_is_a_gap_with_reason_and_recording_resumes(varta, camsim, backend):
    v = varta(recorder_backend=backend)
    v.run("camera", "add", "mel-0002", "--url", camsim.url("gen2"))
    v.start()
    v.wait_for(lambda: len(_segments(v, "mel-0002")) >= 3, 60, "first segments")
    camsim.stop()
    v.wait_for(lambda: v.status("mel-0002")["state"] in ("reconnecting", "failed"), 30, "outage noticed")
    st = v.status("mel-0002")
    assert st["reason"] in ("stream_ended", "refused", "timeout"), st
    assert st["detail"]
    time.sleep(4)
    camsim.start()
    before = len(_segments(v, "mel-0002"))
    v.wait_for(lambda: len(_segments(v, "mel-0002")) >= before + 3, 60, "recording resumed")
    assert v.status("mel-0002")["state"] == "recording"
    rep = _recordings(v, "mel-0002")
    assert len(rep["ranges"]) == 2, rep
    outage = [g for g in rep["gaps"] if g["start"] == rep["ranges"][0]["end"]]
    assert outage and outage[0]["end"] == rep["ranges"][1]["start"]
    assert outage[0]["reason"] in ("stream_ended", "refused", "timeout")
    from varta.clock import parse_time
    import zoneinfo

    tz = zoneinfo.ZoneInfo("Europe/Kyiv")
    length = (parse_time(outage[0]["end"], tz) - parse_time(outage[0]["start"], tz)) / 1e6
    assert 3 <= length <= 30


def _workers_of(home) -> list[int]:
    """Live ``varta analytics run`` processes whose VARTA_HOME is ``home``."""
    import os

    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            env = open(f"/proc/{pid}/environ", "rb").read()
        except OSError:
            continue
        if b"analytics\0run" in cmd and f"VARTA_HOME={home}\0".encode() in env:
            found.append(int(pid))
    return found


@pytest.mark.parametrize("backend", ["pyav", "ffmpeg"])
def test_kill9_then_restart_reconciles_without_losing_a_segment(varta, camsim, backend):
    v = varta(recorder_backend=backend)
    v.run("camera", "add", "mel-0003", "--url", camsim.url("gen3"))
    v.start()
    v.wait_for(lambda: len(_segments(v, "mel-0003")) >= 4, 60, "segments before the crash")
    time.sleep(1.0)  # be mid-segment
    v.kill9()
    time.sleep(2.0)  # ffmpeg is told (PR_SET_PDEATHSIG) and closes its last segment
    # The analytics worker is told too: no orphan goes on writing for a dead server.
    v.wait_for(lambda: not _workers_of(v.home), 20, "the analytics worker to end with its parent")
    cam_dir = v.home / "recordings" / "mel-0003"
    on_disk = {str(p.relative_to(cam_dir)) for p in cam_dir.rglob("*.mp4")}
    v.start()
    v.wait_for(lambda: len(_segments(v, "mel-0003", "now-1h")) >= len(on_disk) + 2, 60, "recording after restart")
    indexed = set()
    import sqlite3

    with sqlite3.connect(v.home / "varta.db") as db:
        indexed = {r[0] for r in db.execute("select path from segments where camera_id='mel-0003'")}
        statuses = dict(db.execute("select path, status from segments where camera_id='mel-0003'").fetchall())
    # A file killed before its first fragment reached the disk holds no video; it is set
    # aside in quarantine (with an alarm). Every file that holds video is indexed.
    from varta.recording.mp4box import check_segment

    quarantine = v.home / "quarantine" / "mel-0003"
    set_aside = {str(p.relative_to(quarantine)) for p in quarantine.rglob("*.mp4")} if quarantine.exists() else set()
    for rel in set_aside:
        assert check_segment(quarantine / rel).fragments == 0, f"{rel} held video but was set aside"
    missing = on_disk - indexed - set_aside
    assert not missing, f"files on disk not in the index after restart: {missing}"
    assert all(statuses[p] in ("ok", "repaired") for p in on_disk - set_aside)
    rep = _recordings(v, "mel-0003")
    # The crash shows as a gap with a reason, never as silent missing time.
    reasons = {g["reason"] for g in rep["gaps"] if g["start"] != rep["from"]}
    assert reasons <= {"recorder_down", "in_progress"}, rep["gaps"]
    assert "recorder_down" in reasons


def test_killed_ffmpeg_leaves_a_torn_segment_that_is_repaired(varta, camsim):
    v = varta(recorder_backend="ffmpeg")
    v.run("camera", "add", "mel-0004", "--url", camsim.url("gen1"))
    v.start()
    v.wait_for(lambda: len(_segments(v, "mel-0004")) >= 2, 60, "segments")
    time.sleep(1.5)
    pids = subprocess.run(["pgrep", "-f", "mel-0004/"], capture_output=True, text=True).stdout.split()
    assert pids, "the camera's ffmpeg should be running"
    for pid in pids:
        os.kill(int(pid), 9)
    v.wait_for(lambda: v.status("mel-0004")["state"] == "recording" and
               v.status("mel-0004")["reason"] == "", 60, "recording again")
    cam_dir = v.home / "recordings" / "mel-0004"
    time.sleep(1)
    on_disk = {str(p.relative_to(cam_dir)) for p in cam_dir.rglob("*.mp4")}
    import sqlite3

    with sqlite3.connect(v.home / "varta.db") as db:
        rows = dict(db.execute("select path, status from segments where camera_id='mel-0004'").fetchall())
        reasons = [r[0] for r in db.execute("select reason from outages where camera_id='mel-0004'")]
    # Everything ffmpeg left is indexed (except the segment being written right now).
    assert len(on_disk - set(rows)) <= 1
    assert "process_died" in reasons
    assert rows and set(rows.values()) <= {"ok", "repaired"}


def test_wrong_url_shows_failed_with_readable_reason(varta, camsim):
    from conftest import free_port

    v = varta()
    v.run("camera", "add", "mel-bad1", "--url", f"rtsp://admin:TopSecret1@127.0.0.1:{free_port()}/stream")
    v.run("camera", "add", "mel-bad2", "--url", f"{camsim.base_url}/no-such-mount")
    v.start()
    st1 = v.wait_for(lambda: (s := v.status("mel-bad1"))["state"] == "failed" and s, 30, "mel-bad1 failed")
    assert st1["reason"] == "refused"
    assert "refused" in st1["detail"].lower()
    st2 = v.wait_for(lambda: (s := v.status("mel-bad2"))["state"] == "failed" and s, 30, "mel-bad2 failed")
    assert st2["reason"] == "not_found", st2
    # The password appears nowhere a person can see it.
    listing = v.run("camera", "list").stdout + json.dumps(v.json("camera", "list", "--json"))
    with v.api() as c:
        listing += c.get("/api/cameras").text
    time.sleep(1)
    listing += v.log_path.read_text()
    assert "TopSecret1" not in listing
    assert "admin:***@" in listing


def test_wrong_password_is_reported_as_auth(varta, media, tmp_path):
    from varta.demo.simulator import CameraSimulator, gst_rtsp_available

    ok, why = gst_rtsp_available()
    if not ok:
        pytest.skip(why)
    with CameraSimulator({"cam": media["gen1"]}, user="operator", password="right-pass") as sim:
        v = varta()
        good = sim.url("cam")
        bad = good.replace("right-pass", "wrong-pass")
        v.run("camera", "add", "mel-auth", "--url", bad)
        v.start()
        st = v.wait_for(lambda: (s := v.status("mel-auth"))["state"] == "failed" and s, 30, "auth failure")
        assert st["reason"] == "auth"
        assert "wrong-pass" not in json.dumps(st)
        # Fixing the password over the API brings the camera back without a restart.
        with v.api() as c:
            r = c.patch("/api/cameras/mel-auth", json={"url": good})
            assert r.status_code == 200, r.text
            assert "right-pass" not in r.text
        v.wait_for(lambda: len(_segments(v, "mel-auth")) >= 2, 60, "recording with the right password")


def test_real_footage_is_recorded_as_is(varta, footage, media, tmp_path):
    from varta.demo.simulator import CameraSimulator, gst_rtsp_available

    ok, why = gst_rtsp_available()
    if not ok:
        pytest.skip(why)
    with CameraSimulator({"vtest": footage["vtest"]}) as sim:
        v = varta()
        v.run("camera", "add", "mel-plaza", "--url", sim.url("vtest"), "--kind", "square")
        v.start()
        v.wait_for(lambda: len(_segments(v, "mel-plaza")) >= 4, 60, "segments of real footage")
        s = _segments(v, "mel-plaza")[1]
        assert (s["codec"], s["width"], s["height"]) == ("h264", 480, 360)
        assert s["fps"] == pytest.approx(10, abs=0.5)


@pytest.mark.postgres
def test_recording_on_postgresql(varta, camsim, postgres_url, tmp_path):
    """The same recorder, index and export against PostgreSQL (a capital's set-up)."""
    v = varta(db_url=postgres_url)
    v.run("camera", "add", "kyiv-0001", "--url", camsim.url("gen1"), "--group", "Pecherskyi")
    v.run("camera", "add", "kyiv-0002", "--url", camsim.url("gen2"), "--group", "Podilskyi")
    v.start()
    for cam in ("kyiv-0001", "kyiv-0002"):
        v.wait_for(lambda: len(_segments(v, cam)) >= 4, 60, f"segments of {cam}")
    camsim.stop()
    v.wait_for(lambda: v.status("kyiv-0001")["state"] in ("reconnecting", "failed"), 30, "outage")
    camsim.start()
    n = len(_segments(v, "kyiv-0001"))
    v.wait_for(lambda: len(_segments(v, "kyiv-0001")) >= n + 2, 60, "resumed")
    rep = _recordings(v, "kyiv-0001")
    assert len(rep["ranges"]) == 2 and any(g["reason"] != "no_recording" for g in rep["gaps"])
    segs = _segments(v, "kyiv-0002")
    out = tmp_path / "k2.mp4"
    v.run("export", "--camera", "kyiv-0002", "--from", segs[0]["start"], "--to", segs[2]["end"], "--out", str(out))
    assert _ffprobe(out)["frames"] >= 5 * FPS
