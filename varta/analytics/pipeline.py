"""One camera's analysis, frame by frame: motion gate → detector → tracker → rules → events.

The same class runs in the analytics worker (live cameras) and in ``varta analyze`` (a
file), so what the command prints is what the city's cameras would raise.

The detector is the expensive step (≈15 ms a frame on one core), so it runs only when the
cheap motion gate sees change (the Frigate approach), and while objects are being
tracked, every ``stationary_interval_s`` to keep a car that stopped or a person who stands
still (they make no motion, but loitering and stopped-vehicle rules need them). Motion that
lies only on objects already tracked is re-detected every ``tracked_interval_s``: the
tracker's prediction carries them in between, and new motion elsewhere is detected at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from varta.analytics.config import AnalyticsConfig
from varta.analytics.direction import track_motion
from varta.analytics.motion import MotionDetector
from varta.analytics.rules import RuleEngine
from varta.analytics.snapshot import draw_alarm, encode_jpeg
from varta.analytics.tamper import TamperDetector
from varta.analytics.trackrecords import TrackAccumulator, TrackRecord
from varta.analytics.tracker import Tracker
from varta.analytics.types import FrameInfo, Occurrence, Track

MOTION_HANGOVER_S = 2.0  # motion that pauses this briefly is one span
REGION_MARGIN_PX = 24  # the detector's region: motion and tracks grown by this at least…
REGION_GROW = 0.15  # …or this share of the region's size each side
REGION_MAX_SHARE = 0.6  # a region larger than this share of the picture: look at the whole
TAMPER_EVERY_S = 0.5
UPDATE_EVERY_S = 2.0  # how often an ongoing event's row is refreshed


def _explained(motion_boxes, track_boxes, grow: float = 0.25) -> bool:
    """Every moving region overlaps some tracked object's box (grown by ``grow`` of its
    size each side, for the motion trail a moving object leaves)."""
    grown = []
    for x1, y1, x2, y2 in track_boxes:
        dx, dy = (x2 - x1) * grow, (y2 - y1) * grow
        grown.append((x1 - dx, y1 - dy, x2 + dx, y2 + dy))
    return all(any(m[0] < g[2] and g[0] < m[2] and m[1] < g[3] and g[1] < m[3] for g in grown)
               for m in motion_boxes)


@dataclass
class EventChange:
    """What the owner of the pipeline must store: an event opened, refreshed or closed."""

    action: str  # open | update | close
    key: str
    occurrence: Occurrence
    severity: str
    wall_us: int  # when it happened (start for open, end for close)
    width: int
    height: int
    path: list[tuple[float, float, float]] = field(default_factory=list)  # (t, x, y) pixels
    motion: dict | None = None  # heading, speed, phrases (varta.analytics.direction)
    snapshot: bytes | None = None  # JPEG, with open

    def normalised_box(self) -> list[float] | None:
        b = self.occurrence.box
        if b is None:
            return None
        return [round(b[0] / self.width, 4), round(b[1] / self.height, 4),
                round(b[2] / self.width, 4), round(b[3] / self.height, 4)]

    def normalised_path(self) -> list[list[float]]:
        if not self.path:
            return []
        t0 = self.path[0][0]
        return [[round(t - t0, 2), round(x / self.width, 4), round(y / self.height, 4)] for t, x, y in self.path]


@dataclass
class Step:
    """The outcome of one analysed frame."""

    changes: list[EventChange]
    motion: bool
    detected: bool
    motion_change: str | None = None  # "start" | "end": for the motion recording mode
    motion_change_us: int | None = None
    tracks: list[Track] = field(default_factory=list)


@dataclass
class PipelineStats:
    frames: int = 0
    motion_frames: int = 0
    detections_run: int = 0
    detect_s: float = 0.0
    other_s: float = 0.0
    region_runs: int = 0  # detector runs on a region of the picture, not the whole
    region_share: float = 0.0  # the sum of those regions' shares of the picture


class CameraPipeline:
    def __init__(self, config: AnalyticsConfig, detector=None, tz=None):
        self.config = config
        self.detector = detector if config.detect else None
        self.tz = tz
        self.motion = MotionDetector(masks=config.masks or None, threshold=config.motion_threshold,
                                     min_area=config.motion_min_area)
        self.tamper = TamperDetector() if config.tamper else None
        self.tracker = Tracker()
        self.rules = RuleEngine(config.rules)
        self.geometry = {r.name: r.to_json() for r in self.rules.rules}  # normalised names and defaults
        self.stats = PipelineStats()
        self._open: dict[str, tuple[str, float]] = {}  # key -> (severity, last update t)
        self._open_tracks: dict[str, int] = {}  # key -> the track an open event follows
        self._last_detect_t = float("-inf")
        self._last_full_t = float("-inf")
        self._tamper_t: float | None = None
        self._tamper_state: frozenset[str] = frozenset()
        self._motion_on = False
        self._last_motion_t = float("-inf")
        self._last_motion_us = 0
        self._size = (0, 0)  # the last picture's, for events closed without one
        self.always_detect = False  # the naive baseline: detect on every frame (benchmarks)
        # Search across tracks (trackrecords.py): a record per confirmed track, when it ends.
        self.view_direction: float | None = None  # the camera's, for compass headings
        self.keep_thumbnails = True
        self._acc: dict[int, TrackAccumulator] = {}
        self._records: list[TrackRecord] = []

    @property
    def motion_ongoing(self) -> bool:
        return self._motion_on

    # --- frames -----------------------------------------------------------------------
    def process(self, bgr: np.ndarray, t: float, wall_us: int) -> Step:
        started = time.perf_counter()
        self.stats.frames += 1
        h, w = bgr.shape[:2]
        motion = self.motion.update(bgr)
        tamper = self._tamper(bgr, t)
        if motion.any:
            self.stats.motion_frames += 1
        detected = False
        detect_s = 0.0
        if self.detector is not None and not tamper & {"covered", "blinded"} and self._should_detect(motion, t):
            region = self._region(motion, w, h, t)
            d0 = time.perf_counter()
            dets = self.detector.detect(bgr, region=region, score=self.config.score)
            detect_s = time.perf_counter() - d0
            self.stats.detections_run += 1
            self.stats.detect_s += detect_s
            if region is None:
                self._last_full_t = t
            else:
                self.stats.region_runs += 1
                self.stats.region_share += (region[2] - region[0]) * (region[3] - region[1]) / (w * h)
            self._last_detect_t = t
            self.tracker.update(dets, t)
            detected = True
            for tr in self.tracker.tracks():
                if tr.observed(t):
                    acc = self._acc.get(tr.id)
                    if acc is None:
                        acc = self._acc[tr.id] = TrackAccumulator(tr.id, tr.label, t, wall_us)
                    acc.observe(t, wall_us, tr.seen_box, tr.seen_score, bgr)
        tracks = self.tracker.confirmed()
        info = FrameInfo(t=t, width=w, height=h, local=self._local(wall_us), motion=motion, tamper=tamper)
        changes = self._changes(info, tracks, bgr, wall_us)
        step = Step(changes, motion.any, detected, tracks=tracks)
        self._motion_span(step, motion.any, t, wall_us)
        self.stats.other_s += time.perf_counter() - started - detect_s
        return step

    def steered(self) -> None:
        """A PTZ command moved the camera (varta/onvif): its tampering check learns the new view."""
        if self.tamper is not None:
            self.tamper.steered()

    def _tamper(self, bgr: np.ndarray, t: float) -> frozenset[str]:
        """Tampering is judged twice a second, not on every analysed frame: its states must
        hold 3 s anyway, and the checks were a tenth of a camera's analysis (RESULTS §12)."""
        if self.tamper is None:
            return frozenset()
        if self._tamper_t is None or t - self._tamper_t >= TAMPER_EVERY_S or t < self._tamper_t:
            self._tamper_t, self._tamper_state = t, self.tamper.update(bgr, t)
        return self._tamper_state

    def _should_detect(self, motion, t: float) -> bool:
        """Detect while the gate learns its background and on new motion at once; motion that only tracked objects explain (it lies
        on their boxes) needs the detector only every ``tracked_interval_s``, the tracker
        predicts in between; with no motion, every ``stationary_interval_s`` while
        anything is tracked."""
        if self.always_detect or self.motion.warming:
            return True  # the gate cannot tell yet (its first frames after a (re)connection)
        since = t - self._last_detect_t
        tracks = self.tracker.tracks()
        if motion.any:
            if self.config.tracked_interval_s <= 0 or not tracks:
                return True
            if not _explained(motion.boxes, [tr.box for tr in tracks]):
                return True
            return since >= self.config.tracked_interval_s
        return bool(tracks) and since >= self.config.stationary_interval_s

    def _region(self, motion, w: int, h: int, t: float) -> tuple[int, int, int, int] | None:
        """Where to look (None: the whole picture). The moving regions and every live track's
        box, grown by a margin so an object cut by a motion box's edge is seen whole; the
        whole picture while the gate learns, without motion, every
        ``stationary_interval_s`` (a newcomer who stands still is found within that), and
        when the region would cover most of the picture anyway. A track outside the region
        is not looked for: it keeps its prediction until the next whole-picture look (within
        ``stationary_interval_s``, well inside the tracker's ``max_age_s``)."""
        if self.config.detect_region != "motion" or self.always_detect or not motion.any or self.motion.warming:
            return None
        if t - self._last_full_t >= self.config.stationary_interval_s:
            return None
        boxes = list(motion.boxes) + [tr.box for tr in self.tracker.tracks()]
        x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x2, y2 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        mx = max(REGION_MARGIN_PX, REGION_GROW * (x2 - x1))
        my = max(REGION_MARGIN_PX, REGION_GROW * (y2 - y1))
        x1, y1 = max(0, int(x1 - mx)), max(0, int(y1 - my))
        x2, y2 = min(w, int(x2 + mx + 1)), min(h, int(y2 + my + 1))
        if x2 <= x1 or y2 <= y1 or (x2 - x1) * (y2 - y1) > REGION_MAX_SHARE * w * h:
            return None
        return x1, y1, x2, y2

    def video_lost(self, t: float, wall_us: int) -> Step:
        """No picture from the camera: the worker calls this; "tamper" rules see video_lost."""
        info = FrameInfo(t=t, width=self._size[0], height=self._size[1], local=self._local(wall_us),
                         tamper=frozenset({"video_lost"}))
        return Step(self._changes(info, [], None, wall_us), False, False)

    def take_records(self) -> list[TrackRecord]:
        """The track records finished since the last call (for the worker to store)."""
        out, self._records = self._records, []
        return out

    def _record(self, tr: Track) -> None:
        acc = self._acc.pop(tr.id, None)
        if acc is None or not tr.confirmed:
            return
        rec = acc.finish(*self._size, self.view_direction, self.keep_thumbnails)
        if rec is not None:
            self._records.append(rec)

    def finish(self, t: float, wall_us: int) -> list[EventChange]:
        """Close everything still open (end of a file, camera removed, worker stopping)."""
        out = []
        live = {tr.id: tr for tr in self.tracker.tracks()}
        for tr in live.values():
            self._record(tr)
        for key in list(self._open):
            severity, _ = self._open.pop(key)
            occ = Occurrence(key=key, rule=key.split("\x1f")[0], kind="", t=t)
            end_us = wall_us
            track = live.get(self._open_tracks.pop(key, -1))
            if track is not None:  # its object was last seen then, not when the file ended
                end_us = wall_us - int(max(0.0, t - track.last_t) * 1_000_000)
            out.append(EventChange("close", key, occ, severity, end_us, *self._size))
        return out

    # --- internals --------------------------------------------------------------------
    def _local(self, wall_us: int):
        if self.tz is None:
            return None
        from varta.clock import to_datetime

        return to_datetime(wall_us, self.tz)

    def _changes(self, info: FrameInfo, tracks: list[Track], bgr, wall_us: int) -> list[EventChange]:
        if info.width:
            self._size = (info.width, info.height)
        opened, ongoing, closed = self.rules.step(info, tracks)
        # Tracks the tracker just dropped still close their events, with their full path.
        gone = {tr.id: tr for tr in self.tracker.ended()}
        for tr in gone.values():
            self._record(tr)
        by_id = {**gone, **{tr.id: tr for tr in self.tracker.tracks()}}
        out: list[EventChange] = []
        for occ in opened:
            key = self._key(occ)
            severity = self._severity(occ)
            start_us = wall_us
            since = occ.detail.get("since")
            if isinstance(since, (int, float)) and since <= info.t and not occ.instant:
                # The event began when the object arrived (or the state began), not when
                # the rule had seen it long enough to be sure.
                start_us = wall_us - int((info.t - since) * 1_000_000)
            change = self._change("open", key, occ, severity, start_us, info, by_id)
            if bgr is not None:
                change.snapshot = self._snapshot(bgr, change)
            out.append(change)
            if occ.instant:
                out.append(self._change("close", key, occ, severity, wall_us, info, by_id))
            else:
                self._open[key] = (severity, info.t)
                if occ.track_id is not None:
                    self._open_tracks[key] = occ.track_id
        for occ in ongoing:
            key = self._key(occ)
            severity, last = self._open.get(key, (self._severity(occ), info.t))
            if info.t - last >= UPDATE_EVERY_S:
                self._open[key] = (severity, info.t)
                out.append(self._change("update", key, occ, severity, wall_us, info, by_id))
        for occ in closed:
            key = self._key(occ)
            severity, _ = self._open.pop(key, (self._severity(occ), info.t))
            self._open_tracks.pop(key, None)
            end_us = wall_us
            track = by_id.get(occ.track_id) if occ.track_id is not None else None
            if track is not None:
                # The object left when it was last seen, not when the tracker gave up on it
                # (an unmatched track's predicted box drifts on for up to max_age_s).
                end_us = wall_us - int(max(0.0, info.t - track.last_t) * 1_000_000)
            out.append(self._change("close", key, occ, severity, end_us, info, by_id))
        return out

    @staticmethod
    def _key(occ: Occurrence) -> str:
        return f"{occ.rule}\x1f{occ.key}"

    def _severity(self, occ: Occurrence) -> str:
        return occ.detail.get("severity") or self.geometry.get(occ.rule, {}).get("severity", "alarm")

    def _change(self, action, key, occ, severity, wall_us, info: FrameInfo, by_id) -> EventChange:
        track = by_id.get(occ.track_id) if occ.track_id is not None else None
        path = list(track.path) if track else []
        motion = occ.detail.get("direction") if isinstance(occ.detail, dict) else None
        if motion is None and path:
            motion = track_motion(path)
        return EventChange(action, key, occ, severity, wall_us, info.width, info.height, path=path, motion=motion)

    def _snapshot(self, bgr: np.ndarray, change: EventChange) -> bytes:
        occ = change.occurrence
        rule = self.geometry.get(occ.rule, {})
        line = [rule["a"], rule["b"]] if rule.get("type") == "line" else None
        label = f"{occ.label} {occ.score:.2f}" if occ.label else occ.rule
        img = draw_alarm(bgr, occ.box, label, change.severity, change.path,
                         (change.motion or {}).get("heading"), rule.get("polygon"), line)
        return encode_jpeg(img)

    def _motion_span(self, step: Step, moving: bool, t: float, wall_us: int) -> None:
        if moving:
            self._last_motion_t, self._last_motion_us = t, wall_us
            if not self._motion_on:
                self._motion_on = True
                step.motion_change, step.motion_change_us = "start", wall_us
        elif self._motion_on and t - self._last_motion_t > MOTION_HANGOVER_S:
            self._motion_on = False
            step.motion_change, step.motion_change_us = "end", self._last_motion_us
