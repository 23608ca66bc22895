"""Secrets at rest (issue 19): a copied database alone reveals no TOTP secret, camera
password or ONVIF password; the running system still uses them; `varta secrets rotate`
re-seals everything under a new key without a pause; values written before this version are
sealed at the next start.

A real Varta records a real RTSP camera whose address carries credentials; a remote account
signs in with its second factor; the database file is then copied and grepped.
"""

from __future__ import annotations

import base64
import shutil
import sqlite3

import pyotp
import pytest

from conftest import VartaHome, have_ffmpeg, login_client, wait_until

CAM_PASSWORD = "Cam-Pa55-7Qx"
ONVIF_PASSWORD = "Onvif-Secret-91z"


def _copy(v: VartaHome, dest) -> bytes:
    """The database as someone walking off with it would have it (an online backup copy)."""
    src = sqlite3.connect(v.home / "varta.db")
    out = sqlite3.connect(dest)
    src.backup(out)
    src.close()
    out.close()
    return dest.read_bytes()


def _onvif_row(camera_id: str) -> dict:
    return {"camera_id": camera_id, "xaddr": "http://127.0.0.1:9/onvif/device_service", "username": "admin",
            "password": ONVIF_PASSWORD, "main_profile": "Profile_1", "main_uri": "rtsp://127.0.0.1:9/none",
            "profiles": [], "ptz": False, "events": False}


@pytest.mark.e2e
@pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg not installed")
def test_a_copied_database_reveals_no_secret_and_rotation_keeps_everything_working(camsim, tmp_path):
    from varta.db.engine import open_database
    from varta.onvif.store import OnvifStore
    from varta.secrets.box import SecretsError

    v = VartaHome(tmp_path / "s", onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32")
    v.start()
    try:
        url = camsim.url("gen1").replace("rtsp://", f"rtsp://cam-user:{CAM_PASSWORD}@")
        v.run("camera", "add", "mel-s1", "--url", url, "--group", "centre")
        password, totp = v.account("mayor.s", "mayor", totp=True)
        OnvifStore(v.engine()).add(_onvif_row("mel-s1"))
        v.wait_for(lambda: v.status("mel-s1")["state"] == "recording", 60, "recording with the sealed address")

        raw = _copy(v, tmp_path / "copied.db")
        for secret in (CAM_PASSWORD, ONVIF_PASSWORD, totp):  # (the user name is shown, as in the journal)
            assert secret.encode() not in raw, f"{secret!r} lies in clear in the database file"
            assert base64.b64encode(secret.encode()) not in raw
        # The database alone (another machine, no keys folder): every secret stays shut.
        stolen = open_database(f"sqlite:///{tmp_path / 'copied.db'}", migrate=False, keys_dir=tmp_path / "no-keys")
        from varta.cameras.registry import CameraRegistry

        with pytest.raises(SecretsError, match="does not hold"):
            CameraRegistry(stolen).get("mel-s1")
        with pytest.raises(SecretsError):
            OnvifStore(stolen).get("mel-s1", with_secrets=True)
        from varta.access.accounts import Accounts

        with pytest.raises(SecretsError):
            Accounts(stolen).totp_secret("mayor.s")
        stolen.dispose()
        # What the secrets key seals is reported without showing a secret.
        before = v.json("secrets", "status", "--json")
        assert before["columns"]["cameras.main_url"] == {before["current"]: 1}
        assert before["columns"]["users.totp_secret"] == {before["current"]: 1}
        assert before["columns"]["onvif_devices.password"] == {before["current"]: 1}
        assert (v.home / "keys" / "secrets.json").stat().st_mode & 0o077 == 0

        # Rotation: a new key, every value re-sealed; the running node still signs in with
        # the second factor and records; the old key retires.
        out = v.run("secrets", "rotate").stdout
        after = v.json("secrets", "status", "--json")
        assert after["current"] != before["current"] and "values re-sealed" in out
        for col, by in after["columns"].items():
            assert set(by) <= {after["current"]}, (col, by)
        c = login_client(v.base_url, "mayor.s", password, otp=pyotp.TOTP(totp).now(), local_address="127.0.0.3")
        assert c.me["stage"] == "full"
        # The old key is kept until every process can have read the new one.
        early = v.run("secrets", "retire", check=False)
        assert early.returncode != 0 and "run retire again in" in early.stdout + early.stderr
        retired = wait_until(lambda: (r := v.run("secrets", "retire", check=False)).returncode == 0 and r.stdout,
                             40, "retire allowed", interval=2)
        assert retired.strip() == f"retired: {before['current']}"
        assert v.json("secrets", "status", "--json")["held"] == [after["current"]]
        v.stop()
        v.start()
        v.wait_for(lambda: v.status("mel-s1")["state"] == "recording", 60, "recording after rotation and restart")
        assert OnvifStore(v.engine()).get("mel-s1", with_secrets=True)["password"] == ONVIF_PASSWORD
        journal = [ln["detail"] for ln in v.api("aud", "department").get(
            "/api/journal", params={"action": "system.maintain", "object": "secrets"}).json()["lines"]]
        assert any("secrets key rotated" in d for d in journal) and any("retired" in d for d in journal)
    finally:
        v.stop()


@pytest.mark.e2e
def test_values_written_before_sealing_are_sealed_at_the_next_start(tmp_path):
    """An upgrade: a database from before this version holds a camera address and a TOTP
    secret in clear; the first start seals them, and they still work."""
    v = VartaHome(tmp_path / "u")
    v.run("camera", "add", "mel-old", "--url", f"rtsp://old:{CAM_PASSWORD}@127.0.0.1:9/x", "--schedule", "off")
    eng = v.engine()
    from sqlalchemy import text

    with eng.begin() as conn:  # as an older version wrote them
        conn.execute(text("UPDATE cameras SET main_url = :u WHERE id = 'mel-old'"),
                     {"u": f"rtsp://old:{CAM_PASSWORD}@127.0.0.1:9/x"})
    assert CAM_PASSWORD.encode() in _copy(v, tmp_path / "before.db")
    v.start()
    try:
        wait_until(lambda: v.json("secrets", "status", "--json")["columns"]["cameras.main_url"].get("(in clear)") is None,
                   30, "the old address sealed")
        raw = _copy(v, tmp_path / "after.db")
        assert CAM_PASSWORD.encode() not in raw
        listed = v.json("camera", "list", "--json")
        assert listed[0]["main_url"] == "rtsp://old:***@127.0.0.1:9/x", listed
    finally:
        v.stop()


def test_keys_from_the_environment_and_a_damaged_value(engine, tmp_path, monkeypatch):
    """VARTA_SECRETS_KEY (the operator keeps the key): values seal under it, the keys folder
    gets no keyring, a rotation is the new key put first; a value altered in the database
    or moved to another column does not open."""
    from sqlalchemy import text

    from varta.cameras.model import Camera
    from varta.cameras.registry import CameraRegistry
    from varta.secrets import vault
    from varta.secrets.box import Keyring, SecretsError, new_key

    k1, k2 = new_key(), new_key()
    env = {vault.ENV: base64.b64encode(k1).decode()}
    v = vault.attach(engine, vault.Vault(engine, tmp_path / "keys-env", environ=env))
    reg = CameraRegistry(engine)
    reg.add(Camera(id="mel-e", main_url=f"rtsp://u:{CAM_PASSWORD}@10.0.0.5/s"))
    assert reg.get("mel-e").main_url.endswith("10.0.0.5/s")
    assert not (tmp_path / "keys-env" / vault.FILE).exists()
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT main_url FROM cameras WHERE id = 'mel-e'")).scalar()
    assert stored.startswith("vs1:") and CAM_PASSWORD not in stored
    assert Keyring.of(k1).open(stored, "cameras.url").startswith("rtsp://u:")
    with pytest.raises(SecretsError, match="belongs elsewhere"):
        Keyring.of(k1).open(stored, "users.totp_secret")  # moved to another column: refused
    tampered = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
    with pytest.raises(SecretsError):
        Keyring.of(k1).open(tampered, "cameras.url")
    # Rotation with the operator's keys: the new one first, the old one after it.
    env[vault.ENV] = f"{base64.b64encode(k2).decode()},{base64.b64encode(k1).decode()}"
    v.ring(fresh=True)
    out = vault.rotate(engine)
    assert out["resealed"] == {"cameras.main_url": 1}
    env[vault.ENV] = base64.b64encode(k2).decode()  # the old key dropped
    v.ring(fresh=True)
    assert reg.get("mel-e").main_url == f"rtsp://u:{CAM_PASSWORD}@10.0.0.5/s"
    env[vault.ENV] = "not base64!"
    with pytest.raises(SecretsError, match="not base64"):
        v.ring(fresh=True)
    shutil.rmtree(tmp_path / "keys-env", ignore_errors=True)


@pytest.mark.e2e
def test_a_sealed_storage_secret_in_the_settings_file(tmp_path):
    """The storage and webhook secrets live in varta.toml or the environment, not in the
    database; sealed with `varta secrets seal-setting`, a copied settings file reveals them
    no more than a copied database does, and Varta opens them at start."""
    import subprocess
    import sys

    v = VartaHome(tmp_path / "t")
    secret = "s3-Secret-Key-8fQ2"
    out = subprocess.run([sys.executable, "-m", "varta.cli", "secrets", "seal-setting", "archive_s3_secret_key"],
                         input=secret + "\n", env=v.env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    sealed = out.stdout.strip().splitlines()[-1]
    assert sealed.startswith("vs1:") and secret not in out.stdout + out.stderr
    bad = subprocess.run([sys.executable, "-m", "varta.cli", "secrets", "seal-setting", "node_name"], input="x\n",
                         env=v.env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "not a secret setting" in bad.stdout + bad.stderr
    (v.home / "varta.toml").write_text(f'archive_s3_secret_key = "{sealed}"\n')
    assert secret not in (v.home / "varta.toml").read_text()
    probe = ("from varta.config import load_settings; s = load_settings(); "
             "print(s.archive_s3_secret_key == %r)" % secret)
    opened = subprocess.run([sys.executable, "-c", probe], env=v.env, capture_output=True, text=True, timeout=120)
    assert opened.stdout.strip() == "True", opened.stderr
    # A value sealed for one setting does not open as another (the purpose is bound), and
    # the refusal shows no setting's value.
    env = {**v.env, "VARTA_S3_SECRET_KEY": "clear-secret-in-env-3x"}
    (v.home / "varta.toml").write_text(f'archive_s3_secret_key = "{sealed}"\nalarm_webhook_secret = "{sealed}"\n')
    wrong = subprocess.run([sys.executable, "-c", "from varta.config import load_settings; load_settings()"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert wrong.returncode != 0 and "alarm_webhook_secret" in wrong.stderr and "belongs elsewhere" in wrong.stderr
    assert "clear-secret-in-env-3x" not in wrong.stderr and sealed not in wrong.stderr
    (v.home / "varta.toml").write_text(f'archive_s3_secret_key = "{sealed}"\n')
    status = v.json("secrets", "status", "--json")
    assert status["columns"]["setting archive_s3_secret_key"] == {status["current"]: 1}
    # The settings file without the keys folder: refused in words, never the clear value.
    shutil.move(str(v.home / "keys"), str(tmp_path / "keys-away"))
    gone = subprocess.run([sys.executable, "-c", "from varta.config import load_settings; load_settings()"],
                          env=v.env, capture_output=True, text=True, timeout=120)
    assert gone.returncode != 0 and "does not hold" in gone.stderr and secret not in gone.stderr
