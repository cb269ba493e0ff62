"""Ctrl-C as a terminal sends it (SIGINT to the whole process group): the first stops after the
running step and says so, the second aborts; an interrupted candidate is trained on resume."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vid2reward.examples as examples
from vid2reward.agent import training_backend
from vid2reward.agent.cli import main
from vid2reward.agent.interrupts import StepClock, stop_message
from vid2reward.agent.nodes import candidates
from vid2reward.agent.run_log import NodeFinished, NodeStarted, TrainingSummary, read_events

TINY = ["--env", "Hopper-v5", "--iterations", "1", "--candidates", "2", "--envs", "4", "--quiet",
        "--final-steps", "0"]


@pytest.fixture(scope="module")
def expert_clip():
    """The bundled demo expert (8 s of a hopping hopper; clips under a second are refused)."""
    return Path(examples.__file__).parent / "demo_expert_hopper.mp4"


def _start(out: Path, expert: Path, steps: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vid2reward.agent.cli", "run", "--video", str(expert),
           "--out", str(out), "--steps", str(steps), *TINY]
    return subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(proc: subprocess.Popen, path: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def _trainings(out: Path) -> list[TrainingSummary]:
    return [e for e in read_events(out) if e.kind == "training_summary"]


def test_first_ctrl_c_stops_after_the_step_and_resume_trains_the_interrupted_one(tmp_path, expert_clip):
    out = tmp_path / "run"
    proc = _start(out, expert_clip, steps=8192)
    _wait_for(proc, out / "iter-001" / "cand-00" / "train_key.json")  # cand-01 is training now
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "stopping after this step" in err and "Ctrl-C again to abort" in err
    # cand-01 either finished its training (workers that ignore the terminal's SIGINT) or was
    # cut short; it is never recorded as failed.
    before = [(t.candidate_id, t.status) for t in _trainings(out)]
    assert before[0] == ("iter-001/cand-00", "finished") and {s for _, s in before} == {"finished"}
    finished = [e for e in read_events(out) if e.kind == "run_finished"]
    assert finished[-1].status == "interrupted"

    assert main(["resume", str(out), "--quiet"]) == 0
    fresh = sorted((t.candidate_id, t.status) for t in _trainings(out) if not t.cached)
    assert fresh == [("iter-001/cand-00", "finished"), ("iter-001/cand-01", "finished")]
    assert (out / "best" / "policy.zip").is_file()


def test_second_ctrl_c_aborts_at_once_and_resume_loses_nothing(tmp_path, expert_clip):
    out = tmp_path / "run"
    proc = _start(out, expert_clip, steps=200_000)  # far longer than the test waits
    _wait_for(proc, out / "iter-001" / "cand-00" / "test.json")
    time.sleep(3.0)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    started = time.monotonic()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 60  # did not train 200k steps first
    assert "stopping after this step" in err
    # No traceback of ours (env workers' own output on SIGINT is the vec_env's to silence).
    assert "agent/runner.py" not in err and "agent/cli.py" not in err and "BrokenPipe" not in err
    assert _trainings(out) == []  # the aborted training is not recorded as failed
    assert not list(out.glob("iter-001/.*partial*")) and not list(out.glob("iter-001/*.train"))


@pytest.mark.parametrize("module, step", [(training_backend, "_train_here"),
                                          (candidates, "load_policy")])
def test_an_error_that_follows_a_ctrl_c_is_an_interrupt(tmp_path, expert_clip, monkeypatch, capsys,
                                                        module, step):
    """Ctrl-C during env start-up: the workers die first and the trainer sees a broken pipe
    (in a training, guarded by its node; or in any other step, guarded by the runner)."""

    def interrupted_start(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(module, step, interrupted_start)
    out = tmp_path / "run"
    code = main(["run", "--video", str(expert_clip), "--out", str(out), "--steps", "2048", *TINY])
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err and "BrokenPipeError" not in err.split("\n")[0]
    assert "stopping after this step" in err
    assert all(t.status == "finished" for t in _trainings(out))
    finished = read_events(out)[-1]
    assert finished.kind == "run_finished" and finished.status == "interrupted"


def test_step_clock_estimates_from_progress_then_from_the_last_candidate():
    now = [100.0]
    clock = StepClock(now=lambda: now[0])
    assert clock.remaining() is None  # nothing to go by
    clock.on_event(NodeStarted(node="train_candidates", iteration=1))
    now[0] += 10
    clock.on_progress("iter-001/cand-00", 250, 1000)
    assert clock.remaining() == pytest.approx(30.0)
    now[0] += 30
    clock.on_event(TrainingSummary(iteration=1, candidate_id="iter-001/cand-00", reward_sha256="x",
                                   status="finished", steps=1000, wall_seconds=40.0, cached=False))
    now[0] += 5
    assert clock.remaining() == pytest.approx(35.0)  # cand-01 has no progress yet: cand-00 took 40
    clock.on_event(NodeFinished(node="train_candidates", iteration=1, seconds=80.0, summary=""))
    clock.on_event(NodeStarted(node="train_candidates", iteration=2))
    now[0] += 20
    assert clock.remaining() == pytest.approx(60.0)  # the node took 80 s last time
    assert stop_message(60.4) == "stopping after this step (~60 s); Ctrl-C again to abort"
    assert stop_message(None) == "stopping after this step; Ctrl-C again to abort"


def test_a_ctrl_c_after_the_first_exits_130_wherever_it_lands():
    """The real process's handler: the first Ctrl-C is a KeyboardInterrupt (clean-up runs); a
    second one, even inside that clean-up, ends the process with 130, never -2."""
    code = ("import signal, sys\n"
            "from vid2reward.agent.interrupts import exit_on_repeated_ctrl_c\n"
            "signal.signal(signal.SIGINT, exit_on_repeated_ctrl_c)\n"
            "try:\n"
            "    signal.raise_signal(signal.SIGINT)\n"
            "except KeyboardInterrupt:\n"
            "    print('cleaning up', flush=True)\n"
            "    signal.raise_signal(signal.SIGINT)\n"
            "    print('not reached')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, done.stderr
    assert done.stdout == "cleaning up\n"


def test_a_ctrl_c_while_the_interpreter_shuts_down_changes_nothing(tmp_path):
    """After the command ended, Python restores SIGINT's default action before it frees its
    modules (torch's take a while): a Ctrl-C then would kill the process (-2) and lose the
    exit status the command chose. Here one lands at the very end of the shutdown."""
    code = ("import os, signal, sys\n"
            "from vid2reward.agent.cli import main\n"
            "class LateCtrlC:\n"
            "    def __del__(self):\n"
            "        os.kill(os.getpid(), signal.SIGINT)\n"
            f"sys.argv = ['vid2reward', 'runs', {str(tmp_path / 'missing')!r}]\n"
            "status = main()\n"
            "cycle = [LateCtrlC()]\n"
            "cycle.append(cycle)  # freed by the last garbage collection of the shutdown\n"
            "del cycle\n"
            "sys.exit(status)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr  # the command's status (no such folder), not -2
    assert "error: no such folder" in done.stderr
