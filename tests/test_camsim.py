"""The RTSP camera simulator (varta.demo) against real clients: ffmpeg, ffprobe, PyAV.

Streams are tiny (320x240 / 640x360, a few seconds) so the module runs in ~30 s; the
simulated cameras loop their file, so a 6 s recording of a 4 s file crosses a wrap.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from varta.demo import media
from varta.demo.simulator import CameraSimulator, gst_rtsp_available

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
VTEST = Path("/work/shared/data/video/vtest.avi")

USER, PASSWORD = "varta", "s3cret:p@ss"  # ':' and '@' check the URL quoting

CAM1 = dict(width=320, height=240, fps=25, seconds=4, bitrate="300k", label="cam1")
CAM1_FRAMES = 100  # 4 s at 25 fps: the counter wraps to 0 after 99
CAM2 = dict(width=640, height=360, fps=25, seconds=2, bitrate="500k", label="cam2")

needs_ffmpeg = pytest.mark.skipif(
    not (FFMPEG and FFPROBE), reason="ffmpeg/ffprobe not on PATH (apt-get install ffmpeg)"
)


@pytest.fixture(scope="module")
def gst_ok() -> None:
    ok, why = gst_rtsp_available()
    if not ok:
        pytest.skip(f"RTSP camera simulator unavailable: {why}")


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not (FFMPEG and FFPROBE):
        pytest.skip("ffmpeg/ffprobe not on PATH (apt-get install ffmpeg)")
    d = tmp_path_factory.mktemp("streams")
    return {
        "cam1": media.make_test_stream(d / "cam1.ts", **CAM1),
        "cam2": media.make_test_stream(d / "cam2.ts", **CAM2),
    }


@pytest.fixture(scope="module")
def sim(gst_ok: None, streams: dict[str, Path]):
    with CameraSimulator(streams, user=USER, password=PASSWORD) as s:
        yield s


def ffprobe(url: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FFPROBE, "-v", "error", "-rtsp_transport", "tcp", "-show_entries",
         "stream=codec_name,width,height", "-of", "json", url],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def probe_video(url: str) -> dict:
    r = ffprobe(url)
    assert r.returncode == 0, r.stderr
    (stream,) = json.loads(r.stdout)["streams"]
    return stream


def decoded_counters(path: Path) -> list[int]:
    import av

    with av.open(str(path)) as container:
        return [media.read_frame_counter(frame) for frame in container.decode(video=0)]


# ----------------------------------------------------------------- media (no server)


@needs_ffmpeg
def test_generated_file_is_loopable_h264(streams: dict[str, Path]) -> None:
    import av

    with av.open(str(streams["cam1"])) as c:
        v = c.streams.video[0]
        assert (v.codec_context.name, v.width, v.height) == ("h264", 320, 240)
        assert len(c.streams) == 1  # video only
        frames = list(c.decode(v))
    assert frames[0].pts * v.time_base == 0  # starts at 0, so the loop has no gap
    keys = [i for i, f in enumerate(frames) if f.key_frame]
    assert keys == [0, 50]  # fixed GOP = 2 * fps
    assert [media.read_frame_counter(f) for f in frames] == list(range(CAM1_FRAMES))


@needs_ffmpeg
def test_make_test_stream_is_cached(streams: dict[str, Path]) -> None:
    path = streams["cam1"]
    mtime = path.stat().st_mtime_ns
    t0 = time.monotonic()
    assert media.make_test_stream(path, **CAM1) == path
    assert time.monotonic() - t0 < 0.5 and path.stat().st_mtime_ns == mtime
    recorded = json.loads(path.with_name(path.name + ".json").read_text())
    assert recorded["width"] == 320 and recorded["gop"] == 50


def test_read_frame_counter_from_arrays() -> None:
    np = pytest.importorskip("numpy")
    for value in (0, 1, 0xA5C3, 0xFFFF):
        img = np.zeros((240, 320, 3), np.uint8)
        bw, bh = media.counter_geometry(320, 240)
        for i in range(media.COUNTER_BITS):
            if value >> (media.COUNTER_BITS - 1 - i) & 1:
                img[:bh, i * bw:(i + 1) * bw] = 235
        assert media.read_frame_counter(img) == value
        assert media.read_frame_counter(img[:, :, 0]) == value


@needs_ffmpeg
@pytest.mark.skipif(not VTEST.is_file(), reason=f"{VTEST} not present")
def test_prepare_from_file(tmp_path: Path) -> None:
    import av

    out = media.prepare_from_file(VTEST, tmp_path / "vtest.ts", max_seconds=4.5)
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video"]  # audio dropped
        v = c.streams.video[0]
        frames = [(f.pts * v.time_base, f.key_frame) for f in c.decode(v)]
    assert frames[0][0] == 0
    assert [float(t) for t, key in frames if key] == [0.0, 2.0, 4.0]  # 2 s GOP at 10 fps
    assert len(frames) == 45


# ----------------------------------------------------------------- served over RTSP


def test_serves_h264_with_right_size(sim: CameraSimulator) -> None:
    assert sim.is_running and sim.port
    assert sim.url("cam1") == f"rtsp://varta:s3cret%3Ap%40ss@127.0.0.1:{sim.port}/cam1"
    with ThreadPoolExecutor(2) as pool:
        cam1, cam2 = pool.map(probe_video, [sim.url("cam1"), sim.url("cam2")])
    assert (cam1["codec_name"], cam1["width"], cam1["height"]) == ("h264", 320, 240)
    assert (cam2["codec_name"], cam2["width"], cam2["height"]) == ("h264", 640, 360)


def test_recording_has_every_frame_in_order(sim: CameraSimulator, tmp_path: Path) -> None:
    out = tmp_path / "rec.mp4"
    r = subprocess.run(
        [FFMPEG, "-v", "error", "-nostdin", "-rtsp_transport", "tcp", "-i", sim.url("cam1"),
         "-c", "copy", "-t", "6", str(out)],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert r.returncode == 0, r.stderr
    import av

    with av.open(str(out)) as c:
        duration = float(c.duration / 1e6)
    assert 5.5 <= duration <= 6.5
    counters = decoded_counters(out)
    assert 140 <= len(counters) <= 152
    assert counters[0] == 0  # a non-shared pipeline per client starts at the file's start
    # +1 per frame, wrapping to 0 when the 4 s file loops: no frame lost or repeated.
    steps = {(b - a) % CAM1_FRAMES for a, b in zip(counters, counters[1:])}
    assert steps == {1}
    assert CAM1_FRAMES - 1 in counters and counters[-1] < CAM1_FRAMES - 1  # it did wrap


def test_basic_auth(sim: CameraSimulator) -> None:
    r = ffprobe(sim.url("cam2", with_auth=False))
    assert r.returncode != 0 and "401" in r.stderr
    wrong = sim.url("cam2").replace("s3cret", "wrong")
    r = ffprobe(wrong)
    assert r.returncode != 0 and "401" in r.stderr
    assert probe_video(sim.url("cam2"))["codec_name"] == "h264"


def test_many_simultaneous_clients(sim: CameraSimulator) -> None:
    """24 clients at once, on both mounts: each gets its own pipeline and all frames."""
    procs = [
        subprocess.Popen(
            [FFMPEG, "-v", "error", "-nostdin", "-rtsp_transport", "tcp",
             "-i", sim.url(f"cam{1 + i % 2}"), "-c", "copy", "-t", "2", "-f", "null", "-"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for i in range(24)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 24, errors


def test_outage_and_recovery_on_same_port(gst_ok: None, streams: dict[str, Path]) -> None:
    with CameraSimulator({"cam2": streams["cam2"]}) as s:
        port, url = s.port, s.url("cam2")
        assert "@" not in url  # no credentials configured
        # A client streaming when the camera goes away sees the connection drop.
        client = subprocess.Popen(
            [FFMPEG, "-v", "error", "-nostdin", "-rtsp_transport", "tcp", "-i", url,
             "-c", "copy", "-f", "null", "-"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        assert client.poll() is None
        s.stop()
        assert not s.is_running
        client.wait(timeout=10)
        assert ffprobe(url).returncode != 0  # connection refused while down

        s.start()
        assert s.is_running and s.port == port
        assert probe_video(url)["width"] == 640
