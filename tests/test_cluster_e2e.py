"""A capital on many machines, tried as a city's IT department would (issue 12, MVS-1, R4):
several real ``varta recorder`` and ``varta web`` processes on one PostgreSQL, real RTSP
cameras that count their sessions, and nodes killed (kill -9), frozen (SIGSTOP), restarted
and drained while they record.
"""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import time
from zoneinfo import ZoneInfo

import pytest
from conftest import VartaHome, have_ffmpeg, wait_until, watch_live
from sqlalchemy import text

from varta.clock import parse_time

pytestmark = [pytest.mark.e2e, pytest.mark.postgres,
              pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg not installed")]

TZ = ZoneInfo("Europe/Kyiv")
NODE = dict(analytics="false", cluster_lease_s="5", shutdown_handover_s="3")


@pytest.fixture
def cameras12(media):
    """Twelve cameras, each with a main and a sub stream (24 RTSP mounts that count sessions)."""
    from conftest import _require_gst
    from varta.demo.simulator import CameraSimulator

    _require_gst()
    files = list(media.values())
    mounts = {}
    for i in range(12):
        mounts[f"cam{i:02d}"] = files[i % 3]
        mounts[f"cam{i:02d}-sub"] = files[(i + 1) % 3]
    sim = CameraSimulator(mounts)
    sim.start()
    yield sim
    sim.close()


class Cluster:
    def __init__(self, tmp_path, db_url: str):
        self.tmp, self.db_url = tmp_path, db_url
        self.nodes: dict[str, VartaHome] = {}
        self.client = None  # a signed-in API client of a web node, once there is one (faster than commands)

    def node(self, name: str, **settings) -> VartaHome:
        if name not in self.nodes:
            self.nodes[name] = VartaHome(self.tmp / name, self.db_url, node_name=name, **{**NODE, **settings})
        return self.nodes[name]

    def start(self, name: str, command: str = "recorder", **settings) -> VartaHome:
        n = self.node(name, **settings)
        n.start(command)
        return n

    @property
    def any(self) -> VartaHome:
        return next(n for n in self.nodes.values() if n.proc is not None)

    def nodes_json(self) -> list[dict]:
        """What `varta nodes --json` and /api/nodes say (the same function, read directly)."""
        if self.client is not None:
            return self.client.get("/api/nodes").json()
        from varta.cluster.nodes import NodeRegistry, overview

        engine = self.any.engine()
        return overview(engine, NodeRegistry(engine), TZ)

    def overview(self) -> dict[str, dict]:
        return {n["name"]: n for n in self.nodes_json()}

    def holders(self) -> dict[str, str]:
        """camera → the node recording it now."""
        return {cam: name for name, n in self.overview().items() for cam in n["cameras"]}

    def db(self, sql: str, **params):
        with self.any.engine().connect() as conn:
            return conn.execute(text(sql), params).all()

    def gaps(self, camera: str, since_us: int) -> list[dict]:
        if self.client is not None:
            rep = self.client.get(f"/api/cameras/{camera}/recordings", params={"from": _iso(since_us), "to": "now"}).json()
        else:
            rep = self.any.json("recordings", "--camera", camera, "--from", _iso(since_us), "--to", "now", "--json")
        return [g for g in rep["gaps"] if g["reason"] != "in_progress"]

    def overlaps(self) -> list[tuple]:
        """Index rows of one camera that overlap: footage indexed twice."""
        rows = self.db("select camera_id, start_us, end_us, recorder from segments order by camera_id, start_us")
        return [(a[0], (a[2] - b[1]) / 1e6) for a, b in zip(rows, rows[1:]) if a[0] == b[0] and b[1] < a[2]]

    def stop_all(self) -> None:
        if self.client is not None:
            self.client.close()
        for n in self.nodes.values():
            if n.proc is not None and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGCONT)
        for n in self.nodes.values():
            n.stop()
            if n._engine is not None:
                n._engine.dispose()


@pytest.fixture
def cluster(tmp_path, postgres_url):
    c = Cluster(tmp_path, postgres_url)
    yield c
    c.stop_all()


def _iso(us: int) -> str:
    from varta.clock import format_time

    return format_time(us, TZ)


def _us(iso: str) -> int:
    return parse_time(iso, TZ)


def _now_us() -> int:
    return time.time_ns() // 1000


def _import_cameras(node: VartaHome, sim, n: int = 12) -> None:
    lines = ["cameras:"]
    for i in range(n):
        lines += [f"  - id: cam{i:02d}", f"    url: {sim.url(f'cam{i:02d}')}",
                  f"    sub_url: {sim.url(f'cam{i:02d}-sub')}"]
    path = node.home.parent / "cameras.yaml"
    path.write_text("\n".join(lines) + "\n")
    node.home.mkdir(parents=True, exist_ok=True)
    node.run("camera", "import", str(path))


def _wait(predicate, timeout: float, what: str, interval: float = 0.5):
    return wait_until(predicate, timeout, what, interval)


def _all_recording(c: Cluster, expect: set[str], where: set[str] | None = None):
    """Every camera held by exactly one of ``where`` and recording there."""
    held = [cam for n in c.nodes_json() for cam in n["cameras"] if where is None or n["name"] in where]
    if sorted(held) != sorted(expect):
        return False
    states = {r[0]: r[1] for r in c.db("select camera_id, state from camera_status")}
    return all(states.get(cam) == "recording" for cam in expect)


def test_three_recorders_and_a_web_node_fail_over_move_and_fence(cluster, cameras12):
    sim = cameras12
    cams = {f"cam{i:02d}" for i in range(12)}
    _import_cameras(cluster.node("rec-a"), sim)
    for name in ("rec-a", "rec-b", "rec-c"):
        cluster.start(name)
    web = cluster.start("web-1", "web")
    cluster.client = web.api()
    _wait(lambda: _all_recording(cluster, cams), 90, "all 12 cameras recording, each by one node")
    # Every camera's main stream is read once in the whole cluster.
    _wait(lambda: all(sim.sessions()[c]["active"] == 1 for c in cams) and
          not any(n["moving_in"] for n in cluster.nodes_json()), 30, "one session per main stream, moves done")
    holders = cluster.holders()
    before = sim.sessions()
    # The node API answers signed requests of registered nodes only.
    import httpx

    from varta.cluster.identity import load_identity
    from varta.cluster.nodes import NodeRegistry
    from varta.cluster.peer import PeerClient

    assert httpx.get(f"{web.base_url}/internal/node", timeout=10).status_code == 403
    rec = load_identity(cluster.nodes["rec-a"].home)
    peer = PeerClient(rec, NodeRegistry(cluster.any.engine()))
    assert peer.get(web.node_id(), "/internal/node").json()["id"] == web.node_id()
    stranger = load_identity(cluster.tmp / "stranger")  # keys nobody registered, claiming to be rec-a
    forged = PeerClient(stranger, NodeRegistry(cluster.any.engine())).headers("GET", f"{web.base_url}/internal/node")
    forged["X-Varta-Node"] = rec.id + forged["X-Varta-Node"][len(stranger.id):]
    assert httpx.get(f"{web.base_url}/internal/node", headers=forged, timeout=10).status_code == 403

    # --- live view through the web node of a camera another node records -------------------
    cam = sorted(cams)[0]
    cookie = web.api("op", "department").headers["Cookie"]
    base = f"ws://127.0.0.1:{web.port}/api/cameras/{cam}/live"

    async def viewers():
        return await asyncio.gather(*(watch_live(f"{base}?stream=sub", cookie, 5.0) for _ in range(3)),
                                    watch_live(f"{base}?stream=main", cookie, 5.0))

    results = asyncio.run(viewers())
    for msgs in results:
        data = b"".join(m for m in msgs if isinstance(m, bytes))
        assert data[4:8] == b"ftyp" and data.count(b"moof") >= 20, "live video through the web node"
        assert any(json.loads(m).get("type") == "init" for m in msgs if isinstance(m, str))
    with web.api("op", "department") as c:
        snap = c.get(f"/api/cameras/{cam}/snapshot.jpg")
    assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
    s = sim.sessions()
    # Three sub viewers, a snapshot and a main viewer: one sub session (the relay on the
    # recording node) and no new main session (the main viewer is fed by the recording).
    assert s[f"{cam}-sub"]["opened"] - before[f"{cam}-sub"]["opened"] == 1 and s[f"{cam}-sub"]["peak"] == 1
    assert s[cam]["opened"] == before[cam]["opened"] and s[cam]["active"] == 1, (before[cam], s[cam])

    # --- kill -9 the busiest recorder: its cameras are recorded elsewhere within seconds -----
    counts = {name: sum(1 for h in holders.values() if h == name) for name in ("rec-a", "rec-b", "rec-c")}
    victim = max(counts, key=counts.get)
    lost = {c for c, h in holders.items() if h == victim}
    t_kill = _now_us()
    cluster.nodes[victim].kill9()
    survivors = {"rec-a", "rec-b", "rec-c"} - {victim}
    _wait(lambda: _all_recording(cluster, cams, survivors), 60, f"{victim}'s cameras recorded elsewhere")
    first = {r[0]: r[1] for r in cluster.db("select camera_id, min(start_us) from segments group by camera_id")}
    since = {c: max(t_kill - 20_000_000, first[c] + 1000) for c in lost}  # (times in ms at the edges)
    _wait(lambda: all(cluster.gaps(c, since[c]) for c in lost), 30, "the failover gaps")
    failover = {}
    for c in lost:
        gaps = cluster.gaps(c, since[c])
        assert [g["reason"] for g in gaps] == ["node_failover"], (c, gaps)
        failover[c] = (_us(gaps[0]["end"]) - _us(gaps[0]["start"])) / 1e6
        assert failover[c] <= 30, f"{c}: {failover[c]:.1f} s without recording after the failover"
    print(f"failover gaps (s) after kill -9 of {victim}: {sorted(failover.values())}")
    ov = cluster.overview()
    assert ov[victim]["state"] == "down" and ov[victim]["cameras"] == []
    with web.api() as c:
        alarms = c.get("/api/system/alarms?active=true").json()
    assert any(a["kind"] == "node_down" and victim in a["message"] for a in alarms)

    # --- it returns, and another is drained: cameras move with no new gap ------------------
    t_back = _now_us()
    cluster.nodes[victim].start("recorder")
    _wait(lambda: len(cluster.overview()[victim]["cameras"]) > 0, 60, f"cameras moving back to {victim}")
    drained = next(n for n in sorted(survivors) if cluster.overview()[n]["cameras"])
    res = cluster.any.run("nodes", "drain", drained, "--timeout", "120")
    assert f"node {drained} drained" in res.stdout, res.stdout + res.stderr
    assert cluster.overview()[drained]["cameras"] == [] and cluster.overview()[drained]["state"] == "draining"
    _wait(lambda: _all_recording(cluster, cams), 30, "every camera recording after the moves")
    time.sleep(3)
    for c in sorted(cams):
        assert cluster.gaps(c, t_back) == [], (f"{c}: a planned move left a gap", cluster.gaps(c, t_back))
    assert cluster.overlaps() == [], "a planned move indexed the overlap twice"
    cluster.any.run("nodes", "resume", drained)

    # --- SIGSTOP a recorder past its lease: once woken it writes nothing for lost cameras ----
    holders = cluster.holders()
    frozen = next(n for n in ("rec-a", "rec-b", "rec-c") if n != drained and any(h == n for h in holders.values()))
    frozen_id = cluster.nodes[frozen].node_id()
    taken = {c for c, h in holders.items() if h == frozen}
    cluster.nodes[frozen].proc.send_signal(signal.SIGSTOP)
    _wait(lambda: not (taken & set(cluster.overview()[frozen]["cameras"])), 60, "the frozen node's cameras taken")
    cut = cluster.db("select coalesce(max(id), 0) from segments")[0][0]
    t_cont = _now_us()
    cluster.nodes[frozen].proc.send_signal(signal.SIGCONT)
    time.sleep(10)
    # Its ffmpeg went on writing while it was frozen: none of that may be indexed (a camera
    # that moves back to it later is recorded afresh, from after it woke).
    late = cluster.db("select camera_id from segments where recorder = :r and id > :cut and start_us < :t",
                      r=frozen_id, cut=cut, t=t_cont)
    stale = [r[0] for r in late if r[0] in taken]
    assert stale == [], f"the woken node indexed footage of cameras it had lost: {stale}"
    assert cluster.overlaps() == []
    # Its files recorded after losing the lease are kept aside, not indexed, and said so.
    with web.api() as c:
        alarms = c.get("/api/system/alarms").json()
    fenced = [a for a in alarms if a["kind"] == "segments_fenced"]
    quarantined = list((cluster.nodes[frozen].home / "quarantine").rglob("*.mp4"))
    assert bool(fenced) == bool(quarantined)
    _wait(lambda: _all_recording(cluster, cams), 60, "every camera recording at the end")
    _wait(lambda: all(sim.sessions()[c]["active"] == 1 for c in cams), 30, "one session per main stream at the end")


def test_two_recorders_on_default_settings_never_record_the_same_camera(tmp_path, postgres_url, camsim):
    c = Cluster(tmp_path, postgres_url)
    try:
        first = c.node("a")
        for i, mount in enumerate(("gen1", "gen2", "gen3", "gen1")):
            first.run("camera", "add", f"d{i}", "--url", camsim.url(mount))
        # Nothing but a database URL and a data folder each: the out-of-the-box set-up.
        for name in ("a", "b"):
            n = c.node(name)
            n.env = {k: v for k, v in n.env.items() if k not in ("VARTA_NODE_NAME", "VARTA_ANALYTICS")}
            n.env["VARTA_ANALYTICS"] = "false"
            n.start("recorder")
        _wait(lambda: _all_recording(c, {"d0", "d1", "d2", "d3"}), 60, "four cameras recording")
        time.sleep(12)
        # Each camera recorded by one node at a time: whatever moved when the second node
        # joined moved without a second copy (no overlapping index rows) ...
        assert len(c.db("select distinct camera_id from segments")) == 4
        assert c.overlaps() == []
        # ... and now each camera has one session (gen1 serves two cameras).
        _wait(lambda: all(s["active"] == (2 if m == "gen1" else 1) for m, s in camsim.sessions().items()), 20,
              "one session per camera")
        held = [cam for n in c.nodes_json() for cam in n["cameras"]]
        assert sorted(held) == ["d0", "d1", "d2", "d3"]
        # A camera removed from the registry stops being recorded, says so, and leaves its node.
        c.any.run("camera", "remove", "d3")
        _wait(lambda: "d3" not in [cam for n in c.nodes_json() for cam in n["cameras"]], 30, "d3 given up")
        state = c.db("select state, reason from camera_status where camera_id = 'd3'")[0]
        assert tuple(state) == ("stopped", "recorder_down"), state
        last = c.db("select max(end_us) from segments where camera_id = 'd3'")[0][0]
        time.sleep(5)
        assert c.db("select max(end_us) from segments where camera_id = 'd3'")[0][0] == last
        names = {n["id"]: n["name"] for n in c.any.json("nodes", "--json")}
        assert len(names) == 2 and len(set(names.values())) == 1  # both named after the host: a label only
    finally:
        c.stop_all()


def _slow_ffmpeg(path) -> str:
    """An ffmpeg that waits before it works: the node running an export or a package build is
    then killed mid-job, whatever the machine's speed."""
    import shutil

    path.write_text(f"#!/bin/sh\nsleep 6\nexec {shutil.which('ffmpeg')} \"$@\"\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_an_export_and_a_package_build_survive_the_death_of_their_node(tmp_path, postgres_url, camsim):
    import pyotp
    from conftest import login_client

    c = Cluster(tmp_path, postgres_url)
    try:
        rec = c.node("rec")
        rec.run("camera", "add", "ex1", "--url", camsim.url("gen2"))
        c.start("rec")
        zone = dict(onsite_networks="127.0.0.1/32", restricted_workstations="127.0.0.1/32")
        doomed = c.start("web-1", "web", ffmpeg=_slow_ffmpeg(tmp_path / "slow-ffmpeg"), **zone)
        spare = c.start("web-2", "web", **zone)
        _wait(lambda: len(c.db("select id from segments where camera_id = 'ex1'")) >= 4, 60, "footage")
        t2 = _now_us() - 1_000_000
        t1 = t2 - 6_000_000
        with doomed.api() as api:
            job = api.post("/api/exports", json={"cameras": ["ex1"], "from": _iso(t1), "to": _iso(t2)}).json()
            dept = doomed.api("olena.dept", "department")
            body = {"kind": "police", "incoming_no": "12/77", "incoming_date": _iso(_now_us())[:10],
                    "requester": "Мелітопольський РВП", "basis": "ст. 93 КПК України",
                    "items": [{"camera_id": "ex1", "from": _iso(t1), "to": _iso(t2)}]}
            req = dept.post("/api/requests", json=body).json()
            password, secret = doomed.account("deputy.k", "deputy_mayor", totp=True)
            deputy = login_client(doomed.base_url, "deputy.k", password, otp=pyotp.TOTP(secret).now(),
                                  local_address="127.0.0.3")
            r = deputy.post(f"/api/requests/{req['id']}/resolve", json={"decision": "approve", "text": "Погоджую"})
            assert r.status_code == 200, r.text
            build = dept.post(f"/api/requests/{req['id']}/prepare").json()
        assert job["status"] in ("queued", "running") and build["status"] in ("queued", "running")
        time.sleep(1.0)
        doomed.kill9()  # mid-job: its ffmpeg has not even started
        with spare.api() as api:
            done = _wait(lambda: (j := api.get(f"/api/exports/{job['id']}").json())["status"] in ("done", "failed")
                         and j, 90, "the export finished by the other web node")
            assert done["status"] == "done", done
            assert done["node"] == spare.node_id() and done["attempts"] == 2
            name = done["files"][0]["name"]
            got = api.get(f"/api/exports/{job['id']}/files/{name}")
            assert got.status_code == 200 and got.content[4:8] == b"ftyp"
        dept2 = spare.api("olena.dept", "department")
        b = _wait(lambda: (j := dept2.get(f"/api/requests/jobs/{build['id']}").json())["status"]
                  in ("done", "failed") and j, 120, "the package built by the other web node")
        assert b["status"] == "done" and b["attempts"] == 2, b
        req = dept2.get(f"/api/requests/{req['id']}").json()
        assert req["state"] == "prepared"
        pkg = dept2.get(f"/api/requests/{req['id']}/package")
        assert pkg.status_code == 200 and pkg.content[:2] == b"PK"
    finally:
        c.stop_all()


def test_one_node_per_data_folder_and_one_node_on_sqlite(tmp_path, camsim):
    first = VartaHome(tmp_path / "town")
    first.start()
    try:
        twin = VartaHome(tmp_path / "town")  # the same data folder
        res = twin.run("recorder", "--listen", "127.0.0.1:0", check=False, timeout=60)
        assert res.returncode != 0 and "already runs as this node" in res.stderr
        other = VartaHome(tmp_path / "second", f"sqlite:///{tmp_path / 'town' / 'varta.db'}")
        res = other.run("recorder", "--listen", "127.0.0.1:0", check=False, timeout=60)
        assert res.returncode != 0 and "SQLite is for a single machine" in res.stderr
    finally:
        first.stop()


def test_a_node_keeps_its_footage_when_renamed_and_reconcile_spares_files_in_progress(varta, camsim):
    """A town's single node: its identity is its data folder, not its host name; footage
    recorded under its pre-cluster name becomes its own; `varta reconcile` while recording
    never touches the segment being written."""
    v = varta(recorder_name="old-host")
    v.run("camera", "add", "mel-r", "--url", camsim.url("gen1"))
    old = _now_us() - 5 * 86_400_000_000  # five days ago: outside the start-up reconciliation
    with v.engine().begin() as conn:
        conn.execute(text("insert into segments (camera_id, start_us, end_us, path, bytes, init_bytes, codec, "
                          "run_id, recorder, status) values ('mel-r', :a, :b, 'old/seg.mp4', 10, 5, 'h264', 'r0', "
                          "'old-host', 'ok')"), {"a": old, "b": old + 2_000_000})
    v.start()
    node = v.node_id()
    v.wait_for(lambda: len(v.json("recordings", "--camera", "mel-r", "--from", "now-1m", "--to", "now", "--json")
                           ["ranges"]) >= 1, 60, "recording")
    time.sleep(5)
    with v.engine().connect() as conn:
        assert {r[0] for r in conn.execute(text("select distinct recorder from segments"))} == {node}
    # While the recorder writes, a reconcile by hand leaves the open file alone.
    for _ in range(3):
        out = v.run("reconcile").stdout
        assert "mel-r: 0 indexed, 0 repaired, 0 quarantined" in out, out
        time.sleep(0.7)
    v.stop()
    # Renamed host (a new label): the same node, the same footage, which it still expires.
    v.env["VARTA_NODE_NAME"] = "renamed-host"
    v.start()
    nodes = v.json("nodes", "--json")
    assert [(n["id"], n["name"]) for n in nodes] == [(node, "renamed-host")]
    v.stop()
    age = 11 * 86_400_000_000
    with v.engine().begin() as conn:
        n = conn.execute(text("update segments set start_us = start_us - :a, end_us = end_us - :a "
                              "where path <> 'old/seg.mp4'"), {"a": age}).rowcount
    res = v.run("retention")
    assert f"deleted {n} expired segments" in res.stdout, res.stdout  # all of them: still its own
