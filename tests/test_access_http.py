"""Every role × every action over HTTP against a running Varta, from three kinds of place:

* ``zone``   — 127.0.0.1, an on-site restricted-zone workstation (A4.5),
* ``onsite`` — 127.0.0.2, on site (direct access) but not in the restricted zone,
* ``remote`` — 127.0.0.3, anywhere else.

The expected answers are the order's (A4.3, A4.4, A4.5, C4, R11) restated here, not read
from the code; every refusal must be in the journal.
"""

from __future__ import annotations

import time

import pyotp
import pytest

from conftest import VartaHome, login_client

ZONE, ONSITE, REMOTE = "zone", "onsite", "remote"
SOURCES = {ZONE: "127.0.0.1", ONSITE: "127.0.0.2", REMOTE: "127.0.0.3"}
ROLES = ("mayor", "first_deputy", "deputy_mayor", "department", "contractor", "police", "admin")
LEADERS = {"mayor", "first_deputy", "deputy_mayor"}
REMOTE_OK = LEADERS | {"department", "police"}  # A4.3
DIRECT_OK = {"department", "contractor"}  # A4.3
ARCHIVE = DIRECT_OK  # A4.4
ALL = set(ROLES)


def direct(roles):
    return {REMOTE: set(), ONSITE: set(roles), ZONE: set(roles)}


EXPECTED = {
    "account.self": {REMOTE: ALL, ONSITE: ALL, ZONE: ALL},
    "camera.list": {REMOTE: REMOTE_OK, ONSITE: DIRECT_OK | {"admin"}, ZONE: DIRECT_OK | {"admin"}},
    "live.view": {REMOTE: REMOTE_OK, ONSITE: DIRECT_OK, ZONE: DIRECT_OK},
    "event.view": {REMOTE: REMOTE_OK, ONSITE: DIRECT_OK, ZONE: DIRECT_OK},  # alarms go to who may watch
    "event.handle": {REMOTE: {"department"}, ONSITE: DIRECT_OK, ZONE: DIRECT_OK},
    "archive.search": {REMOTE: {"department"}, ONSITE: ARCHIVE, ZONE: ARCHIVE},
    "archive.play": {REMOTE: set(), ONSITE: set(), ZONE: ARCHIVE},  # A4.5: restricted zone only
    "archive.export": {REMOTE: set(), ONSITE: set(), ZONE: ARCHIVE},
    "camera.manage": direct({"admin", "contractor"}),
    "system.view": {REMOTE: {"department"}, ONSITE: DIRECT_OK | {"admin"}, ZONE: DIRECT_OK | {"admin"}},
    "user.manage": direct({"admin"}),
    "token.manage": direct({"admin"}),
    "policy.manage": direct({"admin"}),
    "journal.read": {REMOTE: {"department"}, ONSITE: {"department", "admin"}, ZONE: {"department", "admin"}},
    "journal.cabinet": direct({"department"}),
    # Evidence (R7, A4.6–A4.11): leaders resolve and order holds, the department keeps the registers.
    "incident.view": {REMOTE: LEADERS | {"department"}, ONSITE: DIRECT_OK, ZONE: DIRECT_OK},
    "incident.manage": {REMOTE: {"department"}, ONSITE: DIRECT_OK, ZONE: DIRECT_OK},
    "hold.view": {REMOTE: LEADERS | {"department"}, ONSITE: DIRECT_OK, ZONE: DIRECT_OK},
    "hold.manage": {REMOTE: LEADERS | {"department"}, ONSITE: {"department"}, ZONE: {"department"}},
    "request.view": {REMOTE: LEADERS | {"department"}, ONSITE: {"department"}, ZONE: {"department"}},
    "request.register": {REMOTE: {"department"}, ONSITE: {"department"}, ZONE: {"department"}},
    "request.resolve": {REMOTE: LEADERS, ONSITE: set(), ZONE: set()},
    "request.prepare": {REMOTE: set(), ONSITE: set(), ZONE: {"department"}},  # reads the archive (A4.5)
    "request.transfer": {REMOTE: {"department"}, ONSITE: {"department"}, ZONE: {"department"}},
    "request.file": {REMOTE: {"police"}, ONSITE: set(), ZONE: set()},  # R11: the police's own system
    "search.tracks": {REMOTE: set(), ONSITE: set(), ZONE: ARCHIVE},  # A4.4, A4.5
    # Camera placement (MVS-3, MVS-4): the department analyses, the police unit answers.
    "ptz.control": {REMOTE: REMOTE_OK, ONSITE: DIRECT_OK, ZONE: DIRECT_OK},  # like live view
    "placement.view": {REMOTE: LEADERS | {"department"}, ONSITE: {"department"}, ZONE: {"department"}},
    "placement.manage": {REMOTE: {"department"}, ONSITE: {"department"}, ZONE: {"department"}},
    "placement.approve": {REMOTE: LEADERS | {"department"}, ONSITE: {"department"}, ZONE: {"department"}},
    "placement.review": {REMOTE: {"police"}, ONSITE: set(), ZONE: set()},
    # Lockdown (C4): the mayor or the department, a second person confirming from the console.
    "lockdown.manage": {REMOTE: {"mayor", "department"}, ONSITE: {"department"}, ZONE: {"department"}},
    "lockdown.alert": {REMOTE: set(), ONSITE: set(), ZONE: set()},  # an outside system's token only
}

CABINET = {"person": "Коваль Андрій Іванович", "organisation": "ТОВ Сервіс", "purpose": "заміна диска",
           "let_in_by": "Шевченко Олена Петрівна", "entered": "now-1h", "left": "now-30m"}
REQUESTS = {  # one representative request per action, on camera mel-c (group "centre")
    "account.self": ("GET", "/api/auth/me", None),
    "camera.list": ("GET", "/api/cameras/mel-c", None),
    "live.view": ("GET", "/api/cameras/mel-c/snapshot.jpg", None),
    "event.view": ("GET", "/api/events?camera=mel-c", None),
    "event.handle": ("POST", "/api/events/999999/ack", {}),  # allowed: 404 (no such event), refused: 403
    "archive.search": ("GET", "/api/cameras/mel-c/recordings?from=now-1h&to=now", None),
    "archive.play": ("GET", "/api/cameras/mel-c/playback.m3u8?from=now-1h", None),
    "archive.export": ("POST", "/api/exports", {"cameras": ["mel-c"], "from": "now-2h", "to": "now-1h"}),
    "camera.manage": ("PATCH", "/api/cameras/mel-c", {"address": "пл. Перемоги, 1"}),
    "system.view": ("GET", "/api/system/storage", None),
    "user.manage": ("GET", "/api/users", None),
    "token.manage": ("GET", "/api/tokens", None),
    "policy.manage": ("DELETE", "/api/policy/restrictions/police/live.view", None),
    "journal.read": ("GET", "/api/journal?limit=1", None),
    "journal.cabinet": ("POST", "/api/journal/cabinet", CABINET),
    # Allowed: 404 (no such record), refused: 403.
    "incident.view": ("GET", "/api/incidents", None),
    "incident.manage": ("POST", "/api/incidents/999999/notes", {"text": "перевірка"}),
    "hold.view": ("GET", "/api/holds", None),
    "hold.manage": ("POST", "/api/holds/999999/release", {"instruction": {
        "number": "1", "date": "2026-01-01", "author": "Петренко І. В.", "office": "mayor"}}),
    "request.view": ("GET", "/api/requests", None),
    "request.register": ("POST", "/api/requests/999999/withdraw", {"reason": "лист заявника"}),
    "request.resolve": ("POST", "/api/requests/999999/resolve", {"decision": "approve", "text": "погоджую"}),
    "request.prepare": ("POST", "/api/requests/999999/prepare", None),
    "request.transfer": ("POST", "/api/requests/999999/link", None),
    "request.file": ("GET", "/api/requests/filed", None),
    "search.tracks": ("GET", "/api/search/tracks?from=now-1h&to=now", None),
    "ptz.control": ("GET", "/api/cameras/mel-c/ptz/presets", None),  # allowed: 422 (not an ONVIF camera)
    "placement.view": ("GET", "/api/placement/data", None),
    "placement.manage": ("GET", "/api/placement/police-units", None),
    "placement.approve": ("POST", "/api/placement/proposals/999999/approve", {}),
    "placement.review": ("POST", "/api/placement/proposals/999999/answer", {"verdict": "agree"}),
    "lockdown.manage": ("GET", "/api/lockdown/history", None),
    "lockdown.alert": ("POST", "/api/lockdown/alert", {"alert": False}),  # people: refused (tokens only)
}


def can_sign_in(role: str, ctx: str) -> bool:
    return role in REMOTE_OK if ctx == REMOTE else role in DIRECT_OK | {"admin"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    v = VartaHome(tmp_path_factory.mktemp("access"), onsite_networks="127.0.0.1/32,127.0.0.2/32",
                  restricted_workstations="127.0.0.1/32")
    v.start()
    # Cameras that point nowhere (port 9 refuses), with recording off: only access is tested.
    for cam, group in (("mel-c", "centre"), ("mel-n", "north")):
        v.run("camera", "add", cam, "--url", "rtsp://127.0.0.1:9/none", "--group", group, "--schedule", "off")
    yield v
    v.stop()


def sign_in(v: VartaHome, role: str, ctx: str, expect: int = 200):
    login = f"{role.replace('_', '-')}.{ctx}"
    password, secret = v.account(login, role, groups=["centre"] if role == "police" else (), totp=(ctx == REMOTE))
    otp = pyotp.TOTP(secret).now() if secret else None
    return login_client(v.base_url, login, password, otp=otp, local_address=SOURCES[ctx], expect=expect)


def test_every_role_and_action_from_every_place(server):
    v = server
    refused: set[tuple[str, str]] = set()
    walked = 0
    for ctx in (ZONE, ONSITE, REMOTE):
        for role in ROLES:
            if not can_sign_in(role, ctx):
                c = sign_in(v, role, ctx, expect=403)  # A4.3 / C4: no session at all
                assert c.me["code"] == "refused", c.me
                refused.add((f"{role.replace('_', '-')}.{ctx}", "session.login"))
                continue
            c = sign_in(v, role, ctx)
            assert c.me["access"] == ("remote" if ctx == REMOTE else "direct")
            assert c.me["restricted_zone"] == (ctx == ZONE)
            with c:
                for action, (method, path, body) in REQUESTS.items():
                    r = c.request(method, path, json=body)
                    allowed = role in EXPECTED[action][ctx]
                    if allowed:
                        assert r.status_code not in (401, 403), (role, ctx, action, r.status_code, r.text)
                    else:
                        assert r.status_code == 403, (role, ctx, action, r.status_code, r.text)
                        refused.add((c.me["login"], action))
                    walked += 1
    assert walked > 100
    # Every refusal is in the journal, with who, from where and why.
    with sign_in(v, "department", ZONE) as auditor:
        lines = auditor.get("/api/journal", params={"result": "refused", "limit": 100000}).json()["lines"]
    journaled = {(ln["account"], "session.login" if ln["action"] == "session.login" else ln["action"]) for ln in lines}
    missing = refused - journaled
    assert not missing, f"refusals not journaled: {sorted(missing)}"
    by_action = {(ln["account"], ln["action"]): ln for ln in lines}
    ln = by_action[("department.onsite", "archive.play")]
    assert ln["source"] == "127.0.0.2" and ln["access"] == "direct" and "restricted-zone" in ln["detail"]
    assert "C4" in by_action[("contractor.remote", "session.login")]["detail"]


def test_archive_needs_the_restricted_zone_even_for_the_department(server):
    with sign_in(server, "department", ONSITE) as c:
        r = c.get("/api/cameras/mel-c/playback.m3u8", params={"from": "now-1h"})
        assert r.status_code == 403 and "restricted-zone workstation" in r.json()["detail"]
        assert c.post("/api/exports", json={"cameras": ["mel-c"], "from": "now-2h", "to": "now-1h"}).status_code == 403
    with sign_in(server, "department", ZONE) as c:
        assert c.get("/api/cameras/mel-c/playback.m3u8", params={"from": "now-1h"}).status_code == 404  # no footage


def test_police_see_only_their_groups(server):
    with sign_in(server, "police", REMOTE) as c:
        assert [cam["id"] for cam in c.get("/api/cameras").json()] == ["mel-c"]
        assert "main_url" not in c.get("/api/cameras/mel-c").json()  # stream addresses only for who manages
        r = c.get("/api/cameras/mel-n/snapshot.jpg")
        assert r.status_code == 403 and "north" in r.json()["detail"]
        assert c.get("/api/cameras/mel-c/playback.m3u8", params={"from": "now-1h"}).status_code == 403


def test_a_forwarded_for_header_from_outside_does_not_make_anyone_local(server):
    password, _ = server.account("tech.remote2", "contractor")
    import httpx

    with httpx.Client(base_url=server.base_url, transport=httpx.HTTPTransport(local_address="127.0.0.3")) as c:
        r = c.post("/api/auth/login", json={"login": "tech.remote2", "password": password},
                   headers={"X-Forwarded-For": "127.0.0.1"})
    assert r.status_code == 403 and "C4" in r.json()["detail"]


def test_api_tokens_for_police_systems_are_scoped_and_revocable(server):
    admin = sign_in(server, "admin", ZONE)
    server.account("police-dispatch", "police", groups=["centre"])
    server.account("tech-system", "contractor")
    r = admin.post("/api/tokens", json={"login": "police-dispatch", "name": "Диспетчерська поліції",
                                        "scopes": ["camera.list"], "days": 30})
    assert r.status_code == 201, r.text
    token, tid = r.json()["token"], r.json()["id"]
    contractor_token = admin.post("/api/tokens", json={"login": "tech-system", "name": "monitoring",
                                                       "scopes": ["camera.list"], "days": 1}).json()["token"]
    import httpx

    def call(tok, path, source="127.0.0.3"):
        with httpx.Client(base_url=server.base_url, transport=httpx.HTTPTransport(local_address=source)) as c:
            return c.get(path, headers={"Authorization": f"Bearer {tok}"})

    assert [c["id"] for c in call(token, "/api/cameras").json()] == ["mel-c"]
    assert call(token, "/api/cameras/mel-c/snapshot.jpg").status_code == 403  # not in its scopes
    assert call(token, "/api/journal").status_code == 403
    assert call(contractor_token, "/api/cameras").status_code == 403  # C4: no remote access, tokens included
    assert call(token[:-2] + "xx", "/api/cameras").status_code == 401
    assert admin.delete(f"/api/tokens/{tid}").status_code == 200
    r = call(token, "/api/cameras")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    lines = admin.get("/api/journal", params={"action": "token.manage"})
    assert lines.status_code == 200
    assert any(f"token:{tid}" == ln["object"] and ln["detail"] == "revoked" for ln in lines.json()["lines"])


def test_policy_tightening_applies_to_every_node_and_is_journaled(server):
    admin = sign_in(server, "admin", ZONE)
    r = admin.post("/api/policy/restrictions", json={"role": "police", "action": "live.view"})
    assert r.status_code == 201
    assert admin.post("/api/policy/restrictions", json={"role": "police", "action": "archive.play"}).status_code == 400
    time.sleep(0.1)
    police = sign_in(server, "police", REMOTE)
    deadline = time.monotonic() + 10  # policy caches refresh within seconds
    while time.monotonic() < deadline and police.get("/api/cameras/mel-c/snapshot.jpg").status_code != 403:
        time.sleep(0.5)
    r = police.get("/api/cameras/mel-c/snapshot.jpg")
    assert r.status_code == 403 and "withdrawn" in r.json()["detail"]
    assert admin.delete("/api/policy/restrictions/police/live.view").status_code == 200
    matrix = admin.get("/api/policy").json()["matrix"]
    assert "police" in matrix["live.view"]["remote"]
    assert "police" not in matrix["archive.play"]["direct"]


def test_every_route_is_guarded_by_the_policy(tmp_path):
    """No route without a policy action: adding one without a guard fails here."""
    from starlette.routing import Route

    from varta.access.policy import ACTIONS
    from varta.config import Settings
    from varta.db.engine import open_database
    from varta.web.app import create_app
    from varta.web.auth import route_actions

    settings = Settings(home=tmp_path)
    app = create_app(settings, open_database(settings.db_url))
    actions = route_actions(app)
    assert len(actions) > 30
    unguarded = [route for route, action in actions.items() if action is None]
    assert not unguarded, f"routes with no policy action: {unguarded}"
    public = sorted(path for (method, path), a in actions.items() if a.startswith("public"))
    assert public == ["/", "/api/auth/login", "/api/auth/logout", "/api/auth/oidc", "/api/auth/oidc/callback",
                      "/api/auth/oidc/start", "/api/docs", "/api/evidence/key", "/api/exchange/openapi.json",
                      "/api/system/health"]
    assert {a for a in actions.values() if not a.startswith("public")} <= set(ACTIONS)
    # Besides the API routes only the OpenAPI description (no data in it; its viewer is public above).
    others = sorted(r.path for r in app.routes if isinstance(r, Route) and not hasattr(r, "dependant"))
    assert others == ["/api/openapi.json"]
