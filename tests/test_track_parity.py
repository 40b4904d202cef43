"""`vfm track`'s streaming tracker against transformers' own Sam2VideoModel (and SAM 3's
Sam3TrackerVideoModel) session holding the whole video, fed the same frames and prompts: points, a box, a mask, two objects, a correction on a later
frame and an object that first appears later. And the same masks with memory pruning on as off."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vfm.testing.synthetic_video import frame_and_masks, object_box, object_centre
from vfm.video.prompts import ObjectPrompt
from vfm.video.reader import VideoFrame

W, H, N = 160, 96, 24


@pytest.fixture(scope="module", params=["sam2", "sam3"])
def tracker(request):
    from vfm.video.tracker import VideoTracker

    folder = request.getfixturevalue("tiny_sam2_video_dir" if request.param == "sam2" else "tiny_sam3_video_dir")
    return VideoTracker.load(str(folder), device="cpu")


@pytest.fixture(scope="module")
def video():
    return [frame_and_masks(i, W, H, objects=2, seed=3) for i in range(N)]


def _frames(video):
    return [VideoFrame(i, i / 10, img, f"{i:05d}.jpg") for i, (img, _) in enumerate(video)]


def reference(tracker, video, prompts):
    """transformers' interactive use: the whole video in one session; for each frame with prompts (in
    order), add each object's prompt (running the frame between objects, as adding replaces the
    session's list of objects with new inputs), then propagate from that frame to the end, which runs
    the frame with the last prompt first. (Running the frame once more before propagating would
    overwrite a correction on an already tracked frame: transformers stores it as a tracked frame.)"""
    model, proc = tracker.model, tracker.processor
    session = proc.init_video_session(video=[img for img, _ in video], inference_device="cpu")
    masks: dict[int, dict[int, np.ndarray]] = {}
    with torch.inference_mode():
        for f in sorted({p.frame for p in prompts}):
            here = [p for p in prompts if p.frame == f]
            for k, p in enumerate(here):
                if p.mask is not None:
                    proc.add_inputs_to_inference_session(session, frame_idx=f, obj_ids=p.object, input_masks=torch.from_numpy(p.mask))
                else:
                    kw = {}
                    if p.points:
                        kw.update(input_points=[[[list(q) for q in p.points]]], input_labels=[[p.labels]])
                    if p.box is not None:
                        kw.update(input_boxes=[[list(p.box)]])
                    proc.add_inputs_to_inference_session(session, frame_idx=f, obj_ids=p.object, **kw)
                if k < len(here) - 1:
                    model(inference_session=session, frame_idx=f)
            for out in model.propagate_in_video_iterator(session, start_frame_idx=f):
                m = proc.post_process_masks([out.pred_masks], [[H, W]], binarize=True)[0]
                masks[out.frame_idx] = {int(oid): m[i, 0].numpy() for i, oid in enumerate(out.object_ids)}
    return masks


def ious(ours, ref) -> list[float]:
    out = []
    for frame in ours:
        assert set(o.id for o in frame.objects) == set(ref[frame.index]), frame.index
        for o in frame.objects:
            r = ref[frame.index][o.id]
            union = (r | o.mask).sum()
            out.append(1.0 if union == 0 else float((r & o.mask).sum() / union))
    return out


def _ids(video, i):
    return video[i][1]


CASES = {
    "points": lambda v: [ObjectPrompt(0, 1, [object_centre(_ids(v, 0), 1), (5.0, 5.0)], [1, 0])],
    "box": lambda v: [ObjectPrompt(0, 1, box=object_box(_ids(v, 0), 2))],
    "mask": lambda v: [ObjectPrompt(0, 1, mask=_ids(v, 0) == 1)],
    "two objects": lambda v: [ObjectPrompt(0, 1, [object_centre(_ids(v, 0), 1)], [1]),
                              ObjectPrompt(0, 2, box=object_box(_ids(v, 0), 2))],
    "correction later": lambda v: [ObjectPrompt(0, 1, [object_centre(_ids(v, 0), 1)], [1]),
                                   ObjectPrompt(9, 1, [object_centre(_ids(v, 9), 1), (3.0, 90.0)], [1, 0])],
    "object appears later": lambda v: [ObjectPrompt(0, 1, box=object_box(_ids(v, 0), 1)),
                                       ObjectPrompt(7, 2, [object_centre(_ids(v, 7), 2)], [1])],
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_masks_as_transformers_session(tracker, video, case):
    prompts = CASES[case](video)
    ours = list(tracker.track(_frames(video), prompts))
    assert [f.index for f in ours] == list(range(N))
    ref = reference(tracker, video, prompts)
    values = ious(ours, ref)
    print(f"{case}: mean IoU {np.mean(values):.6f}, min {min(values):.6f} over {len(values)} object-frames")  # pytest -s
    assert len(values) >= N
    assert np.mean(values) >= 0.99, (case, np.mean(values), min(values))
    # the masks are not trivially empty or full (the comparison means something)
    covered = np.mean([o.mask.mean() for f in ours for o in f.objects])
    assert 0.0 < covered < 1.0


@pytest.mark.parametrize("case", ["two objects", "correction later", "object appears later"])
def test_pruning_changes_nothing(tracker, video, case):
    prompts = CASES[case](video)
    pruned = list(tracker.track(_frames(video), prompts, prune=True))
    full = list(tracker.track(_frames(video), prompts, prune=False))
    for a, b in zip(pruned, full, strict=True):
        assert [o.id for o in a.objects] == [o.id for o in b.objects]
        for oa, ob in zip(a.objects, b.objects):
            assert np.array_equal(oa.mask, ob.mask), (case, a.index, oa.id)
            assert oa.score == pytest.approx(ob.score, abs=1e-6)


def test_pruned_session_stays_bounded(tracker, video):
    """After many frames the session holds the conditioning frames, the last W frames' memories and
    one preprocessed frame; without pruning it holds every frame."""
    frames = _frames(video) * 2  # 48 frames (renumbered below)
    frames = [VideoFrame(i, i / 10, f.pixels, f.name) for i, f in enumerate(frames)]
    prompts = CASES["two objects"](video)
    sessions = []
    real_init = tracker.processor.init_video_session

    def spy(*a, **k):
        s = real_init(*a, **k)
        sessions.append(s)
        return s

    tracker.processor.init_video_session = spy
    try:
        for _ in tracker.track(frames, prompts, prune=True):
            pass
        for _ in tracker.track(frames, prompts, prune=False):
            pass
    finally:
        tracker.processor.init_video_session = real_init
    pruned, full = sessions
    window = tracker.window
    for obj in pruned.output_dict_per_obj.values():
        assert len(obj["non_cond_frame_outputs"]) <= window
        assert list(obj["cond_frame_outputs"]) == [0]
        assert all("high_res_masks" not in o for o in obj["non_cond_frame_outputs"].values())
    assert len(pruned.processed_frames) <= 1
    assert len(full.processed_frames) == len(frames)
    assert all(len(o["non_cond_frame_outputs"]) == len(frames) - 1 for o in full.output_dict_per_obj.values())


def test_image_model_is_refused(tiny_sam_dir, tiny_sam2_dir):
    from vfm.errors import ModelError
    from vfm.video.tracker import VideoTracker

    with pytest.raises(ModelError, match="not usable to track"):
        VideoTracker.load(str(tiny_sam_dir))
    with pytest.raises(ModelError, match="image-only|video"):
        VideoTracker.load(str(tiny_sam2_dir))
