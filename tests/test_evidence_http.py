"""Holds, incidents and the registers over HTTP, as the Responsible Department uses them
(cameras point nowhere: no video is needed to keep records)."""

from __future__ import annotations

import time

import httpx
import pytest
from conftest import VartaHome

from varta.clock import US


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    v = VartaHome(tmp_path_factory.mktemp("evidence-http"))
    v.start()
    for cam in ("mel-0012", "mel-0013"):
        v.run("camera", "add", cam, "--url", "rtsp://127.0.0.1:9/none", "--schedule", "off")
    yield v
    v.stop()


MAYOR_ORDER = {"number": "127-р", "date": "2026-03-04", "author": "Петренко Іван Васильович", "office": "mayor"}


def test_hold_on_instruction_and_release_on_destruction(server):
    v = server
    with v.api("olena.dept", "department") as c:
        body = {"intervals": [{"camera_id": "mel-0012", "from": "2026-03-03T14:00", "to": "2026-03-03T15:00"},
                              {"camera_id": "mel-0013", "from": "2026-03-03T14:00", "to": "2026-03-03T15:00"}],
                "instruction": MAYOR_ORDER, "reason": "ДТП на перехресті"}
        r = c.post("/api/holds", json={**body, "instruction": {**MAYOR_ORDER, "office": "department"}})
        assert r.status_code == 422 and "A4.6" in r.json()["detail"]
        r = c.post("/api/holds", json={**body, "intervals": [{**body["intervals"][0], "camera_id": "nope"}]})
        assert r.status_code == 404
        r = c.post("/api/holds", json=body)
        assert r.status_code == 201, r.text
        hold = r.json()
        assert hold["active"] and hold["instruction"]["number"] == "127-р"
        assert hold["intervals"][0]["from"] == "2026-03-03T14:00:00.000+02:00"  # city time (EET in March)
        # Retention honours it: the rows it reads are there.
        with v.engine().connect() as conn:
            from sqlalchemy import text

            n = conn.execute(text("select count(*) from holds where order_id=:o and released_us is null"),
                             {"o": hold["id"]}).scalar()
        assert n == 2
        listed = c.get("/api/holds", params={"active": "true", "camera": "mel-0013"}).json()["holds"]
        assert [h["number"] for h in listed] == [hold["number"]]
        assert c.get("/api/holds", params={"from": "2026-03-04T00:00", "to": "2026-03-05T00:00"}).json()["holds"] == []
        # Released only by a destruction instruction of a leader.
        r = c.post(f"/api/holds/{hold['id']}/release", json={"instruction": {**MAYOR_ORDER, "number": "301-р",
                                                                             "date": "2026-01-01"}})
        assert r.status_code == 422 and "predates" in r.json()["detail"]
        r = c.post(f"/api/holds/{hold['id']}/release",
                   json={"instruction": {**MAYOR_ORDER, "number": "301-р", "date": "2026-06-01"},
                         "note": "провадження закрито"})
        assert r.status_code == 200 and r.json()["active"] is False
        assert r.json()["destruction"]["number"] == "301-р"
        assert [h["action"] for h in r.json()["history"]] == ["placed", "released"]
        csv_text = c.get("/api/holds", params={"format": "csv"}).text
        assert "127-р" in csv_text and "301-р" in csv_text and "Петренко Іван Васильович" in csv_text
        assert c.get("/api/holds", params={"format": "pdf"}).content.startswith(b"%PDF")
        lines = c.get("/api/journal", params={"action": "hold.manage"}).json()["lines"]
        assert [ln["detail"].split(" ")[0] for ln in lines if ln["object"] == f"hold:{hold['number']}"] == \
            ["placed", "released"]
    # The contractor sees holds but may not place them.
    with v.api("tech", "contractor") as c:
        assert c.get("/api/holds").status_code == 200
        assert c.post("/api/holds", json=body).status_code == 403


def test_incident_from_an_alarm_with_history(server):
    v = server
    now = int(time.time() * US)
    with v.engine().begin() as conn:
        from sqlalchemy import text

        conn.execute(text("insert into events (camera_id, rule, kind, severity, label, score, start_us, end_us, "
                          "detail, worker, state, updated_us) values ('mel-0012', 'перехрестя', 'line', 'alarm', "
                          "'car', 0.9, :a, :b, '{}', 'test', 'new', :a)"), {"a": now - 60 * US, "b": now - 50 * US})
        event_id = conn.execute(text("select max(id) from events")).scalar()
    with v.api("olena.dept", "department") as c:
        assert c.post("/api/incidents/from-event/999999", json={}).status_code == 404
        assert c.post("/api/incidents/from-event/99999999999999999999999", json={}).status_code == 422  # past 64 bits
        r = c.post(f"/api/incidents/from-event/{event_id}", json={"type": "traffic_accident"})
        assert r.status_code == 201, r.text
        inc = r.json()
        assert inc["cameras"] == ["mel-0012"] and inc["type"] == "traffic_accident"
        assert [e["id"] for e in inc["linked_events"]] == [event_id]
        r = c.patch(f"/api/incidents/{inc['id']}", json={"status": "investigating", "place": "пл. Перемоги"})
        assert r.status_code == 200 and r.json()["status"] == "investigating"
        assert c.patch(f"/api/incidents/{inc['id']}", json={"status": "lost"}).status_code == 422
        assert c.patch(f"/api/incidents/{inc['id']}", json={"cameras": ["nope"]}).status_code == 404
        r = c.post(f"/api/incidents/{inc['id']}/notes", json={"text": "Передано до поліції"})
        assert [h["action"] for h in r.json()["history"]] == ["created", "changed", "note"]
        r = c.post("/api/incidents", json={"type": "fire", "title": "Загоряння урни", "from": "now-2h",
                                           "place": "парк Горького"})
        assert r.status_code == 201
        assert [i["title"] for i in c.get("/api/incidents", params={"q": "урни"}).json()["incidents"]] == \
            ["Загоряння урни"]
        assert c.post("/api/incidents", json={"type": "fire", "title": "x", "from": "yesterday-ish"}).status_code == 422
        assert "Загоряння урни" in c.get("/api/incidents", params={"format": "csv"}).text
    # Leaders read the register from outside; police do not.
    with v.api("tech", "contractor") as c:
        assert c.get(f"/api/incidents/{inc['id']}").status_code == 200


def test_key_and_deadlines(server):
    v = server
    key = httpx.get(f"{v.base_url}/api/evidence/key").json()
    assert len(key["fingerprint"]) == 64 and "BEGIN PUBLIC KEY" in key["public_key_pem"]
    assert (v.home / "keys" / "instance_ed25519.pem").stat().st_mode & 0o077 == 0
    res = v.run("evidence", "key")
    assert key["fingerprint"] in res.stdout
    with v.api("olena.dept", "department") as c:
        d = c.get("/api/requests/deadlines").json()
        assert set(d) >= {"overdue", "due_today", "due_soon", "on_time"} and d["rules"] == "martial_law"
