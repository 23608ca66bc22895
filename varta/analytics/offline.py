"""``varta analyze``: the cameras' pipeline run over a video file (an export, a clip from
a citizen), printing the events it raises and, on request, every tracked box per frame in
MOTChallenge format so accuracy can be measured with standard tools."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from varta.analytics.config import AnalyticsConfig
from varta.analytics.pipeline import CameraPipeline
from varta.analytics.source import FrameSource



@dataclass
class OfflineEvent:
    rule: str
    kind: str
    label: str | None
    zone: str | None
    start_s: float
    end_s: float | None = None
    score: float = 0.0
    track_id: int | None = None
    heading: str | None = None
    direction: str | None = None  # the phrase, in English
    detail: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class OfflineResult:
    events: list[OfflineEvent]
    frames_decoded: int
    frames_analysed: int
    motion_frames: int
    detections_run: int
    seconds: float  # wall time spent
    cpu_s: float
    region_share: float | None = None  # the share of the picture the detector looked at, per run
    records: list = field(default_factory=list)  # TrackRecord, times from the file's start

    def to_json(self) -> dict:
        return {"events": [e.to_json() for e in self.events], "frames_decoded": self.frames_decoded,
                "frames_analysed": self.frames_analysed, "motion_frames": self.motion_frames,
                "detections_run": self.detections_run, "seconds": round(self.seconds, 3),
                "cpu_s": round(self.cpu_s, 3),
                "region_share": round(self.region_share, 3) if self.region_share is not None else None}


def analyze_file(path: Path, config: AnalyticsConfig, detector=None, fps: float | None = None,
                 mot: TextIO | None = None, gate: bool = True, mot_labels: set[str] | None = None,
                 view_direction: float | None = None) -> OfflineResult:
    """Run the pipeline over ``path``. ``fps`` None = the config's rate, 0 = every frame.
    ``gate=False`` runs the detector on every analysed frame (the naive baseline). The
    result's ``records`` are the track records (times from the file's start, µs)."""
    pipeline = CameraPipeline(config, detector)
    pipeline.view_direction = view_direction
    records = []
    if not gate:
        pipeline.always_detect = True
    source = FrameSource(str(path), config.fps if fps is None else fps, live=False, start_us=0)
    open_events: dict[str, OfflineEvent] = {}
    events: list[OfflineEvent] = []
    writer = MotWriter(mot, mot_labels) if mot is not None else None
    t0, c0 = time.perf_counter(), time.process_time()
    last_t = 0.0
    for frame in source.frames():
        step = pipeline.process(frame.bgr, frame.t, frame.wall_us)
        last_t = frame.t
        for ch in step.changes:
            occ = ch.occurrence
            if ch.action == "open":
                m = ch.motion or {}
                ev = OfflineEvent(occ.rule, occ.kind, occ.label, occ.zone, round(ch.wall_us / 1e6, 3), score=round(occ.score, 3),
                                  track_id=occ.track_id, heading=m.get("heading"), direction=m.get("en"),
                                  detail={k: v for k, v in occ.detail.items() if k != "direction"})
                open_events[ch.key] = ev
                events.append(ev)
            ev = open_events.get(ch.key)
            if ev is None:
                continue
            if ch.motion and ch.motion.get("heading"):
                ev.heading, ev.direction = ch.motion["heading"], ch.motion.get("en")
            if occ.kind:
                ev.detail.update({k: v for k, v in occ.detail.items() if k != "direction"})
                ev.score = round(max(ev.score, occ.score or 0.0), 3)
            if ch.action == "close":
                ev.end_s = round(ch.wall_us / 1e6, 3)  # files start at wall time 0
                open_events.pop(ch.key, None)
        if writer is not None:
            writer.write(frame.index + 1, pipeline.tracker.tracks(), frame.t)
        records += pipeline.take_records()
    if writer is not None:
        writer.close()
    for ch in pipeline.finish(last_t, int(last_t * 1e6)):  # files start at wall time 0
        ev = open_events.pop(ch.key, None)
        if ev is not None:
            ev.end_s = round(ch.wall_us / 1e6, 3)
    records += pipeline.take_records()
    st = pipeline.stats
    looked = ((st.region_share + st.detections_run - st.region_runs) / st.detections_run
              if st.detections_run else None)
    return OfflineResult(events, source.decoded, st.frames, st.motion_frames, st.detections_run,
                         time.perf_counter() - t0, time.process_time() - c0, looked, records)


class MotWriter:
    """``frame,id,x,y,w,h,score,-1,-1,-1`` for what the detector saw and the tracker followed.

    Only observations: a track's box on a frame where no detection matched it is the
    tracker's prediction and is never written. A track is written once confirmed (matched
    ``min_hits`` times); its observations from before that, held back meanwhile, are written
    then, under the frame numbers they were seen on. Lines come out in frame order: a frame
    is written once no track still being confirmed could add to it (``close`` writes the
    rest). ``labels``: MOT has no class column, so benchmarks score one class at a time.
    ``rows`` keeps (frame, id, box, score, label) when ``keep`` is set.
    """

    def __init__(self, out: TextIO | None, labels: set[str] | None = None, keep: bool = False):
        self.out, self.labels = out, labels
        self.rows: list[tuple[int, int, tuple, float, str]] | None = [] if keep else None
        self._held: dict[int, list[tuple[int, tuple, float, str]]] = {}  # unconfirmed tracks' observations
        self._ready: list[tuple[int, int, tuple, float, str]] = []  # confirmed, waiting for their frame's turn

    def write(self, frame_no: int, tracks, t: float) -> None:
        live = set()
        for tr in tracks:
            live.add(tr.id)
            if not tr.observed(t) or (self.labels and tr.label not in self.labels):
                continue
            seen = (frame_no, tuple(tr.seen_box), tr.seen_score, tr.label)
            if not tr.confirmed:
                self._held.setdefault(tr.id, []).append(seen)
                continue
            for f, box, score, label in self._held.pop(tr.id, []):
                self._ready.append((f, tr.id, box, score, label))
            self._ready.append((frame_no, tr.id, *seen[1:]))
        for tid in [k for k in self._held if k not in live]:  # never confirmed: never written
            del self._held[tid]
        pending = min((obs[0][0] for obs in self._held.values()), default=frame_no + 1)
        self._flush(min(pending, frame_no + 1))

    def close(self) -> None:
        self._held.clear()
        self._flush(None)

    def _flush(self, before: int | None) -> None:
        self._ready.sort(key=lambda r: (r[0], r[1]))
        n = len(self._ready) if before is None else next(
            (i for i, r in enumerate(self._ready) if r[0] >= before), len(self._ready))
        for frame_no, tid, box, score, label in self._ready[:n]:
            x1, y1, x2, y2 = box
            if self.out is not None:
                self.out.write(f"{frame_no},{tid},{x1:.1f},{y1:.1f},{x2 - x1:.1f},{y2 - y1:.1f},{score:.3f},-1,-1,-1\n")
            if self.rows is not None:
                self.rows.append((frame_no, tid, box, score, label))
        del self._ready[:n]
