"""CLI glue that gives every mask a class name: options for `vfm everything` (and any mask command).

    add_label_options(parser)                      # --classes, --vocabulary, --classifier, --semantic-model
    instances, categories = apply_labels(args, image, instances)

Without --classes and --vocabulary nothing happens (``categories`` is None). Otherwise each mask's
masked crop is scored with the classifier (all crops in one batched pass), optionally combined with a
semantic segmentation model's per-mask vote; see vfm/tasks/label_masks.py for the rule.
``categories`` is the class list (the class side of ``prompt: class`` entries), to pass to
``instances_to_document(..., categories=...)``.
"""

from __future__ import annotations

import argparse

from vfm.errors import PromptError

DEFAULT_CLASSIFIER = "clip-vit-base-32"


def add_label_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("labels for masks (Semantic Segment Anything)")
    g.add_argument("--classes", default=None,
                   help='name each mask with one of these classes, e.g. "person, dog, grass, sky"; '
                        '"prompt: class" scores prompt and names the mask class')
    g.add_argument("--vocabulary", metavar="FILE", default=None,
                   help="class names, one per line ('#' comments), instead of or in addition to --classes")
    g.add_argument("--classifier", default=DEFAULT_CLASSIFIER,
                   help=f"CLIP/SigLIP model that scores the masked crops (default {DEFAULT_CLASSIFIER})")
    g.add_argument("--semantic-model", default=None, metavar="M",
                   help="optional closed-set semantic segmenter that votes too (mask2former-ade, oneformer-ade, ...)")


def label_classes(args) -> list[str] | None:
    """The class list from --classes and --vocabulary (in that order, duplicates dropped), or None."""
    from vfm.tasks.classes import parse_classes, read_vocabulary

    classes = getattr(args, "classes", None)
    vocabulary = getattr(args, "vocabulary", None)
    if classes is None and not vocabulary:
        return None
    names: list[str] = []
    if classes is not None:
        names += parse_classes(classes)
    if vocabulary:
        names += read_vocabulary(vocabulary)
    return parse_classes(names)


def apply_labels(args, image, instances):
    """Label ``instances`` (masks of ``image``, a LoadedImage) when --classes/--vocabulary was given.

    Returns ``(instances, categories)``; ``categories`` is None when labeling was not asked for.
    """
    classes = label_classes(args)
    if classes is None:
        if getattr(args, "semantic_model", None):
            raise PromptError("--semantic-model votes on labels; give --classes or --vocabulary too")
        return instances, None
    from vfm.tasks.label_masks import MaskLabeler

    from vfm.tasks.ontology import Ontology

    categories = list(Ontology.parse(classes).classes)
    labeler = getattr(args, "_mask_labeler", None)  # loaded once per command, reused for every image
    if labeler is None:
        labeler = MaskLabeler.load(
            getattr(args, "classifier", None) or DEFAULT_CLASSIFIER,
            semantic=getattr(args, "semantic_model", None),
            device=getattr(args, "device", None),
        )
        args._mask_labeler = labeler
    return labeler.label(image, instances, classes), categories
