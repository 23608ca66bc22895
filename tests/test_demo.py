"""The README's first command ends in `varta demo`: it must start, print the URL, and record."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import re

import pytest

from conftest import free_port, have_ffmpeg, login_client


@pytest.mark.e2e
@pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg not installed")
def test_demo_starts_prints_url_and_records(tmp_path):
    from varta.demo.simulator import gst_rtsp_available

    ok, why = gst_rtsp_available()
    if not ok:
        pytest.skip(why)
    port, rtsp = free_port(), free_port()
    env = {"PATH": "/usr/bin:/bin", "VARTA_HOME": str(tmp_path / "demo"), "VARTA_SEGMENT_SECONDS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "varta.cli", "demo", "--listen", f"127.0.0.1:{port}",
                             "--cameras", "2", "--rtsp-port", str(rtsp)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            out.append(line)
            if "Stop with Ctrl-C" in line or proc.poll() is not None:
                break
        text = "".join(out)
        assert f"http://127.0.0.1:{port}/" in text, text
        assert "first login" in text
        # The banner prints generated passwords; the operator signs in with one.
        password = re.search(r"^\s+operator\s+(\S+)", text, re.M).group(1)
        api = login_client(f"http://127.0.0.1:{port}", "operator", password)
        assert api.me["role"] == "department" and api.me["access"] == "direct"

        def recorded():
            cams = api.get("/api/cameras", timeout=5).json()
            return len(cams) == 2 and all(c["status"]["state"] == "recording" and c["status"]["last_segment_end"]
                                          for c in cams)

        while time.monotonic() < deadline and not recorded():
            time.sleep(0.5)
        assert recorded()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    # Ctrl-C stops the simulator too: nothing keeps listening on its port.
    time.sleep(1)
    import socket

    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", rtsp)) != 0
