"""Direction of movement in image terms (R6): a track's heading on an 8-point compass of
the picture, its speed, and the phrase the alarm card shows. Pure functions.

Image terms, because a camera does not know north: "right" is the picture's right, "up"
its top. Up in the picture is, for a camera looking down a street, *away from* the
camera; down is *towards* it.
"""

from __future__ import annotations

import math

# Compass points clockwise from "up" (the picture's top), 45° each.
POINTS = ("up", "up-right", "right", "down-right", "down", "down-left", "left", "up-left")
PHRASES = {
    "up": ("вгору кадру, від камери", "moving up the picture, away from the camera"),
    "up-right": ("вгору-праворуч, від камери", "moving up and to the right, away from the camera"),
    "right": ("зліва направо", "moving left to right"),
    "down-right": ("вниз-праворуч, до камери", "moving down and to the right, towards the camera"),
    "down": ("вниз кадру, до камери", "moving down the picture, towards the camera"),
    "down-left": ("вниз-ліворуч, до камери", "moving down and to the left, towards the camera"),
    "left": ("справа наліво", "moving right to left"),
    "up-left": ("вгору-ліворуч, від камери", "moving up and to the left, away from the camera"),
}


def heading(dx: float, dy: float) -> str:
    """The compass point of a displacement (dy grows downwards, as in images)."""
    angle = math.degrees(math.atan2(dx, -dy)) % 360  # 0 = up, 90 = right
    return POINTS[int((angle + 22.5) // 45) % 8]


def track_motion(path: list[tuple[float, float, float]], min_pixels: float = 8.0) -> dict | None:
    """Heading, speed (px/s) and phrases from a path of (t seconds, cx, cy) centre points.

    Uses the net displacement from the first to the last point (robust to box jitter);
    None while the object has moved less than ``min_pixels``: standing still has no heading.
    """
    if len(path) < 2:
        return None
    (t0, x0, y0), (t1, x1, y1) = path[0], path[-1]
    dx, dy = x1 - x0, y1 - y0
    dist = math.hypot(dx, dy)
    if dist < min_pixels or t1 <= t0:
        return None
    h = heading(dx, dy)
    return {"heading": h, "speed_px_s": dist / (t1 - t0), "dx": dx, "dy": dy,
            "uk": PHRASES[h][0], "en": PHRASES[h][1]}
