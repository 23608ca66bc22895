"""Live video over WebSocket (fMP4 for MSE) from a real RTSP camera: what a browser gets,
shared by several viewers without a remux each, and refused where the policy says so."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
import websockets
import websockets.exceptions

from conftest import VartaHome, have_ffmpeg, watch_live

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg not installed")]


_watch = watch_live


def test_live_fragments_play_and_are_shared_by_viewers(camsim, tmp_path):
    import json

    v = VartaHome(tmp_path / "live")
    v.start()
    try:
        v.run("camera", "add", "mel-l", "--url", camsim.url("gen1"), "--schedule", "off")
        cookie = v.api("op", "department").headers["Cookie"]
        url = f"ws://127.0.0.1:{v.port}/api/cameras/mel-l/live"

        async def three():
            return await asyncio.gather(*(_watch(url, cookie, 4.0) for _ in range(3)))

        results = asyncio.run(three())
        for msgs in results:
            texts = [json.loads(m) for m in msgs if isinstance(m, str)]
            assert any(t["type"] == "init" and t["mime"].startswith('video/mp4; codecs="avc1.') for t in texts)
            data = b"".join(m for m in msgs if isinstance(m, bytes))
            assert data[4:8] == b"ftyp"
            out = tmp_path / "got.mp4"
            out.write_bytes(data)
            probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                                    "-show_entries", "stream=nb_read_frames,codec_name,width", "-of", "json",
                                    str(out)], capture_output=True, text=True, check=True)
            stream = json.loads(probe.stdout)["streams"][0]
            # The camera's own H.264, untouched, ~25 fps over the seconds watched.
            assert stream["codec_name"] == "h264" and stream["width"] == 640
            assert int(stream["nb_read_frames"]) >= 50
        # One camera connection served all three: the last state message counted them.
        counts = [json.loads(m).get("viewers") for msgs in results for m in msgs if isinstance(m, str)]
        assert max(c for c in counts if c) == 3
    finally:
        v.stop()


def test_live_is_refused_by_the_policy_and_from_other_sites(camsim, tmp_path):
    v = VartaHome(tmp_path / "live2")
    v.start()
    try:
        v.run("camera", "add", "mel-l", "--url", camsim.url("gen1"), "--schedule", "off")
        url = f"ws://127.0.0.1:{v.port}/api/cameras/mel-l/live"
        admin = v.api("root", "admin").headers["Cookie"]  # administration sees no video
        # Refused by the policy: the console's socket is accepted, then closed with 1008 and
        # the reason, so the page says why and does not retry (a handshake 403 reaches a
        # browser as a bare 1006, "connection lost").
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as refused:
            asyncio.run(_watch(url, admin, 1.0))
        assert refused.value.rcvd.code == 1008 and refused.value.rcvd.reason, refused.value
        op = v.api("op", "department").headers["Cookie"]
        with pytest.raises(websockets.exceptions.InvalidStatus) as cross:  # another site: not even accepted
            asyncio.run(_watch(url, op, 1.0, origin="https://evil.example"))
        assert cross.value.response.status_code == 403
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as forged:
            asyncio.run(_watch(url, "varta_session=forged", 1.0))
        assert forged.value.rcvd.code == 1008
        with v.api("auditor", "department") as c:
            lines = c.get("/api/journal", params={"account": "root", "result": "refused"}).json()["lines"]
        assert any(ln["action"] == "live.view" and ln["object"] == "camera:mel-l" for ln in lines)
    finally:
        v.stop()
