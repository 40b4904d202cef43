"""`vfm label --split` and `--yolo-images`: stable per-image assignment, fractions, one COCO JSON per split,
the YOLO images/ and labels/ trees per split, and how the images get there (hard link, symlink, copy)."""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_image
from vfm.cli.main import main
from vfm.errors import VfmError
from vfm.formats.split import parse_split, split_of, unit_hash
from vfm.formats.yolo_images import dataset_name

SPLIT = "train=0.5,val=0.3,test=0.2"
FRACTIONS = {"train": 0.5, "val": 0.3, "test": 0.2}
NAMES = ["a.png", "b.jpg", "c.png", "images/d.png", "sub/e.png", "sub/f.webp", "sub/deeper/g.png", "h.png",
         "i.png", "j.jpg"]


@pytest.mark.parametrize("text, expected", [
    ("train=0.8,val=0.2", {"train": 0.8, "val": 0.2}),
    (" val=0.2 , TRAIN=0.8", {"train": 0.8, "val": 0.2}),  # any order and case; always train, val, test
    ("test=0.1,train=0.7,val=0.2", {"train": 0.7, "val": 0.2, "test": 0.1}),
])
def test_parse_split(text, expected):
    got = parse_split(text)
    assert got == expected and list(got) == list(expected)


@pytest.mark.parametrize("value, message", [
    ("train=0.8", "has no val"),
    ("val=1", "outside 0..1"),
    ("train=0.8,val=0.3", "adds up to 1.1"),
    ("train=0.8,val=x", "val=x is not a number"),
    ("train=0.8,dev=0.2", "is not a list of train=F, val=F, test=F"),
    ("train=0.8,train=0.2", "names train twice"),
    ("train=1.2,val=-0.2", "train=1.2 is outside 0..1"),
    ("train:0.8,val:0.2", "is not a list of"),
    ("", "is not a list of"),
])
def test_bad_split_is_one_line_and_exit_2(value, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["label", str(tmp_path), "--classes", "cat", "--out", str(tmp_path / "out"), "--split", value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--split" in err and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_assignment_is_a_pinned_hash_of_the_relative_path():
    # SHA-256 of the UTF-8 name, first 8 bytes / 2**64: the same on every machine, Python and vfm version.
    assert [round(unit_hash(n), 6) for n in ("a.png", "sub/b.jpg", "img00.png", "x/y/z.jpg")] == \
        [0.496202, 0.304707, 0.653951, 0.726343]
    assert [split_of(n, FRACTIONS) for n in ("a.png", "sub/b.jpg", "img00.png", "x/y/z.jpg")] == \
        ["train", "train", "val", "val"]
    assert split_of("a.png", parse_split("test=0.2,val=0.3,train=0.5")) == split_of("a.png", FRACTIONS)


def test_fractions_are_met_and_growing_train_only_moves_images_into_it():
    names = [f"folder{i % 7}/img{i:05d}.jpg" for i in range(20000)]
    got = [split_of(n, FRACTIONS) for n in names]
    for split, fraction in FRACTIONS.items():
        assert abs(got.count(split) / len(names) - fraction) < 0.015, split
    bigger = [split_of(n, {"train": 0.8, "val": 0.2}) for n in names]
    assert all(b == "train" for g, b in zip(got, bigger) if g == "train")  # train stays train
    assert abs(bigger.count("train") / len(names) - 0.8) < 0.015


@pytest.mark.parametrize("name, expected", [
    ("a.jpg", "a.jpg"),
    ("sub/deeper/c.png", "sub/deeper/c.png"),
    ("images/d.png", "images_/d.png"),  # Ultralytics would take it for the dataset's images/ folder
    ("x/images/y/images/z.png", "x/images_/y/images_/z.png"),
    ("myimages/images.png", "myimages/images.png"),
    ("/data/elsewhere/e.jpg", "data/elsewhere/e.jpg"),  # list files may name images outside their folder
])
def test_dataset_name(name, expected):
    assert dataset_name(name) == expected


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_sam_dir):
    from vfm.testing.tiny_detectors import build_grounding_dino

    root = tmp_path_factory.mktemp("split")
    gdino = build_grounding_dino(root / "tiny-gdino", seed=0)
    src = root / "images"
    for i, rel in enumerate(NAMES):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(make_image(128, 160 + 8 * (i % 3), seed=80 + i)).save(src / rel, quality=95)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    argv = ["label", str(src), "--classes", "cat, dog", "--detector", str(gdino), "--segmenter", str(tiny_sam_dir),
            "--box-threshold", "0.99", "--precision", "fp32", "--format", "coco,yolo", "--out", str(root / "out"),
            "--quiet"]
    assert main([*argv, "--split", SPLIT]) == 0
    return {"src": src, "out": root / "out", "argv": argv}


def test_every_split_gets_the_images_the_hash_gives_it(run):
    assert {split_of(n, FRACTIONS) for n in NAMES} == {"train", "val", "test"}
    assert {n: split_of(n, FRACTIONS) for n in NAMES} == {n: split_of(n, parse_split(SPLIT)) for n in NAMES}


def test_coco_has_one_json_per_split(run):
    from pycocotools.coco import COCO

    whole = json.loads((run["out"] / "coco.json").read_text())
    assert sorted(i["file_name"] for i in whole["images"]) == sorted(NAMES)  # coco.json: the whole run
    seen = []
    for split in FRACTIONS:
        doc = json.loads((run["out"] / f"coco_{split}.json").read_text())
        COCO(str(run["out"] / f"coco_{split}.json"))  # loads
        assert doc["info"]["split"] == split and doc["categories"] == whole["categories"]
        images = doc["images"]
        assert images and all(split_of(i["file_name"], FRACTIONS) == split for i in images)
        assert images == [i for i in whole["images"] if split_of(i["file_name"], FRACTIONS) == split]  # same ids
        ids = {i["id"] for i in images}
        expected = [{k: v for k, v in a.items() if k != "id"} for a in whole["annotations"] if a["image_id"] in ids]
        assert [{k: v for k, v in a.items() if k != "id"} for a in doc["annotations"]] == expected
        assert [a["id"] for a in doc["annotations"]] == list(range(1, len(expected) + 1))
        seen += [i["file_name"] for i in images]
    assert sorted(seen) == sorted(NAMES)  # a partition: every image in exactly one split


def test_yolo_has_images_and_labels_per_split(run):
    for task in ("detect", "segment"):
        tree = run["out"] / "yolo" / task
        text = (tree / "data.yaml").read_text()
        assert f'path: "{tree.absolute()}"\ntrain: images/train\nval: images/val\ntest: images/test\nnc: 2\n' in text
        for split in FRACTIONS:
            names = sorted(dataset_name(n) for n in NAMES if split_of(n, FRACTIONS) == split)
            images = sorted(p.relative_to(tree / "images" / split).as_posix()
                            for p in (tree / "images" / split).rglob("*") if p.is_file())
            labels = sorted(p.relative_to(tree / "labels" / split).as_posix()
                            for p in (tree / "labels" / split).rglob("*.txt"))
            assert images == names and labels == sorted(os.path.splitext(n)[0] + ".txt" for n in names)


def test_a_new_split_rewrites_the_datasets_without_labeling_again(run, tmp_path):
    out = tmp_path / "out"
    import shutil

    shutil.copytree(run["out"], out)
    argv = [a if a != str(run["out"]) else str(out) for a in run["argv"]]
    assert main([*argv, "--split", "val=0.5,train=0.5"]) == 0
    assert not (out / "coco_test.json").exists() and not (out / "yolo" / "detect" / "images" / "test").exists()
    assert "test:" not in (out / "yolo" / "detect" / "data.yaml").read_text()
    train = json.loads((out / "coco_train.json").read_text())["images"]
    assert [i["file_name"] for i in train] == [i["file_name"] for i in json.loads((run["out"] / "coco_train.json").read_text())["images"]]
    assert main(argv) == 0  # no --split: everything in train, no split files
    assert not list(out.glob("coco_*.json"))
    assert len(list((out / "yolo" / "detect" / "labels" / "train").rglob("*.txt"))) == len(NAMES)
    assert "val: images/train" in (out / "yolo" / "detect" / "data.yaml").read_text()
    with sqlite3.connect(out / "state.sqlite") as db:  # the store was reused: nothing labeled twice
        assert db.execute("SELECT MIN(attempts), MAX(attempts), COUNT(*) FROM images").fetchone() == (1, 1, len(NAMES) + 1)


def _write(run, out_dir, mode, source_root=None):
    from vfm.engine.state import Store
    from vfm.formats.yolo import write_yolo

    store = Store(run["out"])
    try:
        return write_yolo(store, ["cat", "dog"], out_dir, str(source_root or run["src"]), segment=True,
                          fractions=FRACTIONS, images=mode)
    finally:
        store.close()


def _placed(run, out_dir):
    """(image in SOURCE, its file in yolo/<task>/images/<split>/) for every image of both trees."""
    for task in ("detect", "segment"):
        for n in NAMES:
            yield run["src"] / n, Path(out_dir) / "yolo" / task / "images" / split_of(n, FRACTIONS) / dataset_name(n)


@pytest.mark.parametrize("mode", ["link", "symlink", "copy"])
def test_yolo_images_modes(run, tmp_path, mode):
    counts = _write(run, tmp_path, mode)
    assert sum(counts[f"images_{s}"] for s in FRACTIONS) == len(NAMES)
    for src, dst in _placed(run, tmp_path):
        assert dst.read_bytes() == src.read_bytes()
        same_file = os.stat(dst).st_ino == os.stat(src).st_ino
        assert dst.is_symlink() == (mode == "symlink")
        if mode == "symlink":
            assert os.readlink(dst) == str(src.absolute())
        assert same_file == (mode != "copy")  # a hard link (same inode), the symlink's target, or a copy


def test_link_falls_back_to_symlinks_across_filesystems(run, tmp_path):
    import shutil

    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's temp folder")
    other = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        shutil.copytree(run["src"], other / "images")
        _write(run, tmp_path, "link", source_root=other / "images")
        for src, dst in _placed(run, tmp_path):
            assert dst.is_symlink() and os.readlink(dst) == str(other / "images" / src.relative_to(run["src"]))
            np.testing.assert_array_equal(np.array(Image.open(dst)), np.array(Image.open(src)))
    finally:
        shutil.rmtree(other)


def test_a_labeled_image_gone_from_source_is_one_sentence(run, tmp_path):
    with pytest.raises(VfmError, match="is no longer there") as exc:
        _write(run, tmp_path / "out", "link", source_root=tmp_path / "nowhere")
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "out" / "yolo" / "detect").exists()  # nothing half-written under the final name
