"""The language check (issue 15): every page of the console, for every kind of user, in real
headless Chromium, in Ukrainian and in English. On a Ukrainian page no user-visible word
may be English (Latin letters in lower case: "recording", "ok", "session.login"); on an
English page no word may be Ukrainian. What the city typed is not the console's language
and is taken out first: camera names and ids, people's names and logins, addresses,
request numbers, links, file names and checksums. Upper-case codes (A4.3, R11, SHA-256,
MP4, CSV, PDF, TOTP) are the order's and the trade's own and stay.

Visible text is read as a user meets it: the page's text, and every title (tooltip),
placeholder, label and alt text of what is on screen. Screenshots of each page, in both
languages, go to .cache/artifacts/lang-*.png.
"""

from __future__ import annotations

import re
import socket
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pyotp
import pytest

from conftest import have_ffmpeg
from test_console_e2e import ARTIFACTS, browser, shot, sign_in  # noqa: F401  (browser is a fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg not installed")]

TZ = ZoneInfo("Europe/Kyiv")

# What the city typed (taken out of the text before checking).
DATA = ["mel-lang-1", "mel-lang-2", "Площа Перемоги", "Tower Cam Ring Road", "центр", "downtown",
        "вул. Соборна, 12", "olena", "Test Olena User", "root", "Test Root User", "patrol.unit", "Test Patrol.Unit User",
        "Мелітопольський РВП", "слідчий Бондар", "ст. 93 КПК України", "test-node", "Varta", "demo",
        "anna.dept", "Test Anna.Dept User", "tech", "Test Tech User", socket.gethostname(),
        # the account form's examples of a name and a login (a login is Latin by nature)
        "Шевченко Олена Петрівна", "shevchenko.o",
        # the placement data the city imported: categories, site names, a proposal's title
        "крадіжка", "грабіж", "перехрестя", "Камери 2027",
        # a lockdown's reasons (issue 19)
        "Повітряна тривога у районі", "Відбій тривоги"]

_VISIBLE = """() => {
  const out = [document.title, document.body.innerText];
  for (const e of document.querySelectorAll('[title],[placeholder],[aria-label],[alt]')) {
    if (!e.getClientRects().length) continue;  // not on screen
    for (const a of ['title', 'placeholder', 'aria-label', 'alt']) if (e.getAttribute(a)) out.push(e.getAttribute(a));
  }
  for (const e of document.querySelectorAll('input[type=submit], input[type=button]')) out.push(e.value);
  return out.join('\\n');
}"""

_NOT_LANGUAGE = [
    re.compile(r"\b[a-z][a-z0-9+.-]*://\S+"),                      # links (rtsp://, http://)
    re.compile(r"\S+\.(?:mp4|zip|csv|pdf|json|geojson|png)\b", re.I),    # file names
    re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),  # node ids (before the next)
    re.compile(r"\b[0-9a-f]{8,}\b"),                             # checksums, ids
    re.compile(r"(?<![\w-])[A-Za-z][\w.-]*\d[\w.-]*"),               # identifiers with digits: mel-0042, REQ-2026-0001
    re.compile(r"\bLeaflet\b"),                                      # the map library's name (its licence asks for it)
]
LATIN_WORD = re.compile(r"(?<![\w@])[A-Za-z][A-Za-z'’-]*(?![\w])")
CYRILLIC_WORD = re.compile(r"[\u0400-\u04FF][\u0400-\u04FF'’-]*")


def _strip_data(text: str) -> str:
    for d in sorted(DATA, key=len, reverse=True):
        text = text.replace(d, " ")
    for rx in _NOT_LANGUAGE:
        text = rx.sub(" ", text)
    return text


def foreign_words(text: str, lang: str) -> list[str]:
    """The words of the other language in ``text`` (data taken out), with their context."""
    text = _strip_data(text)
    found = []
    for line in text.splitlines():
        if lang == "uk":
            words = [w for w in LATIN_WORD.findall(line) if any(c.islower() for c in w)]
        else:
            words = [w for w in CYRILLIC_WORD.findall(line) if w != "УКР"]  # the switch to Ukrainian
        found += [f"{w!r} in {line.strip()[:120]!r}" for w in words]
    return found


def test_the_check_itself_finds_foreign_words_and_spares_data_and_codes():
    assert foreign_words("Стан: recording", "uk") == ["'recording' in 'Стан: recording'"]
    assert foreign_words("session.login · ok", "uk")
    assert foreign_words("A4.3 · SHA-256 · MP4 · mel-lang-1 · rtsp://127.0.0.1/x · 3fa9c0de12 · mel-0042", "uk") == []
    assert [w.split()[0] for w in foreign_words("камера mel-0042 offline", "uk")] == ["'offline'"]
    assert foreign_words("Площа Перемоги is recording", "en") == []
    assert foreign_words("Camera запис", "en")


def _pages_of(page, lang: str, name: str, routes: list[tuple[str, str]]) -> list[str]:
    """Visit each route (hash, selector to wait for) in ``lang``; the foreign words found."""
    page.evaluate(f"localStorage.setItem('varta.lang', '{lang}')")
    problems = []
    for route, ready in routes:
        page.goto(page.url.split("#")[0] + route)
        page.reload()
        page.wait_for_selector(ready, timeout=20000)
        page.wait_for_timeout(700)  # late parts (status, counters) have drawn
        tag = re.sub(r"[^a-z0-9]+", "-", route.lower()).strip("-") or "home"
        shot(page, f"lang-{name}-{lang}-{tag}")
        problems += [f"{name} {route}: {w}" for w in foreign_words(page.evaluate(_VISIBLE), lang)]
    return problems


def _at(hours_ago: float) -> str:
    return (datetime.now(TZ) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M")


def test_every_page_speaks_one_language(browser, varta, camsim):  # noqa: F811
    v = varta(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32", trusted_proxies="127.0.0.1/32")
    v.run("camera", "add", "mel-lang-1", "--url", camsim.url("gen1"), "--name", "Площа Перемоги",
          "--group", "центр", "--address", "вул. Соборна, 12", "--lat", "46.8489", "--lon", "35.3653")
    v.run("camera", "add", "mel-lang-2", "--url", "rtsp://127.0.0.1:9/none", "--name", "Tower Cam Ring Road",
          "--group", "downtown", "--lat", "46.85", "--lon", "35.37")
    v.start()
    v.wait_for(lambda: len(v.api().get("/api/cameras/mel-lang-1/segments",
                                       params={"from": "now-1h", "to": "now+1m"}).json()) >= 3, 90, "segments")
    op_pw, _ = v.account("olena", "department")
    root_pw, _ = v.account("root", "admin")
    police_pw, secret = v.account("patrol.unit", "police", groups=["центр", "downtown"], totp=True)
    dept = v.api("anna.dept", "department")
    r = dept.post("/api/requests", json={
        "kind": "police", "incoming_no": "12/3456-2026", "incoming_date": datetime.now(TZ).date().isoformat(),
        "requester": "Мелітопольський РВП", "contact": "слідчий Бондар", "basis": "ст. 93 КПК України",
        "items": [{"camera_id": "mel-lang-1", "from": _at(0.2), "to": _at(0.1)}]})
    assert r.status_code == 201, r.text
    req = r.json()
    # Placement (issue 17): the city's incidents and sites, a proposal sent to the police unit.
    from placement_data import crimes, intersections, sites_geojson

    inc_csv = v.home / "incidents.csv"
    inc_csv.write_text("широта,довгота,категорія\n" + "".join(
        f"{a},{b},{('крадіжка', 'грабіж')[n % 2]}\n" for n, (a, b) in enumerate(crimes()[:120])))
    sites = v.home / "sites.geojson"
    sites.write_text(sites_geojson(intersections()))
    v.run("placement", "import-incidents", str(inc_csv))
    v.run("placement", "import-sites", str(sites))
    prop = dept.post("/api/placement/proposals", json={"title": "Камери 2027", "from": "2020-01-01", "to": "now", "k": 5})
    assert prop.status_code == 201, prop.text
    assert dept.post(f"/api/placement/proposals/{prop.json()['id']}/send", json={"to": "patrol.unit"}).status_code == 200
    problems: list[str] = []

    # A lockdown in force (its banner on every page) and a request to lift it awaiting a
    # second person (the lockdown page).
    v.run("lockdown", "on", "--scope", "sensitive", "--reason", "Повітряна тривога у районі")
    assert dept.post("/api/lockdown/requests", json={"move": "off", "reason": "Відбій тривоги"}).status_code == 201

    # The sign-in page, and a refused sign-in.
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    for lang in ("uk", "en"):
        page.goto(v.base_url + "/")
        page.evaluate(f"localStorage.setItem('varta.lang', '{lang}')")
        sign_in(page, v.base_url, "olena", "wrong-password-123")
        page.wait_for_selector("#login .error:not(:empty)")
        shot(page, f"lang-login-{lang}")
        problems += [f"login: {w}" for w in foreign_words(page.evaluate(_VISIBLE), lang)]

    # The Responsible Department's operator, on site in the restricted zone: every page.
    sign_in(page, v.base_url, "olena", op_pw)
    page.wait_for_selector("#nav a[data-page=live]")
    operator_routes = [
        ("#/live", ".tile[data-camera=mel-lang-1]"), ("#/playback", "#pb-cameras"),
        (f"#/playback?cameras=mel-lang-1,mel-lang-2&t={_at(0.02)}", "canvas.timeline"), ("#/events", "#events-filter"),
        ("#/evidence/requests", "#evidence[data-tab=requests]"), (f"#/evidence/requests/{req['id']}", "#request-detail"),
        ("#/evidence/holds", "#evidence[data-tab=holds]"), ("#/evidence/incidents", "#evidence[data-tab=incidents]"),
        ("#/map?camera=mel-lang-2", ".leaflet-popup-content"), ("#/health", "#health tbody tr"), ("#/nodes", "#nodes tbody tr"),
        ("#/search?from=01.12.2026+00:00:00&to=04.12.2026+23:00:00&class=person", "#search-count"),
        ("#/placement", ".pl-proposal[data-status=sent]"), ("#/lockdown", "#ld-pending li .ld-confirm"),
    ]
    for lang in ("uk", "en"):
        problems += _pages_of(page, lang, "operator", operator_routes)
    page.close()

    # The administrator: cameras, accounts, the journal (with everything the walk wrote).
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    sign_in(page, v.base_url, "root", root_pw)
    page.wait_for_selector("#admin-cameras")
    admin_routes = [("#/admin/cameras", "#admin-cameras table"), ("#/admin/users", "#admin-users table"),
                    ("#/admin/journal", "#journal tbody tr"), ("#/health", "#health tbody tr"),
                    ("#/map?camera=mel-lang-2", ".leaflet-popup-content"), ("#/nodes", "#nodes tbody tr")]
    for lang in ("uk", "en"):
        problems += _pages_of(page, lang, "admin", admin_routes)
    page.close()

    # The police, from outside (through the proxy) with the second factor.
    ctx = browser.new_context(viewport={"width": 1500, "height": 950},
                              extra_http_headers={"X-Forwarded-For": "203.0.113.9"})
    page = ctx.new_page()
    page.goto(v.base_url + "/")
    page.fill("#login input[name=login]", "patrol.unit")
    page.fill("#login input[name=password]", police_pw)
    page.fill("#login input[name=otp]", pyotp.TOTP(secret).now())
    page.click("#login button[type=submit]")
    page.wait_for_selector("#nav a[data-page=live]")
    police_routes = [("#/live", ".tile[data-camera=mel-lang-1]"), ("#/events", "#events-filter"),
                     ("#/map?camera=mel-lang-2", ".leaflet-popup-content"), ("#/health", "#health tbody tr"),
                     ("#/placement", "#pl-result")]
    for lang in ("uk", "en"):
        problems += _pages_of(page, lang, "police", police_routes)
    ctx.close()

    problems = sorted(set(problems))
    (ARTIFACTS / "lang-problems.txt").write_text("\n".join(problems) + "\n")
    assert not problems, f"{len(problems)} foreign words (all in {ARTIFACTS}/lang-problems.txt):\n" + "\n".join(
        problems[:60])
