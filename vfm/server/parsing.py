"""Request bodies → validated Python values; every problem is a one-sentence VfmError (400 or 422)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
from fastapi import Request

from vfm.errors import PromptError, VfmError


class BadRequestError(VfmError):
    """The request body is not valid JSON (or not a JSON object)."""

    http_status = 400


class PayloadTooLargeError(VfmError):
    """A request body over the configured size."""

    http_status = 413


_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text`` (strings skipped), without parsing it."""
    depth = deepest = 0
    for m in _BRACKETS.finditer(_STRINGS.sub("", text)):
        if m.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


async def read_json(request: Request, *, optional: bool = False, limit: int | None = None) -> dict[str, Any]:
    """The JSON object of the body, read up to the server's byte cap (or ``limit``) and checked for nesting first."""
    config = request.app.state.config
    limit = config.max_json_bytes if limit is None else int(limit)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise PayloadTooLargeError(f"the JSON body is over {limit} bytes (set by the server's --max-json-kb); "
                                       "send fewer prompts or classes per request")
    raw = bytes(raw)
    if not raw.strip():
        if optional:
            return {}
        raise BadRequestError("the request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("the request body is not UTF-8 JSON") from None
    if json_depth(text) > config.max_json_depth:
        raise BadRequestError(f"the JSON body is nested deeper than {config.max_json_depth} levels (the server's "
                              "--max-json-depth); no vfm request needs that")
    try:
        body = json.loads(text)
    except RecursionError:
        raise BadRequestError("the JSON body is nested too deeply to parse") from None
    except ValueError as exc:
        raise BadRequestError(f"the request body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BadRequestError(f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise PromptError(f"{what} must be a finite number, got {json.dumps(v)[:40]}")
    return float(v)


def numbers(v: Any, n: int, what: str) -> list[float]:
    if not isinstance(v, list) or len(v) != n:
        raise PromptError(f"{what} must be a list of {n} numbers, got {json.dumps(v)[:60]}")
    return [_number(x, what) for x in v]


def optional_number(body: dict, key: str) -> float | None:
    v = body.get(key)
    return None if v is None else _number(v, key)


def optional_int(body: dict, key: str) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():  # JSON has one number type: 57.0 is the integer 57
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise PromptError(f"{key} must be an integer, got {json.dumps(v)[:40]}")
    return v


def flag(body: dict, key: str, default: bool = False) -> bool:
    v = body.get(key, default)
    if not isinstance(v, bool):
        raise PromptError(f"{key} must be true or false, got {json.dumps(v)[:40]}")
    return v


def check_fields(body: dict, allowed: tuple[str, ...]) -> None:
    """Unknown fields are an error (422), as the OpenAPI schemas say (additionalProperties: false)."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise PromptError(f"unknown field(s) {unknown}; expected some of {sorted(allowed)}")


def optional_string(body: dict, key: str) -> str | None:
    v = body.get(key)
    if v is not None and not isinstance(v, str):
        raise PromptError(f"{key} must be a string, got {json.dumps(v)[:40]}")
    return v


def check_count(n: int, limit: int, what: str, flag: str) -> None:
    """A request asking for more than the server's cap: 422 with the cap and the flag that sets it."""
    if n > limit:
        raise PromptError(f"{n} {what} in one request is over this server's limit of {limit} ({flag}); "
                          "split the request")


def names(body: dict, key: str) -> str | list[str]:
    v = body.get(key)
    if v is None:
        raise PromptError(f"'{key}' is required: a comma-separated string or a list of names")
    if isinstance(v, str) or (isinstance(v, list) and v and all(isinstance(x, str) for x in v)):
        return v
    raise PromptError(f"'{key}' must be a comma-separated string or a list of strings")


def mask_from_rle(rle: Any, height: int, width: int) -> np.ndarray:
    from vfm.results.rle import decode_rle

    if not isinstance(rle, dict) or "counts" not in rle or "size" not in rle or set(rle) - {"size", "counts"}:
        raise PromptError("mask_input must be a COCO RLE {\"size\": [h, w], \"counts\": ...} (nothing else) or a "
                          "mask_input_id string")
    size = rle["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) for s in size)):
        raise PromptError("mask_input size must be [height, width]")
    if tuple(size) != (height, width):
        raise PromptError(f"mask_input is {size[1]}x{size[0]} but the image is {width}x{height}")
    counts = rle["counts"]
    if not isinstance(counts, (str, list)) or (isinstance(counts, list) and not all(isinstance(c, int) for c in counts)):
        raise PromptError("mask_input counts must be a compressed RLE string or a list of run lengths")
    if isinstance(counts, list) and sum(counts) != height * width:
        raise PromptError(f"mask_input run lengths sum to {sum(counts)}, not {height * width} pixels")
    try:
        return decode_rle({"size": size, "counts": counts})
    except Exception as exc:  # noqa: BLE001 - pycocotools raises bare exceptions on garbage
        raise PromptError(f"mask_input is not a valid COCO RLE ({type(exc).__name__})") from None


def segment_prompts(body: dict, height: int, width: int, logits_lookup) -> list:
    """The /segment body → Prompts: all points and ``box`` form one prompt; each of ``boxes`` its own prompt
    with the same points (as `vfm segment` does with repeated --box)."""
    from vfm.tasks.prompts import Prompt

    known = {"points", "labels", "box", "boxes", "mask_input", "mask_input_id", "multimask"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise PromptError(f"unknown field(s) {unknown}; expected some of {sorted(known)}")
    pts = body.get("points") or None
    xy = labels = None
    if pts is not None:
        if not isinstance(pts, list):
            raise PromptError("points must be a list of [x, y] pairs")
        xy = np.array([numbers(p, 2, "each point") for p in pts], dtype=np.float64)
        labels = body.get("labels")
        if labels is None:
            labels = [1] * len(xy)
        if not isinstance(labels, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
            raise PromptError("labels must be a list of integers (1 positive, 0 negative)")
    elif body.get("labels"):
        raise PromptError("labels given without points")
    boxes = []
    if body.get("box") is not None:
        boxes.append(numbers(body["box"], 4, "box"))
    if body.get("boxes") is not None:
        if not isinstance(body["boxes"], list):
            raise PromptError("boxes must be a list of [x0, y0, x1, y1] boxes")
        boxes += [numbers(b, 4, "each box") for b in body["boxes"]]
    mask = None
    token = body.get("mask_input_id")
    mi = body.get("mask_input")
    if isinstance(mi, str):
        token = mi
    elif isinstance(mi, dict) and "mask_input_id" in mi:
        token = mi["mask_input_id"]
    elif mi is not None:
        mask = mask_from_rle(mi, height, width)
    if token is not None:
        if not isinstance(token, str):
            raise PromptError("mask_input_id must be a string returned by a previous /segment answer")
        if mask is not None:
            raise PromptError("give mask_input as an RLE or a mask_input_id, not both")
        mask = logits_lookup(token)
    if xy is None and not boxes and mask is None:
        raise PromptError("give at least one of points, box, boxes or mask_input")
    if not boxes:
        prompts = [Prompt(points=xy, labels=labels, mask_input=mask)]
    else:
        prompts = [Prompt(points=xy, labels=labels, box=b, mask_input=mask) for b in boxes]
    for p in prompts:
        p.check_inside(height, width)
    return prompts
