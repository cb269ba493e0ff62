"""The channel to a reward process: a fixed, versioned numeric format, never pickle.

A reward process runs untrusted code and is assumed compromised from its first instruction,
so what it sends is parsed as untrusted numbers: every message is a 16-byte header (magic,
version, kind, payload length) and a payload whose layout the kind fixes. A reader states
which kinds it accepts and the largest payload it will take, and reads the whole message
before a deadline; anything else raises :class:`ChannelError` (one line, nothing allocated
beyond the cap, no waiting past the deadline).

Parent -> reward process (trusted: the parent wrote it): ``LOAD`` (the program, as JSON),
``SCHEMA`` (the state fields a batch carries, JSON), ``BATCH`` (float64 states and actions),
``CLOSE``. Reward process -> parent (untrusted): ``READY`` (what isolated it, six int32),
``LOADED``, ``RESULT`` (float64 totals, components and call times for a batch, component
names as capped UTF-8), ``ERROR`` (a code, the step, the program line and a capped text).

Only numpy and the standard library: both ends import this module.
"""

from __future__ import annotations

import errno
import json
import os
import select
import struct
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

MAGIC = b"V2RW"
VERSION = 1
HEADER = struct.Struct("<4sHHII")  # magic, version, kind, payload length, reserved (0)

# Message kinds: parent -> reward process
LOAD, SCHEMA, BATCH, CLOSE = 1, 2, 3, 4
# reward process -> parent
READY, LOADED, RESULT, ERROR = 16, 17, 18, 19

MAX_NAMES = 64
"""Most component names a RESULT may declare (as ``sim.reward_program.MAX_COMPONENTS``)."""
MAX_NAME_BYTES = 256
"""Longest component name in UTF-8 bytes (64 characters of at most 4 bytes)."""
MAX_ERROR_BYTES = 2000
"""Longest error text in UTF-8 bytes."""
MAX_BATCH = 65_536
"""Most states in one BATCH."""
MAX_TRUSTED_BYTES = 64 * 2**20
"""Largest message the reward process accepts from its parent."""

# ERROR codes
ERR_LOAD, ERR_RAISED, ERR_TIMEOUT, ERR_OUTPUT, ERR_REFUSED = 1, 2, 3, 4, 5
ERROR_CODES = {ERR_LOAD: "load", ERR_RAISED: "raised", ERR_TIMEOUT: "timeout",
               ERR_OUTPUT: "output", ERR_REFUSED: "refused"}

_READY = struct.Struct("<6i")  # isolated, seccomp, landlock_abi (-1 none), uid, no_new_privs, threads
_ERROR = struct.Struct("<BiiH")  # code, step (-1 none), line (-1 none), text length
_COUNTS = struct.Struct("<II")


class ChannelError(Exception):
    """The other end sent something outside the format, too much, too little, too late, or
    closed the channel; the message says which in one line."""


class ChannelClosed(ChannelError):
    """The other end closed the channel (it exited or died) before a whole message."""


# -- framing -------------------------------------------------------------------------------------

def send(fd: int, kind: int, payload: bytes = b"") -> None:
    """Write one message to ``fd`` (blocking until it is written)."""
    data = HEADER.pack(MAGIC, VERSION, kind, len(payload), 0) + payload
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except InterruptedError:
            continue
        view = view[written:]


_POLLERS: dict[int, Any] = {}


def _poller(fd: int) -> Any:
    # One poll object per descriptor (building one per read costs more than the read).
    poller = _POLLERS.get(fd)
    if poller is None:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        _POLLERS[fd] = poller
    return poller


def forget(fd: int) -> None:
    """Drop what this module keeps for ``fd`` (call when the channel is closed)."""
    _POLLERS.pop(fd, None)


def _read_exactly(fd: int, size: int, deadline: float | None, what: str) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    poller = _poller(fd) if deadline is not None else None
    while remaining:
        if poller is not None and deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(max(1, int(left * 1000))):
                got = size - remaining
                raise ChannelError(f"no whole {what} before the deadline ({got} of {size} "
                                   f"bytes arrived)")
        try:
            chunk = os.read(fd, min(remaining, 1 << 20))
        except InterruptedError:
            continue
        except OSError as exc:
            if exc.errno in (errno.ECONNRESET, errno.EPIPE):
                chunk = b""
            else:
                raise
        if not chunk:
            raise ChannelClosed(f"the channel closed after {size - remaining} of {size} bytes "
                                f"of a {what}")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, accept: dict[int, int], deadline: float | None) -> tuple[int, bytes]:
    """Read one whole message from ``fd``: ``(kind, payload)``.

    Args:
        accept: the kinds accepted, each with the largest payload (bytes) accepted for it; a
            larger declared length is refused before any of the payload is read.
        deadline: ``time.monotonic()`` by which the *whole* message must have arrived (None:
            wait for ever; only for the trusted direction).

    Raises:
        ChannelClosed: EOF before a whole message.
        ChannelError: a bad header, a kind not accepted, a payload over its cap, or the
            deadline passed.
    """
    header = _read_exactly(fd, HEADER.size, deadline, "message header")
    magic, version, kind, length, reserved = HEADER.unpack(header)
    if magic != MAGIC or version != VERSION or reserved != 0:
        raise ChannelError("a message without the channel's header (magic or version wrong)")
    if kind not in accept:
        raise ChannelError(f"a message of kind {kind}, where only {sorted(accept)} may come")
    if length > accept[kind]:
        raise ChannelError(f"a message of {length} bytes, over the {accept[kind]} allowed")
    return kind, _read_exactly(fd, length, deadline, "message")


# -- parent -> reward process (trusted) ------------------------------------------------------------

def json_payload(value: Any) -> bytes:
    """A LOAD or SCHEMA payload."""
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def batch_payload(states: np.ndarray, actions: np.ndarray) -> bytes:
    """A BATCH payload: ``states`` (n, width) and ``actions`` (n, action size), as float64."""
    states = np.ascontiguousarray(states, dtype="<f8")
    actions = np.ascontiguousarray(actions, dtype="<f8")
    n = states.shape[0]
    return (struct.pack("<III", n, states.shape[1], actions.shape[1]) + states.tobytes()
            + actions.tobytes())


def parse_batch(payload: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``(states, actions)`` of a BATCH payload, as read-only float64 arrays."""
    n, width, act = struct.unpack_from("<III", payload)
    if n > MAX_BATCH or len(payload) != 12 + 8 * n * (width + act):
        raise ChannelError("a batch whose size does not match its counts")
    data = np.frombuffer(payload, dtype="<f8", offset=12)
    states = data[: n * width].reshape(n, width)
    actions = data[n * width:].reshape(n, act)
    return states, actions


# -- reward process -> parent (untrusted) ----------------------------------------------------------

@dataclass(frozen=True)
class IsolationReport:
    """What isolated the reward process, as it reported it (numbers only)."""

    isolated: bool
    seccomp: bool
    landlock_abi: int | None
    uid: int
    no_new_privs: bool
    threads: int
    """Threads the process had when it was isolated (1: Landlock covers every thread)."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form recorded in metrics.json's ``sandbox``."""
        return {"isolated": self.isolated, "seccomp": self.seccomp,
                "landlock_abi": self.landlock_abi, "uid": self.uid,
                "no_new_privs": self.no_new_privs, "threads": self.threads}


def ready_payload(report: IsolationReport) -> bytes:
    """A READY payload."""
    abi = -1 if report.landlock_abi is None else report.landlock_abi
    return _READY.pack(int(report.isolated), int(report.seccomp), abi, report.uid,
                       int(report.no_new_privs), report.threads)


READY_BYTES = _READY.size


def parse_ready(payload: bytes) -> IsolationReport:
    """The isolation a READY payload reports."""
    if len(payload) != _READY.size:
        raise ChannelError("a READY message of the wrong size")
    isolated, seccomp, abi, uid, nnp, threads = _READY.unpack(payload)
    if any(flag not in (0, 1) for flag in (isolated, seccomp, nnp)) or not -1 <= abi <= 64:
        raise ChannelError("a READY message with values out of range")
    return IsolationReport(bool(isolated), bool(seccomp), None if abi < 0 else abi, uid,
                           bool(nnp), threads)


@dataclass(frozen=True)
class RewardBatch:
    """The program's outputs over one BATCH: a row per state."""

    totals: np.ndarray
    """float64 (n,): the totals (may be NaN or inf: the reader decides)."""
    names: tuple[str, ...]
    """The component names, in column order."""
    values: np.ndarray
    """float64 (n, len(names)): each component's value (0 where absent)."""
    present: np.ndarray
    """bool (n, len(names)): whether the state's components had that name."""
    seconds: np.ndarray
    """float64 (n,): wall time of each ``compute_reward`` call, as the reward process timed it."""

    def components(self, row: int) -> dict[str, float]:
        """The components of one state, as the program returned them."""
        return {name: float(self.values[row, j]) for j, name in enumerate(self.names)
                if self.present[row, j]}


def result_payload(totals: np.ndarray, names: list[str], values: np.ndarray,
                   present: np.ndarray, seconds: np.ndarray) -> bytes:
    """A RESULT payload."""
    n, k = len(totals), len(names)
    parts = [_COUNTS.pack(n, k)]
    for name in names:
        raw = name.encode("utf-8")
        parts.append(struct.pack("<H", len(raw)) + raw)
    parts += [np.ascontiguousarray(totals, "<f8").tobytes(),
              np.ascontiguousarray(values, "<f8").reshape(n, k).tobytes(),
              np.ascontiguousarray(present, np.uint8).reshape(n, k).tobytes(),
              np.ascontiguousarray(seconds, "<f8").tobytes()]
    return b"".join(parts)


def result_cap(n: int) -> int:
    """The largest RESULT payload a batch of ``n`` states can need."""
    return _COUNTS.size + MAX_NAMES * (2 + MAX_NAME_BYTES) + n * (16 + MAX_NAMES * 9)


def parse_result(payload: bytes, n: int, valid_name: Any) -> RewardBatch:
    """The RESULT for a batch of ``n`` states, checked field by field.

    ``valid_name(str) -> bool`` says whether a component name may be shown (printable, short).

    Raises:
        ChannelError: counts that are not the batch's, names that are not valid UTF-8, not
            valid or repeated, flags other than 0/1, or a length that does not add up.
    """
    if len(payload) < _COUNTS.size:
        raise ChannelError("a RESULT shorter than its counts")
    got, k = _COUNTS.unpack_from(payload)
    if got != n:
        raise ChannelError(f"a RESULT for {got} states, for a batch of {n}")
    if k > MAX_NAMES:
        raise ChannelError(f"a RESULT with {k} component names, over the {MAX_NAMES} allowed")
    at, names = _COUNTS.size, []
    for _ in range(k):
        if at + 2 > len(payload):
            raise ChannelError("a RESULT cut inside its names")
        (size,) = struct.unpack_from("<H", payload, at)
        if size > MAX_NAME_BYTES or at + 2 + size > len(payload):
            raise ChannelError("a RESULT with a component name over the size allowed")
        try:
            name = payload[at + 2: at + 2 + size].decode("utf-8")
        except UnicodeDecodeError:
            raise ChannelError("a RESULT with a component name that is not UTF-8") from None
        if not valid_name(name) or name in names:
            raise ChannelError("a RESULT with an invalid or repeated component name")
        names.append(name)
        at += 2 + size
    if len(payload) - at != n * (16 + 9 * k):
        raise ChannelError("a RESULT whose length does not match its counts")
    totals = np.frombuffer(payload, "<f8", n, at).copy()
    at += 8 * n
    values = np.frombuffer(payload, "<f8", n * k, at).reshape(n, k).copy()
    at += 8 * n * k
    flags = np.frombuffer(payload, np.uint8, n * k, at).reshape(n, k)
    at += n * k
    if flags.size and int(flags.max()) > 1:
        raise ChannelError("a RESULT with presence flags other than 0 and 1")
    seconds = np.frombuffer(payload, "<f8", n, at).copy()
    return RewardBatch(totals, tuple(names), np.where(flags == 1, values, 0.0),
                       flags.astype(bool), seconds)


@dataclass(frozen=True)
class ProgramFailure:
    """What went wrong in the reward process, as it reported it."""

    code: str
    """One of ``ERROR_CODES``' values: load, raised, timeout, output, refused."""
    step: int | None
    """The batch row (0-based) whose call failed; None when no call was running."""
    line: int | None
    """The program's line where it happened, when known."""
    text: str
    """What happened (untrusted text: clean it before showing it)."""


def error_payload(code: int, text: str, step: int | None = None, line: int | None = None) -> bytes:
    """An ERROR payload (the text cut to :data:`MAX_ERROR_BYTES`)."""
    raw = text.encode("utf-8", "replace")[:MAX_ERROR_BYTES].decode("utf-8", "ignore").encode()
    return _ERROR.pack(code, -1 if step is None else step, -1 if line is None else line,
                       len(raw)) + raw


ERROR_CAP = _ERROR.size + MAX_ERROR_BYTES


def parse_error(payload: bytes) -> ProgramFailure:
    """The failure an ERROR payload reports."""
    if len(payload) < _ERROR.size:
        raise ChannelError("an ERROR shorter than its header")
    code, step, line, size = _ERROR.unpack_from(payload)
    if code not in ERROR_CODES or size != len(payload) - _ERROR.size or step < -1 or line < -1:
        raise ChannelError("an ERROR message with values out of range")
    text = payload[_ERROR.size:].decode("utf-8", "replace")
    return ProgramFailure(ERROR_CODES[code], None if step < 0 else step,
                          None if line < 0 else line, text)
