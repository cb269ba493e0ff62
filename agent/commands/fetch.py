"""Video verbs: ``vid2reward fetch`` (URL or file -> cached, trimmed clip), ``features``
(behaviour features from pixels) and ``compare`` (expert vs learner, side by side)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.table import Table

from vid2reward.agent.clip_checks import check_clip_length
from vid2reward.sim.errors import UserError
from vid2reward.tools.clip_compare import compare_clips
from vid2reward.tools.pixel_features import (
    FEATURE_DEFINITIONS,
    FeatureSettings,
    PixelFeatures,
    features_from_video,
)
from vid2reward.tools.subject_segmentation import SegmentationSettings
from vid2reward.tools.video_fetch import CACHE_ENV, fetch_clip
from vid2reward.tools.video_frames import CropBox, read_frames, save_contact_sheet


def register(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "fetch", help="fetch a video (URL or file), trim it and cache the clip",
        description="Fetch a video from a URL (any site yt-dlp supports, or a direct link to a "
                    "video file) or a local file, trim it to [--start, --end], resample it and "
                    "cache it. Prints the cached clip's path; an identical second call is "
                    "served from the cache without touching the network.")
    p.add_argument("source", metavar="SOURCE", help="a URL or a local video file")
    p.add_argument("--start", type=float, default=None, help="start of the range, seconds")
    p.add_argument("--end", type=float, default=None, help="end of the range, seconds")
    p.add_argument("--fps", type=float, default=None,
                   help="resample to this frame rate (default: keep the source's)")
    p.add_argument("--max-height", type=int, default=480,
                   help="shrink to at most this many rows; also caps the downloaded format "
                        "(default 480)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help=f"cache directory (default ${CACHE_ENV}, else "
                        "$XDG_CACHE_HOME/vid2reward/videos)")
    p.add_argument("--sheet", action="store_true",
                   help="also write a contact sheet (<clip dir>/sheet.png)")
    p.add_argument("--features", action="store_true",
                   help="also measure pixel features (<clip dir>/features.json) and show them")
    p.set_defaults(func=run_fetch)

    f = verbs.add_parser(
        "features", help="measure behaviour features of a clip from its pixels",
        description="Segment the moving subject and measure scale-free behaviour features "
                    "(speed in body lengths/s, cadence, bobbing, tilt, flight, ...).")
    f.add_argument("clip", type=Path, metavar="CLIP", help="a video file")
    _measure_options(f)
    f.add_argument("--json", action="store_true", help="print JSON (with per-frame series)")
    f.add_argument("--out", type=Path, default=None, help="also write the JSON to this file")
    f.add_argument("--pose", action="store_true",
                   help="measure body pose instead (needs the pose extra, see the README): "
                        "joint angles, cadence, duty factor, step length, left/right phase, "
                        "and a contact sheet with the subject's box and skeleton")
    f.add_argument("--start", type=float, default=0.0, help="with --pose: start, seconds")
    f.add_argument("--end", type=float, default=None, help="with --pose: end, seconds")
    f.add_argument("--subject", default=None, metavar="auto|X,Y,W,H",
                   help="who to measure in a busy frame: auto = the most persistent, largest "
                        "mover, or a box in pixels at --subject-time. With --pose the default is "
                        "auto; without, the pixel features of the subject's crop (an animal, a "
                        "robot) instead of the whole frame")
    f.add_argument("--subject-time", type=float, default=0.0,
                   help="time of the --subject box, seconds after --start (default 0)")
    f.add_argument("--sheet", type=Path, default=None,
                   help="with --pose: contact sheet PNG (default <clip>.pose.png beside the clip)")
    f.set_defaults(func=run_features)

    c = verbs.add_parser(
        "compare", help="compare an expert clip with a learner clip",
        description="Measure both clips the same way; write side_by_side.mp4, "
                    "side_by_side.png and comparison.json into --out.")
    c.add_argument("expert", type=Path, metavar="EXPERT", help="the expert's video file")
    c.add_argument("learner", type=Path, metavar="LEARNER", help="the learner's video file")
    c.add_argument("--out", type=Path, required=True, help="output directory")
    _measure_options(c)
    c.add_argument("--expert-forward", choices=["right", "left", "auto"], default=None,
                   help="forward direction for the expert only (default: --forward)")
    c.add_argument("--json", action="store_true", help="print comparison JSON")
    c.set_defaults(func=run_compare)


def _measure_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--forward", choices=["right", "left", "auto"], default="right",
                   help="image direction that counts as forward (default right, as in MuJoCo "
                        "renders; auto = the direction the subject moves)")
    p.add_argument("--segmentation", choices=["auto", "colour", "motion"], default="auto",
                   help="how the subject is found (default auto: colour, else motion)")
    p.add_argument("--crop", default=None, metavar="X0,Y0,X1,Y1",
                   help="measure only this part of the frame (fractions, e.g. 0.25,0,0.75,1)")


def _settings(args: argparse.Namespace) -> FeatureSettings:
    return FeatureSettings(segmentation=SegmentationSettings(method=args.segmentation),
                           forward=args.forward,
                           crop=CropBox.parse(args.crop) if args.crop else None)


def _features_table(title: str, columns: dict[str, PixelFeatures]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("feature")
    for name in columns:
        table.add_column(name, justify="right")
    table.add_column("unit")
    for name, definition in FEATURE_DEFINITIONS.items():
        values = [getattr(f, name) for f in columns.values()]
        table.add_row(name, *("-" if v is None else f"{v:.3g}" for v in values), definition.unit)
    return table


def run_fetch(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    bars: list[Progress] = []  # started on the first report, so a cache hit or an error
    tasks: dict[str, TaskID] = {}  # prints nothing but its own line

    def progress(stage: str, fraction: float | None) -> None:
        if not console.is_terminal:
            return
        if not bars:
            bars.append(Progress(TextColumn("{task.description}"), BarColumn(),
                                 TaskProgressColumn(), console=console, transient=True))
            bars[0].start()
        if stage not in tasks:
            tasks[stage] = bars[0].add_task(stage, total=1.0 if fraction is not None else None)
        if fraction is not None:
            bars[0].update(tasks[stage], completed=fraction, total=1.0)

    try:
        result = fetch_clip(args.source, start=args.start, end=args.end, fps=args.fps,
                            max_height=args.max_height, cache_dir=args.cache_dir,
                            progress=progress)
    finally:
        for bar in bars:
            bar.stop()
    how = "cached" if result.cached else f"fetched ({result.fetched})"
    console.print(f"{how}: {result.title!r} {result.start:g}-{result.end:g}s, "
                  f"{result.frames} frames at {result.fps:g} fps, {result.width}x{result.height}",
                  highlight=False)
    clip_dir = Path(result.path).parent
    if args.sheet:
        frames = read_frames(result.path, count=12, max_height=240)
        console.print(f"sheet: {save_contact_sheet(frames, clip_dir / 'sheet.png')}", highlight=False)
    if args.features:
        with console.status("measuring pixel features"):
            feats = features_from_video(result.path)
        (clip_dir / "features.json").write_text(feats.to_json(), encoding="utf-8")
        console.print(_features_table(f"pixel features ({clip_dir / 'features.json'})",
                                      {"clip": feats}))
    print(result.path)
    return 0


def run_features(args: argparse.Namespace) -> int:
    if args.pose:
        return _run_pose_features(args)
    check_clip_length(args.clip, "the clip")
    settings, chosen = _settings(args), None
    if args.subject is not None:
        if args.crop:
            raise UserError("--subject and --crop both choose the region", where="--subject",
                            fix="pass one of them")
        from vid2reward.tools.person_tracking import subject_region

        clip = read_frames(args.clip)
        crop, chosen = subject_region(clip.frames, args.subject,
                                      int(round(args.subject_time * clip.fps)))
        settings = FeatureSettings(segmentation=settings.segmentation, forward=settings.forward,
                                   crop=crop)
    feats = features_from_video(args.clip, settings)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(feats.to_json(), encoding="utf-8")
    if args.json:
        print(feats.to_json())
        return 0
    console = Console()
    console.print(_features_table(str(args.clip), {"value": feats}))
    console.print(f"segmentation {feats.segmentation}; subject in {feats.subject_coverage:.0%} "
                  f"of frames; ground measured in {feats.ground_coverage:.0%}; cadence strength "
                  f"{feats.cadence_strength:.2f}; body length {feats.body_length_fraction:.0%} "
                  f"of frame height", highlight=False)
    if chosen is not None:
        console.print(f"subject: {chosen}", highlight=False)
    return 0


def _run_pose_features(args: argparse.Namespace) -> int:
    from vid2reward.tools.pose_estimation import pose_features_from_video
    from vid2reward.tools.pose_features import POSE_FEATURE_DEFINITIONS

    if not args.clip.is_file():
        raise UserError("no such file", where=str(args.clip), fix="pass a video file")
    sheet = args.sheet or args.clip.with_name(args.clip.stem + ".pose.png")
    with Console(stderr=True).status("tracking people and measuring pose"):
        feats, track = pose_features_from_video(args.clip, start=args.start, end=args.end,
                                                subject=args.subject or "auto",
                                                subject_time=args.subject_time, sheet=sheet)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(feats.to_dict(), indent=1), encoding="utf-8")
    if args.json:
        print(json.dumps(feats.to_dict(), indent=1))
        return 0
    console = Console()
    table = Table(title=f"pose features: {args.clip}", title_justify="left")
    for col in ("feature", "value", "unit"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for name, value in feats.vector().items():
        table.add_row(name, "-" if value is None else f"{value:.3g}",
                      POSE_FEATURE_DEFINITIONS[name].unit)
    console.print(table)
    noise = "-" if feats.angle_noise_deg is None else f"{feats.angle_noise_deg:.1f} deg"
    console.print(f"subject: {track.subject}\npose found in {feats.detection_rate:.0%} of "
                  f"{feats.frames} frames at {feats.fps:.3g} fps; joint-angle noise {noise}\n"
                  f"sheet: {sheet}", highlight=False)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    for path in (args.expert, args.learner):
        if not path.is_file():
            raise UserError("no such file", where=str(path), fix="pass two video files")
        check_clip_length(path, f"the {'expert' if path == args.expert else 'learner'} clip")
    settings = _settings(args)
    expert_settings = None
    if args.expert_forward:
        expert_settings = FeatureSettings(segmentation=settings.segmentation,
                                          forward=args.expert_forward, crop=settings.crop)
    console = Console(stderr=True)
    with console.status("measuring both clips and writing side-by-side media"):
        result = compare_clips(args.expert, args.learner, args.out, settings=settings,
                               expert_settings=expert_settings)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    out = Console()
    out.print(_features_table("expert vs learner", {"expert": result.expert,
                                                     "learner": result.learner}))
    worst = ", ".join(f"{k} {v:+.2f}" for k, v in result.largest(3))
    out.print(f"largest normalised differences: {worst}", highlight=False)
    out.print(f"side by side: {result.side_by_side_mp4}\nsheet: {result.contact_sheet}",
              highlight=False)
    return 0
