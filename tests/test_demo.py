"""The README's first command ends in `varta demo`: it must start, print the URL, and record;
its real-footage cameras must raise alarms with pictures and directions once the detector
is installed, and its banner must say how to install it while it is not."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import free_port, have_ffmpeg, login_client, stop_gently

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg not installed")]

REAL_FOOTAGE = ("mel-demo-01", "mel-demo-02")  # the first two demo cameras (varta/demo/setup.py)


def _require_gst() -> None:
    from varta.demo.simulator import gst_rtsp_available

    ok, why = gst_rtsp_available()
    if not ok:
        pytest.skip(why)


class Demo:
    """`varta demo` as a user starts it; its output is read until the banner, then drained
    in the background (a full pipe would stall the server's logging)."""

    def __init__(self, home: Path, cameras: int):
        self.home, self.port, self.rtsp = home, free_port(), free_port()
        self.env = {"PATH": "/usr/bin:/bin", "VARTA_HOME": str(home), "VARTA_SEGMENT_SECONDS": "2"}
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "varta.cli", "demo", "--listen", f"127.0.0.1:{self.port}",
             "--cameras", str(cameras), "--rtsp-port", str(self.rtsp)],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def banner(self, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            self.lines.append(line)
            if "Stop with Ctrl-C" in line or (not line and self.proc.poll() is not None):
                break
        threading.Thread(target=self._drain, daemon=True).start()
        return "".join(self.lines)

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)[-6000:]

    def operator(self, text: str):
        # The banner prints generated passwords; the operator signs in with one.
        password = re.search(r"^\s+operator\s+(\S+)", text, re.MULTILINE).group(1)
        return login_client(f"http://127.0.0.1:{self.port}", "operator", password)

    def stop(self) -> None:
        stop_gently(self.proc)


def _walk_the_order(demo: Demo, text: str, operator, tmp_path: Path) -> None:
    """The banner's mayor, at the banner's remote address, lets a newcomer walk the order:
    the operator registers a request, the mayor resolves it, the operator prepares the
    package, and the package verifies against the instance's key."""
    import pyotp

    remote = re.search(r"http://(127\.0\.0\.2:\d+)/ is remote access", text).group(1)
    password = re.search(r"^\s+mayor\s+(\S+)", text, re.MULTILINE).group(1)
    # On site the mayor is refused: A4.3 gives the mayor remote access only.
    login_client(f"http://127.0.0.1:{demo.port}", "mayor", password, expect=403)
    mayor = login_client(f"http://{remote}", "mayor", password)
    assert mayor.me["access"] == "remote" and mayor.me["stage"] == "totp_enrol", mayor.me
    secret = mayor.post("/api/auth/totp/setup").json()["secret"]
    assert mayor.post("/api/auth/totp/confirm", json={"secret": secret, "otp": pyotp.TOTP(secret).now()}).status_code == 200

    segs = operator.get("/api/cameras/mel-demo-01/segments", params={"from": "now-5m", "to": "now"}).json()
    body = {"kind": "police", "incoming_no": "77/1-2026", "incoming_date": segs[0]["start"][:10],
            "requester": "Мелітопольський РВП", "contact": "слідчий Бондар І. С.", "basis": "ст. 93 КПК України",
            "items": [{"camera_id": "mel-demo-01", "from": segs[0]["start"], "to": segs[1]["end"]}]}
    r = operator.post("/api/requests", json=body)
    assert r.status_code == 201, r.text
    req = r.json()
    r = mayor.post(f"/api/requests/{req['id']}/resolve", json={"decision": "approve", "text": "Погоджую"})
    assert r.status_code == 200 and r.json()["state"] == "approved", r.text
    job = operator.post(f"/api/requests/{req['id']}/prepare").json()
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.3)
        job = operator.get(f"/api/requests/jobs/{job['id']}").json()
    assert job["status"] == "done", job
    package = operator.get(f"/api/requests/{req['id']}/package", timeout=60)
    assert package.status_code == 200
    (tmp_path / "package.zip").write_bytes(package.content)
    fingerprint = operator.get("/api/evidence/key").json()["fingerprint"]
    ok = subprocess.run([sys.executable, "-m", "varta.cli", "verify", str(tmp_path / "package.zip"),
                         "--fingerprint", fingerprint], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_demo_starts_prints_url_and_records(tmp_path):
    _require_gst()
    demo = Demo(tmp_path / "demo", cameras=3)
    try:
        text = demo.banner()
        assert f"http://127.0.0.1:{demo.port}/" in text, text
        assert "first login" in text
        # No detector model in this home: ONE line says how to install it, online and from a
        # file, and that motion is analysed meanwhile.
        # (the banner itself, not the log lines the workers print before it)
        banner = text[text.index("Varta demo is running"):]
        lines = [ln for ln in banner.splitlines() if "varta model install yolox-nano" in ln]
        assert len(lines) == 1, text
        assert "--from FILE" in lines[0] and "motion" in lines[0], lines[0]
        assert "2 from real footage" in text and "1 test pattern" in text, text
        api = demo.operator(text)
        assert api.me["role"] == "department" and api.me["access"] == "direct"
        deadline = time.monotonic() + 90

        def recorded():
            cams = api.get("/api/cameras", timeout=5).json()
            return len(cams) == 3 and all(c["status"]["state"] == "recording" and c["status"]["last_segment_end"]
                                          for c in cams)

        def motion_only():  # the footage cameras are analysed (motion only) without a model
            sts = [api.get(f"/api/cameras/{cam}/analytics", timeout=5).json()["status"] for cam in REAL_FOOTAGE]
            return all(st and st["state"] == "motion_only" for st in sts)

        while time.monotonic() < deadline and not (recorded() and motion_only()):
            time.sleep(0.5)
        assert recorded(), demo.output()
        assert motion_only(), demo.output()
        _walk_the_order(demo, text, api, tmp_path)
    finally:
        demo.stop()
    # Ctrl-C stops the simulator too: nothing keeps listening on its port.
    time.sleep(1)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", demo.rtsp)) != 0


def test_demo_with_the_detector_raises_alarms_with_pictures_and_directions(tmp_path, test_data):
    _require_gst()
    model = test_data / "models" / "yolox_nano.onnx"
    if not model.is_file():
        pytest.skip(f"no detector model at {model}")
    home = tmp_path / "demo"
    # As the banner tells a user without internet: install the model from a file first.
    done = subprocess.run([sys.executable, "-m", "varta.cli", "model", "install", "yolox-nano", "--from", str(model)],
                          env={"PATH": "/usr/bin:/bin", "VARTA_HOME": str(home)}, capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    demo = Demo(home, cameras=2)
    try:
        text = demo.banner()
        started = time.monotonic()
        assert "varta model install" not in text and "alarms with pictures and directions" in text, text
        api = demo.operator(text)

        def alarms():
            out = []
            for cam in REAL_FOOTAGE:
                r = api.get("/api/events", params={"camera": cam, "limit": 100}, timeout=5)
                assert r.status_code == 200, r.text
                out += [e for e in r.json()["events"] if e["snapshot_url"] and e["label"]
                        and (e["detail"].get("direction") or {}).get("en")]
            return out

        found = []
        while time.monotonic() < started + 90 and not found:
            found = alarms()
            time.sleep(1)
        assert found, f"no event with a picture and a direction within 90 s:\n{demo.output()}"
        ev = found[0]
        assert ev["camera_id"] in REAL_FOOTAGE and ev["label"] in ("person", "car")
        assert ev["severity"] in ("alarm", "warning"), ev  # both pop a card on the console
        img = api.get(ev["snapshot_url"], timeout=10)
        assert img.status_code == 200 and img.headers["content-type"].startswith("image/jpeg")
        assert img.content[:2] == b"\xff\xd8" and len(img.content) > 5_000
        print(f"first alarm {time.monotonic() - started:.0f} s after the banner: {ev['camera_id']} {ev['rule']} "
              f"{ev['label']} {ev['detail']['direction']['en']}")
    finally:
        demo.stop()
