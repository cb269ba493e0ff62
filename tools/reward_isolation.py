"""Isolation by the operating system of a process that runs reward code.

The Python-level gates (:mod:`~vid2reward.tools.reward_check`, restricted builtins) narrow
what a reward program can reach; this module makes the kernel the boundary, so that a program
that escapes Python anyway still cannot touch anything outside its own process.
:func:`enter_isolation` is called once per process, after its trusted setup (imports, MuJoCo
models loaded) and before the first line of reward code, and is final:

1. secrets in the environment (``*KEY*``, ``*TOKEN*``...) are removed from ``os.environ``;
2. ``PR_SET_NO_NEW_PRIVS``: nothing the process runs can gain privileges;
3. started as root, it drops to ``nobody`` (uid/gid 65534, no supplementary groups), so
   it cannot signal, trace or write anything another user owns;
4. Landlock, where the kernel has it: the file system becomes read-only, and readable only
   beneath the Python installation and this package; TCP bind/connect and signals to
   processes outside the sandbox are denied too (ABI 4 and 6);
5. a seccomp-bpf filter (libseccomp through ``pyseccomp``) with an allowlist: reading, memory,
   futexes, clocks, signals to itself, timers and exit; ``openat`` only without write,
   create or truncate flags; ``write`` only on the pipe to the parent process. Everything
   else (sockets, exec, fork, ptrace, kill of other processes, ioctl beyond TCGETS, dup,
   sendfile, ...) fails with EPERM.

:func:`isolation_problem` says in one line why this machine cannot isolate (not Linux, no
seccomp, libseccomp missing); callers refuse to run untrusted code then, unless the user
passed ``--trust-reward-code``. See docs/sandbox.md for why these libraries.
"""

from __future__ import annotations

import ctypes
import errno
import importlib
import math
import multiprocessing
import os
import resource
import sys
from functools import cache
from pathlib import Path
from typing import Any

from vid2reward.sim.errors import RewardError, UserError

TRUST_ENV = "VID2REWARD_TRUST_REWARD_CODE"
"""Set to 1 (``--trust-reward-code`` does) to run reward code without OS isolation where the
OS cannot provide it. Where it can, reward code is always isolated."""

NOBODY = 65534
"""uid and gid a root process drops to."""

_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL", "AUTH")

_ALLOWED_SYSCALLS = (
    # reading, file metadata (writes are ruled below)
    "read", "readv", "pread64", "preadv", "preadv2", "lseek", "close", "close_range", "fstat",
    "newfstatat", "stat", "lstat", "statx", "fstatfs", "statfs", "access", "faccessat",
    "faccessat2", "readlink", "readlinkat", "getdents64", "getcwd",
    # memory
    "mmap", "munmap", "mremap", "mprotect", "madvise", "brk", "mincore",
    # threads that already exist (OpenBLAS), futexes, restartable sequences
    "futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address", "sched_yield",
    "sched_getaffinity", "membarrier",
    # time, timers and signals delivered to itself (the per-call time limit is SIGALRM)
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "sigaltstack",
    "setitimer", "getitimer", "alarm",
    # waiting on the pipe, identity, randomness, accounting
    "poll", "ppoll", "select", "pselect6", "getpid", "gettid", "getppid", "getuid", "geteuid",
    "getgid", "getegid", "getgroups", "getresuid", "getresgid", "getrandom", "getrusage",
    "times", "uname", "sysinfo",
    "exit", "exit_group", "restart_syscall",
)

# openat() flags that write, create or truncate: an open with any of them is denied.
_WRITE_OPEN_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_TCGETS, _FIONCLEX, _FIOCLEX = 0x5401, 0x5450, 0x5451  # isatty() and close-on-exec only
_CLONE_THREAD = 0x00010000

_state: dict[str, Any] = {"report": None, "write_fds": ()}


def set_trust(trust: bool) -> None:
    """Record ``--trust-reward-code`` for this process and its children (an env variable)."""
    if trust:
        os.environ[TRUST_ENV] = "1"
    else:
        os.environ.pop(TRUST_ENV, None)


def trusted_by_user() -> bool:
    """True when the user allowed unisolated reward code (``--trust-reward-code``)."""
    return os.environ.get(TRUST_ENV, "") not in ("", "0")


@cache
def isolation_problem() -> str | None:
    """Why this machine cannot isolate reward code (one line), or None when it can."""
    if not sys.platform.startswith("linux"):
        return f"the reward sandbox needs Linux seccomp, and this is {sys.platform}"
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            status = f.read()
    except OSError:
        status = ""
    if "Seccomp:" not in status or "NoNewPrivs:" not in status:
        return "this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)"
    try:
        _seccomp()
    except (ImportError, RuntimeError, OSError) as exc:
        return (f"libseccomp is not usable ({' '.join(str(exc).split())}); install the system "
                f"package libseccomp2 and the Python package pyseccomp")
    return None


def require_isolation(trust: bool | None = None) -> None:
    """Refuse (one line) to run untrusted reward code where the OS cannot isolate it.

    Raises:
        UserError: :func:`isolation_problem` names a problem and ``trust`` (default: the
            ``--trust-reward-code`` setting) is false.
    """
    problem = isolation_problem()
    trust = trusted_by_user() if trust is None else trust
    if problem and not trust:
        raise UserError(f"refusing to run untrusted reward code without OS isolation: {problem}",
                        fix="run on Linux with seccomp and libseccomp, or pass "
                            "--trust-reward-code if you trust every reward program")


def set_write_fds(fds: tuple[int, ...]) -> None:
    """The file descriptors that stay writable once isolated: the pipe to the parent."""
    _state["write_fds"] = tuple(fds)


def isolation_report() -> dict[str, Any] | None:
    """What :func:`enter_isolation` applied in this process (None before it ran)."""
    return _state["report"]


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent exits (PR_SET_PDEATHSIG)."""
    _libc().prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL


def _address_space_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        pages = int(f.read().split()[0])
    return pages * resource.getpagesize()


def limit_process(memory_mb: int, cpu_seconds: float | None) -> None:
    """Limit this process: memory (RLIMIT_AS) and CPU time (RLIMIT_CPU), no core dumps.

    Both are set relative to what the process already uses, and as hard limits too, so
    nothing in the process can raise them again. Memory over the limit makes allocations fail
    (MemoryError); CPU time over it sends SIGXCPU, which ends the process.
    """
    budget = _address_space_bytes() + memory_mb * 2**20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        budget = min(budget, hard)
    resource.setrlimit(resource.RLIMIT_AS, (budget, budget))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if cpu_seconds is not None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime + cpu_seconds)
        _, hard_cpu = resource.getrlimit(resource.RLIMIT_CPU)
        if hard_cpu != resource.RLIM_INFINITY:  # a limit inherited from the launcher stays
            soft = min(soft, max(0, hard_cpu - 2))
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 2))  # SIGXCPU, then SIGKILL


def enter_isolation(trust: bool = False, *, allow_threads: bool = True) -> dict[str, Any]:
    """Isolate this process for good (see the module docstring); a second call does nothing.

    ``allow_threads=False`` (the reward process, which has one thread) denies ``clone``
    altogether: no thread can be made that a signal handler could be run on, and none exists.

    Returns:
        What was applied: ``isolated``, ``seccomp``, ``landlock_abi``, ``uid``,
        ``no_new_privs``, ``trusted``.

    Raises:
        RewardError: the OS cannot isolate this process and ``trust`` is false (the process
            stays unable to run reward code: nothing is half-applied silently), or this is
            not a ``multiprocessing`` child (the caller must never lose its privileges).
    """
    done: dict[str, Any] | None = _state["report"]
    if done is not None:
        return done
    problem = isolation_problem()
    if problem:
        if not trust:
            raise RewardError(f"refusing to run untrusted reward code without OS isolation: "
                              f"{problem}", fix="pass --trust-reward-code if you trust it")
        report = {"isolated": False, "seccomp": False, "landlock_abi": None,
                  "uid": os.geteuid(), "no_new_privs": False, "trusted": True,
                  "problem": problem}
        _state["report"] = report
        return report
    # Isolation is final: never the caller. Only a reward process (its launcher sets the
    # marker in its clean environment) or a multiprocessing child may isolate itself.
    if os.environ.get("VID2REWARD_REWARD_PROCESS") != "1" \
            and multiprocessing.parent_process() is None:
        raise RewardError("reward code runs only in a child process, and this is the main "
                          "process", fix="run it through the reward process (reward_client)")
    _scrub_environment()
    _preimport()
    _libc().prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: required by Landlock, and final
    if os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
    abi = _landlock(_readable_paths())
    _seccomp_filter(_state["write_fds"], allow_threads).load()
    report = {"isolated": True, "seccomp": True, "landlock_abi": abi,
              "uid": os.geteuid(), "no_new_privs": True, "trusted": trust}
    _state["report"] = report
    return report


# -- setup --------------------------------------------------------------------------------------

def _scrub_environment() -> None:
    # A reward program that escaped Python must not find API keys in its own environment.
    for name in list(os.environ):
        if any(word in name.upper() for word in _SECRET_WORDS):
            del os.environ[name]


def _preimport() -> None:
    # Imports after isolation may be unreadable (root's home is 0700 to nobody): import every
    # module a reward program may ask for now, while the files are readable.
    from vid2reward.tools.reward_python import ALLOWED_IMPORTS
    for name in sorted(ALLOWED_IMPORTS):
        importlib.import_module(name)
    import linecache  # noqa: F401 - tracebacks of reward errors read no files after this
    import traceback  # noqa: F401


def _readable_paths() -> list[Path]:
    """Where an isolated process may still read: Python, its packages, this package, libs."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, "/usr/lib", "/usr/lib64", "/lib",
             "/lib64", "/usr/local/lib"}
    roots |= {p for p in sys.path if p and os.path.isabs(p)}
    here = Path(__file__).resolve().parent.parent
    roots |= {str(here)}
    for pkg in ("vid2reward.sim", "vid2reward.tools", "vid2reward.agent"):
        module = sys.modules.get(pkg)
        if module is not None and getattr(module, "__file__", None):
            roots.add(str(Path(module.__file__).resolve().parent))  # type: ignore[arg-type]
    return sorted(Path(r) for r in roots if os.path.isdir(r))


@cache
def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


# -- Landlock (optional layer) -------------------------------------------------------------------

class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_LL_CREATE, _LL_ADD_RULE, _LL_RESTRICT = 444, 445, 446  # the same numbers on every arch
_LL_READ_FILE, _LL_READ_DIR = 1 << 2, 1 << 3
_LL_FS_BITS = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}  # ABI -> number of fs access rights


def _landlock(readable: list[Path]) -> int | None:
    """Apply a read-only, path-limited Landlock ruleset; the ABI used, or None without one."""
    libc = _libc()
    abi = libc.syscall(_LL_CREATE, None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
    if abi < 1:
        return None
    attr = _RulesetAttr((1 << _LL_FS_BITS.get(abi, 16)) - 1, 0, 0)
    size = 8
    if abi >= 4:
        attr.handled_access_net, size = 0b11, 16  # TCP bind and connect
    if abi >= 6:
        attr.scoped, size = 0b11, 24  # abstract unix sockets and signals outside the sandbox
    ruleset = libc.syscall(_LL_CREATE, ctypes.byref(attr), size, 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path in readable:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneathAttr(_LL_READ_FILE | _LL_READ_DIR, fd)
                if libc.syscall(_LL_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) < 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(fd)
        if libc.syscall(_LL_RESTRICT, ruleset, 0) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return int(abi)


# -- seccomp (the main layer) -------------------------------------------------------------------

@cache
def _seccomp() -> Any:
    import pyseccomp  # loads the system's libseccomp; RuntimeError when it is missing
    pyseccomp.SyscallFilter(pyseccomp.ALLOW)  # and it can build a filter here
    return pyseccomp


def _seccomp_filter(write_fds: tuple[int, ...], allow_threads: bool = True) -> Any:
    """The allowlist filter; ``write_fds`` are the only descriptors it lets the process write."""
    sc = _seccomp()
    deny = sc.ERRNO(errno.EPERM)
    flt = sc.SyscallFilter(deny)
    flt.set_attr(sc.Attr.CTL_TSYNC, 1)  # every thread (OpenBLAS starts some) gets the filter
    flt.set_attr(sc.Attr.CTL_NNP, 1)

    def allow(name: str, *args: Any) -> None:
        try:
            flt.add_rule(sc.ALLOW, name, *args)
        except (OSError, ValueError):  # a syscall this architecture does not have
            pass

    for name in _ALLOWED_SYSCALLS:
        allow(name)
    for fd in write_fds:
        for name in ("write", "writev", "pwrite64", "pwritev", "pwritev2"):
            allow(name, sc.Arg(0, sc.EQ, fd))
    allow("openat", sc.Arg(2, sc.MASKED_EQ, _WRITE_OPEN_FLAGS, 0))
    allow("open", sc.Arg(1, sc.MASKED_EQ, _WRITE_OPEN_FLAGS, 0))
    for request in (_TCGETS, _FIONCLEX, _FIOCLEX):
        allow("ioctl", sc.Arg(1, sc.EQ, request))
    for command in (1, 2, 3, 4):  # F_GETFD, F_SETFD, F_GETFL, F_SETFL (never F_DUPFD)
        allow("fcntl", sc.Arg(1, sc.EQ, command))
    pid = os.getpid()
    allow("kill", sc.Arg(0, sc.EQ, pid))  # itself only
    allow("tgkill", sc.Arg(0, sc.EQ, pid))
    if allow_threads:  # threads, never processes
        allow("clone", sc.Arg(0, sc.MASKED_EQ, _CLONE_THREAD, _CLONE_THREAD))
    allow("prlimit64", sc.Arg(0, sc.EQ, 0), sc.Arg(2, sc.EQ, 0))  # reading its own limits
    for name in ("clone3", "openat2"):  # ENOSYS: glibc falls back to the calls ruled above
        try:
            flt.add_rule(sc.ERRNO(errno.ENOSYS), name)
        except (OSError, ValueError):
            pass
    return flt
