"""The police on line (issue 16, R11, MVS-3), end to end over HTTP against a running Varta
with a real camera, a real S3-compatible server and a webhook receiver on 127.0.0.1:

a police unit's system files an official request with its scanned letter through the API
with its token (twice with the same Idempotency-Key: one request), the mayor resolves it,
the department prepares and transfers the package; the unit's receiver is told every step
in order, each signed; the package's manifest lists the letter's SHA-256; another unit's
token sees nothing of it; the X-Road (Trembita) headers are journaled with the call."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pyotp
import pytest

from conftest import free_port, have_ffmpeg, login_client
from s3server import ACCESS_KEY, SECRET_KEY, s3_server  # noqa: F401 (the fixture)
from test_console_e2e import browser, shot, sign_in  # noqa: F401  (browser is a fixture)
from test_evidence_e2e import _wait_job

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not have_ffmpeg(), reason="needs ffmpeg")]

ZONE, REMOTE = "127.0.0.1", "127.0.0.3"
# A small but real PDF (what a scanner's software writes, cut to one empty page).
LETTER = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
          b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


class Receiver:
    """The police system's webhook endpoint: records what arrives (``down``: answers 503)."""

    def __init__(self):
        self.got: list[dict] = []
        self.down = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.got.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/varta-hook"

    def close(self):
        self.server.shutdown()


def _valid(secret: str, d: dict) -> bool:
    """The check a police IT team writes (docs/police-exchange.md, *Signatures*)."""
    ts = d["headers"]["x-varta-timestamp"]
    mac = hmac.new(secret.encode(), ts.encode() + b"." + d["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest("sha256=" + mac, d["headers"]["x-varta-signature"]) and abs(time.time() - int(ts)) < 300


def _token(v, login: str) -> str:
    out = v.run("token", "create", login, "--name", f"{login} dispatch", "--scope", "request.file",
                "--scope", "account.self").stdout
    return out.strip().splitlines()[-1].strip()


def _client(token: str, v) -> httpx.Client:
    return httpx.Client(base_url=v.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60,
                        transport=httpx.HTTPTransport(local_address=REMOTE))


def test_a_police_system_files_a_request_and_is_told_every_step(varta, camsim, s3_server):  # noqa: F811
    v = varta(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32",
              s3_endpoint_url=s3_server.endpoint_url, s3_bucket="police-exchange", s3_access_key=ACCESS_KEY,
              s3_secret_key=SECRET_KEY, s3_part_size_mb=5)
    v.run("camera", "add", "mel-px1", "--url", camsim.url("gen1"), "--group", "centre")
    v.start()
    dept = v.api("olena.dept", "department")
    segs = v.wait_for(lambda: (lambda s: s if len(s) >= 4 else None)(dept.get(
        "/api/cameras/mel-px1/segments", params={"from": "now-1h", "to": "now+1m"}).json()), 90, "segments")
    v.account("police.unit1", "police", groups=["centre"])
    v.account("police.unit2", "police", groups=["centre"])
    unit1, unit2 = _client(_token(v, "police.unit1"), v), _client(_token(v, "police.unit2"), v)
    receiver = Receiver()
    try:
        r = unit1.post("/api/subscriptions", json={"kind": "requests", "url": receiver.url})
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        sub_id = r.json()["subscription"]["id"]
        assert secret.startswith("whsec_")

        # Filed with the scanned letter; retried with the same key: one request.
        body = {"kind": "police", "incoming_no": "1234/15-2026", "incoming_date": segs[0]["start"][:10],
                "requester": "Мелітопольський РВП ГУНП в Запорізькій області", "contact": "слідчий Бондар І. С.",
                "basis": "ст. 93 КПК України; кримінальне провадження № 12026080000000123",
                "items": [{"camera_id": "mel-px1", "from": segs[1]["start"], "to": segs[2]["end"]}],
                "attachments": [{"name": "лист-1234.pdf", "media_type": "application/pdf",
                                 "content_base64": __import__("base64").b64encode(LETTER).decode()}]}
        headers = {"Idempotency-Key": "unit1-1234-15-2026", "X-Road-Client": "UA/GOV/00000001/npu-dispatch",
                   "X-Road-Id": "msg-0001"}
        first = unit1.post("/api/requests", json=body, headers=headers)
        assert first.status_code == 201, first.text
        again = unit1.post("/api/requests", json=body, headers=headers)
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
        other = unit1.post("/api/requests", json={**body, "incoming_no": "9999"}, headers=headers)
        assert other.status_code == 422 and "Idempotency-Key" in other.text
        req = first.json()
        assert req["state"] == "registered" and "basis" not in req  # the filer's view
        doc = req["attachments"][0]
        assert doc["sha256"] == hashlib.sha256(LETTER).hexdigest() and doc["bytes"] == len(LETTER)
        assert len(dept.get("/api/requests", params={"q": "1234/15-2026"}).json()["requests"]) == 1
        # Held at once, like a typed-in request; the department sees it whole, with the letter.
        full = dept.get(f"/api/requests/{req['id']}").json()
        assert dept.get(f"/api/holds/{full['hold_id']}").json()["active"]
        assert full["filed_by"] == "police.unit1"
        letter = dept.get(f"/api/requests/{req['id']}/documents/{doc['id']}")
        assert letter.status_code == 200 and letter.content == LETTER
        # Not for the police to pick the kind, and not another unit's to see.
        assert unit1.post("/api/requests", json={**body, "kind": "third_party"}).status_code == 403
        assert unit2.get(f"/api/requests/{req['id']}").status_code == 404
        assert unit2.get(f"/api/requests/{req['id']}/documents/{doc['id']}").status_code == 404
        assert unit2.get("/api/requests/filed").json()["requests"] == []
        assert [q["number"] for q in unit1.get("/api/requests/filed").json()["requests"]] == [req["number"]]
        assert unit1.get("/api/requests").status_code == 403  # the register is the department's

        # The mayor resolves (remote, second factor); the department prepares and transfers.
        password, totp = v.account("mayor.ivanenko", "mayor", totp=True)
        mayor = login_client(v.base_url, "mayor.ivanenko", password, otp=pyotp.TOTP(totp).now(), local_address=REMOTE)
        r = mayor.post(f"/api/requests/{req['id']}/resolve", json={"decision": "approve", "text": "Погоджую"})
        assert r.status_code == 200, r.text
        job = _wait_job(dept, dept.post(f"/api/requests/{req['id']}/prepare").json())
        assert job["status"] == "done", job
        job = _wait_job(dept, dept.post(f"/api/requests/{req['id']}/transfer").json())
        assert job["status"] == "done", job

        # The receiver was told every step, in order, each signed, each with its own event id.
        v.wait_for(lambda: len(receiver.got) >= 4, 30, "four deliveries")
        events = [json.loads(d["body"]) for d in receiver.got]
        assert [e["type"] for e in events] == ["request.registered", "request.resolved", "request.prepared",
                                              "request.transferred"], events
        assert all(_valid(secret, d) for d in receiver.got)
        assert not _valid("whsec_wrong", receiver.got[0])
        assert len({e["id"] for e in events}) == 4
        assert all(d["headers"]["x-varta-event-id"] == e["id"] for d, e in zip(receiver.got, events))
        assert events[1]["request"]["resolution"]["decision"] == "approved" and events[1]["request"]["due_date"]
        done = events[3]["request"]
        assert done["state"] == "transferred" and done["transfer"]["url"].startswith("http")
        package = httpx.get(done["transfer"]["url"], timeout=60)
        assert hashlib.sha256(package.content).hexdigest() == done["package"]["sha256"]
        with zipfile.ZipFile(io.BytesIO(package.content)) as z:
            manifest = json.loads(z.read(next(n for n in z.namelist() if n.endswith("/manifest.json"))))
        listed = [e for e in manifest["extra_files"] if e.get("role") == "request document"]
        assert [(e["name"], e["sha256"]) for e in listed] == [("лист-1234.pdf", hashlib.sha256(LETTER).hexdigest())]
        assert unit1.get(f"/api/requests/{req['id']}").json()["state"] == "transferred"
        # The profile's own OpenAPI: exactly the exchange's operations.
        spec = httpx.get(f"{v.base_url}/api/exchange/openapi.json").json()
        assert spec["openapi"].startswith("3.") and spec["info"]["version"] == "1.0"
        assert set(spec["paths"]) == {"/api/requests", "/api/requests/filed", "/api/requests/{request_id}",
                                      "/api/requests/{request_id}/documents/{document_id}", "/api/subscriptions",
                                      "/api/subscriptions/{sid}", "/api/subscriptions/{sid}/deliveries",
                                      "/api/subscriptions/{sid}/stream", "/api/evidence/key"}
        assert "idempotency-key" in json.dumps(spec["paths"]["/api/requests"]["post"]).lower()

        # The delivery log says the same; the journal has the filer and the X-Road message.
        log = unit1.get(f"/api/subscriptions/{sub_id}/deliveries").json()["deliveries"]
        assert [d["state"] for d in log] == ["delivered"] * 4
        assert unit2.get(f"/api/subscriptions/{sub_id}/deliveries").status_code == 404
        lines = dept.get("/api/journal", params={"action": "request.file", "limit": 100}).json()["lines"]
        filed = [ln for ln in lines if ln["object"] == f"request:{req['number']}" and ln["result"] == "ok"]
        assert filed and filed[0]["account"] == "police.unit1"
        assert "X-Road-Client: UA/GOV/00000001/npu-dispatch" in filed[0]["detail"]
        assert re.search(r"SHA-256 [0-9a-f]{64}", filed[0]["detail"])
        reads = [ln for ln in dept.get("/api/journal", params={"object": f"subscription:{sub_id}", "limit": 50})
                 .json()["lines"] if ln["account"] == "police.unit1"]
        assert any("delivery log read" in ln["detail"] for ln in reads)  # every exchange call is journaled
    finally:
        receiver.close()


def test_a_token_is_limited_in_calls_a_minute(varta):
    v = varta(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32", token_rate_per_min=8)
    v.start()
    v.account("police.unit9", "police", groups=["centre"])
    unit = _client(_token(v, "police.unit9"), v)
    codes = [unit.get("/api/requests/filed").status_code for _ in range(4)]
    assert codes[:2] == [200, 200] and 429 in codes, codes  # a burst of 2 (a quarter of 8), then wait
    r = unit.get("/api/requests/filed")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "a minute" in r.json()["detail"]
    time.sleep(8)  # one call every 7.5 s
    assert unit.get("/api/requests/filed").status_code == 200


def _alarm(v, camera_id: str, n: int) -> int:
    """An alarm opened as the analytics worker opens one (its own EventStore, the same
    database), with a picture of the moment."""
    import cv2
    import numpy as np

    from varta.analytics.pipeline import EventChange
    from varta.analytics.types import Occurrence
    from varta.clock import now_us
    from varta.events.store import EventStore

    picture = np.full((90, 160, 3), 40 + n * 20, np.uint8)
    jpeg = cv2.imencode(".jpg", picture)[1].tobytes()
    occ = Occurrence(key=f"gate:track {n}", rule="gate", kind="zone", t=0.0, zone="gate", label="person",
                     track_id=n, score=0.9, box=(10, 10, 50, 80))
    change = EventChange("open", occ.key, occ, "alarm", now_us(), 160, 90, snapshot=jpeg,
                         motion={"heading": "north", "speed_px_s": 30.0})
    return EventStore(v.engine(), v.home / "events").open_event(camera_id, change)


def test_alarm_subscribers_get_every_alarm_once_in_order_and_only_their_groups(browser, varta):  # noqa: F811
    v = varta(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32")
    v.run("camera", "add", "mel-al1", "--url", "rtsp://127.0.0.1:9/none", "--group", "centre", "--schedule", "off")
    v.run("camera", "add", "mel-al2", "--url", "rtsp://127.0.0.1:9/none", "--group", "north", "--schedule", "off")
    v.start()
    v.account("police.centre", "police", groups=["centre"])
    out = v.run("token", "create", "police.centre", "--name", "dispatch", "--scope", "event.view").stdout
    unit = _client(out.strip().splitlines()[-1].strip(), v)
    receiver = Receiver()
    receiver.down = True
    try:
        r = unit.post("/api/subscriptions", json={"kind": "alarms", "url": receiver.url,
                                                  "filters": {"classes": ["person"]}})
        assert r.status_code == 201, r.text
        secret, sub_id = r.json()["secret"], r.json()["subscription"]["id"]
        assert unit.post("/api/subscriptions", json={"kind": "requests", "url": receiver.url}).status_code == 403

        # The receiver is down for 30 s while alarms come: three of its group, one of another.
        started = time.monotonic()
        ids = []
        for n in range(3):
            ids.append(_alarm(v, "mel-al1", n))
            if n == 1:
                _alarm(v, "mel-al2", 9)  # north: not this unit's
        v.wait_for(lambda: any(d["attempts"] >= 2 for d in unit.get(f"/api/subscriptions/{sub_id}/deliveries")
                                                                    .json()["deliveries"]), 30, "retries")
        time.sleep(max(0.0, 30 - (time.monotonic() - started)))
        receiver.down = False
        v.wait_for(lambda: len(receiver.got) >= 3, 120, "the alarms after the receiver is back")
        time.sleep(3)  # nothing more comes
        events = [json.loads(d["body"]) for d in receiver.got]
        assert [e["alarm"]["event_id"] for e in events] == ids  # each once, in order
        assert all(_valid(secret, d) for d in receiver.got)
        assert all(e["alarm"]["group"] == "centre" and e["alarm"]["heading"] == "north" for e in events)
        assert all(e["picture_jpeg_base64"] and __import__("base64").b64decode(e["picture_jpeg_base64"])[:3]
                   == b"\xff\xd8\xff" for e in events)
        log = unit.get(f"/api/subscriptions/{sub_id}/deliveries").json()["deliveries"]
        states = sorted((d["event_id"], d["state"]) for d in log)
        assert [s for _, s in states].count("delivered") == 3
        withheld = [d for d in log if d["state"] == "withheld"]
        assert len(withheld) == 1 and "north" in withheld[0]["last_error"]

        # The administrator reads the delivery log in the console.
        root_pw, _ = v.account("root", "admin")
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        sign_in(page, v.base_url, "root", root_pw)
        page.wait_for_selector("#nav a[data-page=admin]")
        page.goto(f"{v.base_url}/#/admin/subscriptions")
        page.wait_for_selector(f"#subscriptions tr[data-id='{sub_id}']")
        assert "доставлено: 3" in page.inner_text(f"#subscriptions tr[data-id='{sub_id}']")
        page.click(f"#subscriptions tr[data-id='{sub_id}'] a")
        page.wait_for_selector("#deliveries tbody tr")
        states = page.eval_on_selector_all("#deliveries tbody tr", "els => els.map(e => e.dataset.state)")
        assert sorted(states) == ["delivered", "delivered", "delivered", "withheld"], states
        assert "не надіслано" in page.inner_text("#deliveries")
        shot(page, "admin-subscriptions")
    finally:
        receiver.close()


def test_alarm_filters_by_area_schedule_class_and_group():
    """Which alarms a subscription wants (pure): its districts, classes, an area drawn on the
    map and a weekly schedule in the city's time."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from varta.exchange import rules

    area = [[46.84, 35.36], [46.84, 35.37], [46.85, 35.37], [46.85, 35.36]]
    nights = {"default": "off", "rules": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "20:00", "to": "06:00",
                                           "mode": "on"}]}
    f = rules.check_filters("alarms", {"classes": ["person"], "polygon": area, "schedule": nights})
    tz = ZoneInfo("Europe/Kyiv")
    ev = {"group": "centre", "label": "person", "rule": "gate", "severity": "alarm", "latitude": 46.845,
          "longitude": 35.365, "local": datetime(2026, 12, 8, 23, 30, tzinfo=tz)}  # a Tuesday night
    assert rules.wants("alarms", f, "alarm.opened", ev)
    assert not rules.wants("alarms", f, "alarm.opened", {**ev, "label": "car"})
    assert not rules.wants("alarms", f, "alarm.opened", {**ev, "latitude": 46.9})            # outside the area
    assert not rules.wants("alarms", f, "alarm.opened", {**ev, "local": datetime(2026, 12, 8, 12, 0, tzinfo=tz)})
    assert rules.wants("alarms", f, "alarm.opened", {**ev, "local": datetime(2026, 12, 9, 5, 0, tzinfo=tz)})
    assert not rules.wants("alarms", f, "alarm.opened", {**ev, "local": datetime(2026, 12, 12, 23, 0, tzinfo=tz)})
    for bad in ({"polygon": [[1, 2]]}, {"schedule": {"default": "sometimes"}}, {"groups": "centre"}, {"colour": []}):
        with pytest.raises(rules.ExchangeError):
            rules.check_filters("alarms", bad)


def _read_events(client, url: str, want: int, last: str | None = None, timeout: float = 20) -> list[dict]:
    """Read ``want`` Server-Sent Events from ``url`` (resuming after ``last``), then hang up."""
    got, current = [], {}
    headers = {"Last-Event-ID": last} if last else {}
    deadline = time.monotonic() + timeout
    with client.stream("GET", url, headers=headers, timeout=timeout) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.status_code
        for line in r.iter_lines():
            if line.startswith(("id:", "event:", "data:")):
                k, _, v = line.partition(":")
                current[k] = v.strip()
            elif line == "" and "data" in current:
                got.append({**current, "data": json.loads(current["data"])})
                current = {}
                if len(got) >= want:
                    break
            assert time.monotonic() < deadline, f"only {len(got)} events"
    return got


def test_alarms_over_server_sent_events_resume_after_the_last_read(varta):
    v = varta(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32")
    v.run("camera", "add", "mel-ss1", "--url", "rtsp://127.0.0.1:9/none", "--group", "centre", "--schedule", "off")
    v.start()
    v.account("police.sse", "police", groups=["centre"])
    out = v.run("token", "create", "police.sse", "--name", "dispatch", "--scope", "event.view").stdout
    unit = _client(out.strip().splitlines()[-1].strip(), v)
    r = unit.post("/api/subscriptions", json={"kind": "alarms", "url": "sse:"})
    assert r.status_code == 201, r.text
    sid = r.json()["subscription"]["id"]
    first = [_alarm(v, "mel-ss1", n) for n in range(2)]
    got = _read_events(unit, f"/api/subscriptions/{sid}/stream", 2)
    assert [e["data"]["alarm"]["event_id"] for e in got] == first and all(e["event"] == "alarm.opened" for e in got)
    later = _alarm(v, "mel-ss1", 5)  # while nobody listens
    again = _read_events(unit, f"/api/subscriptions/{sid}/stream", 1, last=got[-1]["id"])
    assert [e["data"]["alarm"]["event_id"] for e in again] == [later]
    states = [d["state"] for d in unit.get(f"/api/subscriptions/{sid}/deliveries").json()["deliveries"]]
    assert states == ["delivered"] * 3
    hook = unit.post("/api/subscriptions", json={"kind": "alarms", "url": "http://127.0.0.1:9/hook"}).json()
    assert unit.get(f"/api/subscriptions/{hook['subscription']['id']}/stream").status_code == 409


def test_a_receiver_that_never_answers_is_dead_lettered_with_an_alarm_and_the_queue_moves_on(tmp_path, monkeypatch):
    """The dispatcher against a receiver answering 503: after MAX_ATTEMPTS the delivery is
    set aside, a system alarm says so, and the next event goes (real SQLite, real HTTP)."""
    from varta.db.engine import open_database
    from varta.events.system_alarms import SystemAlarms
    from varta.exchange import rules
    from varta.exchange.dispatcher import Dispatcher
    from varta.exchange.store import Exchange

    monkeypatch.setattr(rules, "MAX_ATTEMPTS", 3)
    monkeypatch.setattr(rules, "next_delay_s", lambda attempts: 0)  # no waiting between tries here
    engine = open_database(f"sqlite:///{tmp_path / 'varta.db'}")
    ex = Exchange(engine, lambda: b"k" * 32, None)
    rx = Receiver()
    rx.down = True
    try:
        sub, _ = ex.subscribe("police.x", "alarms", rx.url, {}, "test")
        for i in range(2):
            with engine.begin() as conn:
                ex.enqueue(conn, None, "alarms", "alarm.opened", {"id": f"alarm-{i}", "alarm": {"group": "g"}})
        alarms = SystemAlarms(engine, "node-1")
        d = Dispatcher(ex, lambda s, p: None, alarms, budget_s=5)
        for _ in range(3):
            d.tick()
        log = {x["event_id"]: x for x in ex.deliveries(sub["id"])}
        assert log["alarm-0"]["state"] == "dead" and log["alarm-0"]["attempts"] == 3
        assert log["alarm-0"]["last_status"] == 503
        assert alarms.active("webhook_failed")
        rx.down = False
        d.tick()
        log = {x["event_id"]: x for x in ex.deliveries(sub["id"])}
        assert log["alarm-1"]["state"] == "delivered"
        assert [json.loads(g["body"])["id"] for g in rx.got] == ["alarm-1"]
    finally:
        rx.close()
