"""Where everything of a run lives (the layout in docs/design.md, "Run directory")."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunPaths:
    """Paths inside one run directory."""

    root: Path
    created: tuple[Path, ...] = field(default=(), compare=False)
    """Directories this process created for the run (root and parents), outermost first: a
    run that fails before doing any work removes them again, and only them."""

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints.sqlite"

    @property
    def expert(self) -> Path:
        return self.root / "expert"

    @property
    def best(self) -> Path:
        return self.root / "best"

    def iteration(self, n: int) -> Path:
        """``iter-NNN``: feedback.json, edits.json, audit.json of iteration n."""
        return self.root / f"iter-{n:03d}"

    def candidate(self, candidate_id: str) -> Path:
        """A candidate's directory: reward.py, policy.zip, metrics.json, clip.mp4, features.json."""
        return self.root / candidate_id


def candidate_id(iteration: int, index: int) -> str:
    """``iter-NNN/cand-MM``."""
    return f"iter-{iteration:03d}/cand-{index:02d}"


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a temp file renamed into place): readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(path.read_text(encoding="utf-8"))
