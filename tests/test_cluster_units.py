"""The cluster's rules and its database mechanics, without video: placement (pure), leases,
fencing and sessions on the database's clock (SQLite and PostgreSQL), migrations run once by
many nodes at once, the alarm feed's order under a late commit, the instance key's sharing."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import text

from varta.cluster.leases import Fenced, LeaseStore, check_fence, lease_name
from varta.cluster.nodes import NodeError, NodeRegistry
from varta.cluster.placement import CameraInfo, NodeInfo, place

# --- placement (pure) ----------------------------------------------------------------------


def _nodes(*ids, **kw):
    return [NodeInfo(i, name=i, **kw) for i in ids]


def test_placement_spreads_cameras_and_moves_only_a_leaving_nodes_cameras():
    cams = [CameraInfo(f"cam{i:04d}") for i in range(3000)]
    three = place(cams, _nodes("a", "b", "c"))
    counts = Counter(three.values())
    assert set(counts) == {"a", "b", "c"} and min(counts.values()) > 900  # about a third each
    two = place(cams, _nodes("a", "c"))
    moved = [c for c in three if three[c] != two[c]]
    # Only b's cameras move (rendezvous hashing): nothing is reshuffled between a and c.
    assert set(moved) == {c for c, n in three.items() if n == "b"}
    four = place(cams, _nodes("a", "b", "c", "d"))
    joined = [c for c in three if three[c] != four[c]]
    assert all(four[c] == "d" for c in joined) and 600 < len(joined) < 900  # about a quarter, all to d


def test_placement_honours_pins_groups_and_capacity():
    nodes = [NodeInfo("n1", "rec-centre", groups=("centre",)), NodeInfo("n2", "rec-north", groups=("north",)),
             NodeInfo("n3", "rec-any"), NodeInfo("n4", "rec-small", capacity=2)]
    cams = ([CameraInfo(f"c{i}", group="centre") for i in range(10)] +
            [CameraInfo(f"n{i}", group="north") for i in range(10)] +
            [CameraInfo(f"x{i}") for i in range(20)] + [CameraInfo("pinned", pin="rec-north")])
    out = place(cams, nodes)
    assert all(out[f"c{i}"] == "n1" for i in range(10))  # a district's cameras on its servers
    assert all(out[f"n{i}"] == "n2" for i in range(10))
    assert out["pinned"] == "n2"
    others = Counter(out[f"x{i}"] for i in range(20))
    assert set(others) <= {"n3", "n4"} and others["n4"] <= 2  # capacity is a hard limit
    # The district's server is down: its cameras are still recorded (R4), by the general ones.
    out = place(cams, [n for n in nodes if n.id != "n1"])
    assert {out[f"c{i}"] for i in range(10)} <= {"n3", "n4"}


def test_placement_is_the_same_on_every_node():
    cams = [CameraInfo(f"cam{i}") for i in range(500)]
    nodes = _nodes("x", "y", "z", capacity=200)
    assert place(cams, nodes) == place(list(reversed(cams)), list(reversed(nodes)))


# --- leases, sessions, fencing -------------------------------------------------------------


def _register(reg: NodeRegistry, node_id: str, name: str, roles=("recorder",)):
    return reg.register(node_id=node_id, name=name, roles=list(roles), address="", version="t", capacity=0,
                        groups=[], takes_unpinned=True, public_key="", wrap_key="", pid=1)


@pytest.fixture
def pg_engine(postgres_url, tmp_path):
    from varta.db.engine import open_database

    eng = open_database(postgres_url, keys_dir=tmp_path / "keys")
    yield eng
    eng.dispose()


def test_a_lease_is_held_while_the_session_lives_and_taken_when_it_lapses(pg_engine):
    reg = NodeRegistry(pg_engine, ttl_us=1_000_000)
    _register(reg, "node-a", "a")
    _register(reg, "node-b", "b")
    leases = LeaseStore(pg_engine)
    leases.ensure("record", ["cam1", "cam2"])
    got = leases.claim([lease_name("record", "cam1"), lease_name("record", "cam2")], "node-a")
    assert {f.epoch for _, f in got.values()} == {1}
    fence = got["record:cam1"][1]
    # b cannot take what a holds while a's session lives.
    assert leases.claim(["record:cam1"], "node-b") == {}
    reg.heartbeat("node-b")
    time.sleep(1.3)  # a stops heartbeating: its session lapses on the database's clock
    reg.heartbeat("node-b")
    assert {lease.key for lease in leases.orphans("record")} == {"cam1", "cam2"}
    taken = leases.claim(["record:cam1"], "node-b")
    before, new = taken["record:cam1"]
    assert before.holder == "node-a" and new.epoch == 2
    # a wakes up: its session renews, but its write under the old epoch is refused.
    row, lapsed = reg.heartbeat("node-a")
    assert lapsed
    with pytest.raises(Fenced, match="node-b"):
        with pg_engine.begin() as conn:
            check_fence(conn, fence)
    with pg_engine.begin() as conn:
        check_fence(conn, new)  # the new holder writes


def test_two_nodes_racing_for_the_same_leases_never_both_win(pg_engine):
    reg = NodeRegistry(pg_engine)
    for n in "abcd":
        _register(reg, f"node-{n}", n)
    leases = LeaseStore(pg_engine)
    names = [f"cam{i}" for i in range(200)]
    leases.ensure("record", names)
    won: dict[str, list[str]] = {}

    def grab(node):
        won[node] = list(LeaseStore(pg_engine).claim([lease_name("record", c) for c in names], node))

    threads = [threading.Thread(target=grab, args=(f"node-{n}",)) for n in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [name for lst in won.values() for name in lst]
    assert len(claimed) == len(set(claimed)) == 200  # every lease once, none twice
    with pg_engine.connect() as conn:
        assert conn.execute(text("select count(*) from leases where epoch = 1")).scalar() == 200


def test_a_planned_move_passes_the_lease_with_a_new_epoch(pg_engine):
    reg = NodeRegistry(pg_engine)
    _register(reg, "node-a", "a")
    _register(reg, "node-b", "b")
    leases = LeaseStore(pg_engine)
    leases.ensure("record", ["cam1"])
    fence = leases.claim(["record:cam1"], "node-a")["record:cam1"][1]
    lease = leases.get("record:cam1")
    assert leases.request_handoff(lease, "node-b")
    assert not leases.request_handoff(lease, "node-c")  # one move at a time
    assert leases.publish_handoff_point("record:cam1", "node-b", 1_000_000)
    assert leases.complete_handoff(fence, "node-c", 1_000_000) is None  # not to whoever asks
    new = leases.complete_handoff(fence, "node-b", 1_000_000)
    assert new.holder == "node-b" and new.epoch == 2
    after = leases.get("record:cam1")
    assert after.start_at_us == 1_000_000 and after.handoff_to is None


def test_sqlite_refuses_a_second_node(tmp_path):
    from varta.db.engine import open_database

    eng = open_database(f"sqlite:///{tmp_path / 'v.db'}")
    reg = NodeRegistry(eng)
    _register(reg, "node-a", "a")
    with pytest.raises(NodeError, match="SQLite is for a single machine"):
        _register(reg, "node-b", "b")
    _register(reg, "node-a", "a")  # the same node restarting is welcome
    reg.stopped("node-a")
    _register(reg, "node-b", "b")  # once the first has stopped, another may run there


def test_migrations_run_once_when_nodes_start_together(postgres_url):
    """Six processes upgrade a fresh database at the same moment: all succeed, one migrates."""
    import subprocess
    import sys

    code = ("import sys; from varta.db.engine import open_database; "
            "e = open_database(sys.argv[1]); print('ok')")
    procs = [subprocess.Popen([sys.executable, "-c", code, postgres_url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    from varta.db.engine import make_engine

    from alembic.script import ScriptDirectory

    from varta.db.engine import alembic_config

    head = ScriptDirectory.from_config(alembic_config(postgres_url)).get_current_head()
    eng = make_engine(postgres_url)
    with eng.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == head
        # The last migration made the segment index partitioned by day, once.
        assert conn.execute(text("select count(*) from pg_partitioned_table p join pg_class c on "
                                 "c.oid = p.partrelid where c.relname = 'segments'")).scalar() == 1
    eng.dispose()


def test_an_older_node_starts_on_a_newer_schema(postgres_url):
    from varta.db.engine import make_engine, open_database

    open_database(postgres_url).dispose()
    eng = make_engine(postgres_url)
    with eng.begin() as conn:
        conn.execute(text("update alembic_version set version_num = '0099'"))
    eng.dispose()
    open_database(postgres_url).dispose()  # a warning, not a failure


# --- the alarm feed follows the database, not a clock --------------------------------------


def _event(conn, cam="cam1", updated_us=1):
    conn.execute(text("insert into events (camera_id, rule, kind, severity, score, start_us, detail, worker, state, "
                      "updated_us) values (:c, 'r', 'zone', 'alarm', 0, 1, '{}', 'w', 'new', :u)"),
                 {"c": cam, "u": updated_us})


def test_the_alarm_feed_never_skips_a_late_commit(engine):
    from varta.cameras.model import Camera
    from varta.cameras.registry import CameraRegistry
    from varta.events.store import EventStore

    CameraRegistry(engine).add(Camera(id="cam1", main_url="rtsp://10.0.0.1/s"))
    store = EventStore(engine, "/tmp")
    cursor = store.feed_head()
    seen = []
    if engine.dialect.name == "postgresql":
        late = engine.connect()
        tx = late.begin()
        _event(late, updated_us=10)  # written first, committed last (a slow transaction)
        with engine.begin() as conn:
            _event(conn, updated_us=20)
        rows, cursor = store.changes_from(cursor)
        seen += [r["updated_us"] for r in rows]
        assert seen == []  # held back while an older transaction may still commit
        tx.commit()
        late.close()
    else:  # SQLite's writers take turns: a transaction cannot commit after a later one
        with engine.begin() as conn:
            _event(conn, updated_us=10)
            _event(conn, updated_us=20)
    # Delivered once no older transaction is running: on a database other tests share (the
    # suite runs two workers), another test's open transaction may hold the horizon a moment.
    deadline = time.monotonic() + 15
    while len(seen) < 2 and time.monotonic() < deadline:
        rows, cursor = store.changes_from(cursor)
        seen += [r["updated_us"] for r in rows]
        if len(seen) < 2:
            time.sleep(0.1)
    assert sorted(seen) == [10, 20]
    rows, cursor = store.changes_from(cursor)
    assert rows == []  # nothing twice
    # An event a worker stamps with a lagging clock is delivered all the same.
    with engine.begin() as conn:
        _event(conn, updated_us=5)
    late_clock = []
    deadline = time.monotonic() + 15
    while not late_clock and time.monotonic() < deadline:
        rows, cursor = store.changes_from(cursor)
        late_clock += [r["updated_us"] for r in rows]
        if not late_clock:
            time.sleep(0.1)
    assert late_clock == [5]


# --- one instance key for every node --------------------------------------------------------


def test_the_instance_key_reaches_every_node_sealed_to_it(pg_engine, tmp_path):
    engine = pg_engine
    from varta.cluster.identity import load_identity
    from varta.evidence.keys import instance_key, share_instance_key
    from varta.evidence.signing import KeyFileError

    reg = NodeRegistry(engine)
    a = load_identity(tmp_path / "a")
    b = load_identity(tmp_path / "b")
    d = load_identity(tmp_path / "d")

    def register(ident, name):
        reg.register(node_id=ident.id, name=name, roles=["web"], address="", version="t", capacity=0, groups=[],
                     takes_unpinned=True, public_key=ident.public_key_pem, wrap_key=ident.wrap_key_pem, pid=1)

    register(a, "a")
    register(d, "d")
    key_a = instance_key(engine, a, tmp_path / "a" / "keys")  # the first: made, and sealed for d at once
    assert instance_key(engine, d, tmp_path / "d" / "keys").fingerprint() == key_a.fingerprint()
    register(b, "b")  # a node that joins later waits for a holder to seal a copy for it
    with pytest.raises(KeyFileError, match="has not reached this node yet"):
        instance_key(engine, b, tmp_path / "b" / "keys")
    assert share_instance_key(engine, a.id, tmp_path / "a" / "keys") == 1
    key_b = instance_key(engine, b, tmp_path / "b" / "keys")
    assert key_b.fingerprint() == key_a.fingerprint()
    with engine.connect() as conn:
        sealed = conn.execute(text("select sealed from key_shares where node_id = :n"), {"n": b.id}).scalar()
    assert "PRIVATE KEY" not in sealed and key_a.public_pem().decode() not in sealed
    # A node with a key of its own that is not the city's is refused, never used.
    c = load_identity(tmp_path / "c")
    from varta.evidence.signing import InstanceKey

    InstanceKey.load_or_create(tmp_path / "c" / "keys")
    with pytest.raises(KeyFileError, match="not the city's"):
        instance_key(engine, c, tmp_path / "c" / "keys")


def test_analysis_goes_where_the_camera_is_recorded(pg_engine):
    """A camera's analysis is placed on the node that records it (its stream is read there),
    when that node analyses too; cameras without analytics settings take no analysis lease."""
    from varta.analytics.role import AnalyseRole
    from varta.analytics.store import AnalyticsSettings
    from varta.cameras.model import Camera
    from varta.cameras.registry import CameraRegistry
    from varta.cluster.placement import Placer

    reg = NodeRegistry(pg_engine)
    for n in "ab":
        _register(reg, f"node-{n}", n, roles=("recorder", "analytics"))
    cams = CameraRegistry(pg_engine)
    for i in range(8):
        cams.add(Camera(id=f"cam{i}", main_url=f"rtsp://10.0.0.{i}/s"))
    for i in range(6):
        AnalyticsSettings(pg_engine).set(f"cam{i}", {"enabled": True, "fps": 5})
    leases = LeaseStore(pg_engine)
    leases.ensure("record", [f"cam{i}" for i in range(8)])
    for i in range(8):  # cameras 0, 2, 4, 6 recorded by a; 1, 3, 5, 7 by b
        leases.claim([f"record:cam{i}"], "node-a" if i % 2 == 0 else "node-b")
    infos = AnalyseRole(pg_engine).cameras()
    assert sorted(c.id for c in infos) == [f"cam{i}" for i in range(6)]
    nodes = [NodeInfo("node-a", "a"), NodeInfo("node-b", "b")]
    out = Placer().place(infos, nodes)
    assert out == {f"cam{i}": "node-a" if i % 2 == 0 else "node-b" for i in range(6)}


def test_a_background_duty_never_holds_up_the_coordinators_tick():
    """A duty that waits on the archive store runs on its own thread: the tick that renews
    the node's session returns at once, and a pass still running is not started twice."""
    import threading
    import time

    from varta.cluster.coordinator import Duty

    release, calls = threading.Event(), []

    def slow():
        calls.append(time.monotonic())
        release.wait(10)

    duty = Duty("archive_holds", slow, background=True)
    t = time.monotonic()
    for _ in range(5):
        duty.run()
    assert time.monotonic() - t < 0.5 and len(calls) == 1
    release.set()
    duty._thread.join(5)
    duty.run()
    duty._thread.join(5)
    assert len(calls) == 2
    plain = Duty("monitor", lambda: calls.append(0))
    plain.run()
    assert calls[-1] == 0  # a quick duty still runs inline
