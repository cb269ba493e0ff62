"""The reward process assumed compromised: programs run with the real builtins (as if they had
escaped the restricted Python and reached native code) inside a real reward process, and try
to hurt the caller through the only things they share with it: the reply channel, the
standard streams, memory, threads and the OS.

Each attack class has a test; where the defence is ours (the parser, the launcher), a plant
shows that the test sees the attack when the defence is off.
"""

import fcntl
import json
import os
import resource
import time

import numpy as np
import pytest

from vid2reward.agent.cli import main
from vid2reward.sim import reward_wire as wire
from vid2reward.sim.errors import RewardError
from vid2reward.sim.state_record import schema_for
from vid2reward.tools import reward_client
from vid2reward.tools.reward_client import ProgramFailed, RewardProcess
from vid2reward.tools.reward_isolation import isolation_problem

pytestmark = pytest.mark.skipif(isolation_problem() is not None,
                                reason=f"no OS isolation here: {isolation_problem()}")

# What every hostile program starts with: real Python and the number of its channel.
PRELUDE = "import os, sys, signal, time\nFD = int(sys.argv[sys.argv.index('--fd') + 1])\n"

# Stops the program's own call timer and sleeps: the reply it sent stays the last word.
STALL = "signal.setitimer(signal.ITIMER_REAL, 0)\ntime.sleep(600)\n"

SCHEMA = schema_for({"x_velocity": 0.5}, np.zeros(3))


def _hostile(body: str, **kwargs) -> RewardProcess:
    """A reward process whose ``compute_reward`` runs ``body`` with the real builtins."""
    indented = "\n".join("    " + line for line in body.splitlines())
    source = f"{PRELUDE}\ndef compute_reward(s, a):\n{indented}\n    return 0.0, {{}}\n"
    kwargs.setdefault("call_seconds", 2.0)
    proc = RewardProcess(source, "hostile.py", unrestricted_for_tests=True, **kwargs)
    proc.set_schema(SCHEMA)
    return proc


def _one_batch(proc: RewardProcess, n: int = 1) -> wire.RewardBatch:
    return proc.compute(np.zeros((n, SCHEMA.width)), np.zeros((n, 3)))


def _forge(kind: int, payload: bytes) -> str:
    """Program text that writes one forged message to the channel, then stalls."""
    header = wire.HEADER.pack(wire.MAGIC, wire.VERSION, kind, len(payload), 0)
    return f"os.write(FD, {header + payload!r})\n{STALL}"


def _refused(proc: RewardProcess, n: int = 1) -> str:
    with pytest.raises(RewardError) as caught:
        _one_batch(proc, n)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert proc._proc.poll() is not None, "the process that sent it must be stopped"
    return message


def _valid_result(names: list[str], n: int = 1, flag: int = 1) -> bytes:
    k = len(names)
    return wire.result_payload(np.zeros(n), names, np.zeros((n, k)),
                               np.full((n, k), flag, np.uint8), np.zeros(n))


# -- forged replies ---------------------------------------------------------------------------

# A pickled object-dtype ndarray from raw bytes: what crashed the CLI with SIGSEGV when replies
# were unpickled. Here it is only bytes that do not start with the channel's magic.
OBJECT_ARRAY_PICKLE = (b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x15numpy.core.multiarray"
                       b"\x94\x8c\x0c_reconstruct\x94\x93\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94"
                       b"\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94(K\x01K\x02\x85\x94\x8c\x02O8"
                       b"\x94\x89C\x10AAAAAAAABBBBBBBB\x94t\x94b.")


@pytest.mark.parametrize("forgery, expected", [
    (f"os.write(FD, {OBJECT_ARRAY_PICKLE!r})\n{STALL}", "refused"),
    (f"os.write(FD, b'V2RW' + bytes(12))\n{STALL}", "refused"),  # a zero version
    (_forge(wire.RESULT, _valid_result(["a"], n=2)), "refused"),  # two rows for one state
    (_forge(wire.RESULT, _valid_result(["ab"]).replace(b"ab", b"\xff\xfe")), "refused"),
    (_forge(wire.RESULT, _valid_result([f"c{i}" for i in range(wire.MAX_NAMES + 1)])),
     "refused"),
    (_forge(wire.RESULT, _valid_result(["a\x1b[2J"])), "refused"),  # a terminal escape
    (_forge(wire.RESULT, _valid_result(["a"], flag=7)), "refused"),
    (_forge(wire.RESULT, _valid_result(["a"]) + b"extra"), "refused"),
    (_forge(wire.READY, bytes(wire.READY_BYTES)), "refused"),  # a kind not expected now
])
def test_a_forged_reply_is_refused_and_the_process_stopped(forgery, expected):
    with _hostile(forgery) as proc:
        assert expected in _refused(proc)


def test_a_huge_declared_length_costs_the_caller_nothing():
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    header = wire.HEADER.pack(wire.MAGIC, wire.VERSION, wire.RESULT, 200 * 2**20, 0)
    with _hostile(f"os.write(FD, {header!r} + bytes(4096))\n{STALL}") as proc:
        assert "refused" in _refused(proc)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown < 64 * 1024, f"the caller's peak memory grew by {grown // 1024} MiB"


def test_a_reply_cut_short_then_silence_meets_the_deadline():
    payload = _valid_result(["a"])
    header = wire.HEADER.pack(wire.MAGIC, wire.VERSION, wire.RESULT, len(payload), 0)
    with _hostile(f"os.write(FD, {header + payload[:5]!r})\n{STALL}",
                  call_seconds=1.0) as proc:
        started = time.monotonic()
        message = _refused(proc)
    assert time.monotonic() - started < 1.0 + reward_client.GRACE_SECONDS + 5
    assert "longer than" in message


def test_the_parser_is_what_refuses(monkeypatch):
    # The plant: a parser that trusts the counts lets two rows through for a batch of one.
    with _hostile(_forge(wire.RESULT, _valid_result(["a"], n=2))) as proc:
        monkeypatch.setattr(wire, "parse_result",
                            lambda payload, n, valid: wire.RewardBatch(
                                np.zeros(2), ("a",), np.zeros((2, 1)), np.ones((2, 1), bool),
                                np.zeros(2)))
        assert len(_one_batch(proc).totals) == 2


# -- what the process holds: secrets, threads, descriptors, modules ------------------------------

SECRET = "sk-test-0123456789abcdefSECRET"

FIND_SECRET = f"""
needle = {SECRET[:10]!r} + {SECRET[10:]!r}
places = [k for k, v in os.environ.items() if needle in v]
for path in ('/proc/self/environ', f'/proc/{{os.getppid()}}/environ'):
    try:
        if needle.encode() in open(path, 'rb').read():
            places.append(path)
    except OSError:
        pass
return float(len(places)), {{}}
"""


def _in_memory(pid: int, needle: bytes) -> bool:
    """Whether ``needle`` is anywhere in the process's readable memory (read from outside)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if not perms.startswith("r") or line.rstrip().endswith("[vvar]"):
                continue
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except OSError:
                continue  # a region that cannot be read (a guard page)
    return False


def _found_secret() -> tuple[int, bool]:
    """(places the program found it, whether it is in a reward process's memory at all)."""
    with _hostile(FIND_SECRET) as proc:
        found = int(_one_batch(proc).totals[0])
    with _hostile("pass") as proc:  # the searcher's memory holds the needle it built
        _one_batch(proc)
        return found, _in_memory(proc._proc.pid, SECRET.encode())


@pytest.mark.skipif(os.geteuid() != 0, reason="reading another user's memory needs root")
def test_the_callers_secrets_are_not_in_the_reward_process(monkeypatch):
    monkeypatch.setenv("FAKE_API_KEY", SECRET)
    assert _found_secret() == (0, False)
    # The plant: a launcher that passes the caller's environment on. Scrubbing os.environ (as
    # isolation does) hides it from the program's first look, not from its memory.
    clean = reward_client._clean_environment
    monkeypatch.setattr(reward_client, "_clean_environment", lambda: {**os.environ, **clean()})
    assert _found_secret()[1]


def test_one_thread_and_no_new_ones():
    body = ("import threading\nout = {}\n"
            "try:\n    threading.Thread(target=lambda: None).start()\n    out['started'] = 1.0\n"
            "except RuntimeError:\n    out['refused'] = 1.0\n"
            "try:\n    open('/etc/passwd').read()\n    out['read'] = 1.0\n"
            "except OSError:\n    out['denied'] = 1.0\n"
            "return 0.0, out")
    with _hostile(body) as proc:
        assert proc.isolation is not None and proc.isolation.threads == 1
        assert proc.isolation.seccomp and proc.isolation.isolated
        assert _one_batch(proc).components(0) == {"refused": 1.0, "denied": 1.0}


def test_the_standard_streams_and_terminal_are_not_the_callers():
    body = ("import fcntl\nout = {}\n"
            "for fd in (0, 1, 2):\n"
            "    for name, attempt in (('flags', lambda: fcntl.fcntl(fd, fcntl.F_SETFL, "
            "os.O_DIRECT | os.O_APPEND)), ('seek', lambda: os.lseek(fd, 2**44, 0)), "
            "('write', lambda: os.write(fd, b'x'))):\n"
            "        try:\n            attempt()\n            out[f'{name}{fd}'] = 1.0\n"
            "        except OSError:\n            pass\n"
            "try:\n    os.open('/dev/tty', os.O_RDWR)\n    out['tty'] = 1.0\n"
            "except OSError:\n    pass\n"
            "return 0.0, out")
    flags = [fcntl.fcntl(fd, fcntl.F_GETFL) for fd in (1, 2)]
    offsets = [os.lseek(fd, 0, os.SEEK_CUR) for fd in (1, 2) if not os.isatty(fd)]
    with _hostile(body) as proc:
        targets = sorted(os.readlink(f"/proc/{proc._proc.pid}/fd/{fd}")
                         for fd in os.listdir(f"/proc/{proc._proc.pid}/fd"))
        done = _one_batch(proc).components(0)
    # Whatever it managed on its own /dev/null (nothing, under seccomp), none is ours.
    assert targets[:3] == ["/dev/null"] * 3 and len(targets) == 4
    assert targets[3].startswith("socket:")
    assert "tty" not in done and not any(k.startswith("write") for k in done), done
    assert [fcntl.fcntl(fd, fcntl.F_GETFL) for fd in (1, 2)] == flags
    assert [os.lseek(fd, 0, os.SEEK_CUR) for fd in (1, 2) if not os.isatty(fd)] == offsets


def test_no_simulator_in_the_reward_process():
    body = ("heavy = [m for m in ('mujoco', 'gymnasium', 'torch', 'stable_baselines3', "
            "'vid2reward.sim.state', 'vid2reward.sim.envs') if m in sys.modules]\n"
            "return float(len(heavy)), {}")
    with _hostile(body) as proc:
        assert _one_batch(proc).totals[0] == 0


# -- the OS layer around a process running native code ------------------------------------------

@pytest.mark.parametrize("name", ["write-file", "create-file", "shell", "subprocess", "fork",
                                  "socket", "signal-parent"])
def test_escapes_from_the_reward_process_are_contained(name, observer):
    attempt = observer.fill(observer.escapes[name])
    body = f"try:\n{_indent(attempt)}\nexcept Exception:\n    pass"
    with _hostile(body) as proc:
        _one_batch(proc)
    assert observer.escaped() == []


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


# -- the program's answers: strict types ---------------------------------------------------------

@pytest.mark.parametrize("total, kind", [('"7.5"', "str"), ("True", "bool"),
                                         ("1 + 2j", "complex"), ("[1.0]", "list")])
def test_a_total_that_is_not_a_real_number_is_refused(total, kind):
    source = f"def compute_reward(s, a):\n    return {total}, {{}}\n"
    with RewardProcess(source, "typed.py") as proc:
        proc.set_schema(SCHEMA)
        with pytest.raises(ProgramFailed, match=f"the total is {kind}, not a number"):
            _one_batch(proc)


def test_reward_test_reports_a_string_reward(tmp_path, capsys):
    path = tmp_path / "stringly.py"
    path.write_text("def compute_reward(s, a):\n    return 1.0, {'speed': '7.5'}\n")
    code = main(["reward", "test", str(path), "--env", "Hopper-v5", "--steps", "20", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code != 0 and not report["ok"]
    assert "component 'speed' is str, not a number" in report["error"]
