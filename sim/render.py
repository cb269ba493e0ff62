"""Headless rendering: a torso-tracking side camera, H.264 mp4 clips and contact sheets.

MuJoCo renders off-screen through the GL backend named by ``MUJOCO_GL`` (``egl`` by default:
Mesa on the CPU; ``osmesa`` is the fallback). Shadows and reflections are switched off: on a
software renderer they cost 5x the frame time and the pixel features do not need them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import imageio.v2 as imageio
import mujoco
import numpy as np

from vid2reward.sim.envs import EnvSpec
from vid2reward.sim.errors import UserError


class ClipRenderer:
    """Renders frames of one env's simulator from a camera that follows the torso, from the side.

    Args:
        model, data: the env's ``MjModel`` and ``MjData`` (``env.unwrapped.model`` / ``.data``).
        spec: the env's :class:`EnvSpec` (torso body, camera distance).
        width, height: frame size in pixels (multiples of 16 encode without resizing).
    """

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, spec: EnvSpec,
                 width: int = 320, height: int = 240) -> None:
        self.data = data
        # The model's off-screen buffer caps the frame size; raise it when asked for more.
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        try:
            self.renderer = mujoco.Renderer(model, height=height, width=width)
        except Exception as exc:  # GL context creation failed: no usable headless backend
            backend = os.environ.get("MUJOCO_GL", "egl")
            raise UserError(
                f"headless rendering failed with MUJOCO_GL={backend}: {exc}",
                where="MuJoCo renderer",
                fix="install Mesa EGL (Debian: libegl1 libgl1-mesa-dri) or set MUJOCO_GL=osmesa "
                    "with libosmesa6 installed") from None
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        self.camera.trackbodyid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, spec.torso_body)
        self.camera.distance = spec.camera_distance
        self.camera.elevation = -10.0
        self.camera.azimuth = 90.0  # looking along +y: the body moves left to right

    def frame(self) -> np.ndarray:
        """The current simulator state as an RGB uint8 array (height, width, 3)."""
        self.renderer.update_scene(self.data, camera=self.camera)
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        return self.renderer.render().copy()

    def close(self) -> None:
        """Free the GL context."""
        self.renderer.close()


def frame_stride(dt: float, fps: float = 30.0) -> int:
    """Render every k-th env step so a clip plays in real time at close to ``fps``."""
    return max(1, round(1.0 / (dt * fps)))


def write_mp4(frames: Sequence[np.ndarray], path: str | Path, fps: float) -> Path:
    """Write RGB frames as an H.264 mp4 (yuv420p, plays everywhere), atomically."""
    if not frames:
        raise ValueError("no frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    writer = imageio.get_writer(str(tmp), fps=fps, codec="libx264", pixelformat="yuv420p",
                                macro_block_size=16, ffmpeg_log_level="error",
                                output_params=["-movflags", "+faststart"])
    try:
        for frame in frames:
            writer.append_data(np.asarray(frame, dtype=np.uint8))
    finally:
        writer.close()
    tmp.replace(path)
    return path


def contact_sheet(frames: Sequence[np.ndarray], path: str | Path, *, columns: int = 4,
                  rows: int = 3, labels: Sequence[str] | None = None) -> Path:
    """Save a grid of evenly spaced frames as a PNG, each labelled (by default with its index).

    Args:
        frames: RGB frames of equal size.
        path: the PNG to write.
        columns, rows: grid shape; fewer frames leave cells black.
        labels: one label per frame in ``frames`` (e.g. "t=1.2s"); the picked ones are drawn.
    """
    if not frames:
        raise ValueError("no frames for a contact sheet")
    n = min(len(frames), columns * rows)
    picks = np.linspace(0, len(frames) - 1, n).round().astype(int)
    h, w = frames[0].shape[:2]
    sheet = np.zeros((rows * h, columns * w, 3), dtype=np.uint8)
    for cell, idx in enumerate(picks):
        r, c = divmod(cell, columns)
        tile = np.ascontiguousarray(frames[idx][..., :3], dtype=np.uint8).copy()
        text = labels[idx] if labels is not None else f"#{idx}"
        cv2.putText(tile, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = tile
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.png")
    imageio.imwrite(tmp, sheet)
    tmp.replace(path)
    return path


def write_clip_and_sheet(frames: Sequence[np.ndarray], fps: float, clip_path: str | Path,
                         sheet_path: str | Path) -> tuple[Path, Path]:
    """The mp4 of a rollout's frames and its contact sheet, each frame labelled with its time."""
    clip = write_mp4(frames, clip_path, fps)
    labels = [f"t={i / fps:.1f}s" for i in range(len(frames))]
    return clip, contact_sheet(frames, sheet_path, labels=labels)
