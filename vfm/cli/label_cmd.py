"""`vfm label SOURCE --classes "person, forklift" --out OUT [--task ground|detect|everything|tag|semantic|instance] ...`

Labels a whole folder (recursive), a text file listing image paths, or a glob, into datasets in OUT:
COCO (coco.json), YOLO (yolo/), Label Studio (labelstudio.json), PNG masks (masks/), LabelMe
(labelme/), Pascal VOC (voc/), CVAT for images 1.1 (cvat.xml) and semantic
label maps (semantic/: with --task semantic, every pixel a class of --semantic-model). --task instance
labels every object of a closed-set instance checkpoint (--semantic-model, default mask2former-coco-instance;
--classes keeps some of its classes, --box-threshold is its score threshold). --task track labels the videos
in SOURCE: --classes found by --detector on each video's first frame (--redetect-every N: again every N
frames), tracked by --tracker; frames written as OUT/frames/VIDEO/NNNNN.jpg (the datasets' file names
VIDEO/NNNNN.jpg), each video's tracks in OUT/tracks/VIDEO/. State is
kept in OUT/state.sqlite: rerun the same command after a crash or kill to finish the rest; the
datasets are rewritten from the store at the end of every run. Unreadable images are listed in
OUT/errors.jsonl and counted; the exit code is 0 when the run completed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from vfm.errors import PromptError

FORMATS = ("coco", "yolo", "labelstudio", "masks", "semantic", "labelme", "voc", "cvat")
OUTPUTS = ("coco.json", "coco_train.json", "coco_val.json", "coco_test.json", "labelstudio.json", "labelstudio_config.xml",
           "errors.jsonl", "summary.json", "yolo", "masks", "semantic", "labelme", "voc", "cvat.xml", "frames", "tracks")


def add_parser(sub) -> None:
    from vfm.engine.tasks import DEFAULT_CLASSIFIER, DEFAULT_DETECTOR, DEFAULT_INSTANCE_MODEL, DEFAULT_SEGMENTER, DEFAULT_SEMANTIC_MODEL, TASKS

    p = sub.add_parser("label", help="auto-label a folder into COCO / YOLO / Label Studio / PNG datasets (resumable)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="a folder (recursive), a text file of image paths, or a glob")
    p.add_argument("--out", required=True, metavar="OUT", help="output folder (datasets + state.sqlite)")
    p.add_argument("--classes", default=None, help='class names, e.g. "person, forklift"; "prompt: class" asks the model for prompt and names the class, e.g. "person: astronaut"')
    p.add_argument("--vocabulary", metavar="FILE", default=None, help="class names, one per line (with or instead of --classes)")
    p.add_argument("--task", choices=TASKS, default=None,
                   help="ground (default with classes): boxes + masks; detect: boxes; everything (default without "
                        "classes): every mask, named when classes are given; tag: image-level tags; semantic: a class of --semantic-model for every pixel")
    p.add_argument("--detector", default=None, help=f"detector for ground/detect/track (default {DEFAULT_DETECTOR}; none "
                                                    "with a SAM 3 --segmenter)")
    p.add_argument("--segmenter", default=DEFAULT_SEGMENTER,
                   help=f"segmenter for ground/everything (default {DEFAULT_SEGMENTER}); --task ground --segmenter sam3: SAM 3 "
                        "alone, no detector")
    p.add_argument("--classifier", default=DEFAULT_CLASSIFIER, help=f"CLIP/SigLIP for tag/everything labels (default {DEFAULT_CLASSIFIER})")
    p.add_argument("--semantic-model", default=None, metavar="M",
                   help=f"--task semantic: the closed-set segmenter whose classes label every pixel (default {DEFAULT_SEMANTIC_MODEL}); "
                        f"--task instance: the instance checkpoint (default {DEFAULT_INSTANCE_MODEL})")
    p.add_argument("--boxes-from", metavar="DATASET", default=None,
                   help="turn a box dataset (COCO JSON, YOLO folder, VOC folder, LabelMe folder) into masks: each of its "
                        "boxes a --segmenter prompt, its classes kept (implies --task boxes)")
    p.add_argument("--boxes-format", choices=["coco", "yolo", "voc", "labelme"], default=None,
                   help="the format of --boxes-from (default: found from the path)")
    from vfm.engine.video_runner import DEFAULT_TRACKER

    t = p.add_argument_group("videos (--task track)")
    t.add_argument("--tracker", default=DEFAULT_TRACKER, help=f"SAM 2.1 or EdgeTAM video model (default {DEFAULT_TRACKER})")
    t.add_argument("--redetect-every", type=int, default=None, metavar="N",
                   help="run the detector again every N frames; a detection no tracked mask covers starts a new object "
                        "(default: the first frame only)")
    t.add_argument("--match-iou", type=float, default=None, metavar="T",
                   help="a detection whose box overlaps a tracked object's by IoU >= T is that object (default 0.5)")
    t.add_argument("--stride", type=int, default=None, metavar="N", help="label every Nth frame of each video (default 1)")
    p.add_argument("--box-threshold", type=float, default=None, metavar="T", help="detector box threshold 0..1")
    p.add_argument("--text-threshold", type=float, default=None, metavar="T", help="Grounding DINO text threshold 0..1")
    p.add_argument("--tag-threshold", type=float, default=None, metavar="T", help="tag score threshold 0..1 (--task tag)")
    p.add_argument("--points-per-side", type=int, default=None, metavar="N",
                   help="--task everything: N x N point grid (default 32)")
    p.add_argument("--pred-iou-thresh", type=float, default=None, metavar="T",
                   help="--task everything: keep masks with predicted IoU above T (default 0.88)")
    p.add_argument("--stability-score-thresh", type=float, default=None, metavar="T",
                   help="--task everything: keep masks with stability score above T (default 0.95)")
    p.add_argument("--format", default="coco", help=f"comma-separated outputs from {', '.join(FORMATS)} (default coco)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="N local worker processes (default 1: this process)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on Ray: a local cluster without ADDRESS, or an existing one (auto, ray://host:10001)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads per process (default: torch's own for one process, CPUs / workers for workers)")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in OUT and start over")
    from vfm.cli.dataset_opts import add_dataset_options

    add_dataset_options(p)
    p.add_argument("--cvat-shapes", choices=["mask", "polygon"], default="mask",
                   help="--format cvat: masks as CVAT <mask> RLE (default) or <polygon> (largest contour)")
    ls = p.add_argument_group("Label Studio output")
    ls.add_argument("--ls-from-name", default="label", help="from_name of the results (default label)")
    ls.add_argument("--ls-to-name", default="image", help="to_name of the results (default image)")
    ls.add_argument("--ls-masks", choices=["brush", "polygon"], default="brush", help="masks as brush RLE (default) or polygons")
    ls.add_argument("--ls-image-prefix", default=None,
                    help="prefix of data.image (default /data/local-files/?d=<SOURCE folder name>/: Label Studio's local "
                         "files, served from the document root SOURCE's parent; the settings are printed)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when available)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"], help="model precision (default auto)")
    from vfm.cli.common import add_backend_options

    add_backend_options(p)  # the segmenter's image encoder engine (int8 applies to it only)
    p.add_argument("--max-pixels", type=int, default=None, help="refuse images with more pixels (default 100M)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run)


def parse_formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise PromptError(f"--format '{text}' is not a list of {', '.join(FORMATS)}")
    return list(dict.fromkeys(formats))


def build_config(args) -> dict:
    from vfm.cli.label_opts import label_classes
    from vfm.engine.tasks import DEFAULT_INSTANCE_MODEL, DEFAULT_SEMANTIC_MODEL, check_config
    from vfm.tasks.thresholds import check_threshold

    for name in ("box_threshold", "text_threshold", "tag_threshold"):
        check_threshold(getattr(args, name), "--" + name.replace("_", "-"))
    classes = label_classes(args)
    if classes:
        from vfm.tasks.ontology import Ontology

        Ontology.parse(classes)  # "prompt: class" entries are checked before anything is scanned or loaded
    if args.boxes_from and args.task not in (None, "boxes"):
        raise PromptError(f"--boxes-from prompts the segmenter with the dataset's boxes; it does not go with --task {args.task}")
    task = args.task or ("boxes" if args.boxes_from else "ground" if classes else "everything")
    check_video_options(args, task)
    from vfm.models.registry import is_concept_model

    concept = task == "ground" and is_concept_model(args.segmenter)
    if concept and args.text_threshold is not None:
        raise PromptError("--text-threshold is Grounding DINO's; SAM 3 has one score threshold (--box-threshold)")
    if concept and args.detector is not None:
        raise PromptError(f"--segmenter {args.segmenter} finds the classes itself (SAM 3: text in, masks out); drop --detector")
    from vfm.engine.tasks import DEFAULT_DETECTOR
    src = args.source
    config = {
        "source": src if any(c in src for c in "*?[") and os.path.isabs(src) else os.path.abspath(src),
        "task": task, "classes": classes,
        "detector": None if concept or task not in ("ground", "detect", "track") else args.detector or DEFAULT_DETECTOR,
        "tracker": args.tracker if task == "track" else None,
        "redetect_every": args.redetect_every if task == "track" else None,
        "match_iou": args.match_iou if task == "track" else None,
        "stride": args.stride if task == "track" else None,
        "segmenter": args.segmenter if task in ("ground", "everything", "boxes") else None,
        "boxes_from": os.path.abspath(args.boxes_from) if task == "boxes" and args.boxes_from else None,
        "boxes_format": args.boxes_format if task == "boxes" else None,
        "classifier": args.classifier if task == "tag" or (task == "everything" and classes) else None,
        "box_threshold": args.box_threshold, "text_threshold": args.text_threshold,
        "tag_threshold": args.tag_threshold if task == "tag" else None,
        "points_per_side": args.points_per_side if task == "everything" else None,
        "pred_iou_thresh": args.pred_iou_thresh if task == "everything" else None,
        "stability_score_thresh": args.stability_score_thresh if task == "everything" else None,
        "semantic_model": (args.semantic_model or (DEFAULT_SEMANTIC_MODEL if task == "semantic" else DEFAULT_INSTANCE_MODEL))
                          if task in ("semantic", "instance") else None,
        "precision": args.precision, "max_pixels": args.max_pixels,
    }
    from vfm.models.backends import check_backend

    check_backend(args.backend, args.precision)
    if (args.backend != "torch" or args.precision == "int8") and task not in ("ground", "everything", "boxes"):
        raise PromptError(f"--backend / --precision int8 run the SAM segmenter's encoder; --task {task} has none "
                          "(use them with --task ground, everything or boxes)")
    if args.backend != "torch":  # only then: datasets labeled before --backend existed resume unchanged
        config["backend"] = args.backend
    check_config(config)
    return config


def check_video_options(args, task: str) -> None:
    from vfm.tasks.thresholds import check_threshold

    given = [f"--{k.replace('_', '-')}" for k in ("redetect_every", "match_iou", "stride") if getattr(args, k) is not None]
    if task != "track":
        if given:
            raise PromptError(f"{given[0]} is an option of --task track (videos)")
        return
    for key in ("redetect_every", "stride"):
        value = getattr(args, key)
        if value is not None and value < 1:
            raise PromptError(f"--{key.replace('_', '-')} must be 1 or more, got {value}")
    check_threshold(args.match_iou, "--match-iou")
    if args.workers > 1 or args.ray is not None:
        raise PromptError("--task track labels one video at a time in this process (a video is tracked start to end); "
                          "drop --workers/--ray")


def check_formats(formats: list[str], task: str) -> None:
    if task == "track" and "semantic" in formats:
        raise PromptError("--task track makes object masks, not a class for every pixel; drop 'semantic' from --format")
    if task == "instance" and "semantic" in formats:
        raise PromptError("--task instance makes object masks, not a class for every pixel; use --task semantic for --format semantic")
    if task == "tag" and {"yolo", "masks", "labelme", "voc", "cvat"} & set(formats):
        raise PromptError("--task tag makes image-level tags; write them with --format coco,labelstudio")
    if task == "detect" and {"masks", "semantic"} & set(formats):
        raise PromptError("--task detect makes boxes only; drop 'masks'/'semantic' from --format or use --task ground")
    if task == "tag" and "semantic" in formats:
        raise PromptError("--task tag makes image-level tags; write them with --format coco,labelstudio")


def run(args) -> int:
    from vfm.engine.progress import Progress
    from vfm.engine.source import open_source
    from vfm.engine.state import Store, reset

    if args.workers < 1:
        raise PromptError(f"--workers must be 1 or more, got {args.workers}")
    if args.threads is not None and args.threads < 1:
        raise PromptError(f"--threads must be 1 or more, got {args.threads}")
    formats = parse_formats(args.format)
    config = build_config(args)
    check_formats(formats, config["task"])
    videos = config["task"] == "track"
    scan = open_source(args.source, videos=videos)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PromptError(f"--out '{args.out}' exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    if args.overwrite:
        reset(out)
        for name in OUTPUTS:
            p = out / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    store = Store(out)
    try:
        store.check_config(config)
        if videos:
            return _run_videos(store, config, formats, out, scan, args)
        total = store.ingest(scan)
        if total == 0:
            raise PromptError(f"SOURCE '{args.source}' holds no image files (JPEG, PNG, WebP, TIFF, BMP, GIF)")
        done = total - store.count("pending")
        progress = Progress(total, done, enabled=False if args.quiet else None)
        try:
            if store.count("pending"):
                if args.ray is not None:
                    from vfm.engine.ray_runner import run_ray

                    run_ray(store, config, address=args.ray or None, workers=args.workers, device=args.device, threads=args.threads,
                            on_done=progress.advance)
                else:
                    from vfm.engine.runner import run_local

                    run_local(store, config, workers=args.workers, device=args.device, threads=args.threads,
                              on_done=progress.advance)
        finally:
            progress.close()
        return finish(store, config, formats, out, args, str(scan.root))
    finally:
        store.close()


def _run_videos(store, config: dict, formats: list[str], out: Path, scan, args) -> int:
    """--task track: the videos of SOURCE, each tracked whole, then the datasets from their frames."""
    from vfm.engine.progress import Progress
    from vfm.engine.video_runner import expected_frames, run_videos
    from vfm.engine.video_state import VideoStore

    videos = VideoStore(store)
    if videos.ingest(scan) == 0:
        raise PromptError(f"SOURCE '{args.source}' holds no video files (mp4, mov, mkv, webm, avi, ...)")
    done = store.count("done")
    progress = Progress(done + expected_frames(store, config), done, enabled=False if args.quiet else None,
                        description="tracking")
    try:
        run_videos(store, config, device=args.device, threads=args.threads, on_frames=progress.advance)
    finally:
        progress.close()
    return finish(store, config, formats, out, args, str((out / "frames").absolute()))


def finish(store, config: dict, formats: list[str], out: Path, args, source_root: str) -> int:
    """The datasets, summary.json and the summary line at the end of every run; exit code 0."""
    from vfm.engine.report import summary, summary_line, write_summary

    doc = summary(store, finalize(store, config, formats, out, args, source_root))
    write_summary(doc, out)
    if not args.quiet:
        print(summary_line(doc, str(out)))
    return 0


def finalize(store, config: dict, formats: list[str], out: Path, args, source_root: str) -> int | None:
    """Regenerate every requested dataset from the store (each replaced atomically)."""
    from vfm.engine.report import write_errors
    from vfm.engine.tasks import categories_for

    categories = categories_for(config)
    write_errors(store, out)
    from vfm.formats.coco_dataset import write_coco

    info = {"description": "vfm label", "task": config["task"], "source": config["source"]}
    if "coco" in formats:
        n_ann = write_coco(store, categories, out / "coco.json", info=info)
        from vfm.formats.coco_splits import write_coco_splits

        write_coco_splits(store, categories, out, args.split, info=info)
    else:
        from vfm.formats.coco_dataset import iter_annotations

        n_ann = sum(1 for _ in iter_annotations(store.rows("done"), {}))
    if "yolo" in formats:
        from vfm.formats.yolo import write_yolo

        write_yolo(store, categories, out, source_root, segment=config["task"] != "detect", fractions=args.split,
                   images=args.yolo_images)
    if "labelstudio" in formats:
        from vfm.formats._atomic import atomic_file
        from vfm.formats.labelstudio import labeling_config, write_labelstudio

        names = categories or _tag_names(store)
        xml = labeling_config(names, config["task"], mask_format=args.ls_masks, from_name=args.ls_from_name,
                              to_name=args.ls_to_name)
        with atomic_file(out / "labelstudio_config.xml") as fh:
            fh.write(xml)
        write_labelstudio(store, categories, config["task"], out / "labelstudio.json", mask_format=args.ls_masks,
                          from_name=args.ls_from_name, to_name=args.ls_to_name,
                          image_prefix=args.ls_image_prefix or local_files_prefix(source_root))
        if not args.quiet:
            sys.stdout.write(f"Label Studio labeling config (also in {out / 'labelstudio_config.xml'}):\n{xml}")
            if args.ls_image_prefix is None:
                sys.stdout.write(local_files_help(source_root, out / "labelstudio.json"))
    if "masks" in formats:
        from vfm.formats.masks import write_masks

        write_masks(store, out)
    if "labelme" in formats:
        from vfm.formats.labelme import write_labelme

        write_labelme(store, out, source_root, categories)
    if "voc" in formats:
        from vfm.formats.voc import write_voc

        write_voc(store, categories, out, source_root)
    if "cvat" in formats:
        from vfm.formats.cvat import write_cvat

        write_cvat(store, categories, out / "cvat.xml", shapes=args.cvat_shapes)
    if "semantic" in formats:
        from vfm.formats.semantic_dataset import write_semantic_dataset

        write_semantic_dataset(store, categories, out)
    return n_ann


def local_files_prefix(source_root: str) -> str:
    """Label Studio serves ``/data/local-files/?d=PATH`` from LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, and
    only under a local storage that is a subfolder of it: the root is SOURCE's parent, PATH starts with
    SOURCE's folder name."""
    root = Path(source_root)
    return "/data/local-files/?d=" + (f"{root.name}/" if root.name else "")


def local_files_help(source_root: str, tasks: Path) -> str:
    root = Path(source_root)
    parent = root.parent if root.name else root
    return (f"Label Studio serves these images as local files when started with\n"
            f"  LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={parent} label-studio\n"
            f"and the project has a local storage (Settings > Cloud Storage > Add Source Storage > Local files) with "
            f"absolute path {root} (no sync needed); then import {tasks}.\n")


def _tag_names(store) -> list[str]:
    import json

    names: dict[str, None] = {}
    for row in store.rows("done"):
        for t in json.loads(row[5]).get("tags", []):
            names.setdefault(t["name"], None)
    return sorted(names)
