"""The images/ side of a YOLO dataset: each labeled image placed beside its labels/ file.

Ultralytics finds an image's label by replacing the last ``/images/`` of the image's path with
``/labels/`` and its extension with ``.txt``, so every image must sit under ``images/<split>/`` at the
path that mirrors its label. ``--yolo-images`` says how it gets there:

    link     a hard link where the filesystem allows (no extra disk), else a symlink per file (default)
    symlink  a symlink per file to the image in SOURCE (absolute target)
    copy     a copy (self-contained, costs the disk of the images)

``dataset_name(name)`` is an image's path inside images/<split>/ and labels/<split>/: its relative
path, with a folder named ``images`` renamed ``images_`` (Ultralytics would take that one for the
dataset's images/ folder and look for the labels in the wrong place) and a leading ``/`` dropped
(list files may name images outside the list's folder).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

from vfm.errors import VfmError

IMAGE_MODES = ("link", "symlink", "copy")


def dataset_name(name: str) -> str:
    """'images/a/b.jpg' -> 'images_/a/b.jpg'; '/abs/x.jpg' -> 'abs/x.jpg'."""
    parts = [p for p in PurePosixPath(name).parts if p not in ("/", "", ".")]
    return "/".join("images_" if p == "images" else p for p in parts)


class ImagePlacer:
    """Puts image files into a dataset tree by ``mode``; remembers when hard links are not possible."""

    def __init__(self, mode: str = "link"):
        if mode not in IMAGE_MODES:
            raise VfmError(f"--yolo-images '{mode}' is not one of {', '.join(IMAGE_MODES)}")
        self.mode = mode
        self.hard_links = mode == "link"

    def place(self, src: str | os.PathLike, dst: Path) -> None:
        src = os.path.abspath(src)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not os.path.isfile(src):
            raise VfmError(f"the labeled image '{src}' is no longer there; the YOLO images/ folder needs every labeled "
                           "image: put it back, or start over with --overwrite")
        if os.path.lexists(dst):
            raise VfmError(f"two images of SOURCE map to '{dst.name}' in the YOLO images/ folder (a folder named "
                           "'images' is written as 'images_'); rename one of them")
        try:
            if self.mode == "copy":
                shutil.copyfile(src, dst)
                return
            if self.hard_links:
                try:
                    os.link(src, dst)
                    return
                except OSError:  # another filesystem (EXDEV), or one without hard links
                    self.hard_links = False
            os.symlink(src, dst)
        except OSError as exc:
            raise VfmError(f"cannot put '{src}' into the YOLO images/ folder ({exc.strerror or exc}); "
                           "try --yolo-images copy") from None
