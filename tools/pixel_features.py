"""Behaviour features from pixels: the same measurements for an expert video and a learner clip.

Nothing here reads simulator state: an internet video has none. Every feature is scale-free
(relative to the subject's size, per second, or a fraction) so a 320x240 MuJoCo render and
1080p footage can be compared; :data:`FEATURE_DEFINITIONS` writes each one down.

How it measures (see ``measure_features``):

1. frames are shrunk to ``analysis_height`` rows and thinned to at most ``max_fps``;
2. the subject is segmented in every frame (``subject_segmentation``);
3. the **body length** L is the 90th percentile over the clip of the subject's longest
   bounding-box side: the unit of every length and speed;
4. the **ground's image motion** between frames is the median motion of background corners
   tracked (Lucas-Kanade) in a band around the subject's lowest point: the floor at the
   subject's own depth, which a following camera makes flow past it. The subject's motion
   in the world is its image motion minus that;
5. motion in **depth** (toward or away from the camera) is read two ways that add up: a
   camera that follows the subject into the scene makes the floor near its feet expand
   (corners left of the subject move left, right of it move right) at the rate
   depth speed / camera distance, and a subject moving away from a fixed camera shrinks at
   that rate (the log of its size falls). The rate becomes body lengths per second through
   an assumed focal length of ``FOCAL_HEIGHTS`` frame heights (MuJoCo's 45-degree camera;
   phone cameras are close), so ``depth_speed`` and ``forward_speed`` share a unit;
   calibration (tools/calibration.py) replaces the assumption for simulator renders;
6. the **travel direction** is the angle of (across, depth) motion, and ``turning_rate`` how
   fast it rotates;
7. summaries over the clip become a :class:`PixelFeatures`.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

import cv2
import numpy as np

from vid2reward.tools.feature_definitions import (
    FEATURE_DEFINITIONS,
    STILL_OSCILLATION,
    FeatureDefinition,
)
from vid2reward.tools.subject_segmentation import (
    SegmentationSettings,
    segment_subject,
    tracked_corners,
)
from vid2reward.tools.video_frames import CropBox, prepare, probe_video, read_frames

__all__ = ["FEATURE_DEFINITIONS", "FeatureDefinition", "FeatureSettings", "GroundFlow",
           "PixelFeatures", "analysis_rate", "dominant_frequency", "features_from_video",
           "ground_motion", "measure_features"]

FOCAL_HEIGHTS = 1.2
"""Assumed focal length in frame heights (a 45-degree vertical field of view, MuJoCo's
default camera): turns a rate of depth change (1/s) into body lengths per second."""
TURN_MIN_SPEED = 0.1
"""Below this speed (body lengths/s) the travel direction is noise: no turning is read."""


@dataclass(frozen=True)
class FeatureSettings:
    """How features are measured; pass the same settings (bar ``forward``) for compared clips."""

    segmentation: SegmentationSettings = field(default_factory=SegmentationSettings)
    analysis_height: int = 180
    """Frames are shrunk to this many rows first (speed; features are scale-free)."""
    max_fps: float = 30.0
    """Frames are thinned to at most this rate."""
    forward: Literal["right", "left", "auto"] = "right"
    """Which image direction is forward: ``right`` for MuJoCo renders (the body moves left to
    right), ``left`` to mirror, ``auto`` = the direction the subject moved (internet clips)."""
    crop: CropBox | None = None
    """Only this part of each frame is measured (for a small subject)."""


@dataclass
class PixelFeatures:
    """Behaviour of the subject of one clip, from pixels (see :data:`FEATURE_DEFINITIONS`)."""

    forward_speed: float
    cadence_hz: float
    vertical_oscillation: float
    height_ratio: float
    height_ratio_std: float
    aspect_ratio: float
    tilt_deg: float
    flight_fraction: float | None
    motion_energy: float
    depth_speed: float
    """Mean speed away from the camera (negative = toward it), body lengths/s (see the module
    docstring, step 5)."""
    turning_rate: float
    """How fast the direction of travel rotates, rad/s, positive = counter-clockwise seen from
    above (turning left for a subject moving right)."""
    cadence_strength: float
    """Share of the vertical signal's power within 15 % of the cadence (0..1): near 1 = clearly
    periodic, low = the cadence is a guess."""
    subject_coverage: float
    """Fraction of frames where a subject was found."""
    ground_coverage: float
    """Fraction of frame pairs in which the ground's motion could be measured."""
    ground_visible: bool
    body_length_px: float
    """L in pixels of the analysed frames."""
    body_length_fraction: float
    """L as a fraction of the analysed frame height (how large the subject appears)."""
    mirrored: bool
    """True when x was mirrored so that forward is to the right (``forward`` left or auto)."""
    segmentation: str
    fps: float
    frames: int
    duration_s: float
    body_size_px: float = 0.0
    """The square root of the subject's median mask area, pixels of the analysed frames: a body
    size that, unlike L, hardly changes with pose (a body lying down covers about the area it
    covers standing), so pixel motion in its units compares across clips (calibration)."""
    series: dict[str, list[float | None]] = field(default_factory=dict)
    """Per analysed frame: t, height_ratio, aspect_ratio, tilt_deg, height_up (L, ground-relative),
    forward_velocity and depth_velocity (L/s, per frame pair, first = 0), travel_direction
    (rad, atan2(depth, forward) of the 0.5 s-smoothed motion; None while too slow), airborne
    (0/1, empty if no ground)."""

    def vector(self) -> dict[str, float | None]:
        """The comparable features, keyed as in :data:`FEATURE_DEFINITIONS`."""
        return {name: getattr(self, name) for name in FEATURE_DEFINITIONS}

    def to_dict(self, series: bool = True) -> dict:
        """JSON-ready dict (``series=False`` leaves out the per-frame series)."""
        out = asdict(self)
        if not series:
            out.pop("series")
        return out

    def to_json(self, series: bool = True) -> str:
        return json.dumps(self.to_dict(series), indent=2)


# -- measurement --------------------------------------------------------------------------------
def measure_features(frames: Sequence[np.ndarray], fps: float,
                     settings: FeatureSettings | None = None) -> PixelFeatures:
    """Pixel features of one clip held in memory (RGB uint8 frames at ``fps``)."""
    settings = settings or FeatureSettings()
    if len(frames) < 2 or fps <= 0:
        raise ValueError("need at least two frames and a positive fps")
    step = round(fps / analysis_rate(fps, settings.max_fps))
    rgb = [prepare(np.asarray(f), settings.analysis_height, settings.crop) for f in frames[::step]]
    return _measure(rgb, fps / step, settings)


def features_from_video(path: str | Path, settings: FeatureSettings | None = None, *,
                        start: float = 0.0, end: float | None = None) -> PixelFeatures:
    """Pixel features of a video file (decoded straight to the analysis size)."""
    settings = settings or FeatureSettings()
    clip = read_frames(path, fps=analysis_rate(probe_video(path).fps, settings.max_fps),
                       max_height=settings.analysis_height, crop=settings.crop,
                       start=start, end=end)
    if len(clip.frames) < 2:
        raise ValueError("the clip has fewer than two frames")
    return _measure(clip.frames, clip.fps, settings)


def analysis_rate(fps: float, max_fps: float) -> float:
    """The rate frames are analysed at: ``fps`` divided by a whole number, at most about
    ``max_fps`` (regular thinning; 31.25 fps stays 31.25, 60 becomes 30).

    Keep clips of fast movers at 25 fps or more: between two frames a following camera must
    move the floor by less than half its texture period (the MuJoCo checkerboard aliases).
    """
    return fps / max(1, round(fps / max_fps))


@dataclass
class _Geometry:
    """Per-frame measurements of the subject mask (NaN where no subject)."""

    area: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    left: np.ndarray
    right: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    tilt: np.ndarray


def _geometry(masks: np.ndarray, min_pixels: float) -> _Geometry:
    n = len(masks)
    g = _Geometry(*(np.full(n, np.nan) for _ in range(8)))
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        if ys.size < max(1.0, min_pixels):
            continue
        g.area[i] = ys.size
        g.top[i], g.bottom[i] = ys.min(), ys.max() + 1
        g.left[i], g.right[i] = xs.min(), xs.max() + 1
        g.cx[i], g.cy[i] = xs.mean(), ys.mean()
        h = g.bottom[i] - g.top[i]
        rel = (ys - g.top[i]) / max(h, 1.0)
        upper, middle = rel < 0.15, (rel >= 0.15) & (rel < 0.3)
        if upper.any() and middle.any():
            dx = xs[upper].mean() - xs[middle].mean()
            dy = ys[middle].mean() - ys[upper].mean()
            g.tilt[i] = np.degrees(np.arctan2(dx, max(dy, 1e-6)))
    return g


class GroundFlow(NamedTuple):
    """Image motion of the ground near the subject's feet between two frames (NaN: unmeasured)."""

    dx: float
    """Median horizontal motion, pixels."""
    dy: float
    """Median vertical motion, pixels."""
    expansion: float
    """Least-squares slope of horizontal motion against horizontal position relative to
    ``centre_x``, per frame: > 0 when the floor spreads apart (the camera moves into the scene)."""


def ground_motion(prev_gray: np.ndarray, gray: np.ndarray, subject: np.ndarray | None,
                  bottom: float, length: float, prior: tuple[float, float],
                  centre_x: float | None = None) -> GroundFlow:
    """Image motion of the background near the subject's feet, from ``prev_gray`` to
    ``gray`` (corners tracked as in ``subject_segmentation.camera_shift``).

    The band spans from 5 % of L above ``bottom`` (the subject's lowest point, or the ground
    line) to 15 % of L (at least 8 % of the frame) below it, the subject itself left out;
    with no subject or no floor in view, the whole background is used. ``centre_x`` (default
    the frame's centre) is where the expansion is measured from.
    """
    h, w = gray.shape
    region = np.zeros((h, w), np.uint8)
    if subject is not None and np.isfinite(bottom) and bottom < h - 2:
        region[int(max(0, bottom - 0.05 * length)):int(min(h, bottom + max(0.15 * length, 0.08 * h)))] = 255
    else:
        region[:] = 255
    if subject is not None:
        region[cv2.dilate(subject.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0] = 0
    tracked = tracked_corners(prev_gray, gray, region, prior)
    if tracked is None:
        return GroundFlow(math.nan, math.nan, math.nan)
    where, motion = tracked
    dx, dy = float(np.median(motion[:, 0])), float(np.median(motion[:, 1]))
    offset = where[:, 0] - (w / 2 if centre_x is None or not np.isfinite(centre_x) else centre_x)
    spread = float(np.sum(offset * offset))
    # a band too narrow to tell expansion from translation says nothing about depth
    expansion = (float(np.sum(offset * (motion[:, 0] - dx)) / spread)
                 if spread > len(offset) * (0.1 * w) ** 2 else math.nan)
    return GroundFlow(dx, dy, expansion)


def _measure(rgb: list[np.ndarray], fps: float, settings: FeatureSettings) -> PixelFeatures:
    n = len(rgb)
    h = rgb[0].shape[0]
    seg_settings = settings.segmentation
    seg = segment_subject(rgb, seg_settings)
    min_pixels = seg_settings.min_area * rgb[0].shape[0] * rgb[0].shape[1]
    g = _geometry(seg.masks, min_pixels)
    found = np.isfinite(g.area)
    box_h, box_w = g.bottom - g.top, g.right - g.left
    length = float(np.nanpercentile(np.maximum(box_h, box_w), 90)) if found.any() else float(h)

    # ground motion between consecutive frames, measured twice: first in a band at the
    # subject's lowest point, then at the ground line that pass reveals (in flight the lowest
    # point is above the ground, and the floor seen there lies behind the subject)
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb]
    gx, gy, gexp = _ground_motions(grays, seg.masks, found, g.bottom, g.cx, length)
    ground_row = g.bottom.copy()
    if np.isfinite(gy).sum() > n // 2:
        cam_y = np.cumsum(np.where(np.isfinite(gy), gy, 0.0))
        ground_row = _ground_line(_fill(g.bottom) - cam_y, fps) + cam_y
        ground_row[~found] = np.nan
        gx, gy, gexp = _ground_motions(grays, seg.masks, found, ground_row, g.cx, length)
    ground_coverage = float(np.isfinite(gx[1:]).mean())
    gx_f, gy_f = _fill(gx), _fill(gy)
    gx_f[0] = gy_f[0] = 0.0
    cam_y = np.cumsum(gy_f)  # where the ground has moved to, image rows

    # forward velocity: the subject's image motion minus the ground's, per frame pair
    cx = _fill(g.cx)
    vel = np.zeros(n)
    vel[1:] = (np.diff(cx) - gx_f[1:]) * fps / length
    pairs = found[1:] & found[:-1] & np.isfinite(gx[1:])
    forward = float(np.mean(vel[1:][pairs])) if pairs.any() else 0.0

    mirror = settings.forward == "left" or (settings.forward == "auto" and forward < 0)
    sign = -1.0 if mirror else 1.0
    # a camera that follows the subject moves the floor across the image or into the scene
    follows = bool(np.isfinite(gx).any() and (np.nanmedian(np.hypot(gx, gy)) > 0.1
                                               or np.nanmedian(np.abs(gexp)) * fps > 0.02))
    depth_vel = _depth_velocity(gexp, g.area, found, fps, FOCAL_HEIGHTS * h / length, follows)
    depth_pairs = pairs & np.isfinite(depth_vel[1:])
    depth = float(np.mean(depth_vel[1:][depth_pairs])) if depth_pairs.any() else 0.0
    direction, turning = _travel_direction(sign * vel, depth_vel, fps)

    # vertical position relative to the ground, up positive, in body lengths
    height_up = (cam_y - _fill(g.cy)) / length
    height_up_detrended = _detrend(height_up, fps)
    oscillation = float(np.std(height_up_detrended[found])) if found.sum() > 2 else 0.0
    cadence, strength = dominant_frequency(height_up_detrended, fps)
    if oscillation < STILL_OSCILLATION:  # no bobbing to speak of: the peak would be noise
        cadence, strength = 0.0, 0.0

    # flight: lowest point above the ground line
    ground_visible = bool(found.any() and np.nanmean(g.bottom[found] < h - 2) >= 0.8
                          and ground_coverage >= 0.5)
    airborne = np.zeros(0)
    flight: float | None = None
    if ground_visible:
        foot = _fill(g.bottom) - cam_y  # image rows relative to the ground (down = larger)
        airborne = ((_ground_line(foot, fps) - foot) > 0.05 * length).astype(float)
        flight = float(airborne[found].mean())

    height_ratio = box_h / length
    aspect = box_w / np.maximum(box_h, 1.0)
    series = {
        "t": np.arange(n) / fps, "height_ratio": height_ratio, "aspect_ratio": aspect,
        "tilt_deg": sign * g.tilt, "height_up": height_up_detrended,
        "forward_velocity": sign * vel, "depth_velocity": depth_vel,
        "travel_direction": direction, "airborne": airborne,
    }
    return PixelFeatures(
        forward_speed=sign * forward,
        cadence_hz=cadence,
        vertical_oscillation=oscillation,
        height_ratio=_nanmean(height_ratio),
        height_ratio_std=float(np.nanstd(height_ratio)) if found.any() else 0.0,
        aspect_ratio=float(np.nanmedian(aspect)) if found.any() else 0.0,
        tilt_deg=sign * _nanmean(g.tilt),
        flight_fraction=flight,
        motion_energy=_motion_energy(seg.masks, found, g, fps, length),
        depth_speed=depth,
        turning_rate=turning,
        cadence_strength=strength,
        subject_coverage=float(found.mean()),
        ground_coverage=ground_coverage,
        ground_visible=ground_visible,
        body_length_px=length,
        body_length_fraction=length / h,
        mirrored=mirror,
        segmentation=seg.method,
        fps=float(fps), frames=n, duration_s=n / fps,
        body_size_px=float(np.sqrt(np.nanmedian(g.area))) if found.any() else 0.0,
        series={k: [round(float(x), 4) if np.isfinite(x) else None for x in v]
                for k, v in series.items()},
    )


def _ground_motions(grays: list[np.ndarray], masks: np.ndarray, found: np.ndarray,
                    rows: np.ndarray, centres: np.ndarray,
                    length: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ground motion (dx, dy, expansion) into every frame from the one before (NaN for frame
    0 and where unmeasured), the band anchored at ``rows`` of the earlier frame and the
    expansion measured from the subject's centroid column ``centres``."""
    n = len(grays)
    gx, gy, gexp = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    prior = (0.0, 0.0)
    for i in range(1, n):
        subject = masks[i - 1] if found[i - 1] else None
        gx[i], gy[i], gexp[i] = ground_motion(grays[i - 1], grays[i], subject, rows[i - 1],
                                              length, prior, centres[i - 1])
        if np.isfinite(gx[i]):
            prior = (gx[i], gy[i])
    return gx, gy, gexp


def _depth_velocity(expansion: np.ndarray, area: np.ndarray, found: np.ndarray, fps: float,
                    distance_in_lengths: float, follows: bool) -> np.ndarray:
    """Speed away from the camera per frame pair, body lengths/s (first = 0; NaN unmeasured).

    The rate of depth change relative to the camera's distance is the floor's expansion (a
    camera following the subject into the scene) minus the rate the subject's size grows (a
    subject walking away from a still camera shrinks); times the distance in body lengths it
    is a speed. The size term counts only when the camera does not follow the subject
    (``follows``): there the size changes with the pose, not the distance.
    """
    n = expansion.size
    rate = np.where(np.isfinite(expansion), expansion, 0.0)
    size = np.log(np.sqrt(np.where(found, area, np.nan)))
    growth = np.zeros(n)
    growth[1:] = np.diff(_smooth(_fill(size), 0.25 * fps))
    if not follows:
        rate = rate - growth
    out = rate * fps * distance_in_lengths
    out[0] = 0.0
    out[1:][~(found[1:] & found[:-1])] = np.nan
    return out


def _travel_direction(forward: np.ndarray, depth: np.ndarray,
                      fps: float) -> tuple[np.ndarray, float]:
    """(direction of travel per frame in rad, NaN while slower than ``TURN_MIN_SPEED``; the
    turning rate in rad/s): the angle of the 0.5 s-smoothed (forward, depth) motion, and the
    slope of its unwrapped value over time on the moving frames, the first and last half
    second left out (smoothing flattens the angle at the clip's ends).

    A full turn reads as 2 pi whatever the depth's unit, so the rate of a circling subject
    does not depend on the focal-length assumption; within a turn the angle does.
    """
    sigma = 0.5 * fps
    fx, fd = _smooth(_fill(forward), sigma), _smooth(_fill(depth), sigma)
    angle = np.unwrap(np.arctan2(fd, fx))
    moving = np.hypot(fx, fd) > TURN_MIN_SPEED
    direction = np.where(moving, (angle + np.pi) % (2 * np.pi) - np.pi, np.nan)
    edge = int(round(sigma))
    inner = moving.copy()
    if inner.size > 4 * edge:
        inner[:edge], inner[inner.size - edge:] = False, False
    if forward.size < 8 or inner.sum() < max(8, 0.4 * inner.size):
        return direction, 0.0
    t = np.arange(angle.size) / fps
    return direction, float(np.polyfit(t[inner], angle[inner], 1)[0])


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing with ``sigma`` samples (edges reflected); ``x`` as it is for sigma < 1."""
    if sigma < 1 or x.size < 3:
        return x
    half = min(int(3 * sigma), x.size - 1)
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    return np.convolve(np.pad(x, half, mode="reflect"), kernel / kernel.sum(), mode="valid")


def _ground_line(foot: np.ndarray, fps: float) -> np.ndarray:
    """The ground under a subject whose lowest point is at ``foot`` (ground-relative rows, down
    = larger): the 90th percentile of ``foot`` within +-0.75 s of each frame."""
    half = max(1, int(round(0.75 * fps)))
    return np.array([np.percentile(foot[max(0, i - half):i + half + 1], 90)
                     for i in range(foot.size)])


def _nanmean(x: np.ndarray) -> float:
    return float(np.nanmean(x)) if np.isfinite(x).any() else 0.0


def _fill(x: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaNs (zeros when nothing is finite)."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    if not ok.any():
        return np.zeros_like(x)
    idx = np.arange(x.size)
    return np.interp(idx, idx[ok], x[ok])


def _detrend(x: np.ndarray, fps: float) -> np.ndarray:
    """Remove the linear trend and, for clips over 4 s, the slow drift that integrating the
    ground's motion accumulates: a Gaussian smoothing (sigma 1 s) is subtracted, which leaves
    0.5 Hz and faster untouched (gain > 0.99) and, unlike a moving average, boosts nothing."""
    t = np.arange(x.size)
    if x.size < 3:
        return x - x.mean()
    x = x - np.polyval(np.polyfit(t, x, 1), t)
    sigma = fps * 1.0
    if x.size > 4 * fps and sigma >= 1:
        half = int(3 * sigma)
        kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
        padded = np.pad(x, half, mode="reflect" if x.size > half else "edge")
        x = x - np.convolve(padded, kernel / kernel.sum(), mode="valid")
    return x


def dominant_frequency(x: np.ndarray, fps: float, min_hz: float = 0.3,
                       max_hz: float = 10.0) -> tuple[float, float]:
    """(frequency, strength) of the strongest oscillation in [min_hz, max_hz].

    Hann window, 8x zero padding and a parabolic peak fit give sub-bin precision; strength is
    the share of in-band power within 15 % of the peak. (0.0, 0.0) for a flat or short signal.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < 8 or np.std(x) < 1e-9:
        return 0.0, 0.0
    x = (x - x.mean()) * np.hanning(x.size)
    size = 8 * int(2 ** np.ceil(np.log2(x.size)))
    power = np.abs(np.fft.rfft(x, size)) ** 2
    freqs = np.fft.rfftfreq(size, 1.0 / fps)
    band = np.nonzero((freqs >= min_hz) & (freqs <= min(max_hz, fps / 2)))[0]
    if band.size < 3 or power[band].sum() <= 0:
        return 0.0, 0.0
    k = band[np.argmax(power[band])]
    peak = freqs[k]
    if band[0] < k < band[-1]:
        a, b, c = np.log(power[k - 1:k + 2] + 1e-30)
        denom = a - 2 * b + c
        if denom < 0:
            peak += 0.5 * (a - c) / denom * (freqs[1] - freqs[0])
    near = band[np.abs(freqs[band] - peak) <= 0.15 * peak]
    return float(peak), float(power[near].sum() / power[band].sum())


def _motion_energy(masks: np.ndarray, found: np.ndarray, g: _Geometry, fps: float,
                   length: float) -> float:
    """Mean outline speed relative to the centroid, body lengths per second."""
    kernel = np.ones((3, 3), np.uint8)
    speeds = []
    for i in range(1, len(masks)):
        if not (found[i] and found[i - 1]):
            continue
        dx, dy = int(round(g.cx[i] - g.cx[i - 1])), int(round(g.cy[i] - g.cy[i - 1]))
        prev = np.roll(masks[i - 1], (dy, dx), axis=(0, 1))
        changed = int(np.count_nonzero(prev ^ masks[i]))
        m = masks[i].astype(np.uint8)
        outline = max(1, int(np.count_nonzero(m - cv2.erode(m, kernel))))
        speeds.append(changed / outline)  # mean outline displacement, pixels per frame
    return float(np.mean(speeds) * fps / length) if speeds else 0.0


if __name__ == "__main__":  # python -m vid2reward.tools.pixel_features (--bench | CLIP)
    if len(sys.argv) > 1 and sys.argv[1] != "--bench":
        print(features_from_video(sys.argv[1]).to_json(series=False))
    else:
        from vid2reward.tools.synthetic_clips import bench_pixel_features

        print(json.dumps(bench_pixel_features(), indent=2))
