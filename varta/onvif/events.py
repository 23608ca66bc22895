"""Camera events (ONVIF event service, PullPoint; issue 18): the motion and tamper detectors
of the cameras themselves become Varta events, marked as from the camera, and motion spans
that the ``motion``/``events`` recording modes keep footage around — without decoding a frame.

One node for the city holds the "onvif" duty; while it does, a thread of its own keeps one
PullPoint subscription per ONVIF camera whose device offers events (onvif-zeep-async's
PullPointManager renews it) and pulls messages. Losing the duty (no tick for 15 s) ends
the thread and its subscriptions; the next holder subscribes afresh."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time

from sqlalchemy import insert, select, update

from varta.clock import now_us
from varta.db.schema import events, motion_spans
from varta.onvif.client import Client
from varta.onvif.store import OnvifStore

log = logging.getLogger("varta.onvif")

MOTION = ("motionalarm", "motiondetector", "cellmotiondetector", "/motion")
TAMPER = ("tamper", "globalscenechange", "imagetooblurry", "imagetoodark", "imagetoobright", "signalloss")
STATE_ITEMS = ("state", "ismotion", "istamper", "value", "alarm")


def classify(topic: str) -> str | None:
    """tns1:VideoSource/MotionAlarm → "motion"; …/GlobalSceneChange/… → "tamper"; else None."""
    t = (topic or "").lower()
    if any(k in t for k in TAMPER):
        return "tamper"
    if any(k in t for k in MOTION):
        return "motion"
    return None


def _items(message) -> dict[str, str]:
    """The Data SimpleItems of a tt:Message, whether zeep made objects or left XML."""
    out: dict[str, str] = {}
    data = getattr(message, "Data", None)
    for it in (getattr(data, "SimpleItem", None) or []):
        out[str(getattr(it, "Name", "")).lower()] = str(getattr(it, "Value", ""))
    if not out and hasattr(message, "iter"):
        for el in message.iter():
            if str(el.tag).endswith("SimpleItem") and el.getparent() is not None and str(el.getparent().tag).endswith("Data"):
                out[str(el.get("Name", "")).lower()] = str(el.get("Value", ""))
    return out


def state_of(message) -> bool | None:
    items = _items(message)
    for k in STATE_ITEMS:
        if k in items:
            return items[k].strip().lower() in ("true", "1", "on", "active")
    return None


def parse(notification) -> tuple[str | None, bool | None, str]:
    topic = getattr(getattr(notification, "Topic", None), "_value_1", None) or str(getattr(notification, "Topic", ""))
    body = getattr(getattr(notification, "Message", None), "_value_1", None)
    return classify(str(topic)), (state_of(body) if body is not None else None), str(topic)


class CameraEventSink:
    """Writes what a camera says: an event per detection (rule camera:motion / camera:tamper,
    detail.source = camera) and, for motion, a motion span."""

    def __init__(self, engine):
        self.engine = engine

    def change(self, camera_id: str, kind: str, on: bool, topic: str, at_us: int) -> None:
        ev = events.c
        with self.engine.begin() as conn:
            open_id = conn.execute(select(ev.id).where(ev.camera_id == camera_id, ev.rule == f"camera:{kind}",
                                                        ev.end_us.is_(None)).limit(1)).scalar()
            if on and open_id is None:
                conn.execute(insert(events).values(
                    camera_id=camera_id, rule=f"camera:{kind}", kind=kind, severity="warning" if kind == "tamper" else "info",
                    zone=None, label=None, track_id=None, score=1.0, start_us=at_us, end_us=None, box=None, path=None,
                    heading=None, speed_px_s=None, detail={"source": "camera", "topic": topic}, snapshot=None,
                    worker="onvif", state="new", updated_us=now_us()))
                if kind == "motion":
                    conn.execute(insert(motion_spans).values(camera_id=camera_id, start_us=at_us, end_us=None))
            elif not on and open_id is not None:
                conn.execute(update(events).where(events.c.id == open_id).values(end_us=at_us, updated_us=now_us()))
                if kind == "motion":
                    conn.execute(update(motion_spans).where(motion_spans.c.camera_id == camera_id,
                                                            motion_spans.c.end_us.is_(None)).values(end_us=at_us))


class CameraEvents:
    """The duty holder's PullPoint loop (see the module's docstring)."""

    def __init__(self, engine, timeout_s: float = 8.0):
        self.engine, self.timeout_s = engine, timeout_s
        self.store = OnvifStore(engine)
        self.sink = CameraEventSink(engine)
        self._ticked = 0.0
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        self._ticked = time.monotonic()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="onvif-events", daemon=True)
            self._thread.start()

    def _held(self) -> bool:
        return time.monotonic() - self._ticked < 15.0

    async def _main(self) -> None:
        subs: dict[str, tuple[Client, object]] = {}
        wanted: dict[str, dict] = {}
        read_at = 0.0
        seen_written: dict[str, float] = {}
        try:
            while self._held():
                if time.monotonic() - read_at > 10.0:  # cameras added or removed: within 10 s
                    wanted = {d["camera_id"]: d for d in self.store.all(with_secrets=True) if d.get("events")}
                    read_at = time.monotonic()
                for cid in set(subs) - set(wanted):
                    await self._drop(subs.pop(cid))
                for cid, d in wanted.items():
                    if cid not in subs:
                        try:
                            subs[cid] = await self._subscribe(d)
                            self.store.update(cid, events_since_us=now_us())
                        except Exception as exc:  # noqa: BLE001 — one camera never stops the others
                            log.warning("camera %s: no event subscription: %s", cid, exc)
                            continue
                    try:
                        await self._pull(cid, subs[cid][1], d.get("clock_offset_s") or 0.0)
                        if time.monotonic() - seen_written.get(cid, 0.0) > 10.0:  # the janitor allows 60 s
                            self.store.update(cid, events_seen_us=now_us())
                            seen_written[cid] = time.monotonic()
                    except Exception as exc:  # noqa: BLE001
                        log.warning("camera %s: pulling its events: %s", cid, exc)
                        await self._drop(subs.pop(cid))
                await asyncio.sleep(0.5)
        finally:
            for s in subs.values():
                await self._drop(s)

    async def _subscribe(self, d: dict):
        c = Client(d["xaddr"], d["username"], d["password"], self.timeout_s)
        await c.__aenter__()
        try:
            manager = await asyncio.wait_for(
                c.cam.create_pullpoint_manager(dt.timedelta(seconds=60), lambda: None), self.timeout_s)
        except BaseException:
            await c.__aexit__(None, None, None)
            raise
        return c, manager

    async def _pull(self, camera_id: str, manager, offset_s: float) -> None:
        service = manager.get_service()
        got = await asyncio.wait_for(service.PullMessages({"MessageLimit": 100, "Timeout": dt.timedelta(seconds=1)}),
                                     self.timeout_s)
        for n in getattr(got, "NotificationMessage", None) or []:
            kind, on, topic = parse(n)
            if kind is None or on is None:
                continue
            at = getattr(getattr(getattr(n, "Message", None), "_value_1", None), "UtcTime", None)
            # The camera's time stamp, put right by its known clock offset; else when we heard it.
            at_us = int((at.timestamp() - offset_s) * 1e6) if isinstance(at, dt.datetime) else now_us()
            at_us = min(at_us, now_us())
            self.sink.change(camera_id, kind, on, topic, at_us)

    @staticmethod
    async def _drop(sub) -> None:
        client, manager = sub
        try:
            await asyncio.wait_for(manager.shutdown(), 5)
        except Exception:  # noqa: BLE001
            pass
        await client.__aexit__(None, None, None)
