"""The type check CI runs can fail: a cross-module type error is caught.

mypy cannot read setuptools' package-dir mapping; pyproject.toml points it at .typecheck/,
symlinks that lay the folders out as the `vid2reward` package. Without that, every
`vid2reward.*` import is Any and these planted errors pass with "Success".
"""

from pathlib import Path

from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parents[2]

PLANTED = '''
from vid2reward.agent.messages import audit_outcome
from vid2reward.sim.train import TrainConfig

outcome: {outcome_type} = audit_outcome("increase", 1.0, 2.0, 0.1)
config = TrainConfig({field}=3)
'''


def _mypy_errors(tmp_path: Path, outcome_type: str, field: str) -> list[str]:
    planted = tmp_path / "planted.py"
    planted.write_text(PLANTED.format(outcome_type=outcome_type, field=field))
    stdout, stderr, _ = mypy_api.run([
        "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(ROOT / ".mypy_cache"),
        "--no-error-summary", str(planted)])
    assert "error: Cannot find" not in stdout + stderr
    return [line for line in stdout.splitlines() if line.startswith(str(planted)) and ": error:" in line]


def test_planted_cross_module_type_errors_fail_the_check(tmp_path):
    errors = _mypy_errors(tmp_path, outcome_type="int", field="no_such_field")
    assert any("[assignment]" in e and ":5:" in e for e in errors), errors
    assert any("no_such_field" in e and ":6:" in e for e in errors), errors


def test_the_same_code_typed_right_passes(tmp_path):
    assert _mypy_errors(tmp_path, outcome_type="str", field="seed") == []


def test_ci_checks_the_package_as_imported():
    """CI runs bare `mypy`, so the package list in pyproject.toml is what gets checked."""
    config = (ROOT / "pyproject.toml").read_text()
    assert 'packages = ["vid2reward"]' in config
    assert "\nmypy\n" in (ROOT / ".ci" / "run").read_text()
    for sub in ("agent", "sim", "tools"):
        assert (ROOT / ".typecheck" / "vid2reward" / sub).resolve() == ROOT / sub
