"""Pixels to physical units, fitted on the learner's own clips.

An expert video has no simulator state, so its pixel features come in scale-free units (body
lengths per second, fractions of the body length, degrees of image tilt). Every learner clip the
run renders has both: the pixels *and* the simulator state it came from. Fitting one against the
other on the learner clips gives the mapping pixel feature -> physical quantity for this body,
this camera and this renderer, which is then applied to the expert's pixel features: the
expert's speed in m/s, its torso height in m, its lean in rad, its cadence in Hz.

Pairs are taken per time window (``WINDOW_SECONDS``) of every clip, so one 8 s clip gives 16
points, and clips where the body falls or stands still add points near zero rather than nothing.
Nothing of the *expert's* state is ever read here: only the learner's.

Lengths are re-expressed in **body sizes** (``PixelFeatures.body_size_px``, the square root of
the silhouette's area) before fitting: the pixel features' unit L, the longer side of the
bounding box, changes with pose (a hopper lying flat is longer than one hopping upright), so a
metre is a different number of L in a falling learner's clip than in the expert's; the area
hardly changes, so a fit made on falling learners still reads an upright expert.

The fitted quantities (each with its form, its residual and the points it rests on):

========================  ======================  ==========================  =================
quantity                  pixel feature            simulator value            form
========================  ======================  ==========================  =================
forward_velocity (m/s)    forward_speed (L/s)      centre-of-mass velocity    y = a x
lateral_velocity (m/s)    depth_speed (L/s)        centre-of-mass y velocity  y = a x
torso_height (m)          height_ratio             torso_height               y = a x + b
torso_pitch (rad)         tilt_deg                 torso_pitch                y = a x + b
torso_height_std (m)      vertical_oscillation     std of torso_height        y = a x (per clip)
cadence_hz (Hz)           cadence_hz               cadence of torso_height     y = a x (per clip)
yaw_rate (rad/s)          turning_rate             mean yaw_rate               y = a x (per clip)
========================  ======================  ==========================  =================

A fit is used when it rests on enough points, explains enough of the variance (R²), for
speed, height and lean scatters less than a tolerance around its line (QuantitySpec.tolerance:
0.1 m/s, 5 cm, 0.05 rad), reads the expert within the learners' pixel range where it has an
intercept (``EXTRAPOLATION``), and, for the lean, the body stands upright (``EnvSpec.upright``).

A learner that never walked sideways or turned gives no points for those two; the probe clips
of a 3D body (``tools/direction_probe.py``: the body carried along known directions) do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vid2reward.sim.metrics import dominant_frequency

WINDOW_SECONDS = 0.5
"""Length of the time windows whose means are paired, for poses (height, lean)."""
SPEED_WINDOW_SECONDS = 2.0
"""Windows for speed are longer: within a hop or a stride the silhouette's centroid and the
body move out of phase, so half-second means of the two disagree while 2 s means agree.

Speed is paired with the whole body's centre of mass, which the silhouette's centroid follows,
not with the point the env calls forward (the Hopper's hip): over a steady gait both travel
equally far, but in a fall the hip swings ahead of the body, and a calibration fitted on falling
learners would read the expert too fast."""
PER_CLIP_MIN_SECONDS = 4.0
"""A clip shorter than this (a fall) gives no cadence or bob point: a rhythm needs cycles."""
MIN_POINTS = 6
"""A fit on fewer points is not used."""
MIN_CLIP_POINTS = 4
"""A per-clip fit (cadence, bob) on fewer clips is not used: two clips' cadences, each off by a
frequency bin, can tilt the slope by 20 %."""
MIN_R2 = 0.5
"""A fit explaining less of the simulator value's variance than this is not used."""
EXTRAPOLATION = 0.25
"""A line with an intercept reads the expert only within the learners' pixel range widened by
this fraction of it either side: two free parameters fitted on barely moving learners (1-2
degrees of tilt) once read a level HalfCheetah 80 degrees away as pitched by -1 rad. Lines
through the origin (speed) may reach further: zero pixels is zero speed, a point they know.
"""


@dataclass(frozen=True)
class QuantitySpec:
    """How one physical quantity is read from one pixel feature."""

    quantity: str
    """Name of the physical quantity (a state-view name)."""
    metric: str
    """The ``sim.metrics.BehaviourMetrics`` field of an episode it estimates (the truth)."""
    feature: str
    """The pixel feature (``FEATURE_DEFINITIONS``) it is read from."""
    unit: str
    intercept: bool
    """Fit y = a x + b (True) or y = a x (False: zero pixels means zero of the quantity)."""
    per_clip: bool = False
    """Paired once per clip (a clip-level summary like cadence), not per window."""
    same_unit: bool = False
    """Pixels measure it in its own unit (Hz): it is read as it is (the fit is only a check)."""
    window: float = WINDOW_SECONDS
    """Seconds per paired window (per-window quantities)."""
    length: bool = False
    """The pixel feature is a length in L (converted to body sizes before fitting)."""
    upright_only: bool = False
    """The pixel feature measures the quantity only on an upright body (``EnvSpec.upright``)."""
    tolerance: float | None = None
    """The largest residual (in ``unit``) at which the fit is used: points scattered wider
    than this around the line read the expert too coarsely to set a target. None: no bound."""


QUANTITIES: tuple[QuantitySpec, ...] = (
    QuantitySpec("forward_velocity", "forward_velocity", "forward_speed", "m/s", intercept=False,
                 length=True, window=SPEED_WINDOW_SECONDS, tolerance=0.1),
    QuantitySpec("lateral_velocity", "lateral_velocity", "depth_speed", "m/s", intercept=False,
                 length=True, window=SPEED_WINDOW_SECONDS, tolerance=0.1),
    QuantitySpec("torso_height", "torso_height_mean", "height_ratio", "m", intercept=True,
                 length=True, tolerance=0.05),
    # The image's tilt is the upper body's lean from vertical: on an upright body (Hopper,
    # Walker2d) it follows the torso's pitch within 0.01-0.02 rad; on a horizontal one
    # (HalfCheetah) the silhouette's "upper body" is a changing mix of back and legs: fits with
    # R² 0.84-0.97 read a level expert (0.09 rad) as -1.0 to +0.68 rad, and set lean targets.
    QuantitySpec("torso_pitch", "torso_pitch", "tilt_deg", "rad", intercept=True,
                 upright_only=True, tolerance=0.05),
    QuantitySpec("torso_height_std", "torso_height_std", "vertical_oscillation", "m",
                 intercept=False, per_clip=True, length=True),
    QuantitySpec("cadence_hz", "cadence_hz", "cadence_hz", "Hz", intercept=False, per_clip=True,
                 same_unit=True),
    QuantitySpec("yaw_rate", "yaw_rate", "turning_rate", "rad/s", intercept=False,
                 per_clip=True, same_unit=True),
)
"""Every quantity the calibration fits (see the module docstring's table)."""

_SERIES = {"forward_speed": "forward_velocity", "depth_speed": "depth_velocity",
           "height_ratio": "height_ratio", "tilt_deg": "tilt_deg"}
_CENTRE_OF_MASS = {"forward_velocity": "mass_center_x", "lateral_velocity": "mass_center_y"}
"""Velocities paired with the centre of mass's (see ``SPEED_WINDOW_SECONDS``)."""
_VELOCITY_FEATURES = ("forward_speed", "depth_speed")
"""Per-frame-pair features: sample k covers frames k-1..k."""
"""Pixel feature -> its per-frame series in ``PixelFeatures.series``."""


@dataclass
class CalibrationPairs:
    """Points pairing pixel values with simulator values, by quantity: ``[[pixel, sim], ...]``."""

    points: dict[str, list[list[float]]] = field(default_factory=dict)

    def extend(self, other: CalibrationPairs) -> None:
        """Add ``other``'s points to these."""
        for quantity, pts in other.points.items():
            self.points.setdefault(quantity, []).extend(pts)

    def to_dict(self) -> dict[str, list[list[float]]]:
        """JSON-ready."""
        return {q: [[round(x, 5), round(y, 5)] for x, y in pts] for q, pts in self.points.items()}


def length_to_size(body_length_px: float, body_size_px: float) -> float:
    """Body sizes per L of one clip (``PixelFeatures.body_length_px / body_size_px``; 1.0 when
    the clip has no subject)."""
    return body_length_px / body_size_px if body_size_px > 0 else 1.0


def episode_pairs(measured: Mapping[str, Any], samples: Mapping[str, np.ndarray],
                  dt: float) -> CalibrationPairs:
    """The calibration points of one rendered episode, from its clip's measurement
    (``expert_video.measure_video(clip, series=True)``) and its simulator samples
    (``Episode.samples``)."""
    details = measured["details"]
    return clip_pairs(measured["series"], measured["features"], samples, dt,
                      dominant_frequency(np.asarray(samples["torso_height"]), dt),
                      length_to_size(details["body_length_px"], details.get("body_size_px", 0.0)))


def clip_pairs(series: Mapping[str, Sequence[float | None]], pixel_clip: Mapping[str, float],
               state: Mapping[str, np.ndarray], dt: float, state_cadence_hz: float,
               to_size: float) -> CalibrationPairs:
    """The calibration points of one rendered episode.

    Args:
        series: ``PixelFeatures.series`` of the episode's clip (``t`` and per-frame values).
        pixel_clip: the clip's pixel features (``vertical_oscillation``, ``cadence_hz``).
        state: per-step simulator samples of the same episode (``Episode.samples``: step i
            ends at time ``(i + 1) * dt``).
        dt: the env's step, s.
        state_cadence_hz: the episode's cadence from state (``sim.metrics.dominant_frequency``).
        to_size: the clip's :func:`length_to_size`.
    """
    t = np.array([np.nan if v is None else v for v in series.get("t", [])], dtype=float)
    out = CalibrationPairs()
    if t.size < 2:
        return out
    steps = len(next(iter(state.values()))) if state else 0
    state_t = (np.arange(steps) + 1) * dt
    for spec in QUANTITIES:
        if spec.per_clip:
            continue
        edges = list(np.arange(0.0, t[-1] + 1e-9, spec.window))
        if t[-1] - edges[-1] >= spec.window / 2:  # a short clip (a fall) still gives its part
            edges.append(float(t[-1]))
        pixel = np.array([np.nan if v is None else v for v in series.get(_SERIES[spec.feature], [])],
                         dtype=float) * (to_size if spec.length else 1.0)
        sim = np.asarray(state.get(spec.quantity, []), dtype=float)
        centre = _CENTRE_OF_MASS.get(spec.quantity, "")
        if centre in state:
            sim = np.gradient(np.asarray(state[centre], dtype=float), dt)
        if pixel.size != t.size or sim.size != steps:
            continue
        pts = []
        for lo, hi in zip(edges[:-1], edges[1:], strict=False):
            # a velocity sample k covers the frame pair (k-1, k): frame 0's is not a measurement
            in_pixel = (t > lo) & (t <= hi) if spec.feature in _VELOCITY_FEATURES else (t >= lo) & (t < hi)
            in_state = (state_t > lo) & (state_t <= hi)
            px = pixel[in_pixel]
            px = px[np.isfinite(px)]
            if px.size < 2 or not in_state.any():
                continue
            pts.append([float(px.mean()), float(sim[in_state].mean())])
        if pts:
            out.points[spec.quantity] = pts
    height = np.asarray(state.get("torso_height", []), dtype=float)
    if t[-1] < PER_CLIP_MIN_SECONDS:
        return out
    if "vertical_oscillation" in pixel_clip and height.size > 2:
        out.points["torso_height_std"] = [[float(pixel_clip["vertical_oscillation"]) * to_size,
                                           float(np.std(height))]]
    if pixel_clip.get("cadence_hz", 0.0) > 0 and state_cadence_hz > 0:
        out.points["cadence_hz"] = [[float(pixel_clip["cadence_hz"]), float(state_cadence_hz)]]
    yaw_rate = np.asarray(state.get("yaw_rate", []), dtype=float)
    if pixel_clip.get("turning_rate") is not None and yaw_rate.size > 2:
        out.points["yaw_rate"] = [[float(pixel_clip["turning_rate"]), float(yaw_rate.mean())]]
    return out


@dataclass
class QuantityFit:
    """One fitted mapping pixel feature -> physical quantity, and the expert read through it."""

    quantity: str
    feature: str
    unit: str
    slope: float
    intercept: float
    points: int
    r2: float | None
    """Share of the simulator value's variance the fit explains (None: one point or no spread)."""
    residual: float
    """Root mean square of (simulator - fitted) over the points, in ``unit``."""
    usable: bool
    """Enough points and a good enough fit to read the expert through it."""
    expert_pixel: float | None = None
    expert_value: float | None = None
    """The expert's value of the quantity: ``slope * expert_pixel + intercept``."""
    note: str = ""
    """How the fit is read, or why it is not used: "identity..." (a same-unit quantity, read as
    the pixels give it), "residual above ..." (``QuantitySpec.tolerance``), "... outside the
    learners' ..." (``EXTRAPOLATION``), "... an upright body's lean ..." (``upright_only``)."""

    def apply(self, pixel: float) -> float:
        """The quantity a pixel value stands for."""
        return self.slope * pixel + self.intercept


@dataclass
class Calibration:
    """Every fitted quantity (see :data:`QUANTITIES`), fitted on ``clips`` learner clips."""

    fits: dict[str, QuantityFit]
    clips: int

    def expert_values(self) -> dict[str, float]:
        """The expert's physical values from the usable fits, by quantity."""
        return {q: f.expert_value for q, f in self.fits.items()
                if f.usable and f.expert_value is not None}

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"clips": self.clips, "fits": {q: asdict(f) for q, f in self.fits.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> Calibration:
        """The inverse of :meth:`to_dict`."""
        return cls(fits={q: QuantityFit(**f) for q, f in data.get("fits", {}).items()},
                   clips=int(data.get("clips", 0)))

    def table(self) -> list[str]:
        """One line per quantity, for logs and the trace."""
        lines = []
        for f in self.fits.values():
            fit = (f"{f.slope:+.3g} x" + (f" {f.intercept:+.3g}" if f.intercept else ""))
            r2 = "-" if f.r2 is None else f"{f.r2:.2f}"
            expert = ("" if f.expert_value is None else
                      f"; expert {f.expert_pixel:.3g} -> {f.expert_value:.3g} {f.unit}")
            how = f" ({f.note})" if f.note else ""
            lines.append(f"{f.quantity} = {fit}{how} ({f.feature}; {f.points} points, R² {r2}, "
                         f"residual {f.residual:.3g} {f.unit}){'' if f.usable else ' [not used]'}"
                         f"{expert}")
        return lines


def fit_calibration(pairs: CalibrationPairs, expert: Mapping[str, float], expert_to_size: float,
                    clips: int, min_points: int = MIN_POINTS, min_r2: float = MIN_R2,
                    upright: bool = True) -> Calibration:
    """Fit every quantity with points and read the expert's pixel features (``expert``, in the
    pixel features' own units; ``expert_to_size`` its clip's :func:`length_to_size`) through it.
    ``upright``: the body's ``EnvSpec.upright`` (a horizontal body's upright-only fits are
    kept for the record, not used).

    A per-clip quantity (cadence, bob) has one point per clip; it is usable from 2 clips on.
    Cadence is in Hz on both sides, so its fit is a check that the pixels count the same
    rhythm as the simulator (a slope near 1), and is used as such.
    """
    fits = {}
    for spec in QUANTITIES:
        pts = np.asarray(pairs.points.get(spec.quantity, []), dtype=float).reshape(-1, 2)
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        if pts.shape[0] == 0:
            if spec.same_unit and expert.get(spec.feature) is not None:
                value = float(expert[spec.feature])
                fits[spec.quantity] = QuantityFit(
                    quantity=spec.quantity, feature=spec.feature, unit=spec.unit, slope=1.0,
                    intercept=0.0, points=0, r2=None, residual=0.0, usable=True,
                    expert_pixel=value, expert_value=round(value, 5), note="identity")
            continue
        x, y = pts[:, 0], pts[:, 1]
        slope, intercept = _least_squares(x, y, spec.intercept)
        fitted = slope * x + intercept
        residual = float(np.sqrt(np.mean((y - fitted) ** 2)))
        # R² of a fit through the origin is taken about zero (the model has no mean to beat)
        spread = float(np.sum((y - y.mean()) ** 2)) if spec.intercept else float(np.sum(y * y))
        r2 = None if pts.shape[0] < 2 or spread < 1e-12 else 1.0 - float(np.sum((y - fitted) ** 2)) / spread
        needed = MIN_CLIP_POINTS if spec.per_clip else min_points
        precise = spec.tolerance is None or residual <= spec.tolerance
        usable = (pts.shape[0] >= needed and math.isfinite(slope) and precise
                  and (spec.per_clip or (r2 is not None and r2 >= min_r2)))
        fit = QuantityFit(quantity=spec.quantity, feature=spec.feature, unit=spec.unit,
                          slope=round(slope, 6), intercept=round(intercept, 6),
                          points=int(pts.shape[0]), r2=None if r2 is None else round(r2, 4),
                          residual=round(residual, 5), usable=bool(usable),
                          note="" if precise else f"residual above {spec.tolerance:g} {spec.unit}")
        if spec.feature in expert and expert[spec.feature] is not None:
            fit.expert_pixel = float(expert[spec.feature]) * (expert_to_size if spec.length else 1.0)
            fit.expert_value = round(fit.apply(fit.expert_pixel), 5)
            reach = EXTRAPOLATION * float(np.ptp(x))
            if spec.intercept and not x.min() - reach <= fit.expert_pixel <= x.max() + reach:
                fit.usable = False
                fit.note = (f"the expert's {fit.expert_pixel:.3g} is outside the learners' "
                            f"{x.min():.3g}..{x.max():.3g}")
        if spec.upright_only and not upright:
            fit.usable = False
            fit.note = f"{spec.feature} is an upright body's lean, not this body's {spec.quantity}"
        if spec.same_unit:
            # Hz are Hz: the pixels' own reading is used; the fit is kept only as a check. On
            # learner clips (falls, shuffles) it did not carry over to the expert: hopper-steady's
            # pixel cadence is 18 % off, the fit on its learners 44 % (bench nes, seed 0).
            fit.note = "identity" if not usable else f"identity; the learners' fit: x {fit.slope:.3g}"
            fit.slope, fit.intercept, fit.usable = 1.0, 0.0, True
            if fit.expert_pixel is not None:
                fit.expert_value = round(fit.expert_pixel, 5)
        fits[spec.quantity] = fit
    return Calibration(fits=fits, clips=clips)


def _least_squares(x: np.ndarray, y: np.ndarray, intercept: bool) -> tuple[float, float]:
    if intercept and x.size >= 2 and np.ptp(x) > 1e-9:
        a, b = np.polyfit(x, y, 1)
        return float(a), float(b)
    denom = float(np.sum(x * x))
    if denom < 1e-12:
        return math.nan, 0.0
    return float(np.sum(x * y) / denom), 0.0
