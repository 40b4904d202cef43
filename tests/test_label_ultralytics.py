"""`vfm label --format yolo` read by Ultralytics itself: check_det_dataset accepts data.yaml as written and
its YOLO dataset (detect and segment) finds every image and every label vfm wrote, with and without --split.

Ultralytics is a test-only dependency (the `test` extra). It runs in a child process (importing it
patches PIL.Image.open and torch.save for the whole process), offline, with its settings in a
temporary folder: nothing here touches the network or the home directory.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_image
from vfm.cli.main import main
from vfm.formats.split import split_of
from vfm.formats.yolo_images import dataset_name

SPLIT = "train=0.6,val=0.4"
SETTINGS_DIR = tempfile.mkdtemp(prefix="vfm-ultralytics-settings-")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Nine images (JPEG, PNG, WebP) in nested folders, one of them named 'images' like many datasets'."""
    src = tmp_path_factory.mktemp("ul") / "photos"
    for i in range(9):
        rel = ["a.jpg", "b.png", "c.webp", "images/d.png", "images/e.jpg", "sub/f.png", "sub/images/g.png",
               "sub/h.jpg", "i.png"][i]
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(make_image(128 + 8 * (i % 3), 160, seed=40 + i)).save(src / rel, quality=95)
    return src


@pytest.fixture(scope="module")
def labeled(source, tmp_path_factory, tiny_sam_dir):
    """Three runs: ground (boxes + masks) with and without --split, detect (boxes only) with --split."""
    from vfm.testing.tiny_detectors import build_grounding_dino

    root = tmp_path_factory.mktemp("ul-out")
    gdino = build_grounding_dino(root / "tiny-gdino", seed=0)
    outs = {}
    for key, extra in (("ground", ["--split", SPLIT]), ("default", []), ("detect", ["--split", SPLIT, "--task", "detect"])):
        out = root / key
        assert main(["label", str(source), "--classes", "cat, dog", "--detector", str(gdino), "--segmenter",
                     str(tiny_sam_dir), "--box-threshold", "0.99", "--precision", "fp32", "--format", "coco,yolo",
                     "--out", str(out), "--quiet", *extra]) == 0
        outs[key] = out
    return outs


# Ultralytics patches PIL.Image.open and torch.save process-wide when imported, so it runs in a child
# Python: this script prints what its dataset checks found, as JSON.
PROBE = r"""
import json, sys
from ultralytics.cfg import get_cfg
from ultralytics.data.build import build_yolo_dataset
from ultralytics.data.utils import check_det_dataset
from ultralytics.utils import DEFAULT_CFG

data_yaml, task = sys.argv[1], sys.argv[2]
data = check_det_dataset(data_yaml)
cfg = get_cfg(DEFAULT_CFG, {"task": task, "imgsz": 160, "cache": False, "workers": 0})
found = {}
for split in ("train", "val", "test"):
    if data.get(split):
        ds = build_yolo_dataset(cfg, data[split], batch=2, data=data, mode="val")
        found[split] = {"im_files": list(ds.im_files), "labels": [
            {"im_file": lb["im_file"], "shape": list(lb["shape"]), "cls": lb["cls"].ravel().tolist(),
             "bboxes": lb["bboxes"].tolist(), "segments": len(lb["segments"])} for lb in ds.labels]}
print(json.dumps({"data": {k: data[k] for k in ("names", "nc", "train", "val")}, "splits": found}))
"""


@functools.lru_cache(maxsize=None)
def _probe(data_yaml: str, task: str) -> dict:
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "0", "YOLO_VERBOSE": "0",
           "YOLO_CONFIG_DIR": SETTINGS_DIR}
    proc = subprocess.run([sys.executable, "-c", PROBE, data_yaml, task], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tempfile.gettempdir())
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    doc["data"]["names"] = {int(k): v for k, v in doc["data"]["names"].items()}
    return doc


def ultralytics_dataset(data_yaml, task: str, split: str):
    """check_det_dataset on data.yaml, then Ultralytics' own YOLO dataset for ``split`` (no augmentation)."""
    doc = _probe(str(data_yaml), task)
    ds = doc["splits"][split]
    for lb in ds["labels"]:
        lb["cls"], lb["bboxes"], lb["shape"] = np.array(lb["cls"]), np.array(lb["bboxes"]).reshape(-1, 4), tuple(lb["shape"])
    return doc["data"], SimpleNamespace(im_files=ds["im_files"], labels=ds["labels"])


def coco_by_image(out) -> dict[str, list[dict]]:
    """file_name -> its annotations in coco.json."""
    doc = json.loads((out / "coco.json").read_text())
    anns = {img["file_name"]: [] for img in doc["images"]}
    name_of = {img["id"]: img["file_name"] for img in doc["images"]}
    for ann in doc["annotations"]:
        anns[name_of[ann["image_id"]]].append(ann)
    return anns


def label_lines(out, task: str, split: str, name: str) -> list[str]:
    path = out / "yolo" / task / "labels" / split / (os.path.splitext(dataset_name(name))[0] + ".txt")
    return path.read_text().splitlines()


@pytest.mark.parametrize("run, task", [("detect", "detect"), ("ground", "segment"), ("ground", "detect")])
def test_ultralytics_finds_every_image_and_label_of_each_split(labeled, source, run, task):
    out = labeled[run]
    coco = coco_by_image(out)
    assert len(coco) == 9 and sum(len(a) for a in coco.values()) > 0
    splits = {name: split_of(name, {"train": 0.6, "val": 0.4}) for name in coco}
    assert set(splits.values()) == {"train", "val"}  # both splits hold images
    for split in ("train", "val"):
        data, ds = ultralytics_dataset(out / "yolo" / task / "data.yaml", task, split)
        assert data["names"] == {0: "cat", 1: "dog"} and data["nc"] == 2
        assert data[split] == str((out / "yolo" / task / "images" / split).resolve())
        names = sorted(n for n, s in splits.items() if s == split)
        assert len(ds.im_files) == len(ds.labels) == len(names)
        found = {os.path.relpath(lb["im_file"], data[split]): lb for lb in ds.labels}
        assert sorted(found) == sorted(dataset_name(n) for n in names)
        for name in names:
            lb, anns = found[dataset_name(name)], coco[name]
            lines = label_lines(out, task, split, name)
            assert len(lb["cls"]) == len(lines), name  # Ultralytics keeps every line vfm wrote
            assert lb["shape"] == Image.open(source / name).size[::-1]
            assert ((lb["bboxes"] >= 0) & (lb["bboxes"] <= 1)).all()
            assert sorted(lb["cls"].ravel().astype(int).tolist()) == sorted(int(ln.split()[0]) for ln in lines)
            if run == "detect":  # boxes of a detector: every COCO annotation is a label
                assert len(lines) == len(anns)
            elif task == "segment":  # one polygon per mask (every tiny-SAM mask here has a contour)
                assert len(lines) == len(anns) and lb["segments"] == len(anns)
            else:  # boxes of masks: tiny SAM's masks share boxes; each (class, box) is one label
                assert len(lines) == len({(a["category_id"], tuple(a["bbox"])) for a in anns})
        total = sum(len(lb["cls"]) for lb in ds.labels)
        assert total == sum(len(label_lines(out, task, split, n)) for n in names) > 0


def test_without_split_everything_is_train_and_val_points_at_it(labeled, source):
    out = labeled["default"]
    coco = coco_by_image(out)
    for task in ("detect", "segment"):
        text = (out / "yolo" / task / "data.yaml").read_text()
        assert "train: images/train\nval: images/train\n" in text and "test:" not in text
        data, ds = ultralytics_dataset(out / "yolo" / task / "data.yaml", task, "val")
        assert data["val"] == data["train"]
        assert len(ds.labels) == len(coco) == 9
        assert sum(len(lb["cls"]) for lb in ds.labels) == sum(len(label_lines(out, task, "train", n)) for n in coco)
    assert not (out / "coco_train.json").exists() and not (out / "yolo" / "detect" / "images" / "val").exists()


def test_a_label_is_the_coco_box_normalized(labeled):
    out = labeled["detect"]
    doc = json.loads((out / "coco.json").read_text())
    data, ds = ultralytics_dataset(out / "yolo" / "detect" / "data.yaml", "detect", "train")
    by_file = {os.path.relpath(lb["im_file"], data["train"]): lb for lb in ds.labels}
    checked = 0
    for img in doc["images"]:
        lb = by_file.get(dataset_name(img["file_name"]))
        if lb is None:
            continue
        anns = [a for a in doc["annotations"] if a["image_id"] == img["id"]]
        w, h = img["width"], img["height"]
        expected = [[a["category_id"] - 1, (a["bbox"][0] + a["bbox"][2] / 2) / w, (a["bbox"][1] + a["bbox"][3] / 2) / h,
                     a["bbox"][2] / w, a["bbox"][3] / h] for a in anns]
        np.testing.assert_allclose(np.c_[lb["cls"], lb["bboxes"]], np.array(expected).reshape(-1, 5), atol=1e-5)
        checked += len(anns)
    assert checked > 0
