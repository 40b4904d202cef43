"""Shared by caption and ask: generation settings, and the grounded answer's masks (Florence-2 + SAM)."""

from __future__ import annotations

from typing import Any

from vfm.mcp.tools.base import count
from vfm.models.vlm.defaults import DEFAULT_MAX_NEW_TOKENS, MAX_NEW_TOKENS_LIMIT

GENERATION = {
    "max_new_tokens": count(f"stop after this many new tokens (default {DEFAULT_MAX_NEW_TOKENS})", 1, MAX_NEW_TOKENS_LIMIT),
    "temperature": {"type": "number", "minimum": 0, "maximum": 5,
                    "description": "sample with this temperature (default 0: greedy, the same answer every call)"},
    "ground": {"type": "boolean",
               "description": "also locate the answer's phrases in the image: boxes (Florence-2 phrase grounding, the "
                              "server's first captioner) and masks (the server's first segmenter), drawn on the overlay"},
}


def settings(args: dict[str, Any]) -> dict[str, Any]:
    return {"max_new_tokens": int(args.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS),
            "temperature": args.get("temperature") or None}


async def grounded(answer, image, args, ctx):
    """The answer's phrases as boxes and masks when ``ground`` is set (``answer.grounding``), and the overlay."""
    if not args.get("ground"):
        return None
    from vfm.formats.png import draw_overlay
    from vfm.tasks.answer_grounding import masks_for, phrases

    hint = "start vfm mcp with --captioner florence-2-base first"
    found = await ctx.models.run([ctx.model({}, "captioner")], lambda g: phrases(g, image, answer.text, hint))
    answer.grounding = await ctx.models.run([ctx.model({}, "segmenter")], lambda seg: masks_for(found, image, seg))
    return draw_overlay(image.pixels, answer.grounding)


def document(answer, image) -> dict[str, Any]:
    doc = answer.to_document()
    if "image" in doc and image is not None and image.name:
        doc["image"]["file_name"] = image.name
    return doc
