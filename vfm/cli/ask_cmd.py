"""`vfm ask IMAGE|VIDEO "question" [--model M] [--frames N] [--ground] [--json]`.

The answer streams to the terminal token by token; greedy by default (the same answer every run),
--temperature T samples. Chat VLMs (smolvlm-256m, smolvlm2-2.2b, llava-1.5-7b, llava-onevision-0.5b,
qwen2.5-vl-3b, ...) answer through their own chat template; blip-vqa-base gives short VQA answers.

A video (mp4, mov, mkv, webm, avi, ...) goes to a video-capable chat VLM (SmolVLM2, LLaVA-OneVision,
Qwen2.5-VL) as --frames N frames sampled uniformly over the whole video (default 8), decoded with PyAV.

--ground locates the answer's phrases in the image (Florence-2 phrase grounding, then SAM masks).
JSON: {"answer", "model", "tokens", "seconds", "question", "first_token_seconds"} (+ "frames": the
video frames used; + COCO-style "image", "categories", "annotations" when grounded).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vfm.cli.vlm_opts import Grounding, add_answer_options, emit_answer, streamer
from vfm.errors import ImageError, PromptError
from vfm.models.vlm.defaults import DEFAULT_ASK_MODEL, DEFAULT_FRAMES


def add_parser(sub) -> None:
    p = sub.add_parser("ask", help="ask a chat VLM about an image or a video; the answer streams as it is generated",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="IMAGE|VIDEO", help="an image file, or a video file for video-capable models")
    p.add_argument("question", help='the question, e.g. "How many people are there?"')
    p.add_argument("--model", default=DEFAULT_ASK_MODEL,
                   help=f"chat VLM or VQA model: alias, hub id or local directory (default {DEFAULT_ASK_MODEL})")
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES, metavar="N",
                   help=f"a video: N frames sampled uniformly over it (default {DEFAULT_FRAMES})")
    add_answer_options(p, run)


def run(args) -> int:
    import os

    from vfm.cli.common import out_dir
    from vfm.io.image import load_image
    from vfm.models.vlm.base import check_question
    from vfm.models.vlm.generation import check_generation
    from vfm.tasks.vlm import VisionLanguage
    from vfm.video.reader import VIDEO_EXTENSIONS

    check_question(args.question)
    check_generation(args.max_new_tokens, args.temperature)
    is_video = Path(args.source).suffix.lower() in VIDEO_EXTENSIONS
    if is_video and args.ground:
        raise PromptError("--ground locates phrases in an image; ask about a video without it")
    target = out_dir(args.out) if args.out else None
    image = None
    if not is_video:
        if not os.path.exists(args.source):
            raise ImageError(f"image file '{args.source}' does not exist")
        image = load_image(args.source, max_pixels=args.max_pixels, name=Path(args.source).name)
    vlm = VisionLanguage.load(args.model, task="ask", device=args.device, precision=args.precision)
    on_text = streamer(args)
    if is_video:
        answer = vlm.ask_video(args.source, args.question, frames=args.frames, max_new_tokens=args.max_new_tokens,
                               temperature=args.temperature, on_text=on_text, max_pixels=args.max_pixels)
    else:
        answer = vlm.ask(image, args.question, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                         on_text=on_text)
        if args.ground:
            Grounding(args, vlm)(answer, image)
    emit_answer(args, answer, image, args.source, target, streamed=on_text is not None)
    return 0
