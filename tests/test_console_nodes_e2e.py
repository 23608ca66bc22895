"""The Nodes page of the web console (issue 12, ``varta/web/static/nodes.js``) in real headless
Chromium (Playwright) against a running ``varta serve``: a one-node cluster whose node records
two cameras, plus a second node's row that stopped heartbeating (written straight into the
registry, as a node killed on another machine leaves it), so the page shows a node *down*,
its ``node_down`` alarm (raised by the running node's monitor) and a disk short of retention.

The administrator sees the nodes in Ukrainian (no English word left), drains the live node
through the confirm dialog and resumes it in English; the page reads itself again every 5 s
while open and stops when left; the Responsible Department's operator sees the page without
the Drain/Resume buttons. The cameras point nowhere with recording off: no video is needed.
Screenshots are saved under ``VARTA_TEST_ARTIFACTS`` (default ``.cache/artifacts``), named
``nodes-*``.
"""

from __future__ import annotations

import re
import time

import pytest

from test_console_e2e import browser, shot, sign_in  # noqa: F401  (browser is a fixture)

pytestmark = [pytest.mark.e2e]

CAMERAS = ("mel-c1", "mel-c2")
NODE = "test-node"  # VartaHome's VARTA_NODE_NAME
DEAD = {"id": "00000000-0000-4000-8000-00000000dead", "name": "rec-podil-2", "hostname": "podil-srv2"}
RED, AMBER, GREEN = "rgb(255, 92, 92)", "rgb(255, 176, 32)", "rgb(53, 196, 106)"  # --bad, --warn, --ok
CITY_TIME = re.compile(r"^\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d$")  # dd.mm.yyyy HH:MM:SS
ROW = f"#nodes tr[data-node={NODE}]"
DEAD_ROW = f"#nodes tr[data-node={DEAD['name']}]"


def _dead_node(v) -> None:
    """A recorder on another machine that stopped heartbeating two minutes ago, its disk short."""
    from sqlalchemy import insert

    from varta.db.dbclock import read_db_now
    from varta.db.schema import cluster_nodes

    eng = v.engine()
    now = read_db_now(eng)
    storage = {"disk_total_bytes": 4_000_000_000_000, "disk_free_bytes": 250_000_000_000, "reserve_bytes": 0,
               "archive_bytes": 3_500_000_000_000, "daily_bytes": 600_000_000_000, "days_capacity": 6.2,
               "required_days": 10, "short": True}
    with eng.begin() as conn:
        conn.execute(insert(cluster_nodes).values(
            id=DEAD["id"], name=DEAD["name"], hostname=DEAD["hostname"], roles=["recorder"],
            address="http://10.20.0.12:8080", version="0.1.0", capacity=40, groups=[], takes_unpinned=True,
            state="active", public_key="", wrap_key="", pid=4242, started_us=now - 3_600_000_000,
            heartbeat_us=now - 120_000_000, expires_us=now - 115_000_000,
            load={"cameras": 0, "recording": 0, "standby": 0, "storage": storage}))


def _colour(page, sel: str) -> str:
    return page.eval_on_selector(sel, "e => getComputedStyle(e).color")


def _latin_left(text: str, data: list[str]) -> list[str]:
    """The Latin words of a page's text once the data (names, hosts, camera ids, version) is taken out."""
    for d in sorted(data, key=len, reverse=True):
        text = text.replace(d, " ")
    return re.findall(r"[A-Za-z]+", text)


def test_nodes_page_drain_resume_and_roles(browser, varta):  # noqa: F811
    started = time.monotonic()
    v = varta()
    for cam in CAMERAS:
        v.run("camera", "add", cam, "--url", "rtsp://127.0.0.1:9/none", "--schedule", "off")
    v.start()
    with v.api("root", "admin") as c:  # the node holds both cameras' recording leases
        me = v.wait_for(lambda: next((n for n in c.get("/api/nodes").json()
                                      if n["name"] == NODE and sorted(n["cameras"]) == list(CAMERAS)), None),
                        timeout=60, what="the node records both cameras")
    _dead_node(v)
    admin_pw = v.account("it.admin", "admin")[0]
    dept_pw = v.account("olena", "department")[0]

    page = browser.new_page(viewport={"width": 1500, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    reads: list[float] = []
    page.on("request", lambda r: reads.append(time.monotonic()) if r.url.endswith("/api/nodes") else None)
    sign_in(page, v.base_url, "it.admin", admin_pw)
    page.wait_for_selector("#nav a[data-page=nodes]")
    # The administrator sees no video: its first view is its own page, not the live wall.
    page.wait_for_function("() => location.hash.startsWith('#/admin/')")
    assert page.inner_text("#nav a[data-page=nodes]").strip() == "Вузли"
    page.click("#nav a[data-page=nodes]")

    # --- Ukrainian (the default): the node, its roles, state, cameras, disk, heartbeat ---------
    page.wait_for_selector(f"{ROW}[data-state=active]")
    assert page.get_attribute("#nav a.on", "data-page") == "nodes"
    headers = [x.strip() for x in page.locator("#nodes thead th").all_inner_texts()]
    assert headers[:9] == ["Вузол", "Ролі", "Стан", "Камери", "Записують", "Переносяться сюди", "Диск", "Версія",
                           "Останній сигнал"]
    assert page.inner_text(f"{ROW} td.roles") == "аналітика, запис, вебконсоль"
    assert page.inner_text(f"{ROW} td.state") == "у роботі"
    assert _colour(page, f"{ROW} td.state") == GREEN
    assert page.get_attribute(f"{ROW} td.cameras", "data-count") == "2"
    assert page.inner_text(f"{ROW} td.cameras summary").strip() == "2"
    title = page.get_attribute(f"{ROW} td.cameras", "title")
    assert all(cam in title for cam in CAMERAS)
    page.click(f"{ROW} td.cameras summary")  # unfolds the camera ids, and stays unfolded across refreshes
    page.wait_for_selector(f"{ROW} td.cameras li[data-camera={CAMERAS[1]}]")
    assert page.get_attribute(f"{ROW} td.recording", "data-recording") == "0"  # recording is off
    assert page.inner_text(f"{ROW} td.moving") == "0"
    assert page.inner_text(f"{ROW} td.version") == me["version"]
    assert CITY_TIME.match(page.inner_text(f"{ROW} td.heartbeat")), page.inner_text(f"{ROW} td.heartbeat")
    assert "вільно" in page.inner_text(f"{ROW} td.disk") and "ГБ" in page.inner_text(f"{ROW} td.disk")
    assert page.get_attribute(f"{ROW} td.disk", "data-short") == "0"
    assert page.locator(f"{ROW} button.drain").count() == 1 and page.locator(f"{ROW} button.resume").count() == 0
    # The node that stopped heartbeating: down, in red, its disk short of retention in red, no buttons.
    page.wait_for_selector(f"{DEAD_ROW}[data-state=down]")
    assert page.inner_text(f"{DEAD_ROW} td.state") == "не відповідає"
    assert _colour(page, f"{DEAD_ROW} td.state") == RED
    assert page.get_attribute(f"{DEAD_ROW} td.disk", "data-short") == "1"
    assert _colour(page, f"{DEAD_ROW} td.disk") == RED
    assert page.inner_text(f"{DEAD_ROW} td.cameras").strip() == "0 / 40"
    assert page.locator(f"{DEAD_ROW} td.actions button").count() == 0
    # Its node_down alarm (raised by the running node's monitor) above the table.
    page.wait_for_selector(f"#node-alarms .node-alarm[data-node={DEAD['name']}]", timeout=30000)
    alarm = page.inner_text("#node-alarms")
    assert "Вузол не відповідає." in alarm and DEAD["name"] in alarm
    assert re.search(r"\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d", alarm)
    assert page.get_attribute(f"#node-alarms .node-alarm[data-node={DEAD['name']}]", "title").startswith(
        f"node {DEAD['name']}")  # the server's own message, in full, on hover
    # The page reads itself again every 5 s (the unfolded camera list survives it).
    seen = int(page.get_attribute("#nodes", "data-refreshed"))
    page.wait_for_function(f"() => +document.querySelector('#nodes').dataset.refreshed > {seen}", timeout=15000)
    assert page.locator(f"{ROW} td.cameras details[open]").count() == 1
    # No English word of the page's own is left on the Ukrainian page.
    data = [NODE, me["hostname"], me["version"], *CAMERAS, DEAD["name"], DEAD["hostname"]]
    assert _latin_left(page.inner_text("#main"), data) == []
    shot(page, "nodes-uk")

    # --- Drain: the confirm dialog says every camera moves away; dismissed, nothing happens ---
    dialogs: list[str] = []

    def answer(accept: bool):
        def handle(d):
            dialogs.append(d.message)
            d.accept() if accept else d.dismiss()
        page.once("dialog", handle)

    answer(False)
    page.click(f"{ROW} button.drain")
    page.wait_for_timeout(1000)
    assert len(dialogs) == 1
    assert NODE in dialogs[0] and "(2)" in dialogs[0] and "буде перенесено на інші вузли" in dialogs[0]
    assert "Іншого вузла запису в роботі немає" in dialogs[0]  # the other node is down: nowhere to go
    assert _latin_left(dialogs[0], data) == []
    with v.api("root", "admin") as c:
        assert next(n for n in c.get("/api/nodes").json() if n["name"] == NODE)["state"] == "active"
    answer(True)
    page.click(f"{ROW} button.drain")
    page.wait_for_selector(f"{ROW}[data-state=draining]")
    assert len(dialogs) == 2
    assert page.inner_text(f"{ROW} td.state") == "виводиться з роботи"
    assert _colour(page, f"{ROW} td.state") == AMBER
    assert NODE in page.inner_text("#nodes-note") and "виводиться з роботи" in page.inner_text("#nodes-note")
    assert page.locator(f"{ROW} button.drain").count() == 0
    assert page.inner_text(f"{ROW} button.resume") == "Повернути в роботу"
    assert _latin_left(page.inner_text("#main"), data) == []
    shot(page, "nodes-draining")
    with v.api("root", "admin") as c:
        assert next(n for n in c.get("/api/nodes").json() if n["name"] == NODE)["state"] == "draining"
        lines = c.get("/api/journal", params={"account": "it.admin", "action": "system.maintain"}).json()["lines"]
    assert any(ln["object"] == f"node:{NODE}" and "drained" in ln["detail"] for ln in lines)

    # --- English: the same page translated; Resume takes the node back into service ----------
    page.click("#lang")
    page.wait_for_selector("#nav a[data-page=nodes]:text-is('Nodes')")
    page.wait_for_selector(f"{ROW}[data-state=draining] td.state:text-is('draining')")
    headers = [x.strip() for x in page.locator("#nodes thead th").all_inner_texts()]
    assert headers[:9] == ["Node", "Roles", "State", "Cameras", "Recording", "Moving in", "Disk", "Version",
                           "Last heartbeat"]
    assert page.inner_text(f"{ROW} td.roles") == "analytics, recorder, web"
    assert page.inner_text(f"{DEAD_ROW} td.state") == "down"
    assert "Node down." in page.inner_text("#node-alarms")
    assert "GB free of" in page.inner_text(f"{ROW} td.disk")
    assert CITY_TIME.match(page.inner_text(f"{ROW} td.heartbeat"))  # the same city format in English
    page.click(f"{ROW} button.resume")
    page.wait_for_selector(f"{ROW}[data-state=active] td.state:text-is('active')")
    assert "back in service" in page.inner_text("#nodes-note")
    assert page.locator(f"{ROW} button.drain").count() == 1
    shot(page, "nodes-en")
    with v.api("root", "admin") as c:
        assert next(n for n in c.get("/api/nodes").json() if n["name"] == NODE)["state"] == "active"

    # --- Leaving the page stops its refresh -------------------------------------------------
    page.click("#nav a[data-page=health]")
    page.wait_for_selector("#health tbody tr")
    left = time.monotonic()
    page.wait_for_timeout(7000)
    assert not [t for t in reads if t > left + 0.5], "the Nodes page went on reading after it was left"
    assert problems == []
    page.close()

    # --- The Responsible Department sees the nodes, without Drain or Resume ------------------
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    page.on("pageerror", lambda e: problems.append(str(e)))
    sign_in(page, v.base_url, "olena", dept_pw)
    page.wait_for_selector("#nav a[data-page=nodes]")
    page.wait_for_selector("#group")
    page.click("#nav a[data-page=nodes]")
    page.wait_for_selector(f"{ROW}[data-state=active]")
    page.wait_for_selector(f"{DEAD_ROW}[data-state=down]")
    assert page.locator("#nodes button.drain, #nodes button.resume").count() == 0
    assert page.locator("#nodes td.actions button").count() == 0
    shot(page, "nodes-department")
    assert problems == []
    page.close()
    assert time.monotonic() - started < 400
