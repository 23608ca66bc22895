"""End to end over HTTP, with real recordings, a real S3-compatible server and `varta verify`:

an investigator's request is registered → its intervals are held → retention over aged
footage keeps them → the department cannot resolve it, a deputy mayor can → the package is
built by stream copy → uploaded to S3 → the presigned link downloads the same bytes →
`varta verify` passes; one flipped byte in an MP4 or the manifest fails and names the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import time
import zipfile

import httpx
import pyotp
import pytest
from conftest import have_ffmpeg, login_client

from s3server import ACCESS_KEY, SECRET_KEY, s3_server  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not have_ffmpeg(), reason="needs ffmpeg")]

AGE_US = 11 * 86_400 * 1_000_000  # past the 10-day retention
ZONE, REMOTE = "127.0.0.1", "127.0.0.3"  # the restricted zone (on site) and somewhere outside


def _segments(v, cam):
    with v.engine().connect() as conn:
        from sqlalchemy import text

        return conn.execute(text("select id, path, start_us, end_us from segments where camera_id=:c "
                                 "order by start_us"), {"c": cam}).all()


def _iso(us, tz="Europe/Kyiv"):
    from zoneinfo import ZoneInfo

    from varta.clock import format_time

    return format_time(us, ZoneInfo(tz))


def _leader(v, login, role):
    password, secret = v.account(login, role, totp=True)
    return login_client(v.base_url, login, password, otp=pyotp.TOTP(secret).now(), local_address=REMOTE)


def _wait_job(c, job, timeout=120):
    deadline = time.monotonic() + timeout
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.3)
        job = c.get(f"/api/requests/jobs/{job['id']}").json()
    return job


def _verify(*args):
    return subprocess.run([sys.executable, "-m", "varta.cli", "verify", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_request_hold_resolve_package_upload_verify(varta, camsim, s3_server, tmp_path):  # noqa: F811
    v = varta(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32",
              s3_endpoint_url=s3_server.endpoint_url, s3_bucket="city-evidence", s3_access_key=ACCESS_KEY,
              s3_secret_key=SECRET_KEY, s3_part_size_mb=5)
    v.run("camera", "add", "mel-0012", "--url", camsim.url("gen2"), "--name", "Площа Перемоги")
    v.run("camera", "add", "mel-0013", "--url", camsim.url("gen3"))
    v.start()
    v.wait_for(lambda: len(_segments(v, "mel-0012")) >= 5 and len(_segments(v, "mel-0013")) >= 5, 90, "segments")
    segs = {cam: _segments(v, cam)[:5] for cam in ("mel-0012", "mel-0013")}

    # The footage the investigator asks for will be 11 days old when retention looks at it:
    # ask for segments 1–3 of each camera at their aged times.
    def aged(cam, i, edge):
        return segs[cam][i][edge] - AGE_US

    items = [{"camera_id": cam, "from": _iso(aged(cam, 1, 2) + 300_000), "to": _iso(aged(cam, 3, 3) - 300_000)}
             for cam in segs]
    dept = v.api("olena.dept", "department")  # on site, restricted zone
    body = {"kind": "police", "incoming_no": "12/3456-2026", "incoming_date": _iso(time.time() * 1e6)[:10],
            "requester": "Мелітопольський РВП ГУНП в Запорізькій області", "contact": "слідчий Бондар І. С.",
            "basis": "ст. 93 КПК України; кримінальне провадження № 12026080000000123", "items": items}
    r = dept.post("/api/requests", json=body)
    assert r.status_code == 201, r.text
    req = r.json()
    assert req["state"] == "registered" and req["number"].startswith("REQ-")
    hold = dept.get(f"/api/holds/{req['hold_id']}").json()
    assert hold["active"] and hold["kind"] == "request"
    assert {i["camera_id"] for i in hold["intervals"]} == {"mel-0012", "mel-0013"}

    # Age the first five segments of each camera by 11 days; the janitor (every 5 s here)
    # must delete the unheld ones (0 and 4) and keep the held ones (1–3).
    with v.engine().begin() as conn:
        from sqlalchemy import text

        ids = [s[0] for cam in segs for s in segs[cam]]
        conn.execute(text(f"update segments set start_us = start_us - {AGE_US}, end_us = end_us - {AGE_US} "
                          f"where id in ({','.join(map(str, ids))})"))
    kept = {s[0] for cam in segs for s in segs[cam][1:4]}
    doomed = {s[0] for cam in segs for s in (segs[cam][0], segs[cam][4])}

    def left():
        return {s[0] for cam in segs for s in _segments(v, cam)} & set(ids)
    v.wait_for(lambda: not (left() & doomed), 60, "retention to delete the unheld aged segments")
    assert left() == kept
    for cam in segs:
        for s in segs[cam][1:4]:
            assert (v.home / "recordings" / cam / s[1]).is_file()

    # Resolution: not the department's (A4.10); a deputy mayor's, from outside, with TOTP.
    r = dept.post(f"/api/requests/{req['id']}/resolve", json={"decision": "approve", "text": "Погоджую"})
    assert r.status_code == 403
    deputy = _leader(v, "deputy.kovalenko", "deputy_mayor")
    r = deputy.post(f"/api/requests/{req['number']}/resolve",
                    json={"decision": "approve", "text": "Погоджую. Підготувати у встановлений строк."})
    assert r.status_code == 200, r.text
    req = r.json()
    assert req["state"] == "approved" and req["resolution"]["by"] == "deputy.kovalenko"
    assert req["due_date"] > req["resolution"]["date"] and req["working_days_left"] == 5
    # A deputy may not decide a third party's request (A4.8: the mayor only).
    third = dept.post("/api/requests", json={**body, "kind": "third_party", "requester": "ПрАТ СК «Страховик»",
                                             "basis": "страховий випадок: пошкодження авто"}).json()
    r = deputy.post(f"/api/requests/{third['id']}/resolve", json={"decision": "approve", "text": "так"})
    assert r.status_code == 403 and "mayor only" in r.json()["detail"]
    mayor = _leader(v, "mayor.ivanenko", "mayor")
    r = mayor.post(f"/api/requests/{third['id']}/resolve", json={"decision": "refuse", "text": "Підстав немає"})
    assert r.status_code == 200 and r.json()["state"] == "refused"
    assert dept.get(f"/api/holds/{third['hold_id']}").json()["active"] is False  # a closed request lets go

    # The package: built in the restricted zone, by stream copy, signed.
    job = dept.post(f"/api/requests/{req['id']}/prepare").json()
    job = _wait_job(dept, job)
    assert job["status"] == "done", job["error"]
    req = dept.get(f"/api/requests/{req['id']}").json()
    assert req["state"] == "prepared"
    fingerprint = httpx.get(f"{v.base_url}/api/evidence/key").json()["fingerprint"]
    assert req["package"]["fingerprint"] == fingerprint

    # Transfer to S3; the link works for anyone who has it, for a limited time.
    job = _wait_job(dept, dept.post(f"/api/requests/{req['id']}/transfer").json())
    assert job["status"] == "done", job["error"]
    req = dept.get(f"/api/requests/{req['id']}").json()
    assert req["state"] == "transferred" and req["closed"]
    tr = req["transfer"]
    assert tr["target"] == "s3" and tr["location"].startswith("s3://city-evidence/") and tr["expires"]
    got = httpx.get(tr["url"], timeout=60)
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == req["package"]["sha256"]

    # The request's hold is released now that it is closed (no other hold covers the footage).
    assert dept.get(f"/api/holds/{req['hold_id']}").json()["active"] is False

    # What the court does: verify the downloaded package offline against the published key.
    zpath = tmp_path / "package.zip"
    zpath.write_bytes(got.content)
    ok = _verify(zpath, "--fingerprint", fingerprint)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    with zipfile.ZipFile(zpath) as z:
        names = z.namelist()
        manifest = json.loads(z.read(next(n for n in names if n.endswith("/manifest.json"))))
    assert manifest["request"]["number"] == req["number"]
    assert manifest["request"]["resolution"]["by"] == "Test Deputy.Kovalenko User"
    assert {i["camera_id"] for i in manifest["items"]} == {"mel-0012", "mel-0013"}
    for item in manifest["items"]:
        assert len(item["source_segments"]) == 3  # segments 1–3: exactly what was held
        assert item["duration_s"] > 0
    # One flipped byte in an MP4, then in the manifest: verify fails and names the file.
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(zpath) as z:
        z.extractall(folder)
    root = next(folder.iterdir())
    video = sorted((root / "video").iterdir())[0]
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0x01
    video.write_bytes(bytes(data))
    bad = _verify(root, "--fingerprint", fingerprint)
    assert bad.returncode == 1 and video.name in bad.stdout, bad.stdout
    data[len(data) // 2] ^= 0x01
    video.write_bytes(bytes(data))
    assert _verify(root, "--fingerprint", fingerprint).returncode == 0
    m = bytearray((root / "manifest.json").read_bytes())
    m[m.index(b"12/3456-2026")] = ord("7")
    (root / "manifest.json").write_bytes(bytes(m))
    bad = _verify(root, "--fingerprint", fingerprint)
    assert bad.returncode == 1 and "manifest.json" in bad.stdout, bad.stdout

    # Every step is in the access journal, with who did it.
    lines = dept.get("/api/journal", params={"action": "request.*", "limit": 1000}).json()["lines"]
    steps = [(ln["action"], ln["account"], ln["result"]) for ln in lines
             if ln["object"] == f"request:{req['number']}" or ln["result"] == "refused"]
    for step in (("request.register", "olena.dept", "ok"), ("request.resolve", "olena.dept", "refused"),
                 ("request.resolve", "deputy.kovalenko", "ok"), ("request.prepare", "olena.dept", "ok"),
                 ("request.transfer", "olena.dept", "ok")):
        assert step in steps, (step, steps)

    # The register as CSV and PDF.
    csv_text = dept.get("/api/requests", params={"format": "csv"}).text
    assert req["number"] in csv_text and "third_party" in csv_text
    pdf = dept.get("/api/requests", params={"format": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    with zipfile.ZipFile(io.BytesIO(got.content)) as z:
        assert z.testzip() is None
