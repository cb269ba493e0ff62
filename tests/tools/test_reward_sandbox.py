"""Broken and hostile programs that pass the static check are contained at run time.

Each runs through ``reward test`` in a limited child process; the report says what went wrong,
on which line, and this process carries on.
"""

import multiprocessing
import os

import pytest

from vid2reward.sim.reward import RewardError, load_reward_program
from vid2reward.tools.reward_check import find_violations
from vid2reward.tools.reward_runtime import run_reward_test
from vid2reward.tools.reward_sandbox import (
    SandboxLimits,
    load_sandboxed,
    run_in_sandbox,
    safe_builtins,
    sandboxed_program,
)

# call_seconds leaves room for a loaded machine: the memory and recursion bombs must reach their
# own limits (MemoryError, RecursionError) before the per-call alarm, even at a load of 8.
FAST = SandboxLimits(memory_mb=512, cpu_seconds=20, wall_seconds=30, load_seconds=1.0,
                     call_seconds=2.0)
HEAD = "import math\nimport numpy as np\n"


def program(*body: str, ret: str = "return 1.0, {'alive': 1.0}") -> str:
    """compute_reward runs ``body`` from line 4 of the file, then ``ret``."""
    lines = "".join(f"    {line}\n" for line in body)
    return HEAD + "def compute_reward(s, a):\n" + lines + f"    {ret}\n"


# (id, source, substrings the error must contain): the half of the corpus that runs.
RUNTIME_CORPUS = [
    ("infinite-loop", program("while True:", "    x = 1"), ["longer than 2 s", "interrupted on line"]),
    ("loop-swallowing-exceptions",
     program("while True:", "    try:", "        x = 1", "    except Exception:",
             "        pass"), ["longer than 2 s"]),
    ("very-slow-code", program("t = 0", "for i in range(10**9):", "    t += i"),
     ["longer than 2 s", "line 6"]),
    ("infinite-loop-at-top-level", HEAD + "while True:\n    pass\n" + program()[len(HEAD):],
     ["top level ran longer than 1 s", "interrupted on line"]),
    ("huge-numpy-array", program("x = np.ones(2 * 10**8)"), ["MemoryError", "line 4"]),
    ("huge-list", program("x = [1.0] * (3 * 10**8)"), ["MemoryError", "line 4"]),
    ("huge-string", program("x = 'x' * (10**9)"), ["MemoryError", "line 4"]),
    ("memory-leak-loop", program("x = []", "while True:", "    x.append([0.0] * 10**6)"),
     ["MemoryError", "line 6"]),
    ("huge-allocation-at-top-level", HEAD + "BIG = np.zeros(10**9)\n" + program()[len(HEAD):],
     ["MemoryError", "line 3", "while loading"]),
    ("recursion-bomb", "def f(n):\n    return f(n + 1)\n" + program("f(0)"),
     ["RecursionError", "line 2"]),
    ("deep-nesting", program("x = []", "for i in range(10**4):", "    x = [x]", "y = str(x)"),
     ["RecursionError"]),
    ("nan-total", program(ret="return float('nan'), {}"), ["the total was NaN or inf"]),
    ("inf-component", program(ret="return 1.0, {'blow': math.inf}"),
     ["component 'blow' was NaN or inf"]),
    ("division-by-zero-to-inf", program("x = np.float64(1.0) / np.float64(0.0)",
                                        ret="return float(x), {'x': float(x)}"),
     ["NaN or inf"]),
    ("nan-sometimes", program(ret="return (math.nan if s.step % 7 == 0 else 1.0), {}"),
     ["the total was NaN or inf", "state 7"]),
    ("returns-float", program(ret="return 1.0"), ["returned float", "not a tuple"]),
    ("returns-string-total", program(ret="return 'high', {}"), ["total is str"]),
    ("returns-list-components", program(ret="return 1.0, [1.0]"), ["components are list"]),
    ("returns-none-component", program(ret="return 1.0, {'x': None}"),
     ["component 'x' is NoneType"]),
    ("returns-array-total", program(ret="return np.ones(3), {}"), ["total is ndarray"]),
    ("raises", program("raise ValueError('boom')"), ["ValueError", "line 4", "boom"]),
    ("zero-division", program("x = 1 / (s.step - 1)"), ["ZeroDivisionError", "line 4"]),
    ("weights-typo", "WEIGHTS = {'forward': 1.0}\n" + program("w = WEIGHTS['fwd']"),
     ["KeyError", "line 5", "fwd"]),
    ("undefined-name", program("x = helper(1)"), ["NameError", "helper"]),
    ("multi-line-message", program("raise ValueError('a\\n' * 1000)"), ["ValueError"]),
    ("raises-at-top-level", HEAD + "X = 1 / 0\n" + program()[len(HEAD):],
     ["ZeroDivisionError", "line 3", "while loading"]),
    # issue 12: failures of every type are one-line reports, and output is bounded and clean
    ("overflowing-total", program(ret="return 10**400, {}"), ["total is too large"]),
    ("overflowing-component", program(ret="return 1.0, {'big': 10**400}"),
     ["component 'big' is too large"]),
    ("twenty-thousand-components", program(ret="return 0.0, {str(i): 0.0 for i in range(20000)}"),
     ["20000 components, more than 64"]),
    ("megabyte-component-name", program(ret="return 1.0, {'x' * 10**6: 1.0}"),
     ["not a short printable string"]),
    ("ansi-component-name", program(ret="return 1.0, {'\\x1b[2Jall ok': 1.0}"),
     ["not a short printable string"]),
    ("non-string-component-name", program(ret="return 1.0, {1: 1.0}"),
     ["not a short printable string"]),
    ("ansi-in-error-message", program("raise ValueError('\\x1b[31mreward ok\\x1b[0m\\rFAKE')"),
     ["ValueError", "reward ok"]),
    ("weights-mutated-through-an-alias", "WEIGHTS = {'forward': 1.0}\n"
     + program("w = WEIGHTS", "w['forward'] = 9.0"), ["TypeError", "line 6"]),
    ("weights-cleared-through-an-alias", "WEIGHTS = {'forward': 1.0}\n"
     + program("w = WEIGHTS", "w.clear()"), ["AttributeError", "line 6"]),
]


@pytest.mark.parametrize("source,expected", [c[1:] for c in RUNTIME_CORPUS],
                         ids=[c[0] for c in RUNTIME_CORPUS])
def test_broken_program_is_contained_with_a_clear_reason(source, expected):
    assert find_violations(source) == []  # these get past the static check: runtime must hold
    report = run_reward_test(source, "Hopper-v5", name="evil.py", random_steps=20,
                             zero_steps=10, limits=FAST)
    assert not report.ok
    assert report.error and "\n" not in report.error and len(report.error) < 400
    assert not any(ch in report.error for ch in "\x1b\r\x00")
    for text in expected:
        assert text in report.error, report.error


def test_finally_that_swallows_the_time_limit_is_stopped_from_outside():
    # `continue` in a finally block swallows the per-call alarm, for ever: only the caller's
    # deadline on the reply (it kills the reward process) ends it.
    source = program("while True:", "    try:", "        while True:", "            pass",
                     "    finally:", "        continue")
    assert find_violations(source) == []
    limits = SandboxLimits(memory_mb=512, cpu_seconds=60, wall_seconds=4, call_seconds=0.5)
    report = run_reward_test(source, "Hopper-v5", random_steps=5, zero_steps=0, limits=limits)
    assert not report.ok and "ran longer than 2.5 s (the reward process was stopped" \
        in report.error


def test_a_program_cannot_change_the_harness_numpy_or_math():
    # The static check forbids these assignments; without it, the program's own copies of
    # numpy and math take them, and the trusted code around it keeps the real functions.
    import math as real_math

    import numpy as real_np
    source = ("import math\nimport numpy as np\nimport numpy.linalg\n"
              "np.isfinite = lambda x: True\ndel np.float64\nmath.isfinite = abs\n"
              "numpy.linalg.norm = None\n"
              "def compute_reward(s, a):\n    return 1.0, {'f': float(np.isfinite(np.nan))}\n")
    assert {v.rule for v in find_violations(source)} == {"attribute-store"}
    loaded = load_reward_program(source, exec_globals={"__builtins__": safe_builtins()})
    assert loaded.compute(None, None) == (1.0, {"f": 1.0})  # its own np.isfinite
    assert real_np.isfinite(real_np.nan) == False  # noqa: E712 - numpy bool
    assert real_np.float64 is not None and real_math.isfinite(real_math.nan) is False
    assert callable(real_np.linalg.norm)


def test_uninterruptible_c_call_is_stopped_by_wall_time():
    # One long C call: the per-call alarm cannot interrupt it, the caller kills the process.
    source = program("x = np.convolve(np.ones(10**6), np.ones(10**6))")
    limits = SandboxLimits(memory_mb=512, cpu_seconds=60, wall_seconds=3, call_seconds=0.5)
    report = run_reward_test(source, "Hopper-v5", random_steps=5, zero_steps=0, limits=limits)
    assert not report.ok and "ran longer than 2.5 s (the reward process was stopped" \
        in report.error


def test_uninterruptible_c_call_is_stopped_by_cpu_time():
    source = program("x = np.convolve(np.ones(10**6), np.ones(10**6))")
    limits = SandboxLimits(memory_mb=512, cpu_seconds=1, wall_seconds=30, call_seconds=0.5)
    report = run_reward_test(source, "Hopper-v5", random_steps=5, zero_steps=0, limits=limits)
    assert not report.ok and "CPU-time limit" in report.error


def test_the_calling_process_survives_and_leaves_no_children():
    pid = os.getpid()
    report = run_reward_test(program("while True:", "    pass"), "Hopper-v5", random_steps=5,
                             zero_steps=0, limits=FAST)
    assert not report.ok and os.getpid() == pid
    assert multiprocessing.active_children() == []


def test_the_parent_never_runs_reward_code(tmp_path):
    marker = tmp_path / "ran"
    source = program() + f"X = compute_reward(None, None) if False else 1  # {marker}\n"
    handle = sandboxed_program(source, name="r.py")
    assert handle.weights == {} and handle.name == "r.py"
    with pytest.raises(RewardError, match="runs only inside the sandbox"):
        handle.compute(None, None)


def test_static_rejection_is_a_report_not_an_exception():
    report = run_reward_test("import os\n" + program(), "Hopper-v5")
    assert not report.ok and report.calls == 0
    assert report.violations and "rule import" in report.error and "line 1" in report.error


def test_load_sandboxed_checks_statically_first():
    with pytest.raises(RewardError, match="rule private"):
        load_sandboxed(program("t = s._StateView__tracker"), "r.py")


def _child_value(x):
    return x * 2


def _child_raises():
    raise RuntimeError("inside")


def test_run_in_sandbox_returns_values_and_reports_errors():
    assert run_in_sandbox(_child_value, 21, limits=FAST) == 42
    with pytest.raises(RewardError, match="RuntimeError: inside"):
        run_in_sandbox(_child_raises, limits=FAST)


def test_report_of_a_good_program(examples_dir):
    report = run_reward_test(examples_dir / "hopper_default.py", "Hopper-v5", limits=FAST)
    assert report.ok and report.error is None and report.calls == 300
    assert report.total_is_float and report.total_finite and report.sums_to_total
    assert {c.name for c in report.components} == {"forward", "healthy", "ctrl"}
    assert all(c.count == 300 and c.std is not None for c in report.components)
    assert 0 < report.us_per_call < 10_000 and report.env_us_per_step > 0
    healthy = next(c for c in report.components if c.name == "healthy")
    assert healthy.min == 0.0 and healthy.max == 1.0  # falls happen in random rollouts


@pytest.mark.parametrize("source,warning", [
    (program(ret="return 1.0, {'alive': 1.0}"), "the total is the same (1)"),
    (program(ret="return 1.0, {'alive': 1.0}"), "component 'alive' never changed"),
    (program("f = s.forward_velocity",
             ret="return 1000 * f + 0.001 * f, {'big': 1000 * f, 'small': 0.001 * f}"),
     "component 'big' dominates"),
    (program("f = s.forward_velocity", ret="return 2 * f, {'f': f}"), "do not add up"),
    (program("f = s.forward_velocity", ret="return f, {}"), "no components"),
    (program("f = s.forward_velocity",
             ret="return f, ({'f': f} if s.step % 2 else {'g': f})"), "names differ"),
    (program("t = 0.0", "for i in range(20000):", "    t += i",
             ret="return s.forward_velocity, {'f': s.forward_velocity}"), "us per call"),
])
def test_warnings_name_the_problem_and_the_remedy(source, warning):
    report = run_reward_test(source, "Hopper-v5", random_steps=40, zero_steps=20, limits=FAST)
    assert report.ok, report.error
    assert any(warning in w for w in report.warnings), report.warnings
