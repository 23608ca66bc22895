"""The administrator's cameras page in real headless Chromium: the weekly recording
timetable (R8) is edited on a week grid, not typed as JSON (issue 15)."""

from __future__ import annotations

import pytest

from test_console_e2e import browser, shot, sign_in  # noqa: F401  (browser is a fixture)

pytestmark = [pytest.mark.e2e]


def _cell(page, day: str, hhmm: str) -> str:
    h, m = map(int, hhmm.split(":"))
    slot = h * 2 + m // 30
    return page.get_attribute(f"#timetable tr[data-day={day}] td:nth-of-type({slot + 1})", "data-mode")


def test_the_weekly_timetable_is_edited_on_a_week_grid(browser, varta):  # noqa: F811
    v = varta()
    v.run("camera", "add", "mel-tt1", "--url", "rtsp://127.0.0.1:9/none", "--schedule", "continuous")
    v.start()
    password, _ = v.account("root", "admin")
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    sign_in(page, v.base_url, "root", password)
    page.wait_for_selector("#admin-cameras tr[data-camera=mel-tt1]")
    page.click("tr[data-camera=mel-tt1] button.timetable")
    page.wait_for_selector("#timetable[data-camera=mel-tt1] .tt-grid td")
    assert _cell(page, "mon", "23:00") == "continuous"

    # Weeknights off from 22:00 to 06:00 (past midnight), weekends by motion all day.
    page.click("#timetable button.add-rule")  # proposes Mon–Fri 22:00–06:00
    rule = page.locator("#timetable .tt-rule").nth(0)
    rule.locator("select.mode").select_option("off")
    page.click("#timetable button.add-rule")
    rule = page.locator("#timetable .tt-rule").nth(1)
    for d in ("mon", "tue", "wed", "thu", "fri"):
        rule.locator(f".day input[value={d}]").uncheck()
    for d in ("sat", "sun"):
        rule.locator(f".day input[value={d}]").check()
    rule.locator("input.from").fill("00:00")
    rule.locator("input.to").fill("24:00")
    rule.locator("select.mode").select_option("motion")
    # The grid shows what the server will do, before saving.
    assert _cell(page, "mon", "21:30") == "continuous"
    assert _cell(page, "mon", "22:00") == "off"
    assert _cell(page, "tue", "05:30") == "off"          # Monday's night, past midnight
    assert _cell(page, "tue", "06:00") == "continuous"
    assert _cell(page, "sat", "05:00") == "motion"        # the later rule wins over Friday's night
    assert _cell(page, "sun", "12:00") == "motion"
    shot(page, "admin-timetable")

    # An impossible time is marked by the browser and nothing is saved.
    rule.locator("input.to").fill("25:00")
    page.click("#timetable button[type=submit]")
    page.wait_for_timeout(500)
    assert page.locator("#timetable input.to:invalid").count() == 1
    assert v.api().get("/api/cameras/mel-tt1").json()["schedule"]["rules"] == []
    rule.locator("input.to").fill("24:00")
    page.click("#timetable button[type=submit]")
    page.wait_for_selector("#timetable", state="detached")
    saved = v.api().get("/api/cameras/mel-tt1").json()["schedule"]
    assert saved == {"default": "continuous", "rules": [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "22:00", "to": "06:00", "mode": "off"},
        {"days": ["sat", "sun"], "from": "00:00", "to": "24:00", "mode": "motion"}]}, saved

    # Opened again, the editor shows what is stored.
    page.click("tr[data-camera=mel-tt1] button.timetable")
    page.wait_for_selector("#timetable .tt-rule")
    assert page.locator("#timetable .tt-rule").count() == 2
    assert _cell(page, "wed", "02:00") == "off" and _cell(page, "sat", "23:30") == "motion"
