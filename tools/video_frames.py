"""Reading a video's frames: probe, sample (N evenly spaced or a fixed fps), resize, crop,
and a labelled contact sheet.

Frames are RGB uint8 arrays (height, width, 3), the same layout the simulator renders, so sim
clips held in memory and videos on disk go through the same code. Decoding uses OpenCV's
FFmpeg backend; a file it cannot open, or opens but cannot decode a frame from, is a user error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vid2reward.sim.errors import UserError
from vid2reward.sim.render import contact_sheet

# FFmpeg inside OpenCV would print its own complaints about a bad file next to our one-line
# error; it reads this once, when it first opens a file (set OPENCV_FFMPEG_LOGLEVEL to see them).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as far as its container says."""

    path: str
    width: int
    """Frame width, pixels."""
    height: int
    """Frame height, pixels."""
    fps: float
    """Frames per second (the container's average rate)."""
    frame_count: int
    """Number of frames the container reports (exact for the clips `fetch` writes)."""

    @property
    def duration(self) -> float:
        """Length in seconds (frame_count / fps)."""
        return self.frame_count / self.fps if self.fps > 0 else 0.0


@dataclass(frozen=True)
class CropBox:
    """A crop as fractions of the frame, so it means the same at any resolution.

    ``CropBox(0.25, 0.1, 0.75, 0.9)`` keeps the middle half of the width and the central 80 %
    of the height. Use it when the subject is small in the frame.
    """

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        if not (0.0 <= self.x0 < self.x1 <= 1.0 and 0.0 <= self.y0 < self.y1 <= 1.0):
            raise UserError(f"bad crop box {self.x0},{self.y0},{self.x1},{self.y1}",
                            where="crop", fix="write X0,Y0,X1,Y1 as fractions with 0 <= X0 < X1 <= 1 "
                                              "and 0 <= Y0 < Y1 <= 1, e.g. 0.25,0.1,0.75,0.9")

    @classmethod
    def parse(cls, text: str) -> CropBox:
        """``"0.25,0.1,0.75,0.9"`` -> CropBox; a malformed box is a user error."""
        try:
            x0, y0, x1, y1 = (float(v) for v in text.split(","))
        except ValueError:
            raise UserError(f"bad crop box '{text}'", where="--crop",
                            fix="write four fractions X0,Y0,X1,Y1, e.g. 0.25,0.1,0.75,0.9") from None
        return cls(x0, y0, x1, y1)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """The cropped view of ``frame`` (at least one pixel each way)."""
        h, w = frame.shape[:2]
        x0, x1 = int(self.x0 * w), max(int(self.x0 * w) + 1, round(self.x1 * w))
        y0, y1 = int(self.y0 * h), max(int(self.y0 * h) + 1, round(self.y1 * h))
        return frame[y0:y1, x0:x1]


@dataclass
class Frames:
    """Frames sampled from a clip, with the time of each."""

    frames: list[np.ndarray]
    """RGB uint8 frames, all the same size."""
    times: np.ndarray
    """Time of each frame in the clip, seconds."""
    fps: float
    """Sampling rate of ``frames`` (for N evenly spaced frames: N-1 over the time they span)."""
    info: VideoInfo | None = None
    """The source file, when the frames came from one."""

    def labels(self) -> list[str]:
        """``"t=1.2s"`` per frame, for contact sheets."""
        return [f"t={t:.1f}s" for t in self.times]


def probe_video(path: str | Path) -> VideoInfo:
    """Open ``path`` and check that it holds a decodable video stream.

    Raises:
        UserError: the file is missing, is not a video, or is corrupt (no frame decodes).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError("no such file", where=str(path), fix="check the path")
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our error says it all
    try:
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    finally:
        cv2.utils.logging.setLogLevel(level)
    try:
        if not cap.isOpened():
            raise UserError(_unreadable(path), where=str(path),
                            fix="pass a video file (mp4, webm, mkv, mov, avi, ...)")
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        codec = int(cap.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
        decoded = sum(1 for _ in range(2) if cap.grab())
    finally:
        cap.release()
    if codec.to_bytes(4, "little").lower() in _TEXT_CODECS:  # FFmpeg renders text files as video
        raise UserError("the file is not a video (it holds text)", where=str(path),
                        fix="pass a video file (mp4, webm, mkv, mov, avi, ...)")
    if decoded == 0 or width <= 0 or height <= 0 or not np.isfinite(fps) or fps <= 0:
        raise UserError(_unreadable(path), where=str(path),
                        fix="pass a video file (mp4, webm, mkv, mov, avi, ...)")
    if decoded == 1:
        raise UserError("the file holds a single image, not a video", where=str(path),
                        fix="pass a video file (mp4, webm, mkv, mov, avi, ...)")
    frames = int(count) if np.isfinite(count) and count >= 2 else 2
    return VideoInfo(path=str(path), width=width, height=height, fps=fps, frame_count=frames)


_TEXT_CODECS = {b"ansi", b"bint", b"xbin", b"idf\x00", b"tty\x00"}


def _unreadable(path: Path) -> str:
    """Tell a corrupt video from something that never was one, by the file's first bytes."""
    try:
        head = path.read_bytes()[:64]
    except OSError:
        head = b""
    if not head:
        return "the file is empty, not a video"
    containers = (b"ftyp", b"\x1aE\xdf\xa3", b"RIFF", b"OggS", b"FLV", b"\x00\x00\x01\xba")
    if any(tag in head[:12] for tag in containers):
        return "the video is corrupt: no frame could be decoded"
    return "the file is not a video (no decodable video stream)"


def read_frames(path: str | Path, *, count: int | None = None, fps: float | None = None,
                max_height: int | None = None, crop: CropBox | None = None,
                start: float = 0.0, end: float | None = None) -> Frames:
    """Decode frames of a video file, sampled, cropped and resized.

    Args:
        path: a video file.
        count: take this many frames evenly spaced over [start, end] (first and last included).
        fps: or take frames at this rate (the nearest source frame to each tick); at most the
            source rate. With neither, every frame.
        max_height: shrink frames (after cropping) to at most this height, keeping the aspect
            ratio; never enlarges.
        crop: keep only this part of each frame (applied before resizing).
        start, end: the time range in seconds (end None = the end of the clip).

    Raises:
        UserError: not a video, corrupt, or no frame in [start, end].
    """
    if count is not None and fps is not None:
        raise ValueError("give count or fps, not both")
    info = probe_video(path)
    first = max(0, int(round(start * info.fps)))
    last = info.frame_count - 1 if end is None else min(info.frame_count - 1, int(end * info.fps))
    if last < first:
        raise UserError(f"no frames between {start:g}s and {end}s (the clip is {info.duration:.2f}s)",
                        where=str(path), fix="pick a range inside the clip")
    if count is not None:
        wanted = np.unique(np.linspace(first, last, max(1, count)).round().astype(int))
    elif fps is not None and fps < info.fps:
        ticks = np.arange(first / info.fps, last / info.fps + 1e-9, 1.0 / fps)
        wanted = np.unique(np.clip((ticks * info.fps).round().astype(int), first, last))
    else:
        wanted = np.arange(first, last + 1)
    picked = _decode(info, wanted, max_height, crop)
    if not picked:
        raise UserError("the video is corrupt: no frame could be decoded", where=str(path),
                        fix="give another file, or re-encode it: ffmpeg -i IN -c:v libx264 OUT.mp4")
    indices = np.array([i for i, _ in picked])
    frames = [f for _, f in picked]
    times = indices / info.fps
    rate = info.fps if len(indices) < 2 else (len(indices) - 1) / (times[-1] - times[0])
    return Frames(frames=frames, times=times, fps=float(rate), info=info)


def _decode(info: VideoInfo, wanted: np.ndarray, max_height: int | None,
            crop: CropBox | None) -> list[tuple[int, np.ndarray]]:
    """Read frames ``wanted`` (sorted indices) sequentially; grab() skips without converting."""
    cap = cv2.VideoCapture(info.path, cv2.CAP_FFMPEG)
    out: list[tuple[int, np.ndarray]] = []
    want = set(int(i) for i in wanted)
    last = int(wanted[-1])
    try:
        index = int(wanted[0])
        if index > 0:  # OpenCV's FFmpeg backend seeks to the keyframe before, then decodes on
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        while index <= last:
            if not cap.grab():
                break  # the container over-reported its length
            if index in want:
                ok, bgr = cap.retrieve()
                if ok and bgr is not None:
                    out.append((index, prepare(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), max_height, crop)))
            index += 1
    finally:
        cap.release()
    return out


def prepare(frame: np.ndarray, max_height: int | None = None,
            crop: CropBox | None = None) -> np.ndarray:
    """Crop then shrink one RGB frame to at most ``max_height`` rows (aspect kept)."""
    if crop is not None:
        frame = crop.apply(frame)
    h, w = frame.shape[:2]
    if max_height is not None and h > max_height:
        while h >= 2 * max_height:  # halving first is cheaper than one large area resize
            frame = cv2.pyrDown(frame)
            h, w = frame.shape[:2]
        scale = max_height / h
        frame = cv2.resize(frame, (max(1, round(w * scale)), max_height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame[..., :3], dtype=np.uint8)


def frames_from_arrays(frames: Sequence[np.ndarray], fps: float, *, max_height: int | None = None,
                       crop: CropBox | None = None) -> Frames:
    """Wrap frames already in memory (e.g. a rollout's ``Episode.frames``) as :class:`Frames`."""
    if not frames:
        raise ValueError("no frames")
    out = [prepare(np.asarray(f), max_height, crop) for f in frames]
    return Frames(frames=out, times=np.arange(len(out)) / fps, fps=float(fps))


def save_contact_sheet(frames: Frames, path: str | Path, *, columns: int = 4, rows: int = 3) -> Path:
    """A PNG grid of evenly spaced frames, each labelled with its time in the clip."""
    return contact_sheet(frames.frames, path, columns=columns, rows=rows, labels=frames.labels())
