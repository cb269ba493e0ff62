"""The run's own curves as TensorBoard scalars (``runs/<id>/tb/``), beside each candidate's
PPO curves (``iter-NNN/cand-MM/tb/``): ``tensorboard --logdir runs/`` shows both.

Written with ``torch.utils.tensorboard`` (torch and tensorboard are base dependencies; SB3
logs through the same writer). The whole curve is rewritten from the run's history each time,
so a resumed or rolled-back run never shows points twice: the new event file is written first,
then the older ones this module wrote are removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

EVENT_FILE_PREFIX = "events.out.tfevents."


def write_run_curves(tb_dir: Path, history: Sequence[Mapping[str, Any]],
                     final_evaluation: dict[str, Any] | None = None) -> Path:
    """Write the search's curves and the final policy's evaluation to ``tb_dir``.

    Scalars, by iteration: ``search/iteration_best_similarity``,
    ``search/run_best_similarity``; and, once the final policy is evaluated, at the last
    iteration: ``final/env_return_mean`` (and ``_std``), ``final/episode_length``,
    ``final/fall_rate``, ``final/forward_velocity``. Returns the event file written.
    """
    from torch.utils.tensorboard import SummaryWriter

    tb_dir.mkdir(parents=True, exist_ok=True)
    older = sorted(tb_dir.glob(f"{EVENT_FILE_PREFIX}*"))
    writer = SummaryWriter(log_dir=str(tb_dir))
    try:
        last = 0
        for point in history:
            step = int(point["iteration"])
            last = max(last, step)
            for key in ("iteration_best_similarity", "run_best_similarity"):
                if point.get(key) is not None:
                    writer.add_scalar(f"search/{key}", float(point[key]), step)
        if final_evaluation is not None:
            e = final_evaluation
            for tag, value in (("env_return_mean", e["env_return_mean"]),
                               ("env_return_std", e["env_return_std"]),
                               ("episode_length", e["length_mean"]),
                               ("fall_rate", e["fall_rate"]),
                               ("forward_velocity", e["metrics"]["forward_velocity"])):
                writer.add_scalar(f"final/{tag}", float(value), last)
    finally:
        writer.close()
    written = sorted(set(tb_dir.glob(f"{EVENT_FILE_PREFIX}*")) - set(older))
    for path in older:
        path.unlink(missing_ok=True)
    return written[-1]
