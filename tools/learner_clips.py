"""A learner's evaluation clips: render a policy's episodes, write them, measure their pixels;
several policies at once, one per core.

Judging a candidate is mostly rendering on a CPU renderer, and a search judges its candidates
one after another while the other core idles. :func:`judge_clips` renders them in worker
processes (one per core) when there is enough to render to pay for starting them (about 2 s
of imports each), and in this process otherwise. A job is plain data and a worker writes only
the clip paths it was given: the run record still names every file.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vid2reward.sim.errors import UserError
from vid2reward.sim.falls import first_fall_step
from vid2reward.sim.render import write_clip_and_sheet, write_mp4
from vid2reward.sim.rollout import Episode, load_policy, run_episodes
from vid2reward.sim.vec_env import sigint_blocked
from vid2reward.tools.expert_video import measure_video
from vid2reward.tools.feature_definitions import SURVIVAL

POOL_MIN_STEPS = 4_000
"""Below this many env steps to render in all (about 5 s of work at 1.2 ms a rendered step),
starting worker processes costs more than the second core saves."""


@dataclass(frozen=True)
class ClipJob:
    """One policy's evaluation episodes to render and measure (plain data: runs in a worker)."""

    key: str
    """The caller's name for the job (a candidate id)."""
    policy_dir: Path
    env_id: str
    first_seed: int
    """Episode k is seeded ``first_seed + k``."""
    episodes: int
    clip_steps: int
    """Steps of each clip (an episode is cut there)."""
    render_size: tuple[int, int]
    clips: tuple[Path, ...]
    """Where episode k's mp4 goes, one path per episode."""
    sheet: Path
    """The first episode's contact sheet."""
    expected_steps: int = 0
    """About how many steps the episodes will last in all (from training's episode lengths):
    decides whether a pool pays."""


@dataclass
class JudgedClips:
    """A :class:`ClipJob`'s episodes (their frames dropped: they are in the clips) and each
    episode's measurement."""

    key: str
    episodes: list[Episode]
    features: list[dict[str, float]]
    """Per episode: its pixel features and survival (see :func:`measure_episode`)."""
    measured: list[dict[str, Any] | None]
    """Per episode: the full measurement (series, units), None when too short to measure."""
    render_seconds: float
    measure_seconds: float


def survival_steps(episode: Episode) -> int:
    """The steps an evaluation episode's body kept going: to its first fall (sim/falls.py),
    which need not end the episode (an Ant on its back carries on), else all of them."""
    return first_fall_step(episode) or episode.length


def measure_episode(clip: Path, stood: int, clip_steps: int) -> tuple[dict[str, float], dict[str, Any] | None]:
    """An evaluation episode's features (its pixel features, and survival: the ``stood`` steps
    before its first fall, or its length, of ``clip_steps``) and the measurement (None when
    the clip is too short to measure: a body that fell at once shows only that)."""
    survival = {SURVIVAL.name: min(1.0, stood / clip_steps)}
    try:
        measured = measure_video(clip, series=True)
    except (UserError, ValueError):
        return survival, None
    return {**measured["features"], **survival}, measured


def judge_one(job: ClipJob) -> JudgedClips:
    """Render ``job``'s episodes, write their clips (and the first's sheet), measure them."""
    started = time.monotonic()
    policy = load_policy(job.policy_dir, job.env_id)
    episodes = run_episodes(job.env_id, policy, episodes=job.episodes, seed=job.first_seed,
                            max_steps=job.clip_steps, render_size=job.render_size)
    for index, (ep, clip) in enumerate(zip(episodes, job.clips, strict=True)):
        if index == 0:
            write_clip_and_sheet(ep.frames, ep.fps, clip, job.sheet)
        else:
            write_mp4(ep.frames, clip, ep.fps)
    rendered = time.monotonic()
    features, measured = [], []
    for ep, clip in zip(episodes, job.clips, strict=True):
        values, measurement = measure_episode(clip, survival_steps(ep), job.clip_steps)
        features.append(values)
        measured.append(measurement)
    return JudgedClips(job.key, [replace(ep, frames=[]) for ep in episodes], features, measured,
                       render_seconds=rendered - started,
                       measure_seconds=time.monotonic() - rendered)


def judge_clips(jobs: Sequence[ClipJob], workers: int | None = None) -> Iterator[JudgedClips]:
    """Judge every job, yielding each as it finishes (in any order).

    ``workers`` processes (default: one per core) render at once when there are at least two
    jobs and :data:`POOL_MIN_STEPS` expected steps; otherwise, and for the jobs left when a
    worker died (a crash in the GL driver, say), they run here one after another. A caller
    that stops iterating (a stop request, Ctrl-C) ends the workers; a job they had not
    finished leaves at most a hidden ``.partial`` clip, replaced when it is judged again.
    """
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    if workers < 2 or sum(job.expected_steps for job in jobs) < POOL_MIN_STEPS:
        yield from map(judge_one, jobs)
        return
    left = {job.key: job for job in jobs}
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=_worker_init)
    try:
        # Workers start inside submit(); SIGINT stays blocked until each ignores it.
        with sigint_blocked("spawn"):
            running: set[Future[JudgedClips]] = {pool.submit(judge_one, job) for job in jobs}
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    result = future.result()
                except BrokenProcessPool:
                    continue  # judged below, in this process
                left.pop(result.key)
                yield result
    except BrokenProcessPool:
        pass
    except BaseException:  # the caller stopped early (a stop request, Ctrl-C) or failed:
        _terminate(pool)   # the jobs still running are not wanted
        raise
    pool.shutdown(wait=True, cancel_futures=True)
    yield from map(judge_one, left.values())


def _terminate(pool: ProcessPoolExecutor) -> None:
    # CPython's own table of the workers (Python 3.14 adds terminate_workers()); shutdown
    # forgets it, so it is read first.
    processes = dict(getattr(pool, "_processes", None) or {})
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes.values():
        process.terminate()
    for process in processes.values():
        process.join(timeout=2.0)
        if process.is_alive():  # stuck in C: SIGTERM waits for Python
            process.kill()
            process.join()


def _worker_init() -> None:
    # Ctrl-C is the main process's to handle; one that came during start-up is discarded.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # llvmpipe's own threads would fight the other worker for the cores: one each is faster.
    os.environ["LP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
