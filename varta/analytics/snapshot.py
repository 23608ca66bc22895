"""The alarm picture (R6): the frame with the object boxed, the rule's zone or line, and an
arrow showing where the object is heading. Drawing only (OpenCV), no storage."""

from __future__ import annotations

import math

import numpy as np

from varta.analytics.types import Box

COLOURS = {"alarm": (40, 40, 230), "warning": (0, 170, 255), "info": (230, 160, 40)}  # BGR
ZONE = (60, 220, 60)


def _pts(points, w: int, h: int) -> np.ndarray:
    return np.array([[round(x * w), round(y * h)] for x, y in points], dtype=np.int32)


def draw_alarm(bgr: np.ndarray, box: Box | None, label: str = "", severity: str = "alarm",
               path: list[tuple[float, float, float]] | None = None, heading: str | None = None,
               polygon=None, line=None) -> np.ndarray:
    """A copy of ``bgr`` with the annotation drawn; geometry of rules is normalised 0..1."""
    import cv2

    img = bgr.copy()
    h, w = img.shape[:2]
    thick = max(2, w // 320)
    if polygon:
        cv2.polylines(img, [_pts(polygon, w, h)], True, ZONE, thick)
    if line:
        a, b = _pts(line, w, h)
        cv2.line(img, tuple(int(v) for v in a), tuple(int(v) for v in b), ZONE, thick + 1)
        cv2.putText(img, "A", tuple(int(v) for v in a), cv2.FONT_HERSHEY_SIMPLEX, 0.6, ZONE, 2)
        cv2.putText(img, "B", tuple(int(v) for v in b), cv2.FONT_HERSHEY_SIMPLEX, 0.6, ZONE, 2)
    colour = COLOURS.get(severity, COLOURS["alarm"])
    if box is not None:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, thick)
        if label:
            cv2.putText(img, label, (x1, max(14, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.55, colour, 2)
    if path and len(path) >= 2:
        pts = np.array([[int(x), int(y)] for _, x, y in path[-60:]], dtype=np.int32)
        cv2.polylines(img, [pts], False, colour, max(1, thick - 1))
    if box is not None and heading:
        _arrow(img, box, heading, colour, thick)
    return img


def _arrow(img: np.ndarray, box: Box, heading: str, colour, thick: int) -> None:
    """An arrow from the box's centre towards the picture-compass heading."""
    import cv2

    from varta.analytics.direction import POINTS

    angle = math.radians(POINTS.index(heading) * 45)  # 0 = up, clockwise
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    length = max(30.0, 0.8 * max(x2 - x1, y2 - y1))
    tip = (int(cx + length * math.sin(angle)), int(cy - length * math.cos(angle)))
    cv2.arrowedLine(img, (int(cx), int(cy)), tip, (255, 255, 255), thick + 3, tipLength=0.35)
    cv2.arrowedLine(img, (int(cx), int(cy)), tip, colour, thick + 1, tipLength=0.35)


def encode_jpeg(bgr: np.ndarray, quality: int = 85) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("the snapshot could not be encoded as JPEG")
    return buf.tobytes()
