"""Camera placement end to end (issue 17; MVS-3, MVS-4): real public crime data (GeoDaNet's,
shipped inside PySAL) imported through the CLI, a camera's field of view over part of it,
the analysis from the shell (JSON and the PDF report), a proposal kept and sent to the
police unit, read and answered through the unit's API token (and refused to another unit),
approved once agreed, all journaled; and the Placement page in Chromium with its layers."""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import login_client
from placement_data import crimes, halves, incidents_csv, intersections, sites_geojson
from test_console_e2e import browser, shot, sign_in  # noqa: F401  (browser is a fixture)

pytestmark = [pytest.mark.e2e]


def _token(v, login: str) -> str:
    return v.run("token", "create", login, "--name", "police GIS", "--scope", "placement.review").stdout.strip().splitlines()[-1]


def _remote(v, token: str) -> httpx.Client:
    """The police unit's own system, from outside the city's networks (127.0.0.3)."""
    return httpx.Client(base_url=v.base_url, timeout=60, headers={"Authorization": f"Bearer {token}"},
                        transport=httpx.HTTPTransport(local_address="127.0.0.3"))


def test_placement_from_import_to_approved_proposal(browser, varta, tmp_path):  # noqa: F811
    v = varta(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32")
    fit, _ = halves(crimes())
    inc = tmp_path / "crimes.csv"
    inc.write_text(incidents_csv(fit))
    sites = tmp_path / "intersections.geojson"
    sites.write_text(sites_geojson(intersections()))
    v.run("placement", "import-incidents", str(inc))
    v.run("placement", "import-sites", str(sites))

    # A malformed file: the bad line is named, nothing of it is taken.
    bad = tmp_path / "bad.csv"
    lines = incidents_csv(fit[:6]).splitlines()
    lines[4] = "33.42,north,theft,1"
    bad.write_text("\n".join(lines) + "\n")
    r = v.run("placement", "import-incidents", str(bad), check=False)
    assert r.returncode != 0 and "line 5: longitude 'north' is not a number" in r.stderr, r.stderr
    assert "nothing was imported" in r.stderr

    # Today's camera sees the first crimes (a sector of 120 m looking east).
    lat, lon = fit[0]
    v.run("camera", "add", "mel-pl1", "--url", "rtsp://127.0.0.1:9/none", "--schedule", "off", "--lat", str(lat),
          "--lon", str(lon - 0.0004), "--view", "90,90,120", "--group", "centre")

    pdf = tmp_path / "report.pdf"
    got = json.loads(v.run("placement", "analyze", "--from", "2020-01-01", "--to", "now", "--k", "10", "--radius", "60",
                           "--json", "--out", str(pdf)).stdout)
    assert got["incidents"] == len(fit)  # the bad file added nothing
    assert got["coverage_now"]["covered"] >= 1
    assert len(got["sites"]) == 10 and all({"lat", "lon", "gain"} <= set(s) for s in got["sites"])
    assert got["coverage_proposed"]["covered"] == got["coverage_now"]["covered"] + sum(s["gain"] for s in got["sites"])
    for name in ("greedy", "densest"):
        assert got["coverage_proposed"]["covered"] >= got["baselines"][name]["coverage_proposed"]["covered"]
    print(f"crimes (fitted half, {got['incidents']}): covered today {got['coverage_now']['covered']}, with 10 sites "
          f"{got['coverage_proposed']['covered']}; greedy {got['baselines']['greedy']['coverage_proposed']['covered']}, "
          f"densest {got['baselines']['densest']['coverage_proposed']['covered']}; {got['seconds']} s")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 30_000  # the map is in it

    v.start()
    police1, _ = v.account("police.unit1", "police", groups=["centre"])
    v.account("police.unit2", "police", groups=["centre"])
    dept = v.api("dept", "department")
    r = dept.post("/api/placement/proposals", json={"title": "Камери 2027", "from": "2020-01-01", "to": "now",
                                                     "k": 10, "radius_m": 60})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.json()["status"] == "draft"
    assert [s["id"] for s in r.json()["result"]["sites"]] == [s["id"] for s in got["sites"]]
    r = dept.post(f"/api/placement/proposals/{pid}/send", json={"to": "police.unit1", "text": "просимо погодити"})
    assert r.status_code == 200 and r.json()["status"] == "sent", r.text
    other = dept.post("/api/placement/proposals", json={"title": "Інша", "from": "2020-01-01", "to": "now", "k": 3})
    assert other.status_code == 201

    unit1, unit2 = _remote(v, _token(v, "police.unit1")), _remote(v, _token(v, "police.unit2"))
    listed = unit1.get("/api/placement/proposals").json()["proposals"]
    assert [p["id"] for p in listed] == [pid]  # the draft "Інша" is nobody's to read
    p = unit1.get(f"/api/placement/proposals/{pid}").json()
    assert len(p["result"]["sites"]) == 10
    assert unit1.get(f"/api/placement/proposals/{pid}/report.pdf").content[:5] == b"%PDF-"
    geo = unit1.get(f"/api/placement/proposals/{pid}/export.geojson").json()
    assert sum(1 for f in geo["features"] if f["properties"]["layer"] == "proposed_site") == 10
    assert unit1.get(f"/api/placement/proposals/{other.json()['id']}").status_code == 404
    assert unit2.get("/api/placement/proposals").json()["proposals"] == []
    assert unit2.get(f"/api/placement/proposals/{pid}").status_code == 404
    assert unit2.post(f"/api/placement/proposals/{pid}/answer", json={"verdict": "agree"}).status_code == 404
    r = unit1.post(f"/api/placement/proposals/{pid}/answer",
                   json={"verdict": "comment", "text": "місце 3 перенести до зупинки"})
    assert r.json()["status"] == "commented", r.text
    assert dept.post(f"/api/placement/proposals/{pid}/approve", json={}).status_code == 409  # not agreed yet
    assert dept.post(f"/api/placement/proposals/{pid}/send", json={"to": "police.unit1"}).json()["status"] == "sent"
    assert unit1.post(f"/api/placement/proposals/{pid}/answer", json={"verdict": "agree"}).json()["status"] == "agreed"
    # A token of the police cannot do the department's part.
    assert unit1.post(f"/api/placement/proposals/{pid}/approve", json={}).status_code == 403
    done = dept.post(f"/api/placement/proposals/{pid}/approve", json={"text": "рішення сесії № 12"}).json()
    assert done["status"] == "approved"
    assert [n["step"] for n in done["notes"]] == ["draft", "sent", "commented", "sent", "agreed", "approved"]

    lines = dept.get("/api/journal", params={"limit": 200, "lang": "uk"}).json()["lines"]
    mine = [ln for ln in lines if ln["action"].startswith("placement.")]
    assert any(ln["account"] == "police.unit1" and ln["detail"] == "proposal agreed" for ln in mine)
    assert any(ln["account"] == "police.unit2" and ln["result"] == "refused" for ln in mine)
    assert any(ln["detail"].startswith("imported ") and "crimes.csv" in ln["detail"] for ln in mine)
    assert any("bad.csv" in ln["detail"] and ln["result"] == "failed" for ln in mine)
    assert any(ln.get("shown", {}).get("detail", "").startswith("пропозицію погоджено") for ln in mine
               if ln["detail"] == "proposal agreed")
    assert not any(ln["action"].startswith("archive.") for ln in lines)  # placement reads no video

    # The Placement page: the analysis drawn on the map, the proposals with their status.
    password = v.account("dept.ui", "department")[0]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    sign_in(page, v.base_url, "dept.ui", password)
    page.wait_for_selector("#nav a[data-page=placement]")
    page.goto(v.base_url + "/#/placement")
    page.wait_for_selector(f".pl-proposal[data-id='{pid}'][data-status=approved]")
    page.fill("#pl-form input[name=from]", "01.01.2020 00:00")
    page.fill("#pl-form input[name=k]", "10")
    page.fill("#pl-form input[name=radius_m]", "60")
    page.click("#pl-form button[type=submit]")
    page.wait_for_selector("#pl-sites tbody tr", timeout=60_000)
    assert page.locator("#pl-sites tbody tr").count() == 10
    assert page.locator(".pl-site").count() == 10  # numbered markers on the map
    assert page.locator("path.pl-heat").count() > 10  # the density surface
    assert page.locator("path.pl-view").count() == 1  # today's field of view
    assert page.locator("path.pl-incident").count() == len(fit)
    assert page.locator("#pl-compare tr[data-method=greedy]").count() == 1
    text = page.inner_text("#pl-result")
    assert "Охоплено сьогодні" in text and "Жадібний вибір" in text
    shot(page, "placement")
    page.click(f".pl-proposal[data-id='{pid}'] .pl-open")
    page.wait_for_selector("#pl-out h3")
    assert "Камери 2027" in page.inner_text("#pl-out h3")
    page.close()

    # The police unit in the console (remote, second factor) sees the one proposal sent to it.
    pw, secret = v.account("police.ui", "police", groups=["centre"], totp=True)
    import pyotp

    c = login_client(v.base_url, "police.ui", pw, otp=pyotp.TOTP(secret).now(), local_address="127.0.0.3")
    assert c.get("/api/placement/proposals").json()["proposals"] == []
    assert c.get("/api/placement/data").status_code == 403  # the analysis is the city's
