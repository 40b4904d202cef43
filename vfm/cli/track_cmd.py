"""`vfm track VIDEO --model M [prompts] --out DIR [--json]`: track objects through a video.

Prompts, each on a source frame F (0-based) for an object id, repeatable and mixable:
`--point F,X,Y[,LABEL]` (LABEL 1 on the object, 0 not on it), `--box F,X0,Y0,X1,Y1` and
`--mask F,PNG` prompt object 1; `--prompts FILE.json` is a list of
{"frame", "object", "points", "labels", "box", "mask"} for several objects and for corrections
on later frames (a click on frame 300 refines the object from there on). Or find the objects by
name: `--classes "person, car"` detects them on the first frame with --detector and tracks each;
`--redetect-every N` detects again every N frames and starts a new object for each detection no
tracked object covers. Or, with SAM 3 (`--model sam3`), `--text "person"` (repeatable) tracks every
instance of each noun phrase, new ones as they enter, with stable ids; `--threshold` and
`--new-object-threshold` set its detection scores. Clicks, boxes and masks on a SAM 3 model go through
its tracker (Sam3TrackerVideoModel), as on SAM 2.1.

VIDEO is any file PyAV decodes (mp4, mov, mkv, webm, avi; rotation metadata applied), a folder of
frames or a glob ("frames/*.jpg"). Frames are decoded as they are needed and memory stays flat in
the video's length. --out DIR gets tracks.jsonl, masks/*.png (DAVIS indexed), mot.txt, ytvis.json
and overlay.mp4; --json prints the tracks.jsonl lines on stdout instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from vfm.cli.common import add_runtime_options, out_dir
from vfm.errors import PromptError

DEFAULT_TRACKER = "sam2.1-hiera-tiny"


def add_parser(sub) -> None:
    from vfm.cli.detect_cmd import DEFAULT_DETECTOR

    p = sub.add_parser("track", help="track objects through a video: clicks, boxes, masks or class names -> masklets",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", metavar="VIDEO", help="a video file, a folder of frames or a glob of frames")
    p.add_argument("--model", default=DEFAULT_TRACKER,
                   help=f"SAM 2.1, EdgeTAM or SAM 3 alias, hub id or directory (default {DEFAULT_TRACKER})")
    g = p.add_argument_group("prompts")
    g.add_argument("--point", action="append", metavar="F,X,Y[,LABEL]", help="a click on frame F for object 1 (repeatable)")
    g.add_argument("--box", action="append", metavar="F,X0,Y0,X1,Y1", help="a box on frame F for object 1")
    g.add_argument("--mask", action="append", metavar="F,PNG", help="a mask image on frame F for object 1")
    g.add_argument("--prompts", metavar="FILE.json", help='a list of {"frame", "object", "points", "labels", "box", "mask"}')
    g.add_argument("--text", action="append", default=None, metavar="PHRASE",
                   help='SAM 3: track every instance of a noun phrase, e.g. --text "person" (repeatable)')
    g.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="SAM 3 --text: detection score that keeps a track matched (model default 0.5)")
    g.add_argument("--new-object-threshold", type=float, default=None, metavar="T",
                   help="SAM 3 --text: detection score that starts a new track (model default 0.7)")
    g.add_argument("--classes", default=None, help='find the objects by name on the first frame, e.g. "person, car"')
    g.add_argument("--detector", default=DEFAULT_DETECTOR, help=f"open-vocabulary detector for --classes (default {DEFAULT_DETECTOR})")
    g.add_argument("--box-threshold", type=float, default=None, metavar="T", help="detector box threshold, as in `vfm detect`")
    g.add_argument("--text-threshold", type=float, default=None, metavar="T", help="Grounding DINO text threshold, as in `vfm detect`")
    g.add_argument("--redetect-every", type=int, default=0, metavar="N",
                   help="with --classes: detect again every N frames read; uncovered detections become new objects")
    g.add_argument("--match-iou", type=float, default=0.5, metavar="T",
                   help="a re-detection whose box overlaps a tracked object's box with IoU >= T is that object (default 0.5)")
    v = p.add_argument_group("frames")
    v.add_argument("--start", type=int, default=0, metavar="F", help="first source frame to read (default 0)")
    v.add_argument("--end", type=int, default=None, metavar="F", help="stop before source frame F (default: the end)")
    v.add_argument("--stride", type=int, default=1, metavar="N", help="read every Nth frame from --start (default 1)")
    v.add_argument("--fps", type=float, default=None, help="frame rate of a folder or glob of frames (default 30)")
    p.add_argument("--out", metavar="DIR", default=None, help="write tracks.jsonl, masks/, mot.txt, ytvis.json, overlay.mp4 here")
    p.add_argument("--json", action="store_true", help="print one tracks.jsonl line per frame on stdout")
    p.add_argument("--no-overlay", action="store_true", help="skip overlay.mp4 (the slowest output)")
    p.add_argument("--keep-memory", action="store_true",
                   help="keep every frame's memory as transformers' session does (memory grows with the video; for checks)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_runtime_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from vfm.models.registry import resolve
    from vfm.video.prompts import check_prompts, parse_cli_prompts
    from vfm.video.reader import open_video

    if args.out is None and not args.json:
        raise PromptError("say where the tracks go: --out DIR (tracks.jsonl, masks/, mot.txt, ytvis.json, overlay.mp4) and/or --json")
    prompts = parse_cli_prompts(args.point, args.box, args.mask, args.prompts)
    classes = _classes(args)
    texts = _texts(args, prompts, classes)
    if not prompts and classes is None and texts is None:
        raise PromptError('give what to track: --point F,X,Y, --box F,X0,Y0,X1,Y1, --mask F,PNG, --prompts FILE.json, '
                          '--classes "person, car" or (SAM 3) --text "person"')
    if args.redetect_every < 0 or (args.redetect_every and classes is None):
        raise PromptError("--redetect-every N needs --classes and N >= 1")
    if not 0 < args.match_iou <= 1:
        raise PromptError(f"--match-iou {args.match_iou} must be in (0, 1]")
    resolve(args.model, task="track")  # an unknown or image-only model fails before the video is opened
    video = open_video(args.video, start=args.start, end=args.end, stride=args.stride, fps=args.fps,
                       max_pixels=args.max_pixels)
    check_prompts(prompts, width=video.width, height=video.height, video=video)
    out = out_dir(args.out) if args.out else None

    if texts is not None:
        from vfm.video.concept_tracker import ConceptVideoTracker, TextPrompts

        concept = ConceptVideoTracker.load(args.model, device=args.device, precision=args.precision,
                                           threshold=args.threshold, new_threshold=args.new_object_threshold)
        tracker = TextPrompts(concept, texts, total_frames=video.selected_count())
    else:
        from vfm.video.tracker import VideoTracker

        tracker = VideoTracker.load(args.model, device=args.device, precision=args.precision)
    discover = None
    if classes is not None:
        from vfm.tasks.detect import Detector, check_threshold
        from vfm.video.run import grounded

        check_threshold(args.box_threshold, "--box-threshold")
        check_threshold(args.text_threshold, "--text-threshold")
        detector = Detector.load(args.detector, device=args.device, precision=args.precision)
        discover = grounded(detector, classes, prompts, box_threshold=args.box_threshold,
                            text_threshold=args.text_threshold, redetect_every=args.redetect_every, match_iou=args.match_iou)
    total = video.selected_count()
    started = shown = time.monotonic()

    def on_record(record, n):
        nonlocal shown
        if args.json:
            sys.stdout.write(json.dumps(record) + "\n")
        if not args.quiet and time.monotonic() - shown > 2:
            shown = time.monotonic()
            sys.stderr.write(f"tracked {n}{'/' + str(total) if total else ''} frames "
                             f"({n / max(shown - started, 1e-9):.1f} frames/s)\n")

    from vfm.video.run import track_video

    result = track_video(tracker, video, prompts, out=out, overlay=not args.no_overlay, discover=discover,
                         prune=not args.keep_memory, on_record=on_record)
    missed = [p for p in prompts if p.frame > result.last_frame]
    for problem in video.problems:
        sys.stderr.write(f"vfm track: warning: {problem}\n")
    for p in missed:
        sys.stderr.write(f"vfm track: warning: {p.describe()} was never reached (the video ended at frame {result.last_frame})\n")
    if not args.quiet:
        rate = result.frames / max(time.monotonic() - started, 1e-9)
        where = f"; wrote {', '.join(result.written)} to {out}" if result.written else ""
        sys.stderr.write(f"tracked {len(result.objects)} object(s) through {result.frames} frame(s) of '{args.video}' with {tracker.name} "
                         f"({rate:.1f} frames/s){where}\n")
    return 1 if video.problems or missed else 0


def _texts(args, prompts, classes) -> list[str] | None:
    if args.text is None:
        if args.threshold is not None or args.new_object_threshold is not None:
            raise PromptError("--threshold and --new-object-threshold go with --text (SAM 3)")
        return None
    texts = [t.strip() for t in args.text if t and t.strip()]
    if not texts:
        raise PromptError('--text is empty; give a noun phrase, e.g. --text "person"')
    if prompts or classes is not None:
        raise PromptError("--text tracks every instance on its own; give clicks, boxes, masks or --classes in another run")
    from vfm.models.registry import is_concept_model

    if not is_concept_model(args.model):
        raise PromptError(f"--text needs SAM 3 (--model sam3); '{args.model}' has no text encoder: "
                          'use --classes "..." with a detector instead')
    return texts


def _classes(args) -> list[str] | None:
    if args.classes is None:
        return None
    from vfm.tasks.classes import parse_classes

    classes = parse_classes(args.classes)
    if not classes:
        raise PromptError('--classes is empty; give class names separated by commas, e.g. "person, car"')
    return classes
