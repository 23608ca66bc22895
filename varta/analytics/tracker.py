"""Multi-object tracking, SORT-style: predict, match by IoU (Hungarian), update.

Each track's box moves at a constant velocity: its centre's displacement over about the
last second of matches, in pixels per *second* (one second of points averages out the
detector's jitter, which at 7 fps is as large as a walker's step). So a walker or a car
still overlaps its prediction when the detector runs only a few times a second or skips
frames because the motion gate saw nothing. New tracks predict no motion. Time is the
stream's seconds throughout: ages and gaps are not frame counts.

Matching, per update: a detection may join a track of the same label only (a person never
becomes a car). A pair is accepted when the detection's IoU with the track's predicted box
reaches ``iou_threshold`` and then scores 1 + DIoU (IoU less the squared centre distance
over the squared diagonal of both boxes' hull: of two similar overlaps, the nearer centre
wins). One fallback serves small, fast objects whose boxes no longer overlap: centres within
half the predicted box's diagonal and areas within 2x of each other, scored below any IoU
match. The assignment with the highest total score wins (scipy's Hungarian solver).

Honest output: a track's ``box`` on a frame where no detection matched it is the
prediction; ``Track.observed(t)`` tells the two apart and ``seen_box`` keeps what was really
seen. Predictions carry matching over frames the detector skipped or missed, but they are
never reported as observations (``--mot``, alarm pictures, rules: rules.py).

Without an appearance model, two people whose boxes coincide for seconds (walking
together, one behind the other) may swap ids; on the PETS09-S2L1 ground truth that is most
of the identity switches left.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from scipy.optimize import linear_sum_assignment

from varta.analytics.detector import Detection
from varta.analytics.types import Box, Track

VELOCITY_WINDOW_S = 1.0  # velocity = displacement over about the last second of matches
CENTRE_GATE = 0.5  # the fallback: centres within this share of the predicted box's diagonal
_REFUSED = 1e6


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _centre(b: Box) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def _anchor(b: Box) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, b[3]


class _State:
    """A track plus what only the tracker needs: the last matched box and the velocity."""

    def __init__(self, track: Track, box: Box):
        self.track = track
        self.matched = box  # the last detection's box (the track's box may be a prediction)
        self.vx = self.vy = 0.0  # centre velocity, pixels per second
        self._centres = deque([(track.last_t, *_centre(box))])  # matched centres, the last second or so

    def predict(self, t: float) -> Box:
        dt = t - self.track.last_t
        x1, y1, x2, y2 = self.matched
        return x1 + self.vx * dt, y1 + self.vy * dt, x2 + self.vx * dt, y2 + self.vy * dt

    def match(self, det: Detection, t: float, min_hits: int, path_len: int) -> None:
        tr, box = self.track, det.box
        self.matched = tr.box = tr.seen_box = box
        tr.seen_score = det.score
        tr.last_t = t
        tr.hits += 1
        tr.score = max(tr.score, det.score)
        tr.confirmed = tr.confirmed or tr.hits >= min_hits
        tr.path.append((t, *_anchor(box)))
        del tr.path[:-path_len]
        self._centres.append((t, *_centre(box)))
        while len(self._centres) > 2 and t - self._centres[1][0] >= VELOCITY_WINDOW_S:
            self._centres.popleft()
        t0, x0, y0 = self._centres[0]
        if t > t0:
            self.vx, self.vy = (self._centres[-1][1] - x0) / (t - t0), (self._centres[-1][2] - y0) / (t - t0)


def _pair_score(pred: Box, box: Box, iou_threshold: float) -> float:
    """How well a detection fits a prediction (see the module's docstring); 0 = refused."""
    o = iou(pred, box)
    (px, py), (bx, by) = _centre(pred), _centre(box)
    d2 = (bx - px) ** 2 + (by - py) ** 2
    if o >= iou_threshold:
        c2 = (max(pred[2], box[2]) - min(pred[0], box[0])) ** 2 + (max(pred[3], box[3]) - min(pred[1], box[1])) ** 2
        return 1.0 + o - d2 / c2
    pw, ph, bw, bh = pred[2] - pred[0], pred[3] - pred[1], box[2] - box[0], box[3] - box[1]
    if pw <= 0 or ph <= 0 or bw <= 0 or bh <= 0 or not 0.5 <= (bw * bh) / (pw * ph) <= 2.0:
        return 0.0
    gate = CENTRE_GATE * math.hypot(pw, ph)
    d = math.sqrt(d2)
    return 0.5 * (1 - d / gate) if d < gate else 0.0


class Tracker:
    """Follows detections across frames; ids are 1, 2, 3... per tracker."""

    def __init__(self, iou_threshold: float = 0.3, max_age_s: float = 2.0, min_hits: int = 2,
                 path_len: int = 300):
        self.iou_threshold = iou_threshold
        self.max_age_s = max_age_s
        self.min_hits = min_hits
        self.path_len = max(1, path_len)
        self._live: list[_State] = []
        self._ended: list[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Drop every track (a new stream, a moved camera): they come out of ``ended()``.

        Ids go on increasing, so an event keyed on a track id never meets a second track
        with the same id from this tracker.
        """
        self._ended.extend(s.track for s in self._live)
        self._live = []

    def update(self, detections: list[Detection], t: float) -> list[Track]:
        """Match one frame's detections at stream time ``t`` (seconds); the live tracks after it."""
        preds = [s.predict(t) for s in self._live]
        pairs = self._assign(preds, detections)
        taken = set()
        for i, j in pairs:
            self._live[i].match(detections[j], t, self.min_hits, self.path_len)
            taken.add(j)
        matched = {i for i, _ in pairs}
        keep = []
        for i, s in enumerate(self._live):
            if i not in matched:
                s.track.box = preds[i]
                if t - s.track.last_t > self.max_age_s:
                    self._ended.append(s.track)
                    continue
            keep.append(s)
        self._live = keep
        for j, d in enumerate(detections):
            if j not in taken:
                self._start(d, t)
        return self.tracks()

    def _assign(self, preds: list[Box], detections: list[Detection]) -> list[tuple[int, int]]:
        if not preds or not detections:
            return []
        score = np.zeros((len(preds), len(detections)))
        for i, (s, p) in enumerate(zip(self._live, preds)):
            for j, d in enumerate(detections):
                if d.label == s.track.label:
                    score[i, j] = _pair_score(p, d.box, self.iou_threshold)
        cost = np.where(score > 0, -score, _REFUSED)
        rows, cols = linear_sum_assignment(cost)
        return [(int(i), int(j)) for i, j in zip(rows, cols) if score[i, j] > 0]

    def _start(self, d: Detection, t: float) -> None:
        box = d.box
        tr = Track(id=self._next_id, label=d.label, cls=d.cls, score=d.score, box=box, first_t=t, last_t=t,
                   path=[(t, *_anchor(box))], confirmed=self.min_hits <= 1)
        self._next_id += 1
        self._live.append(_State(tr, box))

    def tracks(self) -> list[Track]:
        """The live tracks, confirmed or not."""
        return [s.track for s in self._live]

    def confirmed(self) -> list[Track]:
        """The live tracks matched at least ``min_hits`` times: the ones worth an event."""
        return [s.track for s in self._live if s.track.confirmed]

    def ended(self) -> list[Track]:
        """Tracks dropped since the last call (confirmed or not); the pipeline closes their events."""
        out, self._ended = self._ended, []
        return out
