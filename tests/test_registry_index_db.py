"""The registry, the archive index and the HTTP API on both databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from varta.cameras.importer import load_camera_file
from varta.cameras.model import Camera, CameraError
from varta.cameras.registry import CameraRegistry
from varta.clock import US
from varta.recording.index import ArchiveIndex


def _seg(index, cam, start, end, path, run="r1"):
    return index.add_segment(camera_id=cam, start_us=start, end_us=end, path=path, bytes=1000, init_bytes=100,
                             codec="h264", width=640, height=360, fps=25.0, run_id=run, recorder="n1")


def test_migrations_create_exactly_the_declared_schema(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from varta.db.partitions import include_name
    from varta.db.schema import metadata

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": include_name}), metadata)
    assert diff == []


def test_registry_add_update_remove_keeps_archive(engine):
    reg = CameraRegistry(engine)
    reg.add(Camera(id="mel-0042", main_url="rtsp://u:p@10.0.0.1/s", name="Square", kind="square",
                   latitude=46.85, longitude=35.36, group_name="centre"))
    with pytest.raises(CameraError, match="already exists"):
        reg.add(Camera(id="mel-0042", main_url="rtsp://10.0.0.1/s"))
    cam = reg.update("mel-0042", retention_days=30)
    assert cam.retention_days == 30 and reg.get("mel-0042").retention_days == 30
    with pytest.raises(CameraError, match="at least 10 days"):
        reg.update("mel-0042", retention_days=2)
    index = ArchiveIndex(engine)
    _seg(index, "mel-0042", 0, 10 * US, "a.mp4")
    reg.remove("mel-0042")
    assert reg.list() == [] and reg.get("mel-0042") is None
    # The footage of a removed camera stays searchable until retention deletes it.
    assert reg.get("mel-0042", include_removed=True) is not None
    assert len(index.segments_between("mel-0042", 0, 20 * US)) == 1
    with pytest.raises(CameraError, match="no camera"):
        reg.remove("mel-0042")


def test_import_yaml_and_toml_all_or_nothing(engine, tmp_path):
    y = tmp_path / "city.yaml"
    y.write_text("""
defaults: {retention_days: 14, group: centre}
cameras:
  - {id: mel-0001, url: "rtsp://u:p@10.1.0.11/101", kind: square, lat: 46.84, lon: 35.36, name: Ploshcha}
  - id: mel-0002
    url: rtsp://10.1.0.12/101
    sub_url: rtsp://10.1.0.12/102
    kind: transport_stop
    schedule: {default: continuous, rules: [{days: [sat, sun], from: "00:00", to: "24:00", mode: "off"}]}
""")
    t = tmp_path / "city.toml"
    t.write_text("""
[[cameras]]
id = "mel-0003"
url = "rtsp://10.1.0.13/101"
kind = "street"
retention_days = 10
""")
    reg = CameraRegistry(engine)
    for cam in load_camera_file(y) + load_camera_file(t):
        reg.upsert(cam)
    cams = {c.id: c for c in reg.list()}
    assert set(cams) == {"mel-0001", "mel-0002", "mel-0003"}
    assert cams["mel-0001"].retention_days == 14 and cams["mel-0001"].group_name == "centre"
    assert cams["mel-0002"].sub_url == "rtsp://10.1.0.12/102"
    assert cams["mel-0002"].schedule.rules[0].mode == "off"
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  - {id: mel-0009, url: rtsp://a/b}\n  - {id: mel-0009, url: rtsp://a/c}\n")
    with pytest.raises(CameraError, match="duplicate id mel-0009"):
        load_camera_file(bad)
    bad.write_text("cameras:\n  - {id: mel-0010, url: rtsp://a/b, colour: red}\n")
    with pytest.raises(CameraError, match="unknown field 'colour'"):
        load_camera_file(bad)


def test_index_finds_the_segment_at_a_time_and_ranges(engine):
    CameraRegistry(engine).add(Camera(id="cam", main_url="rtsp://h/x"))
    index = ArchiveIndex(engine)
    base = 1_700_000_000 * US
    for i in range(6):  # 0..60 s, then a hole 60..90, then 90..120
        _seg(index, "cam", base + i * 10 * US, base + (i + 1) * 10 * US, f"{i}.mp4")
    for i in range(9, 12):
        _seg(index, "cam", base + i * 10 * US, base + (i + 1) * 10 * US, f"{i}.mp4", run="r2")
    assert index.segment_at("cam", base + 25 * US).path == "2.mp4"
    assert index.segment_at("cam", base + 30 * US).path == "3.mp4"  # boundaries belong to the later segment
    assert index.segment_at("cam", base + 75 * US) is None
    assert index.segment_at("cam", base - 1) is None
    got = index.segments_between("cam", base + 55 * US, base + 95 * US)
    assert [s.path for s in got] == ["5.mp4", "9.mp4"]
    index.open_outage("cam", base + 60 * US, "refused", "Connection refused", "n1")
    index.open_outage("cam", base + 70 * US, "recorder_down", "", "n1")  # cause changes mid-gap
    index.close_outage("cam", base + 90 * US)
    from varta.playback.query import recordings_report
    from zoneinfo import ZoneInfo

    rep = recordings_report(index, "cam", base, base + 120 * US, ZoneInfo("Europe/Kyiv"))
    assert len(rep["ranges"]) == 2
    assert [(g["reason"]) for g in rep["gaps"]] == ["refused", "recorder_down"]
    index.set_status("cam", "n1", "recording", last_segment_end_us=base, bitrate_bps=1e6, fps=25.0, lag_s=0.1)
    index.set_status("cam", "n1", "failed", "auth", "401 Unauthorized")
    st = index.status("cam")
    assert st["state"] == "failed" and st["reason"] == "auth" and st["fps"] == 25.0


def test_http_api_cameras_and_archive(engine, tmp_path):
    from varta.config import Settings
    from varta.web.app import create_app

    settings = Settings(home=tmp_path, database_url=str(engine.url.render_as_string(hide_password=False)))
    app = create_app(settings, engine)
    app.state.services.access.accounts.add("tech", "Technik Test", "contractor", password="Wrench-Lantern-7")
    # The server's own address: on site and in the restricted zone by default.
    client = TestClient(app, base_url="https://testserver", client=("127.0.0.1", 40000))
    assert client.get("/api/cameras").status_code == 401
    r = client.post("/api/auth/login", json={"login": "tech", "password": "Wrench-Lantern-7"})
    assert r.status_code == 200 and r.json()["access"] == "direct"
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    r = client.post("/api/cameras", json={"id": "mel-0100", "url": "rtsp://admin:Secret9@10.0.0.9/s",
                                          "kind": "intersection", "lat": 46.8, "lon": 35.3, "group": "north"})
    assert r.status_code == 201, r.text
    assert "Secret9" not in r.text and r.json()["main_url"] == "rtsp://admin:***@10.0.0.9/s"
    assert client.post("/api/cameras", json={"id": "mel-0100", "url": "rtsp://h/x"}).status_code == 400
    assert client.post("/api/cameras", json={"id": "BAD ID", "url": "rtsp://h/x"}).status_code == 400
    assert client.post("/api/cameras", json={"url": "rtsp://h/x"}).status_code == 422
    r = client.post("/api/cameras/import", content="cameras:\n  - {id: mel-0101, url: rtsp://h/y, kind: street}\n")
    assert r.status_code == 200 and r.json()["cameras"] == {"mel-0101": "added"}
    assert client.post("/api/cameras/import", content="cameras: [{id: x}]").status_code == 400
    assert [c["id"] for c in client.get("/api/cameras").json()] == ["mel-0100", "mel-0101"]
    assert client.get("/api/cameras/nope").status_code == 404
    r = client.get("/api/cameras/mel-0100/recordings", params={"from": "2026-03-03T14:05", "to": "2026-03-03T14:40"})
    assert r.status_code == 200
    body = r.json()
    assert body["from"] == "2026-03-03T14:05:00.000+02:00" and body["ranges"] == []
    assert r.json()["gaps"][0]["reason"] == "no_recording"
    assert client.get("/api/cameras/mel-0100/recordings", params={"from": "x", "to": "y"}).status_code == 422
    assert client.get("/api/cameras/mel-0100/recordings", params={"from": "2026-03-03T14:05"}).status_code == 422
    spec = client.get("/api/openapi.json").json()
    for path in ("/api/cameras", "/api/cameras/{camera_id}/recordings", "/api/exports",
                 "/api/cameras/{camera_id}/playback.m3u8", "/api/system/storage"):
        assert path in spec["paths"]
    assert client.delete("/api/cameras/mel-0101").status_code == 204
    assert client.get("/api/system/storage").json()["required_days"] == 10


def test_cameras_are_split_between_recorders(engine):
    reg = CameraRegistry(engine)
    reg.add(Camera(id="a", main_url="rtsp://h/a", recorder="rec-1"))
    reg.add(Camera(id="b", main_url="rtsp://h/b", recorder="rec-2"))
    reg.add(Camera(id="c", main_url="rtsp://h/c"))
    assert [c.id for c in reg.list(recorder="rec-1")] == ["a", "c"]
    assert [c.id for c in reg.list(recorder="rec-2", include_unassigned=False)] == ["b"]


def test_ranges_merged_in_the_database_match_the_pure_rule(engine):
    """The SQL island query and the pure merge agree, including overlaps and near-touching segments."""
    import random

    from varta.playback.ranges import JOIN_US, merge_ranges

    CameraRegistry(engine).add(Camera(id="cam", main_url="rtsp://h/x"))
    index = ArchiveIndex(engine)
    rnd = random.Random(7)
    t = 1_700_000_000 * US
    for i in range(300):
        dur = rnd.choice([2, 10, 10, 10, 9]) * US
        t += rnd.choice([0, 0, 0, 0, 300_000, 900_000, 1_200_000, 25 * US, -200_000])
        _seg(index, "cam", t, t + dur, f"{i}.mp4")
        t += dur
    lo, hi = 1_700_000_000 * US + 500 * US, t - 700 * US
    pure = merge_ranges(index.segments_between("cam", lo, hi), lo, hi, JOIN_US)
    assert [(r.start_us, r.end_us) for r in pure] == index.ranges_between("cam", lo, hi)
    assert len(pure) > 5
    # Spans stay right when segments are added out of order, marked missing or deleted.
    segs = index.segments_between("cam", 0, t + US)
    _seg(index, "cam", segs[10].end_us + 100_000, segs[10].end_us + 300_000, "late.mp4")
    index.set_segment_status(segs[40].id, "missing")
    index.delete_segments(segs[100:103] + segs[:5])
    remaining = index.segments_between("cam", 0, t + US)
    pure = merge_ranges(remaining, 0, t + US, JOIN_US)
    assert [(r.start_us, r.end_us) for r in pure] == index.ranges_between("cam", 0, t + US)
    # The spans also carry the bytes, so storage totals need not scan the segments.
    assert index.camera_totals()["cam"][0] == sum(s.bytes for s in remaining)
    # Retention's cut: the oldest stretch of footage, then the newest few (a span loses a
    # prefix or a suffix, or goes), then one from the middle of a span.
    for doomed in (remaining[:37], remaining[-3:], remaining[150:152]):
        index.delete_segments(doomed)
        remaining = index.segments_between("cam", 0, t + US)
        pure = merge_ranges(remaining, 0, t + US, JOIN_US)
        assert [(r.start_us, r.end_us) for r in pure] == index.ranges_between("cam", 0, t + US)
        assert index.camera_totals()["cam"][0] == sum(s.bytes for s in remaining if s.status != "missing")
