"""``vid2reward run --reward-source``: a VLM-RM run with a tiny random CLIP end to end, the
one-line refusals (no checkpoint, resume of a source run)."""

import json

from tiny_clip import write_tiny_clip

from vid2reward.agent.cli import main

TINY = ["--env", "Hopper-v5", "--iterations", "1", "--candidates", "1", "--steps", "512",
        "--envs", "2", "--final-steps", "0"]


def test_vlm_rm_run_end_to_end_with_a_tiny_clip(tmp_path, examples_dir, capsys):
    clip_dir = write_tiny_clip(tmp_path / "tiny-clip")
    out = tmp_path / "run"
    code = main(["run", *TINY, "--video", str(examples_dir / "experts" / "hopper-steady.mp4"),
                 "--task", "a one-legged robot hopping to the right",
                 "--reward-source", "vlm-rm", "--clip-checkpoint", str(clip_dir),
                 "--source-every", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    summary = json.loads((out / "best" / "summary.json").read_text())
    assert summary["reward_source"] == "vlm-rm" and summary["status"] == "finished"
    key = summary["source_key"]
    assert key["mode"] == "text" and key["goal"] == ["a one-legged robot hopping to the right"]
    assert key["frames"] == [128, 96, 2]
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    assert "vlmrm" in metrics["components"] and metrics["config"]["reward_source"] == key
    assert (out / "best" / "clip.mp4").is_file() and (out / "expert" / "clip.mp4").is_file()
    assert json.loads((out / "run.json").read_text())["reward_source"]["kind"] == "vlm-rm"
    code = main(["resume", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot be resumed" in err and "Traceback" not in err


def test_vlm_rm_without_checkpoint_is_one_line(tmp_path, examples_dir, capsys):
    out = tmp_path / "run"
    code = main(["run", *TINY, "--video", str(examples_dir / "experts" / "hopper-steady.mp4"),
                 "--task", "hop", "--reward-source", "vlm-rm", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "error: VLM-RM needs a CLIP checkpoint" in err
    assert "huggingface-cli download" in err and "Traceback" not in err
    assert not out.exists()


def test_bench_refuses_a_source_method_without_its_model(tmp_path, capsys):
    code = main(["bench", "nes", "--fast", "--methods", "full", "vlm-rm", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "vlm-rm method needs a CLIP checkpoint" in err and "Traceback" not in err
    code = main(["bench", "nes", "--fast", "--methods", "car", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "car method needs a VLM" in err
    assert not (tmp_path / "b").exists()
