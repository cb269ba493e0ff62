"""Outputs of ``bench learning``: the summary rows, a rich table, results.json, results.csv,
summary.md and a PNG of NES against training wall-clock for every set-up."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.table import Table

from vid2reward.agent.learning_bench import LEARNING_METHODS, LearningBenchConfig, LearningResult

COLOURS = {"train": (40, 110, 220), "rl-zoo": (60, 160, 60)}
"""BGR line colour per set-up."""


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def summarise(results: list[LearningResult], cfg: LearningBenchConfig) -> list[dict[str, Any]]:
    """One row per (task, set-up): means over seeds, and time to the target NES.

    ``seconds_to_target`` is the mean over seeds that reached it; ``reached`` says how many did.
    A seed that never reached it counts, for the ratio, as its whole training time (a lower
    bound of its true time), and the row says so with ``>``.
    """
    rows = []
    for task in cfg.tasks:
        for method in [m for m in LEARNING_METHODS if m in cfg.methods]:
            runs = [r for r in results if r.task == task and r.method == method]
            if not runs:
                continue
            hits = [r.first_reaching(cfg.target_nes) for r in runs]
            bound = [h.seconds if h else r.seconds for h, r in zip(hits, runs, strict=True)]
            best = [max((c.nes for c in r.checkpoints), default=0.0) for r in runs]
            rows.append({
                "task": task, "method": method, "env_id": runs[0].env_id, "seeds": len(runs),
                "final_nes": [round(r.final_nes, 3) for r in runs],
                "final_nes_mean": float(np.mean([r.final_nes for r in runs])),
                "best_nes_mean": float(np.mean(best)),
                "final_fall_rate_mean": float(np.mean([r.checkpoints[-1].fall_rate
                                                        for r in runs if r.checkpoints] or [1.0])),
                "final_env_return_mean": float(np.mean([r.checkpoints[-1].env_return_mean
                                                         for r in runs if r.checkpoints] or [0.0])),
                "reached": sum(h is not None for h in hits),
                "seconds_to_target": [h.seconds if h else None for h in hits],
                "seconds_to_target_bound_mean": float(np.mean(bound)),
                "all_reached": all(h is not None for h in hits),
                "steps_to_target": [h.steps if h else None for h in hits],
                "train_seconds_mean": float(np.mean([r.seconds for r in runs])),
                "steps_mean": float(np.mean([r.steps for r in runs])),
                "steps_per_second_mean": float(np.mean([r.steps_per_second for r in runs])),
            })
    return rows


def _time_cell(row: dict[str, Any]) -> str:
    prefix = "" if row["all_reached"] else ">"
    return f"{prefix}{row['seconds_to_target_bound_mean']:.0f} s ({row['reached']}/{row['seeds']})"


def speedups(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Per task: ``train``'s time to the target divided by the anchor's, as text.

    Defined only when every ``train`` seed reached the target; an anchor seed that never did
    counts as its whole training time, so the ratio is then an upper bound ("<="). Otherwise
    the text says why there is no ratio.
    """
    out = {}
    for task in dict.fromkeys(r["task"] for r in rows):
        by = {r["method"]: r for r in rows if r["task"] == task}
        if "train" not in by or "rl-zoo" not in by:
            continue
        ours, anchor = by["train"], by["rl-zoo"]
        if not ours["all_reached"]:
            out[task] = f"no ratio: train reached it in {ours['reached']}/{ours['seeds']} seeds"
        elif anchor["seconds_to_target_bound_mean"] > 0:
            ratio = ours["seconds_to_target_bound_mean"] / anchor["seconds_to_target_bound_mean"]
            out[task] = f"{'' if anchor['all_reached'] else '<= '}{ratio:.2f}"
    return out


def rich_table(rows: list[dict[str, Any]], cfg: LearningBenchConfig) -> Table:
    """The summary as a rich table."""
    table = Table(title=f"Time to NES {cfg.target_nes} and final NES (means over seeds; "
                        f"training seconds, evaluation excluded)")
    for col in ("task", "set-up", f"time to NES {cfg.target_nes} (seeds reaching)",
                "final NES", "best NES", "falls", "env return", "steps", "steps/s"):
        table.add_column(col, justify="left" if col in ("task", "set-up") else "right")
    for r in rows:
        table.add_row(r["task"], r["method"], _time_cell(r), _mean_std(r["final_nes"]),
                      f"{r['best_nes_mean']:.2f}", f"{r['final_fall_rate_mean']:.0%}", f"{r['final_env_return_mean']:.0f}",
                      f"{r['steps_mean']:,.0f}", f"{r['steps_per_second_mean']:,.0f}")
    return table


def markdown_table(rows: list[dict[str, Any]], cfg: LearningBenchConfig) -> str:
    """The summary as a Markdown table."""
    head = (f"| task | set-up | time to NES {cfg.target_nes} (seeds reaching) | final NES per seed "
            "| best NES (mean) | falls | env return | steps | steps/s |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(f"| {r['task']} | {r['method']} | {_time_cell(r)} | "
                     f"{' / '.join(f'{v:.2f}' for v in r['final_nes'])} | "
                     f"{r['best_nes_mean']:.2f} | {r['final_fall_rate_mean']:.0%} | {r['final_env_return_mean']:.0f} | "
                     f"{r['steps_mean']:,.0f} | {r['steps_per_second_mean']:,.0f} |")
    return "\n".join(lines) + "\n"


def write_outputs(results: list[LearningResult], cfg: LearningBenchConfig, out: Path,
                  meta: dict[str, Any]) -> dict[str, Path]:
    """Write results.json (everything), results.csv (one line per checkpoint), summary.md and
    learning_curve.png into ``out``; returns their paths."""
    rows = summarise(results, cfg)
    paths = {"json": out / "results.json", "csv": out / "results.csv",
             "markdown": out / "summary.md", "png": out / "learning_curve.png"}
    paths["json"].write_text(json.dumps({**meta, "summary": rows, "speedup": speedups(rows),
                                         "results": [asdict(r) for r in results]}, indent=2),
                             encoding="utf-8")
    with paths["csv"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "method", "seed", "steps", "seconds", "nes", "env_return_mean",
                         "env_return_std", "program_return_mean", "length_mean", "fall_rate"])
        for r in results:
            for c in r.checkpoints:
                writer.writerow([r.task, r.method, r.seed, c.steps, c.seconds, c.nes,
                                 c.env_return_mean, c.env_return_std, c.program_return_mean,
                                 c.length_mean, c.fall_rate])
    text = [f"Command: `{meta.get('command', '')}`", "", markdown_table(rows, cfg)]
    for task, ratio in speedups(rows).items():
        text.append(f"- {task}: time to NES {cfg.target_nes}, train / rl-zoo: {ratio}")
    if "physics_limit" in meta:
        text.append("")
        text.append(f"Physics limit: {meta['physics_limit']}")
    paths["markdown"].write_text("\n".join(text) + "\n", encoding="utf-8")
    plot_curves(results, cfg, paths["png"])
    return paths


def plot_curves(results: list[LearningResult], cfg: LearningBenchConfig, path: Path,
                panel: tuple[int, int] = (380, 260)) -> None:
    """One panel per task: NES against training seconds, a line per set-up and seed, the
    target as a dashed line."""
    w, h = panel
    tasks = cfg.tasks
    img = np.full((h + 40, w * max(1, len(tasks)), 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for k, task in enumerate(tasks):
        runs = [r for r in results if r.task == task]
        x0, x1, y0, y1 = k * w + 45, (k + 1) * w - 15, 30, h - 35
        t_max = max([c.seconds for r in runs for c in r.checkpoints] + [1.0])
        t_max = _nice_ceiling(t_max)

        def px(t: float, v: float, x0: int = x0, x1: int = x1, y0: int = y0, y1: int = y1,
               t_max: float = t_max) -> tuple[int, int]:
            return int(x0 + (x1 - x0) * t / t_max), int(y1 - (y1 - y0) * v)

        cv2.putText(img, f"{task}: NES", (x0, 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 1)
        for v in (0.0, 0.5, 1.0):
            y = px(0, v)[1]
            cv2.putText(img, f"{v:.1f}", (x0 - 30, y + 4), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        ty = px(0, cfg.target_nes)[1]
        for xs in range(x0, x1, 10):
            cv2.line(img, (xs, ty), (min(xs + 5, x1), ty), (120, 120, 120), 1)
        for frac in (0.0, 0.5, 1.0):
            x = px(t_max * frac, 0)[0]
            cv2.putText(img, f"{t_max * frac:.0f}", (x - 10, y1 + 15), font, 0.4, (0, 0, 0), 1,
                        cv2.LINE_AA)
        cv2.putText(img, "training seconds", ((x0 + x1) // 2 - 55, y1 + 30), font, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
        for r in runs:
            pts = [px(0.0, 0.0)] + [px(c.seconds, c.nes) for c in r.checkpoints]
            colour = COLOURS.get(r.method, (0, 0, 0))
            for a, b in zip(pts, pts[1:], strict=False):
                cv2.line(img, a, b, colour, 2, cv2.LINE_AA)
    for i, method in enumerate(m for m in LEARNING_METHODS if m in cfg.methods):
        x = 45 + i * 120
        cv2.line(img, (x, h + 15), (x + 20, h + 15), COLOURS[method], 2)
        cv2.putText(img, method, (x + 25, h + 19), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def _nice_ceiling(value: float) -> float:
    """The next 1, 2 or 5 times a power of ten at or above ``value``."""
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)
