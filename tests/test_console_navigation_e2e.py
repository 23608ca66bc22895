"""Navigation in the web console, in real headless Chromium (Playwright) against a running
Varta: a view whose answer comes late must not replace the view the operator has gone to
since, the view left behind stops its live video, and back/forward (the hash) still work.

The race is made deterministic by holding the browser's ``GET /api/cameras`` (Playwright's
``page.route``) until the newer view is on screen, then letting it through. The cameras
point nowhere with recording off: no video is needed.
"""

from __future__ import annotations

import time

import pytest

from test_console_e2e import browser, shot, sign_in  # noqa: F401  (browser is a fixture)

pytestmark = [pytest.mark.e2e]

LIVE_WALL = "#group"                                      # the live wall's toolbar
EVIDENCE = "#evidence[data-tab=requests] #deadlines .none"  # the Evidence area, read in full
HEALTH = "#health tbody tr"
EVENTS = "#events-filter"


class Held:
    """Holds the next ``GET /api/cameras`` of the page (armed by hold()); others go through."""

    def __init__(self, page):
        self.page, self.armed, self.routes = page, False, []
        page.route("**/api/cameras", self._handle)

    def _handle(self, route):
        if self.armed:
            self.armed = False
            self.routes.append(route)
        else:
            route.continue_()

    def hold(self):
        self.armed, self.routes = True, []

    def wait_held(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not self.routes:
            assert time.monotonic() < deadline, "the view did not ask for /api/cameras"
            self.page.wait_for_timeout(20)

    def release(self):
        """The late answer arrives (the page may have cancelled the request meanwhile)."""
        for route in self.routes:
            try:
                route.continue_()
            except Exception:  # noqa: BLE001  (cancelled by the page: nothing to answer)
                pass
        self.page.wait_for_timeout(1000)  # time for a late view to (wrongly) draw itself


def _on(page) -> str:
    return page.get_attribute("#nav a.on", "data-page") or ""


def test_a_late_view_does_not_replace_the_newer_one_and_history_works(browser, varta):  # noqa: F811
    started = time.monotonic()
    v = varta()
    for cam in ("mel-n1", "mel-n2"):
        v.run("camera", "add", cam, "--url", "rtsp://127.0.0.1:9/none", "--schedule", "off")
    v.start()
    password, _ = v.account("olena", "department")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    cancelled: list[str] = []
    page.on("requestfailed", lambda r: cancelled.append(r.url) if r.url.endswith("/api/cameras") else None)
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws) if "/live" in ws.url else None)
    held = Held(page)

    # Right after sign-in the live wall waits for its cameras; the operator goes to Evidence.
    held.hold()
    sign_in(page, v.base_url, "olena", password)
    page.wait_for_selector("#nav a[data-page=evidence]")
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)  # after the 401 of sign-in
    held.wait_held()
    page.click("#nav a[data-page=evidence]")
    page.wait_for_selector(EVIDENCE)
    held.release()
    assert page.locator(EVIDENCE).count() == 1, "the late live wall replaced the Evidence page"
    assert page.locator(f"{LIVE_WALL}, .tile").count() == 0
    assert _on(page) == "evidence" and page.url.endswith("#/evidence")
    assert cancelled, "the abandoned live wall's request was not cancelled"
    shot(page, "navigation-evidence-kept")

    # The events page (alarms.js: a view given the page as main()) waits for its cameras; the
    # operator goes to Health, which draws first; the late events page gives way.
    held.hold()
    page.click("#nav a[data-page=events]")
    held.wait_held()
    page.click("#nav a[data-page=health]")
    page.wait_for_selector(HEALTH)
    held.release()
    assert page.locator(HEALTH).count() == 2 and page.locator(EVENTS).count() == 0
    assert _on(page) == "health"

    # The live wall plays (tries to: the cameras are down) and is left: its sockets close
    # and stay closed (no reconnection timer survives the view).
    page.click("#nav a[data-page=live]")
    page.wait_for_selector(".tile[data-camera=mel-n1]")
    page.wait_for_function("() => document.querySelectorAll('.tile').length === 2")
    deadline = time.monotonic() + 10
    while len(sockets) < 2:
        assert time.monotonic() < deadline, "the live tiles opened no WebSocket"
        page.wait_for_timeout(50)
    page.click("#nav a[data-page=evidence]")
    page.wait_for_selector(EVIDENCE)
    opened = len(sockets)
    page.wait_for_timeout(2500)  # longer than LivePlayer's first reconnection delay
    assert all(ws.is_closed() for ws in sockets), "the left live wall still has open sockets"
    assert len(sockets) == opened, "the left live wall reconnected"

    # Back and forward move through the hash: Evidence ← live wall ← Health, and on again.
    page.go_back()
    page.wait_for_selector(".tile[data-camera=mel-n1]")
    assert _on(page) == "live" and page.locator(EVIDENCE).count() == 0
    page.go_back()
    page.wait_for_selector(HEALTH)
    assert _on(page) == "health" and page.locator(".tile").count() == 0
    page.go_forward()
    page.wait_for_selector(".tile[data-camera=mel-n2]")
    page.go_forward()
    page.wait_for_selector(EVIDENCE)
    assert _on(page) == "evidence" and page.locator(".tile").count() == 0
    shot(page, "navigation-history")

    assert not problems, problems
    page.close()
    assert time.monotonic() - started < 60
