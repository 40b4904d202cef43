"""Video prompts: clicks, boxes and masks, each on a source frame for an object id.

From the CLI: ``--point F,X,Y[,LABEL]`` (label 1 = on the object, 0 = not on it), ``--box
F,X0,Y0,X1,Y1`` and ``--mask F,PNG`` prompt object 1; ``--prompts FILE.json`` is a list of
``{"frame", "object", "points", "labels", "box", "mask"}`` for several objects and for corrections
on later frames. Coordinates are pixels of the frame as displayed (rotation applied). All prompts on
one frame for one object form one prompt (points with or without a box, or a mask alone); a second
entry for the same frame and object is an error, not a silent overwrite.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vfm.errors import ImageError, PromptError

#: The most objects one run tracks (a DAVIS palette PNG holds ids 1..255; 16-bit PNGs beyond).
MAX_OBJECT_ID = 65535


@dataclass
class ObjectPrompt:
    """What the user said about one object on one frame."""

    frame: int
    object: int
    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = None  # HxW bool
    mask_source: str | None = None  # a path, or "mask" when given as an array

    def describe(self) -> str:
        return f"object {self.object} on frame {self.frame}"


def _numbers(text: str, counts: tuple[int, ...], flag: str, example: str) -> list[float]:
    try:
        values = [float(t) for t in text.replace(" ", "").split(",")]
    except ValueError:
        raise PromptError(f"{flag} '{text}' is not a list of numbers; expected {example}") from None
    if len(values) not in counts:
        raise PromptError(f"{flag} '{text}' has {len(values)} numbers; expected {example}")
    if not all(math.isfinite(v) for v in values):
        raise PromptError(f"{flag} '{text}' has a non-finite number; expected {example}")
    return values


def _frame_number(value, flag: str) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or value < 0:
        raise PromptError(f"{flag}: frame {value!r} must be a whole number >= 0 (frames are numbered from 0)")
    return int(value)


def parse_cli_prompts(points: list[str] | None = None, boxes: list[str] | None = None,
                      masks: list[str] | None = None, prompts_file: str | None = None) -> list[ObjectPrompt]:
    """The prompts of ``--point``, ``--box``, ``--mask`` (object 1) and ``--prompts FILE``."""
    merged: dict[tuple[int, int], ObjectPrompt] = {}
    for text in points or []:
        v = _numbers(text, (3, 4), "--point", "F,X,Y or F,X,Y,LABEL (label 1 on the object, 0 off it)")
        frame = _frame_number(v[0], "--point")
        label = 1 if len(v) == 3 else v[3]
        if label not in (0, 1):
            raise PromptError(f"--point '{text}': label {label:g} must be 1 (on the object) or 0 (not on it)")
        p = merged.setdefault((frame, 1), ObjectPrompt(frame, 1))
        p.points.append((v[1], v[2]))
        p.labels.append(int(label))
    for text in boxes or []:
        v = _numbers(text, (5,), "--box", "F,X0,Y0,X1,Y1")
        frame = _frame_number(v[0], "--box")
        p = merged.setdefault((frame, 1), ObjectPrompt(frame, 1))
        if p.box is not None:
            raise PromptError(f"--box: two boxes for object 1 on frame {frame}; give one box per frame "
                              "(use --prompts FILE.json for several objects)")
        p.box = (v[1], v[2], v[3], v[4])
    for text in masks or []:
        frame_text, sep, png = text.partition(",")
        if not sep or not png:
            raise PromptError(f"--mask '{text}' must be F,PNG (a frame number and a mask image)")
        try:
            frame = _frame_number(float(frame_text), "--mask")
        except ValueError:
            raise PromptError(f"--mask '{text}': '{frame_text}' is not a frame number; expected F,PNG") from None
        p = merged.setdefault((frame, 1), ObjectPrompt(frame, 1))
        if p.mask_source is not None:
            raise PromptError(f"--mask: two masks for object 1 on frame {frame}; give one")
        p.mask_source = png
    prompts = list(merged.values())
    if prompts_file is not None:
        for entry in read_prompts_file(prompts_file):
            key = (entry.frame, entry.object)
            if key in merged:
                raise PromptError(f"{entry.describe()} is prompted twice (on the command line and in '{prompts_file}'); "
                                  "merge the two into one entry")
            merged[key] = entry
            prompts.append(entry)
    for p in prompts:
        _check_kinds(p)
    return sorted(prompts, key=lambda p: (p.frame, p.object))


def read_prompts_file(path: str) -> list[ObjectPrompt]:
    """A ``--prompts`` JSON file: a list of ``{"frame", "object", "points", "labels", "box", "mask"}``."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PromptError(f"--prompts '{path}' does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PromptError(f"--prompts '{path}' is not JSON ({exc}); expected a list of "
                          '{"frame", "object", "points", "labels", "box", "mask"}') from None
    if isinstance(doc, dict) and isinstance(doc.get("prompts"), list):
        doc = doc["prompts"]
    if not isinstance(doc, list):
        raise PromptError(f"--prompts '{path}' must hold a JSON list of prompts, got {type(doc).__name__}")
    if not doc:
        raise PromptError(f"--prompts '{path}' is an empty list; give at least one prompt")
    return prompt_entries(doc, f"--prompts '{path}'", base=Path(path).parent)


def prompt_entries(doc: list, where_all: str, *, base: Path | None = None, max_points: int | None = None) -> list[ObjectPrompt]:
    """Prompts from a list of ``{"frame", "object", "points", "labels", "box", "mask"}``.

    ``mask`` is a COCO RLE (``{"size", "counts"}``) or, when ``base`` is given (a file on disk), the
    path of a mask image relative to it. ``max_points`` caps the points of one entry (the server's cap).
    """
    seen: set[tuple[int, int]] = set()
    out = []
    for i, entry in enumerate(doc):
        where = f"{where_all} entry {i}"
        if not isinstance(entry, dict):
            raise PromptError(f"{where} is not an object")
        unknown = set(entry) - {"frame", "object", "points", "labels", "box", "mask"}
        if unknown:
            raise PromptError(f"{where} has unknown key(s) {sorted(unknown)}; "
                              "allowed: frame, object, points, labels, box, mask")
        if "frame" not in entry or not _is_number(entry["frame"]):
            raise PromptError(f"{where} needs \"frame\": a frame number")
        frame = _frame_number(entry["frame"], where)
        obj = entry.get("object", 1)
        if isinstance(obj, bool) or not isinstance(obj, int) or not 1 <= obj <= MAX_OBJECT_ID:
            raise PromptError(f"{where}: \"object\" {obj!r} must be a whole number from 1 to {MAX_OBJECT_ID}")
        if (frame, obj) in seen:
            raise PromptError(f"{where}: object {obj} is prompted twice on frame {frame}; "
                              "put all its points, its box or its mask in one entry")
        seen.add((frame, obj))
        p = ObjectPrompt(frame, obj)
        points = entry.get("points") or []
        if not isinstance(points, list) or not all(_is_pair(q) for q in points):
            raise PromptError(f"{where}: \"points\" must be a list of [x, y] pairs")
        if max_points is not None and len(points) > max_points:
            raise PromptError(f"{where} has {len(points)} points; the most one prompt may have is {max_points}")
        p.points = [(float(q[0]), float(q[1])) for q in points]
        labels = entry.get("labels")
        if labels is None:
            labels = [1] * len(points)
        if not isinstance(labels, list) or len(labels) != len(points) or any(v not in (0, 1) or isinstance(v, bool) for v in labels):
            raise PromptError(f"{where}: \"labels\" must be one 1 (on the object) or 0 (not on it) per point")
        p.labels = [int(v) for v in labels]
        box = entry.get("box")
        if box is not None:
            if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
                raise PromptError(f"{where}: \"box\" must be [x0, y0, x1, y1]")
            p.box = tuple(float(v) for v in box)
        mask = entry.get("mask")
        if mask is not None:
            if isinstance(mask, dict):
                p.mask = _rle_mask(mask, where)
                p.mask_source = "rle"
            elif isinstance(mask, str) and base is not None:
                p.mask_source = str((base / mask) if not Path(mask).is_absolute() else mask)
            else:
                raise PromptError(f"{where}: \"mask\" must be a COCO RLE {{\"size\": [h, w], \"counts\": ...}}"
                                  + (" or the path of a mask image" if base is not None else ""))
        if not p.points and p.box is None and p.mask_source is None:
            raise PromptError(f"{where} has no points, box or mask")
        _check_kinds(p)
        out.append(p)
    return out


def _rle_mask(rle: dict, where: str) -> np.ndarray:
    from vfm.results.rle import decode_rle

    size = rle.get("size")
    counts = rle.get("counts")
    if (set(rle) != {"size", "counts"} or not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 16384 for v in size)
            or not isinstance(counts, (str, list))):
        raise PromptError(f"{where}: \"mask\" must be a COCO RLE {{\"size\": [h, w], \"counts\": ...}} (sides up to 16384)")
    if isinstance(counts, list) and (sum(c for c in counts if isinstance(c, int)) != size[0] * size[1]
                                     or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)):
        raise PromptError(f"{where}: \"mask\" RLE counts do not add up to its size {size}")
    try:
        return decode_rle(rle)
    except Exception as exc:  # noqa: BLE001 - pycocotools raises several types for bad strings
        raise PromptError(f"{where}: \"mask\" is not a valid COCO RLE ({exc})") from None


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_pair(q) -> bool:
    return isinstance(q, (list, tuple)) and len(q) == 2 and all(_is_number(v) for v in q)


def _check_kinds(p: ObjectPrompt) -> None:
    if p.mask_source is not None and (p.points or p.box is not None):
        raise PromptError(f"{p.describe()} has a mask and points or a box; a mask prompt stands alone "
                          "(give the clicks on another frame)")
    if p.points and not any(p.labels) and p.box is None and p.mask_source is None:
        raise PromptError(f"{p.describe()} has only negative clicks (label 0); add a click on the object or a box")


def check_prompts(prompts: list[ObjectPrompt], *, width: int, height: int, video) -> None:
    """Every prompt on a frame the run reads and inside the frame; masks loaded and sized.

    ``video`` is the :class:`~vfm.video.reader.VideoSource` (its frame count and --start/--stride).
    """
    last = video.frame_count - 1 if video.frame_count else None
    for p in prompts:
        if last is not None and p.frame > last:
            raise PromptError(f"{p.describe()} is past the end of the video (its last frame is {last})")
        if not video.selected(p.frame):
            raise PromptError(f"{p.describe()} is not a frame this run reads (--start {video.start}, "
                              f"--end {video.end}, --stride {video.stride}); move the prompt to one it reads")
        for x, y in p.points:
            if not (0 <= x <= width and 0 <= y <= height):
                raise PromptError(f"{p.describe()}: point ({x:g}, {y:g}) is outside the {width}x{height} frame")
        if p.box is not None:
            x0, y0, x1, y1 = p.box
            if not (x1 > x0 and y1 > y0):
                raise PromptError(f"{p.describe()}: box {list(p.box)} must have x1 > x0 and y1 > y0")
            if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height or min(x0, y0) < -0.5 or x1 > width + 0.5 or y1 > height + 0.5:
                raise PromptError(f"{p.describe()}: box {list(p.box)} is outside the {width}x{height} frame")
        if p.mask_source is not None and p.mask is None:
            p.mask = load_mask(p.mask_source, width, height, p.describe())
        if p.mask is not None:
            if p.mask.shape != (height, width):
                raise PromptError(f"{p.describe()}: mask is {p.mask.shape[1]}x{p.mask.shape[0]}, the frame is {width}x{height}")
            if not p.mask.any():
                raise PromptError(f"{p.describe()}: mask is empty; mark the object with non-zero pixels")


def load_mask(path: str, width: int, height: int, what: str) -> np.ndarray:
    """A mask image (any mode; non-zero = object) as HxW bool, sized like the frame."""
    from PIL import Image

    from vfm.io.image import load_image

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("P", "L", "1", "I", "I;16", "F"):
                arr = np.asarray(im)
                mask = arr != 0
            else:
                mask = load_image(path).pixels.any(axis=2)
    except FileNotFoundError:
        raise PromptError(f"{what}: mask '{path}' does not exist") from None
    except (OSError, ImageError) as exc:
        raise PromptError(f"{what}: mask '{path}' cannot be read as an image ({exc})") from None
    if mask.shape != (height, width):
        raise PromptError(f"{what}: mask '{path}' is {mask.shape[1]}x{mask.shape[0]}, the frame is {width}x{height}")
    return mask
