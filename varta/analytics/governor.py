"""Overload behaviour (pure): when analysis needs more CPU than it is given, or cameras
fall behind, slow the least important cameras first — lowest priority first, and among
equals a quiet camera (nothing moved, nothing tracked lately: slowing it costs nothing seen)
before a busy one — and give the rate back, most important and busiest first, when the load
falls. Recording is never touched: it runs in another process at normal priority while
analysis runs niced (see worker.py), and this only ever lowers analysis rates.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_FPS = 1.0
HIGH_WATER = 0.90  # share of the CPU budget above which rates go down
LOW_WATER = 0.65  # below which they come back
BEHIND = 0.85  # a camera analysed below this share of its allowed rate is falling behind
MAX_LAG_S = 2.0  # or whose frames are analysed this long after the camera took them
STEP_DOWN = 0.7
STEP_UP = 1.25


@dataclass
class CameraLoad:
    camera_id: str
    rank: int  # 3 high, 2 normal, 1 low (config.PRIORITIES)
    target_fps: float  # what the city asked for
    fps: float  # what it is allowed now
    achieved: float | None = None  # what it really analysed over the last period
    active: bool = True  # motion or tracked objects over the last period
    lag_s: float | None = None  # how long after the camera took them its frames were analysed

    @property
    def behind(self) -> bool:
        return (self.achieved is not None and self.achieved < BEHIND * self.fps) or \
            (self.lag_s is not None and self.lag_s > MAX_LAG_S)


def rebalance(cams: list[CameraLoad], cpu_cores_used: float, budget_cores: float) -> dict[str, float]:
    """New rates for the cameras whose rate should change (one step per call)."""
    if not cams or budget_cores <= 0:
        return {}
    load = cpu_cores_used / budget_cores
    # Falling behind is overload too, even with CPU to spare: the shared detector, one
    # inference at a time, can be the limit before the cores are (bench/RESULTS.md §8).
    behind = any(c.behind for c in cams)
    if load > HIGH_WATER or behind:
        slowable = [c for c in cams if c.fps > min(MIN_FPS, c.target_fps) + 1e-6]
        if not slowable:
            return {}
        # The lowest priority first; among equals a quiet one, then the one analysed fastest
        # (it gives most back).
        victim = min(slowable, key=lambda c: (c.rank, c.active, -c.fps))
        return {victim.camera_id: round(max(min(MIN_FPS, victim.target_fps), victim.fps * STEP_DOWN), 2)}
    if load < LOW_WATER and not behind:
        held = [c for c in cams if c.fps < c.target_fps - 1e-6]
        if not held:
            return {}
        lucky = max(held, key=lambda c: (c.rank, c.active, -c.fps))
        return {lucky.camera_id: round(min(lucky.target_fps, lucky.fps * STEP_UP), 2)}
    return {}


def describe(cam: CameraLoad) -> str:
    """Why a camera is not analysed at its rate (English, for the log and the CLI; the
    console words it from the status fields), or ""."""
    if cam.fps < cam.target_fps - 1e-6:
        return (f"machine overloaded: analysed at {cam.fps:g} of {cam.target_fps:g} frames/s "
                f"(lower-priority and quiet cameras are slowed first); recording is not affected")
    if cam.behind:
        held = f"{cam.achieved:.1f}" if cam.achieved is not None else "?"
        lag = f", {cam.lag_s:.1f} s behind the camera" if cam.lag_s is not None and cam.lag_s > MAX_LAG_S else ""
        return (f"cannot keep up: analysed at {held} of {cam.fps:g} frames/s{lag}; "
                f"recording is not affected")
    return ""
