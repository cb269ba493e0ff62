"""The run log as a versioned format: ids and parents, migration of version 1, refusal of newer."""

import json

import pytest

from vid2reward.agent.cli import main
from vid2reward.agent.config import RunConfig
from vid2reward.agent.context import RunContext
from vid2reward.agent.engines.offline import OfflineCritic, OfflineEngineer
from vid2reward.agent.messages import EditAudit
from vid2reward.agent.run_log import (
    EVENTS_FILE,
    LOG_VERSION,
    MessageEvent,
    NodeFinished,
    NodeStarted,
    RunLog,
    RunStarted,
    read_event_log,
)
from vid2reward.agent.run_record import RunRecord
from vid2reward.sim.errors import UserError


def _context(root):
    return RunContext(run_id="r", config=RunConfig(), record=RunRecord(root), log=RunLog(root),
                      critic=OfflineCritic(), engineer=OfflineEngineer("Hopper-v5"))


def test_events_name_the_node_and_session_they_happened_in(tmp_path):
    ctx = _context(tmp_path)
    session = RunStarted(run_id="r", env_id="Hopper-v5", engine="offline", config={})
    ctx.emit(session)
    start = NodeStarted(node="audit", iteration=2)
    ctx.emit(start)
    audit = EditAudit(iteration=2, reward_feedback_id="rf-002", edit_index=0, component="speed",
                      feature="forward_speed", expected="increase", outcome="unchanged")
    with ctx.inside(start):
        ctx.emit(MessageEvent(sender="auditor", message=audit))
    ctx.emit(NodeFinished(node="audit", iteration=2, seconds=0.1, parent=start.id))
    events, skipped = read_event_log(tmp_path)
    assert not skipped and [e.version for e in events] == [LOG_VERSION] * 4
    assert len({e.id for e in events}) == 4
    assert [e.parent for e in events] == [None, session.id, start.id, start.id]


def test_version_1_lines_migrate(tmp_path):
    old = [{"version": 1, "ts": 1.0, "kind": "node_started", "node": "audit", "iteration": 2},
           {"version": 1, "ts": 2.0, "kind": "message", "sender": "auditor",
            "message": {"kind": "edit_audit", "reward_feedback_id": "rf-002", "edit_index": 0,
                        "component": "speed", "feature": "forward_speed", "expected": "increase",
                        "outcome": "opposite"}}]
    (tmp_path / EVENTS_FILE).write_text("".join(json.dumps(e) + "\n" for e in old))
    events, skipped = read_event_log(tmp_path)
    assert not skipped and [e.id for e in events] == ["line-1", "line-2"]
    assert events[1].message.iteration == 2  # an audit of rf-002 was measured in iteration 2


def test_a_newer_log_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "run.json").write_text("{}")
    line = {"version": LOG_VERSION + 1, "ts": 1.0, "kind": "node_started", "node": "x", "iteration": 0}
    (tmp_path / EVENTS_FILE).write_text(json.dumps(line) + "\n")
    with pytest.raises(UserError, match="log version"):
        read_event_log(tmp_path)
    assert main(["trace", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len([x for x in err.splitlines() if x.startswith("error:")]) == 1 and "Traceback" not in err


def test_the_expert_subject_is_measured_on_its_region(tmp_path):
    """run --subject: the expert's pixel features come from the chosen mover's region of a busy
    real clip (two people walking past a camera), and the note says which one was chosen."""
    from dataclasses import replace
    from pathlib import Path

    from vid2reward.agent.nodes.expert import ingest_expert

    clip = Path(__file__).resolve().parents[1] / "data" / "people" / "vtest_walkers.mp4"
    measured = {}
    for subject in (None, "auto"):
        ctx = _context(tmp_path / str(subject))
        ctx.config = replace(ctx.config, video=str(clip), video_start=0.0, video_end=4.0,
                             subject=subject, env_id="Hopper-v5")
        ingest_expert({}, ctx)
        measured[subject] = ctx.record.expert_measured()
        assert ("expert subject (auto): track" in ctx.take_notes()) is (subject == "auto")
    assert measured[None]["crop"] is None
    x0, y0, x1, y1 = measured["auto"]["crop"]  # one walker's path, not the whole frame
    assert 0.1 < (x1 - x0) * (y1 - y0) < 0.6
    assert measured["auto"]["features"] != measured[None]["features"]


def test_a_person_in_a_crowd_is_the_expert_at_the_video_files_resolution(tmp_path):
    """run --env Walker2d-v5 --subject BOX on real footage: the box is in the file's pixels and
    the stored clip keeps them (at 480 rows the tracker lost this 80-px walker in 69 of 80
    frames); the person's pose is found, and speed and airtime come from the person, not from
    the silhouettes of the passers-by in its region (those read 0.12 L/s and 64 % airborne)."""
    from dataclasses import replace
    from pathlib import Path

    from vid2reward.agent.nodes.expert import ingest_expert

    clip = Path(__file__).resolve().parents[1] / "data" / "people" / "vtest_walkers.mp4"
    ctx = _context(tmp_path)
    ctx.config = replace(ctx.config, video=str(clip), subject="356,214,26,78",
                         expert_forward="auto", env_id="Walker2d-v5")
    ingest_expert({}, ctx)
    features = ctx.record.expert_measured()["features"]
    notes = ctx.take_notes()
    assert "track 0 (79 of 80 frames" in notes
    assert 2.0 <= features["pose_cadence_hz"] <= 3.0  # steps/s of a walk (2.5 counted by hand)
    # ~65 px/s at ~100 px tall, ~50 px legs: 1.2 leg lengths/s, carried to the Walker2d's 0.95 m
    # legs and said in its body lengths (1.5 m)
    person = ctx.record.expert_measured()["person_speed"]
    assert 1.0 <= person["leg_lengths_per_s"] <= 1.5 and person["leg_m"] == pytest.approx(0.95)
    assert features["forward_speed"] == pytest.approx(person["m_per_s"] / 1.5)
    assert features["flight_fraction"] == 0.0  # a walk: one foot is always down
    assert "forward_speed from the person's hips' travel" in notes
    # walking across and towards the camera: a planar Walker2d cannot, so it is not asked to
    assert "turning_rate" not in features and "depth_speed" not in features


def test_a_subject_box_in_the_files_pixels_is_scaled_to_the_stored_clip(tmp_path):
    from pathlib import Path

    from vid2reward.tools.expert_video import subject_in_clip
    from vid2reward.tools.video_fetch import fetch_clip

    source = Path(__file__).resolve().parents[1] / "data" / "people" / "vtest_walkers.mp4"
    half = Path(fetch_clip(str(source), max_height=288, cache_dir=tmp_path).path)  # 768 -> 384
    assert subject_in_clip("356,214,26,78", str(source), half) == "178.0,107.0,13.0,39.0"
    assert subject_in_clip("auto", str(source), half) == "auto"
    assert subject_in_clip("356,214,26,78", str(source), source) == "356,214,26,78"


def test_a_persons_speed_is_read_by_leg_length_not_through_the_learners_fit():
    from vid2reward.agent.nodes.judge import with_person_speed
    from vid2reward.tools.calibration import Calibration, QuantityFit

    fit = QuantityFit(quantity="forward_velocity", feature="forward_speed", unit="m/s", slope=0.38,
                      intercept=0.0, points=18, r2=0.99, residual=0.03, usable=True,
                      expert_pixel=1.43, expert_value=0.54)
    person = {"person_speed": {"leg_lengths_per_s": 1.27, "leg_m": 0.95, "m_per_s": 1.2065}}
    read = with_person_speed(Calibration(fits={"forward_velocity": fit}, clips=18), person, "Walker2d-v5")
    assert read.expert_values()["forward_velocity"] == pytest.approx(1.2065)
    assert "leg lengths/s" in read.fits["forward_velocity"].note
    robot = with_person_speed(Calibration(fits={"forward_velocity": fit}, clips=18), {}, "Walker2d-v5")
    assert robot.expert_values()["forward_velocity"] == pytest.approx(0.54)  # no person: the fit
