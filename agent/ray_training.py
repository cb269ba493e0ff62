"""Candidates train as Ray tasks (``--ray ADDRESS``): the cluster backend of
agent/training_backend.py.

Each candidate's training is one task declaring as many CPUs as the training has env workers;
inside it, :func:`~vid2reward.tools.reward_training.train_sandboxed` runs exactly as it does on
this machine (the reward code in OS-isolated env workers of the task). The task trains into a
temporary directory on its node and returns the files as bytes (about 150 kB for a 64x64
policy, docs/scale.md); the driver writes them into the run directory as each task finishes
(:func:`~vid2reward.agent.training_backend.land`). A task whose worker or node dies is retried by
Ray (:data:`TASK_RETRIES`); a driver that dies loses the running tasks, and ``resume`` submits
only the candidates not in the run directory.

Addresses: ``host:port`` of a head (``ray start --head``), ``ray://host:port`` (Ray Client),
``auto`` (the cluster this machine belongs to), or ``local``: a private head on this machine,
started for the run and stopped after it. A head on this machine (``local``, or an address on
127.0.0.1) keeps every listener on 127.0.0.1: Ray otherwise binds the machine's external
address.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vid2reward.agent.context import StopFlag, StopRequested
from vid2reward.agent.run_record import RunRecord
from vid2reward.agent.training_backend import (
    LandedFn,
    ProgressFn,
    TrainedFiles,
    TrainingJob,
    failed_before_training,
    land,
)
from vid2reward.sim.errors import UserError
from vid2reward.sim.reward import RewardError
from vid2reward.sim.train import TrainConfig
from vid2reward.tools.reward_isolation import trusted_by_user
from vid2reward.tools.reward_sandbox import sandboxed_program
from vid2reward.tools.reward_training import train_sandboxed

LOCAL_HEAD = "local"
"""``--ray local``: start a private Ray head on this machine for the run."""
TASK_RETRIES = 3
"""Times Ray runs a training again whose worker process or node died (Ray's default)."""
CONNECT_SECONDS = 10.0
"""How long the head's port may take to answer before the address counts as unreachable
(Ray itself retries for minutes)."""
LOCAL_HEAD_OBJECT_STORE = 200 * 2**20
"""Object store of a private head: results are a few hundred kB per candidate; Ray's default
(30% of memory) would reserve gigabytes of /dev/shm."""
LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Set to 0, Ray treats this machine as a single-node cluster: its node address becomes
127.0.0.1 and its servers listen there (Ray's switch for laptops; read when ray is imported)."""


class RayTraining:
    """Trains candidates as Ray tasks on the cluster at ``address`` (see the module docstring).

    Args:
        address: see the module docstring.
        num_cpus: CPUs a private head (``local``) offers (default: all of this machine's).

    Raises:
        UserError: Ray is not installed, or the cluster cannot be reached.
    """

    def __init__(self, address: str, num_cpus: int | None = None) -> None:
        self.address, self.num_cpus = address, num_cpus
        self.description = "a private Ray head on this machine" if address == LOCAL_HEAD \
            else f"the Ray cluster at {address}"
        check_ray_address(address)
        import ray

        self._ray = ray
        self._start_or_connect()
        self._task = ray.remote(train_on_worker)

    def _start_or_connect(self) -> None:
        ray, address = self._ray, self.address
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR,
                                 "namespace": "vid2reward"}
        try:
            if address == LOCAL_HEAD:
                ray.init(address="local", num_cpus=self.num_cpus, include_dashboard=False,
                         object_store_memory=LOCAL_HEAD_OBJECT_STORE, **quiet)
            else:
                ray.init(address=address, **quiet)
        except Exception as exc:  # ConnectionError, an authentication error, a version mismatch
            raise UserError(f"could not connect to Ray ({_first_line(exc)})",
                            where=f"--ray {address}",
                            fix="check the address (ray status on the head prints it); a cluster "
                                "with token authentication needs RAY_AUTH_MODE=token and its "
                                "token") from None
        node_ip = ray.util.get_node_ip_address()
        if (address == LOCAL_HEAD or _is_loopback(_head_host(address) or "")) \
                and not _is_loopback(node_ip):
            ray.shutdown()  # never serve a local head on the machine's external address
            raise RuntimeError(f"Ray bound {node_ip}, not 127.0.0.1: it was imported before "
                               f"{LOOPBACK_ONLY_ENV}=0 could be set")

    def train(self, jobs: Sequence[TrainingJob], record: RunRecord, stop: StopFlag, *,
              progress: ProgressFn | None = None,
              landed: LandedFn | None = None) -> list[dict[str, Any]]:
        """Submit every job, land each as it finishes (see
        :meth:`~vid2reward.agent.training_backend.TrainingBackend.train`). A stop cancels the
        tasks still running; what finished stays in the run directory."""
        ray = self._ray
        trust = trusted_by_user()
        submitted = {}
        for job in jobs:
            program = sandboxed_program(record.program_path(job.candidate_id))
            ref = self._task.options(num_cpus=max(1, job.config.n_workers),
                                     name=f"train {job.candidate_id}",
                                     max_retries=TASK_RETRIES, retry_exceptions=False).remote(
                job.config, program.source, program.name, trust, warm_start_files(job.config))
            submitted[ref] = job
        results: dict[str, dict[str, Any]] = {}
        pending = list(submitted)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                for ref in done:
                    job = submitted[ref]
                    metrics = land(record, job, self._result(ref, job))
                    results[job.candidate_id] = metrics
                    if landed is not None:
                        landed(job, metrics)
                    if progress is not None:
                        progress(job.candidate_id, int(metrics.get("steps", 0)),
                                 job.config.total_steps)
                if pending and stop.requested:
                    raise StopRequested(f"{stop.reason} ({len(pending)} trainings on Ray "
                                        "cancelled; resume trains them)")
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
        return [results[job.candidate_id] for job in jobs]

    def _result(self, ref: Any, job: TrainingJob) -> TrainedFiles:
        exceptions = self._ray.exceptions
        try:
            trained = self._ray.get(ref)
        except exceptions.RayTaskError as exc:  # the training raised: as it would here
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise
        except exceptions.RayError as exc:  # its worker or node died TASK_RETRIES + 1 times
            raise UserError(f"Ray lost the training of {job.candidate_id} "
                            f"({type(exc).__name__}: {_first_line(exc)})",
                            where=self.description,
                            fix="resume the run (vid2reward resume RUN_DIR): it trains only the "
                                "candidates not finished", exit_code=1) from None
        if not isinstance(trained, TrainedFiles):
            raise TypeError(f"a Ray task returned {type(trained).__name__}, not TrainedFiles")
        return trained

    def close(self) -> None:
        """Disconnect from the cluster (a private head stops)."""
        if self._ray.is_initialized():
            self._ray.shutdown()


WARM_START_FILES = ("policy.zip", "vecnormalize.pkl", "reward.py")
"""What a warm-started training needs of the policy it continues (sim.train.warm_start): its
network, its normalisation, and its program (whose GAIT_CLOCK_HZ says what it observed)."""


def warm_start_files(config: TrainConfig) -> dict[str, bytes]:
    """The files of the policy ``config`` continues (``init_from``, a directory of the driver's
    run), sent with the task: a worker on another node cannot read the driver's disk."""
    if config.init_from is None:
        return {}
    source = Path(config.init_from)
    return {n: (source / n).read_bytes() for n in WARM_START_FILES if (source / n).is_file()}


def train_on_worker(config: TrainConfig, source: str, name: str, trust: bool,
                    init_files: dict[str, bytes] | None) -> TrainedFiles:
    """A Ray task's body: train ``source`` in a temporary directory of the worker's node, in
    the same OS sandbox as a local training, and return the files it wrote. ``init_files``
    (see :func:`warm_start_files`) are the policy a warm start continues."""
    with tempfile.TemporaryDirectory(prefix="vid2reward-train-") as tmp:
        out = Path(tmp) / "out"
        if init_files:
            init = Path(tmp) / "init"
            init.mkdir()
            for file_name, data in init_files.items():
                (init / Path(file_name).name).write_bytes(data)
            config = dataclasses.replace(config, init_from=str(init))
        try:
            result = train_sandboxed(config, sandboxed_program(source, name), out, trust=trust)
        except RewardError as exc:  # broken from its first steps: no training happened
            return TrainedFiles(failed_before_training(exc), {})
        metrics = dict(result.metrics)
        metrics["trained_on"] = {"host": socket.gethostname(), "pid": os.getpid()}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        # reward.py stays the driver's own copy; tb/ (PPO's curves) comes along
        files = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
                 if p.is_file() and p.name != "reward.py"}
    return TrainedFiles(metrics, files)


def check_ray_address(address: str) -> None:
    """Check, without connecting, that Ray is installed and something answers at the head's
    port; a head on this machine is then kept on 127.0.0.1 (see :data:`LOOPBACK_ONLY_ENV`).

    Raises:
        UserError: Ray is missing, the address is malformed or nothing answers there.
    """
    host = _head_host(address)
    if address == LOCAL_HEAD or (host is not None and _is_loopback(host)):
        os.environ[LOOPBACK_ONLY_ENV] = "0"  # before ray is imported (and for its children)
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UserError("--ray needs Ray, which is not installed", where=f"--ray {address}",
                        fix='pip install "vid2reward[ray]"') from None
    if host is not None:
        _check_reachable(address)


def _head_host(address: str) -> str | None:
    """The host of ``host:port`` or ``ray://host:port`` (None for ``auto`` and ``local``)."""
    return None if address in ("auto", LOCAL_HEAD) else _split_address(address)[0]


def _split_address(address: str) -> tuple[str, int]:
    """(host, port) of ``host[:port]``, ``[ipv6][:port]`` or ``ray://host[:port]``; the port
    defaults to Ray's (6379 for a head, 10001 for Ray Client)."""
    rest = address.split("://", 1)[-1].rstrip("/")
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail.removeprefix(":")
    else:
        host, sep, port = rest.rpartition(":")
        if not sep:
            host, port = rest, ""
    if not host or (port and not port.isdigit()):
        raise UserError("not a Ray address", where=f"--ray {address}",
                        fix="give host:port of the cluster's head, ray://host:port, auto, "
                            "local or off")
    return host, int(port) if port else (10001 if address.startswith("ray://") else 6379)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _check_reachable(address: str) -> None:
    """Fail in one line when nothing answers at the head's port (Ray would retry for minutes)."""
    try:
        with socket.create_connection(_split_address(address), timeout=CONNECT_SECONDS):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise UserError(f"the Ray cluster is unreachable ({reason})", where=f"--ray {address}",
                        fix="start the head (ray start --head) or give its address as "
                            "host:port") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
