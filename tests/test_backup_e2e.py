"""Backup and restore end to end, on SQLite and on PostgreSQL (docs/design/backup.md).

A running Varta records a camera; a request is registered, resolved by a deputy mayor and
its package built and signed. `varta backup` runs while everything keeps recording. Then
the data folder (and the database) is lost; a damaged or altered archive is refused and
restores nothing; the real one is restored: `varta journal verify` passes, the package still
verifies against the same fingerprint (the key came back), accounts still sign in and the
server starts on the restored data.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import time

import httpx
import pyotp
import pytest
from conftest import have_ffmpeg, login_client

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not have_ffmpeg(), reason="needs ffmpeg")]

REMOTE = "127.0.0.3"  # outside the city's networks: the deputy mayor signs in remotely


def _iso(us: float) -> str:
    from zoneinfo import ZoneInfo

    from varta.clock import format_time

    return format_time(int(us), ZoneInfo("Europe/Kyiv"))


def _segments(v, cam):
    from sqlalchemy import text

    with v.engine().connect() as conn:
        return conn.execute(text("select start_us, end_us from segments where camera_id=:c order by start_us"),
                            {"c": cam}).all()


def _verify(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "varta.cli", "verify", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def _signed_package(v, tmp_path) -> tuple[str, "os.PathLike", str]:
    """A request registered, resolved and prepared: (fingerprint, package ZIP, its number)."""
    v.wait_for(lambda: len(_segments(v, "bk-1")) >= 4, 90, "segments")
    s = _segments(v, "bk-1")
    dept = v.api("olena.dept", "department")
    body = {"kind": "police", "incoming_no": "19/0001-2026", "incoming_date": _iso(time.time() * 1e6)[:10],
            "requester": "Мелітопольський РВП", "contact": "слідчий Бондар І. С.",
            "basis": "ст. 93 КПК України", "items": [{"camera_id": "bk-1", "from": _iso(s[1][0] + 300_000),
                                                       "to": _iso(s[2][1] - 300_000)}]}
    r = dept.post("/api/requests", json=body)
    assert r.status_code == 201, r.text
    req = r.json()
    password, secret = v.account("deputy.kovalenko", "deputy_mayor", totp=True)
    deputy = login_client(v.base_url, "deputy.kovalenko", password, otp=pyotp.TOTP(secret).now(),
                          local_address=REMOTE)
    r = deputy.post(f"/api/requests/{req['id']}/resolve", json={"decision": "approve", "text": "Погоджую"})
    assert r.status_code == 200, r.text
    job = dept.post(f"/api/requests/{req['id']}/prepare").json()
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.3)
        job = dept.get(f"/api/requests/jobs/{job['id']}").json()
    assert job["status"] == "done", job
    got = dept.get(f"/api/requests/{req['id']}/package")
    assert got.status_code == 200, got.text
    package = tmp_path / "package.zip"
    package.write_bytes(got.content)
    fingerprint = httpx.get(f"{v.base_url}/api/evidence/key").json()["fingerprint"]
    ok = _verify(package, "--fingerprint", fingerprint)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    return fingerprint, package, req["number"]


def _tampered(src, dest, member: str) -> None:
    """The same archive with one byte of ``member`` flipped (the manifest left as it was)."""
    with tarfile.open(src, "r:gz") as tin, tarfile.open(dest, "w:gz") as tout:
        for ti in tin.getmembers():
            data = tin.extractfile(ti).read() if ti.isfile() else None
            if ti.name == member:
                b = bytearray(data)
                b[len(b) // 2] ^= 0x01
                data = bytes(b)
            tout.addfile(ti, io.BytesIO(data) if data is not None else None)


def _wipe_postgres(url: str) -> None:
    """Lose the database: every table and function gone (the schema stays, empty)."""
    import sqlalchemy as sa

    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with eng.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    eng.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_backup_while_running_then_restore_after_losing_everything(kind, varta, camsim, tmp_path, request):
    db_url = request.getfixturevalue("postgres_url") if kind == "postgresql" else None
    v = varta(db_url, onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32")
    (v.home).mkdir(parents=True, exist_ok=True)
    (v.home / "varta.toml").write_text('instance_name = "Varta Test City"\n')
    v.run("camera", "add", "bk-1", "--url", camsim.url("gen2"), "--name", "Площа Перемоги")
    v.start()
    fingerprint, package, number = _signed_package(v, tmp_path)
    dept_password = v._passwords["olena.dept"]

    # The backup, while the camera records and the server serves.
    archive = tmp_path / "varta-backup.tar.gz"
    before = len(_segments(v, "bk-1"))
    res = v.run("backup", "--out", str(archive))
    assert "backup written" in res.stdout, res.stdout
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    v.wait_for(lambda: len(_segments(v, "bk-1")) > before + 1, 30, "recording to go on during and after the backup")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names[0] == "manifest.json" and "keys/instance_ed25519.pem" in names and "varta.toml" in names
    assert not any(n.startswith("recordings/") or n.endswith(".mp4") for n in names)  # never video
    assert ("database/varta.sqlite3" in names) == (kind == "sqlite")
    assert archive.read_bytes() != b"" and v.run("backup", "--out", str(archive), check=False).returncode == 2

    # Everything is lost.
    v.stop()
    if v._engine is not None:
        v._engine.dispose()
        v._engine = None
    shutil.rmtree(v.home)
    if kind == "postgresql":
        _wipe_postgres(db_url)

    # A damaged or altered archive is refused, naming what is wrong, and restores nothing.
    bad = tmp_path / "altered.tar.gz"
    key_member = "keys/instance_ed25519.pem"
    _tampered(archive, bad, key_member)
    res = v.run("restore", str(bad), check=False)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "damaged or was altered" in res.stderr and key_member in res.stderr and "nothing was restored" in res.stderr
    broken = tmp_path / "truncated.tar.gz"
    broken.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    res = v.run("restore", str(broken), check=False)
    assert res.returncode == 2 and "not a readable backup archive" in res.stderr, res.stderr
    assert not (v.home / "keys").exists() and not (v.home / "varta.db").exists()

    # The real one.
    res = v.run("restore", str(archive), timeout=300)
    assert "journal intact" in res.stdout and fingerprint in res.stdout, res.stdout + res.stderr
    keys = v.home / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in keys.iterdir())
    assert (v.home / "varta.toml").read_text() == 'instance_name = "Varta Test City"\n'
    # A second restore over it is refused: the target is no longer empty.
    res = v.run("restore", str(archive), check=False)
    assert res.returncode == 2 and "not empty" in res.stderr and "--force" in res.stderr, res.stderr

    ver = v.run("journal", "verify")
    assert ver.stdout.startswith("journal intact"), ver.stdout
    ok = _verify(package, "--fingerprint", fingerprint)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # The server starts on what came back: same key, same accounts, same request.
    v.start()
    assert httpx.get(f"{v.base_url}/api/evidence/key").json()["fingerprint"] == fingerprint
    dept = login_client(v.base_url, "olena.dept", dept_password)
    req = dept.get(f"/api/requests/{number}").json()
    assert req["state"] == "prepared" and req["package"]["fingerprint"] == fingerprint
    lines = dept.get("/api/journal", params={"action": "system.maintain", "limit": 100}).json()["lines"]
    assert any("restored from backup" in ln["detail"] for ln in lines), lines
    v.stop()
    assert v.run("journal", "verify").stdout.startswith("journal intact")


def test_restore_refuses_a_newer_schema_and_a_foreign_file(varta, tmp_path):
    """No camera needed: a backup of an empty installation, its manifest claiming a schema
    this code does not know (the archive rebuilt with matching sums) — refused by name."""
    import hashlib
    import json

    v = varta()
    v.run("db-upgrade")
    archive = tmp_path / "b.tar.gz"
    v.run("backup", "--out", str(archive))
    newer = tmp_path / "newer.tar.gz"
    with tarfile.open(archive) as tin, tarfile.open(newer, "w:gz") as tout:
        for ti in tin.getmembers():
            data = tin.extractfile(ti).read()
            if ti.name == "manifest.json":
                m = json.loads(data)
                m["database"]["revision"] = "9999_from_the_future"
                data = json.dumps(m).encode()
                ti.size = len(data)
            tout.addfile(ti, io.BytesIO(data))
    shutil.rmtree(v.home)
    res = v.run("restore", str(newer), check=False)
    assert res.returncode == 2 and "newer than this version of Varta" in res.stderr, res.stderr
    foreign = tmp_path / "photos.tar.gz"
    foreign.write_bytes(gzip.compress(b"not a tar at all"))
    res = v.run("restore", str(foreign), check=False)
    assert res.returncode == 2 and "not a readable backup archive" in res.stderr, res.stderr
    assert hashlib.sha256(archive.read_bytes()).hexdigest()  # the original is untouched
    v.run("restore", str(archive))
    assert v.run("journal", "verify").stdout.startswith("journal intact")
