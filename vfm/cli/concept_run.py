"""`vfm segment IMAGE... --model sam3 --text "yellow school bus" [--exemplar X0,Y0,X1,Y1[,+|-]]`: every
instance of a concept (SAM 3).

One COCO-style document per image (RLE mask, box, score per instance; the category is the text, or
``visual`` for exemplars alone); ``--out DIR`` writes mask PNGs, overlay.png and result.json as the
other segment modes do. Exemplar boxes are pixels of one image, so with ``--exemplar`` one image is
taken; a text alone may go to many (files, folders, globs).
"""

from __future__ import annotations

from vfm.cli.common import parse_floats
from vfm.cli.images import ImageRun, emit_instances
from vfm.errors import PromptError

DEFAULT_CONCEPT_MODEL = "sam3"


def parse_exemplar(text: str) -> tuple[list[float], bool]:
    """``X0,Y0,X1,Y1`` or ``X0,Y0,X1,Y1,+`` (positive) / ``...,-`` (negative)."""
    parts = [p.strip() for p in text.split(",")]
    positive = True
    if len(parts) == 5 and parts[4] in ("+", "-", "1", "0", "pos", "neg"):
        positive = parts[4] in ("+", "1", "pos")
        parts = parts[:4]
    return parse_floats(",".join(parts), (4,), "exemplar", "X0,Y0,X1,Y1[,+|-]"), positive


def run_concept(args) -> int:
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.concept import ConceptSegmenter, _check_text

    for flag, v in (("--point", args.point), ("--box", args.box), ("--scribble", args.scribble),
                    ("--mask-input", args.mask_input), ("--multimask", args.multimask), ("--classes", args.classes),
                    ("--overlap-threshold", args.overlap_threshold)):
        if v:
            raise PromptError(f"{flag} does not go with --text/--exemplar (a concept prompt); drop it, or segment with "
                              "points and boxes without --text")
    text = _check_text(args.text)
    exemplars = [parse_exemplar(e) for e in args.exemplar]
    if exemplars and len(args.images) != 1:
        raise PromptError(f"--exemplar boxes are pixels of one image ({len(args.images)} given); give one image, "
                          "or a --text alone for many")
    for name in ("threshold", "mask_threshold"):
        v = getattr(args, name)
        if v is not None and not 0.0 <= v <= 1.0:
            raise PromptError(f"--{name.replace('_', '-')} {v:g} is outside 0..1")
    name = args.model or DEFAULT_CONCEPT_MODEL
    images = ImageRun(args, "segment")
    model = None
    for item, image in images:
        if model is None:
            model = ConceptSegmenter.load(name, device=args.device, precision=args.precision)
        result = model.segment(image, text=text, exemplars=exemplars, threshold=args.threshold,
                               mask_threshold=args.mask_threshold)
        doc = instances_to_document(result, categories=[text or "visual"], file_name=item.name)
        emit_instances(args, images, item, image, result, doc, noun="instance(s) in", suffix=f" ({name})")
    return images.exit_code
