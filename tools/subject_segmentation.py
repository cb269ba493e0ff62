"""Finding the subject (the body that moves) in every frame of a clip, from pixels alone.

Two cues, one clean-up:

- **colour** (default): a colour model of the background is learnt from the left and right
  border strips of the whole clip (a camera that follows the subject keeps it near the centre,
  so the borders are background). A pixel is subject when its colour is at least
  ``1 / colour_ratio`` times rarer in the borders than in the clip as a whole. On a MuJoCo render
  the orange/brown/pink bodies never appear in the grey sky and black/white floor, so the
  mask is clean; on real footage it works when the subject's clothing or fur differs in colour
  from its surroundings.
- **motion**: the camera's pan (tracked corners) is compensated and each frame is compared
  with the median of pan-aligned frames around it: what differs is the subject. Used
  when the colour cue finds no plausible subject (``method="auto"``), or on request.
- **clean-up**: the largest connected region is the subject; smaller regions near it are kept
  (a limb cut off by a thin joint), far ones are dropped.

Known limits: a subject whose colours also fill the border strips (a person in grey on grey
concrete) defeats the colour cue; a subject that stands still in front of a static camera
defeats the motion cue; several people in frame become one subject only when they touch.
A crop box (``video_frames.CropBox``) helps when the subject is small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

SegmentationMethod = Literal["auto", "colour", "motion"]


@dataclass(frozen=True)
class SegmentationSettings:
    """How the subject is told from the background; pass the same settings for clips you compare."""

    method: SegmentationMethod = "auto"
    """``auto``: colour, falling back to motion when colour finds no plausible subject."""
    border: float = 0.12
    """Width of each of the left and right strips taken as background, fraction of frame width."""
    colour_ratio: float = 0.25
    """A colour is subject when (its share of border pixels) / (its share of all pixels) is below
    this: 0.25 means at least four times rarer in the borders than overall."""
    min_area: float = 0.0005
    """Smallest plausible subject, fraction of the frame's pixels."""
    max_area: float = 0.5
    """Largest plausible subject, fraction of the frame's pixels."""
    motion_threshold: float = 4.0
    """Motion cue: a pixel is subject when it differs from the aligned background by more than
    this many times the clip's median difference (the noise level)."""


@dataclass
class Segmentation:
    """Per-frame subject masks and which cue made them."""

    masks: np.ndarray
    """bool (frames, height, width): True on the subject."""
    method: str
    """``colour`` or ``motion``."""
    coverage: float
    """Fraction of frames with a plausible subject (area within [min_area, max_area])."""


def segment_subject(frames: Sequence[np.ndarray],
                    settings: SegmentationSettings | None = None) -> Segmentation:
    """Subject masks for RGB frames of one clip (all the same size)."""
    settings = settings or SegmentationSettings()
    if not frames:
        raise ValueError("no frames to segment")
    candidates = []
    if settings.method in ("auto", "colour"):
        masks = colour_masks(frames, settings)
        candidates.append(Segmentation(masks, "colour", _coverage(masks, settings)))
        if settings.method == "colour" or candidates[0].coverage >= 0.6:
            return candidates[0]
    masks = motion_masks(frames, settings)
    candidates.append(Segmentation(masks, "motion", _coverage(masks, settings)))
    return max(candidates, key=lambda s: s.coverage)


def _coverage(masks: np.ndarray, settings: SegmentationSettings) -> float:
    area = masks.reshape(len(masks), -1).mean(axis=1)
    return float(np.mean((area >= settings.min_area) & (area <= settings.max_area)))


# -- colour cue ---------------------------------------------------------------------------------
_L_BINS, _AB_BINS = 8, 32


def _quantise(frame: np.ndarray) -> np.ndarray:
    """Lab colour bin of every pixel: 8 lightness x 32 x 32 chroma bins."""
    lab = np.asarray(cv2.cvtColor(frame, cv2.COLOR_RGB2Lab), dtype=np.uint8)
    q = (lab[..., 0] >> 5).astype(np.int32) * (_AB_BINS * _AB_BINS)
    q += (lab[..., 1] >> 3).astype(np.int32) * _AB_BINS
    q += lab[..., 2] >> 3
    return q


def _smoothed_histogram(bins: np.ndarray) -> np.ndarray:
    """Normalised colour histogram, blurred over neighbouring bins so that shades the clip
    happened not to show still count as seen."""
    hist = np.bincount(bins.ravel(), minlength=_L_BINS * _AB_BINS * _AB_BINS).astype(np.float32)
    cube = hist.reshape(_L_BINS, _AB_BINS, _AB_BINS)
    cube = np.stack([cv2.GaussianBlur(s, (3, 3), 0.8) for s in cube])
    cube = 0.5 * cube + 0.25 * (np.roll(cube, 1, axis=0) + np.roll(cube, -1, axis=0))
    total = cube.sum()
    return (cube / total).ravel() if total > 0 else cube.ravel()


def colour_lookup(frames: Sequence[np.ndarray], settings: SegmentationSettings) -> np.ndarray:
    """Per colour bin: True when the colour belongs to the subject (see module docstring)."""
    step = max(1, len(frames) // 60)
    sample = np.stack([_quantise(f) for f in frames[::step]])
    w = sample.shape[2]
    bw = max(1, int(round(settings.border * w)))
    border = np.concatenate([sample[:, :, :bw].ravel(), sample[:, :, w - bw:].ravel()])
    p_border = _smoothed_histogram(border)
    p_all = _smoothed_histogram(sample)
    seen = p_all > 1e-6
    return seen & (p_border < settings.colour_ratio * p_all)


def colour_lookup_masks(lookup: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Raw (uncleaned) subject masks of RGB frames (n, H, W, 3) from a :func:`colour_lookup`
    learnt on another clip: how a reward model applies one clip's colour model to another's."""
    return np.stack([lookup[_quantise(frame)] for frame in frames])


def colour_masks(frames: Sequence[np.ndarray], settings: SegmentationSettings) -> np.ndarray:
    """Masks from the background colour model, cleaned."""
    lookup = colour_lookup(frames, settings)
    kernel = np.ones((3, 3), np.uint8)
    out = np.zeros((len(frames), *frames[0].shape[:2]), dtype=bool)
    min_pixels = settings.min_area * frames[0].shape[0] * frames[0].shape[1]
    for i, frame in enumerate(frames):
        raw = lookup[_quantise(frame)].astype(np.uint8)
        raw = cv2.morphologyEx(raw, cv2.MORPH_CLOSE, kernel)
        out[i] = clean_mask(raw, min_pixels)
    return out


# -- motion cue ---------------------------------------------------------------------------------
def camera_shift(prev_gray: np.ndarray, gray: np.ndarray, region: np.ndarray | None = None,
                 prior: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """Median image motion (dx, dy) in pixels of corners inside ``region`` (uint8, nonzero =
    use; None = everywhere) from ``prev_gray`` to ``gray``; NaN when fewer than 8 track.

    Shi-Tomasi corners are tracked with pyramidal Lucas-Kanade starting from ``prior`` (the
    last motion: keeps a periodic floor from aliasing) and kept when tracking them back lands
    within half a pixel of where they started. The median ignores a subject that covers less
    than half of the corners; textureless areas (a plain sky) have no corners and no say.
    """
    tracked = tracked_corners(prev_gray, gray, region, prior)
    if tracked is None:
        return float("nan"), float("nan")
    motion = tracked[1]
    return float(np.median(motion[:, 0])), float(np.median(motion[:, 1]))


def tracked_corners(prev_gray: np.ndarray, gray: np.ndarray, region: np.ndarray | None = None,
                    prior: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray] | None:
    """(positions in ``prev_gray``, motions), each (n, 2) in pixels (x, y), of the corners inside
    ``region`` that track reliably (see :func:`camera_shift`); None when fewer than 8 do."""
    rows = np.nonzero(region.any(axis=1))[0] if region is not None else np.array([0, gray.shape[0] - 1])
    if rows.size == 0:
        return None
    r0, r1 = max(0, rows[0] - 4), min(gray.shape[0], rows[-1] + 5)
    corners = cv2.goodFeaturesToTrack(prev_gray[r0:r1], maxCorners=120, qualityLevel=0.02,
                                      minDistance=4, blockSize=5,
                                      mask=None if region is None else region[r0:r1])
    if corners is None or len(corners) < 8:
        return None
    start = (corners.reshape(-1, 2) + (0.0, r0)).astype(np.float32)
    guess = start + np.asarray(prior, dtype=np.float32)
    end, ok = _track(prev_gray, gray, start, guess)
    back, ok_back = _track(gray, prev_gray, end, start)
    good = (ok.ravel() == 1) & (ok_back.ravel() == 1) & (np.linalg.norm(back - start, axis=1) < 0.5)
    if good.sum() < 8:
        return None
    return start[good], end[good] - start[good]


def _track(prev_gray: np.ndarray, gray: np.ndarray, points: np.ndarray,
           guess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pyramidal Lucas-Kanade from ``points`` in ``prev_gray`` to ``gray``, starting at ``guess``:
    (new points, 1 where tracked)."""
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)
    end, ok, _ = cv2.calcOpticalFlowPyrLK(prev_gray, gray, points, guess.copy(), None, None,
                                          (15, 15), 2, criteria, cv2.OPTFLOW_USE_INITIAL_FLOW)
    return np.asarray(end), np.asarray(ok)


def motion_masks(frames: Sequence[np.ndarray], settings: SegmentationSettings) -> np.ndarray:
    """Masks of what differs from a pan-compensated background, cleaned.

    The camera's pan is followed by tracking corners between consecutive frames. For every
    frame, eight others up to a fifth of the clip away are shifted onto it and their median is
    the background there: the subject, which moves against the background (a still camera) or
    stays put while the background slides (a following camera), drops out of the median.
    """
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    n, (h, w) = len(grays), grays[0].shape
    steps = np.zeros((n, 2))
    for i in range(1, n):
        steps[i] = camera_shift(grays[i - 1], grays[i], prior=tuple(steps[i - 1]))
        if not np.isfinite(steps[i]).all():
            steps[i] = steps[i - 1]
    pos = np.cumsum(steps, axis=0)  # where the background has moved to, pixels
    # blurred copies: a sub-pixel misalignment of sharp texture must not look like a subject
    smooth = [cv2.GaussianBlur(g.astype(np.float32), (0, 0), 1.5) for g in grays]
    spread = max(1, n // 40)
    offsets = [k * spread * sign for k in range(2, 17, 2) for sign in (-1, 1)]
    diffs = np.zeros((n, h, w), np.float32)
    valid = np.zeros((n, h, w), bool)
    for i in range(n):
        # the eight nearest of the spaced-out frames (one-sided near the ends of the clip)
        others = [j for j in (i + o for o in offsets) if 0 <= j < n][:8] or [max(0, i - 1)]
        stack, seen = [], np.zeros((h, w), np.int32)
        for j in others:
            dx, dy = pos[i] - pos[j]
            warp = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
            stack.append(cv2.warpAffine(smooth[j], warp, (w, h), borderMode=cv2.BORDER_REPLICATE))
            inside = np.zeros((h, w), np.uint8)
            x0, y0 = int(np.ceil(max(0, dx))), int(np.ceil(max(0, dy)))
            x1, y1 = int(np.floor(min(w, w + dx))), int(np.floor(min(h, h + dy)))
            inside[y0:y1, x0:x1] = 1
            seen += inside
        background = np.median(np.stack(stack), axis=0)
        diffs[i] = cv2.GaussianBlur(np.abs(smooth[i] - background), (5, 5), 0)
        valid[i] = seen >= max(1, len(others) // 2)
    noise = max(2.0, float(np.median(diffs[valid]))) if valid.any() else 2.0
    size = max(3, int(round(0.03 * h)) | 1)
    close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    min_pixels = settings.min_area * h * w
    out = np.zeros((n, h, w), dtype=bool)
    for i in range(n):
        raw = ((diffs[i] > settings.motion_threshold * noise) & valid[i]).astype(np.uint8)
        raw = cv2.morphologyEx(raw, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
        raw = cv2.morphologyEx(raw, cv2.MORPH_CLOSE, close)
        out[i] = clean_mask(_fill_holes(raw), min_pixels)
    return out


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed background (a textureless body only changes at its outline)."""
    h, w = mask.shape
    flood = np.pad(mask, 1).copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = flood[1:h + 1, 1:w + 1] == 0
    return mask | holes.astype(np.uint8)


# -- clean-up -----------------------------------------------------------------------------------
def clean_mask(mask: np.ndarray, min_pixels: float) -> np.ndarray:
    """Keep the largest region and any region of at least 2 % of its size lying within a third
    of its size of it; empty when the largest region is smaller than ``min_pixels``."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros(mask.shape, dtype=bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    main = int(np.argmax(areas)) + 1
    if stats[main, cv2.CC_STAT_AREA] < max(1.0, min_pixels):
        return np.zeros(mask.shape, dtype=bool)
    x, y, w, h = (stats[main, k] for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP,
                                           cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    reach = max(w, h) / 3.0
    keep = np.zeros(n, dtype=bool)
    keep[main] = True
    for k in range(1, n):
        if k == main or stats[k, cv2.CC_STAT_AREA] < 0.02 * stats[main, cv2.CC_STAT_AREA]:
            continue
        kx, ky, kw, kh = (stats[k, c] for c in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP,
                                                cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
        gap_x = max(0, max(kx - (x + w), x - (kx + kw)))
        gap_y = max(0, max(ky - (y + h), y - (ky + kh)))
        keep[k] = max(gap_x, gap_y) <= reach
    return keep[labels]
