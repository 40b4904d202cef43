"""`vfm caption IMAGE... [--model M] [--detailed] [--ground] [--json]`.

A caption per image, streamed to the terminal as it is generated, greedy by default (the same
caption every run). Models: Florence-2 (florence-2-base, -large: --detailed for a paragraph), BLIP
(blip-base, blip-large: one short caption) and the chat VLMs (smolvlm-256m, llava-onevision-0.5b,
qwen2.5-vl-3b, ...: asked "Describe this image in one sentence." / "... in detail.").

--ground locates the caption's phrases in the image (Florence-2 phrase grounding, then SAM masks).
JSON: {"answer", "model", "tokens", "seconds", "first_token_seconds"} (+ COCO-style "image",
"categories", "annotations" of the grounded phrases).
"""

from __future__ import annotations

import argparse

from vfm.cli.images import ImageRun, add_images_argument
from vfm.cli.vlm_opts import Grounding, add_answer_options, emit_answer, streamer
from vfm.models.vlm.defaults import DEFAULT_CAPTION_MODEL


def add_parser(sub) -> None:
    p = sub.add_parser("caption", help="caption images (Florence-2, BLIP, chat VLMs), streamed; --ground boxes the phrases",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_images_argument(p)
    p.add_argument("--model", default=DEFAULT_CAPTION_MODEL,
                   help=f"captioning model: alias, hub id or local directory (default {DEFAULT_CAPTION_MODEL})")
    p.add_argument("--detailed", action="store_true", help="a detailed caption (a paragraph) instead of one sentence")
    add_answer_options(p, run)


def run(args) -> int:
    from vfm.models.vlm.generation import check_generation
    from vfm.tasks.vlm import VisionLanguage

    check_generation(args.max_new_tokens, args.temperature)
    images = ImageRun(args, "caption")
    vlm = grounding = None
    for item, image in images:
        if vlm is None:
            vlm = VisionLanguage.load(args.model, task="caption", device=args.device, precision=args.precision)
            grounding = Grounding(args, vlm) if args.ground else None
        on_text = streamer(args)
        if on_text is not None and images.several:
            print(f"{item.path}: ", end="", flush=True)
        answer = vlm.caption(image, detailed=args.detailed, max_new_tokens=args.max_new_tokens,
                             temperature=args.temperature, on_text=on_text)
        if grounding is not None:
            grounding(answer, image)
        emit_answer(args, answer, image, item.path, images.out_dir(item), streamed=on_text is not None)
    return images.exit_code
