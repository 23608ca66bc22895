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

TRACK_VISIBLE_S = 1.0  # a confirmed track not matched for longer is not written to MOT


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

    def to_json(self) -> dict:
        return {"events": [e.to_json() for e in self.events], "frames_decoded": self.frames_decoded,
                "frames_analysed": self.frames_analysed, "motion_frames": self.motion_frames,
                "detections_run": self.detections_run, "seconds": round(self.seconds, 3),
                "cpu_s": round(self.cpu_s, 3)}


def analyze_file(path: Path, config: AnalyticsConfig, detector=None, fps: float | None = None,
                 mot: TextIO | None = None, gate: bool = True, mot_labels: set[str] | None = None) -> OfflineResult:
    """Run the pipeline over ``path``. ``fps`` None = the config's rate, 0 = every frame.
    ``gate=False`` runs the detector on every analysed frame (the naive baseline)."""
    pipeline = CameraPipeline(config, detector)
    if not gate:
        pipeline.always_detect = True
    source = FrameSource(str(path), config.fps if fps is None else fps, live=False, start_us=0)
    open_events: dict[str, OfflineEvent] = {}
    events: list[OfflineEvent] = []
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
        if mot is not None:
            write_mot(mot, frame.index + 1, pipeline.tracker.confirmed(), frame.t, mot_labels)
    for ch in pipeline.finish(last_t, 0):
        ev = open_events.pop(ch.key, None)
        if ev is not None:
            ev.end_s = round(last_t, 3)
    st = pipeline.stats
    return OfflineResult(events, source.decoded, st.frames, st.motion_frames, st.detections_run,
                         time.perf_counter() - t0, time.process_time() - c0)


def write_mot(out: TextIO, frame_no: int, tracks, t: float, labels: set[str] | None = None) -> None:
    """``frame,id,x,y,w,h,score,-1,-1,-1`` for each confirmed track seen lately (of the
    given labels: MOT has no class column, and benchmarks score one class at a time)."""
    for tr in tracks:
        if t - tr.last_t > TRACK_VISIBLE_S or (labels and tr.label not in labels):
            continue
        x1, y1, x2, y2 = tr.box
        out.write(f"{frame_no},{tr.id},{x1:.1f},{y1:.1f},{x2 - x1:.1f},{y2 - y1:.1f},{tr.score:.3f},-1,-1,-1\n")
