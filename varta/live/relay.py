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

In a cluster each camera stream is read once: a relay sits where the stream is already
read. The main stream of a camera this node records comes from the recording itself
(:class:`TeeRelay`, no second camera connection); a sub-stream is read by one relay on the
node that records the camera (:class:`LiveRelay`); every other node forwards its viewers to
that relay over one connection per camera (:class:`RemoteRelay`). See varta/live/hub.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
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


class Relay:
    """Viewers and the fragments they share; subclasses bring the fragments in."""

    source = "camera"

    def __init__(self, camera_id: str, linger_s: float = 10.0):
        self.camera_id = camera_id
        self.linger_s = linger_s
        self._lock = threading.Lock()
        self._viewers: list[Viewer] = []
        self._init: bytes | None = None
        self._init_msg: dict | None = None
        self._gop: list[bytes] = []  # fragments since the last keyframe
        self._state = {"type": "state", "state": "connecting", "detail": ""}
        self._stop = threading.Event()
        self._empty_since: float | None = time.monotonic()
        self.fragments = 0
        self._thread = threading.Thread(target=self._run_guarded, name=f"live-{camera_id}", daemon=True)

    def _begin(self) -> "Relay":
        self._thread.start()
        return self

    # --- viewers ------------------------------------------------------------------------
    def subscribe(self, loop: asyncio.AbstractEventLoop) -> Viewer:
        v = Viewer(loop, asyncio.Queue())
        with self._lock:
            self._viewers.append(v)
            self._empty_since = None
            v.queue.put_nowait(self._state)
            if self._init is not None:
                v.queue.put_nowait(self._init_msg or self._init_message())
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

    def latest_gop(self) -> tuple[bytes | None, list[bytes]]:
        """The init segment and the fragments since the last keyframe (for a snapshot)."""
        with self._lock:
            return self._init, list(self._gop)

    # --- fan-out ------------------------------------------------------------------------
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

    def _on_init(self, init: bytes, message: dict | None = None) -> None:
        self._init = init
        self._init_msg = message or self._init_message()
        with self._lock:
            self._gop = []
        self._broadcast(self._init_msg, keyframe=True)
        self._broadcast(init, keyframe=True)

    def _on_fragment(self, frag: bytes, key: bool) -> None:
        with self._lock:
            if key:
                self._gop = [frag]
            elif len(self._gop) < MAX_BACKLOG:
                self._gop.append(frag)
        self.fragments += 1
        self._broadcast(frag, keyframe=key)

    def _on_clock(self, message: dict) -> None:
        self._broadcast(message, keyframe=True)

    # --- the source -------------------------------------------------------------------------
    def _run_guarded(self) -> None:
        try:
            self._run()
        finally:
            self._stop.set()
            self._set_state("stopped")

    def _run(self) -> None:  # pragma: no cover - subclasses
        raise NotImplementedError

    def _linger_over(self) -> bool:
        return self.idle_for() >= self.linger_s


class _Fragmenter:
    """Remux packets (copied, never decoded) into fMP4 fragments of ~100 ms for a relay."""

    def __init__(self, relay: Relay, template):
        self.relay = relay
        self.pending: dict = {"moof": None}
        self.muxed: deque = deque()  # (keyframe, media time, arrival wall ms) of packets not yet in a fragment
        self.out = av.open(_BoxSplitter(self._on_box), "w", format="mp4",
                           options={"movflags": LIVE_MOVFLAGS, "frag_duration": str(FRAGMENT_US)})
        self.stream = self.out.add_stream_from_template(template)
        self.time_base = template.time_base
        self.first = None

    def _on_box(self, kind: str, box: bytes) -> None:
        relay = self.relay
        if kind == "ftyp":
            self._ftyp = box
        elif kind == "moov":
            relay._on_init(getattr(self, "_ftyp", b"") + box)
        elif kind == "moof":
            self.pending["moof"] = box
        elif kind == "mdat" and self.pending["moof"] is not None:
            frag = self.pending["moof"] + box
            # Which packets this fragment holds: its trun's sample count, in mux order.
            n = max(1, _sample_count(self.pending["moof"]))
            self.pending["moof"] = None
            first_pkt = self.muxed[0] if self.muxed else (False, 0.0, 0.0)
            for _ in range(min(n, len(self.muxed))):
                self.muxed.popleft()
            key, t, wall = first_pkt
            if key:
                # Once a GOP: when this frame arrived from the camera, so a viewer can
                # show (and a benchmark measure) how far behind real time it plays.
                relay._on_clock({"type": "clock", "media_time": t, "wall_ms": wall})
            relay._on_fragment(frag, key)

    def mux(self, packet, wall_ms: float) -> None:
        if packet.dts is None or packet.pts is None:
            return
        if self.first is None:
            if not packet.is_keyframe:
                return
            self.first = packet.dts
        packet.pts -= self.first
        packet.dts -= self.first
        self.muxed.append((bool(packet.is_keyframe), float(packet.pts * self.time_base), wall_ms))
        packet.stream = self.stream
        self.out.mux(packet)

    def close(self) -> None:
        try:
            self.out.close()
        except Exception:  # noqa: BLE001
            pass


class LiveRelay(Relay):
    """A relay that opens its own connection to the camera (a sub-stream, or a camera this
    node does not record)."""

    def __init__(self, camera_id: str, url: str, timeout_s: float, linger_s: float = 10.0,
                 reconnect_s: float = 2.0):
        super().__init__(camera_id, linger_s)
        self.url, self.timeout_s, self.reconnect_s = url, timeout_s, reconnect_s
        self._begin()

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

    def _stream_once(self) -> None:
        source, options = libav_input(self.url, self.timeout_s)
        with av.open(source, "r", options=options) as inp:
            video = inp.streams.video[0]
            self._init = None
            muxer = _Fragmenter(self, video)
            try:
                self._set_state("live")
                for packet in inp.demux(video):
                    if self._stop.is_set() or self._linger_over():
                        break
                    muxer.mux(packet, time.time() * 1000)
                else:
                    raise RuntimeError("the camera ended the stream")
            finally:
                muxer.close()
        if self._linger_over():
            self._stop.set()


class TeeRelay(Relay):
    """The main stream of a camera this node records, taken from the recording itself: no
    second connection to the camera. The recorder's ingest hands each packet (a copy) to
    :meth:`feed` while the relay runs; a thread remuxes them for the viewers."""

    source = "recording"

    def __init__(self, camera_id: str, linger_s: float = 10.0):
        super().__init__(camera_id, linger_s)
        self._queue: queue.Queue = queue.Queue(maxsize=500)
        self._fed = time.monotonic()
        self._begin()

    def silent_for(self) -> float:
        """Seconds since the recording last handed a packet over."""
        return time.monotonic() - self._fed

    def feed(self, packet, stream) -> None:
        """Called by the recorder's ingest thread for every packet, before it is written."""
        if self._stop.is_set():
            return
        self._fed = time.monotonic()
        copy = av.Packet(bytes(packet))
        copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
        copy.duration = packet.duration
        copy.is_keyframe = packet.is_keyframe
        try:
            self._queue.put_nowait((copy, stream, time.time() * 1000))
        except queue.Full:  # the relay is behind: drop, the viewers skip to a keyframe
            pass

    def _run(self) -> None:
        muxer = None
        template = None
        self._set_state("connecting", "waiting for the recording's next keyframe")
        try:
            while not self._stop.is_set() and not self._linger_over():
                try:
                    packet, stream, wall = self._queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                if stream is not template:  # a new run of the recording: new stream parameters
                    if muxer is not None:
                        muxer.close()
                    template = stream
                    self._init = None
                    muxer = _Fragmenter(self, stream)
                    self._set_state("live")
                muxer.mux(packet, wall)
        finally:
            if muxer is not None:
                muxer.close()


class RemoteRelay(Relay):
    """A camera recorded by another node: one connection to that node's relay, shared by
    every viewer on this node (varta/node/internal.py serves the other end)."""

    source = "node"

    def __init__(self, camera_id: str, stream: str, locate, open_stream, linger_s: float = 10.0,
                 reconnect_s: float = 1.0):
        """``locate()`` → the node recording the camera now (None: nobody); ``open_stream(node)``
        → a context manager giving an HTTP response whose body is the framed relay stream."""
        super().__init__(camera_id, linger_s)
        self.stream_name, self.locate, self.open_stream = stream, locate, open_stream
        self.reconnect_s = reconnect_s
        self.node: str | None = None
        self._begin()

    def _run(self) -> None:
        while not self._stop.is_set() and not self._linger_over():
            try:
                self.node = self.locate()
                if self.node is None:
                    raise RuntimeError("no node records this camera now")
                with self.open_stream(self.node) as resp:
                    if resp.status_code != 200:
                        resp.read()
                        raise RuntimeError(f"the recording node answered {resp.status_code}")
                    for kind, payload in read_frames(resp.iter_bytes()):
                        if self._stop.is_set() or self._linger_over():
                            return
                        self._relay_frame(kind, payload)
                raise RuntimeError("the recording node ended the stream")
            except Exception as exc:  # noqa: BLE001 - a node problem is a state, not a crash
                self._set_state("reconnecting", str(exc)[:200])
            self._stop.wait(self.reconnect_s)

    def _relay_frame(self, kind: bytes, payload: bytes) -> None:
        if kind == b"B":
            if self._init is None or getattr(self, "_await_init", False):
                self._await_init = False
                self._on_init(payload, self._pending_init_msg)
                self._next_is_key = True  # a stream always restarts on a keyframe
                return
            key = self._next_is_key
            self._next_is_key = False
            self._on_fragment(payload, key)
            return
        msg = json.loads(payload)
        t = msg.get("type")
        if t == "init":
            self._pending_init_msg = {k: v for k, v in msg.items() if k != "viewers"}
            self._await_init = True
        elif t == "clock":
            self._next_is_key = True
            self._on_clock(msg)
        elif t == "state":
            self._set_state(msg.get("state", ""), msg.get("detail", ""))

    _pending_init_msg = None
    _next_is_key = False


# --- the framed stream between nodes ----------------------------------------------------------
def frame(item) -> bytes:
    """One relay message as ``kind (1 byte) + length (4) + payload``: B for media, J for JSON."""
    if isinstance(item, bytes):
        return b"B" + struct.pack(">I", len(item)) + item
    data = json.dumps(item, separators=(",", ":")).encode()
    return b"J" + struct.pack(">I", len(data)) + data


def read_frames(chunks):
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= 5:
            n = struct.unpack(">I", buf[1:5])[0]
            if len(buf) < 5 + n:
                break
            kind, payload = bytes(buf[:1]), bytes(buf[5:5 + n])
            del buf[:5 + n]
            yield kind, payload
