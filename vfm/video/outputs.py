"""What `vfm track` writes, frame by frame as frames finish (nothing is held for the whole video).

In the output folder:

- ``tracks.jsonl``: one line per frame, ``{"frame", "time", "objects": [{"id", "segmentation"
  (COCO RLE), "bbox" (COCO XYWH, pixel edges), "area", "score"}]}``; objects whose mask is empty on a
  frame are left out of that line.
- ``masks/00000.png``: DAVIS-style indexed PNGs named by the source frame number, pixel value =
  object id (0 = background), the DAVIS palette; where masks overlap, the higher-scoring object
  wins. Ids above 255 make 16-bit grayscale PNGs instead.
- ``mot.txt``: MOTChallenge boxes, ``frame,id,bb_left,bb_top,bb_width,bb_height,conf,-1,-1,-1``
  with 1-based frame numbers (source frame + 1).
- ``ytvis.json``: YouTube-VIS style ``{"videos", "annotations", "categories"}``, one annotation per
  object with a segmentation (RLE or null) for every frame read.
- ``overlay.mp4``: the frames with each object in its own colour (H.264 through PyAV).

Everything is written into a hidden ``.track.tmp`` folder first and moved into place when the video
is done, so a failed or interrupted run never leaves half-written results behind its name.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vfm.errors import require
from vfm.results.rle import encode_rle, rle_to_xywh
from vfm.video.tracker import TrackedFrame

OUTPUTS = ("tracks.jsonl", "masks", "mot.txt", "ytvis.json", "overlay.mp4")


def davis_palette() -> np.ndarray:
    """The 256-colour palette of DAVIS / PASCAL VOC annotation PNGs (id 1 red, 2 green, ...)."""
    pal = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


def frame_record(frame: TrackedFrame) -> dict[str, Any]:
    """The ``tracks.jsonl`` line of a frame."""
    objects = []
    for o in frame.objects:
        if not o.mask.any():
            continue
        rle = encode_rle(o.mask)
        objects.append({"id": o.id, "segmentation": rle, "bbox": rle_to_xywh(rle), "area": int(o.mask.sum()),
                        "score": o.score})
    return {"frame": frame.index, "time": frame.time, "objects": objects}


def id_map(frame: TrackedFrame, height: int, width: int) -> np.ndarray:
    """HxW object ids (0 = none); overlaps go to the higher-scoring object."""
    dtype = np.uint8 if all(o.id <= 255 for o in frame.objects) else np.uint16
    ids = np.zeros((height, width), dtype=dtype)
    for o in sorted(frame.objects, key=lambda o: (o.score, -o.id)):
        ids[o.mask] = o.id
    return ids


class TrackWriter:
    """Writes every output of one tracked video into ``out_dir``; call :meth:`write` per frame, then
    :meth:`finish` (or :meth:`abort`)."""

    def __init__(self, out_dir: str | os.PathLike, *, width: int, height: int, fps: float, video_name: str,
                 categories: dict[int, str] | None = None, overlay: bool = True):
        self.out = Path(out_dir)
        self.tmp = self.out / ".track.tmp"
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        (self.tmp / "masks").mkdir(parents=True)
        (self.tmp / "objects").mkdir()
        self.width, self.height, self.fps = width, height, fps
        self.video_name = video_name
        self.categories = categories if categories is not None else {}  # filled while tracking (grounded)
        self.jsonl = open(self.tmp / "tracks.jsonl", "w", encoding="utf-8")
        self.mot = open(self.tmp / "mot.txt", "w", encoding="utf-8")
        self.frames: list[str] = []  # YouTube-VIS file names, in order
        self.object_ids: set[int] = set()
        self.palette = davis_palette()
        self._overlay = _OverlayEncoder(self.tmp / "overlay.mp4", width, height, fps, self.palette) if overlay else None

    def write(self, frame: TrackedFrame) -> dict[str, Any]:
        record = frame_record(frame)
        self.jsonl.write(json.dumps(record) + "\n")
        ids = id_map(frame, self.height, self.width)
        name = f"{frame.index:05d}.png"
        if ids.dtype == np.uint8:
            im = Image.fromarray(ids, mode="P")
            im.putpalette(self.palette.reshape(-1).tolist())
        else:
            im = Image.fromarray(ids)
        im.save(self.tmp / "masks" / name)
        position = len(self.frames)
        self.frames.append(f"{self.video_name}/{frame.index:05d}.jpg")
        for o in record["objects"]:
            x, y, w, h = o["bbox"]
            self.mot.write(f"{frame.index + 1},{o['id']},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{o['score']:.4f},-1,-1,-1\n")
            self.object_ids.add(o["id"])
            with open(self.tmp / "objects" / f"{o['id']}.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps([position, o["segmentation"], o["bbox"], o["area"], o["score"]]) + "\n")
        if self._overlay is not None and frame.pixels is not None:
            self._overlay.add(frame.pixels, ids)
        return record

    def finish(self) -> list[str]:
        """Close everything, build ytvis.json, and move the outputs into ``out_dir``."""
        self.jsonl.close()
        self.mot.close()
        if self._overlay is not None:
            self._overlay.close()
        self._write_ytvis(self.tmp / "ytvis.json")
        shutil.rmtree(self.tmp / "objects")
        written = []
        for name in OUTPUTS:
            src = self.tmp / name
            if not src.exists():
                continue
            dst = self.out / name
            if dst.is_dir():
                shutil.rmtree(dst)
            elif dst.exists():
                dst.unlink()
            os.replace(src, dst)
            written.append(name)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return written

    def abort(self) -> None:
        for fh in (self.jsonl, self.mot):
            fh.close()
        if self._overlay is not None:
            self._overlay.close(flush=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _write_ytvis(self, path: Path) -> None:
        n = len(self.frames)
        cats = sorted(set(self.categories.values())) or ["object"]
        cat_id = {name: i + 1 for i, name in enumerate(cats)}
        with open(path, "w", encoding="utf-8") as out:
            video = {"id": 1, "name": self.video_name, "width": self.width, "height": self.height, "length": n,
                     "file_names": self.frames}
            out.write('{"info": {"description": "vfm track"}, "videos": [' + json.dumps(video) + '], "annotations": [')
            for k, obj in enumerate(sorted(self.object_ids)):
                segs: list[Any] = [None] * n
                boxes: list[Any] = [None] * n
                areas: list[Any] = [None] * n
                scores = []
                with open(self.tmp / "objects" / f"{obj}.jsonl", encoding="utf-8") as fh:
                    for line in fh:
                        pos, seg, box, area, score = json.loads(line)
                        segs[pos], boxes[pos], areas[pos] = seg, box, area
                        scores.append(score)
                ann = {"id": obj, "video_id": 1, "category_id": cat_id[self.categories.get(obj, "object")],
                       "iscrowd": 0, "height": self.height, "width": self.width, "length": 1,
                       "segmentations": segs, "bboxes": boxes, "areas": areas,
                       "score": round(float(np.mean(scores)), 6)}
                out.write((", " if k else "") + json.dumps(ann))
                del segs, boxes, areas
            out.write('], "categories": ' + json.dumps([{"id": i, "name": name, "supercategory": "object"}
                                                        for name, i in cat_id.items()]) + "}")


class _OverlayEncoder:
    """Frames blended with their objects' colours and outlines, encoded to H.264 (MPEG-4 Part 2 when
    this FFmpeg has no H.264 encoder) with PyAV."""

    def __init__(self, path: Path, width: int, height: int, fps: float, palette: np.ndarray):
        av = require("av", "video")
        from vfm.video.reader import frame_rate

        self.av = av
        self.container = av.open(str(path), "w")
        codec = "libx264" if "libx264" in av.codecs_available else ("h264" if "h264" in av.codecs_available else "mpeg4")
        self.stream = self.container.add_stream(codec, rate=frame_rate(fps))
        # yuv420p needs even sizes: the last row / column is dropped from odd-sized videos
        self.w, self.h = width - width % 2, height - height % 2
        self.stream.width, self.stream.height = max(self.w, 2), max(self.h, 2)
        self.stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self.stream.options = {"crf": "20", "preset": "veryfast"}
        self.palette = palette

    def add(self, pixels: np.ndarray, ids: np.ndarray) -> None:
        from vfm.formats.png import _outline

        img = pixels.astype(np.float32)
        for obj in np.unique(ids):
            if obj == 0:
                continue
            m = ids == obj
            obj = int(obj)
            colour = self.palette[obj % 255 + 1 if obj > 255 else obj].astype(np.float32)
            img[m] = img[m] * 0.5 + colour * 0.5
            img[_outline(m)] = colour
        out = np.clip(img, 0, 255).astype(np.uint8)[: self.h, : self.w]
        if self.w < 2 or self.h < 2:
            out = np.zeros((2, 2, 3), np.uint8)
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(out), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self, flush: bool = True) -> None:
        if flush:
            for packet in self.stream.encode():
                self.container.mux(packet)
        self.container.close()
