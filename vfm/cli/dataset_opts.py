"""`vfm label` options for the shape of the datasets: ``--split`` and ``--yolo-images``.

Neither changes a result: they may differ between runs over the same OUT (the datasets are rewritten).
"""

from __future__ import annotations

import argparse


def split_arg(text: str) -> dict[str, float]:
    """argparse type of --split: a bad value is one line and exit 2."""
    from vfm.formats.split import parse_split

    try:
        return parse_split(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_dataset_options(p: argparse.ArgumentParser) -> None:
    from vfm.formats.yolo_images import IMAGE_MODES

    g = p.add_argument_group("dataset splits and YOLO images")
    g.add_argument("--split", type=split_arg, default=None, metavar="train=F,val=F[,test=F]",
                   help="split the images (stable per image, by a hash of its relative path) for every format: "
                        "YOLO images/<split>, labels/<split>; COCO coco_<split>.json too (default: all in train)")
    g.add_argument("--yolo-images", choices=IMAGE_MODES, default="link",
                   help="how images get into yolo/<task>/images/: link (hard link, else symlink; default), "
                        "symlink, or copy")
