"""The evidence workflow from the server's shell, for an offline site (a folder target), and a
third party's redacted copy beside the untouched original (A4.8), on real footage of people."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pyotp
import pytest
from conftest import _require_gst, have_ffmpeg, login_client

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not have_ffmpeg(), reason="needs ffmpeg")]


@pytest.fixture
def model(test_data):
    path = test_data / "models" / "yolox_nano.onnx"
    if not path.is_file():
        pytest.skip(f"no detector model at {path}")
    return path


def _approve(v, number, login="mayor.petrenko", role="mayor"):
    password, secret = v.account(login, role, totp=True)
    with login_client(v.base_url, login, password, otp=pyotp.TOTP(secret).now(), local_address="127.0.0.3") as c:
        r = c.post(f"/api/requests/{number}/resolve", json={"decision": "approve", "text": "Погоджую"})
        assert r.status_code == 200, r.text


def _segments(v, cam):
    from sqlalchemy import text

    with v.engine().connect() as conn:
        return conn.execute(text("select start_us, end_us from segments where camera_id=:c order by start_us"),
                            {"c": cam}).all()


def _mean_abs_diff(a, b, box):
    x1, y1, x2, y2 = box
    return float(np.abs(a[y1:y2, x1:x2].astype(int) - b[y1:y2, x1:x2].astype(int)).mean())


def test_third_party_package_to_a_folder_with_a_redacted_copy(varta, footage, model, tmp_path):
    from varta.clock import format_time
    from varta.demo.simulator import CameraSimulator

    _require_gst()
    usb = tmp_path / "usb"
    sim = CameraSimulator({"vtest": footage["vtest"]}).start()
    try:
        v = varta(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32", transfer_folder=str(usb),
                  detector_model=str(model), analytics="false")
        v.run("camera", "add", "mel-0100", "--url", sim.url("vtest"), "--name", "Вокзальна площа")
        v.start()
        v.wait_for(lambda: len(_segments(v, "mel-0100")) >= 2, 90, "two segments")
        segs = _segments(v, "mel-0100")
        a, b = format_time(segs[0][0] + 500_000), format_time(segs[0][0] + 4_500_000)
        # Bad input: a clear message, nothing registered.
        bad = v.run("request", "add", "--kind", "third_party", "--incoming-no", "5", "--incoming-date", "2026-01-05",
                    "--requester", "ПрАТ СК", "--basis", "страховий випадок", "--item", f"nope,{a},{b}", check=False)
        assert bad.returncode == 2 and "no camera nope" in bad.stderr
        bad = v.run("request", "add", "--kind", "third_party", "--incoming-no", "5", "--incoming-date", "2026-01-05",
                    "--requester", "ПрАТ СК", "--basis", "страховий випадок", "--item", f"mel-0100,{a}", check=False)
        assert bad.returncode == 2 and "CAMERA,FROM,TO" in bad.stderr
        req = json.loads(v.run("request", "add", "--kind", "third_party", "--incoming-no", "5/2026",
                               "--incoming-date", "2026-01-05", "--requester", "ПрАТ СК «Страховик»",
                               "--basis", "Пошкодження авто на стоянці, заява власника", "--item",
                               f"mel-0100,{a},{b}", "--redact", "people", "--json").stdout)
        assert req["redaction"] == {"people": "people", "plates": False}
        number = req["number"]
        early = v.run("request", "transfer", number, check=False)
        assert early.returncode == 2 and "cannot transfer a request that is registered" in early.stderr
        _approve(v, number)  # A4.8: the mayor decides
        out = v.run("request", "prepare", number, timeout=300)
        assert "signed by key" in out.stdout
        missing = v.run("request", "transfer", number, check=False)
        assert missing.returncode == 2 and "is the drive mounted" in missing.stderr  # nothing written to /
        usb.mkdir()
        out = v.run("request", "transfer", number)
        assert str(usb) in out.stdout
        zips = list((usb / number).glob("*.zip"))
        assert len(zips) == 1
        fingerprint = v.run("evidence", "key").stdout.split()[-1]
        ok = v.run("verify", str(zips[0]), "--fingerprint", fingerprint, check=False)
        assert ok.returncode == 0, ok.stdout + ok.stderr

        # The original and the redacted copy, side by side; the manifest says which is which.
        with zipfile.ZipFile(zips[0]) as z:
            z.extractall(tmp_path / "pkg")
        root = next((tmp_path / "pkg").iterdir())
        manifest = json.loads((root / "manifest.json").read_text())
        original = manifest["items"][0]
        redacted = manifest["extra_files"][0]
        assert original["redacted"] is False and redacted["redacted"] is True
        assert redacted["original"] == original["file"] and redacted["file"].startswith("redacted/")
        assert "people" in redacted["method"]
        # Where the detector sees people in the original, the redacted copy is blurred;
        # elsewhere it is the same picture.
        import av

        from varta.analytics.detector import YoloxDetector

        def frame_at(path, n=20):
            with av.open(str(path)) as c:
                for i, f in enumerate(c.decode(video=0)):
                    if i == n:
                        return f.to_ndarray(format="bgr24")
        orig, red = frame_at(root / original["file"]), frame_at(root / redacted["file"])
        assert orig.shape == red.shape
        people = [d for d in YoloxDetector(model).detect(orig) if d.label == "person" and d.score > 0.5]
        assert people, "vtest shows people walking"
        for d in people:
            x1, y1, x2, y2 = (int(round(c)) for c in d.box)
            assert _mean_abs_diff(orig, red, (x1, y1, x2, y2)) > 8, d.box  # changed where a person is
        assert np.abs(orig[:40, :40].astype(int) - red[:40, :40].astype(int)).mean() < 6  # a corner: the same
        # The request is closed; the journal has the steps.
        show = json.loads(v.run("request", "show", number).stdout)
        assert show["state"] == "transferred" and show["transfer"]["target"] == "folder"
        assert show["transfer"]["url"] is None
        # Registers from the shell.
        v.run("request", "list", "--csv", str(tmp_path / "r.csv"), "--pdf", str(tmp_path / "r.pdf"))
        assert number in (tmp_path / "r.csv").read_text() and (tmp_path / "r.pdf").read_bytes()[:4] == b"%PDF"
        deadlines = json.loads(v.run("request", "deadlines", "--json").stdout)
        assert all(number not in json.dumps(deadlines[k]) for k in deadlines)  # answered: off the list
    finally:
        sim.stop()
