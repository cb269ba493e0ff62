"""The video verbs end to end: fetch (from a local HTTP server, then from the cache),
features and compare; bad input is one error line and exit 2."""

import json
from pathlib import Path

import pytest

from vid2reward.agent.cli import main
from vid2reward.sim.render import write_mp4
from vid2reward.tools.synthetic_clips import synthetic_clip

FPS = 30


@pytest.fixture(scope="module")
def site(tmp_path_factory, serve_directory):
    root = tmp_path_factory.mktemp("site")
    write_mp4(synthetic_clip(4, FPS, 240, bob_hz=2.0, speed=0.8), root / "clip.mp4", FPS)
    write_mp4(synthetic_clip(3, FPS, 240, bob_hz=3.0, speed=0.4), root / "other.mp4", FPS)
    (root / "page.html").write_text("<html><body><p>no video here</p></body></html>")
    with serve_directory(root) as url:
        yield url, root


def test_fetch_prints_the_path_then_serves_the_cache(site, tmp_path, capsys):
    url, _ = site
    argv = ["fetch", f"{url}/clip.mp4", "--start", "1", "--end", "3", "--cache-dir", str(tmp_path)]
    assert main(argv) == 0
    first = capsys.readouterr()
    path = Path(first.out.strip().splitlines()[-1])
    assert path.is_file() and "fetched (download)" in first.err and "60 frames" in first.err
    assert main(argv + ["--features", "--sheet"]) == 0
    second = capsys.readouterr()
    assert second.out.strip() == str(path) and "cached" in second.err
    assert (path.parent / "sheet.png").is_file()
    assert json.loads((path.parent / "features.json").read_text())["cadence_hz"] > 0


def test_fetch_bad_input_exits_2_with_one_error_line(site, tmp_path, capsys):
    url, _ = site
    assert main(["fetch", f"{url}/page.html", "--cache-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: unsupported site") and err[1].startswith("fix:")
    assert len(err) == 2
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


def test_features_and_compare_verbs(site, tmp_path, capsys):
    _, root = site
    assert main(["features", str(root / "clip.mp4"), "--json", "--out", str(tmp_path / "f.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert abs(printed["cadence_hz"] - 2.0) < 0.2 and (tmp_path / "f.json").is_file()
    assert main(["compare", str(root / "clip.mp4"), str(root / "other.mp4"),
                 "--out", str(tmp_path / "cmp"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["differences"]["cadence_hz"] > 0.3
    assert Path(result["side_by_side_mp4"]).is_file() and Path(result["contact_sheet"]).is_file()
    assert main(["features", str(root / "page.html")]) == 2
    assert "error: the file is not a video" in capsys.readouterr().err
