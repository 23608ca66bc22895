"""Redacted copies of footage for third parties (order clause A4.8).

When the mayor decides, exceptionally, that footage goes to a third party (an insurer after
a car crash), the package may carry a *redacted copy*: people's faces (or whole people other
than the subject) and vehicle number plates made unreadable, re-encoded to H.264 next to the
untouched original that stays in the package for a court. ``redact_file`` makes that copy; the
package builder marks it as redacted in the manifest with ``RedactionReport.method``.

How, in two passes over the file (both decode every frame with PyAV):

1. *Find.* The detector (YOLOX) runs every ``detect_every`` frames on people and vehicles;
   the SORT tracker links its boxes into tracks; on vehicles a plate finder looks for
   plate-like patches. Nothing is written yet: the subject's track must be known for its
   whole life (also the frames before the time the subject was pointed at) before any frame
   is blurred.
2. *Blur and encode.* Each track's box on every frame is interpolated between its
   detections (smoother and more exact than a prediction), padded, and held for a short
   while (``hold_s``, at least ``detect_every + 2`` frames) before a track's first and after
   its last detection, so a blur never flickers off a person whom the detector missed for a
   frame or caught late. Regions are blurred in the YUV planes (no colour conversion: what
   is not blurred is only re-encoded) and encoded with libx264 (yuv420p, CRF 20, preset
   veryfast, +faststart) at the source's size, frame rate and timestamps (shifted so the
   first frame is at 0 s; AVI's decode-order stamps are replaced by frame number / rate).

Limits, said plainly, because a reviewer must watch the copy before it leaves:

* Only what the detector finds is blurred. YOLOX-nano finds most people from about 15 px
  tall (their faces are a few pixels there anyway) and misses some in crowds, behind others,
  lying, or badly lit. ``people="people"`` hides more than ``"faces"`` when in doubt.
* ``"faces"`` blurs the head region (the top 30 % of an upright person's box, widened), not a
  detected face: CCTV faces are too small for a face detector. A person whose box is not
  upright (sitting, bending, lying: wider than 0.8 x its height) is blurred whole.
* Plates: the lower half of every vehicle box is always blurred (front and rear plates sit
  there from a usual elevated camera), plus every plate-like patch found anywhere in the box
  (a bright rectangle holding dark characters, or the reverse; and OpenCV's Russian-plate
  Haar cascade where the OpenCV build ships it: 4.x does, 5 does not). A vehicle seen from
  straight above can show its plate at the box's left or right end: only the patch finder
  covers that, and only where the characters are visible. A vehicle the detector misses
  keeps its plate; so does one whose plate is mostly hidden from the finder and above the band.
  Plate blocks are sized to the characters (8 % of the vehicle's width), not to the region,
  so the vehicles themselves stay recognisable: an insurer needs to see the crash.
* The subject: the person track that best overlaps the given box at the given time stays
  sharp for the whole track. Without appearance features the tracker can swap two people
  who cross closely; then the other person may be left sharp after the crossing (and the
  subject blurred). Give several subject entries (times) if the subject is lost and found
  again: each picks its own track.
* Two people walking as one (their boxes merged into one detection) show as one box; if the
  subject's track takes that box, the other person is left sharp for those frames unless
  their own track still covers them (interpolated or held).
* Sound is not copied: voices are personal data too, and the order asks for pictures.
"""

from __future__ import annotations

import math
import os
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from varta.analytics.tracker import Tracker, iou

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
Region = tuple[float, float, float, float, int]  # a box to blur and its pixelation block, pixels

PERSON = "person"
VEHICLES = frozenset({"car", "bus", "truck", "motorcycle"})  # bicycles carry no plate
VEHICLE = "vehicle"  # the one label vehicles are tracked under
PEOPLE_MODES = ("faces", "people", "none")
BLURS = ("pixelate", "gaussian")
CRF = 20
PRESET = "veryfast"
HOLD_S = 0.5  # a box stays blurred this long before a track's first / after its last detection
HEAD_SHARE = 0.30  # the head region: the top 30 % of an upright person's box
UPRIGHT = 0.8  # a person box wider than 0.8 x its height is not upright: blur it whole
PLATE_BAND = 0.5  # plates: blur the lower half of every vehicle box
MIN_BLOCK = 8  # the smallest pixelation block, pixels
SUBJECT_MIN_IOU = 0.1
MIN_TEXT_RUNS = 7  # a plate patch: at least this many dark runs across its middle (characters)
PROGRESS_SCAN = 0.75  # share of the work in the first pass (the detector dominates)


class RedactionError(RuntimeError):
    """The copy could not be made; the message says why. No partial file is left behind."""


@dataclass
class RedactionOptions:
    """What to hide. ``subject`` entries are ``{"t": seconds into the file, "box": [x1, y1,
    x2, y2] normalised 0..1}``; the person track that best overlaps the box at that time is
    left unblurred for its whole life."""

    people: str = "faces"  # "faces" (head region of every person) | "people" (whole boxes) | "none"
    plates: bool = True
    subject: Sequence[dict] = ()
    detect_every: int = 1  # run the detector every N frames; boxes are interpolated in between
    blur: str = "pixelate"  # or "gaussian"; both sized so a face or plate cannot be read back
    hold_s: float = HOLD_S

    def validate(self) -> None:
        """Refuse options that would silently redact less than asked."""
        if self.people not in PEOPLE_MODES:
            raise RedactionError(f"people must be one of {', '.join(PEOPLE_MODES)}, not {self.people!r}")
        if self.blur not in BLURS:
            raise RedactionError(f"blur must be one of {', '.join(BLURS)}, not {self.blur!r}")
        if not isinstance(self.detect_every, int) or self.detect_every < 1:
            raise RedactionError(f"detect_every must be a whole number >= 1, not {self.detect_every!r}")
        if not self.hold_s >= 0:
            raise RedactionError(f"hold_s must be >= 0, not {self.hold_s!r}")
        if self.people == "none" and not self.plates:
            raise RedactionError("nothing to redact: people='none' and plates off")
        for s in self.subject:
            _subject_box(s)  # raises on a malformed entry


@dataclass
class RedactionReport:
    frames: int
    blurred_regions: int  # regions blurred, summed over all frames
    people_tracks: int
    subject_tracks: list[int]
    vehicles: int  # vehicle tracks
    seconds: float  # wall time spent
    method: str  # one line for the package manifest
    warnings: list[str] = field(default_factory=list)  # e.g. a subject that was not found

    def to_json(self) -> dict:
        return {"frames": self.frames, "blurred_regions": self.blurred_regions, "people_tracks": self.people_tracks,
                "subject_tracks": list(self.subject_tracks), "vehicles": self.vehicles,
                "seconds": round(self.seconds, 3), "method": self.method, "warnings": list(self.warnings)}


# --- input ------------------------------------------------------------------------------
class _Input:
    """One decoding of the source: frames with output timestamps that both passes agree on."""

    def __init__(self, src: Path):
        import av

        try:
            self.container = av.open(str(src), "r")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise RedactionError(f"cannot read {src.name}: {exc}") from None
        if not self.container.streams.video:
            self.close()
            raise RedactionError(f"{src.name} has no video stream")
        self.src = src
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"  # a file, not a live camera: decode with every core
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.rate = Fraction(rate).limit_denominator(100000) if rate and rate > 0 else Fraction(25)
        # AVI stamps B-frame streams in decode order (they run backwards): number the frames.
        self.by_index = "avi" in (self.container.format.name or "").split(",") or not self.stream.time_base
        self.time_base = 1 / self.rate if self.by_index else Fraction(self.stream.time_base)
        self.step = max(1, round(1 / (self.rate * self.time_base)))  # one frame, in time_base units
        self.expected = self._expected_frames()

    def _expected_frames(self) -> int:
        """The frame count for progress: the header's, or duration x rate; 0 = unknown."""
        if self.stream.frames:
            return int(self.stream.frames)
        if self.stream.duration and self.stream.time_base:
            return int(self.stream.duration * self.stream.time_base * self.rate)
        if self.container.duration:
            return int(self.container.duration / 1_000_000 * self.rate)
        return 0

    def frames(self) -> Iterator[tuple[int, int, object]]:
        """(index, pts in ``time_base`` from 0, av.VideoFrame); stamps never go backwards."""
        import av

        first = last = None
        index = 0
        try:
            for frame in self.container.decode(self.stream):
                if self.by_index or frame.pts is None:
                    pts = index * self.step if last is None else last + self.step
                else:
                    first = frame.pts if first is None else first
                    pts = frame.pts - first
                    if last is not None and pts <= last:
                        pts = last + self.step
                last = pts
                yield index, pts, frame
                index += 1
        except av.FFmpegError as exc:
            raise RedactionError(f"{self.src.name} is damaged after frame {index}: {exc}") from None

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:
            pass


def _even_size(frame) -> tuple[int, int]:
    """H.264 in yuv420p needs even sizes: an odd width or height is scaled down by one pixel."""
    return frame.width & ~1, frame.height & ~1


# --- pass 1: find people and vehicles -----------------------------------------------------
@dataclass
class _Obs:
    frame: int
    box: Box
    plates: tuple[Box, ...] = ()  # plate patches relative to the vehicle box (0..1)


@dataclass
class _TrackLog:
    id: int
    label: str
    obs: list[_Obs] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)  # obs' frame numbers, for bisect

    def add(self, obs: _Obs) -> None:
        self.obs.append(obs)
        self.frames.append(obs.frame)


@dataclass
class _Scan:
    frames: int
    pts: list[int]
    time_base: Fraction
    rate: Fraction
    size: tuple[int, int]
    tracks: list[_TrackLog]

    def t(self, index: int) -> float:
        return float(self.pts[index] * self.time_base)


def _scan(src: Path, detector, options: RedactionOptions, progress: Callable[[float], None]) -> _Scan:
    """Pass 1: detect every ``detect_every`` frames, link the boxes into tracks."""
    inp = _Input(src)
    # A track survives 2 s unseen (a person behind a pillar), longer when detections are sparse.
    tracker = Tracker(iou_threshold=0.3, max_age_s=max(2.0, 3 * options.detect_every / float(inp.rate)), min_hits=1)
    logs: dict[int, _TrackLog] = {}
    pts_list: list[int] = []
    size = None
    wanted = ({PERSON} if options.people != "none" else set()) | (set(VEHICLES) if options.plates else set())
    last = None  # the last frame, if the detector skipped it: someone may have just come in
    try:
        for index, pts, frame in inp.frames():
            pts_list.append(pts)
            size = size or _even_size(frame)
            last = (index, pts, frame)
            if index % options.detect_every == 0:
                last = None
                bgr = frame.to_ndarray(width=size[0], height=size[1], format="bgr24")
                _detect_frame(bgr, index, float(pts * inp.time_base), detector, tracker, logs, wanted)
            if inp.expected and index % 10 == 0:
                progress(PROGRESS_SCAN * min(1.0, index / inp.expected))
        if last is not None:
            index, pts, frame = last
            bgr = frame.to_ndarray(width=size[0], height=size[1], format="bgr24")
            _detect_frame(bgr, index, float(pts * inp.time_base), detector, tracker, logs, wanted)
    finally:
        inp.close()
    if not pts_list:
        raise RedactionError(f"no video frame could be decoded from {src.name}")
    return _Scan(len(pts_list), pts_list, inp.time_base, inp.rate, size, sorted(logs.values(), key=lambda g: g.id))


def _detect_frame(bgr: np.ndarray, index: int, t: float, detector, tracker: Tracker,
                  logs: dict[int, _TrackLog], wanted: set[str]) -> None:
    """Detect, track, and log the boxes matched on this frame (with plate patches on vehicles)."""
    try:
        dets = _one_vehicle_label([d for d in detector.detect(bgr) if d.label in wanted])
    except Exception as exc:  # a detector that fails must not yield a copy that looks redacted
        raise RedactionError(f"the detector failed on frame {index}: {exc}") from None
    for tr in tracker.update(dets, t):
        if tr.last_t != t:
            continue  # not seen on this frame: its box is a prediction, interpolation does better
        log = logs.setdefault(tr.id, _TrackLog(tr.id, tr.label))
        plates = ()
        if tr.label == VEHICLE:
            plates = tuple(_relative(p, tr.box) for p in find_plates(bgr, tr.box))
        log.add(_Obs(index, tuple(tr.box), plates))


def _one_vehicle_label(dets: list) -> list:
    """Vehicles relabelled "vehicle", and a vehicle found twice (as a car and as a truck: the
    detector's NMS is per class) kept once. YOLOX flips between car, truck and bus on one
    vehicle from frame to frame; with one label its track stays one track instead of several
    that start, stop and are held (each hold blurring more of the vehicle than needed)."""
    people = [d for d in dets if d.label not in VEHICLES]
    kept: list = []
    for d in sorted((d for d in dets if d.label in VEHICLES), key=lambda d: -d.score):
        if all(iou(d.box, k.box) < 0.6 for k in kept):
            kept.append(replace(d, label=VEHICLE))
    return people + kept


# --- plates -------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _plate_cascade():
    """OpenCV's Russian-plate Haar cascade where this OpenCV build ships it (4.x), else None."""
    import cv2

    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        return None
    for name in ("haarcascade_russian_plate_number.xml", "haarcascade_license_plate_rus_16stages.xml"):
        path = Path(cv2.data.haarcascades) / name
        if path.is_file():
            cascade = cv2.CascadeClassifier(str(path))
            if not cascade.empty():
                return cascade
    return None


def find_plates(bgr: np.ndarray, vehicle: Box) -> list[Box]:
    """Plate-like patches inside a vehicle box, in frame pixels.

    Two finders, both tuned to over-report: the patch finder (``_plate_patches``: a bright
    rectangle holding dark characters, or the reverse) and OpenCV's Haar plate cascade where
    this OpenCV build ships it. They also fire on windows, lamps, stickers and badges; that
    only blurs a little more of the vehicle. They miss plates too small to show characters
    (a few pixels tall: unreadable anyway), dirty or steeply slanted ones, and plates joined
    to a white body of the same brightness. The lower half of the box is blurred regardless.
    """
    import cv2

    h_img, w_img = bgr.shape[:2]
    x1, y1 = max(0, int(vehicle[0])), max(0, int(vehicle[1]))
    x2, y2 = min(w_img, int(math.ceil(vehicle[2]))), min(h_img, int(math.ceil(vehicle[3])))
    w, h = x2 - x1, y2 - y1
    if w < 32 or h < 16:
        return []
    gray = cv2.cvtColor(bgr[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    found = [(x1 + a, y1 + b, x1 + a + c, y1 + b + d) for a, b, c, d in _plate_patches(gray)]
    cascade = _plate_cascade()
    if cascade is not None:
        for a, b, c, d in cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=3, minSize=(24, 8)):
            found.append((x1 + a, y1 + b, x1 + a + c, y1 + b + d))
    return _distinct([tuple(float(v) for v in p) for p in found])


def _distinct(boxes: list[Box]) -> list[Box]:
    """Drop boxes lying mostly (80 %) inside a larger one: the same plate found at several levels."""
    kept: list[Box] = []
    for b in sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1])):
        area = max((b[2] - b[0]) * (b[3] - b[1]), 1e-6)
        inside = (max(0.0, min(b[2], k[2]) - max(b[0], k[0])) * max(0.0, min(b[3], k[3]) - max(b[1], k[1])) for k in kept)
        if all(a < 0.8 * area for a in inside):
            kept.append(b)
    return kept


def _plate_patches(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Plate-shaped patches (x, y, w, h within ``gray``): a bright rectangle holding dark
    strokes (the usual plate: black on white), or the reverse.

    At each of three brightness levels (the 80th, 90th and 96th percentile of the crop, so
    the plate stands out from a light car body too) the connected bright regions that are
    nearly rectangular (their convex hull fills 75 % of their rotated rectangle), 1.3 to 7
    times as wide as tall (square motorcycle plates to long ones), at least 6 px tall, have
    4 to 60 % of their hull darker than the level, and show a row of characters (see
    ``_text_runs``) are taken. Plates too small for their characters to stay apart (under
    about 10 px tall) are not found: the band and the block size cover those.
    """
    import cv2

    cumulative = np.bincount(gray.ravel(), minlength=256).cumsum()
    out = []
    for inverted in (False, True):
        g = 255 - gray if inverted else gray
        for q in (80, 90, 96):
            if inverted:  # the q-th percentile of 255 - gray is 255 less its (100 - q)-th
                level = 255 - int(np.searchsorted(cumulative, (100 - q) / 100 * gray.size))
            else:
                level = int(np.searchsorted(cumulative, q / 100 * gray.size))
            _, bright = cv2.threshold(g, level, 255, cv2.THRESH_BINARY)
            contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            for c in contours:
                if _plate_like(g, c, level):
                    out.append(cv2.boundingRect(c))
    return out


def _plate_like(g: np.ndarray, contour: np.ndarray, level: float) -> bool:
    """The shape and content tests of ``_plate_patches`` for one bright region. A plate is
    small on its vehicle: 6 to 70 % of the box's width, at most a fifth of its height or
    width (a 0.52 x 0.11 m plate on a car 1.8 m wide and 1.5 m tall, seen from any side)."""
    import cv2

    crop_h, crop_w = g.shape
    x, y, bw, bh = cv2.boundingRect(contour)
    if bh < 6 or bw < 6:  # a rectangle is at least as tall as its short side at any angle
        return False
    _, (rw, rh), _ = cv2.minAreaRect(contour)
    rw, rh = max(rw, rh), min(rw, rh)
    if not 6 <= rh <= 0.2 * max(crop_w, crop_h) or not 1.3 <= rw / rh <= 7 or not 0.06 * crop_w <= rw <= 0.7 * crop_w:
        return False
    hull = cv2.convexHull(contour)
    if cv2.contourArea(hull) < 0.75 * rw * rh:
        return False
    inside = np.zeros((bh, bw), np.uint8)  # the hull: characters may cut into the region's edge
    cv2.drawContours(inside, [hull], -1, 255, -1, offset=(-x, -y))
    area = int(np.count_nonzero(inside))
    dark = ((g[y:y + bh, x:x + bw] <= level) & (inside > 0)).astype(np.uint8)
    if not 0.04 * area <= int(np.count_nonzero(dark)) <= 0.6 * area:
        return False
    return _text_runs(dark) >= MIN_TEXT_RUNS


def _text_runs(dark: np.ndarray) -> int:
    """The most separate dark runs along one row of the patch's middle (30 to 70 % of its
    height). A plate's row of characters crosses a row 7 times or more (8 characters, one
    or two strokes each); windows, lamps, grilles and stickers measured at most 9 and mostly
    2 to 4 on the test footage's vehicles. This is what keeps the finder from blurring
    whole cars."""
    h = dark.shape[0]
    rows = dark[int(0.3 * h):max(int(0.3 * h) + 1, int(0.7 * h) + 1)].astype(np.int8)
    starts = (np.diff(rows, axis=1) == 1).sum(axis=1) + rows[:, 0]
    return int(starts.max()) if starts.size else 0


def _relative(p: Box, ref: Box) -> Box:
    """``p`` in 0..1 coordinates of ``ref``: it then moves with the vehicle between detections."""
    w, h = max(ref[2] - ref[0], 1e-6), max(ref[3] - ref[1], 1e-6)
    return (p[0] - ref[0]) / w, (p[1] - ref[1]) / h, (p[2] - ref[0]) / w, (p[3] - ref[1]) / h


def _absolute(r: Box, ref: Box) -> Box:
    w, h = ref[2] - ref[0], ref[3] - ref[1]
    return ref[0] + r[0] * w, ref[1] + r[1] * h, ref[0] + r[2] * w, ref[1] + r[3] * h


# --- the subject --------------------------------------------------------------------------
def _subject_box(entry) -> tuple[float, Box]:
    """(t, normalised box) of a subject entry, or RedactionError saying what is wrong."""
    try:
        t = float(entry["t"])
        box = tuple(float(v) for v in entry["box"])
    except (KeyError, TypeError, ValueError):
        raise RedactionError(f'a subject must be {{"t": seconds, "box": [x1, y1, x2, y2]}} (0..1), not {entry!r}') from None
    if len(box) != 4 or not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1) or not t >= 0:
        raise RedactionError(f"a subject's box must be x1 < x2, y1 < y2 within 0..1 and t >= 0, not {entry!r}")
    return t, box


def _pick_subjects(scan: _Scan, subjects: Sequence[dict]) -> tuple[list[int], list[str]]:
    """The person track that best overlaps each subject box at its time; warnings for misses."""
    ids: list[int] = []
    warnings = []
    width, height = scan.size
    times = [scan.t(i) for i in range(scan.frames)]
    for entry in subjects:
        t, nbox = _subject_box(entry)
        box = (nbox[0] * width, nbox[1] * height, nbox[2] * width, nbox[3] * height)
        f = _nearest(times, t)
        best, best_score = None, 0.0
        for log in scan.tracks:
            if log.label != PERSON:
                continue
            at = _box_at(log, f, 0)
            if at is None:
                continue
            score = iou(box, at)
            cx, cy = (at[0] + at[2]) / 2, (at[1] + at[3]) / 2
            if score < SUBJECT_MIN_IOU and box[0] <= cx <= box[2] and box[1] <= cy <= box[3]:
                score = SUBJECT_MIN_IOU  # a loose box drawn around a small person still picks them
            if score > best_score:
                best, best_score = log.id, score
        if best is None or best_score < SUBJECT_MIN_IOU:
            warnings.append(f"subject at {t:.1f} s: no person found there, so everyone is blurred")
        elif best not in ids:
            ids.append(best)
    return ids, warnings


def _nearest(times: list[float], t: float) -> int:
    i = bisect_left(times, t)
    if i == 0:
        return 0
    if i == len(times):
        return len(times) - 1
    return i if times[i] - t < t - times[i - 1] else i - 1


# --- boxes on every frame -----------------------------------------------------------------
def _positions(log: _TrackLog, f: int, hold: int) -> list[Box]:
    """Where the track may be on frame ``f``: its detection or the interpolation between two
    (one box), or, ``hold`` frames before its first / after its last detection, both where it
    was seen and where it was heading (two boxes); none further off."""
    j = bisect_right(log.frames, f)  # detections up to and including frame f
    if j and log.frames[j - 1] == f:
        return [log.obs[j - 1].box]
    if 0 < j < len(log.obs):
        a, b = log.obs[j - 1], log.obs[j]
        k = (f - a.frame) / (b.frame - a.frame)
        return [tuple(pa + (pb - pa) * k for pa, pb in zip(a.box, b.box))]
    if j == 0:
        end, other, gap = log.obs[0], log.obs[1] if len(log.obs) > 1 else None, log.frames[0] - f
    else:
        end, other, gap = log.obs[-1], log.obs[-2] if len(log.obs) > 1 else None, f - log.frames[-1]
    if gap > hold:
        return []
    if other is None:
        return [end.box]
    speed = [(pe - po) / (end.frame - other.frame) for pe, po in zip(end.box, other.box)]
    sign = 1 if j else -1  # backwards before the first detection
    return [end.box, tuple(pe + v * sign * gap for pe, v in zip(end.box, speed))]


def _box_at(log: _TrackLog, f: int, hold: int) -> Box | None:
    """The box to blur on frame ``f``: the hull of where the track may be (see ``_positions``)."""
    where = _positions(log, f, hold)
    return _hull(*where) if len(where) == 2 else (where[0] if where else None)


def _plates_at(log: _TrackLog, f: int, hold: int) -> list[tuple[Box, float]]:
    """Plate patches on frame ``f`` in pixels, with each patch's own height: those found on
    the detections nearest to it (two either side, so a plate the finder missed once is
    still covered), carried with the box; while held, the hull of where each would be at
    either position."""
    where = _positions(log, f, hold)
    if not where:
        return []
    j = bisect_right(log.frames, f)
    out = []
    for rel in (p for o in log.obs[max(0, j - 2):j + 2] for p in o.plates):
        spots = [_absolute(rel, box) for box in where]
        out.append((_hull(*spots) if len(spots) == 2 else spots[0], spots[0][3] - spots[0][1]))
    return out


def _hull(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def person_region(box: Box, mode: str) -> Region:
    """What to blur of a person: ``faces`` the head region (top 30 %, widened 15 % each side
    and raised a little) of an upright box, the whole box otherwise; ``people`` the box
    padded 10 % / 5 %. The block is a quarter of the region's short side (at least 8 px), so
    a head spans one to three blocks."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if mode == "faces" and w <= UPRIGHT * h:
        r = x1 - 0.15 * w, y1 - 0.06 * h, x2 + 0.15 * w, y1 + HEAD_SHARE * h
    else:
        r = x1 - 0.10 * w, y1 - 0.05 * h, x2 + 0.10 * w, y2 + 0.05 * h
    return (*r, max(MIN_BLOCK, int(min(r[2] - r[0], r[3] - r[1]) / 4)))


def plate_regions(box: Box, plates: Sequence[tuple[Box, float]]) -> list[Region]:
    """What to blur of a vehicle: the lower half of its box (widened 5 %) and each plate patch
    found (pixels, with the plate's height), padded by a quarter of its size.

    The blocks are sized to the characters, not the region, so the vehicle itself stays
    recognisable (the insurer needs the crash): in the band 8 % of the vehicle's width (a
    plate's characters are about 5 %), on a patch its full height (every character is
    averaged away).
    """
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    out = [(x1 - 0.05 * w, y1 + PLATE_BAND * h, x2 + 0.05 * w, y2 + 0.05 * h, max(MIN_BLOCK, int(0.08 * w)))]
    for (px1, py1, px2, py2), height in plates:
        pw, ph = px2 - px1, py2 - py1
        out.append((px1 - 0.25 * pw, py1 - 0.25 * ph, px2 + 0.25 * pw, py2 + 0.25 * ph, max(MIN_BLOCK, int(height))))
    return out


def _regions_per_frame(scan: _Scan, options: RedactionOptions, subjects: set[int],
                       hold: int) -> Iterator[list[Region]]:
    """For frame 0, 1, 2...: the regions to blur (tracks enter and leave a live list in order)."""
    logs = [g for g in scan.tracks if g.id not in subjects and (g.label == VEHICLE or options.people != "none")]
    logs.sort(key=lambda g: g.frames[0])
    live: list[_TrackLog] = []
    nxt = 0
    for f in range(scan.frames):
        while nxt < len(logs) and logs[nxt].frames[0] - hold <= f:
            live.append(logs[nxt])
            nxt += 1
        live = [g for g in live if g.frames[-1] + hold >= f]
        regions: list[Region] = []
        for g in live:
            box = _box_at(g, f, hold)
            if box is None:
                continue
            if g.label == PERSON:
                regions.append(person_region(box, options.people))
            else:
                regions.extend(plate_regions(box, _plates_at(g, f, hold)))
        yield regions


# --- blurring -----------------------------------------------------------------------------
def blur_region(planes: tuple[np.ndarray, np.ndarray, np.ndarray], region: Region, method: str) -> bool:
    """Blur one region in place in a yuv420p picture's (Y, U, V) planes; False if off-frame.

    Pixelation snaps the region outwards to a grid of whole blocks (so a moving region does
    not shift its block edges across the face from frame to frame, which would leak detail)
    and replaces each block by its mean. The Gaussian blur uses a sigma of two thirds of the
    block (at least 4 px): as strong as the pixelation. Chroma is treated alike at half size.
    """
    import cv2

    y_plane, u_plane, v_plane = planes
    height, width = y_plane.shape
    x1, y1 = max(0, int(region[0])), max(0, int(region[1]))
    x2, y2 = min(width, int(math.ceil(region[2]))), min(height, int(math.ceil(region[3])))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return False
    b = max(MIN_BLOCK, int(region[4]))
    b += b & 1  # even, so the half-size chroma planes get whole blocks
    if method == "pixelate":
        x1, y1 = x1 // b * b, y1 // b * b
        x2, y2 = min(width, -(-x2 // b) * b), min(height, -(-y2 // b) * b)
        _pixelate(y_plane[y1:y2, x1:x2], b)
        for p in (u_plane, v_plane):
            _pixelate(p[y1 // 2:y2 // 2, x1 // 2:x2 // 2], b // 2)
    else:
        x1, y1, x2, y2 = x1 & ~1, y1 & ~1, x2 + (x2 & 1), y2 + (y2 & 1)
        sigma = max(4.0, b * 2 / 3)
        roi = y_plane[y1:y2, x1:x2]
        roi[:] = cv2.GaussianBlur(roi, (0, 0), sigma)
        for p in (u_plane, v_plane):
            roi = p[y1 // 2:y2 // 2, x1 // 2:x2 // 2]
            if roi.size:
                roi[:] = cv2.GaussianBlur(roi, (0, 0), sigma / 2)
    return True


def _pixelate(roi: np.ndarray, block: int) -> None:
    """Each ``block`` x ``block`` cell (the last ones may be cut by the frame's edge) → its mean."""
    import cv2

    h, w = roi.shape
    if h == 0 or w == 0:
        return
    small = cv2.resize(roi, (-(-w // block), -(-h // block)), interpolation=cv2.INTER_AREA)
    roi[:] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def _split_yuv420(arr: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes in PyAV's packed yuv420p array (height * 3/2 rows)."""
    flat = arr.reshape(-1)
    n = width * height
    q = n // 4
    return (flat[:n].reshape(height, width), flat[n:n + q].reshape(height // 2, width // 2),
            flat[n + q:n + 2 * q].reshape(height // 2, width // 2))


# --- pass 2: blur and encode --------------------------------------------------------------
def _render(src: Path, part: Path, scan: _Scan, regions: Iterator[list[Region]], method: str,
            progress: Callable[[float], None]) -> tuple[int, int]:
    """Pass 2: decode again, blur each frame's regions, encode H.264; (frames, regions blurred)."""
    import av

    width, height = scan.size
    inp = _Input(src)
    try:
        out = av.open(str(part), "w", format="mp4", container_options={"movflags": "+faststart"})
    except (av.FFmpegError, OSError) as exc:
        inp.close()
        raise RedactionError(f"cannot write {part}: {exc}") from None
    frames = blurred = 0
    try:
        stream = out.add_stream("libx264", rate=scan.rate, options={"crf": str(CRF), "preset": PRESET})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = scan.time_base
        stream.codec_context.time_base = scan.time_base
        for index, pts, frame in inp.frames():
            if index >= scan.frames:
                break  # the file grew between the passes: only what was scanned is redacted
            arr = frame.to_ndarray(width=width, height=height, format="yuv420p")
            planes = _split_yuv420(arr, width, height)
            blurred += sum(blur_region(planes, r, method) for r in next(regions))
            picture = av.VideoFrame.from_ndarray(arr, format="yuv420p")
            picture.pts, picture.time_base = pts, scan.time_base
            out.mux(stream.encode(picture))
            frames += 1
            if index % 10 == 0:
                progress(PROGRESS_SCAN + (1 - PROGRESS_SCAN) * min(1.0, index / scan.frames))
        out.mux(stream.encode(None))
    except (av.FFmpegError, OSError) as exc:
        raise RedactionError(f"cannot write the redacted copy {part}: {exc}") from None
    finally:
        inp.close()
        try:
            out.close()
        except Exception:
            pass
    return frames, blurred


# --- the entry point ----------------------------------------------------------------------
def redact_file(src: Path, dst: Path, detector, options: RedactionOptions,
                progress: Callable[[float], None] | None = None) -> RedactionReport:
    """Write a redacted H.264 copy of ``src`` to ``dst`` (via ``dst.part``, renamed when
    complete); ``src`` is only read. ``progress`` gets 0..1. Raises RedactionError."""
    started = time.perf_counter()
    src, dst = Path(src), Path(dst)
    options.validate()
    if detector is None:
        raise RedactionError("no detector model: redaction needs one to find people and vehicles "
                             "(install it: varta model install yolox-nano)")
    if not src.is_file():
        raise RedactionError(f"cannot read {src}: no such file")
    if dst.exists() and dst.resolve() == src.resolve():
        raise RedactionError("the redacted copy must not replace the original")
    if not dst.parent.is_dir():
        raise RedactionError(f"cannot write {dst}: the folder {dst.parent} does not exist")
    report = progress or (lambda _f: None)
    part = dst.with_name(dst.name + ".part")
    try:
        scan = _scan(src, detector, options, report)
        hold = max(options.detect_every + 2, math.ceil(options.hold_s * float(scan.rate)))
        subjects, warnings = _pick_subjects(scan, options.subject)
        regions = _regions_per_frame(scan, options, set(subjects), hold)
        frames, blurred = _render(src, part, scan, regions, options.blur, report)
        os.replace(part, dst)
    finally:
        part.unlink(missing_ok=True)
    report(1.0)
    return RedactionReport(
        frames=frames, blurred_regions=blurred,
        people_tracks=sum(1 for g in scan.tracks if g.label == PERSON),
        subject_tracks=subjects, vehicles=sum(1 for g in scan.tracks if g.label == VEHICLE),
        seconds=time.perf_counter() - started,
        method=describe(options, type(detector).__name__, len(subjects)), warnings=warnings)


def load_redaction_detector(settings, threads: int | None = None):
    """The configured detector model, loaded for a redaction; RedactionError if there is none.

    Unlike the cameras' analysis, redaction cannot fall back to motion: without a detector
    nothing would be blurred. ``threads`` None = the configured per-inference threads.
    """
    from varta.analytics.models import DEFAULT_MODEL, model_path

    path = model_path(settings)
    if not path.is_file():
        raise RedactionError(f"no detector model at {path}: redaction needs one to find people and vehicles "
                             f"(install it: varta model install {DEFAULT_MODEL})")
    from varta.analytics.detector import YoloxDetector

    try:
        return YoloxDetector(path, providers=settings.detector_providers,
                             threads=settings.detector_threads if threads is None else threads)
    except Exception as exc:
        raise RedactionError(f"the detector model {path} could not be loaded: {exc}") from None


def describe(options: RedactionOptions, detector_name: str, subjects: int = 0) -> str:
    """The one-line method for the package manifest: what was hidden, how, and by what."""
    how = "pixelated" if options.blur == "pixelate" else "Gaussian-blurred"
    parts = []
    if options.people == "faces":
        parts.append(f"people's head regions {how} (top {HEAD_SHARE:.0%} of each person box; whole box if not upright)")
    elif options.people == "people":
        parts.append(f"whole people {how}")
    if options.plates:
        parts.append(f"vehicle plates {how} (lower {1 - PLATE_BAND:.0%} of each vehicle box and plate-like patches)")
    if subjects:
        parts.append(f"{subjects} subject track{'s' if subjects > 1 else ''} left visible")
    every = "every frame" if options.detect_every == 1 else f"every {options.detect_every} frames"
    return (f"Redacted copy (A4.8): {'; '.join(parts)}; {detector_name} detection {every}, tracked and "
            f"interpolated, boxes held {options.hold_s:g} s; H.264 CRF {CRF}, no sound; the original is unchanged")
