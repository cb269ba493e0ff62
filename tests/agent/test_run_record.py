"""RunRecord: the one reader and writer of a run directory."""

import json

from vid2reward.agent.messages import RewardFeedback
from vid2reward.agent.run_record import RunRecord, candidate_id


def test_candidates_selection_and_rollback(tmp_path):
    record = RunRecord(tmp_path)
    for it in (1, 2):
        for index in (0, 1):
            cid = candidate_id(it, index)
            record.write_program(cid, f"# program {it}.{index}\n", {"terms": [], "weights": {}})
            record.write_metrics(cid, {"status": "finished", "return_mean": 10.0 * index})
    record.write_evaluation("iter-001/cand-00", {"features": {"forward_speed": 0.3}, "similarity": 0.4})
    record.write_evaluation("iter-001/cand-01", {"features": {"forward_speed": 0.1}, "similarity": None})
    views = record.evaluated_candidates(upto=1)
    assert [v.id for v in views] == ["iter-001/cand-00", "iter-001/cand-01"]
    assert views[0].plan == {"terms": [], "weights": {}} and views[0].source == "# program 1.0\n"
    # the one selection rule: similarity, else training return, else -inf
    assert record.score("iter-001/cand-00", 0.4) == 0.4
    assert record.score("iter-001/cand-01", None) == 10.0
    assert record.score("iter-009/cand-00", None) == float("-inf")
    moved = record.abandon_after(1)
    assert len(moved) == 1 and moved[0].startswith("iter-002.abandoned-")
    assert record.candidate_ids() == ["iter-001/cand-00", "iter-001/cand-01"]


def test_older_edits_json_reads_into_the_schema(tmp_path):
    record = RunRecord(tmp_path)
    rf = RewardFeedback(id="rf-002", iteration=1, source="x", sha256="0" * 64)
    legacy = {**rf.model_dump(exclude={"base_candidate_id", "notes"}), "base": "iter-001/cand-01",
              "notes": {"radius": 1.0}}
    record.iteration_dir(2).mkdir(parents=True)
    (record.iteration_dir(2) / "edits.json").write_text(json.dumps(legacy))
    read = record.reward_feedback(2)
    assert read is not None and read.base_candidate_id == "iter-001/cand-01"
    assert read.notes == {"radius": 1.0} and record.reward_feedback(3) is None


def test_best_takes_final_training_only_of_its_own_candidate(tmp_path):
    record = RunRecord(tmp_path)
    cid = candidate_id(1, 0)
    record.write_program(cid, "# best\n", None)
    record.final_dir.mkdir()
    (record.final_dir / "policy.zip").write_bytes(b"final")
    record.write_final({"candidate": cid, "steps": 5}, {"candidate": cid})
    record.write_best(cid, {"run_id": "r"})
    summary = record.best_summary()
    assert summary is not None and summary["final_training"]["steps"] == 5
    assert (record.best_dir / "policy.zip").read_bytes() == b"final"
    record.write_best(candidate_id(1, 1), {"run_id": "r"})  # another candidate: final/ is not its
    assert "final_training" not in (record.best_summary() or {})
    assert record.best_program_path() is None
