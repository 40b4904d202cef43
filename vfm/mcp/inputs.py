"""An ``image`` argument as the agent gives it -> a decoded image.

Three spellings:

- a path: a file under one of the server's roots (see :mod:`vfm.mcp.roots`);
- a data URL: ``data:image/png;base64,iVBORw0...``;
- raw base64 of the file's bytes (PNG, JPEG, WebP, ...), at least 64 characters, whitespace allowed.

A string that names an existing file under a root is always that file. Decoding is vfm's own
(:func:`vfm.io.image.load_image`): EXIF orientation applied, the pixel limit enforced, a corrupt
file one sentence.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from pathlib import Path

from vfm.errors import ImageError, PromptError, VfmError
from vfm.io.image import LoadedImage, load_image
from vfm.mcp.roots import Roots

_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[\w-]+=[\w.-]+)*;base64,", re.IGNORECASE)

#: Raw base64 shorter than this is taken for a path (no image file encodes to fewer characters).
MIN_BASE64_CHARS = 64
#: ... and longer than this is never taken for a path.
PATH_MAX = 4096


def _base64_bytes(text: str, what: str) -> bytes:
    compact = re.sub(r"\s+", "", text)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(f"{what} is not valid base64 (its length or characters are wrong); send the file's bytes "
                         "base64-encoded, or a data:image/...;base64, URL") from None


def looks_like_base64(text: str) -> bool:
    compact = re.sub(r"\s+", "", text)
    return len(compact) >= MIN_BASE64_CHARS and len(compact) % 4 == 0 and bool(_BASE64.match(compact))


def read_image(value: str, roots: Roots, *, max_pixels: int | None = None, what: str = "image") -> LoadedImage:
    """Decode the ``image`` argument (a path under ``roots``, a data URL or raw base64).

    Raises:
        vfm.mcp.roots.OutsideRootsError: a path outside every root.
        ImageError: missing file, bad base64, or bytes that are not a readable image.
    """
    text = value.strip()
    match = _DATA_URL.match(text)
    if match:
        data = _base64_bytes(text[match.end():], f"{what} (a data URL)")
        return _decode(data, what, "data URL", max_pixels)
    if text.lower().startswith("data:"):
        raise ImageError(f"{what} is a data URL without ';base64,'; send data:image/png;base64,<base64 of the file>")
    if looks_like_base64(text):
        if len(text) > PATH_MAX:
            return _decode(_base64_bytes(text, what), what, "base64 data", max_pixels)
        try:
            path = roots.resolve(text, what)
        except VfmError:  # not a file under a root: it is base64
            return _decode(_base64_bytes(text, what), what, "base64 data", max_pixels)
        return _open(path, what, max_pixels)
    return _open(roots.resolve(text, what), what, max_pixels)


def _decode(data: bytes, what: str, kind: str, max_pixels: int | None = None) -> LoadedImage:
    if not data:
        raise ImageError(f"{what} ({kind}) is empty; send the image file's bytes")
    try:
        image = load_image(data, max_pixels=max_pixels, name=kind)
    except ImageError as exc:
        raise ImageError(f"{what}: {exc}") from None
    return dataclasses.replace(image, name="")  # no file name for the document


def _open(path: Path, what: str, max_pixels: int | None) -> LoadedImage:
    if path.is_dir():
        raise ImageError(f"{what} '{path}' is a folder; give one image file")
    return load_image(path, max_pixels=max_pixels, name=path.name)


def video_path(value: str, roots: Roots, what: str = "video") -> Path:
    """A video file or a folder of frames under ``roots`` (every frame in it inside a root too)."""
    text = value.strip()
    if any(ch in text for ch in "*?["):
        raise PromptError(f"{what} '{text}' is a glob; give a video file or a folder of frames")
    path = roots.resolve(text, what)
    if path.is_dir():
        roots.check_tree(path, what)
    return path
