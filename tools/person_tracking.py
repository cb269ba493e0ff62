"""Finding the person to measure in a busy frame: moving people are detected, tracked, and one
is chosen as the subject.

Detection is motion against a learnt background (OpenCV's MOG2 background model, trained on
the whole clip first so the first frames are covered too), cleaned and split into upright
blobs: a fixed camera with several people walking gives one box per person. OpenCV 5's
headless wheel no longer ships the HOG people detector, and no detector weights can be
downloaded, so "person" here means "an upright moving blob"; the pose model run on the chosen
track's crops is what confirms a body. A camera that pans with its subject has no fixed
background: then no track is found and the caller measures the whole frame (where the
followed subject is the large, central person the pose model finds by itself).

Tracks are greedy box matches between consecutive detections (overlap, or centres within
half a body height). ``auto`` picks the track with the largest persistence x median height
among those that moved at least one body height; a box given by the user picks the track that
overlaps it most at the given time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from vid2reward.sim.errors import UserError
from vid2reward.tools.video_frames import CropBox

Box = tuple[float, float, float, float]
"""x, y, width, height in pixels of the frame."""


@dataclass
class Track:
    """One moving blob followed over frames."""

    id: int
    boxes: dict[int, Box] = field(default_factory=dict)
    """frame index -> box."""

    @property
    def length(self) -> int:
        """Frames the blob was detected in."""
        return len(self.boxes)

    def median_height(self) -> float:
        """Median box height, pixels."""
        return float(np.median([b[3] for b in self.boxes.values()]))

    def travel(self) -> float:
        """Distance between the first and last box centres, pixels."""
        first, last = self.boxes[min(self.boxes)], self.boxes[max(self.boxes)]
        return float(np.hypot(first[0] + first[2] / 2 - last[0] - last[2] / 2,
                              first[1] + first[3] / 2 - last[1] - last[3] / 2))

    def score(self) -> float:
        """Persistence x size: frames seen times median height (auto picks the largest)."""
        return self.length * self.median_height()


def parse_subject(text: str) -> Box | None:
    """``"auto"`` -> None; ``"x,y,w,h"`` (pixels) -> a box. A malformed one is a user error."""
    if text == "auto":
        return None
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"bad subject '{text}'", where="--subject",
                        fix="write auto, or a box X,Y,W,H in pixels of the frame at --subject-time") from None
    if w <= 0 or h <= 0:
        raise UserError(f"bad subject box '{text}': width and height must be positive",
                        where="--subject", fix="write X,Y,W,H with W > 0 and H > 0")
    return (x, y, w, h)


def detect_movers(frames: Sequence[np.ndarray], min_height: float = 0.05) -> list[list[Box]]:
    """Upright moving blobs in every frame (RGB frames of one size).

    ``min_height`` is the smallest person, as a fraction of the frame height.
    """
    h, w = frames[0].shape[:2]
    model = cv2.createBackgroundSubtractorMOG2(history=max(30, len(frames)), varThreshold=25,
                                               detectShadows=True)
    small = [cv2.GaussianBlur(f, (3, 3), 0) for f in frames]
    for f in small:  # learn the background from the whole clip first
        model.apply(f)
    open_k = np.ones((3, 3), np.uint8)
    # a tall closing kernel joins a person's head, trunk and legs, not two people side by side
    close_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, w // 150), max(5, h // 40)))
    out: list[list[Box]] = []
    for f in small:
        fg = (model.apply(f, learningRate=0) == 255).astype(np.uint8)  # 127 = shadow
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, open_k)
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, close_k)
        n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        boxes = []
        for i in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[i])
            if bh < min_height * h or bh < 0.8 * bw or area < 0.25 * bw * bh or bh > 0.98 * h:
                continue
            boxes.append((float(x), float(y), float(bw), float(bh)))
        out.append(boxes)
    return out


def _overlap(a: Box, b: Box) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _near(a: Box, b: Box) -> bool:
    dx = (a[0] + a[2] / 2) - (b[0] + b[2] / 2)
    dy = (a[1] + a[3] / 2) - (b[1] + b[3] / 2)
    return bool(np.hypot(dx, dy) < 0.5 * max(a[3], b[3]) and 0.5 < a[3] / b[3] < 2.0)


def appearance(frame: np.ndarray, box: Box) -> np.ndarray:
    """A normalised hue-saturation histogram (8 x 4 bins) of what is inside ``box``."""
    x, y, w, h = (int(round(v)) for v in box)
    patch = frame[max(0, y):y + max(1, h), max(0, x):x + max(1, w)]
    if patch.size == 0:
        return np.full(32, 1 / 32, np.float32)
    hsv = cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [8, 4], [0, 180, 0, 256]).ravel()
    return (hist / max(1.0, float(hist.sum()))).astype(np.float32)


def _looks_different(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance of two histograms: 0 same colours, 1 none shared."""
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def track(detections: list[list[Box]], max_missed: int = 5,
          frames: Sequence[np.ndarray] | None = None, max_colour_change: float = 0.5) -> list[Track]:
    """Link per-frame boxes into tracks (greedy, best overlap first); a track may skip up to
    ``max_missed`` frames. With ``frames``, a box joins a track only if its colours look like
    the track's (so two people crossing do not swap identities)."""
    tracks: list[Track] = []
    live: list[Track] = []
    looks: dict[int, np.ndarray] = {}  # track id -> running colour histogram
    for i, boxes in enumerate(detections):
        seen = [appearance(frames[i], b) for b in boxes] if frames is not None else []
        pairs = sorted(((_overlap(t.boxes[max(t.boxes)], b), ti, bi)
                        for ti, t in enumerate(live) for bi, b in enumerate(boxes)), reverse=True)
        used_t: set[int] = set()
        used_b: set[int] = set()
        for ov, ti, bi in pairs:
            if ti in used_t or bi in used_b:
                continue
            t = live[ti]
            if not (ov > 0.2 or _near(t.boxes[max(t.boxes)], boxes[bi])):
                continue
            if seen and _looks_different(looks[t.id], seen[bi]) > max_colour_change:
                continue
            t.boxes[i] = boxes[bi]
            if seen:
                looks[t.id] = 0.8 * looks[t.id] + 0.2 * seen[bi]
            used_t.add(ti)
            used_b.add(bi)
        for bi, b in enumerate(boxes):
            if bi not in used_b:
                t = Track(id=len(tracks), boxes={i: b})
                if seen:
                    looks[t.id] = seen[bi]
                tracks.append(t)
                live.append(t)
        live = [t for t in live if i - max(t.boxes) <= max_missed]
    return tracks


def choose_subject(tracks: list[Track], box: Box | None = None, at_frame: int = 0,
                   min_frames: int = 5) -> Track | None:
    """The subject: with ``box``, the track overlapping it most near ``at_frame``; otherwise
    the most persistent, largest track that moved. None when nothing qualifies."""
    if box is not None:
        best, best_ov = None, 0.3  # less overlap is a fragment of something else
        for t in tracks:
            if t.length < min_frames:  # a flicker, not a person followed over time
                continue
            near = [f for f in t.boxes if abs(f - at_frame) <= 3]
            ov = max((_overlap(t.boxes[f], box) for f in near), default=0.0)
            if ov > best_ov:
                best, best_ov = t, ov
        return best
    n = 1 + max((max(t.boxes) for t in tracks), default=0)
    # a track must span a good part of the clip: short ones are fragments, or a model of the
    # background learnt from too few frames
    movers = [t for t in tracks if t.length >= max(min_frames, 0.4 * n)
              and t.travel() >= t.median_height()]
    return max(movers, key=Track.score, default=None)


def box_per_frame(t: Track, n: int, hold: int = 3) -> list[Box | None]:
    """The track's box in each of ``n`` frames: detections smoothed (median of 5), gaps between
    detections interpolated, held ``hold`` frames past its ends, None elsewhere."""
    frames = sorted(t.boxes)
    arr = np.array([t.boxes[f] for f in frames])
    smoothed = np.array([np.median(arr[max(0, k - 2):k + 3], axis=0) for k in range(len(frames))])
    out: list[Box | None] = [None] * n
    for i in range(max(0, frames[0] - hold), min(n, frames[-1] + hold + 1)):
        j = int(np.clip(i, frames[0], frames[-1]))
        b = [float(np.interp(j, frames, smoothed[:, c])) for c in range(4)]
        out[i] = (b[0], b[1], b[2], b[3])
    return out


def subject_region(frames: Sequence[np.ndarray], subject: str = "auto", at_frame: int = 0,
                   margin: float = 0.25) -> tuple[CropBox | None, str]:
    """The part of the frame the subject moves through (union of its track's boxes, widened by
    ``margin`` of its height each way) as a crop for the pixel features, and how it was chosen;
    None when no moving subject is found (measure the whole frame). This is how an animal or
    any non-person subject in a busy frame is measured: pixels of its crop only."""
    box = parse_subject(subject)
    chosen = choose_subject(track(detect_movers(frames), frames=frames), box, at_frame)
    if chosen is None:
        return None, "no moving subject found: the whole frame"
    h, w = frames[0].shape[:2]
    arr = np.array(list(chosen.boxes.values()))
    pad = margin * chosen.median_height()
    x0, y0 = max(0.0, arr[:, 0].min() - pad), max(0.0, arr[:, 1].min() - pad)
    x1 = min(float(w), (arr[:, 0] + arr[:, 2]).max() + pad)
    y1 = min(float(h), (arr[:, 1] + arr[:, 3]).max() + pad)
    crop = CropBox(x0 / w, y0 / h, max(x1 / w, x0 / w + 1e-3), max(y1 / h, y0 / h + 1e-3))
    return crop, (f"track {chosen.id} ({chosen.length} of {len(frames)} frames, median height "
                  f"{chosen.median_height():.0f} px): crop {crop.x0:.2f},{crop.y0:.2f},"
                  f"{crop.x1:.2f},{crop.y1:.2f}")
