"""Retention for the whole city (issue 13, A4.1, A4.6): whole days of the PostgreSQL segment
index dropped when everything in them expired, bucket-only footage of any node (a dead one's
too) expired row by row, holds kept — against real PostgreSQL and a real S3 server (moto)."""

from __future__ import annotations

import secrets
import time

import pytest
import s3server
from sqlalchemy import text

from varta.cameras.model import Camera
from varta.cameras.registry import CameraRegistry
from varta.config import Settings
from varta.db import partitions as parts
from varta.db.schema import holds as holds_table
from varta.recording import retention
from varta.recording.expiry import CityRetention
from varta.recording.index import ArchiveIndex
from varta.storage import layout
from varta.storage.objects import S3Config, S3Store

s3_server = s3server.s3_server
US = 1_000_000
DAY = parts.DAY_US


def test_day_rules():
    d0 = 100 * DAY
    hold = retention.Hold(d0 + DAY + 60 * US, d0 + DAY + 120 * US)
    cut = d0 + 5 * DAY
    assert retention.day_droppable(d0, d0 + DAY, 900 * US, [cut], [])
    assert not retention.day_droppable(d0, d0 + DAY, 900 * US, [cut, d0 + DAY], [])  # a longer class
    assert not retention.day_droppable(d0, d0 + DAY, 900 * US, [cut], [hold])  # held within the day's tail
    assert retention.day_droppable(d0, d0 + DAY, 900 * US, [cut], [retention.Hold(d0 + 2 * DAY, d0 + 3 * DAY)])
    assert not retention.day_droppable(d0, d0 + DAY, 900 * US, [], [])
    assert retention.mend_span(d0 - 10, d0 + 50, 9, 3, d0, d0 + 20) == ("rebuild",)
    assert retention.mend_span(d0 + 5, d0 + 50, 9, 3, d0, None) == ("delete",)
    assert retention.mend_span(d0 + 5, d0 + 50, 9, 3, d0, d0 + 60) == ("delete",)
    assert retention.mend_span(d0 + 5, d0 + DAY + 50, 9, 3, d0, d0 + DAY + 1) == ("update", d0 + DAY + 1, 6)
    assert parts.day_of(parts.name_of(d0)) == d0 and parts.is_partition("segments_default")
    assert not parts.is_partition("segments") and parts.days_between(d0 + 5, d0 + DAY) == [d0, d0 + DAY]


def _spans(engine, cam):
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(text("select start_us, end_us, bytes from spans where camera_id = :c "
                                                 "order by start_us"), {"c": cam})]


def _expected_spans(engine, cam):
    """The spans recomputed from the segments left (what ArchiveIndex keeps them equal to)."""
    with engine.connect() as c:
        rows = c.execute(text("select start_us, end_us, bytes from segments where camera_id = :c "
                              "and status <> 'missing' order by start_us"), {"c": cam}).all()
    out: list[list[int]] = []
    for s, e, b in rows:
        if out and s - out[-1][1] <= 1_000_000:
            out[-1][1] = max(out[-1][1], e)
            out[-1][2] += b
        else:
            out.append([s, e, b])
    return [tuple(x) for x in out]


@pytest.mark.postgres
def test_whole_days_drop_and_bucket_only_footage_of_a_dead_node_expires(postgres_url, s3_server, tmp_path):
    from varta.db.engine import open_database

    engine = open_database(postgres_url, keys_dir=tmp_path / "keys")
    bucket = f"varta-{secrets.token_hex(4)}"
    s3_server.client().create_bucket(Bucket=bucket)
    store = S3Store(S3Config(bucket=bucket, endpoint_url=s3_server.endpoint_url, access_key=s3_server.access_key,
                             secret_key=s3_server.secret_key, region=s3_server.region, addressing="path",
                             prefix="city/"))
    settings = Settings(home=tmp_path, database_url=postgres_url)
    reg = CameraRegistry(engine)
    reg.add(Camera(id="street-1", main_url="rtsp://127.0.0.1/a", retention_days=10))
    reg.add(Camera(id="street-2", main_url="rtsp://127.0.0.1/b", retention_days=30))
    index = ArchiveIndex(engine)
    now = int(time.time() * US)
    old = parts.day_start(now) - 20 * DAY  # a day 20 days ago (UTC): expired for 10 days, not for 30
    with engine.begin() as c:
        assert parts.partitioned(c)
        for day in (old, old + DAY):
            assert parts.create_day(c, day)
    body = tmp_path / "seg.mp4"
    body.write_bytes(b"\0" * 1000)

    def record(cam, t1, t2, recorder="node-dead"):
        """60 s segments from t1 to t2, shipped (bucket only), by a node that is gone."""
        t = t1
        while t < t2:
            path = f"old/{t}.mp4"
            store.put_file(layout.segment_key(cam, path), body)
            index.add_segment(camera_id=cam, start_us=t, end_us=t + 60 * US, path=path, bytes=1000, init_bytes=100,
                              codec="h264", width=640, height=360, fps=25.0, run_id="r1", recorder=recorder,
                              stored=layout.S3, sha256="x" * 64)
            t += 60 * US

    # street-1: continuous across the midnight between the two old days, and a later stretch
    # that a hold keeps; street-2 (30 days) on the older day.
    record("street-1", old + DAY - 600 * US, old + DAY + 600 * US)
    record("street-1", old + DAY + 7200 * US, old + DAY + 7500 * US)
    record("street-2", old + 3600 * US, old + 3900 * US)
    with engine.begin() as c:
        c.execute(holds_table.insert().values(camera_id="street-1", start_us=old + DAY + 7300 * US,
                                              end_us=old + DAY + 7400 * US, reason="ДТП", created_us=now))

    def objects(cam):
        r = s3_server.client().list_objects_v2(Bucket=bucket, Prefix="city/" + layout.segment_key(cam, ""))
        return {o["Key"] for o in r.get("Contents", [])}

    # 1. street-2 keeps the older day (30 days): it cannot go whole; street-1's footage in it
    #    expires row by row, and the day after keeps what the hold covers.
    rep = CityRetention(engine, settings, store).run_once(now)
    with engine.connect() as c:
        names = {d.name for d in parts.days(c)}
        left = c.execute(text("select camera_id, count(*) from segments where start_us < :t group by camera_id"),
                         {"t": old + 2 * DAY}).all()
    assert parts.name_of(old) in names and rep.days_dropped == 0
    assert dict(left) == {"street-2": 5, "street-1": 3}  # the 3 held minutes (7260–7440 s overlap the hold)
    assert rep.held_kept == 3 and rep.expired_deleted == 22
    assert len(objects("street-1")) == 3 and len(objects("street-2")) == 5
    assert _spans(engine, "street-1") == _expected_spans(engine, "street-1")
    # Days ahead are ready, so nothing lands in the default partition.
    assert all(parts.name_of(parts.day_start(now) + i * DAY) in names for i in range(parts.AHEAD_DAYS + 1))

    # 2. street-2's retention shortened to 10 days: the older day goes whole (one DROP), its
    #    objects deleted; the held day stays.
    reg.update("street-2", retention_days=10)
    rep = CityRetention(engine, settings, store).run_once(now)
    with engine.connect() as c:
        names = {d.name for d in parts.days(c)}
    assert rep.days_dropped == 1 and rep.day_rows == 5 and parts.name_of(old) not in names
    assert parts.name_of(old + DAY) in names
    assert objects("street-2") == set() and len(objects("street-1")) == 3
    assert _spans(engine, "street-2") == [] and _spans(engine, "street-1") == _expected_spans(engine, "street-1")

    # 3. The hold released: the last day goes whole too, and with it the spans.
    with engine.begin() as c:
        c.execute(holds_table.update().values(released_us=now))
    rep = CityRetention(engine, settings, store).run_once(now)
    assert rep.days_dropped == 1 and rep.day_rows == 3 and objects("street-1") == set()
    assert _spans(engine, "street-1") == []
    engine.dispose()
