"""Analytics alarms in the web console, in real headless Chromium (Playwright) against a
running Varta: the alarm card pushed over /api/alarms, acting on it, the events page, the
events layer of the playback timeline, the analytics column of the health page, and a
police officer of another camera group who must not get the card.

Events are written straight into the database the way the analytics worker writes them
(:class:`varta.events.store.EventStore`), with a real JPEG drawn by the worker's own
``draw_alarm``, so the test needs no detector and no camera. Screenshots are saved under
``VARTA_TEST_ARTIFACTS`` (default ``.cache/artifacts``), named ``alarm-*``.
"""

from __future__ import annotations

import time
from datetime import datetime
from urllib.parse import quote

import numpy as np
import pytest

from conftest import VartaHome
from test_console_e2e import browser, shot, sign_in  # noqa: F401  (browser is a fixture)

pytestmark = [pytest.mark.e2e]

CAMERA, NAME, ADDRESS = "mel-e1", "Площа Перемоги", "просп. Богдана Хмельницького, 18"
W, H = 640, 360


def _open_event(v: VartaHome, rule: str, severity: str, kind: str, path, box, label: str | None = "person",
                zone: str | None = None, detail: dict | None = None, ago_s: float = 0.0, camera: str = CAMERA) -> int:
    """An event as the analytics worker opens one: rule hit, path, direction, boxed snapshot."""
    from varta.analytics.direction import track_motion
    from varta.analytics.pipeline import EventChange
    from varta.analytics.snapshot import draw_alarm, encode_jpeg
    from varta.analytics.types import Occurrence
    from varta.clock import now_us
    from varta.events.store import EventStore

    motion = track_motion(path)
    scene = np.zeros((H, W, 3), np.uint8)
    scene[:] = (70, 80, 60)
    scene[200:, :] = (90, 90, 90)  # a "road" so the picture is not flat
    scene[int(box[1]):int(box[3]), int(box[0]):int(box[2])] = (40, 40, 160)  # the object
    jpeg = encode_jpeg(draw_alarm(scene, box, f"{label or kind} 0.91", severity, path=path,
                                  heading=motion["heading"] if motion else None))
    occ = Occurrence(key=f"{rule}:track 7", rule=rule, kind=kind, t=path[-1][0], zone=zone or rule, label=label,
                     track_id=7, score=0.91, box=box, detail={"severity": severity, **(detail or {})})
    change = EventChange(action="open", key=occ.key, occurrence=occ, severity=severity,
                         wall_us=now_us() - int(ago_s * 1e6),
                         width=W, height=H, path=list(path), motion=motion, snapshot=jpeg)
    return EventStore(v.engine(), v.home / "events").open_event(camera, change)


def _police_page(browser, v: VartaHome):  # noqa: F811
    """A police officer of another camera group, from outside (through the proxy) with 2FA."""
    import pyotp

    ppw, secret = v.account("bondar", "police", groups=["north"], totp=True)
    ctx = browser.new_context(viewport={"width": 1280, "height": 800},
                              extra_http_headers={"X-Forwarded-For": "203.0.113.9"})
    page = ctx.new_page()
    page.goto(v.base_url + "/")
    page.fill("#login input[name=login]", "bondar")
    page.fill("#login input[name=password]", ppw)
    page.fill("#login input[name=otp]", pyotp.TOTP(secret).now())
    page.click("#login button[type=submit]")
    page.wait_for_selector("#who:not(:empty)")
    return ctx, page


def test_alarm_card_actions_events_page_and_police_scope(browser, tmp_path):  # noqa: F811
    started = time.monotonic()
    v = VartaHome(tmp_path / "alarms", trusted_proxies="127.0.0.1/32")
    v.start()
    problems: list[str] = []
    try:
        v.run("camera", "add", CAMERA, "--url", "rtsp://127.0.0.1:9/none", "--group", "centre", "--name", NAME,
              "--address", ADDRESS, "--lat", "46.8489", "--lon", "35.3653", "--schedule", "off")
        v.run("camera", "add", "mel-n1", "--url", "rtsp://127.0.0.1:9/none", "--group", "north", "--name", "Північний міст",
              "--schedule", "off")

        # The police officer (group "north") is watching for alarms before anything happens.
        pctx, police = _police_page(browser, v)
        police.on("pageerror", lambda e: problems.append(f"police: {e}"))
        police.wait_for_selector("#alarms[data-ws=open][data-backlog=loaded]", state="attached", timeout=10000)

        # The operator of the Responsible Department, at a restricted-zone workstation.
        password, _ = v.account("olena", "department")
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda e: problems.append(str(e)))
        sign_in(page, v.base_url, "olena", password)  # (its 401 on /api/auth/me before signing in is expected)
        page.wait_for_selector("#alarms[data-ws=open][data-backlog=loaded]", state="attached", timeout=10000)
        page.on("console", lambda m: problems.append(f"{m.text} {m.location.get('url', '')}") if m.type == "error" else None)
        assert page.locator("#nav a[data-page=events]").count() == 1
        assert page.is_hidden("#alarms")  # nothing to handle yet

        # A warning, then an alarm: a person walking left to right into the courtyard.
        t0 = time.monotonic()
        warn_id = _open_event(v, "Лінія воріт", "warning", "line", [(0.0, 420.0, 300.0), (1.5, 300.0, 296.0)],
                              (270, 200, 330, 300), detail={"crossing": "b_to_a", "count": 3}, ago_s=90)
        alarm_id = _open_event(v, "Двір уночі", "alarm", "zone", [(0.0, 120.0, 310.0), (2.0, 260.0, 300.0)],
                               (230, 120, 290, 300), zone="Внутрішній двір")
        card = f"#alarms .alarm-card[data-event='{alarm_id}']"
        page.wait_for_selector(card, timeout=5000)
        arrived_s = time.monotonic() - t0
        page.wait_for_function(f"() => {{ const i = document.querySelector(\"{card} img.snap\"); "
                               "return i && i.complete && i.naturalWidth > 0; }", timeout=5000)
        assert page.evaluate(f"() => document.querySelector(\"{card} img.snap\").naturalWidth") == W
        text = page.inner_text(card)
        for expected in (NAME, ADDRESS, "Двір уночі", "Внутрішній двір", "зліва направо", "людина", "0.91"):
            assert expected in text, (expected, text)
        assert page.get_attribute(f"{card} .arrow", "data-heading") == "right"
        assert page.inner_text("#alarm-count") == "2"
        assert page.locator(f"#alarms .alarm-row[data-event='{warn_id}']").count() == 1  # older one: a row
        assert page.locator(f"{card} button.play-clip").count() == 1  # archive.play from this workstation
        assert page.locator(f"{card} button.show-map").count() == 1
        assert page.is_enabled(f"{card} button.incident")  # the department registers incidents (R7)
        shot(page, "alarm-card")

        # A note, then "acknowledge": the card leaves, the server has it, the journal too.
        page.click(f"{card} button.act-note")
        page.fill(f"{card} .note-form input", "Охорона повідомлена")
        page.click(f"{card} .note-form button[type=submit]")
        page.wait_for_selector(f"{card} .note-done:not(:empty)")
        page.click(f"{card} button.act-ack")
        page.wait_for_selector(card, state="detached", timeout=5000)
        # The warning is open now: judge it a false alarm.
        wcard = f"#alarms .alarm-card[data-event='{warn_id}']"
        page.wait_for_selector(wcard)
        assert "справа наліво" in page.inner_text(wcard) and "з боку B на бік A" in page.inner_text(wcard)
        page.click(f"{wcard} button.act-false")
        page.wait_for_selector("#alarms", state="hidden", timeout=5000)
        with v.api("auditor", "department") as c:
            ev = c.get(f"/api/events/{alarm_id}").json()
            assert ev["state"] == "acknowledged" and ev["verdict"] is None and ev["handled_by"] == "olena"
            assert [a["action"] for a in ev["actions"]] == ["note", "ack"]
            wev = c.get(f"/api/events/{warn_id}").json()
            assert wev["state"] == "acknowledged" and wev["verdict"] == "false"
            lines = c.get("/api/journal", params={"action": "event.handle", "account": "olena"}).json()["lines"]
        details = [ln["detail"] for ln in lines]
        assert any(f"event {alarm_id}" in d and "ack" in d for d in details), details
        assert any(f"event {alarm_id}" in d and "Охорона повідомлена" in d for d in details), details
        assert any(f"event {warn_id}" in d and "false" in d for d in details), details

        # The events page: both events, newest first, with thumbnails; then the detail.
        page.click("#nav a[data-page=events]")
        page.wait_for_selector(f"#events tr[data-event='{alarm_id}']")
        ids = page.eval_on_selector_all("#events tbody tr", "els => els.map(e => +e.dataset.event)")
        assert ids == [alarm_id, warn_id]
        assert page.get_attribute(f"#events tr[data-event='{warn_id}']", "data-verdict") == "false"
        page.wait_for_function(f"() => document.querySelector(\"#events tr[data-event='{alarm_id}'] img.thumb\")"
                               ".naturalWidth > 0", timeout=5000)
        shot(page, "alarm-events-list")
        # Filters go through the API: the false alarms only.
        page.select_option("#events-filter select[name=verdict]", "false")
        page.click("#events-filter button[type=submit]")
        page.wait_for_selector(f"#events tr[data-event='{alarm_id}']", state="detached")
        page.wait_for_selector(f"#events tr[data-event='{warn_id}']")
        assert page.locator("#events tbody tr").count() == 1
        page.click(f"#events tr[data-event='{warn_id}']")
        page.wait_for_selector(f"#event-detail[data-event='{warn_id}']")
        page.click("a.back")
        page.wait_for_selector("#events tbody tr")
        page.goto(f"{v.base_url}/#/events/{alarm_id}")
        page.wait_for_selector(f"#event-detail[data-event='{alarm_id}'] img.snap")
        assert page.locator("#event-history tbody tr").count() == 2
        assert "Охорона повідомлена" in page.inner_text("#event-history")
        assert page.get_attribute("#event-detail svg.path-overlay", "data-points") == "2"
        page.click("#lang")  # English: the direction phrase follows the language
        page.wait_for_function("() => document.querySelector('#event-detail')?.innerText.includes('moving left to right')")
        shot(page, "alarm-event-detail")
        page.click("#lang")
        page.wait_for_selector("#nav a[data-page=events]:text('Події')")
        page.click("#event-detail button.show-map")  # the map, centred on the camera
        page.wait_for_selector(f"#map[data-centred={CAMERA}]")
        page.wait_for_selector(".leaflet-popup-content")
        assert NAME in page.inner_text(".leaflet-popup-content")
        page.go_back()

        # "Play clip": the archive at the clip's start, with the events layer on the timeline;
        # a click on a marker goes to that event.
        page.click(f"#event-detail[data-event='{alarm_id}'] button.play-clip")
        page.wait_for_selector(f"ul.events[data-camera={CAMERA}] li[data-event='{alarm_id}']", state="attached",
                               timeout=10000)
        assert page.locator(f"ul.events[data-camera={CAMERA}] li").count() == 2
        assert "zoom=10min" in page.url and quote(ev["clip"]["from"], safe="") in page.url
        pre_roll_ms = (datetime.fromisoformat(ev["start"]) - datetime.fromisoformat(ev["clip"]["from"])).total_seconds() * 1e3
        box = page.locator(f"canvas.timeline[data-camera={CAMERA}]").bounding_box()
        x = box["width"] / 2 + pre_roll_ms / 600e3 * box["width"]  # the window (10 min) is centred on the clip's start
        page.mouse.click(box["x"] + x, box["y"] + 4)
        page.wait_for_function("() => document.querySelector('#pb-status').textContent.includes('Двір уночі')",
                               timeout=5000)
        shot(page, "alarm-playback-events")

        # The health page shows each camera's analytics state (as a worker reports it).
        from varta.analytics.store import AnalyticsSettings

        # Slowed by the governor: the rate held, the rate asked, the rate allowed and why, in
        # the console's language (the worker's English detail stays out of a Ukrainian page).
        AnalyticsSettings(v.engine()).set_status(CAMERA, "test-node", "degraded", "machine overloaded: analysed at 3",
                                                 5.0, 3.1, 1.2, allowed_fps=3.0, lag_s=0.4)
        page.click("#nav a[data-page=health]")
        cell = f"#health td.analytics[data-camera={CAMERA}]"
        page.wait_for_selector(f"{cell}[data-analytics=degraded]")
        text = page.inner_text(cell)
        assert "3.1/5.0" in text and "дозволено 3.0" in text and "відставання" not in text, text
        assert "спершу камерам нижчого пріоритету" in text and "overloaded" not in text + page.get_attribute(cell, "title")
        page.wait_for_selector("#health td.analytics[data-camera=mel-n1][data-analytics=none]")
        shot(page, "alarm-health-analytics")

        # A system alarm (the storage forecast) is a banner on every page for those who may
        # see system state, and a list on the health page, in the console's language.
        from varta.events.system_alarms import SystemAlarms

        SystemAlarms(v.engine(), "test-node").raise_once(
            "storage_forecast", "warning", "storage holds about 1.3 days at current bitrates (2.1 GB/day), less "
            "than the 10 days of retention: older footage will be deleted early unless storage is added")
        page.click("#nav a[data-page=events]")
        page.wait_for_selector("#system-alarms:not([hidden])", timeout=10000)
        banner = page.inner_text("#system-alarms")
        assert "Активні системні тривоги: 1" in banner and "сховища не вистачить" in banner, banner
        assert "storage holds" not in banner
        page.click("#system-alarms a")
        page.wait_for_selector("#system-alarm-list li[data-kind=storage_forecast][data-severity=warning]")
        listed = page.inner_text("#system-alarm-list")
        assert "вузол test-node" in listed and "storage holds" not in listed, listed
        shot(page, "system-alarm-banner")
        # The police officer (no system.view) gets no banner.
        police.reload()
        police.wait_for_selector("#nav a[data-page=events]")
        police.wait_for_timeout(1000)
        assert police.is_hidden("#system-alarms")

        page.close()

        # The police officer of group "north" never got a card for the centre's camera...
        assert police.get_attribute("#alarms", "data-ws") == "open"
        assert police.locator("#alarms .alarm-card, #alarms .alarm-row").count() == 0
        assert police.is_hidden("#alarms")
        # ...but does get one of a camera of their own group: to see, not to handle.
        north_id = _open_event(v, "Міст: пішохід на проїжджій частині", "alarm", "zone",
                               [(0.0, 300.0, 120.0), (2.0, 310.0, 280.0)], (280, 180, 340, 290), camera="mel-n1")
        pcard = f"#alarms .alarm-card[data-event='{north_id}']"
        police.wait_for_selector(pcard, timeout=5000)
        assert "Північний міст" in police.inner_text(pcard) and "до камери" in police.inner_text(pcard)
        assert police.locator(f"{pcard} button.act-ack, {pcard} button.play-clip").count() == 0
        assert police.locator("#alarms [data-event]").count() == 1
        shot(police, "alarm-police-own-group")
        police.click(f"{pcard} button.hide")  # hidden on this screen only
        police.wait_for_selector("#alarms", state="hidden")
        pctx.close()
        assert not problems, problems
        print(f"alarm card shown {arrived_s:.2f} s after the event was written; test {time.monotonic() - started:.1f} s")
    finally:
        v.stop()


def test_alarms_come_back_after_a_server_restart_and_a_started_note_keeps_its_card(browser, tmp_path):  # noqa: F811
    """The socket reconnects by itself; alarms handled elsewhere meanwhile leave; a newer
    alarm waits as a row while the operator is writing a note on the open card."""
    from varta.events.store import EventStore

    v = VartaHome(tmp_path / "restart")
    v.start()
    problems: list[str] = []
    try:
        v.run("camera", "add", CAMERA, "--url", "rtsp://127.0.0.1:9/none", "--group", "centre", "--name", NAME,
              "--schedule", "off")
        password, _ = v.account("olena", "department")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("pageerror", lambda e: problems.append(str(e)))
        sign_in(page, v.base_url, "olena", password)
        page.wait_for_selector("#alarms[data-ws=open]", state="attached")
        walk = [(0.0, 100.0, 300.0), (2.0, 200.0, 300.0)]
        first = _open_event(v, "Сквер", "alarm", "zone", walk, (150, 100, 250, 300))
        page.wait_for_selector(f".alarm-card[data-event='{first}']")

        v.stop()
        page.wait_for_selector("#alarms[data-ws=reconnecting] .problem:not(:empty)", state="attached")
        EventStore(v.engine(), v.home / "events").act(first, "ack", "kovalenko")  # handled at another desk
        second = _open_event(v, "Сквер", "warning", "zone", walk, (150, 100, 250, 300))
        v.start()
        page.wait_for_selector("#alarms[data-ws=open]", state="attached", timeout=40000)
        page.wait_for_selector(f".alarm-card[data-event='{second}']", timeout=5000)
        page.wait_for_selector(f".alarm-card[data-event='{first}']", state="detached", timeout=5000)

        page.click(f".alarm-card[data-event='{second}'] button.act-note")
        page.keyboard.type("Наряд ")
        third = _open_event(v, "Сквер", "alarm", "zone", walk, (150, 100, 250, 300))
        page.wait_for_selector(f".alarm-row[data-event='{third}']", timeout=5000)  # waits as a row
        page.keyboard.type("виїхав")  # the note field kept its focus and text
        page.keyboard.press("Enter")
        page.wait_for_selector(f".alarm-card[data-event='{second}'] .note-done:not(:empty)")
        page.click(f".alarm-card[data-event='{second}'] button.act-true")
        page.wait_for_selector(f".alarm-card[data-event='{third}']", timeout=5000)
        assert page.inner_text("#alarm-count") == "1" and page.title().startswith("(1)")
        with v.api("auditor", "department") as c:
            ev = c.get(f"/api/events/{second}").json()
        assert ev["verdict"] == "true" and [(a["action"], a["note"]) for a in ev["actions"]] == [
            ("note", "Наряд виїхав"), ("true", "")]
        page.close()
        assert not problems, problems
    finally:
        v.stop()
