"""Fetching the expert video: a URL (any site yt-dlp supports) or a local file -> a trimmed,
resampled, height-capped H.264 clip in a cache.

The cache key is (source, start, end, fps, max height); for a local file the source includes
its size and modification time, so an edited file is fetched again. A cached clip is returned
without touching the network. Every clip is built in a ``.partial-*`` directory inside the
cache and renamed into place only when complete, so a failure leaves nothing behind.

Layout::

    <cache>/<key>/clip.mp4     the clip (H.264, yuv420p, constant frame rate, no audio)
    <cache>/<key>/clip.json    where it came from and what it holds (FetchResult fields)

The cache directory is ``--cache-dir`` if given, else ``$VID2REWARD_CACHE``, else
``$XDG_CACHE_HOME/vid2reward/videos`` (``~/.cache/vid2reward/videos``).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

import imageio_ffmpeg

from vid2reward.sim.errors import UserError
from vid2reward.tools.video_frames import VideoInfo, probe_video

Progress = Callable[[str, float | None], None]
"""``progress(stage, fraction)``: stage is "download" or "trim"; fraction 0..1 or None."""

CACHE_ENV = "VID2REWARD_CACHE"
LONG_VIDEO_S = 120.0
"""Videos at least this long whose requested range is under half of them are downloaded as a
section (yt-dlp download ranges) rather than whole."""


@dataclass(frozen=True)
class FetchResult:
    """A fetched clip in the cache."""

    path: str
    """The clip: H.264 mp4, constant frame rate, no audio."""
    source: str
    """The URL or the resolved local path it came from."""
    title: str
    start: float
    """Start of the clip in the source, seconds."""
    end: float
    """End of the clip in the source, seconds."""
    fps: float
    width: int
    height: int
    frames: int
    fetched: str
    """How the source was read: ``local`` file, whole ``download``, or ``section`` download."""
    cached: bool
    """True when served from the cache without fetching."""

    @property
    def duration(self) -> float:
        return self.frames / self.fps


def default_cache_dir() -> Path:
    """``$VID2REWARD_CACHE``, else ``$XDG_CACHE_HOME/vid2reward/videos``, else ~/.cache/..."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "vid2reward" / "videos"


def is_url(source: str) -> bool:
    """True for ``scheme://...`` sources other than ``file://``."""
    parsed = urlparse(source)
    return bool(parsed.scheme) and parsed.scheme != "file" and "://" in source


def fetch_clip(source: str, *, start: float | None = None, end: float | None = None,
               fps: float | None = None, max_height: int = 480,
               cache_dir: str | Path | None = None, progress: Progress | None = None,
               section: bool | None = None) -> FetchResult:
    """Fetch ``source`` (URL or local path), trim it to [start, end] and cache the clip.

    Args:
        source: a URL yt-dlp supports (the video's page, or a direct link to a video file),
            or a local video file (``file://`` URLs too).
        start, end: the range in seconds (None = from the beginning / to the end). A range
            reaching past the end of the video is cut at its end.
        fps: resample to this frame rate (None = keep the source's rate, made constant).
        max_height: shrink to at most this many rows (never enlarged); also caps the format
            yt-dlp picks.
        cache_dir: overrides :func:`default_cache_dir`.
        progress: optional callback for download and trim progress.
        section: download only the range (yt-dlp download ranges, re-encoded at exact cuts):
            None = only for videos of 2 minutes or more, True = always, False = never.

    Raises:
        UserError: unreachable URL, unsupported site, removed/private video, not a video,
            corrupt video, empty range, or a start beyond the end of the video.
    """
    start_s = 0.0 if start is None else float(start)
    if start_s < 0:
        raise UserError(f"start {start_s:g}s is negative", where="--start", fix="use 0 or more seconds")
    if end is not None and end <= start_s:
        raise UserError(f"the range {start_s:g}s-{end:g}s is empty", where="--start/--end",
                        fix="give an end later than the start")
    if fps is not None and not 0 < fps <= 240:
        raise UserError(f"fps {fps:g} out of range", where="--fps", fix="use 1-240")
    if not 16 <= max_height <= 4320:
        raise UserError(f"max height {max_height} out of range", where="--max-height", fix="use 16-4320")

    url = is_url(source)
    if url:
        origin = source.strip()
    else:
        local = Path(source[7:] if source.startswith("file://") else source).expanduser()
        if not local.is_file():
            raise UserError("no such file, and not a URL", where=source,
                            fix="pass an http(s) URL or the path of a video file")
        stat = local.stat()
        origin = str(local.resolve())
    key_fields = {"source": origin, "start": start_s, "end": end, "fps": fps, "max_height": max_height}
    if not url:
        key_fields.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:20]

    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    final = cache / key
    hit = _read_cached(final)
    if hit is not None:
        return hit

    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the cache directory: {exc.strerror}", where=str(cache),
                        fix=f"pass --cache-dir or set {CACHE_ENV} to a writable directory") from None
    _sweep_stale(cache)
    work = Path(tempfile.mkdtemp(prefix=f".partial-{key}-", dir=cache))
    try:
        if url:
            got = download(origin, work, max_height=max_height, start=start_s, end=end,
                           section=section, progress=progress)
            raw, title, offset = got.path, got.title, got.offset
            try:
                info = probe_video(raw)
            except UserError as exc:
                raise UserError(f"the download is not a playable video: {exc.what}", where=source,
                                fix="pass the page of a video, or a direct link to a video file") from None
            fetched = "section" if got.section else "download"
        else:
            raw, title, offset, fetched = Path(origin), Path(origin).name, 0.0, "local"
            info = probe_video(raw)
        clip_start = start_s - offset
        if clip_start >= info.duration - 0.5 / info.fps:
            raise UserError(f"start {start_s:g}s is beyond the end of the video "
                            f"({info.duration + offset:.2f}s)", where=source,
                            fix="pick a start inside the video")
        clip_end = info.duration if end is None else min(end - offset, info.duration)
        out_fps = float(fps) if fps is not None else round(info.fps, 3)
        clip = work / "clip.mp4"
        trim(info, clip, clip_start, clip_end, out_fps, max_height, progress)
        made = probe_video(clip)
        wanted = clip_end - clip_start
        if made.duration < wanted - max(2.0 / out_fps, 0.05 * wanted):
            raise UserError(f"the video is corrupt: only {made.duration:.2f}s of {wanted:.2f}s "
                            "could be decoded", where=source,
                            fix="fetch it again, or pass another copy of the video")
        result = FetchResult(path=str(final / "clip.mp4"), source=origin, title=title,
                             start=start_s, end=start_s + made.duration, fps=made.fps,
                             width=made.width, height=made.height, frames=made.frame_count,
                             fetched=fetched, cached=False)
        (work / "clip.json").write_text(json.dumps(asdict(result), indent=2), encoding="utf-8")
        if raw.parent == work:
            raw.unlink()
        try:
            work.rename(final)
        except OSError:  # another process cached the same clip meanwhile: use theirs
            theirs = _read_cached(final)
            if theirs is not None:
                return theirs
            shutil.rmtree(final, ignore_errors=True)  # an unreadable entry (older format?)
            work.rename(final)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _read_cached(entry: Path) -> FetchResult | None:
    clip, meta = entry / "clip.mp4", entry / "clip.json"
    if not (clip.is_file() and meta.is_file()):
        return None
    try:
        fields = json.loads(meta.read_text(encoding="utf-8"))
        fields.update(path=str(clip), cached=True)
        return FetchResult(**fields)
    except (ValueError, TypeError):
        return None


def _sweep_stale(cache: Path, max_age_s: float = 6 * 3600) -> None:
    """Remove ``.partial-*`` directories a killed fetch left behind (older than ``max_age_s``)."""
    now = time.time()
    for leftover in cache.glob(".partial-*"):
        try:
            if now - leftover.stat().st_mtime > max_age_s:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass


# -- trimming -----------------------------------------------------------------------------------
def trim(info: VideoInfo, out: Path, start: float, end: float, fps: float, max_height: int,
         progress: Progress | None = None) -> Path:
    """Cut [start, end] s of ``info.path`` exactly (re-encoded), at ``fps``, at most
    ``max_height`` rows, into an H.264 mp4 without audio."""
    height = min(max_height, info.height) // 2 * 2
    width = max(2, round(info.width * height / info.height / 2) * 2)
    duration = end - start
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
           "-y", "-ss", f"{start:.6f}", "-i", info.path, "-t", f"{duration:.6f}",
           "-map", "0:v:0", "-an", "-sn", "-dn",
           "-vf", f"fps={fps:.6f},scale={width}:{height},setsar=1",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
           "-movflags", "+faststart", "-progress", "pipe:1", "-nostats", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # key=value lines; out_time_us tells how far it got
        if progress and line.startswith("out_time_us=") and duration > 0:
            try:
                progress("trim", min(1.0, int(line.split("=", 1)[1]) / 1e6 / duration))
            except ValueError:
                pass
    err = proc.stderr.read() if proc.stderr else ""
    if proc.wait() != 0 or not out.is_file() or out.stat().st_size == 0:
        detail = (err.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"the video could not be decoded: {detail}", where=info.path,
                        fix="the file may be corrupt; fetch it again or pass another video")
    return out


# -- downloading --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Download:
    """What :func:`download` fetched."""

    path: Path
    title: str
    offset: float
    """Where the file starts in the video, seconds (the range start for a section, else 0)."""
    section: bool
    """True when only the requested range was downloaded."""


class _QuietLogger:
    """Keeps yt-dlp's messages off the terminal; the last error explains a failure."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        pass

    def error(self, msg: str) -> None:
        self.errors.append(msg)


def download(url: str, work: Path, *, max_height: int, start: float = 0.0,
             end: float | None = None, section: bool | None = None,
             progress: Progress | None = None) -> Download:
    """Download the video at ``url`` into ``work`` with yt-dlp, its format capped at
    ``max_height`` rows (the largest format not above it, else the smallest).

    ``section`` as in :func:`fetch_clip`; a start known to lie beyond the video's end fails
    before anything is downloaded.
    """
    import yt_dlp
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    took_section: list[bool] = []

    def ranges(info: dict, _ydl: object) -> list[dict]:
        duration = info.get("duration")
        if duration and start >= duration:  # known before any byte of video is fetched
            raise UserError(f"start {start:g}s is beyond the end of the video ({duration:.2f}s)",
                            where=url, fix="pick a start inside the video")
        wanted = section if section is not None else bool(
            duration and duration >= LONG_VIDEO_S
            and ((end or duration) - start) < duration / 2 and not info.get("is_live"))
        took_section.append(wanted)
        if not wanted:
            return [{}]
        span: dict = {"start_time": start}
        if end is not None:
            span["end_time"] = end
        return [span]

    def hook(status: dict) -> None:
        if progress and status.get("status") == "downloading":
            total = status.get("total_bytes") or status.get("total_bytes_estimate")
            done = status.get("downloaded_bytes")
            progress("download", min(1.0, done / total) if total and done is not None else None)

    logger = _QuietLogger()
    options = {
        "format": "bv*/b",
        "format_sort": [f"res:{max_height}", "vcodec:h264", "ext:mp4"],
        "outtmpl": str(work / "source.%(ext)s"),
        "noplaylist": True, "playlist_items": "1",
        "quiet": True, "no_warnings": True, "noprogress": True, "logger": logger,
        "cachedir": False, "socket_timeout": SOCKET_TIMEOUT_SECONDS, "retries": 1, "fragment_retries": 1,
        "extractor_retries": 0, "fixup": "never", "updatetime": False, "overwrites": True,
        "ffmpeg_location": ffmpeg, "download_ranges": ranges, "force_keyframes_at_cuts": True,
        "progress_hooks": [hook],
    }

    def run() -> dict | None:
        # yt-dlp looks for ffmpeg through a context variable its own CLI sets; set it in a
        # copied context so the bundled binary is found without touching PATH
        location = getattr(FFmpegPostProcessor, "_ffmpeg_location", None)
        if location is not None:
            location.set(ffmpeg)
        with yt_dlp.YoutubeDL(options) as ydl:  # type: ignore[arg-type]
            return ydl.extract_info(url, download=True)

    info: dict | None
    try:
        info = contextvars.copy_context().run(run)
    except yt_dlp.utils.DownloadError as exc:
        raise download_error(str(exc), url) from None
    except yt_dlp.utils.YoutubeDLError as exc:
        raise download_error(str(exc), url) from None
    if info and info.get("_type") == "playlist":
        entries = [e for e in info.get("entries") or [] if e]
        info = entries[0] if entries else None
    files = [p for p in work.glob("source.*") if not p.name.endswith((".part", ".ytdl"))]
    if not info or not files:
        raise UserError("no video was downloaded", where=url,
                        fix="check that the URL shows a single video")
    title = str(info.get("title") or info.get("id") or url)
    cut = bool(took_section and took_section[-1])
    return Download(path=files[0], title=title, offset=start if cut else 0.0, section=cut)


SOCKET_TIMEOUT_SECONDS = 20.0
"""How long a download waits for a silent site before it gives up."""


def download_error(message: str, url: str) -> UserError:
    """One clear line for a failed download, by what yt-dlp said."""
    text = " ".join(message.replace("ERROR: ", "").split())
    low = text.lower()
    if "unsupported url" in low:
        return UserError("unsupported site, or no video at this URL", where=url,
                         fix="pass a page yt-dlp supports (`yt-dlp --list-extractors`), a direct "
                             "link to a video file, or a local file")
    if "private" in low:
        return UserError("the video is private", where=url, fix="use a public video")
    if "timed out" in low or "timeout" in low:  # before "removed": a silent host is not a 404
        return UserError(f"the site did not answer: timed out after {SOCKET_TIMEOUT_SECONDS:g} s",
                         where=url, fix="check the address and your network connection, or "
                                        "try again later")
    if any(s in low for s in ("http error 404", "http error 410", "removed", "unavailable",
                              "not available", "does not exist", "deleted")):
        return UserError("the video was removed or does not exist", where=url,
                         fix="check the URL, or use another video")
    if any(s in low for s in ("http error 401", "http error 403", "sign in", "log in", "login",
                              "age-restricted", "members-only")):
        return UserError("access denied: the video needs a login or is restricted", where=url,
                         fix="use a public video, or download it yourself and pass the file")
    if any(s in low for s in ("connection refused", "timed out", "name or service not known",
                              "name resolution", "failed to resolve", "network is unreachable",
                              "no route to host", "connection reset", "unable to download webpage",
                              "transporterror", "urlopen error", "certificate")):
        return UserError("cannot reach the URL", where=url,
                         fix="check the address and your network connection")
    return UserError(f"download failed: {text[:200]}", where=url,
                     fix="check the URL; pass a local file if the site keeps failing")
