"""The web console in real headless Chromium (Debian's ``chromium``, driven by Playwright)
against a running Varta whose cameras are a real RTSP server.

Screenshots of each page are saved under ``VARTA_TEST_ARTIFACTS`` (default
``.cache/artifacts``) for people to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, VartaHome

ARTIFACTS = Path(os.environ.get("VARTA_TEST_ARTIFACTS", ROOT / ".cache" / "artifacts"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def sign_in(page, base_url: str, login: str, password: str) -> None:
    page.goto(base_url + "/")
    page.fill("#login input[name=login]", login)
    page.fill("#login input[name=password]", password)
    shot(page, "login")
    page.click("#login button[type=submit]")


# The picture of the running <video>, measured in the page: frames advance and the image
# is not blank (a blank or frozen tile is what an operator would notice).
_PICTURE = """(sel) => {
  const v = document.querySelector(sel);
  if (!v || v.readyState < 2 || !v.videoWidth) return null;
  const c = document.createElement('canvas');
  c.width = 160; c.height = 90;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0, c.width, c.height);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sq = 0, n = 0;
  for (let i = 0; i < d.length; i += 4) { const y = (d[i] + d[i+1] + d[i+2]) / 3; sum += y; sq += y * y; n++; }
  const mean = sum / n;
  return {time: v.currentTime, width: v.videoWidth, height: v.videoHeight, std: Math.sqrt(sq / n - mean * mean),
          lag: v.buffered.length ? v.buffered.end(v.buffered.length - 1) - v.currentTime : null};
}"""


def test_sign_in_and_the_live_wall_plays(browser, camsim, tmp_path):
    v = VartaHome(tmp_path / "console")
    v.start()
    try:
        v.run("camera", "add", "mel-w1", "--url", camsim.url("gen1"), "--group", "centre", "--name", "Площа",
              "--schedule", "off")
        v.run("camera", "add", "mel-w2", "--url", camsim.url("gen2"), "--group", "north", "--schedule", "off")
        password, _ = v.account("olena", "department")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        sign_in(page, v.base_url, "olena", "wrong-password-123")
        page.wait_for_selector("#login-error:not(:empty)")
        # Worded in the page's language by the refusal's code (the server's text is English).
        assert page.inner_text("#login-error") == "Невірний логін або пароль"
        sign_in(page, v.base_url, "olena", password)
        page.wait_for_selector(".tile[data-camera=mel-w1] video")
        assert "Test Olena User" in page.inner_text("#who")
        # Both tiles go live and their pictures move.
        for cam in ("mel-w1", "mel-w2"):
            page.wait_for_function(f"() => document.querySelector('.tile[data-camera={cam}]').dataset.state === 'live'",
                                   timeout=20000)
        sel = ".tile[data-camera=mel-w1] video"
        page.wait_for_function(f"() => {{ const v = document.querySelector('{sel}'); return v && v.currentTime > 1; }}",
                               timeout=20000)
        first = page.evaluate(_PICTURE, sel)
        page.wait_for_timeout(2000)
        later = page.evaluate(_PICTURE, sel)
        assert first and later, "no picture"
        assert later["time"] > first["time"] + 1.0  # playing, not frozen
        assert later["width"] == 640 and later["height"] == 360
        assert later["std"] > 10  # a real picture, not a black or grey tile
        assert later["lag"] is not None and later["lag"] < 2.0  # kept near the live edge
        viewers = page.inner_text(".tile[data-camera=mel-w1] .viewers")
        assert "1" in viewers
        # The delay caption: seconds with two decimals and a tooltip saying what is measured.
        page.wait_for_function("() => /^\\d+\\.\\d\\d с$/.test(document.querySelector("
                               "'.tile[data-camera=mel-w1] .delay').textContent)", timeout=10000)
        assert "від миті, коли кадр надійшов" in page.get_attribute(".tile[data-camera=mel-w1] .delay", "title")
        shot(page, "live-wall")
        # The group filter and the 1-camera layout.
        page.select_option("#group", "north")
        page.wait_for_selector(".tile[data-camera=mel-w1]", state="detached")
        assert page.locator(".tile").count() == 1
        shot(page, "live-filtered")
        # Health page: every camera with its recorder state.
        page.click("#nav a[data-page=health]")
        page.wait_for_selector("#health tbody tr")
        assert page.locator("#health tbody tr").count() == 2
        # In the console's language, times in the city's: no "recording", no raw ISO, no empty
        # header; and it refreshes by itself.
        states = page.eval_on_selector_all(
            "#health tbody tr", "rows => rows.map(r => [r.dataset.state, r.querySelector('td.state').textContent, "
            "r.querySelector('td.last-frame').textContent])")
        words = {"recording": "запис", "reconnecting": "повторне з'єднання", "starting": "запуск", "failed": "збій",
                 "off": "вимкнено", "disabled": "вимкнено", "stopped": "зупинено"}
        assert all(shown == words[code] for code, shown, _ in states), states
        assert all("T" not in last for _, _, last in states), states
        assert all(page.eval_on_selector_all("#health thead th", "els => els.map(e => e.textContent.trim())")), \
            "a column without a header"
        before = page.get_attribute("#health", "data-refreshed")
        page.wait_for_function(f"() => (document.querySelector('#health').dataset.refreshed || '') !== '{before or ''}'",
                               timeout=12000)
        shot(page, "health")
        # Live viewing is journaled: start and stop with the duration.
        page.click("#logout")
        page.wait_for_selector("#login")
        with v.api("auditor", "department") as c:
            lines = c.get("/api/journal", params={"account": "olena", "action": "live.view"}).json()["lines"]
        details = [ln["detail"] for ln in lines if ln["object"] == "camera:mel-w1"]
        assert any("started" in d for d in details)
        page.close()
        with v.api("auditor", "department") as c:
            v.wait_for(lambda: any("stopped after" in ln["detail"] for ln in c.get(
                "/api/journal", params={"account": "olena", "action": "live.view"}).json()["lines"]),
                timeout=20, what="live stop journaled")
    finally:
        v.stop()


_GRAY = """(sel) => {
  const v = document.querySelector(sel);
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  const out = new Array(c.width * c.height);
  for (let i = 0, j = 0; i < d.length; i += 4, j++) out[j] = (d[i] + d[i+1] + d[i+2]) / 3;
  return {w: c.width, h: c.height, px: out};
}"""


def _frame_counter(page, sel: str) -> int:
    import numpy as np

    from varta.demo.media import read_frame_counter

    img = page.evaluate(_GRAY, sel)
    return read_frame_counter(np.array(img["px"], dtype=np.float32).reshape(img["h"], img["w"]))


def _recorded_counter_at(v: VartaHome, camera: str, iso: str) -> int:
    """What the archive holds at ``iso``: decode the segment file like an investigator would."""
    import io

    import av

    from varta.demo.media import read_frame_counter

    with v.api() as c:
        seg = c.get(f"/api/cameras/{camera}/segment-at", params={"t": iso}).json()
        data = c.get(seg["url"]).content
    shown = None
    with av.open(io.BytesIO(data)) as cont:
        for fr in cont.decode(video=0):
            if fr.time <= seg["offset_s"] + 1e-6:
                shown = read_frame_counter(fr.to_ndarray(format="gray"))
    return shown


def test_playback_seeks_shows_the_gap_exports_and_is_refused_to_police(browser, camsim, tmp_path):
    import subprocess
    import time
    from urllib.parse import quote

    import pyotp

    # Behind a reverse proxy on 127.0.0.1: a browser sending X-Forwarded-For is "from outside".
    v = VartaHome(tmp_path / "playback", trusted_proxies="127.0.0.1/32")
    v.start()
    try:
        v.run("camera", "add", "mel-p", "--url", camsim.url("gen1"), "--group", "centre")
        with v.api() as c:
            v.wait_for(lambda: len(c.get("/api/cameras/mel-p/segments",
                                         params={"from": "now-1h", "to": "now+1m"}).json()) >= 4, 60, "4 segments")
            camsim.stop()  # the camera goes down for a while: a gap with a reason
            v.wait_for(lambda: c.get("/api/cameras/mel-p/status").json()["state"] in ("reconnecting", "failed"), 60,
                       "outage noticed")
            time.sleep(4)
            camsim.start()
            v.wait_for(lambda: c.get("/api/cameras/mel-p/status").json()["state"] == "recording", 60, "recording again")
            segs = c.get("/api/cameras/mel-p/segments", params={"from": "now-1h", "to": "now+1m"}).json()
            v.wait_for(lambda: len(c.get("/api/cameras/mel-p/segments", params={"from": "now-1h", "to": "now+1m"})
                                   .json()) >= len(segs) + 2, 60, "more segments")
            segs = c.get("/api/cameras/mel-p/segments", params={"from": "now-1h", "to": "now+1m"}).json()
        from varta.clock import format_time, parse_time
        from zoneinfo import ZoneInfo

        tz = ZoneInfo("Europe/Kyiv")
        asked = format_time(parse_time(segs[1]["start"], tz) + 1_300_000, tz)
        expected = _recorded_counter_at(v, "mel-p", asked)

        password, _ = v.account("olena", "department")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, v.base_url, "olena", password)
        page.wait_for_selector("#nav a[data-page=playback]")
        # Archive from the menu opens on the last minutes of the recording camera, not on an empty form.
        page.click("#nav a[data-page=playback]")
        page.wait_for_selector("video[data-camera=mel-p]")
        opened = page.input_value("#pb-time")
        assert re.fullmatch(r"\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d", opened), opened
        from datetime import datetime as _dt
        from zoneinfo import ZoneInfo as _Zone

        ago = _dt.now(_Zone("Europe/Kyiv")).replace(tzinfo=None) - _dt.strptime(opened, "%d.%m.%Y %H:%M:%S")
        assert 280 <= ago.total_seconds() <= 360, (opened, ago)
        page.goto(f"{v.base_url}/#/playback?cameras=mel-p&zoom=10min&paused=1&t={quote(asked)}")
        sel = "video[data-camera=mel-p]"
        page.wait_for_function(f"() => {{ const v = document.querySelector('{sel}'); "
                               f"return v && v.dataset.state === 'ready' && v.readyState >= 2 && !v.seeking; }}",
                               timeout=30000)
        page.wait_for_timeout(500)
        assert _frame_counter(page, sel) == expected  # the frame recorded at the asked instant
        assert page.inner_text("#pb-clock").endswith(asked[11:19])
        # The timeline lists the outage as a gap with its reason.
        page.wait_for_selector("ul.gaps[data-camera=mel-p] li", state="attached")
        reasons = page.eval_on_selector_all("ul.gaps[data-camera=mel-p] li", "els => els.map(e => e.dataset.reason)")
        assert any(r in ("refused", "stream_ended", "timeout", "stalled", "process_died") for r in reasons), reasons
        # ...worded, with a legend that tells an outage from footage not expected or still being
        # recorded, and a time axis in the city's time at every zoom level.
        legend = page.inner_text("#pb-legend")
        assert all(w in legend for w in ("збій запису", "камеру ще не зареєстровано", "записується зараз")), legend
        listed = page.inner_text("ul.gaps[data-camera=mel-p]")
        assert "refused" not in listed and "stream_ended" not in listed
        assert page.inner_text("#pb-play") == "Відтворити / пауза"
        assert page.get_attribute("#pb-time", "placeholder") == "дд.мм.рррр гг:хв:сс"
        spans = {"minute": 60e3, "10min": 600e3, "hour": 3600e3, "day": 86400e3, "week": 7 * 86400e3, "month": 30 * 86400e3}
        for zoom, span in spans.items():
            page.click(f"button[data-zoom='{zoom}']")
            page.wait_for_function(f"() => {{ const c = document.querySelector('canvas.timeline[data-camera=mel-p]'); "
                                   f"return c.dataset.span == '{int(span)}' && c.dataset.ticks.split('|').length >= 3; }}",
                                   timeout=10000)
            ticks = page.get_attribute("canvas.timeline[data-camera=mel-p]", "data-ticks").split("|")
            pattern = r"\d\d\.\d\d" if zoom in ("week", "month") else r"\d\d:\d\d(:\d\d)?"
            assert all(re.fullmatch(pattern, x) for x in ticks), (zoom, ticks)
        page.click("button[data-zoom='10min']")
        shot(page, "playback")
        # Export an interval marked on the timeline: progress, then a playable MP4 to download.
        page.click("#mark-in")
        page.click("#pb-play")
        page.wait_for_timeout(3000)
        page.click("#mark-out")
        page.click("#export")
        link = page.wait_for_selector("#export-links a.download", timeout=60000)
        with page.expect_download() as dl:
            link.click()
        out = tmp_path / "export.mp4"
        dl.value.save_as(out)
        dur = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                                    str(out)], capture_output=True, text=True, check=True).stdout)
        assert dur >= 1.5
        # Saved under a name of its own (camera, day, interval), not "<camera>.mp4" that the next
        # export would overwrite; the page gives the interval, length and SHA-256 of the file.
        import hashlib

        assert re.fullmatch(r"mel-p_\d{4}-\d\d-\d\d_\d{6}-\d{6}\.mp4", dl.value.suggested_filename), \
            dl.value.suggested_filename
        shown = page.inner_text("#export-links .export-file")
        assert hashlib.sha256(out.read_bytes()).hexdigest() in shown, shown
        assert re.search(r"\d\d:\d\d:\d\d – \d{4}-\d\d-\d\d \d\d:\d\d:\d\d · \d+\.\d с", shown), shown
        shot(page, "export")
        page.close()

        # Police, from outside (through the proxy) with their second factor: live yes, playback no.
        ppw, secret = v.account("bondar", "police", groups=["centre"], totp=True)
        ctx = browser.new_context(viewport={"width": 1280, "height": 800},
                                  extra_http_headers={"X-Forwarded-For": "203.0.113.9"})
        police = ctx.new_page()
        police.goto(v.base_url + "/")
        police.fill("#login input[name=login]", "bondar")
        police.fill("#login input[name=password]", ppw)
        police.fill("#login input[name=otp]", pyotp.TOTP(secret).now())
        police.click("#login button[type=submit]")
        police.wait_for_selector(".tile[data-camera=mel-p]")
        assert "віддалений доступ" in police.inner_text("#who")
        assert police.locator("#nav a[data-page=playback]").count() == 0
        police.goto(f"{v.base_url}/#/playback?cameras=mel-p&t={quote(asked)}")
        police.wait_for_selector("main .error")
        assert "A4.4" in police.inner_text("main .error")
        shot(police, "playback-refused-police")
        ctx.close()
    finally:
        v.stop()


def test_map_shows_cameras_by_state_without_tiles(browser, tmp_path):
    """No tile server can be reached here: the map must still place and colour the cameras."""
    v = VartaHome(tmp_path / "map", map_tile_url="http://127.0.0.1:9/{z}/{x}/{y}.png")
    v.start()
    try:
        v.run("camera", "add", "mel-m1", "--url", "rtsp://127.0.0.1:9/x", "--lat", "46.8489", "--lon", "35.3653")
        v.run("camera", "add", "mel-m2", "--url", "rtsp://127.0.0.1:9/y", "--lat", "46.8440", "--lon", "35.3680",
              "--schedule", "off")
        with v.api() as c:
            v.wait_for(lambda: c.get("/api/cameras/mel-m1/status").json()["state"] in ("reconnecting", "failed"),
                       60, "camera down")
            # The recorder reports a camera it was given with its schedule off as "off".
            v.wait_for(lambda: c.get("/api/cameras/mel-m2/status").json()["state"] == "off", 60, "camera off")
        password, _ = v.account("olena", "department")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
        sign_in(page, v.base_url, "olena", password)
        page.wait_for_selector("#nav a[data-page=map]")
        page.click("#nav a[data-page=map]")
        page.wait_for_selector("#map[data-markers='2']")
        states = {el.get_attribute("data-camera"): el.get_attribute("data-state")
                  for el in page.query_selector_all("#map path[data-camera]")}
        assert states["mel-m1"] in ("reconnecting", "failed") and states["mel-m2"] == "off"
        page.wait_for_function("() => document.querySelector('#map-note').textContent.length > 0", timeout=15000)
        page.click("#map path[data-camera=mel-m1]")
        page.wait_for_selector(".leaflet-popup-content")
        assert "mel-m1" in page.inner_text(".leaflet-popup-content")
        assert not errors, errors
        shot(page, "map")
    finally:
        v.stop()


def test_administration_pages_within_the_policy(browser, tmp_path):
    """The administrator adds a camera and an account and changes a schedule; the department
    reads and verifies the journal and records a cabinet entry; neither sees the other's pages."""
    v = VartaHome(tmp_path / "admin")
    v.start()
    try:
        apw, _ = v.account("root", "admin")
        v.run("camera", "add", "mel-a0", "--url", "rtsp://127.0.0.1:9/none", "--schedule", "off")
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        sign_in(page, v.base_url, "root", apw)
        page.wait_for_selector("#nav a[data-page=admin]")
        assert page.locator("#nav a[data-page=playback]").count() == 0  # administration sees no video
        # ...so it lands on its own first page, not on a wall of refused tiles, and a link to
        # the live wall leads there too.
        page.wait_for_function("() => location.hash.startsWith('#/admin/cameras')")
        assert page.locator("#nav a[data-page=live]").count() == 0
        assert page.locator(".tile, video, button.snapshot").count() == 0
        page.goto(v.base_url + "/#/live?camera=mel-a0")
        page.wait_for_function("() => location.hash.startsWith('#/admin/')")
        assert page.locator(".tile, video").count() == 0
        page.click("#nav a[data-page=admin]")
        page.wait_for_selector("#camera-form")
        page.fill("#camera-form input[name=id]", "mel-a1")
        page.fill("#camera-form input[name=url]", "rtsp://admin:Secret9@127.0.0.1:9/x")
        page.fill("#camera-form input[name=name]", "Ринок")
        page.click("#camera-form button[type=submit]")
        page.wait_for_selector("tr[data-camera=mel-a1]")
        assert "Secret9" not in page.inner_text("#admin-cameras")
        page.select_option("tr[data-camera=mel-a1] select.mode", "off")
        page.wait_for_selector("#admin-cameras p.ok")
        with v.api() as c:
            assert c.get("/api/cameras/mel-a1").json()["schedule"]["default"] == "off"
        shot(page, "admin-cameras")
        page.goto(v.base_url + "/#/admin/users")
        page.wait_for_selector("#user-form")
        page.fill("#user-form input[name=login]", "kovalenko")
        page.fill("#user-form input[name=full_name]", "Коваленко Марія Іванівна")
        page.select_option("#user-form select[name=role]", "department")
        page.click("#user-form button[type=submit]")
        page.wait_for_selector("tr[data-login=kovalenko]")
        note = page.inner_text("#users-note")
        one_time = note.rsplit(" ", 1)[1]
        shot(page, "admin-users")
        page.click("#logout")

        # The new department user: one-time password → new password → the journal.
        sign_in(page, v.base_url, "kovalenko", one_time)
        page.wait_for_selector("#change-password")
        page.fill("#change-password input[name=current]", one_time)
        page.fill("#change-password input[name=next]", "Kalyna-Dnipro-2026")
        page.click("#change-password button[type=submit]")
        page.wait_for_selector("#nav a[data-page=admin]")
        page.goto(v.base_url + "/#/admin/journal")
        page.wait_for_selector("#journal tbody tr")
        assert page.locator("a[href='#/admin/users']").count() == 0  # not an administrator
        text = page.inner_text("#journal")
        assert "користувач kovalenko" in text and "камера mel-a1" in text
        page.click("#verify")
        page.wait_for_selector("#journal-verify.ok")
        page.fill("#cabinet-form input[name=person]", "Коваль Андрій Іванович")
        page.fill("#cabinet-form input[name=purpose]", "заміна диска")
        page.fill("#cabinet-form input[name=let_in_by]", "Коваленко М. І.")
        page.fill("#cabinet-form input[name=entered]", "21.11.2026 09:10:00")  # the city's own form
        page.click("#cabinet-form button[type=submit]")
        page.wait_for_selector("#cabinet-form span.ok")
        page.wait_for_function("() => document.querySelector('#journal').innerText.includes('Коваль Андрій')")
        # The newest lines first (the cabinet entry just made is at the top), readable links.
        seqs = [int(x) for x in page.eval_on_selector_all("#journal tbody tr td:first-child", "els => els.map(e => e.textContent)")]
        assert seqs == sorted(seqs, reverse=True) and len(seqs) > 3, seqs
        assert page.eval_on_selector("a.report-link", "a => getComputedStyle(a).color") == "rgb(140, 196, 255)"
        shot(page, "admin-journal")
        # The administrator's walk journaled no refused live views (it was never offered one).
        with v.api("auditor", "department") as c:
            refused = c.get("/api/journal", params={"account": "root", "result": "refused"}).json()["lines"]
        assert not [ln for ln in refused if ln["action"] in ("live.view", "archive.play")], refused
    finally:
        v.stop()


def test_api_documentation_renders_with_the_network_blocked(browser, tmp_path):
    """/api/docs is Swagger UI from the project's own files: with every request that leaves
    this Varta refused (Chromium request interception), the page still lists the API."""
    v = VartaHome(tmp_path / "docs")
    v.start()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        outside = []

        def only_varta(route):
            if route.request.url.startswith(v.base_url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_varta)
        page.goto(v.base_url + "/api/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
        assert "Varta" in page.inner_text(".swagger-ui .info .title")
        page.wait_for_selector(".opblock-summary-path[data-path='/api/cameras']", timeout=15000)
        shot(page, "api-docs-offline")
        assert outside == [], f"the documentation page reached outside: {outside}"
        page.close()
    finally:
        v.stop()
