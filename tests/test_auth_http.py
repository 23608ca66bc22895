"""Signing in against a running Varta: one-time passwords, lockout, the second factor for
remote sessions, CSRF, session expiry, sign-out everywhere, disabled accounts, and the
commands on the server's shell (direct access, journaled)."""

from __future__ import annotations

import csv
import io
import re
import time

import httpx
import pyotp
import pytest

from conftest import VartaHome, login_client

REMOTE = "127.0.0.3"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    v = VartaHome(tmp_path_factory.mktemp("auth"), onsite_networks="127.0.0.1/32",
                  restricted_workstations="127.0.0.1/32", session_idle_s=3, session_max_s=10)
    v.start()
    yield v
    v.stop()


def _client(v, source: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=v.base_url, timeout=30,
                        transport=httpx.HTTPTransport(local_address=source) if source else None)


def journal(v: VartaHome, **params) -> list[dict]:
    with v.api("auditor", "department") as c:
        return c.get("/api/journal", params={"limit": 100000, **params}).json()["lines"]


def test_first_sign_in_with_the_printed_one_time_password_must_change_it(server):
    out = server.run("user", "add", "shevchenko", "--full-name", "Шевченко Олена Петрівна", "--role", "department",
                     "--position", "головний спеціаліст", "--organisation", "Відділ відеоспостереження").stdout
    password = re.search(r"one-time password: (\S+)", out).group(1)
    c = login_client(server.base_url, "shevchenko", password)
    assert c.me["stage"] == "password" and c.me["allowed_actions"] == []
    with c:
        r = c.get("/api/cameras")
        assert r.status_code == 403 and r.json()["detail"]["code"] == "password"
        assert c.post("/api/auth/password", json={"current_password": password,
                                                  "new_password": "short"}).status_code == 400
        r = c.post("/api/auth/password", json={"current_password": password, "new_password": "Kalyna-Dnipro-2026"})
        assert r.status_code == 200 and r.json()["stage"] == "full"
        assert c.get("/api/cameras").status_code == 200
    assert login_client(server.base_url, "shevchenko", password, expect=401)
    login_client(server.base_url, "shevchenko", "Kalyna-Dnipro-2026")


def test_cookies_are_httponly_secure_samesite(server):
    password, _ = server.account("cookie.user", "department")
    with _client(server) as c:
        r = c.post("/api/auth/login", json={"login": "cookie.user", "password": password})
    cookies = {h.split("=", 1)[0]: h.lower() for h in r.headers.get_list("set-cookie")}
    assert "httponly" in cookies["varta_session"] and "secure" in cookies["varta_session"]
    assert "samesite=strict" in cookies["varta_session"]
    assert "httponly" not in cookies["varta_csrf"]  # the console's script must read it
    assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"


def test_progressive_lockout_after_failed_attempts(server):
    password, _ = server.account("lock.me", "department")
    for i in range(5):
        assert login_client(server.base_url, "lock.me", f"wrong-{i}", expect=401).me["code"] == "bad_credentials"
    # Locked now: even the right password is refused, and says until when.
    r = login_client(server.base_url, "lock.me", password, expect=429)
    assert r.me["code"] == "locked" and "locked until" in r.me["detail"]
    # ...in the city's time, as every other time a person reads (stored in UTC).
    from datetime import datetime
    from zoneinfo import ZoneInfo

    kyiv = datetime.now(ZoneInfo("Europe/Kyiv")).isoformat()[-6:]  # "+02:00" in winter, "+03:00" in summer
    assert r.me["detail"].endswith(kyiv), r.me["detail"]
    lines = journal(server, account="lock.me", action="session.login")
    assert [ln["result"] for ln in lines] == ["failed"] * 5 + ["refused"]
    assert "locked until" in lines[4]["detail"] and "failure 5" in lines[4]["detail"]
    # Unknown logins fail the same way (nothing tells an attacker which logins exist).
    r = login_client(server.base_url, "no.such.user", "whatever-password", expect=401)
    assert r.me["detail"] == "wrong login or password"


def test_remote_sessions_need_a_second_factor_with_enrolment(server):
    password, _ = server.account("deputy.remote", "deputy_mayor")
    # Remote, no second factor yet: the session can only enrol one.
    c = login_client(server.base_url, "deputy.remote", password, local_address=REMOTE)
    assert c.me["access"] == "remote" and c.me["stage"] == "totp_enrol"
    with c:
        r = c.get("/api/cameras")
        assert r.status_code == 403 and r.json()["detail"]["code"] == "totp_enrol"
        setup = c.post("/api/auth/totp/setup").json()
        assert setup["otpauth_uri"].startswith("otpauth://totp/") and "<svg" in setup["qr_svg"]
        secret = setup["secret"]
        assert c.post("/api/auth/totp/confirm", json={"secret": secret, "otp": "000000"}).status_code == 400
        # What a fuzzer sent (issue 19): a clear 422, never a server error.
        assert c.post("/api/auth/totp/confirm", json={"secret": secret, "otp": "123456789012345"}).status_code == 422
        assert c.post("/api/auth/totp/confirm", json={"secret": "not base32 at all!!", "otp": "123456"}).status_code == 422
        used = pyotp.TOTP(secret).now()
        assert c.post("/api/auth/totp/confirm", json={"secret": secret, "otp": used}).status_code == 200
        assert c.get("/api/cameras").status_code == 200
    # From now on remote sign-in asks for the code; a wrong or replayed code is refused.
    assert login_client(server.base_url, "deputy.remote", password, local_address=REMOTE,
                        expect=401).me["code"] == "otp_required"
    assert login_client(server.base_url, "deputy.remote", password, otp="123456", local_address=REMOTE,
                        expect=401).me["code"] == "otp_invalid"
    assert login_client(server.base_url, "deputy.remote", password, otp=used, local_address=REMOTE,
                        expect=401).me["code"] == "otp_invalid"
    fresh = pyotp.TOTP(secret).at(time.time() + 30)  # the next step: within the allowed drift
    c = login_client(server.base_url, "deputy.remote", password, otp=fresh, local_address=REMOTE)
    assert c.me["stage"] == "full" and c.me["totp_enabled"]


def test_csrf_token_and_origin_are_required_for_changes(server):
    c = server.api("clerk", "department")
    body = {"person": "Коваль Андрій", "purpose": "огляд", "let_in_by": "Шевченко О. П.", "entered": "now"}
    with c:
        token = c.headers.pop("X-CSRF-Token")
        r = c.post("/api/journal/cabinet", json=body)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
        r = c.post("/api/journal/cabinet", json=body, headers={"X-CSRF-Token": token, "Origin": "https://evil.example"})
        assert r.status_code == 403 and "cross-site" in r.json()["detail"]
        assert c.post("/api/journal/cabinet", json=body, headers={"X-CSRF-Token": token}).status_code == 201
    line = journal(server, action="journal.cabinet")[-1]
    assert line["account"] == "clerk" and "Коваль Андрій" in line["detail"]


def test_sessions_expire_when_idle_and_at_their_maximum_length(server):
    with server.api("idle.user", "department") as idle:
        assert idle.get("/api/auth/me").status_code == 200
        time.sleep(3.5)  # idle limit 3 s in this server
        r = idle.get("/api/auth/me")
        assert r.status_code == 401 and "inactivity" in r.json()["detail"]
    # A session in use still ends at its absolute limit (10 s here).
    with server.api("busy.user", "department") as busy:
        started = time.monotonic()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (r := busy.get("/api/auth/me")).status_code == 200:
            time.sleep(1)
        assert r.status_code == 401 and "maximum length" in r.json()["detail"]
        assert time.monotonic() - started >= 8  # not before its time (busy sessions are not cut short)


def test_sign_out_everywhere_and_disabled_accounts(server):
    a, b = server.api("two.places", "department"), server.api("two.places", "department")
    with a, b:
        assert a.post("/api/auth/logout", json={"everywhere": True}).json()["ended"] == 2
        assert a.get("/api/auth/me").status_code == 401 and b.get("/api/auth/me").status_code == 401
    user = server.api("leaving.user", "department")
    admin = server.api("boss.admin", "admin")
    with user, admin:
        assert user.get("/api/auth/me").status_code == 200
        assert admin.patch("/api/users/leaving.user", json={"active": False}).status_code == 200
        assert user.get("/api/auth/me").status_code == 401  # at once, not at the next sign-in
    password = server._passwords["leaving.user"]
    assert login_client(server.base_url, "leaving.user", password, expect=403).me["code"] == "disabled"
    lines = journal(server, account="boss.admin", action="user.manage")
    assert any(ln["object"] == "user:leaving.user" and "active True → False" in ln["detail"] for ln in lines)


def test_commands_on_the_server_are_direct_access_checked_and_journaled(server, tmp_path):
    server.account("mayor.console", "mayor")
    server.account("olena", "department")
    # A mayor has no direct access (A4.3): refused, exit 3, and journaled.
    r = server.run("--as", "mayor.console", "export", "--camera", "x", "--from", "now-1h", "--to", "now",
                   "--out", str(tmp_path / "x.mp4"), check=False)
    assert r.returncode in (2, 3)
    r = server.run("--as", "mayor.console", "journal", "verify", check=False)
    assert r.returncode == 3 and "refused" in r.stderr
    r = server.run("--as", "olena", "journal", "cabinet", "--person", "Коваль Андрій Іванович",
                   "--purpose", "заміна диска", "--let-in-by", "Шевченко Олена Петрівна")
    assert "journal line" in r.stdout
    server.run("--as", "olena", "journal", "export", "--from", "now-1h", "--to", "now+1m", "--format", "csv",
               "--out", str(tmp_path / "j.csv"))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "j.csv").read_text())))
    mine = [r for r in rows if r["account"] == "mayor.console"]
    assert mine and all(r["access"] == "direct" and r["result"] == "refused" for r in mine)
    assert any(r["action"] == "journal.cabinet" and r["account"] == "olena" and r["source"].startswith("console:")
               for r in rows)
    server.run("--as", "olena", "journal", "export", "--from", "now-1h", "--to", "now+1m", "--format", "pdf",
               "--out", str(tmp_path / "j.pdf"))
    pdf = (tmp_path / "j.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 2000
    out = server.run("journal", "verify").stdout
    assert "journal intact" in out


@pytest.mark.e2e
def test_who_viewed_a_camera(server, camsim):
    """A live snapshot from a real RTSP camera is a viewing; the report lists who, when, how often."""
    server.run("camera", "add", "mel-v", "--url", camsim.url("gen1"), "--schedule", "off")
    with server.api("viewer.one", "department") as c:
        for _ in range(2):
            r = c.get("/api/cameras/mel-v/snapshot.jpg", params={"width": 320})
            assert r.status_code == 200 and r.content.startswith(b"\xff\xd8"), r.text
    with server.api("auditor", "department") as c:
        rep = c.get("/api/journal/viewers", params={"camera": "mel-v", "from": "now-1h", "to": "now+1m"}).json()
    assert [(v["account"], v["action"], v["times"]) for v in rep["viewers"]] == [("viewer.one", "live.view", 2)]
    assert rep["viewers"][0]["full_name"] == "Test Viewer.One User"
