"""ONVIF cameras end to end (issue 18), inside a private network namespace that the test
creates (`unshare -n`): WS-Discovery multicast and directed probes never leave it.

The devices are IPyCam's ONVIF device (PyPI `ipycam`, tests/onvif_device.py) serving the
streams of our real RTSP server (camsim). Discover them (multicast; a range; with the
credentials: make, model, firmware, serial), add one from its profiles and record it; a
wrong password, a device that never answers and one that answers SOAP faults each give a
clear error and add nothing; presets set, listed and gone to, moves that change the
device's reported position; the control lock between two operators (a higher role takes
over); the policy withdrawing PTZ from the police; a camera whose clock is an hour off is
added (the WS-Security time is adjusted to it) and raises the drift alarm; old firmware is
flagged; an idle camera goes home; in Chromium the PTZ controls move the device.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port, wait_until

pytestmark = [pytest.mark.e2e]
INSIDE = os.environ.get("VARTA_IN_NETNS") == "1"
HERE = Path(__file__).resolve().parent
NET = """set -e
ip link set lo up
ip link add cams0 type veth peer name cams1
ip addr add 10.77.0.1/24 dev cams0
ip addr add 10.77.0.2/24 dev cams0
ip link set cams1 up
ip link set cams0 up
ip route add 239.0.0.0/8 dev cams0
"""

if not INSIDE:
    def test_onvif_inside_a_private_network_namespace():
        """Run the tests below inside a namespace of their own (root: `unshare -n`; else a
        user namespace maps us to root in it: `unshare -rn`)."""
        unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
        cmd = NET + f"exec {sys.executable} -m pytest -q -s -p no:cacheprovider -p no:xdist {HERE / Path(__file__).name}"
        res = subprocess.run([*unshare, "bash", "-c", cmd], env={**os.environ, "VARTA_IN_NETNS": "1"}, cwd=HERE.parent,
                             capture_output=True, text=True, timeout=900)
        print(res.stdout[-6000:], res.stderr[-3000:])
        assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
        assert " passed" in res.stdout and "skipped" not in res.stdout


def _device(camsim, port: int, host: str = "127.0.0.1", *args: str):
    proc = subprocess.Popen([sys.executable, str(HERE / "onvif_device.py"), "--host", host, "--port", str(port),
                             "--main", camsim.url("gen1"), "--sub", camsim.url("gen2"), "--user", "admin",
                             "--password", "Cam-pw-7", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _silent_listener():
    """A device that accepts the connection and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


if INSIDE:
    from test_console_e2e import browser, shot, sign_in  # noqa: F401  (browser is a fixture)

    @pytest.fixture
    def devices(camsim):
        a_port, b_port = free_port(), free_port()
        a = _device(camsim, a_port, "10.77.0.2", "--discovery", "--model", "DomeCam-9", "--serial", "SN-A1",
                    "--firmware", "2.4.1")
        b = _device(camsim, b_port, "127.0.0.1", "--model", "BoxCam-2", "--serial", "SN-B2", "--firmware", "1.2.0",
                    "--clock-offset", "3600")
        yield {"a": f"http://10.77.0.2:{a_port}/onvif/device_service", "b": f"http://127.0.0.1:{b_port}/onvif/device_service"}
        for p in (a, b):
            p.terminate()
            p.wait(10)

    def _pan(v, cam: str) -> float:
        return float(json.loads(v.run("ptz", cam, "status", "--json").stdout)["pan"])

    def test_discover_add_record_drive_and_watch(varta, devices, camsim):
        v = varta(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32",
                  onvif_check_interval_s=2, onvif_timeout_s=3, onvif_min_firmware="PythonCam BoxCam-2=1.5; *=1.0",
                  ptz_hold_s=3)
        found = json.loads(v.run("onvif", "discover", "--timeout", "2", "--json").stdout)
        assert [d["xaddr"] for d in found] == [devices["a"]]  # multicast: the one that answers WS-Discovery
        assert found[0]["registered"] is None and found[0]["address"] == "10.77.0.2"
        found = json.loads(v.run("onvif", "discover", "--range", "10.77.0.0/29", "--no-multicast", "--timeout", "2",
                                 "--user", "admin", "--password", "Cam-pw-7", "--json").stdout)
        assert len(found) == 1 and found[0]["model"] == "DomeCam-9" and found[0]["serial"] == "SN-A1"
        assert found[0]["firmware"] == "2.4.1" and found[0]["manufacturer"] == "PythonCam"

        # What goes wrong is said plainly, and adds nothing.
        r = v.run("onvif", "add", devices["a"], "--id", "cam-a", "--user", "admin", "--password", "wrong", check=False)
        assert r.returncode != 0 and "refused the user name or password" in r.stderr, r.stderr
        silent = _silent_listener()
        r = v.run("onvif", "add", f"http://127.0.0.1:{silent.getsockname()[1]}/onvif/device_service", "--id", "cam-x",
                  "--user", "admin", "--password", "Cam-pw-7", check=False)
        silent.close()
        assert r.returncode != 0 and "no answer in time" in r.stderr, r.stderr
        assert not [c for c in json.loads(v.run("camera", "list", "--json").stdout) if c["id"] in ("cam-a", "cam-x")]

        r = v.run("onvif", "add", devices["a"], "--id", "cam-a", "--user", "admin", "--password", "Cam-pw-7",
                  "--group", "centre", "--name", "Соборна, купол")
        assert "main Profile_Main 1280x720" in r.stdout and "sub Profile_Sub 640x360" in r.stdout and "PTZ" in r.stdout
        v.start()
        dept = v.api("dept", "department")
        v.wait_for(lambda: len(dept.get("/api/cameras/cam-a/segments", params={"from": "now-5m", "to": "now+1m"})
                               .json()) >= 2, 90, "cam-a recording from its ONVIF stream")
        shown = dept.get("/api/cameras/cam-a").text + json.dumps(v.api().get("/api/onvif/devices").json())
        assert "Cam-pw-7" not in shown and "SN-A1" in shown
        assert "Cam-pw-7" not in v.log_path.read_text()
        again = json.loads(v.run("onvif", "discover", "--timeout", "2", "--json").stdout)
        assert again[0]["registered"] == "cam-a"

        # Presets and moves, checked on the device's reported position.
        token = v.run("ptz", "cam-a", "set-preset", "Entrance").stdout.strip()
        assert any(p["name"] == "Entrance" and p["token"] == token
                   for p in json.loads(v.run("ptz", "cam-a", "presets", "--json").stdout))
        v.run("ptz", "cam-a", "move", "--pan", "0.8", "--seconds", "1")
        moved = _pan(v, "cam-a")
        assert moved > 0.2, moved
        v.run("ptz", "cam-a", "goto", "Entrance")
        wait_until(lambda: abs(_pan(v, "cam-a")) < 0.05, 10, "back at the Entrance preset")
        r = v.run("ptz", "cam-a", "remove-preset", "Entrance", check=False)  # this device answers a SOAP fault
        assert r.returncode != 0 and "SOAP fault" in r.stderr and "RemovePreset" in r.stderr, r.stderr

        # The control lock: the contractor steers; an equal waits; the department (higher) takes over.
        # (The shell's commands above hold it for ptz_hold_s = 3 s: the console outranks all.)
        assert v.api("tech", "contractor").post("/api/cameras/cam-a/ptz/move",
                                                json={"pan": 0.1, "seconds": 0.2}).status_code == 409
        wait_until(lambda: v.api("tech", "contractor").get("/api/cameras/cam-a/ptz/status").json()["holder"] is None,
                   10, "the shell's hold on cam-a to end")
        tech = v.api("tech", "contractor")
        tech2 = v.api("tech2", "contractor")
        assert tech.post("/api/cameras/cam-a/ptz/move", json={"pan": 0.5, "seconds": 0.5}).status_code == 200
        busy = tech2.post("/api/cameras/cam-a/ptz/move", json={"pan": -0.5, "seconds": 0.5})
        assert busy.status_code == 409 and busy.json()["detail"]["holder"] == "tech", busy.text
        assert dept.post("/api/cameras/cam-a/ptz/move", json={"pan": -0.5, "seconds": 0.5}).status_code == 200
        assert tech.post("/api/cameras/cam-a/ptz/stop").status_code == 409
        st = dept.get("/api/cameras/cam-a/ptz/status").json()
        assert st["holder"] == "dept" and st["yours"]
        lines = dept.get("/api/journal", params={"action": "ptz.control", "limit": 50}).json()["lines"]
        assert any(ln["detail"].endswith("(control taken from tech)") for ln in lines)
        assert any(ln["account"] == "tech2" and ln["result"] == "refused" for ln in lines)

        # Idle: home after 5 s (the device's preset "Home").
        assert v.api("tech").put("/api/cameras/cam-a/ptz/home-after", json={"seconds": 5}).status_code == 200
        assert dept.post("/api/cameras/cam-a/ptz/move", json={"pan": 0.6, "seconds": 0.5}).status_code == 200
        assert abs(_pan(v, "cam-a")) > 0.1
        v.wait_for(lambda: abs(_pan(v, "cam-a")) < 0.05, 30, "cam-a back home after 5 s idle")

        # A camera an hour off: added all the same (the security token's time follows the
        # device's clock), and the drift raises an alarm; its firmware is below the minimum.
        v.run("onvif", "add", devices["b"], "--id", "cam-b", "--user", "admin", "--password", "Cam-pw-7")
        checked = json.loads(v.run("onvif", "check", "cam-b", "--json").stdout)[0]
        assert not checked["ok"] and 3590 <= checked["clock_offset_s"] <= 3610
        assert any("clock is +3600 s off" in p or "clock is +3599 s off" in p for p in checked["problems"]), checked
        assert any("firmware 1.2.0" in p and "minimum 1.5" in p for p in checked["problems"]), checked
        alarms = v.api().get("/api/system/alarms").json()
        kinds = {(a["kind"], a["camera_id"]) for a in (alarms["alarms"] if isinstance(alarms, dict) else alarms)}
        assert ("onvif_clock", "cam-b") in kinds and ("onvif_firmware", "cam-b") in kinds
        inv = v.api().get("/api/onvif/inventory.csv").text
        assert "BoxCam-2" in inv and "DomeCam-9" in inv and "Cam-pw-7" not in inv
        pdf = v.api().get("/api/onvif/inventory.pdf")
        assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"

        # The city withdraws PTZ from the police: refused, journaled.
        v.run("policy", "restrict", "police", "ptz.control")
        pw, secret = v.account("patrol", "police", groups=["centre"], totp=True)
        import pyotp

        from conftest import login_client

        police = login_client(v.base_url, "patrol", pw, otp=pyotp.TOTP(secret).now(), local_address="127.0.0.3")
        # (a web node reads the city's restrictions afresh every few seconds)
        r = wait_until(lambda: (x := police.post("/api/cameras/cam-a/ptz/move", json={"pan": 0.5, "seconds": 0.2}))
                       .status_code == 403 and x, 15, "the restriction in force")
        assert "withdrawn" in r.json()["detail"]
        lines = dept.get("/api/journal", params={"action": "ptz.control", "limit": 100}).json()["lines"]
        assert any(ln["account"] == "patrol" and ln["result"] == "refused" for ln in lines)

    def test_console_ptz_controls_move_the_camera(browser, varta, devices, camsim):  # noqa: F811
        v = varta(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32", ptz_hold_s=3)
        v.run("onvif", "add", devices["a"], "--id", "cam-a", "--user", "admin", "--password", "Cam-pw-7", "--group", "centre")
        v.start()
        password = v.account("olena", "department")[0]
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        sign_in(page, v.base_url, "olena", password)
        page.wait_for_selector("#nav a[data-page=live]")
        page.goto(v.base_url + "/#/live?camera=cam-a")
        page.wait_for_selector("#ptz .ptz-dir")
        before = float(page.get_attribute("#ptz-position", "data-pan") or 0)
        right = page.locator(".ptz-dir[data-pan='1'][data-tilt='0']")
        right.scroll_into_view_if_needed()
        box = right.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.wait_for_timeout(1200)
        page.mouse.up()
        page.wait_for_timeout(500)
        print("PTZ note:", page.inner_text("#ptz-note"), "| holder:", page.inner_text("#ptz-holder"))
        wait_until(lambda: float(json.loads(v.run("ptz", "cam-a", "status", "--json").stdout)["pan"]) > before + 0.2,
                   10, "the device turned right")
        page.wait_for_function("document.querySelector('#ptz-holder').dataset.holder === 'olena'", timeout=10000)
        page.select_option("#ptz-presets", label="Home")
        wait_until(lambda: abs(float(json.loads(v.run("ptz", "cam-a", "status", "--json").stdout)["pan"])) < 0.05,
                   10, "the device back at Home")
        page.keyboard.down("ArrowLeft")
        page.wait_for_timeout(800)
        page.keyboard.up("ArrowLeft")
        wait_until(lambda: float(json.loads(v.run("ptz", "cam-a", "status", "--json").stdout)["pan"]) < -0.1,
                   10, "the device turned left by the keyboard")
        shot(page, "ptz")
        lines = v.api("dept", "department").get("/api/journal", params={"action": "ptz.control", "limit": 50}).json()["lines"]
        assert sum(1 for ln in lines if ln["account"] == "olena" and ln["detail"].startswith("ptz move")) >= 2
        page.close()

    def test_camera_events_become_events_and_drive_the_motion_mode(varta, camsim):
        """The camera's own motion detector (ONVIF events, PullPoint): motion for 2 s every 25 s.
        Its detections become events marked as from the camera, and the motion recording mode
        keeps footage around them and drops the rest — no frame decoded by Varta."""
        port = free_port()
        dev = _device(camsim, port, "127.0.0.1", "--model", "EventCam-1", "--motion-every", "25")
        try:
            v = varta(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32", onvif_check_interval_s=600)
            r = v.run("onvif", "add", f"http://127.0.0.1:{port}/onvif/device_service", "--id", "cam-e", "--user",
                      "admin", "--password", "Cam-pw-7", "--schedule", "motion")
            assert "camera events" in r.stdout
            v.start()
            c = v.api()

            def ended():
                got = c.get("/api/events", params={"camera": "cam-e"}).json()
                evs = got["events"] if isinstance(got, dict) else got
                return [e for e in evs if e["rule"] == "camera:motion" and e.get("end")]

            evs = v.wait_for(ended, 60, "a motion event from the camera, started and ended")
            e = evs[0]
            assert e["kind"] == "motion" and e["detail"]["source"] == "camera" and "MotionAlarm" in e["detail"]["topic"]
            v.wait_for(lambda: "motion/events modes: dropped" in v.log_path.read_text(), 120,
                       "quiet footage dropped in the motion mode")
        finally:
            dev.terminate()
            dev.wait(10)
