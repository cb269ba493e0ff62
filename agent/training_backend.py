"""Where the candidates of an iteration train: here, one after another (the default), or as
Ray tasks on a cluster (``--ray ADDRESS``, agent/ray_training.py).

``train_candidates`` decides *what* needs training (the cache by content stays there) and hands
the jobs to the run's backend; the backend decides *where*. Either way every finished training
lands in the run directory through :class:`~vid2reward.agent.run_record.RunRecord` as soon as it
finishes, ``train_key.json`` last: a candidate counts as done only when its files are there, so a
killed driver, worker or node loses only the trainings still running, and ``resume`` submits
only those. Reward code always runs inside the OS sandbox of
:func:`~vid2reward.tools.reward_training.train_sandboxed`, here or on a Ray worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vid2reward.agent.context import StopFlag, StopRequested
from vid2reward.agent.run_record import RunRecord
from vid2reward.sim.reward import RewardError
from vid2reward.sim.train import TrainConfig
from vid2reward.tools.reward_sandbox import sandboxed_program
from vid2reward.tools.reward_training import train_sandboxed

ProgressFn = Callable[[str, int, int], None]
"""Called with (candidate id, steps done, total steps) while candidates train."""
LandedFn = Callable[["TrainingJob", dict[str, Any]], None]
"""Called with a job and its metrics as soon as its training is in the run directory."""
RAY_ADDRESS_ENV = "RAY_ADDRESS"
"""Ray's own variable (``ray job submit`` sets it for the job's driver)."""
LOCAL_POOL = "off"
"""``--ray off``: this machine's process pool, even when RAY_ADDRESS is set."""
RAY_HELP = ("train candidates as Ray tasks on this cluster: host:port of its head, ray://host:port, "
            "auto, or local (a private head on this machine, 127.0.0.1 only); off: this machine "
            "(default; RAY_ADDRESS is used when set; pip install \"vid2reward[ray]\"; docs/scale.md)")
"""Help of ``--ray`` (run, resume, bench nes)."""


@dataclass(frozen=True)
class TrainingJob:
    """One candidate's training: what to train, and the key that marks it done."""

    candidate_id: str
    config: TrainConfig
    key: dict[str, Any]
    """The training's cache key (``train_key.json``), written last: it marks the training
    complete."""


@dataclass
class TrainedFiles:
    """A training that ran elsewhere, as it comes back to the driver."""

    metrics: dict[str, Any]
    """metrics.json's content (status "failed" with a ``failure`` line when it failed)."""
    files: dict[str, bytes]
    """Relative path -> content (policy.zip, vecnormalize.pkl, metrics.json, tb/...); empty
    when the program was broken from its first steps and nothing trained."""


class TrainingBackend(Protocol):
    """Trains an iteration's candidates (see the module docstring)."""

    description: str
    """Where trainings run, for messages ("this machine", "Ray at 10.0.0.5:6379")."""

    def train(self, jobs: Sequence[TrainingJob], record: RunRecord, stop: StopFlag, *,
              progress: ProgressFn | None = None,
              landed: LandedFn | None = None) -> list[dict[str, Any]]:
        """Train every job and land each in ``record`` as it finishes (then call ``landed``);
        return their metrics in the order of ``jobs``.

        Raises:
            StopRequested: ``stop`` was set; what finished is in the run directory.
            UserError: a user mistake a training found (as a local training raises it).
        """
        ...

    def close(self) -> None:
        """Release what the backend holds (a Ray connection, a local Ray head)."""
        ...


class LocalTraining:
    """This machine: one candidate after another, each on this process's env workers."""

    description = "this machine"

    def train(self, jobs: Sequence[TrainingJob], record: RunRecord, stop: StopFlag, *,
              progress: ProgressFn | None = None,
              landed: LandedFn | None = None) -> list[dict[str, Any]]:
        """See :meth:`TrainingBackend.train`; ``stop`` is checked between candidates."""
        results = []
        for job in jobs:
            stop.check()  # a safe point: every finished training is on disk
            results.append(_train_interruptibly(job, record, stop, progress))
            if landed is not None:
                landed(job, results[-1])
        return results

    def close(self) -> None:
        """Nothing to release."""


def _train_interruptibly(job: TrainingJob, record: RunRecord, stop: StopFlag,
                         progress: ProgressFn | None) -> dict[str, Any]:
    """:func:`_train_here`, except that a training that fails or raises while a stop is pending
    is not recorded: a terminal's Ctrl-C reaches the env workers too, so the failure is most
    likely the interrupt's, and ``resume`` trains the candidate again."""
    cid = job.candidate_id
    try:
        metrics = _train_here(job, record, progress)
    except Exception as exc:
        if stop.requested:
            raise StopRequested(f"{stop.reason} ({cid}: {type(exc).__name__})") from exc
        raise
    if metrics["status"] == "failed" and stop.requested:
        raise StopRequested(f"{stop.reason} ({cid} not finished)")
    return metrics


def _train_here(job: TrainingJob, record: RunRecord, progress: ProgressFn | None) -> dict[str, Any]:
    cid = job.candidate_id
    try:
        program = sandboxed_program(record.program_path(cid))
        on_progress = None
        if progress is not None:
            report = progress
            on_progress = lambda done, total: report(cid, done, total)  # noqa: E731
        result = train_sandboxed(job.config, program, record.training_scratch(cid),
                                 on_progress=on_progress)
        record.adopt_training(cid)
        metrics = result.metrics
    except RewardError as exc:  # broken from its first steps: no training happened
        metrics = failed_before_training(exc)
        record.write_metrics(cid, metrics)
    if metrics["status"] != "failed":
        record.mark_trained(cid, job.key)  # written last: marks the training complete
    return metrics


def failed_before_training(exc: RewardError) -> dict[str, Any]:
    """metrics.json of a program broken from its first steps (nothing trained)."""
    return {"status": "failed", "failure": str(exc), "steps": 0, "wall_seconds": 0.0}


def land(record: RunRecord, job: TrainingJob, trained: TrainedFiles) -> dict[str, Any]:
    """Write a training that ran elsewhere into its candidate, ``train_key.json`` last (as a
    local training is adopted); return its metrics."""
    cid = job.candidate_id
    if trained.files:
        record.land_training(cid, trained.files)
    else:
        record.write_metrics(cid, trained.metrics)
    if trained.metrics["status"] != "failed":
        record.mark_trained(cid, job.key)
    return trained.metrics


def chosen_ray_address(flag: str | None, stored: str | None = None) -> str | None:
    """The Ray address a session uses: ``--ray`` over RAY_ADDRESS over the one the run was
    started with (``stored``); None (or ``off``) is this machine's pool."""
    address = flag or os.environ.get(RAY_ADDRESS_ENV) or stored
    address = (address or "").strip()
    return None if address in ("", LOCAL_POOL) else address


def open_training_backend(ray_address: str | None) -> TrainingBackend:
    """The backend for a run: this machine without an address, else a connection to Ray.

    Raises:
        UserError: Ray is not installed, or the cluster cannot be reached (one line).
    """
    if ray_address is None:
        return LocalTraining()
    from vid2reward.agent.ray_training import RayTraining

    return RayTraining(ray_address)

