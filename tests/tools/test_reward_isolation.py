"""The OS layer holds on its own: escape programs run with full Python (the static check and
the restricted builtins bypassed, as if a program had escaped them) inside really isolated
processes, and nothing gets out: no file, no socket, no process, no signal.

Each escape also runs once with the OS layer off, to show that these tests see an escape when
one happens.
"""

import builtins
import json
import os

import numpy as np
import pytest
from escapes import ESCAPES  # tests/tools/escapes.py: the attempts and their observer

from vid2reward.agent.cli import main
from vid2reward.sim.envs import make_env
from vid2reward.sim.errors import UserError
from vid2reward.sim.reward import RewardError, RewardProgram
from vid2reward.sim.train import TrainConfig, train
from vid2reward.sim.vec_env import worker_pipe_fd
from vid2reward.tools import reward_isolation
from vid2reward.tools.reward_isolation import enter_isolation, isolation_problem, set_write_fds
from vid2reward.tools.reward_runtime import run_reward_test
from vid2reward.tools.reward_sandbox import SandboxLimits, run_in_sandbox

# Only where the OS truly lacks seccomp; the refusal tests at the end run everywhere.
needs_isolation = pytest.mark.skipif(isolation_problem() is not None,
                                     reason=f"no OS isolation here: {isolation_problem()}")

LIMITS = SandboxLimits(memory_mb=1024, cpu_seconds=30, wall_seconds=60)

def _escape_in_child(source: str, isolate: bool) -> str:
    """Runs in a sandbox child: trusted setup, isolation, then the escape with full Python."""
    env = make_env("Hopper-v5")
    env.reset(seed=0)
    if isolate:
        enter_isolation()
    try:
        exec(source, {"__builtins__": builtins})  # noqa: S102 - every Python-level gate bypassed
        outcome = "ran"
    except BaseException as exc:  # noqa: BLE001 - the outcome is the point
        outcome = f"{type(exc).__name__}: {exc}"
    env.step(np.zeros(env.action_space.shape))
    return outcome


@needs_isolation
@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_an_isolated_child_cannot_escape(name, observer):
    outcome = run_in_sandbox(_escape_in_child, observer.fill(observer.escapes[name]), True,
                             limits=LIMITS)
    assert observer.escaped() == [], outcome
    assert outcome.startswith(("PermissionError", "OSError", "CalledProcessError")), outcome


@needs_isolation
@pytest.mark.parametrize("name,seen", [("write-file", "file"), ("shell", "file"),
                                       ("fork", "file"), ("socket", "socket"),
                                       ("signal-parent", "signal")])
def test_without_the_os_layer_the_same_escapes_succeed(name, seen, observer):
    # The plant: proof that the test above would see an escape.
    outcome = run_in_sandbox(_escape_in_child, observer.fill(observer.escapes[name]), False,
                             limits=LIMITS)
    assert seen in observer.escaped(), outcome


def _probe_in_child() -> dict:
    report = enter_isolation()
    found = {"report": report}
    for what, attempt in {
        "read /etc/hostname": lambda: open("/etc/hostname").read(),
        "write stderr": lambda: os.write(2, b"\x1b[2J"),
        "duplicate stderr": lambda: os.dup(2),
        "ptrace-like /proc read": lambda: open(f"/proc/{os.getppid()}/environ").read(),
    }.items():
        try:
            attempt()
            found[what] = "allowed"
        except OSError as exc:
            found[what] = exc.errno
    return found


@needs_isolation
def test_isolation_report_and_what_stays_closed():
    found = run_in_sandbox(_probe_in_child, limits=LIMITS)
    report = found.pop("report")
    assert report["isolated"] and report["seccomp"] and report["no_new_privs"]
    if os.geteuid() == 0:
        assert report["uid"] == reward_isolation.NOBODY
    assert "allowed" not in found.values(), found


@needs_isolation
def test_the_main_process_is_never_isolated():
    uid = os.geteuid()
    with pytest.raises(RewardError, match="only in a child process"):
        enter_isolation()
    assert reward_isolation.isolation_report() is None and os.geteuid() == uid


# -- a real training worker ------------------------------------------------------------------

def _escaping_compute(source: str):
    state = {}

    def compute(s, a):
        if not state:  # as load_deferred does: isolate at the first call, then run the code
            set_write_fds((worker_pipe_fd(),))
            enter_isolation()
            namespace = {"__builtins__": builtins, "s": s}
            exec(source, namespace)  # noqa: S102 - the escape, with full Python
            state["uid"] = float(os.geteuid())
        return 1.0, {"alive": 1.0, "uid": state["uid"]}
    return compute


def escaping_loader(source: str, name: str) -> RewardProgram:
    """Loader for train(): the program escapes every Python-level gate in the worker."""
    return RewardProgram(source=source, name=name, compute=_escaping_compute(source))


def _attempt_everything(observer) -> str:
    lines = []
    for template in observer.escapes.values():
        body = observer.fill(template).replace("\n", "\n    ")
        lines.append(f"try:\n    {body}\nexcept Exception:\n    pass")
    return "\n".join(lines) + "\n"


def _train(tmp_path, source, **config):
    cfg = TrainConfig(env_id="Hopper-v5", total_steps=256, n_envs=2, n_steps=128,
                      batch_size=128, n_epochs=1, n_workers=1, step_timeout=30, **config)
    program = RewardProgram(source=source, name="escape.py", compute=lambda s, a: (0.0, {}))
    return train(cfg, program, tmp_path / "out", loader=escaping_loader,
                 precheck=lambda program, env_id: None)


@needs_isolation
def test_a_training_worker_is_isolated(tmp_path, observer):
    result = _train(tmp_path, _attempt_everything(observer))
    assert observer.escaped() == []
    assert result.status == "finished", result.metrics["failure"]
    if os.geteuid() == 0:
        uid = result.metrics["components"]["uid"]["per_step_mean"]
        assert uid == reward_isolation.NOBODY


@needs_isolation
def test_a_reward_that_changes_the_simulator_fails_the_training(tmp_path):
    source = "s._StateView__tracker.model.opt.gravity[2] = 0.0\n"
    result = _train(tmp_path, source)
    assert result.status == "failed"
    assert "model (gravity, masses, friction, ...) changed" in result.metrics["failure"]
    assert make_env("Hopper-v5").unwrapped.model.opt.gravity[2] < 0  # this process's: untouched


# -- where the OS cannot isolate ---------------------------------------------------------------

@pytest.fixture
def no_seccomp(monkeypatch):
    monkeypatch.setattr(reward_isolation, "isolation_problem", lambda: "no seccomp here")
    monkeypatch.setenv(reward_isolation.TRUST_ENV, "0")  # restored after: --trust sets it
    monkeypatch.setitem(reward_isolation._state, "report", None)


def test_refusal_without_isolation_is_one_line(no_seccomp, examples_dir, capsys):
    with pytest.raises(UserError, match="refusing to run untrusted reward code without OS "
                                        "isolation: no seccomp here"):
        run_reward_test(examples_dir / "hopper_default.py", "Hopper-v5")
    with pytest.raises(RewardError, match="no seccomp here"):
        enter_isolation(trust=False)  # a child refuses too, without isolating anything
    code = main(["reward", "test", str(examples_dir / "hopper_default.py"), "--env",
                 "Hopper-v5"])
    err = capsys.readouterr().err
    assert code == 2 and "refusing to run untrusted reward code" in err
    assert "--trust-reward-code" in err and "Traceback" not in err
    # The flag lets it run (here the child is still isolated: this OS can).
    code = main(["reward", "test", str(examples_dir / "hopper_default.py"), "--env",
                 "Hopper-v5", "--trust-reward-code", "--steps", "30", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["ok"]


def test_trusting_records_an_unisolated_report(no_seccomp):
    report = enter_isolation(trust=True)  # nothing is applied to this (the test) process
    assert report["isolated"] is False and report["trusted"] is True
    assert report["problem"] == "no seccomp here"


def test_run_refuses_before_any_work_and_records_trust(no_seccomp, examples_dir):
    from vid2reward.agent.cli import build_parser
    from vid2reward.agent.commands.run import config_from_args
    argv = ["run", "--env", "Hopper-v5", "--video", str(examples_dir / "demo_expert_hopper.mp4")]
    with pytest.raises(UserError, match="refusing to run untrusted reward code"):
        config_from_args(build_parser("run").parse_args(argv))
    config = config_from_args(build_parser("run").parse_args([*argv, "--trust-reward-code"]))
    assert config.to_json()["trust_reward_code"] is True  # run.json keeps it
    assert reward_isolation.trusted_by_user()  # for this run's children
