"""Candidates trained as Ray tasks on a real local Ray head started here (``--ray local``'s
head: 127.0.0.1 only, 2 CPUs, token authentication with a token of its own): a run survives a
SIGKILLed worker and a killed driver resumes without retraining what finished, bench nes runs
on it, and nothing of Ray listens on an external address. Tiny budgets throughout."""

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import vid2reward.examples as examples
from vid2reward.agent.cli import main
from vid2reward.agent.ray_training import LOOPBACK_ONLY_ENV, _split_address
from vid2reward.agent.run_log import read_events
from vid2reward.agent.run_record import RunRecord
from vid2reward.agent.training_backend import RAY_ADDRESS_ENV, chosen_ray_address
from vid2reward.sim.errors import UserError

EXPERT = Path(examples.__file__).parent / "demo_expert_hopper.mp4"
TINY = ["--env", "Hopper-v5", "--iterations", "1", "--candidates", "2", "--envs", "4", "--quiet",
        "--final-steps", "0"]
HEAD = """
import sys
from vid2reward.agent.ray_training import RayTraining
head = RayTraining("local", num_cpus=2)  # what `--ray local` starts
import ray
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()  # until the test closes our stdin
head.close()
"""


@pytest.fixture(scope="module")
def ray_env(tmp_path_factory):
    """The environment of every process of these tests: this head's own token (nothing here
    asks Ray for loopback: vid2reward does, for a head on this machine)."""
    token = tmp_path_factory.mktemp("ray") / "auth_token"
    token.write_text(os.urandom(32).hex())
    env = {k: v for k, v in os.environ.items() if k not in (RAY_ADDRESS_ENV, LOOPBACK_ONLY_ENV)}
    env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "MUJOCO_GL": "egl"})
    return env


@pytest.fixture(scope="module")
def ray_head(ray_env):
    """A local Ray head in a child process; yields (address, its psutil.Process)."""
    proc = subprocess.Popen([sys.executable, "-c", HEAD], env=ray_env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    head = psutil.Process(proc.pid)
    try:
        address = proc.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        yield address, head
    finally:
        family = [head, *head.children(recursive=True)] if head.is_running() else []
        proc.stdin.close()  # the head shuts Ray down and exits
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        for p in family:  # only what this head started, by pid
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vid2reward.agent.cli", *args], env=env,
                            start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait(proc: subprocess.Popen, condition, what: str, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.05)


def _training_worker(head: psutil.Process, cid: str) -> psutil.Process | None:
    """The Ray worker process running ``cid``'s training (Ray titles it ``ray::<task name>``)."""
    for p in head.children(recursive=True):
        try:
            if (p.cmdline() or [""])[0] == f"ray::train {cid}":
                return p
        except psutil.Error:
            pass
    return None


def _listening(processes: list[psutil.Process]) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every TCP listener and bound UDP socket."""
    out = []
    for p in processes:
        try:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN or (c.type == 2 and c.laddr):  # 2: SOCK_DGRAM
                    out.append((p.name(), c.laddr.ip, c.laddr.port))
        except psutil.Error:
            pass
    return out


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _fresh_trainings(out: Path) -> list[str]:
    return sorted(e.candidate_id for e in read_events(out)
                  if e.kind == "training_summary" and not e.cached)


def test_a_run_on_ray_survives_a_killed_worker_then_a_killed_driver(tmp_path, ray_head, ray_env):
    """One run: a SIGKILLed worker's task is retried by Ray; a SIGKILLed driver is resumed
    (address from run.json) and trains only what is missing; loopback listeners only."""
    address, head = ray_head
    out = tmp_path / "run"
    proc = _start(["run", "--video", str(EXPERT), "--out", str(out), "--steps", "4096",
                   "--ray", address, *TINY], ray_env)
    cands = [out / "iter-001" / f"cand-0{i}" for i in (0, 1)]
    first = _wait(proc, lambda: next((c for c in cands if (c / "train_key.json").is_file()), None),
                  "a first candidate landing")
    second = cands[1] if first == cands[0] else cands[0]
    second_id = f"iter-001/{second.name}"
    worker = _wait(proc, lambda: _training_worker(head, second_id), f"{second_id} training")

    ours = [head, *head.children(recursive=True), psutil.Process(proc.pid),
            *psutil.Process(proc.pid).children(recursive=True)]
    sockets = _listening(ours)
    assert sockets, "no listener seen: the check would pass vacuously"
    assert all(_is_loopback(ip) for _, ip, _ in sockets), sockets

    orphans = worker.children(recursive=True)  # its env workers and sandbox forkserver
    killed_at = time.time()
    worker.send_signal(signal.SIGKILL)
    retry = _wait(proc, lambda: (w := _training_worker(head, second_id)) and w.pid != worker.pid
                  and w, "Ray retrying the killed training")
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, mid-training again
    proc.wait()
    landed_at = (first / "policy.zip").stat().st_mtime
    assert landed_at < killed_at

    resumed = _start(["resume", str(out), "--quiet"], ray_env)  # RAY_ADDRESS is unset here
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert (first / "policy.zip").stat().st_mtime == landed_at  # never trained again
    assert (second / "train_key.json").is_file() and (second / "policy.zip").is_file()
    assert list((second / "tb").rglob("events.out.tfevents*"))  # PPO's curves came along
    trained_by = json.loads((second / "metrics.json").read_text())["trained_on"]["pid"]
    assert trained_by not in (worker.pid, retry.pid)  # neither killed worker finished it
    assert _fresh_trainings(out) == ["iter-001/cand-00", "iter-001/cand-01"]  # each once
    cached = [e.candidate_id for e in read_events(out) if e.kind == "training_summary" and e.cached]
    assert cached == [f"iter-001/{first.name}"]
    assert (out / "best" / "policy.zip").is_file()
    assert json.loads((out / "run.json").read_text())["config"]["ray_address"] == address
    assert not [p.pid for p in orphans if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_bench_nes_runs_on_ray(tmp_path, ray_head, ray_env):
    address, _ = ray_head
    out = tmp_path / "bench"
    proc = _start(["bench", "nes", "--fast", "--methods", "full", "--iterations", "1",
                   "--candidates", "1", "--out", str(out), "--ray", address], ray_env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    rows = json.loads((out / "results.json").read_text())
    assert rows  # written from real measurements of the runs below
    metrics = sorted((out / "runs").glob("*/full-s0/iter-001/cand-*/metrics.json"))
    assert len(metrics) == 1
    for path in metrics:  # trained by Ray workers, landed on the driver
        assert json.loads(path.read_text())["trained_on"]["pid"] > 0
        assert (path.parent / "policy.zip").is_file()


def test_an_unreachable_cluster_is_one_line_and_leaves_no_run(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(RAY_ADDRESS_ENV, raising=False)
    monkeypatch.setenv(LOOPBACK_ONLY_ENV, "0")  # restored after the test
    out = tmp_path / "run"
    code = main(["run", "--video", str(EXPERT), "--out", str(out), "--steps", "512",
                 "--ray", "127.0.0.1:1", *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "the Ray cluster is unreachable" in err and "Traceback" not in err
    assert not out.exists()


def test_without_ray_installed_the_flag_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(RAY_ADDRESS_ENV, raising=False)
    monkeypatch.setenv(LOOPBACK_ONLY_ENV, "0")
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets without the extra
    code = main(["run", "--video", str(EXPERT), "--out", str(tmp_path / "run"),
                 "--ray", "local", *TINY])
    err = capsys.readouterr().err
    assert code == 2 and 'pip install "vid2reward[ray]"' in err and "Traceback" not in err


def test_the_address_comes_from_the_flag_then_ray_address_then_the_run(monkeypatch):
    monkeypatch.delenv(RAY_ADDRESS_ENV, raising=False)
    assert chosen_ray_address(None) is None
    assert chosen_ray_address(None, "10.0.0.5:6379") == "10.0.0.5:6379"
    monkeypatch.setenv(RAY_ADDRESS_ENV, "auto")
    assert chosen_ray_address(None, "10.0.0.5:6379") == "auto"
    assert chosen_ray_address("off", "10.0.0.5:6379") is None
    assert chosen_ray_address("ray://head:10001") == "ray://head:10001"
    assert _split_address("10.0.0.5") == ("10.0.0.5", 6379)
    assert _split_address("ray://head") == ("head", 10001)
    assert _split_address("[::1]:7000") == ("::1", 7000)
    with pytest.raises(UserError):
        _split_address("head:port")


def test_landing_writes_a_result_inside_the_candidate_only(tmp_path):
    record = RunRecord(tmp_path)
    cid = "iter-001/cand-00"
    record.write_program(cid, "def compute_reward(s):\n    return 0.0, {}\n", None)
    record.land_training(cid, {"policy.zip": b"p", "tb/PPO_1/events": b"e"})
    assert (tmp_path / cid / "policy.zip").read_bytes() == b"p"
    assert (tmp_path / cid / "tb" / "PPO_1" / "events").read_bytes() == b"e"
    assert (tmp_path / cid / "reward.py").is_file() and not record.training_scratch(cid).exists()
    for bad in ("../escape", "/abs/path", ".hidden", "tb/../../x"):
        with pytest.raises(ValueError):
            record.land_training(cid, {bad: b"x"})
    assert not (tmp_path / "iter-001" / "escape").exists()
