"""A node's live relays, placed so that each camera stream is read once in the whole cluster.

``relay(camera, stream)`` gives the relay viewers on this node subscribe to:

* this node records the camera: the main stream comes from the recording itself
  (:class:`TeeRelay`), the sub-stream from one connection this node opens
  (:class:`LiveRelay`);
* another live node records it: one connection to that node's relay, shared by every viewer
  here (:class:`RemoteRelay`); when the camera moves (failover, a planned move), that
  connection ends and finds the new node;
* nobody records it (a single machine before its first lease, a camera failing everywhere):
  a direct connection from here.

Snapshots come from the same relays (the latest keyframe, decoded once), never from a new
camera connection per request.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from fractions import Fraction

import av

from varta.cluster.leases import RECORD, lease_name
from varta.live.relay import LiveRelay, Relay, RemoteRelay, TeeRelay

log = logging.getLogger(__name__)


class NotHere(RuntimeError):
    """This node does not record the camera (a node asked it for its relay)."""


class SnapshotError(RuntimeError):
    pass


class LiveHub:
    def __init__(self, timeout_s: float, linger_s: float = 10.0, *, node_id: str | None = None, leases=None,
                 registry=None, peers=None, recording_now=None):
        """``recording_now(camera_id)``: this node's recording of the camera is running and can
        feed a relay (the PyAV backend); None: it never can."""
        self.timeout_s, self.linger_s = timeout_s, linger_s
        self.node_id, self.leases, self.registry, self.peers = node_id, leases, registry, peers
        self.recording_now = recording_now or (lambda camera_id: False)
        self._relays: dict[tuple[str, str], Relay] = {}
        self._lock = threading.Lock()
        self._alive: tuple[float, set[str]] = (0.0, set())
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watch_loop, name="live-hub", daemon=True)
        self._watch.start()

    # --- where a camera is recorded -------------------------------------------------------------
    def holder(self, camera_id: str) -> str | None:
        """The live node recording the camera now, if any."""
        if self.leases is None:
            return None
        lease = self.leases.get(lease_name(RECORD, camera_id))
        if lease is None or lease.holder is None:
            return None
        t, alive = self._alive
        if time.monotonic() - t > 2.0 and self.registry is not None:
            alive = {n.id for n in self.registry.list() if n.alive}
            self._alive = (time.monotonic(), alive)
        return lease.holder if lease.holder in alive or lease.holder == self.node_id else None

    # --- relays ------------------------------------------------------------------------------------
    def relay(self, camera, stream: str, local_only: bool = False) -> Relay:
        """The relay of ``camera``'s ``stream`` ("sub" or "main") on this node."""
        stream = "sub" if stream == "sub" and camera.sub_url else "main"
        holder = self.holder(camera.id)
        here = holder is None or holder == self.node_id or self.peers is None
        if local_only and not here:
            raise NotHere(f"camera {camera.id} is recorded by another node now")
        key = (camera.id, stream)
        with self._lock:
            r = self._relays.get(key)
            if r is not None and r.running and (isinstance(r, RemoteRelay) != here):
                return r
            if r is not None and r.running:
                r.stop()  # the camera moved here, or away: the relay moves with it
            if not here:
                cam_id = camera.id
                r = RemoteRelay(cam_id, stream, locate=lambda: self._remote_holder(cam_id),
                                open_stream=lambda node: self.peers.stream(
                                    node, f"/internal/live/{cam_id}?stream={stream}", timeout=self.timeout_s),
                                linger_s=self.linger_s)
            elif stream == "main" and holder == self.node_id and self.recording_now(camera.id):
                r = TeeRelay(camera.id, self.linger_s)
            else:
                r = LiveRelay(camera.id, camera.sub_url if stream == "sub" else camera.main_url, self.timeout_s,
                              self.linger_s)
            self._relays[key] = r
            return r

    def _remote_holder(self, camera_id: str) -> str | None:
        holder = self.holder(camera_id)
        return holder if holder != self.node_id else None

    def tap(self, camera_id: str):
        """The recording's hook for the camera's main-stream relay (None while nobody watches)."""
        r = self._relays.get((camera_id, "main"))
        return r.feed if isinstance(r, TeeRelay) and r.running else None

    def viewers(self, camera_id: str) -> int:
        with self._lock:
            return sum(r.viewer_count for (cid, _), r in self._relays.items() if cid == camera_id and r.running)

    def sources(self) -> dict[str, int]:
        """How many relays of each kind run here (camera, recording, node)."""
        with self._lock:
            out: dict[str, int] = {}
            for r in self._relays.values():
                if r.running:
                    out[r.source] = out.get(r.source, 0) + 1
            return out

    def stop_all(self) -> None:
        self._stop.set()
        with self._lock:
            for r in self._relays.values():
                r.stop()

    def _watch_loop(self) -> None:
        """A camera that moved to another node takes its relays along: the ones here stop
        (their remote viewers reconnect to the new node), so the camera keeps one session."""
        while not self._stop.wait(2.0):
            with self._lock:
                tees = [r for r in self._relays.values() if isinstance(r, TeeRelay) and r.running]
            for r in tees:
                if r.silent_for() > max(5.0, self.timeout_s):
                    # The recording stopped feeding it (a schedule, a camera fault): its viewers
                    # reconnect and get a relay of their own connection.
                    log.info("live %s: the recording is not running; its relay stops", r.camera_id)
                    r.stop()
            if self.leases is None or self.peers is None:
                continue
            with self._lock:
                local = [(k, r) for k, r in self._relays.items() if r.running and not isinstance(r, RemoteRelay)]
            for (cam_id, _), r in local:
                try:
                    holder = self.holder(cam_id)
                except Exception:  # noqa: BLE001 - the database may be away for a moment
                    continue
                if holder is not None and holder != self.node_id:
                    log.info("live %s: recorded by another node now; this relay stops", cam_id)
                    r.stop()

    # --- snapshots ---------------------------------------------------------------------------------
    async def snapshot(self, camera, stream: str = "sub", width: int | None = None) -> bytes:
        """What the camera sees now, as JPEG, from the relay (started for it if needed)."""
        holder = self.holder(camera.id)
        if holder is not None and holder != self.node_id and self.peers is not None:
            q = f"?stream={stream}" + (f"&width={width}" if width else "")
            resp = await asyncio.to_thread(self.peers.get, holder, f"/internal/snapshot/{camera.id}{q}",
                                           None, self.timeout_s + 5)
            if resp.status_code != 200:
                raise SnapshotError(f"no picture from the recording node: {resp.text[:200]}")
            return resp.content
        relay = self.relay(camera, stream)
        deadline = time.monotonic() + self.timeout_s + 3
        while time.monotonic() < deadline:
            init, gop = relay.latest_gop()
            if init and gop:
                return await asyncio.to_thread(jpeg_from_gop, init, gop, width)
            if not relay.running:
                relay = self.relay(camera, stream)
            await asyncio.sleep(0.1)
        state = relay._state.get("detail") or relay._state.get("state")
        raise SnapshotError(f"the camera sent no picture within {self.timeout_s + 3:.0f} s ({state})")


def jpeg_from_gop(init: bytes, fragments: list[bytes], width: int | None = None) -> bytes:
    """Decode the latest GOP (init + fragments since the keyframe) and encode its last frame."""
    last = None
    try:
        with av.open(io.BytesIO(init + b"".join(fragments)), "r", format="mp4") as c:
            for frame in c.decode(video=0):
                last = frame
    except av.FFmpegError as exc:
        raise SnapshotError(f"the picture could not be decoded: {exc}") from None
    if last is None:
        raise SnapshotError("no picture in the stream yet")
    w, h = last.width, last.height
    if width and width != w:
        h = max(2, round(h * width / w / 2) * 2)
        w = width
    frame = last.reformat(width=w, height=h, format="yuvj420p")
    enc = av.CodecContext.create("mjpeg", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuvj420p"
    enc.time_base = Fraction(1, 25)
    enc.options = {"qmin": "2", "qmax": "4"}
    packets = enc.encode(frame) + enc.encode(None)
    return b"".join(bytes(p) for p in packets)
