"""ask: a question about an image or a video, answered by a chat VLM, as `vfm ask --json`."""

from __future__ import annotations

import anyio

from vfm.mcp.tools._vlm import GENERATION, document, grounded, settings
from vfm.mcp.tools.base import IMAGE, Answer, ModelArg, Tool, count
from vfm.models.vlm.defaults import DEFAULT_FRAMES, MAX_FRAMES


async def run(args, ctx) -> Answer:
    from vfm.errors import PromptError
    from vfm.models.vlm.base import check_question

    question = check_question(args.get("question"))
    kw = settings(args)
    key = ctx.model(args, "vlm")
    if (args.get("image") is None) == (args.get("video") is None):
        raise PromptError("ask: give exactly one of image and video")
    if args.get("video") is not None:
        if args.get("ground"):
            raise PromptError("ask: ground locates phrases in an image; ask about a video without it")
        from vfm.mcp.inputs import video_path

        path = await anyio.to_thread.run_sync(lambda: video_path(args["video"], ctx.roots))
        frames = int(args.get("frames") or DEFAULT_FRAMES)
        answer = await ctx.models.run([key], lambda vlm: vlm.ask_video(str(path), question, frames=frames,
                                                                        max_pixels=ctx.max_pixels, **kw))
        doc = answer.to_document()
        doc["video"] = {"file_name": path.name}
        return Answer(doc)
    image = await ctx.image(args["image"])
    answer = await ctx.models.run([key], lambda vlm: vlm.ask(image, question, **kw))
    overlay = await grounded(answer, image, args, ctx)
    return Answer(document(answer, image), overlay)


TOOL = Tool(
    name="ask",
    description="Ask a chat vision-language model (SmolVLM, LLaVA, Qwen2.5-VL; BLIP VQA for short answers) a "
                "question about an image, or about a video (frames sampled uniformly over it). Greedy by default. "
                "Returns {\"answer\", \"model\", \"tokens\", \"seconds\", \"question\"} (+ \"frames\" used of a video); "
                "with ground=true also the answer's phrases as COCO-style annotations and an overlay PNG.",
    arguments={"image": IMAGE,
               "video": {"type": "string", "minLength": 1,
                         "description": "instead of image: a video file (mp4, mov, mkv, webm, avi, ...) or a folder of "
                                        "frames under the server's roots, for video-capable models"},
               "question": {"type": "string", "minLength": 1, "maxLength": 4000, "description": "the question"},
               "frames": count(f"a video: frames sampled uniformly over it (default {DEFAULT_FRAMES})", 1, MAX_FRAMES),
               **GENERATION,
               "model": ModelArg("vlm", "the chat VLM")},
    required=("question",),
    run=run,
)
