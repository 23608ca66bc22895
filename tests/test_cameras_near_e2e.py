"""Cameras near a place (issue 16, R11, MVS-2): each camera's field of view, the city's own
address list, "which cameras see Soborna St. 12" — the geometry alone, then over HTTP and
the CLI, then a police dispatcher in Chromium who types the address and gets the live
tiles of the cameras that see it, nearest first, from the unit's own districts only."""

from __future__ import annotations

import json

import pyotp
import pytest

from test_console_e2e import browser, shot  # noqa: F401  (browser is a fixture)
from varta.cameras import geo

pytestmark = [pytest.mark.e2e]

P = (46.8489, 35.3653)  # camera A stands here


def _off(lat, lon, north_m, east_m):
    lat2, _ = geo.destination(lat, lon, 0.0, north_m) if north_m else (lat, lon)
    _, lon2 = geo.destination(lat, lon, 90.0, east_m) if east_m else (lat, lon)
    return round(lat2, 7), round(lon2, 7)


def test_the_geometry_of_seeing():
    a = geo.View(*P, direction=90, angle=70, range_m=60)
    assert abs(geo.distance_m(*P, *_off(*P, 0, 100)) - 100) < 0.5
    assert abs(geo.bearing_deg(*P, *_off(*P, 0, 50)) - 90) < 0.5
    assert geo.sees(a, *_off(*P, 0, 30))                 # straight ahead, 30 m
    assert geo.sees(a, *_off(*P, 15, 40))                # 20.6° off the axis, inside ±35°
    assert not geo.sees(a, *_off(*P, 30, 30))            # 45° off: outside
    assert not geo.sees(a, *_off(*P, 0, 70))             # beyond its 60 m
    assert not geo.sees(a, *_off(*P, 0, -30))            # behind it
    assert not geo.sees(geo.View(*P), *P)                # no surveyed view: not "sees" for sure
    assert geo.sees(geo.View(*P, 0, 360, 20), *_off(*P, -10, 5))  # a dome sees around
    found = geo.near({"a": a, "b": geo.View(*_off(*P, 40, 30), 0, 60, 50), "far": geo.View(*_off(*P, 0, 900))},
                     *_off(*P, 0, 30), 100)
    assert [(f["id"], f["sees"]) for f in found] == [("a", True), ("b", False)]
    assert geo.normalise("Вулиця Соборна, буд. 12") == geo.normalise("вул Соборна 12") == "вул соборна 12"


def test_a_police_dispatcher_sees_the_cameras_that_see_an_address(browser, varta, tmp_path):  # noqa: F811
    v = varta(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32", trusted_proxies="127.0.0.1/32")
    target = _off(*P, 0, 30)
    cams = {
        "mel-na": (P, "90,70,60", "centre"),                    # looks at the address from 30 m
        "mel-nb": (_off(*P, 40, 30), "0,60,50", "centre"),      # 40 m north of it, looking away
        "mel-nc": (_off(*P, -20, 30), "0,90,80", "north"),      # sees it, but another unit's district
        "mel-nd": (_off(*P, 0, 900), "270,60,50", "centre"),    # far away
    }
    for cid, ((lat, lon), view, group) in cams.items():
        v.run("camera", "add", cid, "--url", "rtsp://127.0.0.1:9/none", "--schedule", "off", "--group", group,
              "--lat", str(lat), "--lon", str(lon), "--view", view, "--name", f"Камера {cid[-1].upper()}")
    bad = v.run("camera", "add", "mel-nx", "--url", "rtsp://127.0.0.1:9/none", "--view", "90,70,60", check=False)
    assert bad.returncode != 0 and "latitude and longitude" in bad.stdout + bad.stderr
    csv_file = tmp_path / "addresses.csv"
    csv_file.write_text("address,latitude,longitude\n"
                        f"\"вул. Соборна, 12\",{target[0]},{target[1]}\n"
                        f"\"вул. Соборна, 120\",{P[0] + 0.01},{P[1]}\n"
                        f"\"пл. Перемоги, 1\",{P[0] - 0.01},{P[1]}\n", encoding="utf-8")
    assert "3 addresses imported" in v.run("addresses", str(csv_file)).stdout
    broken = tmp_path / "broken.csv"
    broken.write_text("address,latitude,longitude\n\"вул. Миру, 1\",north,35\n", encoding="utf-8")
    r = v.run("addresses", str(broken), check=False)
    assert r.returncode != 0 and "line 2" in r.stdout + r.stderr
    out = json.loads(v.run("camera", "near", "--address", "Соборна 12", "--json").stdout)
    assert [(c["id"], c["sees"]) for c in out["cameras"]] == [("mel-nc", True), ("mel-na", True), ("mel-nb", False)]
    v.start()

    # The department (all districts) over HTTP: both that see it first, then the one nearby.
    dept = v.api("olena.dept", "department")
    got = dept.get("/api/cameras/near", params={"address": "вулиця Соборна, буд. 12", "radius_m": 100}).json()
    assert got["point"]["address"] == "вул. Соборна, 12"
    assert [c["id"] for c in got["cameras"]] == ["mel-nc", "mel-na", "mel-nb"]
    assert got["cameras"][1]["distance_m"] == pytest.approx(30, abs=1) and got["cameras"][1]["view"]["angle"] == 70
    assert dept.get("/api/cameras/near", params={"address": "Шевченка 99"}).status_code == 404

    # A police dispatcher, from outside with the second factor: types the address on the map.
    password, secret = v.account("police.centre", "police", groups=["centre"], totp=True)
    ctx = browser.new_context(viewport={"width": 1500, "height": 1000},
                              extra_http_headers={"X-Forwarded-For": "203.0.113.9"})
    page = ctx.new_page()
    page.goto(v.base_url + "/")
    page.fill("#login input[name=login]", "police.centre")
    page.fill("#login input[name=password]", password)
    page.fill("#login input[name=otp]", pyotp.TOTP(secret).now())
    page.click("#login button[type=submit]")
    page.wait_for_selector("#nav a[data-page=map]")
    page.click("#nav a[data-page=map]")
    page.wait_for_selector("#map[data-markers]")
    assert page.locator("path.fov").count() == 3  # its own districts' fields of view
    page.fill("#near-address", "Соборна 12")
    page.click("#near-form button[type=submit]")
    page.wait_for_selector("#near .near-list li")
    listed = page.eval_on_selector_all("#near .near-list li", "els => els.map(e => [e.dataset.camera, e.dataset.sees])")
    assert listed == [["mel-na", "1"], ["mel-nb", "0"]], listed  # not the other unit's camera
    assert "вул. Соборна, 12" in page.inner_text("#near h3")
    page.wait_for_selector("#near .near-wall .tile[data-camera=mel-na]")
    assert page.locator("#near .near-wall .tile").count() == 2
    shot(page, "map-near-address")
    # A click on the map asks the same of that spot (here: far from every camera).
    page.mouse.click(200, 900)
    page.wait_for_function("() => !document.querySelector('#near h3').textContent.includes('Соборна')")
    ctx.close()

    # The administrator turns camera B towards the address, on the map itself.
    from test_console_e2e import sign_in

    root_pw, _ = v.account("root", "admin")
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    sign_in(page, v.base_url, "root", root_pw)
    page.wait_for_selector("#nav a[data-page=map]")
    page.goto(v.base_url + "/#/map?camera=mel-nb")
    page.wait_for_selector(".popup[data-camera=mel-nb] form.view-form")
    page.fill(".view-form input[name=direction]", "180")
    page.click(".view-form button[type=submit]")
    v.wait_for(lambda: dept.get("/api/cameras/mel-nb").json()["view"]["direction"] == 180, 10, "the new direction")
    got = dept.get("/api/cameras/near", params={"address": "Соборна 12", "radius_m": 100}).json()
    assert [(c["id"], c["sees"]) for c in got["cameras"]] == [("mel-nc", True), ("mel-na", True), ("mel-nb", True)]
