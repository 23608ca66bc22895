"""The cheap motion gate: the object detector runs only where and when something changed.

The Frigate approach. A small grey copy of each frame (``width`` pixels wide) is compared
with a running-average background; pixels that differ by more than ``threshold`` grey
levels are motion, masked areas (trees in the wind, a clock, the road outside the
property) are ignored, and blobs covering at least ``min_area`` of the picture come back
as boxes in *source* pixels. Everything runs in OpenCV on ~19k pixels: well under a
millisecond a frame on one core.

A sudden change of most of the picture (lights switched on, the camera's auto-exposure
jumping) is reported as motion for that frame and the background is re-learned at once, so
the gate does not keep firing until the slow average catches up.
"""

from __future__ import annotations

import cv2
import numpy as np

from varta.analytics.types import Box, MotionResult

Polygon = list[tuple[float, float]]

GLOBAL_CHANGE = 0.7  # share of the picture that changes at once: a lighting jump, not an object
_KERNEL = np.ones((3, 3), np.uint8)


def polygon_mask(polygons: list[Polygon] | None, w: int, h: int) -> np.ndarray:
    """A ``h`` x ``w`` uint8 mask: 255 where the picture is analysed, 0 inside any polygon.

    Polygons are normalised 0..1 (x right, y down), so one mask fits any stream size.
    """
    mask = np.full((h, w), 255, np.uint8)
    pts = [np.round(np.asarray(p, np.float64).reshape(-1, 2) * (w, h)).astype(np.int32)
           for p in polygons or () if len(p) >= 3]
    if pts:
        cv2.fillPoly(mask, pts, 0)
    return mask


def merge_boxes(boxes: list[Box]) -> list[Box]:
    """Union overlapping (or touching) boxes until none overlap; one object, one box."""
    boxes = list(boxes)
    merged = True
    while merged and len(boxes) > 1:
        merged = False
        out: list[Box] = []
        for b in boxes:
            for i, o in enumerate(out):
                if b[0] <= o[2] and o[0] <= b[2] and b[1] <= o[3] and o[1] <= b[3]:
                    out[i] = (min(b[0], o[0]), min(b[1], o[1]), max(b[2], o[2]), max(b[3], o[3]))
                    merged = True
                    break
            else:
                out.append(b)
        boxes = out
    return boxes


class MotionDetector:
    """Running-average background subtraction on a small grey copy of the frame."""

    def __init__(self, masks: list[Polygon] | None = None, width: int = 160, threshold: int = 25,
                 min_area: float = 0.0008, alpha: float = 0.05, warmup_frames: int = 3):
        self.masks = masks or []
        self.width = width
        self.threshold = threshold
        self.min_area = min_area
        self.alpha = alpha
        self.warmup_frames = warmup_frames
        self.reset()

    def reset(self) -> None:
        """Forget the background (a new stream, a new size, a moved camera)."""
        self._size: tuple[int, int] | None = None  # source w, h
        self._bg: np.ndarray | None = None
        self._frames = 0

    @property
    def warming(self) -> bool:
        """The background is still being learnt: "no motion" means "cannot tell" yet."""
        return self._frames <= self.warmup_frames

    def _setup(self, w: int, h: int) -> None:
        self.reset()
        self._size = (w, h)
        self._small = (self.width, max(1, round(h * self.width / w))) if w > self.width else (w, h)
        self._mask = polygon_mask(self.masks, *self._small)
        self._analysed = cv2.countNonZero(self._mask)
        self._min_pixels = self.min_area * self._small[0] * self._small[1]
        self._scale = (w / self._small[0], h / self._small[1])

    def _grey(self, frame: np.ndarray) -> np.ndarray:
        small = cv2.resize(frame, self._small, interpolation=cv2.INTER_LINEAR) if self._small != self._size else frame
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY if small.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
        return cv2.GaussianBlur(small, (5, 5), 0)

    def update(self, bgr: np.ndarray) -> MotionResult:
        """Compare one frame (BGR or grey) with the background and learn it in."""
        h, w = bgr.shape[:2]
        if self._size != (w, h):
            self._setup(w, h)
        grey = self._grey(bgr)
        self._frames += 1
        if self._bg is None:
            self._bg = grey.astype(np.float32)
            return MotionResult((), 0.0)
        warming = self._frames <= self.warmup_frames
        # While warming up, average the first frames evenly rather than trusting frame one.
        rate = max(self.alpha, 1.0 / self._frames) if warming else self.alpha
        diff = cv2.absdiff(grey, cv2.convertScaleAbs(self._bg))
        cv2.accumulateWeighted(grey, self._bg, rate)
        if warming or not self._analysed:
            return MotionResult((), 0.0)
        _, changed = cv2.threshold(diff, self.threshold, 255, cv2.THRESH_BINARY)
        cv2.bitwise_and(changed, self._mask, dst=changed)
        fraction = cv2.countNonZero(changed) / self._analysed
        if fraction > GLOBAL_CHANGE:
            self._bg = grey.astype(np.float32)  # lighting jump: re-learn now, report this frame only
        return MotionResult(tuple(self._boxes(changed)), fraction)

    def _boxes(self, changed: np.ndarray) -> list[Box]:
        grown = cv2.dilate(changed, _KERNEL, iterations=2)
        cv2.bitwise_and(grown, self._mask, dst=grown)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
        if n <= 1:
            return []
        # A blob's size is its changed pixels, not its dilated outline: lone noisy pixels stay out.
        counts = np.bincount(labels[changed > 0], minlength=n)
        sx, sy = self._scale
        boxes = [(float(x * sx), float(y * sy), float((x + bw) * sx), float((y + bh) * sy))
                 for (x, y, bw, bh, _), count in zip(stats[1:n].tolist(), counts[1:].tolist())
                 if count >= self._min_pixels]
        return merge_boxes(boxes)
