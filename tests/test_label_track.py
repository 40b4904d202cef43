"""`vfm label --task track`: videos in SOURCE → JPEG frames named VIDEO/NNNNN.jpg, per-frame COCO / YOLO /
Label Studio / PNG datasets and each video's tracks; the same masks as `vfm track`; bad input as one line;
and a SIGKILL at any point, then the same command again, gives the uninterrupted run's files byte for byte."""

from __future__ import annotations

import json
import os
import sqlite3

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from tests.test_label_resume import run_and_kill, same_tree
from vfm.cli.main import main
from vfm.testing.synthetic_video import frame_and_masks, write_video

av = pytest.importorskip("av")

W, H = 96, 64
FRAMES = {"a.mp4": 9, "sub/b.mov": 7}
CLASSES = "red circle, green box"
THRESHOLDS = ["--box-threshold", "0.3", "--text-threshold", "0"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    src = tmp_path_factory.mktemp("videos") / "clips"
    (src / "sub").mkdir(parents=True)
    for k, (name, n) in enumerate(FRAMES.items()):
        write_video(src / name, n, W, H, seed=k)
    (src / "broken.mp4").write_bytes(b"this is not a video")
    (src / "notes.txt").write_text("not a video either")
    return src


def label_args(src, out, sam2, gdino, *extra):
    return ["label", str(src), "--task", "track", "--classes", CLASSES, "--tracker", str(sam2), "--detector", str(gdino),
            *THRESHOLDS, "--precision", "fp32", "--format", "coco,yolo,labelstudio,masks", "--out", str(out), "--quiet",
            *map(str, extra)]


@pytest.fixture(scope="module")
def run(source, tiny_sam2_video_dir, gdino_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("label-track") / "out"
    assert main(label_args(source, out, tiny_sam2_video_dir, gdino_dir)) == 0
    return out


def test_frames_datasets_and_tracks(run, source):
    coco = COCO(str(run / "coco.json"))
    images = sorted(coco.dataset["images"], key=lambda i: i["id"])
    expected = [f"{name.rsplit('.', 1)[0]}/{f:05d}.jpg" for name, n in FRAMES.items() for f in range(n)]
    assert [i["file_name"] for i in images] == expected
    assert [i["id"] for i in images] == list(range(1, len(expected) + 1))
    for img in images:
        assert img["video"] in FRAMES and img["file_name"].endswith(f"/{img['frame']:05d}.jpg")
        assert img["time"] == pytest.approx(img["frame"] / 10)
        with Image.open(run / "frames" / img["file_name"]) as im:
            assert im.format == "JPEG" and im.size == (img["width"], img["height"]) == (W, H)
            # the JPEG is the decoded frame (synthetic content, lossy twice: H.264 then JPEG)
            k = list(FRAMES).index(img["video"])
            truth = frame_and_masks(img["frame"], W, H, 2, k)[0].astype(int)
            assert np.abs(np.asarray(im.convert("RGB"), dtype=int) - truth).mean() < 6
    assert {c["name"] for c in coco.dataset["categories"]} == {"red circle", "green box"}
    anns = coco.dataset["annotations"]
    assert anns, "the detector found nothing: the test would not check tracking"
    for name, n in FRAMES.items():
        folder = name.rsplit(".", 1)[0]
        records = [json.loads(line) for line in (run / "tracks" / folder / "tracks.jsonl").read_text().splitlines()]
        assert [r["frame"] for r in records] == list(range(n))
        ytvis = json.loads((run / "tracks" / folder / "ytvis.json").read_text())
        assert ytvis["videos"][0]["file_names"] == [f"{folder}/{f:05d}.jpg" for f in range(n)]
        assert len(os.listdir(run / "tracks" / folder / "masks")) == n and (run / "tracks" / folder / "mot.txt").exists()
        for rec in records:  # every frame's annotations are that frame's tracked objects
            img = next(i for i in images if i["file_name"] == f"{folder}/{rec['frame']:05d}.jpg")
            mine = sorted((a for a in anns if a["image_id"] == img["id"]), key=lambda a: a["track_id"])
            assert [a["track_id"] for a in mine] == [o["id"] for o in rec["objects"]]
            for a, o in zip(mine, rec["objects"]):
                assert a["segmentation"] == o["segmentation"] and a["bbox"] == o["bbox"]
                assert int(mask_utils.area(a["segmentation"])) == a["area"]
                cats = {c["id"]: c["name"] for c in coco.dataset["categories"]}
                obj = next(x for x in ytvis["annotations"] if x["id"] == o["id"])
                ycats = {c["id"]: c["name"] for c in ytvis["categories"]}
                assert cats[a["category_id"]] == ycats[obj["category_id"]]


def test_yolo_masks_labelstudio_and_report(run):
    n = sum(FRAMES.values())
    labels = sorted(p for p in (run / "yolo" / "segment" / "labels" / "train").rglob("*.txt"))
    assert len(labels) == n
    images = list((run / "yolo" / "segment" / "images" / "train").rglob("*.jpg"))
    assert len(images) == n
    assert (run / "yolo" / "detect" / "images" / "train" / "a" / "00000.jpg").read_bytes() == \
        (run / "frames" / "a" / "00000.jpg").read_bytes()
    tasks = json.loads((run / "labelstudio.json").read_text())
    assert [t["data"]["image"] for t in tasks][:2] == ["/data/local-files/?d=frames/a/00000.jpg",
                                                      "/data/local-files/?d=frames/a/00001.jpg"]
    assert len(list((run / "masks").rglob("*.png"))) == n
    errors = [json.loads(line) for line in (run / "errors.jsonl").read_text().splitlines()]
    assert [e["video"] for e in errors] == ["broken.mp4"] and "not a video" in errors[0]["error"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["videos"] == 3 and summary["videos_labeled"] == 2 and summary["video_errors"] == 1
    assert summary["images"] == summary["labeled"] == n and summary["skipped_files"] == 1


def test_same_masks_as_vfm_track(run, source, tiny_sam2_video_dir, gdino_dir, tmp_path, capsys):
    out = tmp_path / "track"
    assert main(["track", str(source / "sub" / "b.mov"), "--model", str(tiny_sam2_video_dir), "--classes", CLASSES,
                 "--detector", str(gdino_dir), *THRESHOLDS, "--precision", "fp32", "--out", str(out), "--no-overlay",
                 "--quiet"]) == 0
    assert (out / "tracks.jsonl").read_bytes() == (run / "tracks" / "sub" / "b" / "tracks.jsonl").read_bytes()
    assert (out / "mot.txt").read_bytes() == (run / "tracks" / "sub" / "b" / "mot.txt").read_bytes()


def test_split_keeps_each_video_whole(source, tiny_sam2_video_dir, gdino_dir, tmp_path):
    out = tmp_path / "out"
    assert main(label_args(source, out, tiny_sam2_video_dir, gdino_dir, "--split", "train=0.5,val=0.5",
                           "--format", "coco,yolo")) == 0
    where = {}
    for split in ("train", "val"):
        for img in json.loads((out / f"coco_{split}.json").read_text())["images"]:
            where.setdefault(img["video"], set()).add(split)
        for p in (out / "yolo" / "detect" / "labels" / split).rglob("*.txt"):
            video = "a.mp4" if p.parent.name == "a" else "sub/b.mov"
            where[video].add(split)
    assert set(where) == set(FRAMES) and all(len(s) == 1 for s in where.values())


@pytest.mark.parametrize("kind", ["file", "list", "glob"])
def test_single_video_list_glob_and_stride(source, tiny_sam2_video_dir, gdino_dir, tmp_path, kind):
    listing = source.parent / "videos.txt"
    listing.write_text("# one video\nclips/a.mp4\nclips/notes.txt\n")
    where = {"file": source / "a.mp4", "list": listing, "glob": f"{source}/*.mp4"}[kind]
    out = tmp_path / "out"
    assert main(label_args(where, out, tiny_sam2_video_dir, gdino_dir, "--stride", "3", "--format", "coco")) == 0
    names = [i["file_name"] for i in json.loads((out / "coco.json").read_text())["images"]]
    folder = "clips/a" if kind == "list" else "a"
    if kind == "glob":  # the glob also matches broken.mp4, which is reported, not labeled
        assert [e["video"] for e in map(json.loads, (out / "errors.jsonl").read_text().splitlines())] == ["broken.mp4"]
    assert names == [f"{folder}/00000.jpg", f"{folder}/00003.jpg", f"{folder}/00006.jpg"]


def test_truncated_video_is_labeled_as_far_as_it_decodes(tiny_sam2_video_dir, gdino_dir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    data = write_video(tmp_path / "full.mkv", 30, W, H).read_bytes()
    (src / "cut.mkv").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    assert main(label_args(src, out, tiny_sam2_video_dir, gdino_dir, "--format", "coco")) == 0
    images = json.loads((out / "coco.json").read_text())["images"]
    assert 0 < len(images) < 30
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    for e in errors:  # when the decoder reports the cut, the video is named with what was labeled
        assert e["video"] == "cut.mkv" and e["frames"] == len(images) and "warning" in e


@pytest.mark.parametrize("extra, message", [
    (["--classes", ""], "the class list is empty"),
    (["--workers", "2"], "one video at a time"),
    (["--redetect-every", "0"], "--redetect-every must be 1 or more"),
    (["--stride", "0"], "--stride must be 1 or more"),
    (["--match-iou", "2"], "--match-iou"),
    (["--format", "semantic"], "not a class for every pixel"),
])
def test_bad_options(capsys, source, tiny_sam2_video_dir, gdino_dir, tmp_path, extra, message):
    out = tmp_path / "out"
    assert main(label_args(source, out, tiny_sam2_video_dir, gdino_dir, *extra)) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (out / "coco.json").exists()


def test_video_options_need_track_and_sources_need_videos(capsys, source, tiny_sam2_video_dir, gdino_dir, tmp_path):
    code = main(["label", str(source), "--classes", "cat", "--stride", "2", "--out", str(tmp_path / "o1"), "--quiet"])
    assert code != 0 and "--stride is an option of --task track" in capsys.readouterr().err
    code = main(["label", str(source), "--task", "track", "--out", str(tmp_path / "o1"), "--quiet"])
    assert code != 0 and "--task track finds the objects to track by name" in capsys.readouterr().err
    empty = tmp_path / "images"
    empty.mkdir()
    Image.new("RGB", (8, 8)).save(empty / "x.png")
    assert main(label_args(empty, tmp_path / "o2", tiny_sam2_video_dir, gdino_dir)) != 0
    assert "holds no video files" in capsys.readouterr().err
    assert main(label_args(tmp_path / "nope", tmp_path / "o3", tiny_sam2_video_dir, gdino_dir)) != 0
    assert "does not exist" in capsys.readouterr().err


def test_rerun_with_other_options_is_refused(capsys, run, source, tiny_sam2_video_dir, gdino_dir):
    before = (run / "coco.json").read_bytes()
    assert main(label_args(source, run, tiny_sam2_video_dir, gdino_dir, "--stride", "2")) != 0
    assert "--stride" in capsys.readouterr().err
    assert main(label_args(source, run, tiny_sam2_video_dir, gdino_dir)) == 0  # same options: nothing to redo
    assert (run / "coco.json").read_bytes() == before


def progress(db_path) -> int:
    """Frames committed or staged so far (-1 before the store exists)."""
    if not os.path.exists(db_path):
        return -1
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "staged" not in tables:
                return 0
            return db.execute("SELECT (SELECT COUNT(*) FROM images) + (SELECT COUNT(*) FROM staged)").fetchone()[0]
    except sqlite3.Error:
        return -1


@pytest.mark.slow
def test_sigkill_mid_video_then_rerun_gives_the_uninterrupted_dataset(run, source, tiny_sam2_video_dir, gdino_dir,
                                                                     tmp_path, monkeypatch):
    import tests.test_label_resume as resume

    monkeypatch.setattr(resume, "finished", progress)
    out = tmp_path / "out"
    argv = label_args(source, out, tiny_sam2_video_dir, gdino_dir)
    first = FRAMES["a.mp4"]
    counts = [run_and_kill(argv, out / "state.sqlite", after=3),          # inside the first video
              run_and_kill(argv, out / "state.sqlite", after=first + 2)]  # inside the second
    assert counts == sorted(counts) and counts[-1] < sum(FRAMES.values())
    with sqlite3.connect(out / "state.sqlite") as db:  # the killed video's frames were only staged
        assert db.execute("SELECT COUNT(*) FROM images").fetchone()[0] in (0, first)
    assert main(argv) == 0
    for name in ("coco.json", "labelstudio.json", "labelstudio_config.xml", "errors.jsonl", "summary.json"):
        assert (out / name).read_bytes() == (run / name).read_bytes(), name
    for sub in ("frames", "tracks", "masks"):
        same_tree(out / sub, run / sub)
    same_tree(out / "yolo", run / "yolo", out.absolute(), run.absolute())
    with sqlite3.connect(out / "state.sqlite") as db:  # every frame once, every video finished once, nothing staged
        assert db.execute("SELECT COUNT(*), MIN(attempts), MAX(attempts) FROM images").fetchone() == (sum(FRAMES.values()), 1, 1)
        assert db.execute("SELECT COUNT(*), MIN(attempts), MAX(attempts) FROM videos").fetchone() == (3, 1, 1)
        assert db.execute("SELECT COUNT(*) FROM staged").fetchone()[0] == 0
