"""Bad input to every verb ends in one line (`error: ...`, exit 2), never a traceback, and
deletes nothing the command did not create."""

import json
from pathlib import Path

import pytest

import vid2reward.examples as examples
from vid2reward.agent.cli import main
from vid2reward.agent.run_log import RunFinished, RunLog, RunStarted, read_event_log
from vid2reward.sim.render import write_mp4
from vid2reward.sim.rollout import run_episodes

EXAMPLES = Path(examples.__file__).parent
REWARD = str(EXAMPLES / "hopper_default.py")
VIDEO = str(EXAMPLES / "demo_expert_hopper.mp4")
RUN = ["run", "--env", "Hopper-v5", "--iterations", "1", "--candidates", "1", "--steps", "512",
       "--envs", "2", "--quiet", "--final-steps", "0"]
TRAIN = ["train", "--env", "Hopper-v5", "--reward", REWARD, "--steps", "512", "--envs", "2"]


def _one_line_error(capsys, code: int, *words: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def test_train_refuses_a_directory_that_is_not_a_training_result(tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("my notes")
    (out / "sub" / "data.csv").write_text("1,2\n")
    _one_line_error(capsys, main([*TRAIN, "--out", str(out)]), "not a previous training result")
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "sub" / "data.csv").read_text() == "1,2\n"


def test_train_replaces_only_what_train_wrote(tmp_path, capsys):
    out = tmp_path / "policy"
    out.mkdir()
    (out / "metrics.json").write_text(json.dumps({"status": "finished", "env_id": "Hopper-v5",
                                                  "reward_sha256": "old"}))
    (out / "policy.zip").write_bytes(b"old policy")
    (out / "clip.mp4").write_bytes(b"a clip rendered beside it")
    (out / "notes.txt").write_text("my notes")
    assert main([*TRAIN, "--out", str(out)]) == 0
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "clip.mp4").read_bytes() == b"a clip rendered beside it"
    assert (out / "policy.zip").read_bytes() != b"old policy"
    assert json.loads((out / "metrics.json").read_text())["reward_sha256"] != "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy"]  # no work dir left behind


@pytest.mark.parametrize("verb", ["train", "run"])
@pytest.mark.parametrize("place", ["proc", "file-parent", "file", "read-only"])
def test_unwritable_out_is_one_line(tmp_path, capsys, verb, place):
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    out = {"proc": "/proc/vid2reward-test/out", "file-parent": str(a_file / "out"),
           "file": str(a_file), "read-only": "/sys/vid2reward-test"}[place]
    args = [*TRAIN, "--out", out] if verb == "train" else [*RUN, "--video", VIDEO, "--out", out]
    _one_line_error(capsys, main(args), "--out")
    assert a_file.read_text() == "keep me"


@pytest.mark.parametrize("args, words", [
    (["--envs", "0"], "--envs must be at least 1"),
    (["--time-limit", "-5"], "--time-limit must be a positive"),
    (["--seed", "-1"], "--seed must be between"),
])
def test_train_numbers_are_checked_first(tmp_path, capsys, args, words):
    out = tmp_path / "out"
    _one_line_error(capsys, main([*TRAIN, "--out", str(out), *args]), words)
    assert not out.exists()


@pytest.mark.parametrize("args, words", [
    (["--time-limit", "-5"], "--time-limit must be positive"),
    (["--token-budget", "0"], "--token-budget must be positive"),
    (["--money-budget", "nan"], "--money-budget must be positive"),
    (["--patience", "0"], "--patience must be positive"),
    (["--start", "3", "--end", "2"], "--end must come after --start"),
    (["--subject", "10,20,wide,40"], "bad subject '10,20,wide,40'"),
    (["--subject", "10,20,0,40"], "width and height must be positive"),
    (["--subject-time", "-1"], "--subject-time must not be negative"),
])
def test_run_numbers_are_checked_first(tmp_path, capsys, args, words):
    out = tmp_path / "run"
    _one_line_error(capsys, main([*RUN, "--video", VIDEO, "--out", str(out), *args]), words)
    assert not out.exists()


@pytest.mark.parametrize("verb", ["run", "demo"])
@pytest.mark.parametrize("args, words", [
    (["--steps", "0"], "--steps must be positive"),
    (["--steps", "-5"], "--steps must be positive"),
    (["--iterations", "0"], "--iterations must be positive"),
    (["--candidates", "0"], "--candidates must be positive"),
    (["--final-steps", "-1"], "--final-steps must not be negative"),
])
def test_run_and_demo_check_their_sizes_alike(tmp_path, capsys, verb, args, words):
    out = tmp_path / "run"
    command = [*RUN, "--video", VIDEO] if verb == "run" else ["demo", "--quiet"]
    err = _one_line_error(capsys, main([*command, "--out", str(out), *args]), words)
    assert "\nfix: " in err
    assert not out.exists()


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    """0.13 s of a hopper: far too short for a gait."""
    ep = run_episodes("Hopper-v5", None, episodes=1, seed=3, max_steps=120, render_size=(320, 240))[0]
    return write_mp4(ep.frames, tmp_path_factory.mktemp("short") / "short.mp4", ep.fps)


def test_a_clip_too_short_for_a_gait_is_refused_and_leaves_no_directories(tmp_path, capsys, short_clip):
    out = tmp_path / "new" / "parents" / "run"
    code = main([*RUN, "--video", str(short_clip), "--out", str(out)])
    _one_line_error(capsys, code, "too short to measure a gait", "at least 1 s")
    assert list(tmp_path.iterdir()) == []  # neither the run nor the parents made for it


def test_features_and_compare_refuse_a_clip_too_short(capsys, short_clip):
    _one_line_error(capsys, main(["features", str(short_clip)]), "at least 1 s")
    code = main(["compare", VIDEO, str(short_clip), "--out", str(short_clip.parent / "cmp")])
    _one_line_error(capsys, code, "the learner clip")
    assert not (short_clip.parent / "cmp").exists()


def test_a_bad_video_removes_the_parents_it_created_but_not_the_users(tmp_path, capsys):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    mine = tmp_path / "mine"
    mine.mkdir()
    code = main([*RUN, "--video", str(junk), "--out", str(mine / "a" / "run")])
    _one_line_error(capsys, code, "not a video")
    assert mine.is_dir() and list(mine.iterdir()) == []


@pytest.mark.parametrize("content", [b'{"run_id": "x", "config": {', b"[1]", b'{"run_id": "x"}',
                                     b"\xff\xfe\x00binary", b'{"run_id": "x", "config": {"env_id": 3}}'])
def test_resume_with_a_garbled_run_json_is_one_line(tmp_path, capsys, content):
    (tmp_path / "run.json").write_bytes(content)
    _one_line_error(capsys, main(["resume", str(tmp_path)]), "run.json")


def _small_log(root: Path) -> None:
    (root / "run.json").write_text(json.dumps({"run_id": "r", "config": {"env_id": "Hopper-v5"}}))
    log = RunLog(root)
    log.write(RunStarted(run_id="r", env_id="Hopper-v5", engine="offline", config={}))
    with (root / "events.jsonl").open("ab") as f:
        f.write(b"\x00\xff\xfe binary garbage\n")
        f.write(b'{"kind": "node_started", "node": "ingest_exp')  # torn by a crash
    log.write(RunFinished(status="finished", reason="all 1 iterations done"))


def test_run_log_starts_a_new_line_after_a_torn_one(tmp_path):
    _small_log(tmp_path)
    events, skipped = read_event_log(tmp_path)
    assert [e.kind for e in events] == ["run_started", "run_finished"]
    assert skipped == [2, 3]


def test_trace_says_how_many_lines_it_skipped(tmp_path, capsys):
    _small_log(tmp_path)
    assert main(["trace", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 unreadable lines of events.jsonl (line 2, 3)" in " ".join(out.split())
    assert main(["trace", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped_lines"] == [2, 3]


def test_trace_of_nothing_but_garbage_is_one_line(tmp_path, capsys):
    (tmp_path / "run.json").write_text("{}")
    (tmp_path / "events.jsonl").write_bytes(b"\x00\xff\n\xfe\n")
    _one_line_error(capsys, main(["trace", str(tmp_path)]), "no readable event", "2 unreadable lines")
