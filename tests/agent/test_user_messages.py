"""User-facing messages keep the README's convention: a user error is `error: <what>
(<where>)` then `fix: <how>`, exit 2; something that lets the command go on is `warning:`; a
quantity reads the same (unit, precision) wherever it is shown."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import vid2reward.agent
import vid2reward.sim
import vid2reward.tools
from vid2reward.agent.cli import main
from vid2reward.sim.errors import UserError

PACKAGES = {name: Path(module.__file__).resolve().parent for name, module in (
    ("agent", vid2reward.agent), ("sim", vid2reward.sim), ("tools", vid2reward.tools))}
"""Where the code lives, installed or checked out (setuptools maps vid2reward.agent to agent/)."""


def _sources() -> list[Path]:
    files = sorted(p for folder in PACKAGES.values() for p in folder.rglob("*.py"))
    assert len(files) > 100  # the scan reads the package, not an empty folder
    return files


def _user_error_classes() -> set[str]:
    """UserError and every class below it defined in the package (RewardError, EditError...)."""
    names = {"UserError"}
    trees = [ast.parse(p.read_text(encoding="utf-8")) for p in _sources()]
    grew = True
    while grew:
        grew = False
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in names and any(
                        isinstance(b, ast.Name) and b.id in names for b in node.bases):
                    names.add(node.name)
                    grew = True
    return names


SETS_ITS_OWN_FIX = {"ProgramFailed"}
"""Classes whose constructor always passes a fix (checked below, by making one)."""


def test_every_user_error_says_how_to_fix_it():
    """Found by this scan: 58 raises without a fix, e.g. `train --steps 0`, `render --out
    x.gif`, `trace --poll 0`, `run --patience 0`, a reward that raises mid-training."""
    classes = _user_error_classes()
    assert {"UserError", "RewardError", "EditError", "ProgramFailed"} <= classes
    missing = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in classes and node.func.id not in SETS_ITS_OWN_FIX):
                continue
            fix = next((k.value for k in node.keywords if k.arg == "fix"), None)
            if len(node.args) >= 3:
                fix = node.args[2]
            unpacked = any(k.arg is None for k in node.keywords)
            if not unpacked and (fix is None or (isinstance(fix, ast.Constant) and not fix.value)):
                missing.append(f"{path.parent.name}/{path.name}:{node.lineno}")
    assert missing == []


def test_a_failure_the_reward_process_reports_carries_its_fix():
    from vid2reward.sim import reward_wire as wire
    from vid2reward.tools.reward_client import ProgramFailed

    for code in ("raised", "timeout", "output", "load", "refused"):
        error = ProgramFailed(wire.ProgramFailure(code, 3, 7, "ZeroDivisionError: x"), "r.py")
        assert error.fix, code
        assert isinstance(error, UserError)


@pytest.mark.parametrize("argv, words", [
    (["train", "--env", "Hopper-v5", "--reward", "r.py", "--steps", "0", "--out", "o"],
     "--steps must be positive"),
    (["train", "--env", "Hopper-v5", "--reward", "r.py", "--envs", "0", "--out", "o"],
     "--envs must be at least 1"),
    (["train", "--env", "Hopper-v5", "--reward", "r.py", "--ppo", "gamma=2", "--out", "o"],
     "gamma must be between 0 and 1"),
    (["render", "--policy", ".", "--out", "x.gif"], "the output must be an .mp4 file"),
    (["trace", ".", "--poll", "0"], "--poll must be positive"),
    (["run", "--env", "Hopper-v5", "--video", "v.mp4", "--patience", "0"],
     "--patience must be positive"),
    (["run", "--env", "Hopper-v5", "--video", "v.mp4", "--seed", "-1"],
     "--seed must be between 0 and 2**32 - 1"),
])
def test_bad_options_end_in_a_fix_line(tmp_path, monkeypatch, capsys, argv, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.py").write_text("def compute_reward(s, a):\n    return 0.0, {}\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and words in lines[0], err
    assert lines[1].startswith("fix: ") and len(lines[1]) > len("fix: give"), err


def test_the_demo_says_the_experts_speed_one_way(tmp_path, monkeypatch, capsys):
    """The demo said the expert hops "at a steady 0.8 m/s" (its hidden reward's target) and,
    at the end, "vs the expert's 0.72" (measured, no unit): one figure, one format."""
    from vid2reward.agent.commands import demo
    from vid2reward.agent.run_record import write_json
    from vid2reward.agent.runner import RunOutcome

    def execute(paths, config, run_id, **kwargs):  # the search itself is tested elsewhere
        write_json(paths.root / "best" / "summary.json", {"history": [], "best_state_metrics": {
            "forward_velocity": 0.4712, "torso_height_mean": 1.2377}})
        return RunOutcome("finished", "all 3 iterations done", paths.root, 0.41)

    monkeypatch.setattr(demo, "execute", execute)
    assert main(["demo", "--quiet", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr()
    text = " ".join((out.err + out.out).split())
    assert "hopping forward at +0.72 m/s" in text
    assert "forward speed +0.47 m/s vs the expert's +0.72 m/s" in text
    assert "torso height 1.24 m vs the expert's 1.24 m" in text
    speeds = re.findall(r"[+-]?\d+(?:\.\d+)? m/s", text)
    assert len(speeds) == 3 and all(re.fullmatch(r"[+-]\d\.\d\d m/s", s) for s in speeds), speeds
