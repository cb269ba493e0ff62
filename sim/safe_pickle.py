"""Reading replies from processes that run untrusted code, without trusting them.

A worker process that runs reward code is isolated by the OS, but it still talks to its parent
over a pipe, and ``multiprocessing`` unpickles whatever arrives: a pickle can name any
callable (``os.system``) and so run code in the parent. :func:`loads` unpickles with an
allowlist of classes instead (the Python docs' "restricting globals"): plain data, numpy
arrays and scalars without object dtypes (an object array made from raw bytes forges
pointers), Gymnasium spaces, and the exceptions and reports the workers send back.
:func:`recv` reads one message from a ``multiprocessing`` connection with a size cap.
"""

from __future__ import annotations

import builtins
import io
import pickle
from typing import Any

import numpy as np

MAX_MESSAGE_BYTES = 64 * 2**20
"""Largest reply accepted from a worker: a hostile one must not exhaust the parent's memory."""

_NUMPY_SAFE = {
    ("numpy.random._pickle", "__generator_ctor"), ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"), ("numpy.random._pcg64", "PCG64"),
    ("numpy.random._mt19937", "MT19937"), ("numpy.random._philox", "Philox"),
    ("numpy.random._sfc64", "SFC64"), ("numpy.random.bit_generator", "SeedSequence"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"), ("numpy", "ndarray"),
}

_ALLOWED_CLASSES = {
    ("gymnasium.spaces.box", "Box"), ("gymnasium.spaces.discrete", "Discrete"),
    ("gymnasium.spaces.multi_discrete", "MultiDiscrete"),
    ("gymnasium.spaces.multi_binary", "MultiBinary"), ("gymnasium.spaces.dict", "Dict"),
    ("gymnasium.spaces.tuple", "Tuple"), ("collections", "OrderedDict"),
    ("vid2reward.sim.vec_env", "WorkerFailure"), ("vid2reward.sim.vec_env", "EnvWorkerError"),
    ("vid2reward.sim.errors", "RewardError"), ("vid2reward.sim.errors", "UserError"),
    ("vid2reward.tools.reward_runtime", "RewardTestReport"),
    ("vid2reward.tools.reward_runtime", "SeriesStats"),
}

_SAFE_BUILTINS = {"complex", "set", "frozenset", "slice", "range", "bytearray"}


class UnsafePickleError(pickle.UnpicklingError):
    """A reply names something outside the allowlist, or carries an object array."""


def _no_objects(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.hasobject:
        raise UnsafePickleError("a reply carries a numpy array of Python objects")
    return dt


def _safe_dtype(*args: Any) -> np.dtype:
    return _no_objects(np.dtype(*args))


def _safe_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    from numpy._core.numeric import _frombuffer  # type: ignore[attr-defined]
    return _frombuffer(buf, _no_objects(dtype), shape, order)


def _safe_reconstruct(cls: Any, shape: Any, dtype: Any) -> np.ndarray:
    if cls is not np.ndarray:
        raise UnsafePickleError("a reply reconstructs an ndarray subclass")
    return np.ndarray.__new__(np.ndarray, shape, _no_objects(dtype))


def _safe_scalar(dtype: Any, *args: Any) -> Any:
    from numpy._core.multiarray import scalar  # type: ignore[import-not-found]
    return scalar(_no_objects(dtype), *args)


_WRAPPED = {"dtype": _safe_dtype, "_frombuffer": _safe_frombuffer,
            "_reconstruct": _safe_reconstruct, "scalar": _safe_scalar}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        top = module.partition(".")[0]
        if top == "numpy" and name in _WRAPPED and module in (
                "numpy", "numpy.core.multiarray", "numpy._core.multiarray",
                "numpy.core.numeric", "numpy._core.numeric"):
            return _WRAPPED[name]
        if module == "builtins":
            value = getattr(builtins, name, None)
            if name in _SAFE_BUILTINS or (isinstance(value, type)
                                          and issubclass(value, Exception)):
                return value
        elif (module, name) in _NUMPY_SAFE or (module, name) in _ALLOWED_CLASSES:
            return super().find_class(module, name)
        elif top == "numpy" and module != "numpy" and name.endswith(("Error", "Warning")):
            return super().find_class(module, name)  # numpy's own exception types
        raise UnsafePickleError(f"a reply names {module}.{name}, which is not allowed")


def loads(data: bytes | memoryview) -> Any:
    """Unpickle ``data`` allowing only the classes listed in this module.

    Raises:
        UnsafePickleError: something outside the allowlist, or an object array.
    """
    return _Unpickler(io.BytesIO(data)).load()


def recv(connection: Any) -> Any:
    """One message from a ``multiprocessing`` connection, read as :func:`loads` does.

    Raises:
        EOFError: the other end closed the pipe.
        UnsafePickleError: a message over :data:`MAX_MESSAGE_BYTES`, or an unsafe one.
    """
    try:
        data = connection.recv_bytes(MAX_MESSAGE_BYTES)
    except OSError as exc:
        if "too long" in str(exc) or "bad message length" in str(exc):
            raise UnsafePickleError(f"a reply is over {MAX_MESSAGE_BYTES} bytes") from None
        raise
    return loads(data)
