"""Live video without transcoding: one camera connection, many viewers (R1, R11).

A ``LiveRelay`` reads one camera stream (the sub-stream for grids, the main stream when a
tile is enlarged) with libav and remuxes it — packets are copied, never decoded — into
fragmented MP4 in fragments of ~100 ms: an *init segment* (ftyp+moov) and then
moof+mdat pairs that a browser's Media Source Extensions append as they arrive. Each
fragment is built once and handed to every viewer, so a viewer costs a WebSocket send,
not a remux (bench/live_bench.py).

A viewer that joins gets the init segment and the fragments since the last keyframe, so
its picture starts at once; a viewer that falls behind (slow network) is skipped to the
next keyframe instead of growing a queue without bound. With no viewers left the relay
closes the camera connection after ``linger_s``.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import av

from varta.cameras.model import redact_text
from varta.recording.ffmpeg import libav_input

log = logging.getLogger(__name__)

# empty_moov: the init segment comes first, before any frame; frag_keyframe + frag_duration:
# a fragment starts at every keyframe and leaves after at most FRAGMENT_US of video
# (100 ms: 2-3 frames); default_base_moof: fragments are self-contained for MSE. One frame
# per fragment saves ~60 ms of delay (0.08 s instead of 0.15 s end to end) for 2.5 times
# the WebSocket messages per viewer; the target is 1 s, so fewer sends win.
LIVE_MOVFLAGS = "empty_moov+default_base_moof+frag_keyframe"
FRAGMENT_US = 100_000
MAX_BACKLOG = 250  # fragments (~10 s at 25 fps) a viewer may lag before it is skipped ahead


class _BoxSplitter:
    """A write-only file for libav that cuts the MP4 byte stream into top-level boxes."""

    def __init__(self, on_box):
        self.buf = bytearray()
        self.on_box = on_box

    def write(self, data) -> int:
        self.buf += data
        while len(self.buf) >= 8:
            size, kind = struct.unpack(">I4s", self.buf[:8])
            if size < 8 or len(self.buf) < size:
                break
            box = bytes(self.buf[:size])
            del self.buf[:size]
            self.on_box(kind.decode("latin-1"), box)
        return len(data)

    def tell(self) -> int:  # libav asks; a live stream has no position to give
        return 0

    def seek(self, *_):
        raise OSError("not seekable")


def _sample_count(moof: bytes) -> int:
    """Frames in a fragment: the sample_count of its (first) trun box."""
    i = moof.find(b"trun")
    return struct.unpack(">I", moof[i + 8:i + 12])[0] if i >= 0 else 1


def mime_codec(init: bytes) -> str:
    """The RFC 6381 codec string MSE needs, read from the init segment's avcC/hvcC box."""
    i = init.find(b"avcC")
    if i >= 0:
        profile, compat, level = init[i + 5], init[i + 6], init[i + 7]
        return f"avc1.{profile:02x}{compat:02x}{level:02x}"
    if init.find(b"hvcC") >= 0:
        return "hvc1.1.6.L93.B0"  # HEVC: the browser decides whether it can play it
    return "avc1.42e01e"


def _put_all(queues, item) -> None:
    for q in queues:
        q.put_nowait(item)


@dataclass
class Viewer:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue
    skipping: bool = False  # dropped fragments: wait for the next keyframe
    joined: float = field(default_factory=time.monotonic)


class LiveRelay:
    def __init__(self, camera_id: str, url: str, timeout_s: float, linger_s: float = 10.0,
                 reconnect_s: float = 2.0):
        self.camera_id, self.url, self.timeout_s = camera_id, url, timeout_s
        self.linger_s, self.reconnect_s = linger_s, reconnect_s
        self._lock = threading.Lock()
        self._viewers: list[Viewer] = []
        self._init: bytes | None = None
        self._gop: list[bytes] = []  # fragments since the last keyframe
        self._state = {"type": "state", "state": "connecting", "detail": ""}
        self._stop = threading.Event()
        self._empty_since: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"live-{camera_id}", daemon=True)
        self.fragments = 0
        self._thread.start()

    # --- viewers ------------------------------------------------------------------------
    def subscribe(self, loop: asyncio.AbstractEventLoop) -> Viewer:
        v = Viewer(loop, asyncio.Queue())
        with self._lock:
            self._viewers.append(v)
            self._empty_since = None
            v.queue.put_nowait(self._state)
            if self._init is not None:
                v.queue.put_nowait(self._init_message())
                v.queue.put_nowait(self._init)
                for frag in self._gop:
                    v.queue.put_nowait(frag)
        return v

    def unsubscribe(self, v: Viewer) -> None:
        with self._lock:
            if v in self._viewers:
                self._viewers.remove(v)
            if not self._viewers:
                self._empty_since = time.monotonic()

    @property
    def viewer_count(self) -> int:
        with self._lock:
            return len(self._viewers)

    def idle_for(self) -> float:
        with self._lock:
            return 0.0 if self._empty_since is None else time.monotonic() - self._empty_since

    def stop(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        """Still serving (or able to take viewers): not stopped, thread alive."""
        return self._thread.is_alive() and not self._stop.is_set()

    # --- the camera side ----------------------------------------------------------------
    def _init_message(self) -> dict:
        return {"type": "init", "codec": mime_codec(self._init), "mime": f'video/mp4; codecs="{mime_codec(self._init)}"'}

    def _broadcast(self, item, keyframe: bool = False) -> None:
        with self._lock:
            viewers = list(self._viewers)
        by_loop: dict = {}
        for v in viewers:
            if v.skipping and not keyframe:
                continue
            if v.queue.qsize() > MAX_BACKLOG:
                v.skipping = True  # too slow: drop until the next keyframe
                continue
            v.skipping = False
            by_loop.setdefault(v.loop, []).append(v.queue)
        # One wake-up per event loop per fragment, not one per viewer: waking a loop from
        # another thread is a system call, and this runs 25 times a second.
        for loop, queues in by_loop.items():
            try:
                loop.call_soon_threadsafe(_put_all, queues, item)
            except RuntimeError:  # that loop is closed: its viewers are gone
                for v in viewers:
                    if v.loop is loop:
                        self.unsubscribe(v)

    def _set_state(self, state: str, detail: str = "") -> None:
        self._state = {"type": "state", "state": state, "detail": detail}
        self._broadcast(self._state, keyframe=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._stream_once()
            except Exception as exc:  # noqa: BLE001 - a camera problem is a state, not a crash
                detail = redact_text(str(exc), [self.url])
                log.info("live %s: %s", self.camera_id, detail)
                self._set_state("reconnecting", detail)
            if self._linger_over():  # nobody is watching any more: give the camera back
                break
            self._stop.wait(self.reconnect_s)
        self._stop.set()
        self._set_state("stopped")

    def _stream_once(self) -> None:
        source, options = libav_input(self.url, self.timeout_s)
        pending: dict = {"moof": None}
        muxed: deque = deque()  # (keyframe, media time, arrival wall ms) of packets not yet in a fragment

        def on_box(kind: str, box: bytes) -> None:
            if kind in ("ftyp", "moov"):
                self._init = (self._init or b"") + box if kind == "moov" else box
                if kind == "moov":
                    with self._lock:
                        self._gop = []
                    self._broadcast(self._init_message(), keyframe=True)
                    self._broadcast(self._init, keyframe=True)
            elif kind == "moof":
                pending["moof"] = box
            elif kind == "mdat" and pending["moof"] is not None:
                frag = pending["moof"] + box
                # Which packets this fragment holds: its trun's sample count, in mux order.
                n = max(1, _sample_count(pending["moof"]))
                pending["moof"] = None
                first_pkt = muxed[0] if muxed else (False, 0.0, 0.0)
                for _ in range(min(n, len(muxed))):
                    muxed.popleft()
                key, t, wall = first_pkt
                with self._lock:
                    if key:
                        self._gop = [frag]
                    elif len(self._gop) < MAX_BACKLOG:
                        self._gop.append(frag)
                self.fragments += 1
                if key:
                    # Once a GOP: when this frame arrived from the camera, so a viewer can
                    # show (and a benchmark measure) how far behind real time it plays.
                    self._broadcast({"type": "clock", "media_time": t, "wall_ms": wall}, keyframe=True)
                self._broadcast(frag, keyframe=key)

        with av.open(source, "r", options=options) as inp:
            video = inp.streams.video[0]
            self._init = None
            out = av.open(_BoxSplitter(on_box), "w", format="mp4",
                          options={"movflags": LIVE_MOVFLAGS, "frag_duration": str(FRAGMENT_US)})
            try:
                stream = out.add_stream_from_template(video)
                first = None
                self._set_state("live")
                for packet in inp.demux(video):
                    if self._stop.is_set() or self._linger_over():
                        break
                    if packet.dts is None or packet.pts is None:
                        continue
                    if first is None:
                        if not packet.is_keyframe:
                            continue
                        first = packet.dts
                    wall = time.time() * 1000
                    packet.pts -= first
                    packet.dts -= first
                    muxed.append((bool(packet.is_keyframe), float(packet.pts * video.time_base), wall))
                    packet.stream = stream
                    out.mux(packet)
                else:
                    raise RuntimeError("the camera ended the stream")
            finally:
                try:
                    out.close()
                except Exception:  # noqa: BLE001
                    pass
        if self._linger_over():
            self._stop.set()

    def _linger_over(self) -> bool:
        return self.idle_for() >= self.linger_s


class LiveHub:
    """The relays of one web process, started on the first viewer and ended after the last."""

    def __init__(self, timeout_s: float, linger_s: float = 10.0):
        self.timeout_s, self.linger_s = timeout_s, linger_s
        self._relays: dict[tuple[str, str], LiveRelay] = {}
        self._lock = threading.Lock()

    def relay(self, camera_id: str, stream: str, url: str) -> LiveRelay:
        key = (camera_id, stream)
        with self._lock:
            r = self._relays.get(key)
            if r is None or not r.running:
                r = LiveRelay(camera_id, url, self.timeout_s, self.linger_s)
                self._relays[key] = r
            return r

    def viewers(self, camera_id: str) -> int:
        with self._lock:
            return sum(r.viewer_count for (cid, _), r in self._relays.items() if cid == camera_id and r.running)

    def stop_all(self) -> None:
        with self._lock:
            for r in self._relays.values():
                r.stop()
