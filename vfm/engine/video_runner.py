"""`vfm label --task track`: every pending video of the store, tracked start to end in this process.

Per video: the open-vocabulary detector finds ``--classes`` on its first frame (and every
``--redetect-every`` N frames, new ids for what no tracked mask covers); the tracker follows each
object; every finished frame is written as ``OUT/frames/VIDEO/NNNNN.jpg`` (NNNNN = source frame
number) and staged in the store with its annotations (class, box, RLE, score, ``track_id``);
the video's tracks (tracks.jsonl, masks/, mot.txt, ytvis.json) go to ``OUT/tracks/VIDEO/``. When the
video ends, its frames become labeled images in one transaction (vfm.engine.video_state), so a
kill costs at most the video in flight, which the rerun tracks again from its first frame.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from vfm.engine.state import Store
from vfm.engine.video_state import VideoStore
from vfm.errors import PromptError, VfmError

DEFAULT_TRACKER = "sam2.1-hiera-tiny"
#: A run whose first videos all fail inside the model stops: the setup is broken.
FATAL_AFTER = 2
JPEG_QUALITY = 95


def expected_frames(store: Store, config: dict[str, Any]) -> int:
    """Frames still to track (for the progress bar): each pending video's header, read without decoding."""
    from vfm.video.reader import open_video

    total = 0
    for _vid, _name, path, _folder in VideoStore(store).pending():
        try:
            total += open_video(path, stride=config.get("stride") or 1, max_pixels=config.get("max_pixels")).selected_count() or 0
        except VfmError:
            pass  # reported when its turn comes
    return total


class VideoLabeler:
    """The tracker and detector, loaded once; :meth:`label` does one video."""

    def __init__(self, config: dict[str, Any], *, device: str | None = None):
        from vfm.tasks.detect import Detector
        from vfm.video.tracker import VideoTracker

        precision = config.get("precision") or "auto"
        self.config = config
        self.tracker = VideoTracker.load(config["tracker"], device=device, precision=precision)
        self.detector = Detector.load(config["detector"], device=device, precision=precision)

    def label(self, videos: VideoStore, out_dir: Path, video_id: int, name: str, path: str, folder: str,
              on_frames: Callable[[int], None]) -> None:
        """Track one video into the store (done, or an error with its one-line reason)."""
        from vfm.video.reader import open_video
        from vfm.video.run import grounded, track_video

        config = self.config
        next_id = videos.begin(video_id)
        try:
            video = open_video(path, stride=config.get("stride") or 1, max_pixels=config.get("max_pixels"))
        except (VfmError, PromptError) as exc:
            videos.fail(video_id, str(exc))
            return
        prompter = grounded(self.detector, config["classes"], [], box_threshold=config.get("box_threshold"),
                            text_threshold=config.get("text_threshold"), redetect_every=config.get("redetect_every") or 0,
                            match_iou=config.get("match_iou") or 0.5)
        frame_dir = out_dir / "frames" / folder
        if frame_dir.exists():
            shutil.rmtree(frame_dir)  # what an interrupted run wrote: this video starts over
        frame_dir.mkdir(parents=True)

        def on_frame(frame, record):
            nonlocal next_id
            file_name = f"{frame.index:05d}.jpg"
            target = frame_dir / file_name
            write_jpeg(frame.pixels, target)
            annotations = [{"category": prompter.categories.get(o["id"], "object"), "bbox": o["bbox"], "area": o["area"],
                            "score": o["score"], "segmentation": o["segmentation"], "track_id": o["id"]}
                           for o in record["objects"]]
            result = {"annotations": annotations, "video": name, "frame": frame.index, "time": frame.time}
            row = {"id": next_id, "name": f"{folder}/{file_name}", "path": str(target), "width": video.width,
                   "height": video.height, "result": json.dumps(result, separators=(",", ":"))}
            videos.stage(video_id, [row])  # one transaction per frame
            next_id += 1
            on_frames(1)

        try:
            run = track_video(self.tracker, video, [], out=out_dir / "tracks" / folder, overlay=False, discover=prompter,
                              on_frame=on_frame, name=folder)
        except VfmError as exc:
            shutil.rmtree(frame_dir, ignore_errors=True)
            videos.fail(video_id, str(exc))
            return
        except Exception:
            shutil.rmtree(frame_dir, ignore_errors=True)
            raise
        problem = "; ".join(video.problems) or None
        if problem:
            problem = f"only frames up to {run.last_frame} were labeled: {problem}"
        videos.finish(video_id, run.frames, problem)


def write_jpeg(pixels, path: Path) -> None:
    """The frame as a JPEG (quality 95), written to a temp name and renamed so no reader sees half."""
    from PIL import Image

    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(pixels).save(tmp, format="JPEG", quality=JPEG_QUALITY)
    os.replace(tmp, path)


def run_videos(store: Store, config: dict[str, Any], *, device: str | None = None, threads: int | None = None,
               on_frames: Callable[[int], None] = lambda n: None) -> int:
    """Label every pending video; returns how many were processed in this call."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    videos = VideoStore(store)
    pending = videos.pending()
    if not pending:
        return 0
    labeler = VideoLabeler(config, device=device)
    ok = internal = 0
    for video_id, name, path, folder in pending:
        try:
            labeler.label(videos, store.out_dir, video_id, name, path, folder, on_frames)
        except Exception as exc:  # noqa: BLE001 - one odd video must not stop the run
            msg = (str(exc).strip().splitlines() or [""])[0]
            videos.fail(video_id, f"internal error on '{path}': {type(exc).__name__}: {msg}")
            internal += 1
            if ok == 0 and internal >= FATAL_AFTER:
                raise VfmError(f"the first {internal} videos all failed inside the model ({msg}); "
                               "check the models and options (VFM_DEBUG=1 for details)") from None
        else:
            ok += 1
    return len(pending)
