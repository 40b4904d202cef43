"""SAM 3 in video: `vfm track --text` against transformers' Sam3VideoModel on the whole video,
frame by frame, with memory pruning on; the kernels vfm supplies; the CLI and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vfm.testing.synthetic_video import frame_and_masks
from vfm.video.reader import VideoFrame

W, H, N = 160, 120, 30
THRESHOLD, NEW = 0.2, 0.25  # the tiny random model's detection scores sit around 0.2-0.9


@pytest.fixture(scope="module")
def frames():
    return [VideoFrame(i, i / 10, frame_and_masks(i, W, H, objects=2, seed=0)[0], f"{i:05d}.jpg") for i in range(N)]


@pytest.fixture(scope="module")
def tracker(tiny_sam3_video_dir):
    from vfm.video.concept_tracker import ConceptVideoTracker

    t = ConceptVideoTracker.load(str(tiny_sam3_video_dir), device="cpu", precision="fp32", threshold=THRESHOLD,
                                 new_threshold=NEW)
    t.model.recondition_every_nth_frame = 4  # reconditioning (tracks re-seeded from detections) happens in 30 frames
    return t


def reference(tracker, frames, texts):
    """transformers' own use: the whole video in one session, propagate_in_video_iterator, postprocess_outputs."""
    proc, model = tracker.processor, tracker.model
    session = proc.init_video_session(video=[f.pixels for f in frames], inference_device="cpu", processing_device="cpu",
                                      video_storage_device="cpu", dtype=torch.float32)
    proc.add_text_prompt(session, texts)
    out = []
    with torch.inference_mode():
        for o in model.propagate_in_video_iterator(session):
            r = proc.postprocess_outputs(session, o)
            out.append((o.frame_idx, r["object_ids"].tolist(), r["masks"].numpy(), r["scores"].tolist()))
    return out, session


def test_text_tracking_equals_transformers_whole_video_session(tracker, frames):
    ours = list(tracker.track(frames, ["cat"], total_frames=N))
    ref, ref_session = reference(tracker, frames, "cat")
    assert [f.index for f in ours] == [r[0] for r in ref] == list(range(N))
    n_objects = 0
    for f, (_, ids, masks, scores) in zip(ours, ref):
        assert [o.id for o in f.objects] == ids, f.index
        for o, m, s in zip(f.objects, masks, scores):
            assert np.array_equal(o.mask, m), (f.index, o.id)
            assert o.score == pytest.approx(s, abs=1e-6)
            n_objects += 1
    # the comparison means something: several tracks, partial masks, some removed by hot-start, reconditioning
    all_ids = {o.id for f in ours for o in f.objects}
    assert len(all_ids) >= 3 and n_objects >= N
    covered = np.mean([o.mask.mean() for f in ours for o in f.objects])
    assert 0.05 < covered < 0.95
    assert ref_session.hotstart_removed_obj_ids or ref_session.removed_obj_ids
    assert any(len(v["cond_frame_outputs"]) > 1 for v in ref_session.output_dict_per_obj.values())
    assert set(tracker.categories.values()) == {"cat"} and all_ids <= set(tracker.categories)


def test_pruned_session_stays_flat(tracker, frames):
    long = [VideoFrame(i, i / 10, f.pixels, f"{i:05d}.jpg") for i, f in enumerate(frames + frames)]  # 60 frames
    sizes = []
    gen = tracker.track(long, ["cat"], total_frames=len(long), prune=True)
    for k, _ in enumerate(gen):
        s = tracker.session
        sizes.append((len(s.processed_frames), max((len(v["non_cond_frame_outputs"]) for v in s.output_dict_per_obj.values()), default=0),
                      len(s.obj_id_to_tracker_score_frame_wise)))
    cfg = tracker.model.tracker_model.config
    window = max(cfg.num_maskmem, cfg.max_object_pointers_in_encoder)
    assert all(p == 0 for p, _, _ in sizes)  # every frame's pixels are dropped once it ran
    assert all(n <= window for _, n, _ in sizes)
    assert all(t <= 1 for _, _, t in sizes)
    for v in tracker.session.output_dict_per_obj.values():
        with_features = [f for f, o in v["cond_frame_outputs"].items() if "maskmem_features" in o]
        assert len(with_features) <= cfg.max_cond_frame_num


def test_pruning_changes_nothing(tracker, frames):
    pruned = list(tracker.track(frames, ["cat", "dog"], total_frames=N, prune=True))
    full = list(tracker.track(frames, ["cat", "dog"], total_frames=N, prune=False))
    for a, b in zip(pruned, full, strict=True):
        assert [o.id for o in a.objects] == [o.id for o in b.objects]
        for oa, ob in zip(a.objects, b.objects):
            assert np.array_equal(oa.mask, ob.mask) and oa.score == ob.score


def test_without_the_kernels_duplicates_survive(tracker, frames):
    """What vfm's kernels change: transformers without cv-utils keeps every detection above threshold."""
    from transformers.models.sam3_video import modeling_sam3_video as m

    with_nms = next(iter(tracker.track(frames[:1], ["cat"], total_frames=1)))
    saved = m.cv_utils_kernel
    m.cv_utils_kernel = False
    try:
        without = next(iter(tracker.track(frames[:1], ["cat"], total_frames=1)))
    finally:
        m.cv_utils_kernel = saved
    assert len(without.objects) > len(with_nms.objects) >= 1


@pytest.fixture(scope="module")
def video_file(tmp_path_factory):
    from vfm.testing.synthetic_video import write_video

    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", 12, W, H, objects=2, seed=0)


def test_cli_track_text(tiny_sam3_video_dir, video_file, tmp_path, capsys):
    from vfm.cli.main import main

    out = tmp_path / "out"
    rc = main(["track", str(video_file), "--model", str(tiny_sam3_video_dir), "--text", "cat", "--threshold", str(THRESHOLD),
               "--new-object-threshold", str(NEW), "--out", str(out), "--no-overlay", "--device", "cpu", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    lines = [json.loads(x) for x in (out / "tracks.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and any(rec["objects"] for rec in lines)
    ytvis = json.loads((out / "ytvis.json").read_text())
    assert [c["name"] for c in ytvis["categories"]] == ["cat"]
    assert (out / "mot.txt").read_text().strip()


@pytest.mark.parametrize("argv, message", [
    (["--text", "cat"], "needs SAM 3"),
    (["--text", " "], "--text is empty"),
    (["--threshold", "0.3", "--point", "0,5,5"], "go with --text"),
])
def test_cli_text_errors_on_sam2(argv, message, tiny_sam2_video_dir, video_file, tmp_path, capsys):
    from vfm.cli.main import main

    rc = main(["track", str(video_file), "--model", str(tiny_sam2_video_dir), "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert rc != 0 and message in err and "Traceback" not in err


def test_cli_text_with_clicks_is_refused(tiny_sam3_video_dir, video_file, tmp_path, capsys):
    from vfm.cli.main import main

    rc = main(["track", str(video_file), "--model", str(tiny_sam3_video_dir), "--text", "cat", "--point", "0,5,5",
               "--out", str(tmp_path / "o")])
    assert rc != 0 and "tracks every instance on its own" in capsys.readouterr().err


def test_cli_bad_threshold(tiny_sam3_video_dir, video_file, tmp_path, capsys):
    from vfm.cli.main import main

    rc = main(["track", str(video_file), "--model", str(tiny_sam3_video_dir), "--text", "cat", "--threshold", "1.5",
               "--out", str(tmp_path / "o")])
    assert rc != 0 and "between 0 and 1" in capsys.readouterr().err
