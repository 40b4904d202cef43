"""Image input: every source a user has, decoded to an RGB ``uint8`` array in display orientation.

All coordinates in vfm (points, boxes, masks) are pixels of the array returned here: EXIF
orientation is applied first, so what a person sees in an image viewer is what vfm segments.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vfm.errors import ImageError, ImageTooLargeError

#: Default pixel limit (width x height) against decompression bombs; ``VFM_MAX_PIXELS`` overrides.
DEFAULT_MAX_PIXELS = 100_000_000

#: Extensions treated as images when scanning folders.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".jpe", ".jfif"}
)

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, io.IOBase, Image.Image, np.ndarray]


def default_max_pixels() -> int:
    """The pixel limit in force: ``VFM_MAX_PIXELS`` if set, else :data:`DEFAULT_MAX_PIXELS`."""
    value = os.environ.get("VFM_MAX_PIXELS")
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError as exc:
        raise ImageError(f"VFM_MAX_PIXELS must be an integer number of pixels, got {value!r}") from exc
    if limit <= 0:
        raise ImageError(f"VFM_MAX_PIXELS must be positive, got {limit}")
    return limit


@dataclass(frozen=True)
class LoadedImage:
    """An decoded image: ``pixels`` is HxWx3 RGB uint8 in display orientation."""

    pixels: np.ndarray
    name: str
    original_mode: str

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def load_image(source: ImageSource, *, max_pixels: int | None = None, name: str | None = None) -> LoadedImage:
    """Decode ``source`` into an RGB uint8 array (HxWx3) in display orientation.

    ``source`` may be a path, raw bytes, a binary file object, a PIL image or a numpy array
    (HxW, HxWx1, HxWx3 or HxWx4; uint8, uint16 or float). JPEG, PNG, WebP, TIFF, BMP and GIF (first
    frame) are read; EXIF orientation is applied; modes L, LA, P, RGBA, CMYK, I;16, I and F are
    converted to RGB (16-bit scaled by 1/257, alpha composited over white, float scaled from [0, 1]
    or min-max stretched). Images with more than ``max_pixels`` pixels are refused before decoding.

    Raises:
        ImageError: the source is missing, empty, not an image, corrupt or truncated.
        ImageTooLargeError: the image exceeds the pixel limit.
    """
    limit = default_max_pixels() if max_pixels is None else int(max_pixels)
    if isinstance(source, np.ndarray):
        pixels = array_to_rgb(source, name=name or "array")
        _check_pixels(pixels.shape[1], pixels.shape[0], limit, name or "array")
        return LoadedImage(pixels=pixels, name=name or "array", original_mode=str(source.dtype))
    if isinstance(source, Image.Image):
        label = name or "PIL image"
        _check_pixels(source.width, source.height, limit, label)
        return _decode(source, label)

    label, stream = _open_stream(source, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                image = Image.open(stream)
            except Image.DecompressionBombError as exc:
                raise ImageTooLargeError(
                    f"image '{label}' is too large to decode safely ({exc}); "
                    "raise the limit with --max-pixels / VFM_MAX_PIXELS if you trust it"
                ) from exc
            except UnidentifiedImageError as exc:
                raise ImageError(
                    f"'{label}' is not a readable image (supported: JPEG, PNG, WebP, TIFF, BMP, GIF)"
                ) from exc
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                reason = str(exc) or type(exc).__name__
                raise ImageError(f"image '{label}' is corrupt or truncated ({reason}); re-export or remove it") from exc
            _check_pixels(image.width, image.height, limit, label)
            return _decode(image, label)
    finally:
        stream.close()


def _open_stream(source: ImageSource, name: str | None) -> tuple[str, io.IOBase]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or "uploaded bytes"
        if not data:
            raise ImageError(f"'{label}' is empty (0 bytes); pass a non-empty image file")
        return label, io.BytesIO(data)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        if not path.exists():
            raise ImageError(f"image file '{label}' does not exist")
        if path.is_dir():
            raise ImageError(f"'{label}' is a directory, not an image file")
        try:
            if path.stat().st_size == 0:
                raise ImageError(f"image file '{label}' is empty (0 bytes)")
            return label, open(path, "rb")
        except PermissionError as exc:
            raise ImageError(f"image file '{label}' cannot be read: permission denied") from exc
    if hasattr(source, "read"):
        data = source.read()
        return _open_stream(data, name or getattr(source, "name", None) or "stream")
    raise ImageError(
        f"cannot read an image from a {type(source).__name__}; pass a path, bytes, a PIL image or an array"
    )


def _check_pixels(width: int, height: int, limit: int, label: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageError(f"image '{label}' has no pixels ({width}x{height})")
    if width * height > limit:
        raise ImageTooLargeError(
            f"image '{label}' has {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{limit:,}; raise it with --max-pixels / VFM_MAX_PIXELS if you trust the file"
        )


def _decode(image: Image.Image, label: str) -> LoadedImage:
    mode = image.mode
    try:
        if getattr(image, "is_animated", False):
            image.seek(0)
        image.load()
        image = ImageOps.exif_transpose(image)
        pixels = pil_to_rgb(image)
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc) or type(exc).__name__
        raise ImageError(f"image '{label}' is corrupt or truncated ({reason}); re-export or remove it") from exc
    return LoadedImage(pixels=pixels, name=label, original_mode=mode)


def pil_to_rgb(image: Image.Image) -> np.ndarray:
    """Convert a decoded PIL image of any common mode to an RGB uint8 array (HxWx3)."""
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8).copy()
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return array_to_rgb(np.asarray(image), name=mode)
    if mode == "F":
        return array_to_rgb(np.asarray(image, dtype=np.float32), name=mode)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "La", "PA"):
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    if image.mode in ("RGBA", "RGBa"):
        return _composite_on_white(np.asarray(image.convert("RGBA")))
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def array_to_rgb(array: np.ndarray, *, name: str = "array") -> np.ndarray:
    """Convert a numpy image (HxW, HxWx1/3/4; uint8, uint16, int or float) to RGB uint8."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(f"{name}: expected an HxW, HxWx3 or HxWx4 image array, got shape {a.shape}")
    if a.size == 0:
        raise ImageError(f"{name}: image array is empty (shape {a.shape})")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint8:
        pass
    elif a.dtype == np.uint16 or (np.issubdtype(a.dtype, np.integer) and a.min() >= 0 and a.max() <= 65535):
        # 16-bit data: scale the full range onto 8 bits (65535 -> 255), never clip.
        a = np.round(a.astype(np.float64) / 257.0).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating):
        f = a.astype(np.float64)
        finite = np.isfinite(f)
        if not finite.any():
            raise ImageError(f"{name}: image has no finite pixel values")
        f = np.where(finite, f, 0.0)
        lo, hi = float(f.min()), float(f.max())
        if np.issubdtype(a.dtype, np.floating) and lo >= 0.0 and hi <= 1.0:
            f = f * 255.0
        elif hi > lo:
            f = (f - lo) * (255.0 / (hi - lo))
        else:
            f = np.zeros_like(f)
        a = np.clip(np.round(f), 0, 255).astype(np.uint8)
    else:
        raise ImageError(f"{name}: unsupported pixel type {a.dtype}")
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2)
    if a.shape[2] == 4:
        return _composite_on_white(a)
    return np.ascontiguousarray(a)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite an RGBA uint8 array over a white background (transparent areas become white)."""
    rgb = rgba[:, :, :3].astype(np.float32)
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    out = rgb * alpha + 255.0 * (1.0 - alpha)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def is_image_path(path: str | os.PathLike) -> bool:
    """True when the file name has an image extension vfm reads."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS
