"""Directories the user names with ``--out``: made with one-line errors, never clobbered, and
cleaned up after a failure -- only what this command created, never the user's files.

``vid2reward run`` wants a new or empty directory; ``vid2reward train`` also accepts a previous
training result and then replaces only the files training writes (a clip rendered beside them,
or notes, stay).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from vid2reward.sim.errors import UserError

TRAIN_OUTPUTS = ("policy.zip", "vecnormalize.pkl", "metrics.json", "reward.py", "tb")
"""What ``vid2reward train`` writes into its output directory (sim/train.py)."""

T = TypeVar("T")


def make_dirs(path: Path, flag: str = "--out", where: Path | None = None) -> list[Path]:
    """Create the directory ``path`` and its missing parents, and check it can be written.

    Args:
        path: the directory to make.
        flag: the option that named it, for messages.
        where: what the user typed (``path`` itself, or a file inside it), for messages.

    Returns:
        The directories this call created, outermost first (for :func:`remove_created`).

    Raises:
        UserError: ``path`` or a parent is a file, or the place cannot be written
            (/proc, /sys, a read-only file system, no permission).
    """
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    where = where or path
    if not ancestor.is_dir():
        raise UserError(f"{flag} needs a directory where there is a file: {ancestor}",
                        where=str(where), fix=f"choose another {flag}")
    created = [p for p in [path, *path.parents] if not p.exists()][::-1]
    try:
        path.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=".write-test-", dir=path))  # mkdir alone misses ro dirs
    except OSError as exc:
        remove_created(created)
        raise UserError(f"cannot write {flag} in {path}: {exc.strerror or exc}", where=str(where),
                        fix=f"choose a writable directory for {flag}") from None
    return created


def remove_created(created: list[Path]) -> None:
    """Remove directories :func:`make_dirs` created, innermost first, if they are still empty."""
    for path in reversed(created):
        try:
            path.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return  # not empty: something else lives there now


def is_training_result(path: Path) -> bool:
    """True when ``path`` holds a ``vid2reward train`` output (its metrics.json)."""
    try:
        metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(metrics, dict) and {"status", "env_id", "reward_sha256"} <= metrics.keys()


def check_train_out(out: Path) -> list[Path]:
    """Refuse an ``--out`` that training would clobber (a file, or a non-empty directory that
    is not a previous training result) or could not write; make its missing parents.

    Returns:
        The parents created (give them to :func:`train_into`, which removes them on failure).
    """
    if out.exists() and not out.is_dir():
        raise UserError("--out exists and is not a directory", where=str(out), fix="choose another --out")
    if out.is_dir() and any(out.iterdir()) and not is_training_result(out):
        raise UserError("--out is a non-empty directory that is not a previous training result",
                        where=str(out), fix="choose a new or empty directory for --out")
    return make_dirs(out.parent, where=out)


def train_into(out: Path, train: Callable[[Path], T], created: list[Path] | None = None) -> T:
    """Run ``train(work_dir)`` into a fresh sibling of ``out``, then move its files into ``out``.

    Only the files training writes are replaced: whatever else ``out`` holds stays. When
    ``train`` raises (a broken reward, Ctrl-C), the directories made for it are removed again
    (``created``: from :func:`check_train_out`, which runs here when not given).
    """
    if created is None:
        created = check_train_out(out)
    work = out.parent / f".{out.name}.train-{os.getpid()}"
    try:
        result = train(work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        remove_created(created)
        raise
    out.mkdir(exist_ok=True)
    for name in TRAIN_OUTPUTS:  # the old result's files: a failed training leaves no stale policy
        old = out / name
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        elif old.exists() or old.is_symlink():
            old.unlink()
    for item in work.iterdir():
        target = out / item.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        item.replace(target)
    work.rmdir()
    return result
