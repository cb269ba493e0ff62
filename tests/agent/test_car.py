"""VLM-CaR against the local scripted OpenAI-protocol server: the VLM's sub-task checks are
tested, verified on expert-like vs random-action episodes in the sandbox, the rejected ones go
back with the evidence, and the kept ones become a dense reward program."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from llm_fixtures import CRITIC, llm_config
from openai_server import Reply, ScriptedOpenAI, image_parts

from vid2reward.agent.car import car_reward_program
from vid2reward.agent.reward_source_run import SourceOptions
from vid2reward.agent.runner import new_run_dir
from vid2reward.sim.errors import UserError
from vid2reward.sim.reward import load_reward_program
from vid2reward.tools.subtask_checks import dense_reward_program, subtask_module

SURVIVE = "def completed(s):\n    return s.step >= 80\n\ndef progress(s):\n    return min(1.0, s.step / 80)\n"
ALWAYS = "def completed(s):\n    return True\n\ndef progress(s):\n    return 1.0\n"
UPRIGHT = ("import math\n\nLIMIT = 60\n\ndef tall(s):\n    return s.torso_height > 0.8\n\n"
           "def completed(s):\n    return tall(s) and s.step >= LIMIT\n\n"
           "def progress(s):\n    return min(1.0, s.step / LIMIT)\n")
BROKEN = "def completed(s):\n    return s.no_such_field > 1\n\ndef progress(s):\n    return 0.0\n"


def plan(*subtasks):
    return Reply.json({"subtasks": [{"name": n, "description": f"{n} done", "program": p}
                                    for n, p in subtasks]})


@pytest.fixture(scope="module")
def standing_policy(tmp_path_factory):
    """A PPO policy whose deterministic action is zero: Hopper stands ~130 steps (random
    actions fall within ~30): an expert-like policy for a 'survive' check."""
    from stable_baselines3 import PPO

    from vid2reward.sim.envs import make_env

    folder = tmp_path_factory.mktemp("standing")
    model = PPO("MlpPolicy", make_env("Hopper-v5"), device="cpu", seed=0)
    with torch.no_grad():
        model.policy.action_net.weight.zero_()
        model.policy.action_net.bias.zero_()
    model.save(folder / "policy.zip")
    return folder


def test_checks_are_measured_on_a_policy_trained_with_a_gait_clock(tmp_path):
    """An expert-like policy from a run on a person's video observes a gait clock: the sandboxed
    env the checks run in gives it that clock (the checks' own program declares none)."""
    from stable_baselines3 import PPO

    from vid2reward.sim.envs import make_env
    from vid2reward.tools.subtask_checks import fire_rates

    model = PPO("MlpPolicy", make_env("Hopper-v5", 1.0), device="cpu", seed=0)
    with torch.no_grad():
        model.policy.action_net.weight.zero_()
        model.policy.action_net.bias.zero_()
    model.save(tmp_path / "policy.zip")
    (tmp_path / "reward.py").write_text("GAIT_CLOCK_HZ = 1.0\n\ndef compute_reward(s, a):\n"
                                        "    return 0.0, {}\n")
    rates = fire_rates([("survive", SURVIVE)], "Hopper-v5", [tmp_path], episodes=1,
                       random_episodes=2, trust=True)
    assert rates.expert_like["survive"] == 1.0 and rates.random["survive"] == 0.0


def test_subtask_names_are_prefixed_and_joined():
    joined = subtask_module(UPRIGHT, "st0_")
    assert "def st0_tall(s)" in joined and "st0_tall(s) and s.step >= st0_LIMIT" in joined
    assert "import" not in joined
    program = load_reward_program(dense_reward_program([("upright", UPRIGHT), ("survive", SURVIVE)]))
    assert set(program.weights) == {"upright", "survive"}


def test_checks_are_verified_repaired_and_joined(tmp_path, standing_policy):
    with ScriptedOpenAI() as server:
        server.script(CRITIC, plan(("survive", SURVIVE), ("moved", ALWAYS), ("broken", BROKEN)),
                      plan(("upright", UPRIGHT)))
        config = replace(llm_config(server.base_url), env_id="Hopper-v5", trust_reward_code=True)
        record = new_run_dir(config, tmp_path / "run")
        from vid2reward.sim.render import contact_sheet
        contact_sheet([np.zeros((48, 64, 3), np.uint8)] * 2, record.expert_sheet)
        opts = SourceOptions(kind="car", car_expert_run=str(standing_policy), car_rounds=2)
        source, extra = car_reward_program(config, opts, record, log=lambda line: None)
        first, repair = server.sent(CRITIC)
    assert len(image_parts(first)) == 1
    repair_text = json.dumps(repair["messages"][-1])
    assert "moved" in repair_text and "100% of random-action" in repair_text
    assert "broken" in repair_text and "no_such_field" in repair_text
    assert extra["car"]["kept"] == ["survive", "upright"]
    summary = json.loads((record.expert_dir / "car_subtasks.json").read_text())
    survive = summary["subtasks"][0]
    assert survive["expert_like_rate"] == 1.0 and survive["random_rate"] == 0.0
    program = load_reward_program(source)
    assert set(program.weights) == {"survive", "upright"}


def test_nothing_verified_is_refused(tmp_path, standing_policy):
    with ScriptedOpenAI() as server:
        server.script(CRITIC, plan(("moved", ALWAYS)))
        config = replace(llm_config(server.base_url), env_id="Hopper-v5", trust_reward_code=True)
        record = new_run_dir(config, tmp_path / "run")
        from vid2reward.sim.render import contact_sheet
        contact_sheet([np.zeros((48, 64, 3), np.uint8)] * 2, record.expert_sheet)
        opts = SourceOptions(kind="car", car_expert_run=str(standing_policy), car_rounds=1)
        with pytest.raises(UserError, match="no sub-task check passed verification"):
            car_reward_program(config, opts, record, log=lambda line: None)
