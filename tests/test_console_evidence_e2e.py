"""Evidence in the web console (issue 6), in real headless Chromium (Playwright) against a
running Varta: a request registered through the form (and the hold it places), the answer
deadlines in red, a hold placed and released on written instructions, an incident made and
changed through the form, and one opened from an alarm card.

The cameras point nowhere with recording off: the registers need no video. A leader resolves
requests over the API from outside with TOTP, as in ``test_evidence_e2e.py``. Screenshots are
saved under ``VARTA_TEST_ARTIFACTS`` (default ``.cache/artifacts``), named ``evidence-*``.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pyotp
import pytest
from conftest import login_client

from test_console_e2e import browser, shot, sign_in  # noqa: F401  (browser is a fixture)

pytestmark = [pytest.mark.e2e]

TZ = ZoneInfo("Europe/Kyiv")  # the default city zone
REMOTE = "127.0.0.3"          # outside: onsite_networks is 127.0.0.1 only
DAY_US = 86_400 * 1_000_000
RED, BOLD = "rgb(255, 92, 92)", 700  # var(--bad); an overdue line is bold


def _leader(v, login, role):
    password, secret = v.account(login, role, totp=True)
    return login_client(v.base_url, login, password, otp=pyotp.TOTP(secret).now(), local_address=REMOTE)


def _leader_page(browser, v, login):  # noqa: F811
    """A deputy mayor in Chromium from outside (through the proxy), with the second factor."""
    password, secret = v.account(login, "deputy_mayor", totp=True)
    ctx = browser.new_context(viewport={"width": 1500, "height": 950},
                              extra_http_headers={"X-Forwarded-For": "203.0.113.9"})
    page = ctx.new_page()
    page.goto(v.base_url + "/")
    page.fill("#login input[name=login]", login)
    page.fill("#login input[name=password]", password)
    page.fill("#login input[name=otp]", pyotp.TOTP(secret).now())
    page.click("#login button[type=submit]")
    page.wait_for_selector("#nav a[data-page=evidence]")
    page.wait_for_selector("#group")  # the live wall (the first view) has rendered: it cannot overwrite the next one
    return page


def _at(hours_ago: float) -> str:
    """A city time for a datetime-local input (minutes precision)."""
    return (datetime.now(TZ) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M")


def _request(dept, incoming_no: str, requester: str) -> dict:
    body = {"kind": "police", "incoming_no": incoming_no, "incoming_date": datetime.now(TZ).date().isoformat(),
            "requester": requester, "basis": "ст. 93 КПК України",
            "items": [{"camera_id": "mel-r1", "from": _at(3), "to": _at(2)}]}
    r = dept.post("/api/requests", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _style(page, sel: str) -> dict:
    return page.eval_on_selector(sel, "e => ({color: getComputedStyle(e).color, weight: +getComputedStyle(e).fontWeight})")


def test_requests_deadlines_holds_and_incidents_in_the_console(browser, varta):  # noqa: F811
    started = time.monotonic()
    # Behind a reverse proxy on 127.0.0.1: a browser sending X-Forwarded-For is "from outside".
    v = varta(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32", trusted_proxies="127.0.0.1/32")
    for cam, name in (("mel-r1", "Площа Перемоги"), ("mel-r2", "Центральний ринок")):
        v.run("camera", "add", cam, "--url", "rtsp://127.0.0.1:9/none", "--name", name, "--schedule", "off")
    v.start()
    problems: list[str] = []

    # The Responsible Department's operator, on site at a restricted-zone workstation.
    password, _ = v.account("olena", "department")
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    page.on("pageerror", lambda e: problems.append(str(e)))
    sign_in(page, v.base_url, "olena", password)
    page.wait_for_selector("#nav a[data-page=evidence]")
    page.wait_for_selector("#group")  # the live wall (the first view) has rendered
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    assert page.inner_text("#nav a[data-page=evidence]").strip() == "Докази"
    page.click("#nav a[data-page=evidence]")
    page.wait_for_selector("#evidence[data-tab=requests] #deadlines .none")
    assert page.inner_text("#evidence-tabs").split() == ["Запити", "Утримання", "Інциденти"]
    assert page.is_hidden("#deadline-badge")  # nothing is due
    page.click("#lang")  # English from here on
    page.wait_for_selector("#nav a[data-page=evidence]:text-is('Evidence')")
    page.wait_for_selector("#evidence-tabs a[data-tab=holds]:text-is('Holds')")

    # A police request registered through the form: two cameras, an interval each.
    page.click("#requests-new")
    page.wait_for_selector("#request-form")
    page.select_option("#request-form select[name=kind]", "police")
    page.fill("#request-form input[name=incoming_no]", "12/3456-2026")
    page.fill("#request-form input[name=requester]", "Мелітопольський РВП ГУНП")
    page.fill("#request-form input[name=contact]", "слідчий Бондар І. С.")
    page.fill("#request-form textarea[name=basis]", "ст. 93 КПК України; провадження № 12026080000000123")
    rows = page.locator("#request-form .interval")
    rows.nth(0).locator("select.camera").select_option("mel-r1")
    rows.nth(0).locator("input.from").fill(_at(2))
    rows.nth(0).locator("input.to").fill(_at(1))
    page.click("#request-form .add-interval")
    rows.nth(1).locator("select.camera").select_option("mel-r2")
    rows.nth(1).locator("input.from").fill(_at(2))
    rows.nth(1).locator("input.to").fill(_at(1))
    shot(page, "evidence-request-form")
    page.click("#request-form button[type=submit]")
    page.wait_for_selector("#request-detail[data-state=registered]")
    detail = page.inner_text("#request-detail")
    assert "Registered" in detail and "mel-r1" in detail and "mel-r2" in detail and "12/3456-2026" in detail
    listed = page.locator("#requests-list tbody tr")
    assert listed.count() == 1
    assert "Registered" in listed.inner_text() and "Мелітопольський РВП ГУНП" in listed.inner_text()
    number = listed.get_attribute("data-number")
    assert number.startswith("REQ-") and number in detail
    assert "red" not in (listed.get_attribute("class") or "")  # not approved yet: no deadline
    # ...and the hold it placed at once, in the Holds tab.
    page.click("#evidence-tabs a[data-tab=holds]")
    held = page.locator("#holds-list tbody tr[data-kind=request]")
    held.wait_for()
    assert held.get_attribute("data-active") == "1"
    assert "mel-r1, mel-r2" in held.inner_text() and "active" in held.inner_text() and number in held.inner_text()

    # Two approved requests: one resolved two weeks ago (overdue), one today (on time).
    dept = v.api("dept.api", "department")
    old = _request(dept, "7/77-2026", "Головне управління ДСНС")
    fresh = _request(dept, "8/88-2026", "Мелітопольський міськрайонний суд")
    with v.engine().begin() as conn:
        from sqlalchemy import text

        conn.execute(text("update evidence_requests set registered_us = registered_us - :d where id = :i"),
                     {"d": 20 * DAY_US, "i": old["id"]})
    deputy = _leader(v, "deputy.kovalenko", "deputy_mayor")
    two_weeks_ago = (datetime.now(TZ).date() - timedelta(days=14)).isoformat()
    r = deputy.post(f"/api/requests/{old['id']}/resolve", json={"decision": "approve", "text": "Погоджую",
                                                                 "date": two_weeks_ago})
    assert r.status_code == 200, r.text
    old = r.json()
    assert old["deadline"] == "overdue"
    r = deputy.post(f"/api/requests/{fresh['id']}/resolve", json={"decision": "approve", "text": "Погоджую"})
    assert r.status_code == 200 and r.json()["deadline"] == "on_time", r.text

    page.click("#evidence-tabs a[data-tab=requests]")
    late = f"#deadlines a.deadline-item[data-number='{old['number']}']"
    page.wait_for_selector(late)
    assert f"Due {old['due_date']}" in page.inner_text(late) and "overdue" in page.inner_text(late)
    assert "red" in page.get_attribute(late, "class") and _style(page, late) == {"color": RED, "weight": BOLD}
    assert page.locator("#deadlines a.deadline-item").count() == 1  # the one on time is not in red
    assert "on time: 1" in page.inner_text("#deadlines")
    assert page.inner_text("#deadline-badge") == "1" and page.is_visible("#deadline-badge")
    old_row = f"#requests-list tr[data-number='{old['number']}']"
    assert set(page.get_attribute(old_row, "class").split()) >= {"red", "overdue"}
    assert _style(page, f"{old_row} td.due")["color"] == RED and "overdue" in page.inner_text(f"{old_row} td.due")
    fresh_row = f"#requests-list tr[data-number='{fresh['number']}']"
    assert "red" not in page.get_attribute(fresh_row, "class").split()
    assert "5 working days left" in page.inner_text(f"{fresh_row} td.due")
    shot(page, "evidence-deadlines")
    # The register as CSV, with the filters of the list.
    with page.expect_download() as dl:
        page.click("#evidence .downloads a[data-format=csv]")
    csv_text = open(dl.value.path(), encoding="utf-8-sig").read()
    assert number in csv_text and old["number"] in csv_text
    # The deadline links to the request; the user sees it was approved.
    page.click(late)
    page.wait_for_selector(f"#request-detail[data-id='{old['id']}'][data-state=approved]")
    assert "Погоджую" in page.inner_text("#request-detail") and page.locator("#request-detail #prepare").count() == 1

    # A deputy mayor, from outside with TOTP, resolves through the form: a third party's
    # request is refused to them with the order's reason (A4.8); the police request is approved.
    third = dept.post("/api/requests", json={
        "kind": "third_party", "incoming_no": "вх-15", "incoming_date": datetime.now(TZ).date().isoformat(),
        "requester": "ПрАТ СК «Страховик»", "basis": "страховий випадок",
        "items": [{"camera_id": "mel-r2", "from": _at(3), "to": _at(2)}]}).json()
    leader = _leader_page(browser, v, "deputy.bondarenko")
    leader.on("pageerror", lambda e: problems.append(f"leader: {e}"))
    leader.goto(f"{v.base_url}/#/evidence/requests/{third['id']}")
    leader.wait_for_selector("#resolve-form")
    assert "лише міський голова" in leader.inner_text("#resolve-form")
    leader.fill("#resolve-form textarea[name=text]", "Погоджую")
    leader.click("#resolve-form button[type=submit]")
    leader.wait_for_selector("#request-detail .error:not(:empty)")
    assert "mayor only" in leader.inner_text("#request-detail .error")
    leader.click(f"#requests-list tr[data-number='{number}']")
    leader.wait_for_selector("#request-detail[data-state=registered] #resolve-form")
    leader.fill("#resolve-form textarea[name=text]", "Погоджую. Підготувати у встановлений строк.")
    leader.click("#resolve-form button[type=submit]")
    leader.wait_for_selector("#request-detail[data-state=approved]")
    assert "5 роб. дн. залишилось" in leader.inner_text("#request-detail")
    assert leader.locator("#request-detail #prepare, #request-detail #resolve-form").count() == 0  # not a leader's step
    shot(leader, "evidence-leader-resolved")
    leader.context.close()

    # A hold on the mayor's written instruction, then released on a destruction instruction.
    page.click("#evidence-tabs a[data-tab=holds]")
    page.click("#holds-new")
    page.wait_for_selector("#hold-form")
    page.fill("#hold-form input[name=number]", "127-р")
    page.fill("#hold-form input[name=author]", "Іваненко Петро Петрович")
    page.select_option("#hold-form select[name=office]", "mayor")
    page.fill("#hold-form input[name=reason]", "ДТП на перехресті")
    row = page.locator("#hold-form .interval").nth(0)
    row.locator("select.camera").select_option("mel-r2")
    row.locator("input.from").fill(_at(5))
    row.locator("input.to").fill(_at(4))
    page.click("#hold-form button[type=submit]")
    page.wait_for_selector("#hold-detail[data-active='1']")
    assert "127-р" in page.inner_text("#hold-detail") and "Mayor" in page.inner_text("#hold-detail")
    hold_id = page.get_attribute("#hold-detail", "data-id")
    assert page.locator(f"#holds-list tr[data-id='{hold_id}'][data-kind=instruction][data-active='1']").count() == 1
    page.click("#release summary")
    page.fill("#release-form input[name=number]", "131-р")
    page.fill("#release-form input[name=author]", "Петренко Ольга Іванівна")
    page.select_option("#release-form select[name=office]", "first_deputy")
    page.fill("#release-form input[name=note]", "провадження закрито")
    page.click("#release-form button[type=submit]")
    page.wait_for_selector("#hold-detail[data-active='0']")
    text = page.inner_text("#hold-detail")
    assert "released" in text and "131-р" in text and "First deputy mayor" in text
    assert page.locator("#hold-detail .ev-history tr[data-action=released]").count() == 1
    assert "released" in page.inner_text(f"#holds-list tr[data-id='{hold_id}'] td.state")
    shot(page, "evidence-hold-released")

    # An incident through the form, then changed and annotated.
    page.click("#evidence-tabs a[data-tab=incidents]")
    page.click("#incidents-new")
    page.wait_for_selector("#incident-form")
    page.select_option("#incident-form select[name=type]", "traffic_accident")
    page.fill("#incident-form input[name=title]", "Зіткнення двох автомобілів")
    page.fill("#incident-form input[name=place]", "перехрестя просп. Б. Хмельницького і вул. Гетьманської")
    page.select_option("#incident-form select[name=cameras]", ["mel-r1", "mel-r2"])
    page.fill("#incident-form input[name=from]", _at(3))
    page.click("#incident-form button[type=submit]")
    page.wait_for_selector("#incident-detail[data-status=open]")
    assert "Traffic accident" in page.inner_text("#incident-detail")
    assert "Зіткнення двох автомобілів" in page.inner_text("#incidents-list")
    page.click("#incident-edit-box summary")
    page.select_option("#incident-edit select[name=status]", "investigating")
    page.click("#incident-edit button[type=submit]")
    page.wait_for_selector("#incident-detail[data-status=investigating]")
    page.fill("#incident-note input[name=text]", "Водії опитані")
    page.click("#incident-note button[type=submit]")
    page.wait_for_selector("#incident-detail .ev-history tr[data-action=note]")
    assert "Водії опитані" in page.inner_text("#incident-detail .ev-history")
    assert "Under review" in page.inner_text("#incidents-list")
    shot(page, "evidence-incident")

    # An incident opened from an alarm card: the card's button, then the incident is shown.
    from test_console_alarms_e2e import _open_event

    event_id = _open_event(v, "Перехрестя", "alarm", "zone", [(0.0, 120.0, 310.0), (2.0, 260.0, 300.0)],
                           (230, 120, 290, 300), camera="mel-r1")
    card = f"#alarms .alarm-card[data-event='{event_id}']"
    page.wait_for_selector(f"{card} button.incident", timeout=10000)
    page.click(f"{card} button.incident")
    page.wait_for_selector("#incident-detail .ev-facts a[href^='#/events/']")
    assert "mel-r1" in page.inner_text("#incident-detail") and "Перехрестя" in page.inner_text("#incident-detail")
    assert page.url.endswith(f"#/evidence/incidents/{page.get_attribute('#incident-detail', 'data-id')}")
    page.close()
    assert not problems, problems
    print(f"evidence console test {time.monotonic() - started:.1f} s")
