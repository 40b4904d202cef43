"""Several images per command: ``IMAGE...`` may be files, folders (searched recursively) or globs.

    vfm detect a.jpg b.png photos/ 'shots/**/*.jpg' --classes cat --json > docs.jsonl

One image gives what it always did: one JSON document on stdout with ``--json``, its files in
``--out DIR``. Several give one document per image, one per line (JSON Lines) in argument order
(a folder's images sorted by path), each naming its image in ``image.file_name``; ``--out DIR``
then gets one folder per image, ``DIR/<file_name without its extension>/`` (the extension is kept
where two images would share a folder). ``file_name`` is a file's own name, or for a folder or glob
the image's path relative to it, so ``vfm eval`` can match it with a ground-truth COCO file.

An image that cannot be read is one line on stderr and is skipped; the others are still done, and
the exit code is 1. The model is loaded at the first readable image, so a bad single image fails
in well under a second.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from vfm.errors import ImageError, PromptError, VfmError


@dataclass(frozen=True)
class ImageInput:
    """One image named on the command line (directly or through a folder or glob)."""

    path: str  # what is opened
    name: str  # image.file_name of its document
    folder: str  # its folder under --out when there are several images


def add_images_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files (JPEG, PNG, WebP, TIFF, BMP, GIF), folders (searched recursively) or globs "
                        "('shots/*.jpg'); several give one JSON document per image (JSON Lines)")


def expand_images(arguments: list[str]) -> list[ImageInput]:
    """Files as given, folders and globs expanded (sorted); PromptError for a folder or glob with no image."""
    from vfm.engine.source import open_source

    found: list[tuple[str, str]] = []
    for arg in arguments:
        if any(ch in arg for ch in "*?[") or os.path.isdir(arg):
            items = list(open_source(arg))
            if not items:
                raise PromptError(f"'{arg}' holds no image files (JPEG, PNG, WebP, TIFF, BMP, GIF)")
            found += [(path, name) for name, path in items]
        else:  # a file, or a missing one: reading it reports what is wrong
            found.append((arg, Path(arg).name or arg))
    stems = [str(PurePosixPath(name).with_suffix("")) for _, name in found]
    shared = {s for s in stems if stems.count(s) > 1}
    return [ImageInput(path, name, name if stem in shared else stem) for (path, name), stem in zip(found, stems)]


class ImageRun:
    """Iterate the images of a command, reporting unreadable ones; ``exit_code`` at the end.

    ``for item, image in run:`` yields each readable image (``vfm.io.image.LoadedImage``, named by
    ``item.name``); ``run.out_dir(item)`` is where its files go, ``run.several`` says whether the
    command got more than one image.
    """

    def __init__(self, args, command: str):
        self.args, self.command = args, command
        self.items = expand_images(args.images)
        self.several = len(self.items) > 1
        self.failed = 0
        self.out_root = None
        if getattr(args, "out", None):  # an unusable --out fails before any model is loaded
            from vfm.cli.common import out_dir

            self.out_root = out_dir(args.out)

    def __iter__(self) -> Iterator[tuple[ImageInput, object]]:
        from vfm.io.image import load_image

        for item in self.items:
            try:
                if not os.path.exists(item.path):
                    raise ImageError(f"image file '{item.path}' does not exist")
                image = load_image(item.path, max_pixels=self.args.max_pixels, name=item.name)
            except ImageError as exc:
                if not self.several:
                    raise
                self.report(exc)
                continue
            yield item, image

    def report(self, exc: VfmError) -> None:
        """One line on stderr for an image that could not be done; the run goes on."""
        self.failed += 1
        sys.stderr.write(f"vfm {self.command}: error: {exc}\n")
        sys.stderr.flush()

    def out_dir(self, item: ImageInput) -> Path | None:
        if self.out_root is None:
            return None
        if not self.several:
            return self.out_root
        from vfm.cli.common import out_dir

        return out_dir(str(self.out_root / item.folder))

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def emit_instances(args, images: ImageRun, item: ImageInput, image, result, doc: dict, *, draw_boxes: bool = True,
                   noun: str = "mask(s) for", suffix: str = "") -> None:
    """What every instance command does with one image's result: --out files (mask PNGs, overlay.png,
    result.json), the --json document, or a summary line per instance."""
    from vfm.cli.common import print_json, write_json

    d = images.out_dir(item)
    if d is not None:
        from vfm.formats.png import draw_overlay, write_mask_pngs

        write_mask_pngs(result, d)
        draw_overlay(image.pixels, result, draw_boxes=draw_boxes).save(d / "overlay.png")
        write_json(d / "result.json", doc)
    if args.json:
        print_json(doc)
    elif not args.quiet:
        print(f"{len(result)} {noun} {image.width}x{image.height} image '{item.path}'{suffix}")
        for i, ann in enumerate(doc["annotations"]):
            x, y, w, h = ann["bbox"]
            print(f"  [{i}] {ann['category_name']} score={ann['score']:.3f} area={int(ann['area'])} "
                  f"bbox(xywh)=({x:g}, {y:g}, {w:g}, {h:g})")
        if d is not None:
            print(f"wrote {len(result)} mask PNG(s), overlay.png and result.json to {d}")
