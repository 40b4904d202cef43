"""track: objects prompted on the first frame followed through a video (SAM 2.1 / EdgeTAM), per-frame
masks as the lines of `vfm track --json` (tracks.jsonl)."""

from __future__ import annotations

from vfm.mcp.tools.base import BOX, POINT, Answer, ModelArg, Tool, count

DEFAULT_MAX_FRAMES = 300

OBJECT = {
    "type": "object",
    "properties": {
        "id": count("the object's id in the results (default: its position in the list, from 1)", 1, 65535),
        "points": {"type": "array", "items": POINT, "maxItems": 256, "description": "clicks on the object, each [x, y]"},
        "labels": {"type": "array", "items": {"type": "integer", "enum": [0, 1]},
                   "description": "one per point: 1 on the object (default), 0 not on it"},
        "box": dict(BOX, description="a box around the object on the first frame, [x0, y0, x1, y1]"),
    },
    "additionalProperties": False,
    "description": "one object to follow: clicks and/or a box on the first frame read",
}


async def run(args, ctx) -> Answer:
    import re

    import anyio

    from vfm.errors import PromptError
    from vfm.mcp.inputs import video_path
    from vfm.video.prompts import check_prompts, prompt_entries
    from vfm.video.reader import open_video

    start, stride = int(args.get("start", 0)), int(args.get("stride", 1))
    max_frames = int(args.get("max_frames", DEFAULT_MAX_FRAMES))
    end = args.get("end")
    end = start + max_frames * stride if end is None else min(int(end), start + max_frames * stride)
    entries = []
    for i, obj in enumerate(args["objects"], start=1):
        entry = {"frame": start, "object": obj.get("id", i)}
        entry.update({k: obj[k] for k in ("points", "labels", "box") if k in obj})
        entries.append(entry)
    prompts = prompt_entries(entries, "objects", max_points=256)
    path = video_path(args["video"], ctx.roots)
    try:
        video = await anyio.to_thread.run_sync(lambda: open_video(str(path), start=start, end=end, stride=stride,
                                                                  max_pixels=ctx.max_pixels))
        check_prompts(prompts, width=video.width, height=video.height, video=video)
    except PromptError as exc:  # vfm track's messages name its flags; here they are arguments
        raise PromptError(re.sub(r"--(start|end|stride)\b", r"\1", str(exc))) from None

    def work(tracker):
        from vfm.video.run import track_video

        records, shown = [], {}

        def keep(frame, record):
            records.append(record)
            shown.setdefault("first", frame)
            shown["last"] = frame

        track_video(tracker, video, prompts, on_frame=keep)
        return records, shown

    records, shown = await ctx.models.run([ctx.model(args, "tracker")], work)
    doc = {"video": {"file_name": path.name, "width": video.width, "height": video.height, "fps": video.fps,
                     "start": start, "end": end, "stride": stride},
           "objects": sorted({p.object for p in prompts}), "frames": records}
    if video.problems:
        doc["problems"] = list(video.problems)
    return Answer(doc, [_overlay(shown[k]) for k in ("first", "last") if k in shown])


def _overlay(frame):
    """A tracked frame with each object's mask drawn and named."""
    import numpy as np

    from vfm.formats.png import draw_overlay
    from vfm.results.instances import Instances

    objects = [o for o in frame.objects if o.mask.any()]
    h, w = frame.pixels.shape[:2]
    if not objects:
        return draw_overlay(frame.pixels, Instances.empty((h, w)))
    found = Instances.from_masks(np.stack([o.mask for o in objects]), [o.score for o in objects])
    return draw_overlay(frame.pixels, found, labels=[f"{o.id} @{frame.index}" for o in objects])


TOOL = Tool(
    name="track",
    description="Follow objects through a video: clicks and/or a box per object on the first frame read, a mask "
                "per object on every frame after (SAM 2.1). Returns {\"video\", \"objects\", \"frames\": [{\"frame\", "
                "\"time\", \"objects\": [{\"id\", \"segmentation\" (COCO RLE), \"bbox\", \"area\", \"score\"}]}]} "
                "(the lines of vfm track's tracks.jsonl) and two overlay PNGs: the first and the last frame tracked.",
    arguments={
        "video": {"type": "string", "minLength": 1,
                  "description": "a video file (mp4, mov, mkv, webm, avi, ...) or a folder of frames, under the "
                                 "server's roots"},
        "objects": {"type": "array", "items": OBJECT, "minItems": 1, "maxItems": 64,
                    "description": "the objects to follow, each prompted on the first frame read"},
        "start": count("first source frame to read, 0-based (default 0); the prompts are on it", 0),
        "end": count("stop before this source frame (default: the end, or max_frames)", 1),
        "stride": count("read every Nth frame (default 1)", 1, 1000),
        "max_frames": count(f"read at most this many frames (default {DEFAULT_MAX_FRAMES})", 1, 100000),
        "model": ModelArg("tracker", "the video model"),
    },
    required=("video", "objects"),
    run=run,
)
