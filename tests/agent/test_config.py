"""RunConfig: typed settings, JSON round trip, and older run.json files (their ``extra`` dict)."""

from vid2reward.agent.config import LLMSettings, RunConfig


def test_round_trip_keeps_typed_settings():
    config = RunConfig(search="random", trust_reward_code=True,
                       llm=LLMSettings(timeout=5.0, prices={"m": (1.0, 2.0)}))
    again = RunConfig.from_json(config.to_json())
    assert again == config
    assert again.llm.prices == {"m": (1.0, 2.0)} and again.search == "random"


def test_older_run_json_extra_migrates_into_typed_fields():
    old = {"env_id": "Walker2d-v5", "render_size": [320, 240],
           "extra": {"search": "random", "trust_reward_code": True, "llm_timeout": 9.0,
                     "engineer_rounds": 3, "prices": {"m": [0.5, 1.5]}, "unknown_key": 1}}
    config = RunConfig.from_json(old)
    assert config.env_id == "Walker2d-v5" and config.search == "random"
    assert config.trust_reward_code is True
    assert config.llm.timeout == 9.0 and config.llm.engineer_rounds == 3
    assert config.llm.prices == {"m": (0.5, 1.5)}
    assert "extra" not in config.to_json()
