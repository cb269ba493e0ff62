"""The agents' LangChain tools: bounded text results, expected failures as messages."""

from __future__ import annotations

import json

from vid2reward.tools.agent_tools import (
    CandidateFacts,
    EngineerWorkspace,
    comparison_table,
    critic_tools,
    engineer_tools,
)
from vid2reward.tools.reward_versions import RewardStore

PROGRAM = '''import numpy as np

WEIGHTS = {"forward": 1.0, "ctrl": 0.001}


def compute_reward(s, a):
    forward = WEIGHTS["forward"] * s.forward_velocity
    ctrl = -WEIGHTS["ctrl"] * float(np.sum(np.square(a)))
    return forward + ctrl, {"forward": forward, "ctrl": ctrl}
'''


def tools_for(tmp_path, draft=""):
    ws = EngineerWorkspace(env_id="Hopper-v5", store=RewardStore(tmp_path / "store"), draft=draft)
    return ws, {t.name: t for t in engineer_tools(ws)}


def test_edits_go_through_the_store_and_failures_are_messages(tmp_path):
    ws, tools = tools_for(tmp_path)
    assert tools["read_reward"].invoke({}).startswith("error: there is no draft")
    assert tools["test_reward"].invoke({}).startswith("error: there is no draft")
    out = tools["edit_reward"].invoke({"kind": "replace_all", "source": PROGRAM})
    assert "static check: ok" in out and ws.draft == PROGRAM
    version = out.split("version ")[1].split()[0]
    out = tools["edit_reward"].invoke({"kind": "search_replace", "search": "not there", "replace": "x"})
    assert out.startswith("error: the search text is not in the program") and "fix:" in out
    out = tools["edit_reward"].invoke({"kind": "unified_diff",
                                       "diff": "@@ -1,1 +1,1 @@\n-import numpy as np\n+import os\n"})
    assert "REJECTED" in out and "rule import" in out and "+import os" in out
    assert tools["read_reward"].invoke({"version": version}) == PROGRAM
    assert "error:" in tools["read_reward"].invoke({"version": "deadbeef00"})


def test_test_reward_reports_json_and_refuses_paths(tmp_path):
    ws, tools = tools_for(tmp_path, draft=PROGRAM)
    report = json.loads(tools["test_reward"].invoke({}))
    assert report["ok"] is True and {c["name"] for c in report["components"]} == {"forward", "ctrl"}
    assert ws.tests == 1 and ws.last_test_ok is True
    assert tools["test_reward"].invoke({"source": "/etc/passwd.py"}).startswith("error:")
    broken = json.loads(tools["test_reward"].invoke({"source": PROGRAM.replace("s.forward_velocity", "1 / 0")}))
    assert broken["ok"] is False and "ZeroDivisionError" in broken["error"]


def test_training_stats_and_env_context(tmp_path):
    ws, tools = tools_for(tmp_path)
    ws.candidates["iter-001/cand-00"] = CandidateFacts(source="x = 1\n", metrics={
        "status": "finished", "steps": 2048, "episodes": 3, "return_mean": 5.0,
        "env_return_mean": 6.0, "episode_length_mean": 20.0, "weights": {"forward": 1.0},
        "components": {"forward": {"per_step_mean": 0.25, "episode_mean": 5.0, "episode_std": 1.0,
                                   "share": 1.0}}})
    out = tools["training_stats"].invoke({"candidate_id": "iter-001/cand-00"})
    assert "forward: 0.25 per step" in out and "share 100%" in out and "episode length: 20" in out
    assert "error: no trained candidate" in tools["training_stats"].invoke({"candidate_id": "x"})
    assert "s.forward_velocity" in tools["env_context"].invoke({})
    assert len(tools["env_context"].invoke({})) <= 12_100


def test_critic_tools_compare_in_visible_units():
    expert = {"forward_speed": 1.0, "cadence_hz": 2.0}
    tools = {t.name: t for t in critic_tools(expert, {"cadence_hz": "Hz"},
                                             {"iter-001/cand-00": {"forward_speed": 0.5}})}
    table = tools["compare_clips"].invoke({"candidate_id": "iter-001/cand-00"})
    assert "| forward_speed | 1 | 0.5 | -0.5 | -1.00 |" in table and "| cadence_hz | 2 | n/a |" in table
    assert "error: no clip" in tools["compare_clips"].invoke({"candidate_id": "nope"})
    assert "cadence_hz: 2 Hz" in tools["pixel_features"].invoke({})
    assert comparison_table({"x": 0.0}, {"x": 0.2}, {}).endswith("| x | 0 | 0.2 | +0.2 | +2.00 |  |")


def test_probe_train_reports_component_statistics(tmp_path):
    ws = EngineerWorkspace(env_id="Hopper-v5", store=RewardStore(tmp_path / "store"), draft=PROGRAM,
                           probe_steps=1024)
    tools = {t.name: t for t in engineer_tools(ws)}
    out = tools["probe_train"].invoke({"steps": 50_000})  # capped at the run's limit
    assert out.startswith("probe of 1024 steps:") and "status: finished" in out
    assert "- forward:" in out and "- ctrl:" in out
    ws.draft = "import os\n" + PROGRAM
    assert tools["probe_train"].invoke({"steps": 1024}).startswith("error: reward program rejected")
