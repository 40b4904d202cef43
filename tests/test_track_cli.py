"""`vfm track` from the command line: every input kind, every output format read back with the tool
that reads it (pycocotools, PIL, PyAV), and bad input as one-line errors with nothing written half."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from vfm.cli.main import main
from vfm.testing.synthetic_video import frame_and_masks, object_box, object_centre, write_frames, write_video

av = pytest.importorskip("av")

W, H, N = 160, 96, 12


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    write_video(d / "clip.mp4", N, W, H)
    write_frames(d / "frames", N, W, H, masks_to=d / "gt")
    return d


def first_prompts():
    ids = frame_and_masks(0, W, H)[1]
    x, y = object_centre(ids, 1)
    return ["--point", f"0,{x:g},{y:g}", "--box", "0," + ",".join(f"{v:g}" for v in object_box(ids, 1))]


def track(capsys, *args):
    code = main(["track", *map(str, args)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_outputs_read_back(capsys, media, tiny_sam2_video_dir, tmp_path):
    ids0 = frame_and_masks(0, W, H)[1]
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps([
        {"frame": 0, "object": 1, "points": [list(object_centre(ids0, 1))], "labels": [1]},
        {"frame": 0, "object": 2, "box": list(object_box(ids0, 2))},
        {"frame": 5, "object": 1, "points": [list(object_centre(frame_and_masks(5, W, H)[1], 1))]},
    ]))
    out = tmp_path / "out"
    code, stdout, err = track(capsys, media / "clip.mp4", "--model", tiny_sam2_video_dir, "--prompts", prompts, "--out", out)
    assert code == 0, err
    assert "tracked 2 object(s) through 12 frame(s)" in err
    assert sorted(p.name for p in out.iterdir()) == ["masks", "mot.txt", "overlay.mp4", "tracks.jsonl", "ytvis.json"]
    lines = [json.loads(line) for line in (out / "tracks.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in lines] == list(range(N))
    assert lines[1]["time"] == pytest.approx(0.1, abs=1e-3)  # 10 fps
    mot = [line.split(",") for line in (out / "mot.txt").read_text().splitlines()]
    ytvis = json.loads((out / "ytvis.json").read_text())
    assert ytvis["videos"][0]["length"] == N and len(ytvis["videos"][0]["file_names"]) == N
    anns = {a["id"]: a for a in ytvis["annotations"]}
    n_objects = 0

    def decode(o):
        return mask_utils.decode({"size": [H, W], "counts": o["segmentation"]["counts"].encode()}).astype(bool)

    for rec in lines:
        png = np.asarray(Image.open(out / "masks" / f"{rec['frame']:05d}.png"))
        assert Image.open(out / "masks" / f"{rec['frame']:05d}.png").mode == "P"
        assert png.shape == (H, W)
        for o in rec["objects"]:
            n_objects += 1
            m = mask_utils.decode({"size": o["segmentation"]["size"], "counts": o["segmentation"]["counts"].encode()})
            assert m.shape == (H, W) and m.sum() == o["area"] > 0
            assert list(mask_utils.toBbox({"size": [H, W], "counts": o["segmentation"]["counts"].encode()})) == o["bbox"]
            assert 0 <= o["score"] <= 1
            # the PNG holds the object inside its mask, everywhere no other object overlaps it
            alone = m.astype(bool)
            for q in rec["objects"]:
                if q["id"] != o["id"]:
                    alone &= ~decode(q)
            assert not ((png == o["id"]) & ~m.astype(bool)).any()
            assert (png[alone] == o["id"]).all()
            row = [r for r in mot if int(r[0]) == rec["frame"] + 1 and int(r[1]) == o["id"]]
            assert len(row) == 1 and [float(v) for v in row[0][2:6]] == pytest.approx(o["bbox"], abs=0.01)
            assert anns[o["id"]]["segmentations"][rec["frame"]] == o["segmentation"]
    assert len(mot) == n_objects > 0
    with av.open(str(out / "overlay.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == N and frames[0].shape == (H, W, 3)


@pytest.mark.parametrize("kind", ["folder", "glob", "mkv", "webm", "avi", "mov"])
def test_input_kinds(capsys, media, tiny_sam2_video_dir, tmp_path, kind):
    if kind == "folder":
        src = media / "frames"
    elif kind == "glob":
        src = str(media / "frames" / "*.png")
    else:
        codec = {"mkv": "libx264", "webm": "libvpx", "avi": "mpeg4", "mov": "libx264"}[kind]
        src = write_video(tmp_path / f"clip.{kind}", 8, W, H, codec=codec)
    code, stdout, err = track(capsys, src, "--model", tiny_sam2_video_dir, *first_prompts(), "--json", "--stride", "2")
    assert code == 0, err
    recs = [json.loads(line) for line in stdout.splitlines()]
    expected = list(range(0, 8 if kind not in ("folder", "glob") else N, 2))
    assert [r["frame"] for r in recs] == expected
    assert all(o["segmentation"]["size"] == [H, W] for r in recs for o in r["objects"])


def test_start_end_and_frame_names(capsys, media, tiny_sam2_video_dir, tmp_path):
    ids = frame_and_masks(3, W, H)[1]
    x, y = object_centre(ids, 2)
    code, stdout, err = track(capsys, media / "frames", "--model", tiny_sam2_video_dir, "--point", f"3,{x:g},{y:g}",
                              "--start", 3, "--end", 9, "--fps", 5, "--out", tmp_path / "o", "--no-overlay")
    assert code == 0, err
    recs = [json.loads(line) for line in (tmp_path / "o" / "tracks.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in recs] == [3, 4, 5, 6, 7, 8]
    assert recs[0]["time"] == pytest.approx(0.6)
    assert sorted(p.name for p in (tmp_path / "o" / "masks").iterdir())[0] == "00003.png"
    assert not (tmp_path / "o" / "overlay.mp4").exists()


def test_rotation_metadata_is_applied(capsys, tiny_sam2_video_dir, tmp_path):
    src = write_video(tmp_path / "phone.mp4", 4, W, H, rotation=90)
    from vfm.video.reader import open_video

    video = open_video(str(src))
    assert (video.width, video.height) == (H, W)
    first = next(iter(video)).pixels
    upright = np.rot90(frame_and_masks(0, W, H)[0], 1)
    assert np.abs(first.astype(int) - upright.astype(int)).mean() < 6  # lossy codec, same picture
    code, stdout, err = track(capsys, src, "--model", tiny_sam2_video_dir, "--point", "0,40,100", "--out", tmp_path / "o")
    assert code == 0, err
    assert Image.open(tmp_path / "o" / "masks" / "00000.png").size == (H, W)  # upright: 96 wide, 160 high
    with av.open(str(tmp_path / "o" / "overlay.mp4")) as c:
        assert next(c.decode(video=0)).to_ndarray(format="rgb24").shape == (W, H, 3)
    code, _, err = track(capsys, src, "--model", tiny_sam2_video_dir, "--point", "0,150,40", "--json")
    assert code != 0 and "outside the 96x160 frame" in err  # prompts are in display pixels


def test_eval_vos_of_track_output(capsys, media, tiny_sam2_video_dir, tmp_path):
    gt = media / "gt"
    # the ground truth scored against itself, and against vfm track's output folder
    assert main(["eval", "--task", "vos", "--gt", str(gt), "--pred", str(gt), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["J&F"] == 1.0 and doc["frames"] == N - 2 and set(doc["objects"]) == {"1", "2"}
    ids0 = frame_and_masks(0, W, H)[1]
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps([{"frame": 0, "object": 1, "mask": str(gt / "00000.png")}]))
    # object 1 only: a mask prompt from the ground truth PNG's non-zero pixels would be both objects
    Image.fromarray((ids0 == 1).astype(np.uint8) * 255).save(tmp_path / "m1.png")
    code, _, err = track(capsys, media / "frames", "--model", tiny_sam2_video_dir, "--mask", f"0,{tmp_path / 'm1.png'}",
                         "--out", tmp_path / "o", "--no-overlay")
    assert code == 0, err
    assert main(["eval", "--task", "vos", "--gt", str(gt), "--pred", str(tmp_path / "o"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert 0 <= doc["J&F"] < 1 and set(doc["objects"]) == {"1", "2"}
    assert doc["objects"]["2"]["J"]["mean"] == 0.0  # never prompted, never predicted


BAD = {
    "prompt past the end": (["--point", "50,10,10"], "past the end of the video"),
    "box outside the frame": (["--box", "0,500,500,600,600"], "outside the 160x96 frame"),
    "point outside the frame": (["--point", "0,-5,10"], "outside the 160x96 frame"),
    "negative clicks only": (["--point", "0,10,10,0"], "only negative clicks"),
    "no prompts": ([], "give what to track"),
    "bad label": (["--point", "0,10,10,3"], "must be 1"),
    "frame not read": (["--point", "1,10,10", "--stride", "2"], "not a frame this run reads"),
    "mask with points": (["--point", "0,10,10", "--mask", "0,missing.png"], "a mask prompt stands alone"),
    "missing mask": (["--mask", "0,missing.png"], "does not exist"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_prompts(capsys, media, tiny_sam2_video_dir, tmp_path, case):
    extra, message = BAD[case]
    out = tmp_path / "out"
    code, _, err = track(capsys, media / "clip.mp4", "--model", tiny_sam2_video_dir, *extra, "--out", out)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert not out.exists() or not any(out.iterdir())


def test_conflicting_prompts_file(capsys, media, tiny_sam2_video_dir, tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps([{"frame": 0, "object": 2, "points": [[10, 10]]}, {"frame": 0, "object": 2, "box": [0, 0, 9, 9]}]))
    code, _, err = track(capsys, media / "clip.mp4", "--model", tiny_sam2_video_dir, "--prompts", f, "--json")
    assert code != 0 and "object 2 is prompted twice on frame 0" in err
    f.write_text("{not json")
    code, _, err = track(capsys, media / "clip.mp4", "--model", tiny_sam2_video_dir, "--prompts", f, "--json")
    assert code != 0 and "is not JSON" in err
    f.write_text(json.dumps([{"frame": 0, "object": 1, "points": [[10, 10]], "colour": "red"}]))
    code, _, err = track(capsys, media / "clip.mp4", "--model", tiny_sam2_video_dir, "--prompts", f, "--json")
    assert code != 0 and "unknown key" in err


def test_bad_videos(capsys, media, tiny_sam2_video_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "zero.mp4").write_bytes(b"")
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    for src, message in [(tmp_path / "empty", "has no image frames"), (tmp_path / "zero.mp4", "not a video"),
                         (tmp_path / "noise.mp4", "not a video"), (tmp_path / "nope.mp4", "does not exist"),
                         (str(tmp_path / "*.jpg"), "matches no image files")]:
        code, _, err = track(capsys, src, "--model", tiny_sam2_video_dir, "--point", "0,10,10", "--json")
        assert code != 0 and message in err, (src, err)
        assert len(err.strip().splitlines()) == 1


def test_truncated_video_keeps_what_decodes(capsys, tiny_sam2_video_dir, tmp_path):
    full = write_video(tmp_path / "full.mkv", 30, W, H)
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    code, _, err = track(capsys, cut, "--model", tiny_sam2_video_dir, "--point", "0,40,48", "--out", out, "--no-overlay")
    recs = (out / "tracks.jsonl").read_text().splitlines()
    assert 0 < len(recs) < 30
    if code != 0:  # the cut landed inside a frame the decoder reports: it is named
        assert "warning" in err


def test_models_refused(capsys, media, tiny_sam_dir, tmp_path):
    code, _, err = track(capsys, media / "clip.mp4", "--model", tiny_sam_dir, "--point", "0,10,10", "--json")
    assert code != 0 and "not usable to track" in err
    code, _, err = track(capsys, media / "clip.mp4", "--model", "no-such-model", "--point", "0,10,10", "--json")
    assert code != 0 and "unknown model" in err


def test_grounded_tracking(capsys, media, tiny_sam2_video_dir, gdino_dir, tmp_path):
    out = tmp_path / "out"
    code, _, err = track(capsys, media / "frames", "--model", tiny_sam2_video_dir, "--classes", "red circle, green box",
                         "--detector", gdino_dir, "--box-threshold", "0", "--text-threshold", "0",
                         "--redetect-every", "4", "--end", "9", "--out", out, "--no-overlay")
    assert code == 0, err
    recs = [json.loads(line) for line in (out / "tracks.jsonl").read_text().splitlines()]
    first_ids = {o["id"] for o in recs[0]["objects"]}
    assert first_ids and min(first_ids) == 1
    ytvis = json.loads((out / "ytvis.json").read_text())
    assert {c["name"] for c in ytvis["categories"]} <= {"red circle", "green box"}
    ids = [a["id"] for a in ytvis["annotations"]]
    assert ids == sorted(set(ids)) and ids[0] >= 1  # objects whose mask stays empty have no annotation


def test_redetection_adds_objects_only_on_detection_frames(media, tiny_sam2_video_dir, gdino_dir):
    from vfm.tasks.detect import Detector
    from vfm.video.grounded import GroundedPrompter
    from vfm.video.reader import open_video
    from vfm.video.tracker import VideoTracker

    tracker = VideoTracker.load(str(tiny_sam2_video_dir))
    prompter = GroundedPrompter(Detector.load(str(gdino_dir)), ["red circle", "green box"], 0.0, 0.0,
                                redetect_every=4, match_iou=0.99)
    known = []
    for frame in tracker.track(open_video(str(media / "frames"), end=9), [], discover=prompter):
        known.append((frame.index, [o.id for o in frame.objects]))
    assert known[0][1] and known[0][1][0] == 1
    for (f0, a), (f1, b) in zip(known, known[1:]):
        assert b[: len(a)] == a  # objects are never dropped or renumbered
        if len(b) > len(a):
            assert f1 in (4, 8), (f1, a, b)
    assert set(prompter.categories) == set(known[-1][1])
    assert set(prompter.categories.values()) <= {"red circle", "green box"}


def test_subprocess_exit_codes(media, tiny_sam2_video_dir, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, "-m", "vfm.cli", "track", str(media / "clip.mp4"), "--model", str(tiny_sam2_video_dir),
                        "--point", "99,10,10", "--json"], capture_output=True, text=True, env=env, timeout=240)
    assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip() == "vfm track: error: object 1 on frame 99 is past the end of the video (its last frame is 11)"
