"""The motion recording mode and event expiry, through the janitor on a real database and
real files: footage away from motion goes, footage around it (with its pre/post roll) and
footage recorded while analysis was not running stays; events leave with retention."""

from __future__ import annotations

from varta.analytics.store import AnalyticsSettings
from varta.cameras.model import Camera
from varta.cameras.registry import CameraRegistry
from varta.cameras.schedule import Schedule
from varta.clock import DAY_US, US, now_us
from varta.config import Settings
from varta.db.schema import analytics_status
from varta.events.store import EventStore
from varta.recording.index import ArchiveIndex
from varta.recording.janitor import Janitor

NODE = "node-a"


def _segment(index, settings, cam, start_us, seconds=10):
    rel = f"2026/01/01/{start_us}.mp4"
    path = settings.recordings_dir / cam / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 1000)
    index.add_segment(camera_id=cam, start_us=start_us, end_us=start_us + seconds * US, path=rel, bytes=1000,
                      init_bytes=100, codec="h264", width=640, height=360, fps=25.0, run_id="r1", recorder=NODE)
    return path


def test_motion_mode_keeps_footage_around_motion_only(engine, tmp_path):
    settings = Settings(home=tmp_path, recorder_name=NODE)
    CameraRegistry(engine).add(Camera(id="yard", main_url="rtsp://127.0.0.1:9/x", schedule=Schedule.from_json("motion")))
    AnalyticsSettings(engine).set("yard", {"detect": False, "pre_roll_s": 5, "post_roll_s": 10})
    index, events = ArchiveIndex(engine), EventStore(engine, settings.events_dir, NODE)
    t0 = now_us() - 3600 * US  # an hour ago: 30 segments of 10 s from t0
    files = [_segment(index, settings, "yard", t0 + i * 10 * US) for i in range(30)]
    events.motion_start("yard", t0 + 125 * US)
    events.motion_end("yard", t0 + 131 * US)  # motion 125..131 s → keep 120..141 s (pre 5, post 10)
    # The worker watched from 50 s on: before that nobody knows, so it stays.
    store = AnalyticsSettings(engine)
    store.set_status("yard", NODE, "motion_only", "", 5.0, since_us=t0 + 50 * US)
    report = Janitor(engine, settings, NODE).run_once()
    kept = [i for i, f in enumerate(files) if f.exists()]
    assert kept == [0, 1, 2, 3, 4, 12, 13, 14], kept
    assert report.quiet_deleted == 30 - len(kept)
    assert len(index.segments_between("yard", t0, t0 + 400 * US)) == len(kept)
    # Analysis stopped (no_video): nothing more is judged.
    more = [_segment(index, settings, "yard", t0 + (300 + i * 10) * US) for i in range(3)]
    with engine.begin() as conn:
        conn.execute(analytics_status.update().values(state="no_video"))
    Janitor(engine, settings, NODE).run_once()
    assert all(f.exists() for f in more)


def test_events_and_their_pictures_leave_with_retention_unless_held(engine, tmp_path):
    from varta.analytics.pipeline import EventChange
    from varta.analytics.types import Occurrence
    from varta.db.schema import holds

    settings = Settings(home=tmp_path, recorder_name=NODE)
    CameraRegistry(engine).add(Camera(id="gate", main_url="rtsp://127.0.0.1:9/x", retention_days=10))
    events = EventStore(engine, settings.events_dir, NODE)
    old = now_us() - 11 * DAY_US

    def event(start_us):
        occ = Occurrence(key="k", rule="gate", kind="zone", t=0.0, label="person", box=(10, 10, 50, 90))
        ch = EventChange("open", "k", occ, "alarm", start_us, 640, 360, snapshot=b"\xff\xd8jpeg")
        eid = events.open_event("gate", ch)
        ch.wall_us = start_us + 5 * US
        events.update_event(eid, ch, end=True)
        return eid

    expired, held, recent = event(old), event(old + 60 * US), event(now_us() - DAY_US)
    with engine.begin() as conn:
        conn.execute(holds.insert().values(camera_id="gate", start_us=old + 50 * US, end_us=old + 70 * US,
                                           reason="police request 17", created_us=now_us()))
    pictures = {e: events.snapshot_path(events.get(e)) for e in (expired, held, recent)}
    assert all(p is not None and p.is_file() for p in pictures.values())
    report = Janitor(engine, settings, NODE).run_once()
    assert report.events_deleted == 1
    assert events.get(expired) is None and not pictures[expired].exists()
    assert events.get(held) is not None and pictures[held].exists()
    assert events.get(recent) is not None and pictures[recent].exists()
