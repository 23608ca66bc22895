"""The web console in real headless Chromium (Debian's ``chromium``, driven by Playwright)
against a running Varta whose cameras are a real RTSP server.

Screenshots of each page are saved under ``VARTA_TEST_ARTIFACTS`` (default
``.cache/artifacts``) for people to look at.
"""

from __future__ import annotations

import os
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
        assert "wrong login or password" in page.inner_text("#login-error")
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
