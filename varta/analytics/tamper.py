"""Camera tampering: someone covers, blinds, defocuses or turns a camera (sabotage alarms).

All measures come from one small grey copy of the frame (160 pixels wide), a fraction of a
millisecond a frame:

* brightness and detail (mean and standard deviation of grey);
* sharpness: variance of the Laplacian divided by the squared mean brightness, so that
  dusk or an exposure change (which scale both alike) does not read as "blurred". Measured
  on the five sample clips, it stays within 0.8..1.3 of its median through traffic, people
  and 5x darkening, and falls to 0.1..0.4 of it under a 15-pixel Gaussian blur. (Dividing
  by the grey *variance* instead drops to 0.25 when a large car fills a plain top-down view);
* view similarity: the share of the reference view's *stable* edges (edges present in most
  frames while learning, so passers-by are not part of it) that the current picture still
  has within a pixel, corrected for the share a random picture would hit by chance. People
  and cars hide a few edges; a turned camera loses nearly all of them.

States (the worker adds ``video_lost`` itself when frames stop coming; that is not a
picture property and is not detected here):

* ``covered``: dark and almost without detail (a hand, a cap, paint, a bag), or a picture
  with no detail at all at any brightness (uniform paint, a dead encoder's grey frame);
* ``blinded``: saturated bright with little detail (a torch, a laser, white spray);
* ``defocused``: sharpness below ``defocus_ratio`` of the learned baseline while the
  picture is otherwise usable;
* ``moved``: the view no longer matches the learned reference view. Not judged while the
  picture is covered, blinded or defocused (those lose edges too). After ``relearn_s`` of
  ``moved`` the new view is taken as the reference: an installer turned the camera on
  purpose, and an alarm that never ends helps no one (the event has been raised by then).

The baseline sharpness and the reference view are learned over the first ``learn_s``
seconds of usable pictures, then follow slow changes (shadows, a parked car) only while
nothing is wrong, so a tampering does not teach itself in. A state is reported once its
condition has held for ``hold_s`` seconds, and clears after the condition has been gone
for ``CLEAR_S``; each condition also has a looser threshold to leave than to enter, so one
odd frame neither raises nor drops an alarm. Limits: a view with few, long, straight
edges (parking-lot lines seen from above) can hide a move along those lines.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

STATES = ("covered", "blinded", "defocused", "moved")
WIDTH = 160  # analysis width, pixels
CLEAR_S = 1.0  # a held state ends after its condition has been gone this long
EDGE_WINDOW = 31  # pixels (of 160): the neighbourhood an edge must stand out from
MIN_EDGE = 2  # gradients weaker than this (Sobel/4 grey units) are flat noise, never edges
BASELINE_TAU_S = 300.0  # how slowly the sharpness baseline follows the scene after learning
REFERENCE_TAU_S = 60.0  # how slowly the reference view takes in lasting changes
_KERNEL = np.ones((3, 3), np.uint8)


def small_grey(bgr: np.ndarray, width: int = WIDTH) -> np.ndarray:
    """A ``width``-pixel-wide grey copy, area-averaged (no aliasing: sharpness stays honest)."""
    h, w = bgr.shape[:2]
    grey = bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if w <= width:
        return grey
    return cv2.resize(grey, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def edge_map(grey: np.ndarray) -> np.ndarray:
    """1 where the gradient is at least twice its neighbourhood's average, else 0.

    Relative to the neighbourhood, not to the whole frame: a big car entering a plain view
    must not push the road markings out of "the frame's strongest edges", and a darker
    picture keeps its edges.
    """
    g = cv2.GaussianBlur(grey, (3, 3), 0)
    mag = cv2.add(cv2.convertScaleAbs(cv2.Sobel(g, cv2.CV_16S, 1, 0), alpha=0.25),
                  cv2.convertScaleAbs(cv2.Sobel(g, cv2.CV_16S, 0, 1), alpha=0.25))
    local = cv2.blur(mag, (EDGE_WINDOW, EDGE_WINDOW))
    return ((mag > cv2.add(local, local)) & (mag > MIN_EDGE)).astype(np.uint8)


def view_similarity(stable: np.ndarray, edges: np.ndarray) -> float:
    """Share of the reference's stable edges found again (±1 px), chance-corrected: 1 same view, ~0 another."""
    n = np.count_nonzero(stable)
    if n < 20:
        return 1.0  # a featureless reference cannot tell; say nothing rather than cry wolf
    near = cv2.dilate(edges, _KERNEL)
    hit = np.count_nonzero(near[stable]) / n
    chance = np.count_nonzero(near) / near.size
    return (hit - chance) / max(1e-6, 1.0 - chance)


class _Hold:
    """A condition that must hold ``hold_s`` to raise and be gone ``CLEAR_S`` to drop."""

    def __init__(self, hold_s: float):
        self.hold_s = hold_s
        self.since: float | None = None  # start of the current run of the condition
        self.gone: float | None = None  # when the condition stopped, while active
        self.active = False

    @property
    def engaged(self) -> bool:
        """Pending or active: judge with the looser leave threshold."""
        return self.since is not None

    def update(self, raw: bool, t: float) -> bool:
        if raw:
            self.gone = None
            if self.since is None:
                self.since = t
            if t - self.since >= self.hold_s:
                self.active = True
        elif self.active:
            if self.gone is None:
                self.gone = t
            if t - self.gone >= CLEAR_S:
                self.active, self.since, self.gone = False, None, None
        else:
            self.since = None
        return self.active


class TamperDetector:
    """Covered / blinded / defocused / moved, judged on a 160-pixel grey copy of each frame."""

    def __init__(self, covered_brightness: float = 25.0, blinded_brightness: float = 235.0,
                 min_detail: float = 12.0, defocus_ratio: float = 0.35, moved_threshold: float = 0.4,
                 hold_s: float = 3.0, learn_s: float = 10.0, relearn_s: float = 60.0):
        self.covered_brightness = covered_brightness
        self.blinded_brightness = blinded_brightness
        self.min_detail = min_detail  # grey standard deviation below which a picture "shows nothing"
        self.defocus_ratio = defocus_ratio
        self.moved_threshold = moved_threshold  # view similarity (see view_similarity) below which the view changed
        self.hold_s = hold_s
        self.learn_s = learn_s
        self.relearn_s = relearn_s
        self.reset()

    def reset(self) -> None:
        """Forget everything learned (a new stream or a new picture size)."""
        self._holds = {s: _Hold(self.hold_s) for s in STATES}
        self._size: tuple[int, int] | None = None
        self._last_t: float | None = None
        self._relearn()
        self.measures: dict[str, float] = {}  # the last frame's figures, for diagnostics

    def _relearn(self) -> None:
        self._learn_start: float | None = None
        self._samples: list[float] = []
        self._edge_sum: np.ndarray | None = None
        self._occupancy: np.ndarray | None = None  # per pixel: how often it is an edge of the view
        self._baseline: float | None = None

    def steered(self) -> None:
        """A PTZ command turned the camera on purpose: the view it shows next is learned
        anew and no ``moved`` is raised for it (a view changing with no command is the
        turned camera the alarm is for)."""
        self._relearn()
        self._holds["moved"] = _Hold(self.hold_s)

    @property
    def learned(self) -> bool:
        return self._baseline is not None

    def update(self, bgr: np.ndarray, t: float) -> frozenset[str]:
        """Judge one frame at stream time ``t`` (seconds); the states that have held ``hold_s``.

        A new picture size or a clock going backwards (another stream) starts learning anew.
        """
        h, w = bgr.shape[:2]
        if self._size != (w, h) or (self._last_t is not None and t < self._last_t):
            self.reset()
            self._size = (w, h)
        dt = 0.0 if self._last_t is None else t - self._last_t
        self._last_t = t
        grey = small_grey(bgr)
        mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(grey))
        lap = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_32F))[1][0, 0]
        sharp = float(lap * lap) / (mean * mean + 25.0)
        self.measures = {"brightness": mean, "detail": std, "sharpness": sharp}
        holds = self._holds

        # Once engaged, a state is left only well past its entry threshold (hysteresis).
        slack = 5.0 if holds["blinded"].engaged else 0.0
        detail = self.min_detail * (1.5 if holds["blinded"].engaged else 1.0)
        blinded = mean > self.blinded_brightness - slack and std < detail
        slack = 5.0 if holds["covered"].engaged else 0.0
        detail = self.min_detail * (1.5 if holds["covered"].engaged else 1.0)
        covered = not blinded and ((mean < self.covered_brightness + slack and std < detail) or std < detail / 3)
        usable = not (covered or blinded)

        defocused = moved = False
        edges = edge_map(grey) if usable else None
        if usable and not self.learned:
            self._learn(t, sharp, edges)
        elif usable:
            ratio = self.defocus_ratio * (1.25 if holds["defocused"].engaged else 1.0)
            defocused = sharp < ratio * self._baseline
            similarity = view_similarity(self._occupancy > 0.5, edges)
            self.measures.update(baseline=self._baseline, similarity=similarity)
            if not defocused:
                limit = self.moved_threshold + (0.1 if holds["moved"].engaged else 0.0)
                moved = similarity < limit

        raw = {"covered": covered, "blinded": blinded, "defocused": defocused, "moved": moved}
        active = frozenset(s for s in STATES if holds[s].update(raw[s], t))
        if self.learned and usable and not any(raw.values()) and not active:
            self._follow(dt, sharp, edges)
        if "moved" in active and t - holds["moved"].since >= self.hold_s + self.relearn_s:
            self._relearn()  # the camera was turned on purpose: this is the view now
            holds["moved"] = _Hold(self.hold_s)
            active -= {"moved"}
        return active

    def _learn(self, t: float, sharp: float, edges: np.ndarray) -> None:
        if self._learn_start is None:
            self._learn_start = t
        self._samples.append(sharp)
        self._edge_sum = edges.astype(np.float32) if self._edge_sum is None else self._edge_sum + edges
        if t - self._learn_start >= self.learn_s and len(self._samples) >= 3:
            self._baseline = float(np.median(self._samples))
            self._occupancy = self._edge_sum / len(self._samples)
            self._samples, self._edge_sum = [], None

    def _follow(self, dt: float, sharp: float, edges: np.ndarray) -> None:
        """Drift the baseline and reference view towards the present (minutes, not seconds)."""
        if dt <= 0:
            return
        self._baseline += (1 - math.exp(-dt / BASELINE_TAU_S)) * (sharp - self._baseline)
        cv2.accumulateWeighted(edges, self._occupancy, 1 - math.exp(-dt / REFERENCE_TAU_S))
