"""Clips with known answers: a synthetic runner for tests and the feature benchmark.

The figure's cadence and its speed over the ground are set exactly, so features measured from
the pixels can be checked against them (tests/tools/test_pixel_features.py) and timed
(:func:`bench_pixel_features`, ``python -m vid2reward.tools.synthetic_clips``).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from vid2reward.sim.render import write_mp4
from vid2reward.tools.pixel_features import features_from_video


def synthetic_clip(seconds: float = 10.0, fps: float = 30.0, height: int = 480,
                   bob_hz: float = 2.0, speed: float = 1.0, follow: bool = True,
                   colour: tuple[int, int, int] = (230, 120, 40), bob_height: float = 0.06,
                   seed: int = 0) -> list[np.ndarray]:
    """A test clip with known answers: a figure (orange unless ``colour``) bobbing at ``bob_hz``
    by ``bob_height`` of its height over a blocky grey ground, moving at ``speed`` figure
    heights per second (negative = left).

    With ``follow`` the camera follows it (the figure stays in the middle, the ground scrolls
    the other way), else the camera is still and the figure crosses the frame from one third
    in. The true forward speed is ``speed`` body lengths/s, the true cadence ``bob_hz``.
    """
    rng = np.random.default_rng(seed)
    width = int(round(height * 16 / 9)) // 16 * 16
    figure = height // 3  # bounding-box height of the figure, pixels
    horizon, tile = height // 2, max(4, height // 20)
    blocks = rng.integers(60, 200, size=(height // tile + 1, 2 * width // tile + 1), dtype=np.uint8)
    ground = cv2.resize(blocks, (blocks.shape[1] * tile, blocks.shape[0] * tile),
                        interpolation=cv2.INTER_NEAREST)  # periodic: wraps without a seam
    period = ground.shape[1]
    ground = np.concatenate([ground, ground], axis=1)
    frames = []
    for i in range(int(round(seconds * fps))):
        t = i / fps
        frame = np.empty((height, width, 3), np.uint8)
        frame[:horizon] = (150, 170, 200)  # sky
        travelled = speed * figure * t
        offset = int(round(travelled if follow else 0.0)) % period
        frame[horizon:] = ground[: height - horizon, offset:offset + width, None]
        lift = bob_height * figure * (0.5 + 0.5 * np.sin(2 * np.pi * bob_hz * t))
        foot = int(round(horizon + 0.25 * figure - lift))
        x = width // 2 if follow else int(round(width / 3 if speed >= 0 else 2 * width / 3)
                                          + travelled)
        r = figure // 10
        cv2.rectangle(frame, (x - r, foot - figure + 2 * r), (x + r, foot), colour, -1)
        cv2.circle(frame, (x, foot - figure + r), r, colour, -1)
        frames.append(frame)
    return frames


def bench_pixel_features(seconds: float = 10.0, height: int = 480, fps: float = 30.0) -> dict:
    """Time the features of a synthetic ``seconds`` clip at ``height`` rows, decoded from an mp4.

    Returns {"seconds": wall time for decode + features, "clip_s", "height", "frames", "fps",
    "cadence_hz" (true 2.0), "forward_speed" (true ~1.0)}.
    """
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_mp4(synthetic_clip(seconds, fps, height), Path(tmp) / "bench.mp4", fps)
        t0 = time.perf_counter()
        feats = features_from_video(clip)
        elapsed = time.perf_counter() - t0
    return {"seconds": round(elapsed, 3), "clip_s": seconds, "height": height,
            "frames": feats.frames, "fps": fps, "cadence_hz": round(feats.cadence_hz, 3),
            "forward_speed": round(feats.forward_speed, 3)}


if __name__ == "__main__":  # python -m vid2reward.tools.synthetic_clips: the benchmark
    print(json.dumps(bench_pixel_features(), indent=2))
