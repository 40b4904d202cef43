"""`vfm tag IMAGE... [--model M] [--vocabulary FILE] [--threshold T] [--top-k K] --json`.

Tags an image with the built-in vocabulary (over 1,000 common objects, scenes and attributes) or
your own (one tag per line; a "prompt: tag" line scores the prompt and reports the tag). Several
images (files, folders, globs) give one document per image. Each tag is scored on its own, in [0, 1] (scores do not sum to 1):

  SigLIP: sigmoid(logit_scale * cos(image, "a photo of {tag}.") + logit_bias), the model's own
          per-pair probability; default threshold 0.1.
  CLIP:   a two-way softmax between the tag prompt and a set of generic captions ("a photo.",
          "an image.", ...): 0.5 means the tag fits the image as well as a content-free caption;
          default threshold 0.5.

Tag text embeddings are computed once per model and vocabulary and cached on disk
($VFM_CACHE_DIR or ~/.cache/vfm). JSON: {"image": {...}, "labels": [{"name", "score"}...],
"activation": "sigmoid", "model": M, "threshold": T}.
"""

from __future__ import annotations

import argparse

from vfm.cli.classify_cmd import emit, fp32_by_default, labels_document
from vfm.cli.common import add_output_options, add_runtime_options
from vfm.cli.images import ImageRun, add_images_argument

DEFAULT_MODEL = "clip-vit-base-32"
DEFAULT_TOP_K = 20


def add_parser(sub) -> None:
    p = sub.add_parser("tag", help="tag an image with a vocabulary of 1,000+ objects, scenes and attributes",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_images_argument(p)
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"CLIP/SigLIP alias, hub id or local directory (default {DEFAULT_MODEL})")
    p.add_argument("--vocabulary", metavar="FILE", default=None,
                   help="tag list, one per line ('#' comments); default: the built-in vocabulary")
    p.add_argument("--classes", default=None,
                   help='tags to score, comma-separated, e.g. "beach, sunset, dog" (with or instead of --vocabulary)')
    p.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="keep tags scoring at least T in 0..1 (default 0.5 for CLIP, 0.1 for SigLIP)")
    p.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, metavar="K",
                   help=f"at most K tags, best first (default {DEFAULT_TOP_K})")
    add_runtime_options(p)
    fp32_by_default(p)
    add_output_options(p, masks=False, coco=False)
    p.set_defaults(func=run)


def run(args) -> int:
    from vfm.tasks.classify import Classifier
    from vfm.tasks.classes import read_vocabulary
    from vfm.tasks.ontology import Ontology
    from vfm.tasks.tag import Tagger, check_threshold, check_top_k

    threshold = check_threshold(args.threshold)
    top_k = check_top_k(args.top_k)
    vocabulary = read_vocabulary(args.vocabulary) if args.vocabulary else None
    if args.classes is not None:
        from vfm.tasks.classes import parse_classes

        vocabulary = parse_classes((vocabulary or []) + parse_classes(args.classes))
    if vocabulary is not None:
        Ontology.parse(vocabulary, what="vocabulary")  # a malformed "prompt: tag" fails before loading
    images = ImageRun(args, "tag")
    tagger = None
    for item, image in images:
        if tagger is None:
            tagger = Tagger(Classifier.load(args.model, device=args.device, precision=args.precision), vocabulary)
        labels = tagger.tag(image, threshold=threshold, top_k=top_k)
        doc = labels_document(image, labels, args.model)
        doc["threshold"] = tagger.default_threshold if threshold is None else threshold
        emit(args, images, item, image, labels, doc, f"{len(labels)} tag(s)")
    return images.exit_code
