"""The ``analyse`` role: which cameras this node's analytics worker analyses, by lease.

The node's coordinator claims and loses ``analyse:<camera>`` leases; the worker (a child
process of ``varta serve``/``recorder``, or ``varta analytics run`` on an analytics-only
node) follows them from the database and writes its events under them (fencing). So this
role only keeps count; it imports nothing heavy, and a recording node stays lean.

Placement prefers the node that records the camera, when it analyses too: the stream is
already read there (its relay feeds the worker), and the camera's work fails over together.
"""

from __future__ import annotations

import threading

from sqlalchemy import select

from varta.cameras.registry import CameraRegistry
from varta.cluster.leases import RECORD, Fence, Lease
from varta.cluster.placement import CameraInfo
from varta.db.schema import analytics_config, leases
from varta.recording.activity import ACTIVITY_MODES


def needs_analysis(camera, raw: dict | None) -> bool:
    """Settings switched on, or a timetable whose motion/events modes need activity spans.
    (The worker validates the settings fully and says why it refuses any.)"""
    if raw is not None and raw.get("enabled", True):
        return True
    return bool(camera.schedule.modes() & ACTIVITY_MODES)


class AnalyseRole:
    kind = "analyse"
    node_role = "analytics"
    handoff = False

    def __init__(self, engine):
        self.engine = engine
        self.registry = CameraRegistry(engine)
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()
        self._last: list[CameraInfo] = []

    def cameras(self) -> list[CameraInfo]:
        with self.engine.connect() as conn:
            raw = {r.camera_id: r.config for r in conn.execute(select(analytics_config))}
            recorded_by = {r.name.split(":", 1)[1]: r.holder for r in conn.execute(
                select(leases.c.name, leases.c.holder).where(leases.c.kind == RECORD))}
        infos = [CameraInfo(c.id, recorded_by.get(c.id), c.group_name) for c in self.registry.list()
                 if c.enabled and needs_analysis(c, raw.get(c.id))]
        if infos != self._last:  # the same object while nothing changed: no re-placement
            self._last = infos
        return self._last

    def running(self) -> dict[str, int]:
        with self._lock:
            return dict(self._held)

    def begin(self, key: str, fence: Fence, taken_from: Lease | None, start_at_us: int | None) -> None:
        with self._lock:
            self._held[key] = fence.epoch

    def end(self, key: str, why: str) -> None:
        with self._lock:
            self._held.pop(key, None)

    def handing_over(self, key: str) -> bool:
        return False
