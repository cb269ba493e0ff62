"""A wheel (a non-editable install) carries every module, prompt and bundled clip."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"agent": "vid2reward/agent", "tools": "vid2reward/tools", "sim": "vid2reward/sim",
           "prompts": "vid2reward/prompts", "examples": "vid2reward/examples"}


def test_wheel_holds_every_source_file(tmp_path):
    # Build from a clean copy: a build/ folder left in the checkout would hide missing packages.
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "runs", "*.egg-info", "__pycache__", ".*_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(source)], check=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("vid2reward-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder, package in FOLDERS.items():
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".txt", ".mp4", ".json"} \
                    and "__pycache__" not in path.parts:
                expected.add(f"{package}/{path.relative_to(REPO / folder).as_posix()}")
    missing = sorted(expected - names)
    assert not missing, missing[:10]
