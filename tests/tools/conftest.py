"""Fixtures of the tools tests."""

import pytest
from escapes import Observer  # tests/tools/escapes.py


@pytest.fixture
def observer(tmp_path):
    """Watches for a file, a socket connection or a signal an escaped program could make."""
    obs = Observer(tmp_path)
    yield obs
    obs.close()
