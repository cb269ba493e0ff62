"""The bundled expert clips: one mp4 and one JSON (hidden reward, state metrics) per expert task.

``build_experts`` makes them (``vid2reward bench experts``); ``bundled_expert`` finds them. They
live in ``examples/experts/`` (installed as ``vid2reward.examples``) so benchmarks and CI never
train an expert. Policies are not shipped: a clip and its metrics are all a benchmark needs.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vid2reward.agent.expert_tasks import EXPERT_TASKS, make_expert
from vid2reward.agent.run_record import write_json
from vid2reward.sim.errors import UserError


def experts_folder() -> Path:
    """``examples/experts/`` of the installed package (where the bundled clips live)."""
    from vid2reward import examples

    return Path(examples.__file__).parent / "experts"


def bundled_expert(task: str, folder: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The clip and expert.json contents of ``task``.

    Raises:
        UserError: the task is unknown or its clip was never built.
    """
    if task not in EXPERT_TASKS:
        raise UserError(f"unknown expert task '{task}'", where="--tasks",
                        fix=f"choose from {', '.join(EXPERT_TASKS)}")
    folder = folder or experts_folder()
    clip, info = folder / f"{task}.mp4", folder / f"{task}.json"
    if not (clip.is_file() and info.is_file()):
        raise UserError(f"no bundled expert for '{task}'", where=str(folder),
                        fix=f"build it: vid2reward bench experts --tasks {task} --out {folder}")
    return clip, json.loads(info.read_text(encoding="utf-8"))


def build_experts(tasks: list[str], out: Path, *, work: Path, seed: int = 0,
                  log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train, render and measure each task's expert; copy ``<task>.mp4`` and ``<task>.json``
    into ``out``. Training output (policy, contact sheet) stays in ``work``.
    """
    out.mkdir(parents=True, exist_ok=True)
    infos = []
    for name in tasks:
        task = EXPERT_TASKS[name]
        t0 = time.monotonic()
        log(f"{name}: training {task.train_steps:,} steps on {task.env_id}")
        info = make_expert(task, work / name, seed=seed)
        info["made_by"] = (f"vid2reward bench experts --tasks {name} (make_expert, seed {seed}, "
                           f"{task.train_steps} steps)")
        info["wall_seconds"] = round(time.monotonic() - t0, 1)
        shutil.copyfile(work / name / "clip.mp4", out / f"{name}.mp4")
        write_json(out / f"{name}.json", info)
        m = info["state_metrics"]
        log(f"{name}: forward {m['forward_velocity']:+.2f} m/s, height {m['torso_height_mean']:.2f} "
            f"± {m['torso_height_std']:.2f}, cadence {m['cadence_steps_per_s']:.2f} steps/s by foot "
            f"touchdowns, torso bob frequency {m['cadence_hz']:.2f} Hz, "
            f"falls {m['fall_rate']:.2f} ({info['wall_seconds']:.0f} s)")
        infos.append(info)
    return infos
