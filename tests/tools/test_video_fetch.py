"""Fetching the expert video: a local HTTP server on 127.0.0.1 stands in for the internet
(yt-dlp's generic extractor), local files work offline, exact trims, the cache, and one-line
errors that leave nothing in the cache."""

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import yt_dlp

from vid2reward.sim.errors import UserError
from vid2reward.sim.render import write_mp4
from vid2reward.tools.video_fetch import default_cache_dir, download_error, fetch_clip
from vid2reward.tools.video_frames import read_frames

FPS, SECONDS = 30, 5


def bar_frame(i: int) -> np.ndarray:
    """Frame i shows a white bar at x = 2 i + 4, so every frame tells its own index."""
    frame = np.full((240, 320, 3), 40, np.uint8)
    frame[:, 2 * i + 4:2 * i + 8] = 255
    return frame


def index_of(frame: np.ndarray, scale: float = 1.0) -> float:
    """Which frame this is, from the centre of its bar (``scale``: the frame's size / 320)."""
    bright = np.nonzero(frame[..., 0].mean(axis=0) > 128)[0]
    return (bright.mean() / scale - 5.5) / 2


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site")
    clip = write_mp4([bar_frame(i) for i in range(FPS * SECONDS)], root / "clip.mp4", FPS)
    (root / "page.html").write_text("<html><body><p>no video here</p></body></html>")
    (root / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    (root / "notes.txt").write_text("not a video\n" * 50)
    (root / "corrupt.mp4").write_bytes(clip.read_bytes()[:1500])  # header only, no frames
    return root


@pytest.fixture(scope="module")
def site(videos, serve_directory):
    with serve_directory(videos) as url:
        yield url


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_url_fetch_is_trimmed_exactly_and_cached(site, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = fetch_clip(f"{site}/clip.mp4", start=1, end=3, cache_dir=cache)
    assert not first.cached and first.fetched == "download"
    assert abs(first.duration - 2.0) <= 1 / FPS and first.fps == pytest.approx(FPS)
    frames = read_frames(first.path).frames
    assert abs(index_of(frames[0]) - 30) <= 1 and abs(index_of(frames[-1]) - 89) <= 1
    assert [p.name for p in cache.iterdir()] == [Path(first.path).parent.name]  # no leftovers

    def no_network(*args, **kwargs):
        raise AssertionError("a cache hit must not call yt-dlp")

    monkeypatch.setattr(yt_dlp, "YoutubeDL", no_network)
    again = fetch_clip(f"{site}/clip.mp4", start=1, end=3, cache_dir=cache)
    assert again.cached and again.path == first.path and again.frames == first.frames


def test_section_download_starts_at_the_range(site, tmp_path):
    got = fetch_clip(f"{site}/clip.mp4", start=1, end=3, fps=10, cache_dir=tmp_path, section=True)
    assert got.fetched == "section" and got.frames == 20
    assert abs(index_of(read_frames(got.path).frames[0]) - 30) <= 1


def test_local_file_offline_resampled_into_the_env_cache(videos, tmp_path, monkeypatch):
    monkeypatch.setenv("VID2REWARD_CACHE", str(tmp_path / "env-cache"))
    got = fetch_clip(str(videos / "clip.mp4"), fps=10, max_height=120)
    assert Path(got.path).parent.parent == tmp_path / "env-cache"
    assert (got.fetched, got.width, got.height, got.fps) == ("local", 160, 120, 10)
    assert abs(got.duration - SECONDS) <= 0.1
    frames = read_frames(got.path).frames
    assert abs(index_of(frames[1], scale=0.5) - 3) <= 1  # every third frame, at half the width


def test_an_unreadable_cache_entry_is_replaced(videos, tmp_path):
    first = fetch_clip(str(videos / "clip.mp4"), end=1, cache_dir=tmp_path)
    (Path(first.path).parent / "clip.json").write_text("{not json")
    again = fetch_clip(str(videos / "clip.mp4"), end=1, cache_dir=tmp_path)
    assert not again.cached and again.path == first.path
    assert fetch_clip(str(videos / "clip.mp4"), end=1, cache_dir=tmp_path).cached


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("VID2REWARD_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "vid2reward" / "videos"
    monkeypatch.setenv("VID2REWARD_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


def test_an_edited_local_file_is_fetched_again(videos, tmp_path):
    source = tmp_path / "copy.mp4"
    source.write_bytes((videos / "clip.mp4").read_bytes())
    first = fetch_clip(str(source), end=1, cache_dir=tmp_path / "c")
    os.utime(source, ns=(1, 1))
    assert not fetch_clip(str(source), end=1, cache_dir=tmp_path / "c").cached
    assert fetch_clip(str(source), end=1, cache_dir=tmp_path / "c").cached
    assert Path(first.path).is_file()


BAD_INPUTS = {
    "unreachable URL": (lambda site, v: f"http://127.0.0.1:{closed_port()}/clip.mp4", {},
                        "cannot reach"),
    "unsupported site": (lambda site, v: f"{site}/page.html", {}, "unsupported site"),
    "removed video": (lambda site, v: f"{site}/gone.mp4", {}, "removed or does not exist"),
    "download not a video": (lambda site, v: f"{site}/noise.mp4", {}, "not a playable video"),
    "file not a video": (lambda site, v: str(v / "notes.txt"), {}, "not a video"),
    "corrupt file": (lambda site, v: str(v / "corrupt.mp4"), {}, "corrupt"),
    "missing file": (lambda site, v: str(v / "nope.mp4"), {}, "no such file"),
    "empty range": (lambda site, v: str(v / "clip.mp4"), {"start": 2, "end": 2}, "is empty"),
    "start beyond end (file)": (lambda site, v: str(v / "clip.mp4"), {"start": 9},
                                "beyond the end"),
    "start beyond end (URL)": (lambda site, v: f"{site}/clip.mp4", {"start": 9, "end": 12},
                               "beyond the end"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_clear_line_and_leaves_no_cache(case, site, videos, tmp_path):
    source, kwargs, expected = BAD_INPUTS[case]
    cache = tmp_path / "cache"
    with pytest.raises(UserError) as info:
        fetch_clip(source(site, videos), cache_dir=cache, **kwargs)
    message = str(info.value)
    assert expected in message and "\n" not in message and info.value.fix
    assert not cache.exists() or list(cache.iterdir()) == []


@pytest.mark.parametrize("said, expected", [
    ("ERROR: [youtube] abc: Private video. Sign in if you've been granted access", "private"),
    ("ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader",
     "removed"),
    ("ERROR: [youtube] abc: Sign in to confirm your age", "access denied"),
    ("ERROR: something odd\nover two lines", "download failed: something odd over two lines"),
])
def test_what_yt_dlp_says_becomes_one_line(said, expected):
    error = download_error(said, "https://example.org/v")
    assert expected in str(error) and "\n" not in str(error)


def test_a_site_that_never_answers_says_it_timed_out(tmp_path, monkeypatch):
    """A blackholed address: the connection is accepted (or hangs) and nothing comes back."""
    import vid2reward.tools.video_fetch as video_fetch

    monkeypatch.setattr(video_fetch, "SOCKET_TIMEOUT_SECONDS", 1.0)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts into the backlog, never reads or answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/clip.mp4"
        with pytest.raises(UserError) as info:
            fetch_clip(url, cache_dir=tmp_path / "cache")
    finally:
        silent.close()
    assert "timed out after 1 s" in str(info.value) and "removed" not in str(info.value)
