"""Moving a node's archive between its disk and the bucket while it records (adapter).

``--to s3`` is shipping run to the end: the same code as the recorder's shipper
(storage/shipping.py), over every segment of this node still only on its disk. ``--to
local`` copies back what is only in the bucket, checked against the index's SHA-256. Each
segment's state is its index row, changed only after its copy is checked: a run stopped at
any moment (Ctrl-C, kill -9, the store away) goes on where it stopped when started again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update

from varta.db.schema import segments
from varta.storage import layout
from varta.storage.objects import S3Store
from varta.storage.shipping import BATCH, Shipper


@dataclass
class MigrationReport:
    moved: int = 0
    bytes: int = 0
    left: int = 0
    skipped: int = 0


def _count(engine, node: str, stored, upto_id: int | None = None) -> int:
    q = select(func.count()).where(segments.c.recorder == node, stored, segments.c.status != "missing")
    if upto_id is not None:
        q = q.where(segments.c.id <= upto_id)
    with engine.connect() as conn:
        return conn.execute(q).scalar()


def migrate_to_s3(engine, settings, node: str, store: S3Store, limit: int | None = None,
                  progress=lambda done, left, nbytes: None) -> MigrationReport:
    """Everything this node recorded up to now goes to the bucket (what it records meanwhile
    is shipped by the node once it runs with ``archive_storage = s3``, or by another run)."""
    rep = MigrationReport()
    with engine.connect() as conn:
        upto = conn.execute(select(func.coalesce(func.max(segments.c.id), 0))
                            .where(segments.c.recorder == node)).scalar()
    local = segments.c.stored == layout.LOCAL
    shipper = Shipper(engine, settings, node, store)
    shipper.prepare_restart()  # segments a stopped run may have uploaded are looked up first
    while limit is None or rep.moved < limit:
        before = shipper.shipped_bytes
        # Everything up to the start, the newest too (a planned move that trims one meanwhile
        # makes it ship again: harmless, an older version in the bucket).
        n = shipper.run_once(max_rows=min(BATCH, limit - rep.moved) if limit else BATCH, upto_id=upto,
                             min_age_us=0)
        rep.moved += n
        rep.bytes += shipper.shipped_bytes - before
        progress(rep.moved, _count(engine, node, local, upto), rep.bytes)
        if n == 0:
            break
    rep.skipped = len(shipper.missing)
    rep.left = max(0, _count(engine, node, local, upto) - rep.skipped)
    return rep


def migrate_to_local(engine, settings, node: str, store: S3Store, limit: int | None = None,
                     progress=lambda done, left, nbytes: None) -> MigrationReport:
    rep = MigrationReport()
    root = Path(settings.recordings_dir)
    after = -1
    while limit is None or rep.moved < limit:
        with engine.connect() as conn:
            rows = conn.execute(
                select(segments.c.id, segments.c.camera_id, segments.c.path, segments.c.bytes,
                       segments.c.stored, segments.c.sha256)
                .where(segments.c.recorder == node, segments.c.stored.in_(layout.IN_BUCKET),
                       segments.c.status != "missing", segments.c.id > after)
                .order_by(segments.c.id).limit(BATCH)).all()
        if not rows:
            break
        for r in rows:
            if limit is not None and rep.moved >= limit:
                break
            after = r.id
            dest = root / r.camera_id / r.path
            if r.stored == layout.S3 or not dest.is_file():
                store.download(layout.segment_key(r.camera_id, r.path), dest, sha256=r.sha256)
            with engine.begin() as conn:
                conn.execute(update(segments).where(segments.c.id == r.id).values(stored=layout.LOCAL,
                                                                                   locked=False))
            rep.moved += 1
            rep.bytes += r.bytes
        progress(rep.moved, _count(engine, node, segments.c.stored.in_(layout.IN_BUCKET)), rep.bytes)
    rep.left = _count(engine, node, segments.c.stored.in_(layout.IN_BUCKET))
    return rep
