"""Editing reward programs: three kinds of edit, a content-addressed store, diffs.

An engineer (LLM or person) changes a reward program with one of three edits:

- :class:`ReplaceAll`: the whole new source;
- :class:`UnifiedDiff`: a ``diff -u`` style patch (line numbers in ``@@`` headers are hints:
  hunks are found by their context, so a patch written against slightly shifted line numbers
  still applies, and one whose context is not in the source fails with the first line that
  differs);
- :class:`SearchReplace`: replace one exact, unique block of text.

:func:`apply_edit` is pure (source in, source out). :class:`RewardStore` keeps every version as
``<root>/<sha256[:16]>.py``, named by its content, written once and made read-only: an edit
always produces a new version and never changes an existing one. :func:`diff_sources` shows
what changed between two versions.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vid2reward.sim.errors import UserError
from vid2reward.sim.reward import program_sha256


@dataclass(frozen=True)
class ReplaceAll:
    """Replace the whole program with ``source``."""

    source: str


@dataclass(frozen=True)
class UnifiedDiff:
    """Apply a unified diff (``---``/``+++`` headers optional, one or more ``@@`` hunks)."""

    diff: str


@dataclass(frozen=True)
class SearchReplace:
    """Replace the one occurrence of ``search`` (exact text, whitespace included) by ``replace``."""

    search: str
    replace: str


CodeEdit = ReplaceAll | UnifiedDiff | SearchReplace
"""Any edit :func:`apply_edit` understands."""


class EditError(UserError):
    """An edit that does not apply to the source it was meant for."""


def sha256_of(source: str) -> str:
    """The content hash that names a reward version (``sim.reward.program_sha256``)."""
    return program_sha256(source)


def apply_edit(source: str, edit: CodeEdit) -> str:
    """The source after ``edit``; ``source`` itself is never changed.

    Raises:
        EditError: the search text is missing or not unique, or a diff hunk's context is not
            in the source (the message names the hunk and the first line that differs).
    """
    if isinstance(edit, ReplaceAll):
        return edit.source
    if isinstance(edit, SearchReplace):
        return _search_replace(source, edit)
    if isinstance(edit, UnifiedDiff):
        return apply_unified_diff(source, edit.diff)
    raise TypeError(f"not an edit: {edit!r}")


def diff_sources(old: str, new: str, old_name: str = "a/reward.py",
                 new_name: str = "b/reward.py", context: int = 3) -> str:
    """A unified diff from ``old`` to ``new`` ("" when they are equal)."""
    return "".join(difflib.unified_diff(_lines(old), _lines(new), old_name, new_name, n=context))


# -- search/replace -----------------------------------------------------------------------------

def _search_replace(source: str, edit: SearchReplace) -> str:
    if not edit.search:
        raise EditError("the search text is empty", where="search",
                        fix="copy the exact lines to replace from the current program")
    count = source.count(edit.search)
    if count == 1:
        return source.replace(edit.search, edit.replace, 1)
    if count > 1:
        raise EditError(f"the search text occurs {count} times", where="search",
                        fix="include more surrounding lines so it matches exactly once")
    hint = _closest_line(source, edit.search.strip().splitlines()[0] if edit.search.strip() else "")
    raise EditError("the search text is not in the program" + hint, where="search",
                    fix="copy the exact lines (whitespace included) from the current program")


def _closest_line(source: str, wanted: str) -> str:
    match = difflib.get_close_matches(wanted, [ln.strip() for ln in source.splitlines()], n=1)
    return f"; closest line: {match[0]!r}" if match else ""


# -- unified diffs ------------------------------------------------------------------------------

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class _Hunk:
    header: str
    old_start: int
    old: list[str]
    new: list[str]


def apply_unified_diff(source: str, diff: str) -> str:
    """Apply a unified diff to ``source`` (see :class:`UnifiedDiff`)."""
    hunks = _parse_hunks(diff)
    lines = _lines(source)
    offset = 0  # how far earlier hunks moved the lines below them
    for number, hunk in enumerate(hunks, 1):
        at = _find(lines, hunk.old, hunk.old_start - 1 + offset)
        if at is None:
            raise EditError(f"hunk {number} ({hunk.header}) does not match the program"
                            f"{_first_difference(lines, hunk)}", where="diff",
                            fix="make the diff against the current version; context and '-' "
                                "lines must match it exactly")
        lines[at:at + len(hunk.old)] = hunk.new
        offset = at - (hunk.old_start - 1) + len(hunk.new) - len(hunk.old)
    return "".join(lines)


def _parse_hunks(diff: str) -> list[_Hunk]:
    hunks: list[_Hunk] = []
    current: _Hunk | None = None
    for raw in diff.splitlines(keepends=True):
        match = _HUNK.match(raw)
        if match:
            current = _Hunk(raw.strip(), int(match.group(1)), [], [])
            hunks.append(current)
            continue
        if current is None:  # file headers and any chatter before the first hunk
            continue
        if raw.startswith("\\"):  # "\ No newline at end of file": the previous line has none
            for side in (current.old, current.new):
                if side and side[-1].endswith("\n"):
                    side[-1] = side[-1][:-1]
            continue
        if raw.startswith(("--- ", "+++ ")) and not current.old and not current.new:
            continue
        tag, text = raw[:1], raw[1:]
        if text and not text.endswith("\n"):
            text += "\n"
        if raw in ("\n", ""):  # an empty context line whose leading space was stripped
            tag, text = " ", "\n"
        if tag == " ":
            current.old.append(text)
            current.new.append(text)
        elif tag == "-":
            current.old.append(text)
        elif tag == "+":
            current.new.append(text)
        else:
            raise EditError(f"line {raw.rstrip()!r} in {current.header} starts with neither "
                            f"' ', '-' nor '+'", where="diff",
                            fix="give a unified diff (diff -u); prefix context lines with a space")
    if not hunks:
        raise EditError("the diff has no hunks", where="diff",
                        fix="give a unified diff with '@@ -a,b +c,d @@' hunk headers")
    return hunks


def _find(lines: list[str], block: list[str], hint: int) -> int | None:
    """Where ``block`` occurs in ``lines``, nearest to ``hint``; ignores trailing whitespace."""
    if not block:
        return max(0, min(hint, len(lines)))
    want = [b.rstrip() for b in block]
    have = [ln.rstrip() for ln in lines]
    starts = [i for i in range(len(lines) - len(block) + 1) if have[i:i + len(block)] == want]
    return min(starts, key=lambda i: abs(i - hint)) if starts else None


def _first_difference(lines: list[str], hunk: _Hunk) -> str:
    start = max(0, hunk.old_start - 1)
    for k, expected in enumerate(hunk.old):
        actual = lines[start + k] if start + k < len(lines) else None
        if actual is None or actual.rstrip() != expected.rstrip():
            got = "end of file" if actual is None else repr(actual.rstrip())
            return f": line {start + k + 1} is {got}, the diff expects {expected.rstrip()!r}"
    return ""


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


# -- the store ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RewardVersion:
    """One stored version of a reward program."""

    sha256: str
    path: Path
    """``<root>/<sha256[:16]>.py``, read-only."""
    parent: str | None = None
    """The version it was edited from, if known."""

    @property
    def id(self) -> str:
        """The short id (first 16 hex digits of the hash) used in file names and messages."""
        return self.sha256[:16]


class RewardStore:
    """Reward versions stored by content hash under ``root``; existing files are never changed.

    ``versions.jsonl`` in ``root`` logs each new version with its parent and edit kind
    (append-only).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def put(self, source: str, parent: str | None = None, kind: str = "add") -> RewardVersion:
        """Store ``source`` (a no-op when that exact source is stored already)."""
        sha = sha256_of(source)
        path = self.root / f"{sha[:16]}.py"
        self.root.mkdir(parents=True, exist_ok=True)
        if path.exists():
            if path.read_text(encoding="utf-8") != source:  # a 64-bit prefix collision
                raise EditError("a different program is stored under the same id", where=str(path),
                                fix="change the program a little (a comment) to give it another id")
            return RewardVersion(sha, path, parent)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(source)
            os.chmod(tmp, 0o444)
            try:
                os.link(tmp, path)  # atomic, and fails rather than replace an existing file
            except FileExistsError:  # another process stored the same source first
                pass
        finally:
            os.unlink(tmp)
        with open(self.root / "versions.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps({"sha256": sha, "parent": parent, "kind": kind,
                                  "time": time.time()}) + "\n")
        return RewardVersion(sha, path, parent)

    def get(self, version: str) -> str:
        """The source of a version, by full hash or a prefix of at least 8 hex digits."""
        return self.path(version).read_text(encoding="utf-8")

    def path(self, version: str) -> Path:
        """The file of a version (see :meth:`get` for what ``version`` may be)."""
        key = version.lower()
        if len(key) < 8 or not re.fullmatch(r"[0-9a-f]+", key):
            raise EditError(f"'{version}' is not a version id", where="version",
                            fix="give at least 8 hex digits of the version's sha256")
        matches = sorted(self.root.glob(f"{key[:16]}*.py")) if self.root.is_dir() else []
        if len(key) > 16:  # the file name holds 16 digits: check the rest against the content
            matches = [p for p in matches
                       if sha256_of(p.read_text(encoding="utf-8")).startswith(key)]
        if len(matches) != 1:
            found = "no" if not matches else f"{len(matches)}"
            raise EditError(f"{found} stored versions match '{version}'", where=str(self.root),
                            fix="list the stored versions with RewardStore.versions()")
        return matches[0]

    def apply(self, version: str, edit: CodeEdit) -> RewardVersion:
        """Apply ``edit`` to a stored version and store the result as a new version."""
        source = self.path(version).read_text(encoding="utf-8")
        new = apply_edit(source, edit)
        return self.put(new, parent=sha256_of(source), kind=type(edit).__name__)

    def diff(self, old: str, new: str, context: int = 3) -> str:
        """A unified diff between two stored versions."""
        return diff_sources(self.get(old), self.get(new), f"{old[:16]}.py", f"{new[:16]}.py",
                            context)

    def versions(self) -> list[str]:
        """Short ids of every stored version, sorted."""
        return sorted(p.stem for p in self.root.glob("*.py")) if self.root.is_dir() else []
