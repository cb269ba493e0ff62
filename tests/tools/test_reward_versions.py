"""Reward edits (replace, unified diff, search/replace) and the content-addressed store."""

import json
import os
import re

import pytest

from vid2reward.tools.reward_versions import (
    EditError,
    ReplaceAll,
    RewardStore,
    SearchReplace,
    UnifiedDiff,
    apply_edit,
    diff_sources,
    sha256_of,
)

SOURCE = '''import numpy as np

WEIGHTS = {"forward": 1.0, "ctrl": 0.001}


def compute_reward(s, a):
    forward = WEIGHTS["forward"] * s.forward_velocity
    ctrl = -WEIGHTS["ctrl"] * float(np.sum(np.square(a)))
    return forward + ctrl, {"forward": forward, "ctrl": ctrl}
'''

EDITED = SOURCE.replace('"forward": 1.0', '"forward": 2.0').replace(
    "    ctrl = -", "    # effort costs\n    ctrl = -")


def test_three_kinds_of_edit_give_the_same_result():
    diff = diff_sources(SOURCE, EDITED)
    assert apply_edit(SOURCE, ReplaceAll(EDITED)) == EDITED
    assert apply_edit(SOURCE, UnifiedDiff(diff)) == EDITED
    step = apply_edit(SOURCE, SearchReplace('"forward": 1.0', '"forward": 2.0'))
    assert apply_edit(step, SearchReplace("    ctrl = -", "    # effort costs\n    ctrl = -")) \
        == EDITED


def test_diff_with_wrong_line_numbers_and_no_file_headers_still_applies():
    diff = diff_sources(SOURCE, EDITED, context=1)
    shifted = re.sub(r"@@ -(\d+),(\d+) \+(\d+)",
                     lambda m: f"@@ -{int(m[1]) + 4},{m[2]} +{int(m[3]) + 4}", diff)
    body = "".join(line for line in shifted.splitlines(keepends=True)
                   if not line.startswith(("---", "+++")))
    assert apply_edit(SOURCE, UnifiedDiff(body)) == EDITED


def test_diff_adding_a_final_line_without_newline():
    diff = ("@@ -9,1 +9,2 @@\n"
            '     return forward + ctrl, {"forward": forward, "ctrl": ctrl}\n'
            "+# end\n"
            "\\ No newline at end of file\n")
    assert apply_edit(SOURCE, UnifiedDiff(diff)) == SOURCE + "# end"


@pytest.mark.parametrize("edit,message", [
    (SearchReplace("nothing like this", "x"), "not in the program"),
    (SearchReplace("ctrl", "c"), "occurs 6 times"),
    (SearchReplace("", "x"), "empty"),
    (UnifiedDiff("@@ -7,1 +7,1 @@\n-    forward = 3\n+    forward = 4\n"),
     "hunk 1 (@@ -7,1 +7,1 @@) does not match the program: line 7 is"),
    (UnifiedDiff("just some text"), "no hunks"),
    (UnifiedDiff("@@ -1,1 +1,1 @@\n*import numpy as np\n"), "starts with neither"),
])
def test_edits_that_do_not_apply_say_why(edit, message):
    with pytest.raises(EditError, match=re.escape(message)):
        apply_edit(SOURCE, edit)


def test_store_is_content_addressed_and_never_mutates(tmp_path):
    store = RewardStore(tmp_path / "rewards")
    base = store.put(SOURCE)
    assert base.sha256 == sha256_of(SOURCE) and base.path.name == f"{base.sha256[:16]}.py"
    assert not os.access(base.path, os.W_OK) or os.geteuid() == 0  # read-only (root ignores it)
    assert oct(base.path.stat().st_mode & 0o777) == "0o444"
    again = store.put(SOURCE)
    assert again.path == base.path and store.versions() == [base.id]
    child = store.apply(base.id, SearchReplace('"forward": 1.0', '"forward": 2.0'))
    assert child.parent == base.sha256 and child.id != base.id
    assert store.get(base.id) == SOURCE  # the base version is untouched
    assert store.get(child.sha256) == SOURCE.replace('"forward": 1.0', '"forward": 2.0')
    assert sorted(store.versions()) == sorted([base.id, child.id])
    diff = store.diff(base.id, child.id)
    assert '-WEIGHTS = {"forward": 1.0' in diff and '+WEIGHTS = {"forward": 2.0' in diff
    log = [json.loads(line) for line in (tmp_path / "rewards" / "versions.jsonl").open()]
    assert [(e["sha256"], e["parent"], e["kind"]) for e in log] == [
        (base.sha256, None, "add"), (child.sha256, base.sha256, "SearchReplace")]
    assert not list((tmp_path / "rewards").glob(".tmp-*"))


def test_store_lookup_errors(tmp_path):
    store = RewardStore(tmp_path)
    store.put(SOURCE)
    for bad, message in [("xyz", "not a version id"), ("1234", "not a version id"),
                         ("deadbeefdeadbeef", "no stored versions match"),
                         (sha256_of(SOURCE)[:16] + "0" * 48, "no stored versions match")]:
        with pytest.raises(EditError, match=message):
            store.get(bad)


def test_diff_of_equal_sources_is_empty():
    assert diff_sources(SOURCE, SOURCE) == ""
