"""The NES benchmark's outputs: one table (terminal and markdown), CSV, JSON and a PNG of NES
against iteration per method (drawn with OpenCV, so no plotting dependency)."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.table import Table

from vid2reward.agent.benchmark import METHODS, MethodResult, TaskGround
from vid2reward.agent.expert_tasks import EXPERT_TASKS
from vid2reward.sim.expert_score import NES_METRICS, behaviour_distance

COLOURS = {"full": (200, 90, 30), "random": (40, 160, 40), "eureka": (30, 30, 210),
           "default": (120, 120, 120), "reference": (20, 20, 20)}
"""BGR line colour per method."""
COLOURS.update({"viper": (160, 40, 160), "vlm-rm": (0, 160, 220), "car": (140, 110, 0)})


def task_set(task: str) -> str:
    """"held-out" for a task nothing was tuned on (``ExpertTask.held_out``), else "tune"."""
    known = EXPERT_TASKS.get(task)
    return "held-out" if known is not None and known.held_out else "tune"


def summarise(results: list[MethodResult], grounds: dict[str, TaskGround]) -> list[dict[str, Any]]:
    """One row per (task, method): NES mean and std over seeds, the unclipped distance ratio
    d(learner, expert) / d(random, expert) (NES = 1 - ratio, clipped; the ratio still ranks
    methods that are all farther than random), mean wall time and env steps; then the mean
    over tasks per method, one per set (tune, held-out) when both are present, so that the
    tasks the method was tuned on never stand in for the ones it was not."""
    rows: list[dict[str, Any]] = []
    d_random = {t: behaviour_distance(g.random_metrics, g.expert_metrics) for t, g in grounds.items()}
    tasks = list(dict.fromkeys(r.task for r in results))
    for task in tasks:
        for method in METHODS:
            group = [r for r in results if r.task == task and r.method == method]
            if not group:
                continue
            nes = np.array([r.nes for r in group])
            ratio = float(np.mean([r.distance / d_random[task] for r in group]))
            finals = np.array([r.final_nes for r in group if r.final_nes is not None])
            rows.append({"task": task, "set": task_set(task), "method": method, "seeds": len(group),
                         "nes_mean": float(nes.mean()), "nes_std": float(nes.std()),
                         "final_mean": float(finals.mean()) if finals.size else None,
                         "final_std": float(finals.std()) if finals.size else None,
                         "distance_ratio": ratio,
                         "wall_seconds": float(np.mean([r.wall_seconds for r in group])),
                         "env_steps": int(np.mean([r.env_steps for r in group]))})
    sets = list(dict.fromkeys(r["set"] for r in rows))
    for which in sets:
        for method in METHODS:  # the mean over tasks, each task weighted equally
            same = [r for r in rows if r["method"] == method and r["set"] == which]
            if not same or (len(same) < 2 and len(sets) < 2):
                continue  # a mean of one task is the task's own row
            task_finals = [r["final_mean"] for r in same if r["final_mean"] is not None]
            whole = len(task_finals) == len(same)
            rows.append({"task": "mean" if len(sets) < 2 else f"mean ({which})", "set": which,
                         "method": method, "seeds": same[0]["seeds"],
                         "nes_mean": float(np.mean([r["nes_mean"] for r in same])),
                         "nes_std": float(np.std([r["nes_mean"] for r in same])),
                         "final_mean": float(np.mean(task_finals)) if whole else None,
                         "final_std": float(np.std(task_finals)) if whole else None,
                         "distance_ratio": float(np.mean([r["distance_ratio"] for r in same])),
                         "wall_seconds": float(np.mean([r["wall_seconds"] for r in same])),
                         "env_steps": int(np.mean([r["env_steps"] for r in same]))})
    return rows


def rich_table(rows: list[dict[str, Any]], title: str) -> Table:
    """The summary as a rich table."""
    table = Table(title=title)
    for col in ("task", "set", "method", "NES mean ± std", "retrained NES", "d / d(random)", "seeds",
                "wall time", "env steps"):
        # every column keeps its text whole; a narrow terminal scrolls rather than cuts a name
        table.add_column(col, justify="left" if col in ("task", "method") else "right",
                         no_wrap=True, min_width={"task": 16, "method": 9}.get(col, len(col)))
    last = None
    for r in rows:
        table.add_row(r["task"] if r["task"] != last else "", r["set"], r["method"],
                      f"{r['nes_mean']:.3f} ± {r['nes_std']:.3f}", _final(r),
                      f"{r['distance_ratio']:.2f}",
                      str(r["seeds"]),
                      f"{r['wall_seconds']:.0f} s", f"{r['env_steps']:,}")
        last = r["task"]
    return table


def calibration_table(results: list[MethodResult], grounds: dict[str, TaskGround]) -> str:
    """The full method's last calibration: per task, the mean (and worst) relative error of
    the expert's speed, torso height and torso bob frequency (the pixel cadence's simulator
    twin, Hz: not the step cadence) read from its pixels; "" if none. The speed is the one
    along the expert's own direction of travel (forward, or sideways for an Ant that walks
    sideways: an error relative to a drift of 0.1 m/s says nothing)."""
    lines = []
    for task in dict.fromkeys(r.task for r in results):
        runs = [r.calibration for r in results if r.task == task and r.method == "full"
                and r.calibration is not None]
        if not runs or task not in grounds:
            continue
        truth = grounds[task].expert_metrics
        speed = max(("forward_velocity", "lateral_velocity"),
                    key=lambda m: abs(float(truth.get(m) or 0.0)))
        cells = []
        for metric in (speed, "torso_height_mean", "cadence_hz"):
            errors = [c[metric] for c in runs if metric in c]
            cells.append(f"{np.mean(errors):.0%} (worst {max(errors):.0%}, {len(errors)}/{len(runs)})"
                         if errors else f"not fitted (0/{len(runs)})")
        lines.append(f"| {task} | {task_set(task)} | {speed.split('_')[0]} | " + " | ".join(cells) + " |")
    if not lines:
        return ""
    return "\n".join(["| task | set | speed | speed error | torso height error | torso bob frequency error |",
                      "|---|---|---|---:|---:|---:|", *lines])


def _final(row: dict[str, Any]) -> str:
    """The retrained (final) NES cell: mean ± std, or a dash when not measured."""
    if row.get("final_mean") is None:
        return "-"
    return f"{row['final_mean']:.3f} ± {row['final_std']:.3f}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The summary as a GitHub markdown table (for docs/benchmark.md)."""
    lines = ["| task | set | method | NES mean ± std | retrained NES | d / d(random) | seeds | wall time | env steps |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['set']} | {r['method']} | {r['nes_mean']:.3f} ± {r['nes_std']:.3f} "
                     f"| {_final(r)} "
                     f"| {r['distance_ratio']:.2f} | {r['seeds']} | {r['wall_seconds']:.0f} s | {r['env_steps']:,} |")
    return "\n".join(lines)


def write_outputs(results: list[MethodResult], grounds: dict[str, TaskGround], out: Path,
                  meta: dict[str, Any]) -> dict[str, Path]:
    """results.json (everything), results.csv (one row per task, method, seed), summary.md
    (the table) and nes_curve.png; returns their paths."""
    rows = summarise(results, grounds)
    paths = {"json": out / "results.json", "csv": out / "results.csv",
             "markdown": out / "summary.md", "png": out / "nes_curve.png"}
    data = {**meta, "summary": rows, "results": [asdict(r) for r in results],
            "tasks": {t: {"env_id": g.env_id, "expert_metrics": g.expert_metrics,
                          "random_metrics": g.random_metrics, "episode_steps": g.max_steps}
                      for t, g in grounds.items()},
            "nes_metrics": list(NES_METRICS)}
    paths["json"].write_text(json.dumps(data, indent=2), encoding="utf-8")
    with paths["csv"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "method", "seed", "nes", "nes_per_iteration", "distance",
                         "wall_seconds", "env_steps", "forward_velocity", "torso_height_mean",
                         "cadence_hz", "fall_rate", "final_nes", "final_fall_rate"])
        for r in results:
            m = r.best_metrics
            writer.writerow([r.task, r.method, r.seed, f"{r.nes:.4f}",
                             " ".join(f"{v:.4f}" for v in r.nes_per_iteration),
                             f"{r.distance:.4f}", r.wall_seconds, r.env_steps,
                             *(f"{m.get(k, float('nan')):.4f}" for k in
                               ("forward_velocity", "torso_height_mean", "cadence_hz", "fall_rate")),
                             "" if r.final_nes is None else f"{r.final_nes:.4f}",
                             "" if not r.final_metrics else f"{r.final_metrics.get('fall_rate', float('nan')):.4f}"])
    calibration = calibration_table(results, grounds)
    paths["markdown"].write_text(markdown_table(rows) + "\n" + (f"\n{calibration}\n" if calibration else ""),
                                 encoding="utf-8")
    plot_curves(results, paths["png"])
    return paths


ONE_TRAINING = ("default", "reference", "viper", "vlm-rm", "car")
"""Methods that train once (no iterations): drawn as dashed horizontal lines."""


def plot_curves(results: list[MethodResult], path: Path, panel: tuple[int, int] = (360, 260)) -> None:
    """NES (mean over seeds) against iteration, one panel per task, one line per method;
    the methods of :data:`ONE_TRAINING` (no iterations) are dashed horizontal lines."""
    tasks = list(dict.fromkeys(r.task for r in results))
    w, h = panel
    legend = 30
    img = np.full((h + legend, max(w * max(1, len(tasks)), 440), 3), 255, np.uint8)
    n_iter = max((len(r.nes_per_iteration) for r in results
                  if r.method not in ONE_TRAINING), default=1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for col, task in enumerate(tasks):
        x0, y0, x1, y1 = col * w + 40, 30, col * w + w - 15, h - 35  # plot area

        def px(i: float, v: float, x0: int = x0, x1: int = x1, y0: int = y0, y1: int = y1) -> tuple[int, int]:
            fx = (i - 1) / max(1, n_iter - 1)
            return int(x0 + fx * (x1 - x0)), int(y1 - v * (y1 - y0))

        cv2.putText(img, f"{task}: NES", (x0, 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 1)
        for v in (0.0, 0.25, 0.5, 0.75, 1.0):
            _, y = px(1, v)
            cv2.line(img, (x0, y), (x1, y), (225, 225, 225), 1)
            cv2.putText(img, f"{v:.2f}", (x0 - 36, y + 4), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        for i in range(1, n_iter + 1):
            x, _ = px(i, 0)
            cv2.putText(img, str(i), (x - 4, y1 + 15), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, "iteration", ((x0 + x1) // 2 - 30, y1 + 30), font, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
        for method in reversed(METHODS):  # the full method drawn last, on top
            group = [r.nes_per_iteration for r in results
                     if r.task == task and r.method == method and r.nes_per_iteration]
            if not group:
                continue
            colour = COLOURS[method]
            if method in ONE_TRAINING:
                _, y = px(1, float(np.mean([g[-1] for g in group])))
                for xs in range(x0, x1, 10):
                    cv2.line(img, (xs, y), (min(xs + 5, x1), y), colour, 2)
                continue
            length = min(len(g) for g in group)
            mean = np.mean([g[:length] for g in group], axis=0)
            points = [px(i + 1, float(v)) for i, v in enumerate(mean)]
            for a, b in zip(points, points[1:], strict=False):
                cv2.line(img, a, b, colour, 2, cv2.LINE_AA)
            for p in points:
                cv2.circle(img, p, 3, colour, -1, cv2.LINE_AA)
    x = 10
    for method in METHODS:
        cv2.line(img, (x, h + 15), (x + 20, h + 15), COLOURS[method], 2)
        cv2.putText(img, method, (x + 25, h + 19), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        x += 100
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
