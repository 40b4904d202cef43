"""`vfm segment IMAGE... --task instance`: every object of a closed-set instance checkpoint.

One COCO-style document per image (an RLE mask, box, score and class per instance; ``categories``
are the model's classes, or the ``--classes`` kept); ``--out DIR`` writes mask PNGs, overlay.png
and result.json, as prompted segmentation does.
"""

from __future__ import annotations

from vfm.cli.images import ImageRun, emit_instances
from vfm.errors import PromptError


def run_instance(args, default_model: str) -> int:
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.closed_classes import keep_classes, select_classes
    from vfm.tasks.semantic import SemanticModel

    for flag, v in (("--point", args.point), ("--box", args.box), ("--scribble", args.scribble),
                    ("--mask-input", args.mask_input), ("--multimask", args.multimask)):
        if v:
            raise PromptError(f"--task instance takes no prompts ({flag}); drop it, or use --task prompt with a SAM model")
    for name in ("threshold", "mask_threshold", "overlap_threshold"):
        v = getattr(args, name)
        if v is not None and not 0.0 <= v <= 1.0:
            raise PromptError(f"--{name.replace('_', '-')} {v:g} is outside 0..1")
    if args.classes is not None and not args.classes.strip(" ,\n"):
        raise PromptError('--classes is empty; give class names of the model, e.g. --classes "person, car"')
    name = args.model or default_model
    images = ImageRun(args, "segment")
    model = selected = None
    for item, image in images:
        if model is None:
            precision = "fp32" if args.precision == "auto" else args.precision  # transformers' numbers by default
            model = SemanticModel.load(name, device=args.device, precision=precision)
            selected = select_classes(model.class_names, args.classes, name, task="segments")
        result = keep_classes(model.instances(image, threshold=args.threshold, mask_threshold=args.mask_threshold,
                                              overlap_mask_area_threshold=args.overlap_threshold), selected)
        categories = list(selected[0].classes) if selected else model.class_names
        doc = instances_to_document(result, categories=categories, file_name=item.name)
        emit_instances(args, images, item, image, result, doc, noun="instance(s) in", suffix=f" ({name})")
    return images.exit_code
