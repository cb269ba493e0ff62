"""The run directory, typed: the only code that knows its file names (docs/design.md, "Run
directory"). Nodes, engines, the trace, chat, the dashboard and the benchmarks read and write a
run through :class:`RunRecord`; the events log itself is ``run_log``'s (``events.jsonl``).

One iteration, as the record holds it::

    iter-NNN/cand-MM/  reward.py (+ plan.json) -> test.json -> policy.zip, metrics.json,
                       train_key.json -> clip.mp4 (clip-1.mp4, ...: more evaluation episodes),
                       sheet.png, state_metrics.json, rollouts.npz, evaluation.json
                       -> feedback.json
    iter-NNN/          edits.json (the RewardFeedback that wrote these programs),
                       feedback.json (VisualFeedback on the best), audit.json (EditAudits),
                       calibration.json (pixel -> physical units, fitted on the clips so far)

Every JSON file is written atomically (a temp file renamed into place), so a reader never sees
half a file and a killed run loses at most the file being written.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vid2reward.agent.config import RunConfig
from vid2reward.agent.engines.base import CandidateView, ExpertView
from vid2reward.agent.messages import EditAudit, RewardFeedback, VisualFeedback
from vid2reward.agent.run_scalars import write_run_curves
from vid2reward.agent.state import selection_score
from vid2reward.tools.calibration import length_to_size
from vid2reward.tools.feature_definitions import SURVIVAL

TRAINED_FILES = ("policy.zip", "vecnormalize.pkl", "metrics.json", "train_key.json")
"""What one training leaves in a candidate directory (copied when a training is reused)."""
BEST_FILES = ("reward.py", "policy.zip", "vecnormalize.pkl", "clip.mp4", "sheet.png",
              "metrics.json", "evaluation.json", "feedback.json", "state_metrics.json")
FINAL_FILES = ("reward.py", "policy.zip", "vecnormalize.pkl", "clip.mp4", "sheet.png",
               "metrics.json", "state_metrics.json")
"""What the final training replaces in ``best/``: the program it trained (the winner's, or the
engineer's update of it), the policy and what shows it. evaluation.json and feedback.json stay
the critic's view of the search candidate."""


def candidate_id(iteration: int, index: int) -> str:
    """``iter-NNN/cand-MM``: a candidate's id, also its place in the run directory."""
    return f"iter-{iteration:03d}/cand-{index:02d}"


def iteration_of(cid: str) -> int:
    """The iteration number in a candidate id (``iter-002/cand-01`` -> 2)."""
    return int(cid.split("/")[0][5:])


def _body_to_size(details: Mapping[str, Any]) -> float:
    """Body sizes per L of a measured clip (1.0 for files measured before body sizes were)."""
    return length_to_size(details.get("body_length_px", 0.0), details.get("body_size_px", 0.0))


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a temp file renamed into place): readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(path.read_text(encoding="utf-8"))


def _optional_json(path: Path) -> Any:
    return read_json(path) if path.is_file() else None


@dataclass(frozen=True)
class RunRecord:
    """One run directory (see the module docstring for its layout)."""

    root: Path
    created: tuple[Path, ...] = field(default=(), compare=False)
    """Directories this process created for the run (root and parents), outermost first: a
    run that fails before doing any work removes them again, and only them."""

    # -- the run ------------------------------------------------------------------------
    @property
    def run_json(self) -> Path:
        """run.json: config, versions, engine, models."""
        return self.root / "run.json"

    @property
    def checkpoints(self) -> Path:
        """The LangGraph SQLite checkpointer (resume)."""
        return self.root / "checkpoints.sqlite"

    def read_info(self) -> dict[str, Any]:
        """run.json as written (``run_id``, ``config``, ``versions``, ``engine``, ``models``)."""
        return dict(read_json(self.run_json))

    def write_info(self, info: dict[str, Any]) -> None:
        """Replace run.json."""
        write_json(self.run_json, info)

    def is_run(self) -> bool:
        """Whether the directory holds a run (its run.json)."""
        return self.run_json.is_file()

    def config(self) -> RunConfig:
        """The run's configuration from run.json (older files migrate).

        Raises:
            OSError, ValueError, KeyError, TypeError: run.json is missing or not a run's.
        """
        return RunConfig.from_json(self.read_info()["config"])

    @property
    def tensorboard_dir(self) -> Path:
        """tb/: the run's own TensorBoard curves (each candidate's training has its own tb/)."""
        return self.root / "tb"

    def has_work(self) -> bool:
        """Whether any iteration was started (a run that failed before it may be removed)."""
        return any(self.root.glob("iter-*"))

    # -- the expert ---------------------------------------------------------------------
    @property
    def expert_dir(self) -> Path:
        """expert/: clip.mp4, sheet.png, features.json, description.txt."""
        return self.root / "expert"

    @property
    def expert_clip(self) -> Path:
        """expert/clip.mp4: the trimmed expert clip."""
        return self.expert_dir / "clip.mp4"

    @property
    def expert_sheet(self) -> Path:
        """expert/sheet.png: the expert clip's contact sheet."""
        return self.expert_dir / "sheet.png"

    def expert_measured(self) -> dict[str, Any] | None:
        """expert/features.json (``features``, ``units``, ...), None before it is measured."""
        return _optional_json(self.expert_dir / "features.json")

    def write_expert_measured(self, measured: dict[str, Any]) -> None:
        """Store what was measured from the expert clip (written last: marks it done)."""
        write_json(self.expert_dir / "features.json", measured)

    def direction_probe(self) -> dict[str, Any] | None:
        """expert/direction_probe.json: the probe clips' calibration points and readings
        (``tools/direction_probe.py``), measured once per run."""
        return _optional_json(self.expert_dir / "direction_probe.json")

    def write_direction_probe(self, probe: dict[str, Any]) -> None:
        """Save expert/direction_probe.json."""
        write_json(self.expert_dir / "direction_probe.json", probe)

    def expert_description(self) -> str | None:
        """The critic's words on the expert, None before it described it."""
        path = self.expert_dir / "description.txt"
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def write_expert_description(self, text: str) -> None:
        """Store the critic's words on the expert."""
        (self.expert_dir / "description.txt").write_text(text, encoding="utf-8")

    def expert_state_metrics(self) -> tuple[dict[str, float], Path] | None:
        """The expert's simulator-state behaviour metrics, and the file they came from, when
        they are known: the run's video is a clip made in simulation (the bundled experts, the
        demo's) with its ``<clip>.json`` beside it, for the run's env. None for real footage."""
        try:
            config = self.config()
            info_path = Path(config.video).with_suffix(".json")
            info = read_json(info_path) if config.video and info_path.is_file() else None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(info, dict) or info.get("env_id") != config.env_id \
                or not isinstance(info.get("state_metrics"), dict):
            return None
        return dict(info["state_metrics"]), info_path

    def expert_view(self) -> ExpertView | None:
        """The expert as agents see it (None before it is measured, or without a video)."""
        measured = self.expert_measured()
        if measured is None:
            return None
        # An expert video shows the behaviour for its whole length: survival 1 by definition.
        return ExpertView(clip=self.expert_clip, sheet=self.expert_sheet,
                          features={**measured["features"], SURVIVAL.name: 1.0},
                          units={**measured.get("units", {}), SURVIVAL.name: SURVIVAL.unit},
                          body_to_size=_body_to_size(measured.get("details", {})),
                          description=self.expert_description() or "")

    # -- candidates -----------------------------------------------------------------------
    def candidate_dir(self, cid: str) -> Path:
        """A candidate's directory (its files are named in the module docstring)."""
        return self.root / cid

    def write_program(self, cid: str, source: str, plan: dict[str, Any] | None) -> None:
        """A new candidate: its reward.py and (offline engine) plan.json."""
        d = self.candidate_dir(cid)
        d.mkdir(parents=True, exist_ok=True)
        self.replace_program(cid, source)
        if plan is not None:
            write_json(d / "plan.json", plan)

    def replace_program(self, cid: str, source: str) -> None:
        """A repaired program replaces the candidate's reward.py."""
        (self.candidate_dir(cid) / "reward.py").write_text(source, encoding="utf-8")

    def program_path(self, cid: str) -> Path:
        """The candidate's reward.py (sandboxes and trainers load it by path)."""
        return self.candidate_dir(cid) / "reward.py"

    def program(self, cid: str) -> str:
        """The candidate's reward program source."""
        return self.program_path(cid).read_text(encoding="utf-8")

    def plan(self, cid: str) -> dict[str, Any] | None:
        """plan.json (the offline engine's terms and WEIGHTS), None for other engines."""
        return _optional_json(self.candidate_dir(cid) / "plan.json")

    def write_test(self, cid: str, report: dict[str, Any]) -> None:
        """The sandbox test report of the candidate's program."""
        write_json(self.candidate_dir(cid) / "test.json", report)

    def test(self, cid: str) -> dict[str, Any] | None:
        """The test report, None before the test."""
        return _optional_json(self.candidate_dir(cid) / "test.json")

    def metrics(self, cid: str) -> dict[str, Any]:
        """metrics.json of its training ({} before it trained)."""
        return _optional_json(self.candidate_dir(cid) / "metrics.json") or {}

    def write_metrics(self, cid: str, metrics: dict[str, Any]) -> None:
        """metrics.json of a training that failed before it began."""
        write_json(self.candidate_dir(cid) / "metrics.json", metrics)

    def is_trained(self, cid: str, key: dict[str, Any]) -> bool:
        """Whether the candidate holds a finished training with exactly this key."""
        return _optional_json(self.candidate_dir(cid) / "train_key.json") == key

    def mark_trained(self, cid: str, key: dict[str, Any]) -> None:
        """Write train_key.json: written last, it marks the training complete."""
        write_json(self.candidate_dir(cid) / "train_key.json", key)

    def reuse_training(self, cid: str, key: dict[str, Any]) -> bool:
        """Copy a finished training with ``key`` from another candidate of the run into this
        one (trainings are cached by content); False when there is none."""
        target = self.candidate_dir(cid)
        for key_file in sorted(self.root.glob("iter-*/cand-*/train_key.json")):
            source = key_file.parent
            if source != target and read_json(key_file) == key and (source / "policy.zip").is_file():
                for name in TRAINED_FILES:
                    shutil.copy2(source / name, target / name)
                return True
        return False

    def training_scratch(self, cid: str) -> Path:
        """Where a candidate trains: a sibling directory, because a training replaces its
        whole output directory and the candidate's program must survive it."""
        d = self.candidate_dir(cid)
        return d.with_name(f"{d.name}.train")

    def adopt_training(self, cid: str) -> None:
        """Move a finished training from :meth:`training_scratch` into the candidate (its own
        reward.py stays) and remove the scratch directory."""
        d, out = self.candidate_dir(cid), self.training_scratch(cid)
        for item in out.iterdir():
            if item.name != "reward.py":
                target = d / item.name
                if target.is_dir():
                    shutil.rmtree(target)
                item.replace(target)
        shutil.rmtree(out, ignore_errors=True)

    def land_training(self, cid: str, files: dict[str, bytes]) -> None:
        """Write a training that ran elsewhere (a Ray worker; relative path -> content, tb/
        included) into the candidate: into :meth:`training_scratch` first, then moved in as
        :meth:`adopt_training` moves a local one (renamed into place, never half-written)."""
        out = self.training_scratch(cid)
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for name, content in files.items():
            parts = Path(name).parts
            if not parts or Path(name).is_absolute() or any(p in ("..", ".") for p in parts) \
                    or parts[0].startswith("."):
                raise ValueError(f"a training result named {name!r} is not a path inside it")
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(content)
        self.adopt_training(cid)

    def distinct_trainings(self) -> list[dict[str, Any]]:
        """metrics.json of every distinct finished training (cached copies counted once)."""
        seen: dict[str, dict[str, Any]] = {}
        for key_file in sorted(self.root.glob("iter-*/cand-*/train_key.json")):
            seen[key_file.read_text(encoding="utf-8")] = read_json(key_file.parent / "metrics.json")
        return list(seen.values())

    def clip(self, cid: str) -> Path:
        """Where its rendered clip goes (clip.mp4)."""
        return self.candidate_dir(cid) / "clip.mp4"

    def sheet(self, cid: str) -> Path:
        """Where its contact sheet goes (sheet.png)."""
        return self.candidate_dir(cid) / "sheet.png"

    def episode_clip(self, cid: str, episode: int) -> Path:
        """The clip of evaluation episode ``episode``: clip.mp4 for the first (the one shown),
        clip-1.mp4, clip-2.mp4, ... for the others."""
        return self.clip(cid) if episode == 0 else self.candidate_dir(cid) / f"clip-{episode}.mp4"

    def write_rollouts(self, cid: str, seeds: Sequence[int], actions: Sequence[Any]) -> None:
        """rollouts.npz: each evaluation episode's seed and actions (they replay it exactly)."""
        import numpy as np

        path = self.candidate_dir(cid) / "rollouts.npz"
        tmp = path.with_name(".rollouts.partial.npz")
        arrays: dict[str, Any] = {f"actions_{i}": np.asarray(a) for i, a in enumerate(actions)}
        arrays["seeds"] = np.asarray(seeds, dtype=np.int64)
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)

    def rollouts(self, cid: str) -> list[tuple[int, Any]]:
        """The (seed, actions) of each evaluation episode; [] for candidates evaluated before
        rollouts were kept."""
        import numpy as np

        path = self.candidate_dir(cid) / "rollouts.npz"
        if not path.is_file():
            return []
        with np.load(path) as data:
            return [(int(seed), data[f"actions_{i}"]) for i, seed in enumerate(data["seeds"])]

    def write_state_metrics(self, cid: str, metrics: dict[str, Any]) -> None:
        """Simulator-state behaviour metrics (benchmarks only, never shown to agents)."""
        write_json(self.candidate_dir(cid) / "state_metrics.json", metrics)

    def evaluation(self, cid: str) -> dict[str, Any] | None:
        """evaluation.json (pixel ``features``, ``units``, ``similarity``), None before."""
        return _optional_json(self.candidate_dir(cid) / "evaluation.json")

    def write_evaluation(self, cid: str, evaluation: dict[str, Any]) -> None:
        """Store (or update) what was measured of the candidate's clip."""
        write_json(self.candidate_dir(cid) / "evaluation.json", evaluation)

    def has_policy(self, cid: str) -> bool:
        """Whether a trained policy is there (policy.zip)."""
        return (self.candidate_dir(cid) / "policy.zip").is_file()

    def is_evaluated(self, cid: str) -> bool:
        """Whether its clip was rendered and measured."""
        return (self.candidate_dir(cid) / "evaluation.json").is_file()

    def feedback(self, cid: str) -> VisualFeedback | None:
        """The critic's VisualFeedback on the candidate, None before (or without a critic)."""
        data = _optional_json(self.candidate_dir(cid) / "feedback.json")
        return None if data is None else VisualFeedback.model_validate(data)

    def write_feedback(self, cid: str, feedback: VisualFeedback) -> None:
        """Store the critic's VisualFeedback on the candidate."""
        write_json(self.candidate_dir(cid) / "feedback.json", feedback.model_dump())

    def score(self, cid: str, similarity: float | None) -> float:
        """The candidate's selection score (:func:`~vid2reward.agent.state.selection_score`)."""
        return selection_score(similarity, self.metrics(cid).get("return_mean"))

    def candidate_view(self, cid: str) -> CandidateView:
        """What is known about one candidate, as agents see it."""
        evaluation = self.evaluation(cid) or {}
        clip, sheet = self.clip(cid), self.sheet(cid)
        return CandidateView(id=cid, iteration=iteration_of(cid), directory=self.candidate_dir(cid),
                             source=self.program(cid), metrics=self.metrics(cid), plan=self.plan(cid),
                             clip=clip if clip.is_file() else None,
                             sheet=sheet if sheet.is_file() else None,
                             features=evaluation.get("features", {}),
                             units=evaluation.get("units", {}),
                             similarity=evaluation.get("similarity"),
                             falls=evaluation.get("falls"))

    def candidate_ids(self, upto: int | None = None) -> list[str]:
        """Every candidate of iterations 1..upto (all when None), oldest first; iterations set
        aside by a rollback are not the run's any more."""
        ids = []
        for it_dir in sorted(self.root.glob("iter-*")):
            if not it_dir.name[5:].isdigit() or (upto is not None and int(it_dir.name[5:]) > upto):
                continue
            ids += [f"{it_dir.name}/{d.name}" for d in sorted(it_dir.glob("cand-*")) if d.is_dir()]
        return ids

    def evaluated_candidates(self, upto: int) -> list[CandidateView]:
        """Every evaluated candidate of iterations 1..upto (oldest first)."""
        return [self.candidate_view(c) for c in self.candidate_ids(upto) if self.is_evaluated(c)]

    # -- iterations -----------------------------------------------------------------------
    def iteration_dir(self, n: int) -> Path:
        """``iter-NNN``."""
        return self.root / f"iter-{n:03d}"

    def write_reward_feedback(self, iteration: int, feedback: RewardFeedback) -> None:
        """edits.json of ``iteration``: the RewardFeedback that wrote its programs."""
        write_json(self.iteration_dir(iteration) / "edits.json", feedback.model_dump())

    def reward_feedback(self, iteration: int) -> RewardFeedback | None:
        """The RewardFeedback that wrote ``iteration``'s programs (older files migrate)."""
        data = _optional_json(self.iteration_dir(iteration) / "edits.json")
        return None if data is None else RewardFeedback.model_validate(data)

    def write_iteration_feedback(self, iteration: int, feedback: VisualFeedback) -> None:
        """iter-NNN/feedback.json: the VisualFeedback on the iteration's best candidate."""
        write_json(self.iteration_dir(iteration) / "feedback.json", feedback.model_dump())

    def write_calibration(self, iteration: int, calibration: dict[str, Any]) -> None:
        """calibration.json: the pixel -> physical fit made after ``iteration``'s clips."""
        write_json(self.iteration_dir(iteration) / "calibration.json", calibration)

    def calibration(self, iteration: int) -> dict[str, Any] | None:
        """The calibration made after ``iteration`` (None before, or without a video critic)."""
        return _optional_json(self.iteration_dir(iteration) / "calibration.json")

    def latest_calibration(self, upto: int) -> dict[str, Any] | None:
        """The newest calibration made after an iteration <= ``upto`` (None before any)."""
        return next((c for n in range(upto, 0, -1) if (c := self.calibration(n)) is not None),
                    None)

    def write_audits(self, iteration: int, audits: list[EditAudit]) -> None:
        """audit.json: the EditAudits measured in ``iteration``."""
        write_json(self.iteration_dir(iteration) / "audit.json", [a.model_dump() for a in audits])

    def audits(self, iteration: int) -> list[EditAudit]:
        """The EditAudits measured in ``iteration`` ([] before its audit; older files migrate)."""
        data = _optional_json(self.iteration_dir(iteration) / "audit.json") or []
        return [EditAudit.model_validate(a) for a in data]

    def write_human_feedback(self, iteration: int, words: str) -> None:
        """A person's words given during ``iteration`` (chat)."""
        (self.iteration_dir(iteration) / "human_feedback.txt").write_text(words, encoding="utf-8")

    def abandon_after(self, iteration: int) -> list[str]:
        """Set aside every iteration after ``iteration`` (chat /rollback): each is renamed
        ``iter-NNN.abandoned-<time>``, kept, not lost. Returns the new names."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        moved = []
        for later in sorted(self.root.glob("iter-*")):
            if later.is_dir() and later.name[5:].isdigit() and int(later.name[5:]) > iteration:
                later.rename(self.root / f"{later.name}.abandoned-{stamp}")
                moved.append(f"{later.name}.abandoned-{stamp}")
        return moved

    # -- the final training and best/ -----------------------------------------------------
    @property
    def final_dir(self) -> Path:
        """final/: the winner's reward trained again from scratch (policy.zip, metrics.json,
        final.json, ...)."""
        return self.root / "final"

    @property
    def final_winner_dir(self) -> Path:
        """final/winner/: the winner's own program trained the same way, when the final
        training verified an update of it."""
        return self.final_dir / "winner"

    def write_final_state_metrics(self, directory: Path, metrics: dict[str, Any]) -> None:
        """Simulator-state behaviour metrics of the clip of a final policy (in ``directory``)."""
        write_json(directory / "state_metrics.json", metrics)

    def hand_out_final_winner(self) -> None:
        """Make final/winner/'s policy the final one: final/'s (the update's) files move to
        final/update/ and final/winner/'s are copied into final/."""
        update_dir = self.final_dir / "update"
        shutil.rmtree(update_dir, ignore_errors=True)
        update_dir.mkdir()
        for name in FINAL_FILES:
            if (self.final_dir / name).is_file():
                shutil.move(self.final_dir / name, update_dir / name)
        for name in FINAL_FILES:
            if (self.final_winner_dir / name).is_file():
                shutil.copy2(self.final_winner_dir / name, self.final_dir / name)

    def final_done(self, key: dict[str, Any]) -> bool:
        """Whether final/ holds a finished final training with exactly this key."""
        return _optional_json(self.final_dir / "train_key.json") == key

    def write_final(self, summary: dict[str, Any], key: dict[str, Any]) -> None:
        """final.json (its evaluation), then train_key.json: written last, it marks it done."""
        write_json(self.final_dir / "final.json", summary)
        write_json(self.final_dir / "train_key.json", key)

    def final_summary(self, candidate: str) -> dict[str, Any] | None:
        """final.json when final/ holds a finished final training of ``candidate``."""
        key = _optional_json(self.final_dir / "train_key.json")
        if not isinstance(key, dict) or key.get("candidate") != candidate:
            return None
        return _optional_json(self.final_dir / "final.json")

    @property
    def best_dir(self) -> Path:
        """best/: the winner's reward, policy, clip and summary.json."""
        return self.root / "best"

    def write_best(self, candidate: str | None, summary: dict[str, Any]) -> None:
        """Replace best/ with ``candidate``'s files (and final/'s policy when final/ trained
        it) and summary.json; built aside and renamed into place, so best/ is never half."""
        tmp = self.root / ".best.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if candidate is not None:
            src = self.candidate_dir(candidate)
            for name in BEST_FILES:
                if (src / name).is_file():
                    shutil.copy2(src / name, tmp / name)
            final = self.final_summary(candidate)
            if final is not None:
                for name in FINAL_FILES:
                    if (self.final_dir / name).is_file():
                        shutil.copy2(self.final_dir / name, tmp / name)
                summary["final_training"] = final
            if (tmp / "state_metrics.json").is_file():
                summary["best_state_metrics"] = read_json(tmp / "state_metrics.json")
        write_json(tmp / "summary.json", summary)
        if self.best_dir.exists():
            shutil.rmtree(self.best_dir)
        tmp.rename(self.best_dir)
        self.write_curves(summary.get("history", []),
                          (summary.get("final_training") or {}).get("evaluation"))

    def write_curves(self, history: Sequence[Mapping[str, Any]],
                     final_evaluation: dict[str, Any] | None = None) -> None:
        """Rewrite the run's TensorBoard curves in tb/ (similarity per iteration, best so far,
        the final policy's evaluation) from its history."""
        write_run_curves(self.tensorboard_dir, history, final_evaluation)

    def remove_best(self) -> None:
        """Remove best/ (a rollback to before any evaluated candidate)."""
        shutil.rmtree(self.best_dir, ignore_errors=True)

    def best_summary(self) -> dict[str, Any] | None:
        """best/summary.json, None before the run wrote best/."""
        return _optional_json(self.best_dir / "summary.json")

    def best_program_path(self) -> Path | None:
        """best/reward.py, if the run has a best candidate."""
        path = self.best_dir / "reward.py"
        return path if path.is_file() else None
